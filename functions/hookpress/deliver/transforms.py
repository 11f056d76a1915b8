"""From a provider's payload to the WordPress record.

The WordPress endpoint takes ``{source, external_id, status, summary,
metadata, occurred_at}``. ``external_id`` is always the provider event id
and ``source`` the source name; the rest comes from a transform:

- a per-source hook, registered with :func:`register` (the place to put a
  mapping for one integration), else
- the default for the source's provider (:data:`BY_PROVIDER`: OpenAI,
  Replicate, fal.ai, ElevenLabs, Clerk, Resend, Paddle, Twilio, Stripe, …),
  else the default for its scheme, else
- the generic mapping: ``status`` from the payload's ``status`` or ``type``,
  ``summary`` from ``summary``/``description``/``message``, ``metadata`` from
  ``metadata``, ``occurred_at`` from ``occurred_at``/``created_at``/``created``.

Whatever a transform returns is normalised by :func:`build_record`: the
summary cut to 2,000 characters, the status to 64 without control
characters, the metadata to a JSON object of bounded size whose integers
beyond ±(2**53 - 1) become strings (I-JSON, RFC 7493: PHP would read them as
floats), ``occurred_at`` to RFC 3339 UTC. A URL in a payload is data like any
other string: nothing here fetches anything.

A field that is not a time at all (``"soon"``, ``true``, an object) is
ignored and the receipt time stands. A payload no transform can make a
record of raises :class:`UnusablePayload`, with a reason: a time outside
years 1-9999 (``created: 1e20``, ``"1e400"``, year 1 at +01:00), a transform
that raises or returns something other than a dict. Deliver marks that event
``failed`` at once: retrying the same bytes cannot help.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

__all__ = [
    "Event",
    "Transform",
    "UnusablePayload",
    "build_body",
    "build_record",
    "encode_record",
    "register",
]

SUMMARY_CHARS = 2_000
STATUS_CHARS = 64
METADATA_BYTES = 32 * 1024
#: the integers every JSON reader holds exactly (RFC 7493 section 2.2)
SAFE_INTEGER = 2**53 - 1
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./:-]{0,63}")


class UnusablePayload(ValueError):
    """This payload cannot become a WordPress record; ``reason`` says why (logged, recorded)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Event(msgspec.Struct, frozen=True):
    """What a transform sees: the record's facts and the parsed payload."""

    source: str
    scheme: str
    provider_event_id: str
    event_type: str | None
    payload: dict[str, Any]
    received_at: datetime
    provider: str = ""  # empty for records written before providers existed: the scheme decides


# A transform returns any of status, summary, metadata, occurred_at.
Transform = Callable[[Event], dict[str, Any]]

_BY_SOURCE: dict[str, Transform] = {}


