"""What each workload may do with the data: every runtime grant in one reviewable place.

Grants are made on the narrowest resource that supports IAM: a bucket, a
topic, a secret. Firestore has no per-collection IAM, so its one
project-level role (``roles/datastore.user``) carries a condition that
limits it to this stack's database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
from pulumi_gcp import projects, pubsub, secretmanager, storage

from infra.base import Component

__all__ = ["Access", "Grant"]

Kind = Literal["bucket", "topic", "secret", "firestore"]


@dataclass(frozen=True)
class Grant:
    """``member`` gets ``role`` on ``target`` (a bucket, topic, secret id or database id)."""

    label: str
    kind: Kind
    target: pulumi.Input[str]
    role: str
    member: pulumi.Input[str]


class Access(Component):
    """Creates one IAM member per :class:`Grant`."""

    def __init__(
        self,
        name: str,
        *,
        project: str,
        grants: Sequence[Grant],
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("Access", name, depends_on, opts)
        labels = [g.label for g in grants]
        if len(set(labels)) != len(labels):
            raise ValueError("grant labels must be unique")
        self.members: list[pulumi.CustomResource] = [self._grant(project, g) for g in grants]
        self.register_outputs({})

    def _grant(self, project: str, g: Grant) -> pulumi.CustomResource:
        opts = self.child()
        name = self.named(g.label)
        if g.kind == "bucket":
            return storage.BucketIAMMember(
                name, bucket=g.target, role=g.role, member=g.member, opts=opts
            )
        if g.kind == "topic":
            return pubsub.TopicIAMMember(
                name, project=project, topic=g.target, role=g.role, member=g.member, opts=opts
            )
        if g.kind == "secret":
            return secretmanager.SecretIamMember(
                name,
                project=project,
                secret_id=g.target,
                role=g.role,
                member=g.member,
                opts=opts,
            )
        database = pulumi.Output.from_input(g.target)
        return projects.IAMMember(
            name,
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
            opts=opts,
        )
