"""Body formats: from the exact bytes a provider sent to one payload object.

Most providers post JSON, read by :func:`hookpress.jsonstrict.parse_object`.
Twilio posts ``application/x-www-form-urlencoded``; it is read here with the
same strictness:

- ASCII only (a form body is percent-encoded; raw 8-bit bytes are not a form);
- every ``%XX`` escape valid and the decoded text UTF-8 (no lone surrogates);
- every field ``name=value`` (an empty value is allowed, a bare name is not);
- at most :data:`MAX_FIELDS` fields;
- for the payload object, no name twice (parsers disagree on which one wins).
  The signature check (:func:`form_pairs`) still sees every pair, as Twilio's
  library does, so a duplicate is a 400, not a 401.

``+`` is a space, as every form decoder reads it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from hookpress.jsonstrict import MalformedBody, parse_object

__all__ = ["FORMATS", "MAX_FIELDS", "MalformedBody", "form_pairs", "parse_form", "parse_payload"]

MAX_FIELDS = 1_000
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
FORMATS = frozenset({"json", "form"})


def form_pairs(body: bytes, *, limit: int = MAX_FIELDS) -> list[tuple[str, str]]:
    """Every ``(name, value)`` of a form body, in order; MalformedBody if it is not one."""
    if not body:
        return []
    if not body.isascii():
        raise MalformedBody("form_not_ascii")
    if _BAD_ESCAPE.search(body):
        raise MalformedBody("form_bad_escape")
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=limit,
        )
    except UnicodeDecodeError:
        raise MalformedBody("form_not_utf8") from None
    except ValueError:
        raise MalformedBody("form_malformed") from None
    for name, _ in pairs:
        if not name:
            raise MalformedBody("form_malformed")
    return pairs


def parse_form(body: bytes) -> dict[str, Any]:
    """A form body as one object of strings; duplicate names are refused."""
    pairs = form_pairs(body)
    obj: dict[str, Any] = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedBody("duplicate_key")
    return obj


def parse_payload(body: bytes, body_format: str = "json") -> dict[str, Any]:
    """The payload object of ``body`` in ``body_format`` (``json`` or ``form``)."""
    if body_format == "form":
        return parse_form(body)
    return parse_object(body)
