"""Log-based metrics, alert policies, a dashboard and where alerts go.

The functions log one structured JSON line per event (``hookpress.logs``):
``component`` (ingress, deliver, ...), ``outcome`` and ``reason``. Metrics
count those lines; labels are only ever extracted from bounded values
(outcome, reason, and the source name of *accepted* events), never from
what an anonymous caller put in the URL.

A new log-based metric is not visible to Cloud Monitoring at once: an alert
policy or chart naming it is refused with 404 "Cannot find metric(s) ... If a
metric was created recently, it could take up to 10 minutes to become
available" (the Monitoring API's own answer; reported for Terraform at
https://github.com/hashicorp/terraform-provider-google/issues/11102). A
``time.Sleep`` (pulumiverse-time) after the metrics, on their first creation
only, holds back the policies and the dashboard that name them, so a fresh
project's first ``pulumi up`` goes through in one run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumiverse_time as time
from pulumi_gcp import logging, monitoring

from infra.base import Built, Child

__all__ = ["LOG_METRICS", "LogMetric", "Observability", "ObservabilityArgs"]


@dataclass(frozen=True)
class LogMetric:
    """One counter over the functions' structured logs."""

    key: str
    description: str
    component: str
    outcome_filter: str
    labels: tuple[tuple[str, str], ...] = ()


LOG_METRICS = (
    LogMetric(
        "accepted",
        "Webhooks accepted: stored, recorded and published (202).",
        "ingress",
        'jsonPayload.outcome="accepted"',
        (("source", "jsonPayload.source"),),
    ),
    LogMetric(
        "duplicate",
        "Webhooks seen before (200 duplicate).",
        "ingress",
        'jsonPayload.outcome="duplicate"',
        (("source", "jsonPayload.source"),),
    ),
    LogMetric(
        "rejected",
        "Webhooks refused, by outcome and reason (4xx/5xx).",
        "ingress",
        'jsonPayload.outcome!="accepted" AND jsonPayload.outcome!="duplicate" '
        'AND jsonPayload.outcome!="challenge"',
        (("outcome", "jsonPayload.outcome"), ("reason", "jsonPayload.reason")),
    ),
    LogMetric(
        "delivered",
        "Events WordPress accepted (2xx).",
        "deliver",
        'jsonPayload.outcome="delivered"',
    ),
    LogMetric(
        "failed",
        "Events WordPress refused for good (permanent 4xx): acked, need a look.",
        "deliver",
        'jsonPayload.outcome="failed"',
        (("reason", "jsonPayload.reason"),),
    ),
    LogMetric(
        "dead",
        "Events whose delivery attempts ran out (dead-lettered).",
        "deliver",
        'jsonPayload.outcome="dead"',
    ),
)


@dataclass(frozen=True)
class ObservabilityArgs:
    """What to watch and whom to tell."""

    project: str
    prefix: str
    ingress_service: str
    deliver_service: str
    push_subscription: pulumi.Input[str]
    dead_subscription: pulumi.Input[str]
    alert_emails: Sequence[str]
    notification_channels: Sequence[pulumi.Input[str]]  # existing ids, and the Slack channel
    oldest_unacked_alert_s: int
    delivery_failures_threshold: int
    # How long new log-based metrics need before Monitoring knows them.
    metric_settle_s: int = 600
    # The other lanes' push subscriptions (hookpress/lanes.py): "deliveries are stuck"
    # watches every lane, the worst one decides.
    lane_subscriptions: Sequence[pulumi.Input[str]] = ()


def _extractor(field: str) -> str:
    return f"EXTRACT({field})"


