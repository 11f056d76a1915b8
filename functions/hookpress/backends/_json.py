"""Request bodies for the Google JSON APIs: compact JSON in UTF-8.

Its own module, importing nothing but :mod:`json`: every adapter builds bodies,
while the wire (:mod:`hookpress.backends._rest`, with :mod:`ssl`) is imported
only when the first call goes out.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_body"]

# Built once: json.dumps with any argument builds a new encoder on every call.
_UTF8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_ASCII = json.JSONEncoder(separators=(",", ":"))


def json_body(value: Any, *, ascii_only: bool = False) -> bytes:
    """A request body for a Google JSON API: compact JSON in UTF-8.

    Text is written as itself (a Firestore document or a Pub/Sub message's data
    counts its bytes against a limit, and ``\\uXXXX`` would double or triple them),
    or with ``ascii_only`` every non-ASCII character escaped, where the values were
    never checked for lone surrogates (which UTF-8 cannot encode).
    """
    return (_ASCII if ascii_only else _UTF8).encode(value).encode()
