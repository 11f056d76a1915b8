"""Where function code goes before it runs: the source bucket, the image repository, the builder.

Cloud Run functions build each archive with Cloud Build. The build runs as
its own service account (not the default compute one) holding only what a
build touches: write its logs, push to this stack's image repository, read
the sources (this bucket, and the ``gcf-v2-sources-*`` staging buckets Cloud
Run functions copies them into, through an IAM condition).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_gcp import artifactregistry, projects, storage

from infra.base import Component
from infra.storage import private_bucket

__all__ = ["BuildInfra", "BuildInfraArgs"]


@dataclass(frozen=True)
class BuildInfraArgs:
    """Where the sources and images live and who builds them."""

    project: str
    region: str
    prefix: str
    bucket_name: str
    build_member: pulumi.Input[str]
    labels: dict[str, str]
    keep_images: int = 5


class BuildInfra(Component):
    """The source bucket, the Artifact Registry repository and the build account's grants."""

    def __init__(
        self,
        name: str,
        args: BuildInfraArgs,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("BuildInfra", name, depends_on, opts)
        self.bucket = private_bucket(
            "sources",
            project=args.project,
            name=args.bucket_name,
            location=args.region.upper(),
            labels=args.labels,
            soft_delete_days=0,  # archives are rebuilt from git, nothing to recover
            opts=self.child(),
        )
        self.repository = artifactregistry.Repository(
            "images",
            project=args.project,
            location=args.region,
            repository_id=f"{args.prefix}-functions",
            format="DOCKER",
            description="hookpress: images built from the function archives",
            cleanup_policies=[
                artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-recent",
                    action="KEEP",
                    most_recent_versions=artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=args.keep_images
                    ),
                ),
                artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-old",
                    action="DELETE",
                    condition=artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        older_than=f"{30 * 86_400}s", tag_state="ANY"
                    ),
                ),
            ],
            labels=args.labels,
            opts=self.child(),
        )
        self.grants = [
            projects.IAMMember(
                "build-log-writer",
                project=args.project,
                role="roles/logging.logWriter",
                member=args.build_member,
                opts=self.child(),
            ),
            artifactregistry.RepositoryIamMember(
                "build-image-writer",
                project=args.project,
                location=args.region,
                repository=self.repository.name,
                role="roles/artifactregistry.writer",
                member=args.build_member,
                opts=self.child(),
            ),
            storage.BucketIAMMember(
                "build-source-reader",
                bucket=self.bucket.name,
                role="roles/storage.objectViewer",
                member=args.build_member,
                opts=self.child(),
            ),
            projects.IAMMember(
                "build-staging-reader",
                project=args.project,
                role="roles/storage.objectViewer",
                member=args.build_member,
                condition=projects.IAMMemberConditionArgs(
                    title="gcf-v2-sources-only",
                    description="Only the buckets Cloud Run functions stages sources in.",
                    expression='resource.name.startsWith("projects/_/buckets/gcf-v2-sources-")',
                ),
                opts=self.child(),
            ),
        ]
        self.register_outputs({"bucket": self.bucket.name, "repository": self.repository.id})
