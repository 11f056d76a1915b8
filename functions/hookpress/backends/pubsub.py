"""Publishing event keys to the ``events`` topic."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from hookpress.backends._errors import BackendError

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient

__all__ = ["EventPublisher", "message_data"]


def message_data(key: str, payload: Mapping[str, Any] | None = None) -> bytes:
    """The message body: the key (deliver reads everything else from the record).

    ``payload`` is added only for the warehouse's BigQuery subscription
    (``HOOKPRESS_MESSAGE_PAYLOAD``); deliver ignores it.
    """
    body: dict[str, Any] = {"event_key": key}
    if payload is not None:
        body["payload"] = payload
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class EventPublisher:
    """Publishes ``{"event_key": …}`` and waits for the server's ack."""

    def __init__(
        self,
        project: str,
        topic: str,
        timeout_s: float,
        max_latency_s: float = 0.005,
        client: PublisherClient | None = None,
    ) -> None:
        self._project = project
        self._topic = topic
        self._timeout = timeout_s
        self._max_latency = max_latency_s
        self._client = client
        self._path: str | None = None
        self._lock = threading.Lock()

    def _get_client(self) -> tuple[PublisherClient, str]:
        with self._lock:
            if self._client is None:
                from google.cloud import pubsub_v1

                # A short batching window: the caller waits for the ack before
                # answering the provider, so latency matters more than batch size.
                self._client = pubsub_v1.PublisherClient(
                    batch_settings=pubsub_v1.types.BatchSettings(
                        max_latency=self._max_latency, max_messages=100
                    )
                )
            if self._path is None:
                self._path = self._client.topic_path(self._project, self._topic)
            return self._client, self._path

    def publish(
        self,
        key: str,
        source: str,
        attributes: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> str:
        """Publish the key; the message id once Pub/Sub has it, else BackendError.

        ``attributes`` (:func:`hookpress.events.message_attributes`) label the
        message: the lane subscriptions filter on ``lane``.
        """
        client, path = self._get_client()
        labels = {**(attributes or {}), "event_key": key, "source": source}
        try:
            future = client.publish(path, message_data(key, payload), **labels)
            message_id: str = future.result(timeout=self._timeout)
        except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, FutureTimeout, OSError) as exc:
            raise BackendError("pubsub", type(exc).__name__) from None
        return message_id
