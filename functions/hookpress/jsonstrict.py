"""Strict JSON for webhook bodies: one object, no ambiguity, bounded depth.

``parse_object`` accepts only what every JSON parser downstream would read
the same way. It refuses, with :class:`MalformedBody`:

- bytes that are not UTF-8 (a BOM included);
- anything but an object at the top;
- duplicate keys (parsers disagree on which one wins);
- ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON, though Python accepts them);
- lone surrogates such as ``"\\ud800"`` (valid JSON escapes, invalid Unicode);
- nesting deeper than ``max_depth``.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["DEFAULT_MAX_DEPTH", "MalformedBody", "parse_object"]

DEFAULT_MAX_DEPTH = 64
# A lone surrogate can only come from an escape; valid pairs are joined by the
# parser. Only bodies containing such an escape need the slower string walk.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class MalformedBody(Exception):
    """The body is not one strict JSON object. ``reason`` is a short code for logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedBody("duplicate_key")
    return obj


def _constant(name: str) -> Any:
    raise MalformedBody("non_finite_number")


# Built once: json.loads with any argument builds a new decoder on every call (as the
# standard library's own default decoder, one instance serves every thread).
_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_constant)


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_tree(root: dict[str, Any], max_depth: int, strings: bool) -> None:
    # Iterative: a recursive walk would itself be the stack overflow we guard against.
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise MalformedBody("too_deep")
        if isinstance(node, dict):
            for key, value in node.items():
                if strings and _has_lone_surrogate(key):
                    raise MalformedBody("lone_surrogate")
                if isinstance(value, dict | list):
                    stack.append((value, depth + 1))
                elif strings and isinstance(value, str) and _has_lone_surrogate(value):
                    raise MalformedBody("lone_surrogate")
        else:
            for value in node:
                if isinstance(value, dict | list):
                    stack.append((value, depth + 1))
                elif strings and isinstance(value, str) and _has_lone_surrogate(value):
                    raise MalformedBody("lone_surrogate")


def parse_object(body: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """Parse ``body`` as one strict JSON object or raise MalformedBody."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("not_utf8") from None
    if text.startswith("\ufeff"):
        raise MalformedBody("bom")
    try:
        value = _DECODER.decode(text)
    except MalformedBody:
        raise
    except RecursionError:
        raise MalformedBody("too_deep") from None
    except ValueError:
        raise MalformedBody("not_json") from None
    if not isinstance(value, dict):
        raise MalformedBody("not_an_object")
    _check_tree(value, max_depth, strings=_SURROGATE_ESCAPE.search(body) is not None)
    return value