def register(source: str) -> Callable[[Transform], Transform]:
    """Decorator: use ``fn`` for events of ``source`` instead of the scheme default."""

    def add(fn: Transform) -> Transform:
        _BY_SOURCE[source] = fn
        return fn

    return add


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _label(value: Any) -> str | None:
    """An unsigned type header (X-GitHub-Event, X-Shopify-Topic) if it looks like one.

    The header is not covered by the signature: it may name the event, but a
    value no provider sends (markup, spaces) must not decide anything, not
    even that WordPress refuses the record, so it is dropped for the default.
    """
    return value if isinstance(value, str) and _LABEL.fullmatch(value) else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dig(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _epoch(seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise UnusablePayload("occurred_at_out_of_range") from None


def _utc(value: datetime) -> datetime:
    """In UTC (a naive time is taken as UTC); years 1-9999 once there, else UnusablePayload."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise UnusablePayload("occurred_at_out_of_range") from None


def _when(value: Any) -> datetime | None:
    """Epoch seconds (int, float or numeric string) or an ISO 8601 string; None if not a time."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _epoch(value)
    if isinstance(value, str) and value:
        text = value.strip()
        if _NUMBER.match(text):
            return _epoch(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return _utc(parsed)
    return None


def generic(event: Event) -> dict[str, Any]:
    """The original mapping, for payloads that carry their own status and summary."""
    p = event.payload
    status = _str(p.get("status")) or _str(p.get("type")) or _label(event.event_type) or "received"
    summary = (
        _str(p.get("summary"))
        or _str(p.get("description"))
        or _str(p.get("message"))
        or f"{status} {event.provider_event_id}"
    )
    metadata = _obj(p.get("metadata"))
    occurred = _when(p.get("occurred_at")) or _when(p.get("created_at")) or _when(p.get("created"))
    return {"status": status, "summary": summary, "metadata": metadata, "occurred_at": occurred}


def stripe(event: Event) -> dict[str, Any]:
    """Stripe events: ``type`` is the status, ``data.object`` what it is about."""
    p = event.payload
    obj = _obj(_dig(p, "data", "object"))
    kind = _str(p.get("type")) or "stripe.event"
    label = " ".join(x for x in (_str(obj.get("object")), _str(obj.get("id"))) if x)
    return {
        "status": kind,
        "summary": f"{kind}: {label}" if label else kind,
        "metadata": {
            "object": obj.get("object"),
            "object_id": obj.get("id"),
            "livemode": p.get("livemode"),
            "api_version": p.get("api_version"),
            **({"amount": obj["amount"]} if isinstance(obj.get("amount"), int) else {}),
            **({"currency": obj["currency"]} if _str(obj.get("currency")) else {}),
        },
        "occurred_at": _when(p.get("created")),
    }


def standard_webhooks(event: Event) -> dict[str, Any]:
    """Standard Webhooks senders (OpenAI, Replicate, Svix): ``type`` + ``data``."""
    p = event.payload
    kind = _str(p.get("type")) or _str(p.get("status")) or "event"
    data = _obj(p.get("data"))
    subject = _str(data.get("id"))
    base = generic(event)
    return {
        "status": kind,
        "summary": _str(p.get("summary")) or (f"{kind}: {subject}" if subject else kind),
        "metadata": base["metadata"] or {"data_id": subject, "object": p.get("object")},
        "occurred_at": _when(p.get("created_at")) or _when(p.get("timestamp")),
    }


def github(event: Event) -> dict[str, Any]:
    """GitHub: the event type comes from X-GitHub-Event, refined by ``action``."""
    p = event.payload
    kind = _label(event.event_type) or "github"
    action = _str(p.get("action"))
    repo = _str(_dig(p, "repository", "full_name"))
    sender = _str(_dig(p, "sender", "login"))
    status = f"{kind}.{action}" if action else kind
    summary = " ".join(x for x in (status, repo and f"on {repo}", sender and f"by {sender}") if x)
    return {
        "status": status,
        "summary": summary,
        "metadata": {"repository": repo, "sender": sender, "action": action},
        "occurred_at": None,  # GitHub sends no event time; the receipt time stands in
    }


def slack(event: Event) -> dict[str, Any]:
    """Slack Events API: ``event.type`` and ``event_time``."""
    p = event.payload
    inner = _obj(p.get("event"))
    kind = _str(inner.get("type")) or _str(p.get("type")) or "slack.event"
    return {
        "status": kind,
        "summary": _str(inner.get("text")) or kind,
        "metadata": {"team_id": p.get("team_id"), "channel": inner.get("channel")},
        "occurred_at": _when(p.get("event_time")),
    }


def shopify(event: Event) -> dict[str, Any]:
    """Shopify: the topic comes from X-Shopify-Topic."""
    p = event.payload
    kind = _label(event.event_type) or "shopify"
    name = _str(p.get("name")) or _str(str(p.get("id"))) or ""
    return {
        "status": kind,
        "summary": f"{kind} {name}".strip(),
        "metadata": {"admin_graphql_api_id": p.get("admin_graphql_api_id")},
        "occurred_at": _when(p.get("updated_at")) or _when(p.get("created_at")),
    }


BY_SCHEME: dict[str, Transform] = {
    "stripe": stripe,
    "standard-webhooks": standard_webhooks,
    "github": github,
    "slack": slack,
    "shopify": shopify,
    "hmac-timestamp": generic,
}


# -- providers ------------------------------------------------------------------------


def replicate(event: Event) -> dict[str, Any]:
    """Replicate: the prediction object itself; ``status`` moves starting → succeeded."""
    p = event.payload
    status = _str(p.get("status")) or "prediction"
    model = _str(p.get("model"))
    pid = _str(p.get("id"))
    return {
        "status": f"prediction.{status}",
        "summary": " ".join(x for x in (f"prediction {pid}" if pid else None, status, model) if x),
        "metadata": {
            "prediction_id": pid,
            "model": model,
            "version": _str(p.get("version")),
            "error": _str(p.get("error")),
            "predict_time": _dig(p, "metrics", "predict_time"),
        },
        "occurred_at": _when(p.get("completed_at")) or _when(p.get("created_at")),
    }


def fal(event: Event) -> dict[str, Any]:
    """fal.ai: ``status`` OK or ERROR for one queued request; no event time is sent."""
    p = event.payload
    status = (_str(p.get("status")) or "unknown").lower()
    request_id = _str(p.get("request_id"))
    return {
        "status": f"request.{status}",
        "summary": f"fal request {request_id} {status}" if request_id else f"fal request {status}",
        "metadata": {
            "request_id": request_id,
            "gateway_request_id": _str(p.get("gateway_request_id")),
            "error": _str(p.get("error")),
        },
        "occurred_at": None,
    }


class TypedEvent(msgspec.Struct, frozen=True):
    """A payload that names its kind in one field and what it is about in ``data``.

    ElevenLabs, Clerk, Resend and Paddle differ only in these field names: the
    status is the kind, the summary ``"{kind}: {subject}"``, the metadata a
    few picked strings.
    """

    kind_field: str
    default_kind: str
    subject: str  # the field of ``data`` the summary names
    metadata: dict[str, tuple[str, ...]]  # metadata key -> path in the payload
    occurred: str | None = None  # the payload field with the event time
    millis: bool = False  # that time is integer milliseconds since the epoch

    def __call__(self, event: Event) -> dict[str, Any]:
        p = event.payload
        kind = _str(p.get(self.kind_field)) or self.default_kind
        subject = _str(_dig(p, "data", self.subject))
        return {
            "status": kind,
            "summary": f"{kind}: {subject}" if subject else kind,
            "metadata": {key: _str(_dig(p, *path)) for key, path in self.metadata.items()},
            "occurred_at": self._occurred(p),
        }

    def _occurred(self, payload: dict[str, Any]) -> datetime | None:
        if self.occurred is None:
            return None
        stamp = payload.get(self.occurred)
        if not self.millis:
            return _when(stamp)
        if isinstance(stamp, int) and not isinstance(stamp, bool):
            try:
                seconds = stamp / 1000  # an int beyond a float's range cannot be divided
            except OverflowError:
                raise UnusablePayload("occurred_at_out_of_range") from None
            return _when(seconds)
        return None


#: ElevenLabs: one conversation.
elevenlabs = TypedEvent(
    "type",
    "elevenlabs.event",
    "conversation_id",
    {
        "agent_id": ("data", "agent_id"),
        "conversation_id": ("data", "conversation_id"),
        "status": ("data", "status"),
    },
    occurred="event_timestamp",
)
#: Clerk (Svix): ``timestamp`` is in milliseconds.
clerk = TypedEvent(
    "type",
    "clerk.event",
    "id",
    {
        "object": ("data", "object"),
        "object_id": ("data", "id"),
        "instance_id": ("instance_id",),
    },
    occurred="timestamp",
    millis=True,
)
#: Resend (Svix): one e-mail (addresses are not copied).
resend = TypedEvent(
    "type", "resend.event", "email_id", {"email_id": ("data", "email_id")}, occurred="created_at"
)
#: Paddle Billing: ``data`` is a transaction, subscription, ...
paddle = TypedEvent(
    "event_type",
    "paddle.event",
    "id",
    {
        "notification_id": ("notification_id",),
        "object_id": ("data", "id"),
        "object_status": ("data", "status"),
    },
    occurred="occurred_at",
)


def twilio(event: Event) -> dict[str, Any]:
    """Twilio status callbacks (a form): a message's or call's status; no event time."""
    p = event.payload
    sid = _str(p.get("MessageSid")) or _str(p.get("CallSid")) or _str(p.get("SmsSid"))
    status = (
        _str(p.get("MessageStatus"))
        or _str(p.get("CallStatus"))
        or _str(p.get("SmsStatus"))
        or "received"
    )
    what = "call" if _str(p.get("CallSid")) else "message"
    return {
        "status": f"{what}.{status}",
        "summary": f"{what} {sid} {status}" if sid else f"{what} {status}",
        "metadata": {
            "account_sid": _str(p.get("AccountSid")),
            "sid": sid,
            "error_code": _str(p.get("ErrorCode")),
        },
        "occurred_at": None,
    }


BY_PROVIDER: dict[str, Transform] = {
    "openai": standard_webhooks,
    "replicate": replicate,
    "fal": fal,
    "elevenlabs": elevenlabs,
    "clerk": clerk,
    "resend": resend,
    "paddle": paddle,
    "twilio": twilio,
    "svix": standard_webhooks,
    **BY_SCHEME,
}


def _safe_integers(value: Any) -> Any:
    """Integers beyond the exactly representable range as strings, everywhere in ``value``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -SAFE_INTEGER <= value <= SAFE_INTEGER else str(value)
    if isinstance(value, dict):
        return {k: _safe_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_safe_integers(v) for v in value]
    return value


def _metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    clean = {str(k): v for k, v in value.items() if v is not None}
    text = json.dumps(clean, default=str)  # once: measured, then read back as JSON types only
    if len(text.encode()) > METADATA_BYTES:
        return {"truncated": True}
    plain: dict[str, Any] = json.loads(text)
    return dict(_safe_integers(plain))


def build_record(event: Event) -> dict[str, Any]:
    """The body POSTed to ``ai-guy/v1/ingest``; UnusablePayload if there can be none."""
    return build_body(event)[0]


def encode_record(record: dict[str, Any]) -> bytes:
    """A record as it is POSTed: compact JSON, UTF-8."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build_body(event: Event) -> tuple[dict[str, Any], bytes]:
    """:func:`build_record` and the bytes to POST, encoded once (the check that it encodes)."""
    transform = (
        _BY_SOURCE.get(event.source)
        or BY_PROVIDER.get(event.provider)
        or BY_SCHEME.get(event.scheme, generic)
    )
    try:
        out = transform(event)
        if not isinstance(out, dict):
            raise UnusablePayload(f"transform_returned_{type(out).__name__}")
        status = _CONTROL.sub(" ", _str(out.get("status")) or "").strip() or "received"
        summary = _str(out.get("summary")) or ""
        occurred = out.get("occurred_at")
        when = _utc(occurred) if isinstance(occurred, datetime) else _when(occurred)
        record = {
            "source": event.source,
            "external_id": event.provider_event_id,
            "status": status[:STATUS_CHARS],
            "summary": summary[:SUMMARY_CHARS],
            "metadata": _metadata(out.get("metadata")),
            "occurred_at": (when or _utc(event.received_at)).isoformat(timespec="seconds"),
        }
        content = encode_record(record)  # what will be sent must encode
    except UnusablePayload:
        raise
    except Exception as exc:  # noqa: BLE001 - any exception: see below
        # A transform is code written for one integration (a per-source hook, say):
        # whatever it raises on this payload, it will raise again on every retry.
        raise UnusablePayload(f"transform_failed:{type(exc).__name__}") from None
    return record, content
