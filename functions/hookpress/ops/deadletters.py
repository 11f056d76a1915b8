"""The dead-letter pull subscription (``events-dead-pull``): pull, ack, give back.

A message is acknowledged only after its event has been sent to delivery
again (or is already delivered); anything else is given back at the end of a
run (ack deadline 0), so it is there for the next attempt or for inspection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from hookpress.backends import BackendError
from hookpress.instance import Lazy

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import SubscriberClient

__all__ = ["DeadLetter", "DeadLetters", "PubSubDeadLetters", "event_key_of"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One pulled message: its ack id, message id and the event key it carries (if any)."""

    ack_id: str
    message_id: str
    event_key: str | None
    published_at: datetime | None = None  # when it reached the dead-letter topic


class DeadLetters(Protocol):
    """What replay needs from a dead-letter subscription."""

    def pull(self, max_messages: int) -> list[DeadLetter]:
        """Up to ``max_messages`` messages; empty when none are waiting."""
        ...

    def ack(self, ack_ids: list[str]) -> None:
        """Remove these messages for good."""
        ...

    def release(self, ack_ids: list[str]) -> None:
        """Give these messages back at once (they stay in the subscription)."""
        ...


def event_key_of(data: bytes, attributes: dict[str, str]) -> str | None:
    """The event key of a message: the ``event_key`` attribute, else the JSON body's."""
    key = attributes.get("event_key")
    if not key:
        try:
            body = json.loads(data)
        except ValueError:
            return None
        key = body.get("event_key") if isinstance(body, dict) else None
    if isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key):
        return key
    return None


def _subscriber() -> SubscriberClient:
    from google.cloud import pubsub_v1

    return pubsub_v1.SubscriberClient()


class PubSubDeadLetters:
    """A Pub/Sub pull subscription. The client is built on first use."""

    def __init__(
        self,
        project: str,
        subscription: str,
        timeout_s: float,
        client: SubscriberClient | None = None,
        *,
        pull_wait_s: float = 5.0,
    ) -> None:
        self._timeout = timeout_s
        # A pull with nothing waiting returns empty only when this runs out.
        self._pull_wait = pull_wait_s
        self._client = Lazy(_subscriber, client)
        self._path = f"projects/{project}/subscriptions/{subscription}"

    def _call(self, method: str, request: dict[str, Any]) -> Any:
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as auth_exc

        timeout = self._pull_wait if method == "pull" else self._timeout
        try:
            return getattr(self._client(), method)(
                request={"subscription": self._path, **request}, timeout=timeout
            )
        except gexc.DeadlineExceeded:
            if method == "pull":
                return None  # nothing arrived in time: an empty pull
            raise BackendError("pubsub", "DeadlineExceeded") from None
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, OSError) as exc:
            raise BackendError("pubsub", type(exc).__name__) from None

    def pull(self, max_messages: int) -> list[DeadLetter]:
        response = self._call("pull", {"max_messages": max_messages})
        if response is None:
            return []
        return [
            DeadLetter(
                ack_id=m.ack_id,
                message_id=m.message.message_id,
                event_key=event_key_of(m.message.data, dict(m.message.attributes)),
                published_at=_when(m.message),
            )
            for m in response.received_messages
        ]

    def ack(self, ack_ids: list[str]) -> None:
        if ack_ids:
            self._call("acknowledge", {"ack_ids": ack_ids})

    def release(self, ack_ids: list[str]) -> None:
        if ack_ids:
            self._call("modify_ack_deadline", {"ack_ids": ack_ids, "ack_deadline_seconds": 0})


def _when(message: Any) -> datetime | None:
    """The message's publish time as an aware datetime (the client hands back a proto time)."""
    value = getattr(message, "publish_time", None)
    if isinstance(value, datetime):
        return value
    to_datetime = getattr(value, "ToDatetime", None)
    if to_datetime is None:
        return None
    from datetime import UTC

    result: datetime = to_datetime(tzinfo=UTC)
    return result
