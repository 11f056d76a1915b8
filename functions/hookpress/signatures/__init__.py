"""Webhook signature schemes: verification as pure functions over raw bytes.

Knows nothing of HTTP frameworks. ``verify`` takes the exact received body, the
request headers (a mapping with lower-case names), every active secret of the
source and, for schemes that sign it (Twilio), the public URL the provider
called; it either returns what the verification established or raises
:class:`SignatureError`. The caller parses the body only after this succeeds.

Exceptions
----------
SignatureError
    The only exception raised by ``verify`` for anything the client sent: a
    missing or malformed header, a timestamp outside the window, an invalid
    delivery id, or no signature matching any active secret. ``reason`` is a
    short machine-readable code for logs; the HTTP answer is always the same
    generic 401.

Every HMAC comparison is ``hmac.compare_digest``; asymmetric signatures
(Standard Webhooks ``v1a`` and fal.ai, both Ed25519) are checked by
``cryptography``. Timestamps are checked in both directions. ``sign``
produces the headers a provider would send; the CLI (``hookpress
send``/``sign``), the tests and the benchmarks use it. ``new_secret`` makes a
key in the form the scheme's providers hand out: for asymmetric schemes the
value the ingress holds (a public key) differs from the one that signs.

Which provider uses which scheme, and where its event id, type and time come
from, is :mod:`hookpress.providers`.

Layout: ``_common`` holds the types, the header, timestamp and HMAC helpers and
the one "read → check the window → compare HMACs" path (``HmacScheme``);
``hmac_headers`` the shared-key header schemes; ``standard`` Standard Webhooks
and Svix; ``twilio`` and ``fal`` their own; ``_ed25519`` the asymmetric
primitives. This module is the import surface and owns the registry
(:data:`SCHEMES`): which scheme each id names, and where it is defined.

A scheme's module is imported on the first use of that scheme, not with this
package: deliver verifies no signature and an ingress only its sources'
schemes, so neither pays at start-up for the others (nor for their imports).
Whether an id names a scheme (``id in SCHEMES``, ``sorted(SCHEMES)``) needs
no scheme module at all.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hookpress.signatures._ids import valid_id

if TYPE_CHECKING:
    from hookpress.signatures._common import KeyPair as KeyPair
    from hookpress.signatures._common import Scheme as Scheme
    from hookpress.signatures._common import SignatureError as SignatureError
    from hookpress.signatures._common import Verified as Verified
    from hookpress.signatures.fal import Fal as Fal
    from hookpress.signatures.standard import StandardWebhooks as StandardWebhooks

# The pinned public surface (tests/unit/test_public_api.py); Fal and StandardWebhooks
# are importable from here too, for their key helpers (ops/keys.py, the tests).
__all__ = [
    "SCHEMES",
    "KeyPair",
    "Scheme",
    "SignatureError",
    "Verified",
    "valid_id",
]

#: Every scheme by id: its module (in this package), its class and the class's
#: arguments. Svix (Clerk, Resend) is Standard Webhooks under ``svix-`` header names.
_REGISTRY: Mapping[str, tuple[str, str, tuple[str, ...]]] = {
    "hmac-timestamp": ("hmac_headers", "HmacTimestamp", ()),
    "standard-webhooks": ("standard", "StandardWebhooks", ()),
    "svix": ("standard", "StandardWebhooks", ("svix", "svix")),
    "stripe": (
        "hmac_headers",
        "TimestampedHmac",
        ("stripe", "Stripe-Signature", ",", "t", "v1", ".", "whsec_"),
    ),
    "github": ("hmac_headers", "GitHub", ()),
    "slack": ("hmac_headers", "Slack", ()),
    "shopify": ("hmac_headers", "Shopify", ()),
    "elevenlabs": (
        "hmac_headers",
        "TimestampedHmac",
        ("elevenlabs", "ElevenLabs-Signature", ",", "t", "v0", ".", "wsec_"),
    ),
    "paddle": (
        "hmac_headers",
        "TimestampedHmac",
        ("paddle", "Paddle-Signature", ";", "ts", "h1", ":", "pdl_ntfset_"),
    ),
    "twilio": ("twilio", "Twilio", ()),
    "fal": ("fal", "Fal", ()),
}

#: the names importable from this package and their modules, imported on first use
_LAZY = {
    "KeyPair": "_common",
    "Scheme": "_common",
    "SignatureError": "_common",
    "Verified": "_common",
    "Fal": "fal",
    "StandardWebhooks": "standard",
}


class _Schemes(Mapping[str, "Scheme"]):
    """The schemes by id; each one is made, and its module imported, on first use.

    Membership, iteration and ``len`` read only the registry's ids.
    """

    def __init__(self, registry: Mapping[str, tuple[str, str, tuple[str, ...]]]) -> None:
        self._registry = registry
        self._made: dict[str, Scheme] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> Scheme:
        made = self._made.get(name)
        if made is not None:  # every use after the first: one dict read
            return made
        module, cls, args = self._registry[name]  # KeyError for an unknown id, as a dict
        with self._lock:
            made = self._made.get(name)
            if made is None:
                scheme = getattr(_module(module), cls)(*args)
                if not isinstance(scheme, _module("_common").Scheme) or scheme.name != name:
                    raise TypeError(f"the registry's {name!r} made {scheme!r}")
                made = self._made[name] = scheme
        return made

    def __contains__(self, name: object) -> bool:
        return name in self._registry

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)

    def __len__(self) -> int:
        return len(self._registry)


def _module(name: str) -> Any:
    # The import statement's own path (not importlib.import_module), so that
    # ``python -X importtime`` lists the module like any other import.
    full = f"{__name__}.{name}"
    __import__(full)
    return sys.modules[full]


SCHEMES: Mapping[str, Scheme] = _Schemes(_REGISTRY)


def __getattr__(name: str) -> Any:
    """The types and ``Fal``/``StandardWebhooks``, from their modules on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
