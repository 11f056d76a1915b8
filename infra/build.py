"""Where function code goes before it runs: the source bucket, the image repository, the builder.

Cloud Run functions build each archive with Cloud Build. The build runs as
its own service account (not the default compute one) holding what Google's
page for a custom build service account lists
(https://cloud.google.com/functions/docs/securing/build-custom-sa):
``roles/logging.logWriter`` (build logs), ``roles/artifactregistry.writer``
(on this stack's image repository, given as the function's
``dockerRepository``) and ``roles/storage.objectViewer`` (the sources: this
bucket, and the ``gcf-v2-sources-*`` staging buckets Cloud Run functions copies
them into, through an IAM condition). :data:`BUILD_ROLES` is that list; the
infra tests compare the grants with it.

IAM changes take effect "typically within 2 minutes" and can take 7 or more
(https://cloud.google.com/iam/docs/access-change-propagation). On a fresh
project the first build would start while the grants are still unknown to
Cloud Build and fail; ``ready`` is a ``time.Sleep`` (pulumiverse-time) after
the grants, on their creation only, that the functions wait for.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumiverse_time as time
from pulumi_gcp import artifactregistry, projects, storage

from infra.base import Built, Child
from infra.storage import private_bucket

__all__ = ["BUILD_ROLES", "BuildInfra", "BuildInfraArgs"]

#: The roles https://cloud.google.com/functions/docs/securing/build-custom-sa lists.
BUILD_ROLES = frozenset(
    {"roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectViewer"}
)


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
    # Seconds to let the grants propagate before the first build (0: do not wait).
    settle_s: int = 180


class BuildInfra(Built[BuildInfraArgs]):
    """The source bucket, the Artifact Registry repository and the build account's grants."""

    KIND = "BuildInfra"

    def build(self, args: BuildInfraArgs) -> None:
        self.bucket = self.declare(private_bucket, "sources")(
            project=args.project,
            name=args.bucket_name,
            location=args.region.upper(),
            labels=args.labels,
            soft_delete_days=0,  # archives are rebuilt from git, nothing to recover
        )
        self.repository = self.declare(artifactregistry.Repository, "images")(
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
        )
        self.grants = [
            self.declare(projects.IAMMember, "log-writer")(
                project=args.project,
                role="roles/logging.logWriter",
                member=args.build_member,
            ),
            self.declare(artifactregistry.RepositoryIamMember, "image-writer")(
                project=args.project,
                location=args.region,
                repository=self.repository.name,
                role="roles/artifactregistry.writer",
                member=args.build_member,
            ),
            self.declare(storage.BucketIAMMember, "source-reader")(
                bucket=self.bucket.name,
                role="roles/storage.objectViewer",
                member=args.build_member,
            ),
            self.declare(projects.IAMMember, "staging-reader")(
                project=args.project,
                role="roles/storage.objectViewer",
                member=args.build_member,
                condition=projects.IAMMemberConditionArgs(
                    title="gcf-v2-sources-only",
                    description="Only the buckets Cloud Run functions stages sources in.",
                    expression='resource.name.startsWith("projects/_/buckets/gcf-v2-sources-")',
                ),
            ),
        ]
        self.ready = self.declare(time.Sleep, Child("grants-settled", depends_on=self.grants))(
            create_duration=f"{args.settle_s}s",
            # A replaced grant (another account, say) waits again.
            triggers={f"grant-{i}": grant.id for i, grant in enumerate(self.grants)},
        )
        self.register_outputs({"bucket": self.bucket.name, "repository": self.repository.id})
