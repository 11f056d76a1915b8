"""Pub/Sub topics: ``events`` (ingress → deliver) and ``events-dead`` with its pull subscription.

Messages that exhaust their delivery attempts land on ``events-dead``; its
pull subscription keeps them 7 days for ``hookpress`` tooling and alerting
(the record itself stays in Firestore as ``dead`` and the payload in GCS, so
replay does not depend on this backlog). Pub/Sub forwards dead letters as
its own service agent, which therefore publishes to ``events-dead``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_gcp import pubsub

from infra.base import Built

__all__ = ["DEAD_LETTER_RETENTION", "Messaging", "MessagingArgs"]

DEAD_LETTER_RETENTION = "604800s"  # 7 days, the longest Pub/Sub keeps unacked messages


@dataclass(frozen=True)
class MessagingArgs:
    """Topic names and who forwards dead letters."""

    project: str
    pubsub_agent_member: pulumi.Input[str]
    labels: dict[str, str]
    events_topic: str = "events"
    dead_topic: str = "events-dead"


class Messaging(Built[MessagingArgs]):
    """The events topic, the dead-letter topic, its pull subscription and the agent's grant."""

    KIND = "Messaging"

    def build(self, args: MessagingArgs) -> None:
        topics = {"events": args.events_topic, "events-dead": args.dead_topic}
        self.events, self.dead = (
            self.declare(pubsub.Topic, child)(project=args.project, name=name, labels=args.labels)
            for child, name in topics.items()
        )
        self.dead_pull = self.declare(pubsub.Subscription, "events-dead-pull")(
            project=args.project,
            name=f"{args.dead_topic}-pull",
            topic=self.dead.id,
            ack_deadline_seconds=60,
            message_retention_duration=DEAD_LETTER_RETENTION,
            retain_acked_messages=False,
            # Never expire for inactivity: a quiet dead-letter queue is the good case.
            expiration_policy=pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
            labels=args.labels,
        )
        self.dead_publisher = self.declare(pubsub.TopicIAMMember, "events-dead-agent-publisher")(
            project=args.project,
            topic=self.dead.name,
            role="roles/pubsub.publisher",
            member=args.pubsub_agent_member,
        )
        self.register_outputs(
            {
                "eventsTopic": self.events.name,
                "deadTopic": self.dead.name,
                "deadSubscription": self.dead_pull.name,
            }
        )
