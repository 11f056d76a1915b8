"""The one rule for a provider's id (a delivery-id header, a payload's event id).

Its own module so that what checks ids without verifying a signature (the event
key in :mod:`hookpress.events`, hence deliver) imports nothing else of the package.
"""

from __future__ import annotations

import re

__all__ = ["MAX_ID_LENGTH", "valid_id"]

MAX_ID_LENGTH = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def valid_id(value: str) -> bool:
    """A provider id we accept: 1–256 characters, no control characters (CR/LF included)."""
    return 0 < len(value) <= MAX_ID_LENGTH and not _CONTROL.search(value)
