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
primitives. This module is the import surface.
"""

from __future__ import annotations

from collections.abc import Mapping

from hookpress.signatures._common import (
    KeyPair,
    Scheme,
    SignatureError,
    Verified,
    valid_id,
)
from hookpress.signatures.fal import Fal as Fal
from hookpress.signatures.hmac_headers import (
    GitHub,
    HmacTimestamp,
    Shopify,
    Slack,
    TimestampedHmac,
)
from hookpress.signatures.standard import StandardWebhooks as StandardWebhooks
from hookpress.signatures.twilio import Twilio

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

#: Svix (Clerk, Resend): Standard Webhooks under ``svix-`` header names.
SVIX = StandardWebhooks("svix", "svix")
STRIPE = TimestampedHmac("stripe", "Stripe-Signature", ",", "t", "v1", ".", "whsec_")
ELEVENLABS = TimestampedHmac("elevenlabs", "ElevenLabs-Signature", ",", "t", "v0", ".", "wsec_")
PADDLE = TimestampedHmac("paddle", "Paddle-Signature", ";", "ts", "h1", ":", "pdl_ntfset_")

SCHEMES: Mapping[str, Scheme] = {
    s.name: s
    for s in (
        HmacTimestamp(),
        StandardWebhooks(),
        SVIX,
        STRIPE,
        GitHub(),
        Slack(),
        Shopify(),
        ELEVENLABS,
        PADDLE,
        Twilio(),
        Fal(),
    )
}
