"""Secret Manager: one secret per source, the WordPress application password, its rotation.

The program creates the secrets, never their values, unless the stack is
told to (``manageSecretValues``), in which case the values come from
``pulumi config set --secret`` and stay encrypted in the state. Otherwise an
operator adds them with ``gcloud secrets versions add``.

The smoke source's secret is the exception: the program generates it
(``random.RandomPassword``, kept encrypted in the stack state) and stores it
as the secret's version, so ``hookpress smoke`` can sign a test event right
after the first ``pulumi up`` with nothing added by hand. It signs events of
the ``smoke`` source only; whoever holds it can send WordPress smoke events,
no more (the source is off with ``hookpress:smokeSource false``).

The WordPress password rotates on a schedule: Secret Manager publishes
``SECRET_ROTATE`` to the rotation topic, the rotate function answers by
adding a new version. Source secrets are issued by the providers, so they
are rotated by hand (add a version; ingress accepts every enabled version
until the old one is disabled).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
import pulumi_random as random
from pulumi_gcp import pubsub, secretmanager

from infra.base import Built, Child
from infra.config import ConfigError, Source

__all__ = ["Secrets", "SecretsArgs"]


@dataclass(frozen=True)
class SecretsArgs:
    """The secrets to create, their rotation and (optionally) their values."""

    project: str
    prefix: str
    sources: Sequence[Source]
    wp_secret_id: str
    rotation_period_days: int
    first_rotation: str | None
    secretmanager_agent_member: pulumi.Input[str]
    labels: dict[str, str]
    wp_app_password: pulumi.Output[str] | None = None
    source_values: pulumi.Output[Any] | None = None


def _pick(values: Any, name: str) -> str:
    if not isinstance(values, Mapping) or not isinstance(values.get(name), str):
        raise ConfigError(
            f"hookpress:sourceSecrets.{name} is not set: with manageSecretValues on, set it with "
            f"pulumi config set --secret --path 'hookpress:sourceSecrets.{name}' <value>."
        )
    value: str = values[name]
    return value


def _value_of(values: pulumi.Output[Any], name: str) -> pulumi.Output[str]:
    def pick(current: Any) -> str:
        return _pick(current, name)

    return values.apply(pick)


def _first_rotation(configured: str | None, period_days: int) -> str:
    if configured is not None:
        return configured
    # Only the first schedule: Secret Manager advances it after each rotation and the
    # resource ignores it from then on, so this never causes a diff on later runs.
    start = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
    return (start + timedelta(days=period_days)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Secrets(Built[SecretsArgs]):
    """Source secrets, the WordPress secret, the rotation topic and who may publish to it."""

    KIND = "Secrets"

    def build(self, args: SecretsArgs) -> None:
        replication = secretmanager.SecretReplicationArgs(
            auto=secretmanager.SecretReplicationAutoArgs()
        )

        self.sources: dict[str, secretmanager.Secret] = {}
        for source in args.sources:
            secret = self.declare(secretmanager.Secret, f"source-{source.name}")(
                project=args.project,
                secret_id=source.secret_id,
                replication=replication,
                labels={**args.labels, "hookpress-source": source.name},
            )
            self.sources[source.name] = secret
            if source.generated:
                value = self.declare(random.RandomPassword, f"source-{source.name}-value")(
                    length=48,
                    special=False,
                )
                self._add_version(f"source-{source.name}", secret, value.result)
            elif args.source_values is not None:
                self._add_version(
                    f"source-{source.name}", secret, _value_of(args.source_values, source.name)
                )

        self.rotation_topic: pubsub.Topic | None = None
        rotation: secretmanager.SecretRotationArgs | None = None
        topics: list[secretmanager.SecretTopicArgs] = []
        after: list[pulumi.Resource] = []
        if args.rotation_period_days:
            self.rotation_topic = self.declare(pubsub.Topic, "rotation-topic")(
                project=args.project,
                name=f"{args.prefix}-secret-rotation",
                labels=args.labels,
            )
            # Secret Manager checks it may publish when the secret is created.
            after.append(
                self.declare(pubsub.TopicIAMMember, "rotation-agent-publisher")(
                    project=args.project,
                    topic=self.rotation_topic.name,
                    role="roles/pubsub.publisher",
                    member=args.secretmanager_agent_member,
                )
            )
            topics.append(secretmanager.SecretTopicArgs(name=self.rotation_topic.id))
            rotation = secretmanager.SecretRotationArgs(
                rotation_period=f"{args.rotation_period_days * 86_400}s",
                next_rotation_time=_first_rotation(args.first_rotation, args.rotation_period_days),
            )

        wordpress = Child(
            "wp-app-password", depends_on=after, ignore_changes=["rotation.nextRotationTime"]
        )
        self.wordpress = self.declare(secretmanager.Secret, wordpress)(
            project=args.project,
            secret_id=args.wp_secret_id,
            replication=replication,
            rotation=rotation,
            topics=topics or None,
            labels={**args.labels, "hookpress-secret": "wordpress"},
        )
        if args.wp_app_password is not None:
            self._add_version("wp-app-password", self.wordpress, args.wp_app_password)

        self.register_outputs(
            {
                "sourceSecrets": {n: s.secret_id for n, s in self.sources.items()},
                "wordpressSecret": self.wordpress.secret_id,
            }
        )

    def _add_version(
        self, name: str, secret: secretmanager.Secret, value: pulumi.Input[str]
    ) -> secretmanager.SecretVersion:
        return self.declare(secretmanager.SecretVersion, f"{name}-version")(
            secret=secret.id,
            secret_data=pulumi.Output.secret(value),
            # A changed value adds a version and leaves the previous one enabled, so
            # senders still signing with it keep working until it is disabled by hand.
            deletion_policy="ABANDON",
        )
