"""Who runs what, and what each may do with the data: every runtime grant in one place.

:data:`IDENTITIES` are the service accounts, one per workload;
:func:`runtime_grants` is the table of what each may do, which :class:`Access`
creates. Grants are made on the narrowest resource that supports IAM: a
bucket, a topic, a secret. Firestore has no per-collection IAM, so its one
project-level role (``roles/datastore.user``) carries a condition that
limits it to this stack's database. Who may *invoke* a private function is
granted with the function (``infra/function.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
from pulumi_gcp import projects, pubsub, secretmanager, storage

from infra.base import Built
from infra.config import Settings
from infra.events_store import EventStore
from infra.identities import Identities
from infra.messaging import Messaging
from infra.secret_store import Secrets
from infra.storage import RawStore

__all__ = ["IDENTITIES", "Access", "AccessArgs", "Grant", "runtime_grants"]

# One service account per workload (see identities.py).
IDENTITIES = {
    "ingress": "Runs the public ingress function.",
    "deliver": "Runs the deliver function.",
    "reconcile": "Runs the reconcile function.",
    "rotate": "Runs the rotate function.",
    "push": "Signs Pub/Sub pushes to deliver (run.invoker on deliver only).",
    "rotate-push": "Signs Pub/Sub pushes to rotate (run.invoker on rotate only).",
    "scheduler": "Signs Cloud Scheduler calls to reconcile (run.invoker on reconcile only).",
    "build": "Builds the function images (Cloud Build).",
}

Kind = Literal["bucket", "topic", "secret", "firestore"]


@dataclass(frozen=True)
class Grant:
    """``member`` gets ``role`` on ``target`` (a bucket, topic, secret id or database id)."""

    label: str
    kind: Kind
    target: pulumi.Input[str]
    role: str
    member: pulumi.Input[str]


@dataclass(frozen=True)
class AccessArgs:
    """The project and the grants (labels unique: each names its IAM member)."""

    project: str
    grants: Sequence[Grant]


class Access(Built[AccessArgs]):
    """Creates one IAM member per :class:`Grant`."""

    KIND = "Access"

    def build(self, args: AccessArgs) -> None:
        labels = [g.label for g in args.grants]
        if len(set(labels)) != len(labels):
            raise ValueError("grant labels must be unique")
        self.members = [self._grant(args.project, g) for g in args.grants]
        self.register_outputs({})

    def _grant(self, project: str, g: Grant) -> pulumi.CustomResource:
        if g.kind == "bucket":
            return self.declare(storage.BucketIAMMember, g.label)(
                bucket=g.target, role=g.role, member=g.member
            )
        if g.kind == "topic":
            return self.declare(pubsub.TopicIAMMember, g.label)(
                project=project, topic=g.target, role=g.role, member=g.member
            )
        if g.kind == "secret":
            return self.declare(secretmanager.SecretIamMember, g.label)(
                project=project, secret_id=g.target, role=g.role, member=g.member
            )
        database = pulumi.Output.from_input(g.target)
        return self.declare(projects.IAMMember, g.label)(
            project=project,
            role=g.role,
            member=g.member,
            condition=projects.IAMMemberConditionArgs(
                title="hookpress-database-only",
                description="Only this stack's Firestore database.",
                expression=database.apply(
                    lambda db: f'resource.name == "projects/{project}/databases/{db}"'
                ),
            ),
        )


def runtime_grants(
    s: Settings,
    ids: Identities,
    raw: RawStore,
    messaging: Messaging,
    secrets: Secrets,
    store: EventStore,
) -> list[Grant]:
    """Every runtime permission, by workload: only what its code calls."""
    bucket, events = raw.bucket.name, messaging.events.name
    database = store.database.name if store.database is not None else s.firestore_database
    wp = secrets.wordpress.secret_id

    def grant(label: str, kind: Kind, target: pulumi.Input[str], role: str, who: str) -> Grant:
        return Grant(label, kind, target, role, ids.member(who))

    grants = [
        # ingress: create raw objects (never read or overwrite), records, publish, its secrets.
        grant("ingress-raw-create", "bucket", bucket, "roles/storage.objectCreator", "ingress"),
        grant("ingress-firestore", "firestore", database, "roles/datastore.user", "ingress"),
        grant("ingress-publish", "topic", events, "roles/pubsub.publisher", "ingress"),
        # deliver: read raw objects, update records, read the WordPress password.
        grant("deliver-raw-read", "bucket", bucket, "roles/storage.objectViewer", "deliver"),
        grant("deliver-firestore", "firestore", database, "roles/datastore.user", "deliver"),
        grant("deliver-wp-access", "secret", wp, "roles/secretmanager.secretAccessor", "deliver"),
        # Listing the enabled versions (rotation overlap) needs versions.list: viewer, no payloads.
        grant("deliver-wp-list", "secret", wp, "roles/secretmanager.viewer", "deliver"),
        # reconcile: find stragglers, re-publish them.
        grant("reconcile-firestore", "firestore", database, "roles/datastore.user", "reconcile"),
        grant("reconcile-publish", "topic", events, "roles/pubsub.publisher", "reconcile"),
    ]
    for name, secret in secrets.sources.items():
        sid = secret.secret_id
        accessor, viewer = "roles/secretmanager.secretAccessor", "roles/secretmanager.viewer"
        grants.append(grant(f"ingress-secret-{name}", "secret", sid, accessor, "ingress"))
        grants.append(grant(f"ingress-secret-list-{name}", "secret", sid, viewer, "ingress"))
    if s.rotation_enabled:
        # rotate: read the current password, add the new version, disable the old one.
        versions = "roles/secretmanager.secretVersionManager"
        grants += [
            grant("rotate-wp-access", "secret", wp, "roles/secretmanager.secretAccessor", "rotate"),
            grant("rotate-wp-versions", "secret", wp, versions, "rotate"),
        ]
    return grants
