"""Firestore's JSON value encoding (the REST API's ``Value``), both ways.

https://cloud.google.com/firestore/docs/reference/rest/v1/Value: every value
is an object with one key naming its type — ``stringValue``,
``integerValue`` (a decimal string: 64-bit), ``doubleValue``,
``booleanValue``, ``nullValue``, ``timestampValue`` (RFC 3339, up to
nanoseconds), ``mapValue`` ``{fields}``, ``arrayValue`` ``{values}``,
``bytesValue`` (base64).

Server timestamps are read as :class:`ServerTime`: a ``datetime`` (to the
microsecond, as Python keeps it) that also keeps the server's exact text, so
a precondition on a document's update time repeats it to the nanosecond.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["Increment", "ServerTime", "decode_fields", "encode_fields", "rfc3339"]


class ServerTime(datetime):
    """A timestamp as Firestore wrote it: a UTC datetime plus the exact RFC 3339 text."""

    __slots__ = ("text",)
    text: str

    @classmethod
    def parse(cls, text: str) -> ServerTime:
        """``2026-01-02T03:04:05.123456789Z`` (any fraction length, ``Z`` or an offset)."""
        if text[-1:] == "Z":
            # What Firestore sends: fromisoformat (3.11+) takes the Z and cuts a fraction
            # past six digits, as the general path below does, in one call, not three.
            with contextlib.suppress(ValueError):
                value = cls.fromisoformat(text)
                value.text = text
                return value
        stamp = text.strip()
        zone = "+00:00"
        if stamp.endswith(("Z", "z")):
            stamp = stamp[:-1]
        elif len(stamp) > 6 and stamp[-6] in "+-" and stamp[-3] == ":":
            stamp, zone = stamp[:-6], stamp[-6:]
        whole, _, fraction = stamp.partition(".")
        micros = (fraction + "000000")[:6] if fraction else "000000"
        parsed = datetime.fromisoformat(f"{whole}.{micros}{zone}").astimezone(UTC)
        value = cls(
            parsed.year,
            parsed.month,
            parsed.day,
            parsed.hour,
            parsed.minute,
            parsed.second,
            parsed.microsecond,
            tzinfo=UTC,
        )
        value.text = text
        return value


def rfc3339(value: datetime) -> str:
    """The RFC 3339 form Firestore takes: a server time's own text, else UTC to the microsecond."""
    if isinstance(value, ServerTime):
        return value.text
    if type(value) is datetime and value.tzinfo is UTC:  # our own stamps: the common case
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
    exact = getattr(value, "rfc3339", None)  # the client library's DatetimeWithNanoseconds
    if callable(exact):
        return str(exact())
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class Increment:
    """A server-side increment of a numeric field (a field transform, not a value)."""

    __slots__ = ("by",)

    def __init__(self, by: int) -> None:
        self.by = by

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Increment) and other.by == self.by

    def __hash__(self) -> int:
        return hash(("increment", self.by))

    def __repr__(self) -> str:
        return f"Increment({self.by})"


def _encode(value: Any) -> dict[str, Any]:
    kind = type(value)  # the common exact types first: this runs for every field of every write
    if kind is str:
        return {"stringValue": value}
    if kind is int:
        return {"integerValue": str(value)}
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, datetime):
        return {"timestampValue": rfc3339(value)}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {"mapValue": {"fields": encode_fields(value)}}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_encode(v) for v in value]}}
    raise TypeError(f"cannot store a {type(value).__name__} in Firestore")


def encode_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A document's ``fields`` from a dict (no :class:`Increment` here: those are transforms)."""
    return {name: _encode(value) for name, value in fields.items()}


def _decode(value: Mapping[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "timestampValue" in value:
        return ServerTime.parse(value["timestampValue"])
    if "integerValue" in value:
        return int(value["integerValue"])
    if "nullValue" in value:
        return None
    if "booleanValue" in value:
        return bool(value["booleanValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "mapValue" in value:
        return decode_fields(value["mapValue"].get("fields", {}))
    if "arrayValue" in value:
        return [_decode(v) for v in value["arrayValue"].get("values", [])]
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"])
    if "referenceValue" in value:
        return value["referenceValue"]
    if "geoPointValue" in value:
        return dict(value["geoPointValue"])
    raise ValueError(f"unknown Firestore value type: {sorted(value)}")


def decode_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A dict from a document's ``fields``."""
    return {name: _decode(value) for name, value in fields.items()}
