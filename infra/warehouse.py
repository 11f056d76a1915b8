"""The warehouse side-write: every event's message, written to BigQuery by Pub/Sub itself.

A BigQuery subscription on the ``events`` topic writes each message as a row
(https://cloud.google.com/pubsub/docs/bigquery): with ``write_metadata``, the
subscription name, ``message_id`` and ``publish_time`` get their own columns
and the attributes a JSON column — for hookpress ``source``, ``provider``,
``type``, ``received_at``, ``lane`` and ``event_key``
(:func:`hookpress.events.message_attributes`). The ``data`` column holds the
message body: ``{"event_key": …}``, plus ``"payload"`` (the provider's
payload as a JSON object) only with ``warehouse.includePayload`` — the
ingress then puts it on the first publish of each event (a republish by the
reconciler or a replay carries the key only; rows are joined on
``event_key``). Nothing here reads Firestore or GCS: the side-write costs the
ingress nothing but larger messages, and never delays delivery.

Grants, least privilege: the Pub/Sub service agent writes the rows, so it is
given ``roles/bigquery.dataEditor`` on this one table (not the dataset, not
the project), as Google's page on BigQuery subscriptions requires
(https://cloud.google.com/pubsub/docs/create-bigquery-subscription#assign_bigquery_service_account);
the subscription waits for the grant. The table is partitioned by day on
``publish_time``; ``warehouse.partitionExpirationDays`` bounds what it keeps.

Children are named after the component, so their URNs stay unique when the
component is instantiated next to others (the engine refuses repeats).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
from pulumi_gcp import bigquery, projects, pubsub

from infra.base import Built, Child
from infra.config import WarehouseConfig

__all__ = ["TABLE_SCHEMA", "Warehouse", "WarehouseArgs"]

#: The columns a BigQuery subscription with write_metadata writes (use_topic_schema off).
TABLE_SCHEMA = [
    {"name": "subscription_name", "type": "STRING", "mode": "NULLABLE"},
    {"name": "message_id", "type": "STRING", "mode": "NULLABLE"},
    {"name": "publish_time", "type": "TIMESTAMP", "mode": "NULLABLE"},
    {"name": "data", "type": "JSON", "mode": "NULLABLE"},
    {"name": "attributes", "type": "JSON", "mode": "NULLABLE"},
]


@dataclass(frozen=True)
class WarehouseArgs:
    """Where the rows go and who writes them."""

    project: str
    # The dataset, table, location and partition expiry: as configured.
    warehouse: WarehouseConfig
    subscription_name: str
    topic: pulumi.Input[str]
    pubsub_agent_member: pulumi.Input[str]
    labels: dict[str, str]


class Warehouse(Built[WarehouseArgs]):
    """A dataset, a day-partitioned table, the grant and the BigQuery subscription."""

    KIND = "Warehouse"

    def build(self, args: WarehouseArgs) -> None:
        days = args.warehouse.partition_expiration_days
        expiration = days * 86_400_000 if days else None
        # Only this feature needs BigQuery: its API is enabled here, not with the core's.
        self.api = self.declare(projects.Service, "bigquery-api")(
            project=args.project,
            service="bigquery.googleapis.com",
            disable_on_destroy=False,
        )
        self.dataset = self.declare(bigquery.Dataset, Child("dataset", depends_on=[self.api]))(
            project=args.project,
            dataset_id=args.warehouse.dataset,
            location=args.warehouse.location,
            description="hookpress: one row per event message (BigQuery subscription)",
            labels=args.labels,
        )
        self.table = self.declare(bigquery.Table, "table")(
            project=args.project,
            dataset_id=self.dataset.dataset_id,
            table_id=args.warehouse.table,
            description="Event messages: attributes (source, provider, type, received_at, "
            "lane, event_key) and data (the event key, and the payload if configured).",
            schema=json.dumps(TABLE_SCHEMA),
            time_partitioning=bigquery.TableTimePartitioningArgs(
                type="DAY", field="publish_time", expiration_ms=expiration
            ),
            deletion_protection=True,
            labels=args.labels,
        )
        self.writer = self.declare(bigquery.IamMember, "agent-writer")(
            project=args.project,
            dataset_id=self.dataset.dataset_id,
            table_id=self.table.table_id,
            role="roles/bigquery.dataEditor",
            member=args.pubsub_agent_member,
        )
        subscription = Child("subscription", depends_on=[self.writer])
        self.subscription = self.declare(pubsub.Subscription, subscription)(
            project=args.project,
            name=args.subscription_name,
            topic=args.topic,
            bigquery_config=pubsub.SubscriptionBigqueryConfigArgs(
                table=pulumi.Output.all(self.dataset.dataset_id, self.table.table_id).apply(
                    lambda parts: f"{args.project}.{parts[0]}.{parts[1]}"
                ),
                write_metadata=True,
                use_topic_schema=False,
                use_table_schema=False,
            ),
            message_retention_duration="604800s",
            expiration_policy=pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
            labels=args.labels,
            # Pub/Sub checks it may write to the table when the subscription is created.
        )
        self.register_outputs({"table": self.table.id, "subscription": self.subscription.name})
