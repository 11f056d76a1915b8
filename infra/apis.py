"""The Google APIs the stack uses, and the Google-managed service agents it grants roles to."""

from __future__ import annotations

from pulumi_gcp import projects

from infra.base import Built, Child

__all__ = ["SERVICES", "Apis"]

SERVICES = (
    "artifactregistry.googleapis.com",  # images the function builds produce
    "cloudbuild.googleapis.com",  # Cloud Run functions build with Cloud Build
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",  # project-level IAM members
    "cloudscheduler.googleapis.com",  # the reconciler's schedule
    "compute.googleapis.com",  # VPC, Cloud Router, Cloud NAT, static addresses
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",  # gen2 functions are Cloud Run services
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    "vpcaccess.googleapis.com",  # the Serverless VPC Access connector (egressPath connector)
)


class Apis(Built[str]):
    """Enables every API the program needs; exposes the Pub/Sub and Secret Manager agents.

    APIs are left enabled when the stack is destroyed: turning an API off can
    break other workloads in the same project.
    """

    KIND = "Apis"

    def build(self, project: str) -> None:
        self.services = [
            self.declare(projects.Service, service.split(".")[0])(
                project=project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
            )
            for service in SERVICES
        ]
        # The service agents exist once their API is on; ServiceIdentity makes sure
        # they do (a fresh project has none until first use) and yields their e-mail.
        agent = self.declare(
            projects.ServiceIdentity, Child("pubsub-agent", depends_on=self.services)
        )
        self.pubsub_agent = agent(
            project=project,
            service="pubsub.googleapis.com",
        )
        agent = self.declare(
            projects.ServiceIdentity, Child("secretmanager-agent", depends_on=self.services)
        )
        self.secretmanager_agent = agent(
            project=project,
            service="secretmanager.googleapis.com",
        )
        self.register_outputs(
            {
                "pubsubAgent": self.pubsub_agent.email,
                "secretManagerAgent": self.secretmanager_agent.email,
            }
        )
