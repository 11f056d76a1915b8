"""Firestore (native mode): the event records and their TTL.

``events/{event_key}.expire_at`` is a TTL field: Firestore deletes a record
some time after that instant. For schemes without a signed timestamp that
horizon is also how long a replayed delivery is recognised as a duplicate.
The field is exempt from indexing: a monotonically increasing timestamp
index is a write hot spot and nothing queries it.

Two composite indexes serve the queries by status: the reconciler's sweep
(status, updated_at) and ``hookpress events list`` / ``replay --status``
(status, received_at).

``events-bodies/{sha256}`` holds one marker per body for the schemes whose
delivery id is not signed (``hookpress.events.first_provider_id``). A TTL
policy covers one collection group
(https://cloud.google.com/firestore/docs/ttl), so it gets its own, on the
same field: a marker lives as long as its record.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_gcp import firestore

from hookpress.events import bodies_collection
from infra.base import Built, Child

__all__ = ["EventStore", "EventStoreArgs"]


@dataclass(frozen=True)
class EventStoreArgs:
    """Which database, where, and whether this stack creates it."""

    project: str
    location: str
    database: str
    create_database: bool
    collection: str = "events"
    ttl_field: str = "expire_at"


class EventStore(Built[EventStoreArgs]):
    """The Firestore database (optionally created here) and the TTL policy on the events."""

    KIND = "EventStore"

    def build(self, args: EventStoreArgs) -> None:
        self.database_name = args.database
        self.database: firestore.Database | None = None
        after: list[pulumi.Resource] = []
        if args.create_database:
            self.database = self.declare(firestore.Database, "database")(
                project=args.project,
                name=args.database,
                location_id=args.location,
                type="FIRESTORE_NATIVE",
                point_in_time_recovery_enablement="POINT_IN_TIME_RECOVERY_ENABLED",
                delete_protection_state="DELETE_PROTECTION_ENABLED",
                # A destroyed stack leaves the records; delete the database by hand.
                deletion_policy="ABANDON",
            )
            after.append(self.database)
        # One TTL policy per collection group: the records, and the body markers.
        self.ttls = [
            self.declare(firestore.Field, Child(child, depends_on=after))(
                project=args.project,
                database=args.database,
                collection=collection,
                field=args.ttl_field,
                ttl_config=firestore.FieldTtlConfigArgs(),
                index_config=firestore.FieldIndexConfigArgs(indexes=[]),
            )
            for child, collection in (
                ("events-ttl", args.collection),
                ("bodies-ttl", bodies_collection(args.collection)),
            )
        ]

        def status_index(field: str) -> firestore.Index:
            child = Child(f"events-status-{field.replace('_', '-')}", depends_on=after)
            return self.declare(firestore.Index, child)(
                project=args.project,
                database=args.database,
                collection=args.collection,
                query_scope="COLLECTION",
                fields=[
                    firestore.IndexFieldArgs(field_path="status", order="ASCENDING"),
                    firestore.IndexFieldArgs(field_path=field, order="ASCENDING"),
                ],
            )

        self.indexes = [status_index(field) for field in ("updated_at", "received_at")]
        self.register_outputs({"database": args.database})