class Observability(Built[ObservabilityArgs]):
    """Log metrics, notification channels, four alert policies and one dashboard."""

    KIND = "Observability"

    def build(self, args: ObservabilityArgs) -> None:
        self.metrics: dict[str, logging.Metric] = {}
        for metric in LOG_METRICS:
            service = (
                args.ingress_service if metric.component == "ingress" else args.deliver_service
            )
            self.metrics[metric.key] = self.declare(logging.Metric, f"metric-{metric.key}")(
                project=args.project,
                name=self.metric_name(args.prefix, metric.key),
                description=metric.description,
                filter=(
                    'resource.type="cloud_run_revision" '
                    f'AND resource.labels.service_name="{service}" '
                    f'AND jsonPayload.component="{metric.component}" '
                    f"AND {metric.outcome_filter}"
                ),
                metric_descriptor=logging.MetricMetricDescriptorArgs(
                    metric_kind="DELTA",
                    value_type="INT64",
                    unit="1",
                    labels=[
                        logging.MetricMetricDescriptorLabelArgs(key=key, value_type="STRING")
                        for key, _ in metric.labels
                    ],
                ),
                label_extractors={key: _extractor(field) for key, field in metric.labels} or None,
            )

        # Slept once, when the metrics are first created (or recreated: the trigger).
        settle = Child("metrics-settled", depends_on=list(self.metrics.values()))
        self.metrics_settled = self.declare(time.Sleep, settle)(
            create_duration=f"{args.metric_settle_s}s",
            triggers={key: metric.id for key, metric in self.metrics.items()},
        )

        self.channels = [
            self.declare(monitoring.NotificationChannel, f"email-{index}")(
                project=args.project,
                display_name=f"hookpress alerts: {email}",
                type="email",
                labels={"email_address": email},
            )
            for index, email in enumerate(args.alert_emails)
        ]
        channel_ids: list[pulumi.Input[str]] = [c.id for c in self.channels]
        channel_ids.extend(args.notification_channels)

        def policy(
            key: str,
            title: str,
            runbook: str,
            metric_filter: pulumi.Input[str],
            threshold: float,
            aligner: str,
            period_s: int,
            severity: str,
            after: Sequence[pulumi.Resource] = (),
        ) -> monitoring.AlertPolicy:
            return self.declare(monitoring.AlertPolicy, Child(f"alert-{key}", depends_on=after))(
                project=args.project,
                display_name=f"{args.prefix}: {title}",
                combiner="OR",
                severity=severity,
                notification_channels=channel_ids,
                documentation=monitoring.AlertPolicyDocumentationArgs(
                    mime_type="text/markdown", content=runbook
                ),
                conditions=[
                    monitoring.AlertPolicyConditionArgs(
                        display_name=title,
                        condition_threshold=monitoring.AlertPolicyConditionConditionThresholdArgs(
                            filter=metric_filter,
                            comparison="COMPARISON_GT",
                            threshold_value=threshold,
                            duration="0s",
                            aggregations=[
                                monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                                    alignment_period=f"{period_s}s",
                                    per_series_aligner=aligner,
                                    cross_series_reducer="REDUCE_SUM"
                                    if aligner == "ALIGN_SUM"
                                    else "REDUCE_MAX",
                                )
                            ],
                        ),
                    )
                ],
                alert_strategy=monitoring.AlertPolicyAlertStrategyArgs(auto_close="86400s"),
            )

        def subscription_filter(metric: str, subscription: pulumi.Input[str]) -> pulumi.Output[str]:
            return pulumi.Output.from_input(subscription).apply(
                lambda sub: (
                    f'metric.type="pubsub.googleapis.com/subscription/{metric}" '
                    f'AND resource.type="pubsub_subscription" '
                    f'AND resource.labels.subscription_id="{sub}"'
                )
            )

        def subscriptions_filter(
            metric: str, subscriptions: Sequence[pulumi.Input[str]]
        ) -> pulumi.Output[str]:
            if len(subscriptions) == 1:
                return subscription_filter(metric, subscriptions[0])
            return pulumi.Output.all(*subscriptions).apply(
                lambda subs: (
                    f'metric.type="pubsub.googleapis.com/subscription/{metric}" '
                    f'AND resource.type="pubsub_subscription" '
                    "AND resource.labels.subscription_id=one_of("
                    + ", ".join(f'"{sub}"' for sub in subs)
                    + ")"
                )
            )

        failed = self.metrics["failed"]
        self.alerts = [
            policy(
                "dead-letters",
                "dead-letter backlog",
                "Events exhausted their delivery attempts and sit on the dead-letter "
                "subscription. See docs/runbook.md, 'Dead letters'.",
                subscription_filter("num_undelivered_messages", args.dead_subscription),
                0,
                "ALIGN_MAX",
                60,
                "ERROR",
            ),
            policy(
                "oldest-unacked",
                "deliveries are stuck",
                f"The oldest undelivered event is older than {args.oldest_unacked_alert_s} s: "
                "WordPress is probably down or refusing. See docs/runbook.md, 'WordPress outage'.",
                subscriptions_filter(
                    "oldest_unacked_message_age",
                    [args.push_subscription, *args.lane_subscriptions],
                ),
                args.oldest_unacked_alert_s,
                "ALIGN_MAX",
                60,
                "WARNING",
            ),
            policy(
                "ingress-5xx",
                "ingress answers 5xx",
                "The ingress answered 5xx (a backend is failing; providers will retry). "
                "See docs/runbook.md.",
                'metric.type="run.googleapis.com/request_count" '
                'AND resource.type="cloud_run_revision" '
                f'AND resource.labels.service_name="{args.ingress_service}" '
                'AND metric.labels.response_code_class="5xx"',
                0,
                "ALIGN_SUM",
                300,
                "ERROR",
            ),
            policy(
                "delivery-failures",
                "deliveries fail permanently",
                "WordPress refused events for good (permanent 4xx); they are marked failed. "
                "See docs/runbook.md, 'Failed deliveries'.",
                failed.name.apply(
                    lambda n: (
                        f'metric.type="logging.googleapis.com/user/{n}" '
                        'AND resource.type="cloud_run_revision"'
                    )
                ),
                args.delivery_failures_threshold,
                "ALIGN_SUM",
                300,
                "ERROR",
                after=[self.metrics_settled],
            ),
        ]

        dashboard = Child("dashboard", depends_on=[self.metrics_settled])
        self.dashboard = self.declare(monitoring.Dashboard, dashboard)(
            project=args.project,
            dashboard_json=pulumi.Output.all(args.push_subscription, args.dead_subscription).apply(
                lambda subs: json.dumps(
                    self.dashboard_spec(args, str(subs[0]), str(subs[1])), sort_keys=True
                )
            ),
        )
        self.register_outputs({"dashboard": self.dashboard.id})

    @staticmethod
    def metric_name(prefix: str, key: str) -> str:
        """The log-based metric's name (``logging.googleapis.com/user/<name>``)."""
        return f"{prefix}-{key}"

    @classmethod
    def dashboard_spec(
        cls, args: ObservabilityArgs, push_sub: str, dead_sub: str
    ) -> dict[str, Any]:
        """The dashboard as the Monitoring API's JSON: one chart per line of the flow."""

        def chart(title: str, metric_filter: str, aligner: str = "ALIGN_RATE") -> dict[str, Any]:
            return {
                "title": title,
                "xyChart": {
                    "dataSets": [
                        {
                            "plotType": "LINE",
                            "timeSeriesQuery": {
                                "timeSeriesFilter": {
                                    "filter": metric_filter,
                                    "aggregation": {
                                        "alignmentPeriod": "60s",
                                        "perSeriesAligner": aligner,
                                    },
                                }
                            },
                        }
                    ]
                },
            }

        def user(key: str) -> str:
            return (
                f'metric.type="logging.googleapis.com/user/{cls.metric_name(args.prefix, key)}" '
                'AND resource.type="cloud_run_revision"'
            )

        def sub(metric: str, name: str) -> str:
            return (
                f'metric.type="pubsub.googleapis.com/subscription/{metric}" '
                f'AND resource.type="pubsub_subscription" '
                f'AND resource.labels.subscription_id="{name}"'
            )

        charts = [chart(f"{m.key} / s", user(m.key)) for m in LOG_METRICS]
        charts += [
            chart(
                "ingress requests by status class",
                'metric.type="run.googleapis.com/request_count" '
                'AND resource.type="cloud_run_revision" '
                f'AND resource.labels.service_name="{args.ingress_service}"',
            ),
            chart("undelivered events", sub("num_undelivered_messages", push_sub), "ALIGN_MAX"),
            chart(
                "oldest undelivered event (s)",
                sub("oldest_unacked_message_age", push_sub),
                "ALIGN_MAX",
            ),
            chart("dead letters waiting", sub("num_undelivered_messages", dead_sub), "ALIGN_MAX"),
        ]
        tiles = [
            {"xPos": (i % 2) * 24, "yPos": (i // 2) * 16, "width": 24, "height": 16, "widget": c}
            for i, c in enumerate(charts)
        ]
        return {
            "displayName": f"{args.prefix}: webhooks",
            "mosaicLayout": {"columns": 48, "tiles": tiles},
        }
