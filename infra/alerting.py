"""Where on-call looks: a Slack channel (and e-mail) for every alert policy.

Cloud Monitoring's Slack notification channel (``type: slack``) posts to one
channel with a Slack OAuth token
(https://cloud.google.com/monitoring/support/notification-options#slack). The
token is never in the stack's config: the program reads it at deploy time
from a Secret Manager secret the operator created (``alertSlackTokenSecret``,
default ``<prefix>-slack-token``; ``gcloud secrets versions add … --data-file=-``),
and passes it as the channel's sensitive ``auth_token`` — a Pulumi secret,
stored encrypted in the stack state and shown by Monitoring as redacted.
E-mail channels come from ``alertEmails`` (``infra/observability.py``);
existing channels (PagerDuty, …) from ``notificationChannels``. Every alert
policy notifies all of them; ``docs/runbook.md`` names them per alert.

Children are named after the component, so their URNs stay unique.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_gcp import monitoring, secretmanager

from infra.base import Built

__all__ = ["SlackChannel", "SlackChannelArgs"]


@dataclass(frozen=True)
class SlackChannelArgs:
    """The Slack channel and the secret holding the token Monitoring posts with."""

    project: str
    prefix: str
    channel: str  # e.g. "#hookpress-oncall"
    token_secret_id: str


class SlackChannel(Built[SlackChannelArgs]):
    """One Slack notification channel whose token comes from Secret Manager."""

    KIND = "SlackChannel"

    def build(self, args: SlackChannelArgs) -> None:
        token = secretmanager.get_secret_version_output(
            project=args.project,
            secret=args.token_secret_id,
            version="latest",
            opts=pulumi.InvokeOutputOptions(parent=self),
        ).secret_data
        self.channel = self.declare(monitoring.NotificationChannel, "channel")(
            project=args.project,
            display_name=f"{args.prefix} alerts: Slack {args.channel}",
            type="slack",
            labels={"channel_name": args.channel},
            sensitive_labels=monitoring.NotificationChannelSensitiveLabelsArgs(
                auth_token=pulumi.Output.secret(token)
            ),
        )
        self.register_outputs({"channel": self.channel.id})
