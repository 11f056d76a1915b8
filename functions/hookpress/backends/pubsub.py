"""Publishing event keys to the ``events`` topic.

``topics.publish`` over Pub/Sub's REST API
(https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.topics/publish)
on a pooled connection (:mod:`hookpress.backends._rest`); a caller returns
with its message id once Pub/Sub has stored the message. Keys published by
concurrent requests while a call is in flight go together in the next call
(:mod:`hookpress.backends._batch`): no batching window, no background thread.
The client library's publisher batches with both (a commit thread, a future
and a condition per message, a window the caller waits out); measured here
(bench/results/candidates.md), the direct call costs a fraction of its CPU.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, TypedDict

from hookpress.backends._auth import LazyEndpoint
from hookpress.backends._batch import GroupCall
from hookpress.backends._errors import BackendError
from hookpress.backends._json import json_body

if TYPE_CHECKING:
    import threading
    from collections.abc import Mapping, Sequence

    from hookpress.backends._rest import Endpoint

__all__ = ["EventPublisher", "Message", "event_message", "message_data"]

# A publish request takes up to 1,000 messages and 10 MB in all
# (https://cloud.google.com/pubsub/quotas#resource_limits). Messages are counted
# by their base64 text, which is longer than the bytes Pub/Sub counts: a batch
# of carried payloads (``includePayload``) stays under the limit, and a message
# as large as the limit still goes, alone.
_BATCH_MESSAGES = 100
_BATCH_BYTES = 9_000_000


def message_data(key: str, payload: Mapping[str, Any] | None = None) -> bytes:
    """The message body: the key (deliver reads everything else from the record).

    ``payload`` is added only for the warehouse's BigQuery subscription
    (``HOOKPRESS_MESSAGE_PAYLOAD``); deliver ignores it.
    """
    body: dict[str, Any] = {"event_key": key}
    if payload is not None:
        body["payload"] = payload
    return json_body(body)


class Message(TypedDict):
    """A ``PubsubMessage`` as the REST API takes it: base64 data and string attributes
    (https://cloud.google.com/pubsub/docs/reference/rest/v1/PubsubMessage)."""

    data: str
    attributes: dict[str, str]


def event_message(
    key: str,
    source: str,
    attributes: Mapping[str, str] | None = None,
    payload: Mapping[str, Any] | None = None,
) -> Message:
    """The message that announces ``key``: :func:`message_data` as its data, and
    ``attributes`` (:func:`hookpress.events.message_attributes`) with the key and the
    source as its labels (the lane subscriptions filter on ``lane``)."""
    return {
        "data": base64.b64encode(message_data(key, payload)).decode("ascii"),
        "attributes": {**(attributes or {}), "event_key": key, "source": source},
    }


def _message_size(message: Message) -> int:
    return len(message["data"])


class EventPublisher:
    """Publishes ``{"event_key": …}`` and waits for the server's ack."""

    def __init__(
        self,
        project: str,
        topic: str,
        timeout_s: float,
        endpoint: Endpoint | None = None,
    ) -> None:
        self._project = project
        self._topic = topic
        self._rest = LazyEndpoint("pubsub", timeout_s, endpoint)
        self._path = f"/v1/projects/{project}/topics/{topic}:publish"
        # publishes from concurrent requests, grouped under Pub/Sub's request limits
        self._publishes: GroupCall[Message, str] = GroupCall(
            "pubsub",
            self._send,
            max_items=_BATCH_MESSAGES,
            wait_s=3 * timeout_s,
            size=_message_size,
            max_size=_BATCH_BYTES,
        )

    def warm(self) -> list[threading.Thread]:
        """Open a connection (and ask for the token) ahead of the first publish, in threads
        (:meth:`hookpress.wire.Endpoint.warm`)."""
        return self._rest().warm()

    @property
    def topic_path(self) -> str:
        """``projects/P/topics/T``."""
        return f"projects/{self._project}/topics/{self._topic}"

    def _send(self, messages: Sequence[Message]) -> list[str | BackendError]:
        body = json_body({"messages": list(messages)}, ascii_only=True)
        answer = self._rest().request(
            "POST", self._path, body, {"Content-Type": "application/json"}
        )
        if answer.status != 200:
            raise BackendError("pubsub", f"HTTP_{answer.status}")
        try:
            ids = answer.json()["messageIds"]
            if len(ids) != len(messages):
                raise ValueError("message ids")
            return [str(i) for i in ids]
        except (ValueError, KeyError, TypeError):
            raise BackendError("pubsub", "unreadable publish response") from None

    def publish(
        self,
        key: str,
        source: str,
        attributes: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> str:
        """Publish :func:`event_message`; the message id once Pub/Sub has it, else BackendError."""
        return self.send(event_message(key, source, attributes, payload))

    def send(self, message: Message) -> str:
        """Publish one message as built (the seam the local stack's publishers wrap)."""
        return self._publishes(message)
