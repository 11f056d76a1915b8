"""The Pub/Sub push envelope: what a push request must look like."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import msgspec

__all__ = ["MalformedEnvelope", "PushMessage", "parse_envelope"]

_KEY = re.compile(r"^[0-9a-f]{64}$")


class MalformedEnvelope(Exception):
    """Not a push envelope carrying an event key; answered 400."""


class PushMessage(msgspec.Struct, frozen=True):
    """The parts of a push we use."""

    event_key: str
    message_id: str | None
    subscription: str | None
    delivery_attempt: int | None  # absent on the emulator and without a dead-letter policy
    attributes: dict[str, str] = msgspec.field(default_factory=dict)


def parse_envelope(body: bytes) -> PushMessage:
    """Parse ``{"message": {"data": …, "attributes": …, "messageId": …}, "subscription": …}``."""
    try:
        envelope: Any = json.loads(body)
    except ValueError:
        raise MalformedEnvelope("not_json") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("message"), dict):
        raise MalformedEnvelope("no_message")
    message = envelope["message"]
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise MalformedEnvelope("bad_attributes")
    key: Any = None
    data = message.get("data")
    if isinstance(data, str) and data:
        try:
            decoded = json.loads(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError):
            raise MalformedEnvelope("bad_data") from None
        if isinstance(decoded, dict):
            key = decoded.get("event_key")
    if key is None:
        key = attributes.get("event_key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise MalformedEnvelope("no_event_key")
    attempt = envelope.get("deliveryAttempt")
    subscription = envelope.get("subscription")
    message_id = message.get("messageId") or message.get("message_id")
    return PushMessage(
        event_key=key,
        message_id=message_id if isinstance(message_id, str) else None,
        subscription=subscription if isinstance(subscription, str) else None,
        delivery_attempt=attempt if isinstance(attempt, int) else None,
        attributes={str(k): str(v) for k, v in attributes.items()},
    )
