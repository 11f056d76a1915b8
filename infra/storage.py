"""The raw-payload bucket: the exact bytes every accepted webhook arrived with.

Private by construction (uniform bucket-level access, public access
prevention enforced); objects move to a colder class and are deleted on a
schedule; soft delete keeps an accidental delete recoverable for a while.
Replay reads from here, so the bucket is never force-destroyed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_gcp import storage

from infra.base import Built
from infra.config import BucketConfig

__all__ = ["RawStore", "RawStoreArgs", "private_bucket"]


@dataclass(frozen=True)
class RawStoreArgs:
    """Bucket name, location and lifecycle."""

    project: str
    name: str
    # Location and lifecycle: as configured.
    bucket: BucketConfig
    labels: dict[str, str]


def private_bucket(
    resource_name: str,
    opts: pulumi.ResourceOptions | None,
    *,
    project: str,
    name: str,
    location: str,
    labels: dict[str, str],
    lifecycle_rules: Sequence[storage.BucketLifecycleRuleArgs] = (),
    soft_delete_days: int = 7,
) -> storage.Bucket:
    """A bucket nobody outside IAM can read: UBLA on, public access prevention enforced."""
    return storage.Bucket(
        resource_name,
        project=project,
        name=name,
        location=location,
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        force_destroy=False,
        labels=labels,
        lifecycle_rules=list(lifecycle_rules),
        soft_delete_policy=storage.BucketSoftDeletePolicyArgs(
            retention_duration_seconds=soft_delete_days * 86_400
        ),
        opts=opts,
    )


class RawStore(Built[RawStoreArgs]):
    """The raw-payload bucket with its lifecycle."""

    KIND = "RawStore"

    def build(self, args: RawStoreArgs) -> None:
        rules: list[storage.BucketLifecycleRuleArgs] = []
        if args.bucket.cold_after_days:
            rules.append(
                storage.BucketLifecycleRuleArgs(
                    action=storage.BucketLifecycleRuleActionArgs(
                        type="SetStorageClass", storage_class=args.bucket.cold_storage_class
                    ),
                    condition=storage.BucketLifecycleRuleConditionArgs(
                        age=args.bucket.cold_after_days, matches_storage_classes=["STANDARD"]
                    ),
                )
            )
        if args.bucket.delete_after_days:
            rules.append(
                storage.BucketLifecycleRuleArgs(
                    action=storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=storage.BucketLifecycleRuleConditionArgs(
                        age=args.bucket.delete_after_days
                    ),
                )
            )
        self.bucket = self.declare(private_bucket, "bucket")(
            project=args.project,
            name=args.name,
            location=args.bucket.location,
            labels=args.labels,
            lifecycle_rules=rules,
            soft_delete_days=args.bucket.soft_delete_days,
        )
        self.register_outputs({"bucket": self.bucket.name})
