"""The hookpress stack: reads the config once and wires the components together.

Nothing here creates a resource itself; each concern is a ComponentResource
in its own module. ``main`` returns the stack outputs so the infra tests can
run the very same wiring under ``pulumi.runtime.set_mocks``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

# Pulumi runs this folder as a script, which puts the folder itself first on
# sys.path: its modules would then shadow top-level ones of the same name. Import
# `infra` (and the shared core, for its scheme list) as packages instead, as
# mypy and pytest do.
_REPO = Path(__file__).resolve().parent.parent
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _HERE]
for _path in (_REPO / "functions", _REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import pulumi  # noqa: E402
from pulumi_gcp import cloudrunv2, organizations  # noqa: E402

from hookpress.lanes import lane_filter  # noqa: E402
from infra.access import IDENTITIES, Access, AccessArgs, runtime_grants  # noqa: E402
from infra.alerting import SlackChannel, SlackChannelArgs  # noqa: E402
from infra.apis import Apis  # noqa: E402
from infra.build import BuildInfra, BuildInfraArgs  # noqa: E402
from infra.config import SMOKE_SOURCE, FunctionSizing, Settings, load  # noqa: E402
from infra.env import deliver_env, ingress_env, reconcile_env, rotate_env  # noqa: E402
from infra.events_store import EventStore, EventStoreArgs  # noqa: E402
from infra.function import CloudFunction, CloudFunctionArgs, FunctionSpec  # noqa: E402
from infra.identities import Identities, IdentitiesArgs  # noqa: E402
from infra.messaging import Messaging, MessagingArgs  # noqa: E402
from infra.network import Egress, EgressArgs  # noqa: E402
from infra.observability import Observability, ObservabilityArgs  # noqa: E402
from infra.push import PushSubscription, PushSubscriptionArgs  # noqa: E402
from infra.schedule import Schedule, ScheduleArgs  # noqa: E402
from infra.secret_store import Secrets, SecretsArgs  # noqa: E402
from infra.storage import RawStore, RawStoreArgs  # noqa: E402
from infra.warehouse import Warehouse, WarehouseArgs  # noqa: E402

FUNCTIONS_ROOT = _REPO / "functions"
CORE = "hookpress"

INGRESS = FunctionSpec(
    "ingress", "ingress", "hookpress: public webhook ingress (verify, store, publish)", public=True
)
DELIVER = FunctionSpec(
    "deliver", "deliver", "hookpress: push-subscribed delivery into WordPress", vpc_egress=True
)
RECONCILE = FunctionSpec(
    "reconcile", "reconcile", "hookpress: re-publishes events stuck in 'received'"
)
ROTATE = FunctionSpec(
    "rotate", "rotate", "hookpress: rotates the WordPress application password", vpc_egress=True
)

# Small, fixed sizes: each runs rarely and one at a time.
RECONCILE_SIZING = FunctionSizing(
    min_instances=0, max_instances=1, concurrency=1, memory="256Mi", cpu="0.167", timeout_s=300
)
ROTATE_SIZING = FunctionSizing(
    min_instances=0, max_instances=1, concurrency=1, memory="256Mi", cpu="0.167", timeout_s=120
)


def with_project_number(settings: Settings) -> Settings:
    """The settings with the project number: from hookpress:projectNumber, else the project.

    A plain (synchronous) invoke, so the service URLs built from it are plain
    strings known at preview, not Outputs.
    """
    if settings.project_number is not None:
        return settings
    try:
        number = organizations.get_project(project_id=settings.project).number
    except Exception as exc:  # noqa: BLE001 - any lookup failure gets the same remedy
        raise pulumi.RunError(
            f"could not read the number of project {settings.project} ({type(exc).__name__}): "
            "set it with pulumi config set hookpress:projectNumber $(gcloud projects describe "
            f"{settings.project} --format='value(projectNumber)')."
        ) from None
    return settings.with_project_number(str(number))


def main(
    settings: Settings, functions_root: Path = FUNCTIONS_ROOT
) -> dict[str, pulumi.Input[object]]:
    """Declare the whole stack; return its outputs."""
    s = with_project_number(settings)
    project, region, labels = s.project, s.region, dict(s.labels)

    apis = Apis("apis", project)
    ready = apis.services
    ids = Identities("identities", IdentitiesArgs(project, s.prefix, IDENTITIES), depends_on=ready)
    egress = Egress(
        "egress",
        EgressArgs(
            project=project,
            region=region,
            prefix=s.prefix,
            network=s.network,
        ),
        depends_on=ready,
    )
    raw = RawStore(
        "raw",
        RawStoreArgs(
            project=project,
            name=f"{project}-{s.prefix}-raw",
            bucket=s.bucket,
            labels=labels,
        ),
        depends_on=ready,
    )
    store = EventStore(
        "firestore",
        EventStoreArgs(
            project=project,
            location=s.firestore_location,
            database=s.firestore_database,
            create_database=s.create_firestore_database,
        ),
        depends_on=ready,
    )
    messaging = Messaging(
        "messaging",
        MessagingArgs(project=project, pubsub_agent_member=apis.pubsub_agent.member, labels=labels),
        depends_on=ready,
    )
    secrets = Secrets(
        "secrets",
        SecretsArgs(
            project=project,
            prefix=s.prefix,
            sources=s.sources,
            wp_secret_id=s.deliver.wp_app_password_secret_id,
            rotation_period_days=s.rotation_period_days,
            first_rotation=s.first_rotation,
            secretmanager_agent_member=apis.secretmanager_agent.member,
            labels=labels,
            wp_app_password=s.wp_app_password,
            source_values=s.source_secret_values,
        ),
        depends_on=ready,
    )
    build = BuildInfra(
        "build",
        BuildInfraArgs(
            project=project,
            region=region,
            prefix=s.prefix,
            bucket_name=f"{project}-{s.prefix}-sources",
            build_member=ids.member("build"),
            labels=labels,
            settle_s=s.iam_settle_s,
        ),
        depends_on=ready,
    )

    def function(
        spec: FunctionSpec,
        sizing: FunctionSizing,
        environment: Mapping[str, pulumi.Input[str]],
        invokers: Mapping[str, pulumi.Input[str]] | None = None,
        folder: str | None = None,
    ) -> CloudFunction:
        return CloudFunction(
            spec.short_name,
            CloudFunctionArgs(
                spec=spec,
                project=project,
                region=region,
                name=s.function_name(spec.short_name),
                source_dir=functions_root / (folder or spec.short_name),
                core_dir=functions_root / CORE,
                sizing=sizing,
                # A lane's deliver service runs as deliver: same grants, same egress.
                service_account_email=ids.email(folder or spec.short_name),
                build_service_account=ids.accounts["build"].name,
                source_bucket=build.bucket.name,
                docker_repository=build.repository.id,
                environment=environment,
                labels={**labels, "hookpress-function": spec.short_name},
                service_url=s.function_url(spec.short_name),
                vpc=egress.access if spec.vpc_egress else None,
                invokers=invokers or {},
            ),
            # The build grants must exist, and have propagated, before the first build.
            depends_on=[*ready, build.ready],
        )

    ingress = function(
        INGRESS,
        s.ingress.sizing,
        ingress_env(s, raw_bucket=raw.bucket.name, events_topic=messaging.events.name),
    )
    deliver = function(
        DELIVER,
        s.lane_sizing("normal"),
        deliver_env(s, raw_bucket=raw.bucket.name, push_account=ids.email("push")),
        invokers={"push": ids.member("push")},
    )
    _check_url(deliver, project, region)

    def push_args(
        name: str,
        target: CloudFunction,
        lane: str | None,
        *,
        path: str = "",
        grant_token_creator: bool = False,
    ) -> PushSubscriptionArgs:
        """A push subscription into ``target`` as the push identity, with the push policy.

        With a lane: the events topic, filtered to the lane, dead-lettered after the
        attempts. Without: the dead-letter topic itself (never dead-lettered again).
        """
        return PushSubscriptionArgs(
            project=project,
            name=name,
            topic=messaging.events.id if lane else messaging.dead.id,
            audience=target.service_url,
            path=path,
            push_account_email=ids.email("push"),
            push_account_id=ids.accounts["push"].name,
            pubsub_agent_member=apis.pubsub_agent.member,
            ack_deadline_s=s.push.ack_deadline_s,
            min_backoff_s=s.push.min_backoff_s,
            max_backoff_s=s.push.max_backoff_s,
            dead_letter_topic=messaging.dead.id if lane else None,
            max_delivery_attempts=s.push.max_delivery_attempts,
            labels=labels,
            filter=lane_filter(lane, s.lanes) if lane else None,
            grant_token_creator=grant_token_creator,
        )

    push = PushSubscription(
        "deliver-push",
        # The one grant of token creation to Pub/Sub for the push identity (push.py).
        push_args("events-deliver", deliver, "normal", grant_token_creator=True),
        depends_on=[*ready, deliver],
    )
    # Fair lanes: each other lane in use is its own deliver service (its share of the
    # WordPress cap) behind its own filtered subscription (hookpress/lanes.py).
    lane_pushes: dict[str, PushSubscription] = {}
    for lane in s.lanes:
        if lane == "normal":
            continue
        short = f"deliver-{lane}"
        spec = FunctionSpec(
            short, "deliver", f"hookpress: delivery into WordPress, {lane} lane", vpc_egress=True
        )
        lane_fn = function(
            spec,
            s.lane_sizing(lane),
            deliver_env(s, raw_bucket=raw.bucket.name, push_account=ids.email("push"), short=short),
            invokers={"push": ids.member("push")},
            folder="deliver",
        )
        _check_url(lane_fn, project, region)
        lane_pushes[lane] = PushSubscription(
            f"{short}-push",
            push_args(f"events-{short}", lane_fn, lane),
            depends_on=[*ready, lane_fn, push],
        )

    # Dead letters are also pushed to deliver's /dead path, which marks their records
    # `dead` (same identity and audience); the pull subscription keeps a copy for
    # inspection and replay.
    dead_push = PushSubscription(
        "dead-letter-push",
        push_args("events-dead-deliver", deliver, None, path="/dead"),
        depends_on=[*ready, push],
    )

    reconcile = function(
        RECONCILE,
        RECONCILE_SIZING,
        reconcile_env(s, events_topic=messaging.events.name, caller=ids.email("scheduler")),
        invokers={"scheduler": ids.member("scheduler")},
    )
    _check_url(reconcile, project, region)
    schedule = Schedule(
        "reconcile-schedule",
        ScheduleArgs(
            project=project,
            region=region,
            name=s.function_name("reconcile"),
            schedule=s.reconcile_schedule,
            uri=reconcile.service_url,
            caller_email=ids.email("scheduler"),
            attempt_deadline_s=RECONCILE_SIZING.timeout_s,
            description="hookpress: re-publish events stuck in 'received'",
        ),
        depends_on=[*ready, reconcile],
    )

    rotate: CloudFunction | None = None
    if secrets.rotation_topic is not None:
        rotate = function(
            ROTATE,
            ROTATE_SIZING,
            rotate_env(s, push_account=ids.email("rotate-push")),
            invokers={"rotate-push": ids.member("rotate-push")},
        )
        _check_url(rotate, project, region)
        PushSubscription(
            "rotate-push",
            PushSubscriptionArgs(
                project=project,
                name=f"{s.prefix}-secret-rotation-rotate",
                topic=secrets.rotation_topic.id,
                audience=rotate.service_url,
                push_account_email=ids.email("rotate-push"),
                push_account_id=ids.accounts["rotate-push"].name,
                pubsub_agent_member=apis.pubsub_agent.member,
                # Creating and checking a WordPress password takes a few round trips.
                ack_deadline_s=ROTATE_SIZING.timeout_s,
                min_backoff_s=60,
                max_backoff_s=600,
                # Secret Manager also announces added versions (the rotator's own) and
                # topic changes; only a due rotation is work.
                filter='attributes.eventType = "SECRET_ROTATE"',
                labels=labels,
            ),
            depends_on=[*ready, rotate],
        )

    Access(
        "access",
        AccessArgs(project, runtime_grants(s, ids, raw, messaging, secrets, store)),
        depends_on=ready,
    )
    extra_channels: list[pulumi.Input[str]] = list(s.observability.notification_channels)
    if s.observability.slack_channel:
        slack = SlackChannel(
            "alert-slack",
            SlackChannelArgs(
                project=project,
                prefix=s.prefix,
                channel=s.observability.slack_channel,
                token_secret_id=s.observability.slack_token_secret_id,
            ),
            depends_on=ready,
        )
        extra_channels.append(slack.channel.id)
    warehouse: Warehouse | None = None
    if s.warehouse.enabled:
        warehouse = Warehouse(
            "warehouse",
            WarehouseArgs(
                project=project,
                warehouse=s.warehouse,
                subscription_name="events-warehouse",
                topic=messaging.events.id,
                pubsub_agent_member=apis.pubsub_agent.member,
                labels=labels,
            ),
            depends_on=ready,
        )
    Observability(
        "observability",
        ObservabilityArgs(
            project=project,
            prefix=s.prefix,
            ingress_service=ingress.function_name,
            deliver_service=deliver.function_name,
            push_subscription=push.subscription.name,
            dead_subscription=messaging.dead_pull.name,
            alert_emails=s.observability.alert_emails,
            notification_channels=extra_channels,
            lane_subscriptions=[p.subscription.name for p in lane_pushes.values()],
            oldest_unacked_alert_s=s.observability.oldest_unacked_alert_s,
            delivery_failures_threshold=s.observability.delivery_failures_alert_threshold,
            metric_settle_s=s.metric_settle_s,
        ),
        depends_on=ready,
    )

    functions = {"ingress": ingress, "deliver": deliver, "reconcile": reconcile}
    if rotate is not None:
        functions["rotate"] = rotate
    return {
        "project": s.project,
        # What a tool needs to sign for a source: its scheme and the id of its secret.
        "sources": {
            src.name: {
                "scheme": src.scheme,
                "provider": src.provider or src.scheme,
                "lane": src.lane,
                "secret": src.secret_id,
            }
            for src in s.sources
        },
        "ingressUrl": ingress.url,
        "ingressUrls": ingress.url.apply(
            lambda url: {src.name: f"{url}/{src.name}" for src in s.sources}
        ),
        # Private functions are called at their run.app service URL; ingress anywhere.
        "deliverUrl": deliver.service_url,
        "functionUrls": {
            name: fn.url if name == "ingress" else fn.service_url for name, fn in functions.items()
        },
        "egressIps": egress.egress_ips,
        "rawBucket": raw.bucket.name,
        "sourceBucket": build.bucket.name,
        "topics": {
            "events": messaging.events.name,
            "eventsDead": messaging.dead.name,
            **(
                {"secretRotation": secrets.rotation_topic.name}
                if secrets.rotation_topic is not None
                else {}
            ),
        },
        "subscriptions": {
            "deliverPush": push.subscription.name,
            **{
                f"deliverPush{lane.capitalize()}": sub.subscription.name
                for lane, sub in lane_pushes.items()
            },
            "deadLetterPush": dead_push.subscription.name,
            "eventsDeadPull": messaging.dead_pull.name,
        },
        **(
            {
                "warehouse": {
                    "table": warehouse.table.id,
                    "subscription": warehouse.subscription.name,
                }
            }
            if warehouse is not None
            else {}
        ),
        "serviceAccounts": {role: ids.email(role) for role in IDENTITIES},
        "secrets": {
            "sources": {name: secret.secret_id for name, secret in secrets.sources.items()},
            "wordpress": secrets.wordpress.secret_id,
        },
        "firestoreDatabase": s.firestore_database,
        # What `hookpress smoke` needs beyond the above.
        "smoke": {
            "source": SMOKE_SOURCE if s.smoke_source else None,
            "reconcileJob": schedule.job.name,
            "reconcileSchedule": s.reconcile_schedule,
            "region": region,
        },
    }


def _check_url(fn: CloudFunction, project: str, region: str) -> None:
    """Fail the update if the function's Cloud Run service does not answer at its predicted URL.

    Its callers push to, and sign for, ``fn.service_url``, which the function
    also checks; if Cloud Run did not give the service that deterministic URL
    (e.g. run.app URLs turned off), every call would fail. Read once the
    function exists (an unknown name at preview skips it).
    """
    urls = cloudrunv2.get_service_output(
        name=fn.function.name, location=region, project=project
    ).urls

    def check(found: list[str] | None) -> None:
        if found is not None and fn.service_url not in found:
            raise pulumi.RunError(
                f"The Cloud Run service of {fn.function_name} answers at {', '.join(found)}, not "
                f"at {fn.service_url}, where its push subscription or scheduler job calls it and "
                "which it checks as the OIDC audience: see docs/deploy.md, 'Service URLs'."
            )

    urls.apply(check)


if __name__ == "__main__":
    for _key, _value in main(load()).items():
        pulumi.export(_key, _value)
