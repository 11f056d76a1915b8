"""A Cloud Scheduler job that calls a private function with an OIDC token.

The reconciler runs this way: every few minutes the job POSTs to its URL as
the scheduler identity, which holds ``run.invoker`` on that function only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_gcp import cloudscheduler

from infra.base import Built

__all__ = ["Schedule", "ScheduleArgs"]


@dataclass(frozen=True)
class ScheduleArgs:
    """When and whom the job calls, and as whom."""

    project: str
    region: str
    name: str
    schedule: str
    # The function's service URL (Settings.function_url): called there, and the audience.
    uri: str
    caller_email: pulumi.Input[str]
    attempt_deadline_s: int
    description: str


class Schedule(Built[ScheduleArgs]):
    """One HTTP Cloud Scheduler job with an OIDC token (audience = the target URL)."""

    KIND = "Schedule"

    def build(self, args: ScheduleArgs) -> None:
        self.job = self.declare(cloudscheduler.Job, "job")(
            project=args.project,
            region=args.region,
            name=args.name,
            description=args.description,
            schedule=args.schedule,
            time_zone="Etc/UTC",
            attempt_deadline=f"{args.attempt_deadline_s}s",
            # The next run is minutes away; retrying a failed sweep adds nothing.
            retry_config=cloudscheduler.JobRetryConfigArgs(retry_count=0),
            http_target=cloudscheduler.JobHttpTargetArgs(
                uri=args.uri,
                http_method="POST",
                headers={"Content-Type": "application/json"},
                body="e30=",  # base64 of "{}"
                oidc_token=cloudscheduler.JobHttpTargetOidcTokenArgs(
                    service_account_email=args.caller_email,
                    audience=args.uri,
                ),
            ),
        )
        self.register_outputs({"job": self.job.name})
