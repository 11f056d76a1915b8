"""A Pub/Sub push subscription into a private function, authenticated with OIDC.

Pub/Sub signs each push with a Google-issued OIDC token for the push
identity, with the function's ``run.app`` service URL as audience; Cloud Run
checks the token and the identity's ``run.invoker`` (granted on the function,
see ``function.py``), and the function checks audience and e-mail again
itself. The endpoint is that same URL (plus a path the function serves), so
endpoint, audience and the function's own check cannot drift apart:
:attr:`PushSubscriptionArgs.endpoint` is derived, not given.
Failures back off exponentially; with a dead-letter topic, a message is
forwarded after the configured number of attempts, which needs the Pub/Sub
service agent to subscribe here (and to publish on the dead-letter topic,
see ``messaging.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_gcp import pubsub, serviceaccount

from infra.base import Built, Child

__all__ = ["PushSubscription", "PushSubscriptionArgs"]


@dataclass(frozen=True)
class PushSubscriptionArgs:
    """Topic, endpoint, identity and the retry/dead-letter policy."""

    project: str
    name: str
    topic: pulumi.Input[str]
    # The function's service URL (Settings.function_url): the OIDC audience.
    audience: str
    push_account_email: pulumi.Input[str]
    push_account_id: pulumi.Input[str]
    pubsub_agent_member: pulumi.Input[str]
    ack_deadline_s: int
    min_backoff_s: int
    max_backoff_s: int
    labels: dict[str, str]
    dead_letter_topic: pulumi.Input[str] | None = None
    max_delivery_attempts: int = 5
    filter: str | None = None
    message_retention: str = "604800s"
    # False when another subscription already grants it for the same push identity:
    # two IAM members for one binding would remove it for both when one goes.
    grant_token_creator: bool = True
    # A path the function serves ("/dead"), appended to the audience for the endpoint.
    path: str = ""

    @property
    def endpoint(self) -> str:
        """Where Pub/Sub pushes: the audience's URL, plus the path."""
        return f"{self.audience}{self.path}"


class PushSubscription(Built[PushSubscriptionArgs]):
    """The subscription and the grants Pub/Sub needs to sign pushes and dead-letter them."""

    KIND = "PushSubscription"

    def build(self, args: PushSubscriptionArgs) -> None:
        # Projects created before April 2021 need this for Pub/Sub to mint the OIDC
        # token; it is scoped to the push identity, never the project.
        self.token_creator: serviceaccount.IAMMember | None = None
        after: list[pulumi.Resource] = []
        if args.grant_token_creator:
            self.token_creator = self.declare(serviceaccount.IAMMember, "token-creator")(
                service_account_id=args.push_account_id,
                role="roles/iam.serviceAccountTokenCreator",
                member=args.pubsub_agent_member,
            )
            after.append(self.token_creator)
        subscription = Child("subscription", depends_on=after)
        self.subscription = self.declare(pubsub.Subscription, subscription)(
            project=args.project,
            name=args.name,
            topic=args.topic,
            ack_deadline_seconds=args.ack_deadline_s,
            message_retention_duration=args.message_retention,
            expiration_policy=pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
            filter=args.filter,
            push_config=pubsub.SubscriptionPushConfigArgs(
                push_endpoint=args.endpoint,
                oidc_token=pubsub.SubscriptionPushConfigOidcTokenArgs(
                    service_account_email=args.push_account_email,
                    audience=args.audience,
                ),
            ),
            retry_policy=pubsub.SubscriptionRetryPolicyArgs(
                minimum_backoff=f"{args.min_backoff_s}s",
                maximum_backoff=f"{args.max_backoff_s}s",
            ),
            dead_letter_policy=pubsub.SubscriptionDeadLetterPolicyArgs(
                dead_letter_topic=args.dead_letter_topic,
                max_delivery_attempts=args.max_delivery_attempts,
            )
            if args.dead_letter_topic is not None
            else None,
            labels=args.labels,
        )
        self.agent_subscriber: pubsub.SubscriptionIAMMember | None = None
        if args.dead_letter_topic is not None:
            self.agent_subscriber = self.declare(pubsub.SubscriptionIAMMember, "agent-subscriber")(
                project=args.project,
                subscription=self.subscription.name,
                role="roles/pubsub.subscriber",
                member=args.pubsub_agent_member,
            )
        self.register_outputs({"subscription": self.subscription.name})
