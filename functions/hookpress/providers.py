"""Providers by name: what a platform team configures instead of a scheme.

A source names a ``provider`` (or, as before, a bare ``scheme``, which is the
provider of the same name). The provider fixes:

- the signature scheme (:mod:`hookpress.signatures`) and its timestamp
  tolerance where the provider documents its own;
- where the event id comes from (:meth:`Provider.event_id`): a list of
  alternatives, each a tuple of parts joined by ``:`` — ``delivery`` (the
  scheme's delivery-id header), ``header:NAME`` or ``payload:dotted.path`` —
  the first alternative whose parts are all present wins, else the sha256 of
  the body;
- where its type and time come from (message attributes, the warehouse);
- its default transform into the WordPress record
  (:data:`hookpress.deliver.transforms.BY_PROVIDER`);
- a realistic example event (``hookpress send PROVIDER --example``).

``docs`` is the provider's page on verifying its webhooks; ``oracle`` names the
official SDK the unit tests use as an oracle (``None``: no official Python SDK
verifies this provider's webhooks; the tests use its published example or an
independent computation).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import msgspec

from hookpress.events import InvalidPayloadId
from hookpress.signatures import SCHEMES, Scheme, valid_id

__all__ = ["PROVIDERS", "Provider", "provider"]

Example = Callable[[float, str], bytes]


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Provider(msgspec.Struct, frozen=True):
    """One provider: its scheme and where its event's id, type and time are found."""

    name: str
    title: str
    scheme_name: str
    example: Example
    ids: tuple[tuple[str, ...], ...] = (("delivery",), ("payload:id",))
    type_from: tuple[str, ...] = ("payload:type",)
    time_from: tuple[str, ...] = ()
    tolerance_s: int | None = None  # None: the deployment's HOOKPRESS_TIMESTAMP_TOLERANCE_S
    docs: str = ""
    oracle: str | None = None
    notes: str = ""
    key_format: str = ""  # how the provider hands out its secret (README)
    #: where the provider publishes its public keys (asymmetric schemes; ``hookpress keys refresh``)
    keys_url: str | None = None

    @property
    def scheme(self) -> Scheme:
        """The signature scheme."""
        return SCHEMES[self.scheme_name]

    @property
    def id_unsigned(self) -> bool:
        """Whether the id can come from a header the signature does not cover.

        GitHub's and Shopify's delivery ids (and any ``header:NAME`` part):
        whoever holds one captured request can change them, so the ingress lets
        the signed body decide (:func:`hookpress.events.first_provider_id`).
        """
        scheme = self.scheme
        for parts in self.ids:
            for part in parts:
                kind = part.partition(":")[0]
                if kind == "header":
                    return True
                if kind == "delivery" and scheme.id_header is not None and not scheme.id_signed:
                    return True
        return False

    def _part(
        self, part: str, delivery: str | None, headers: Mapping[str, str], payload: dict[str, Any]
    ) -> str | None:
        kind, _, where = part.partition(":")
        value: Any
        if kind == "delivery":
            value = delivery
        elif kind == "header":
            value = headers.get(where)
        else:
            value = payload
            for step in where.split("."):
                value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return str(value)
        return value if isinstance(value, str) and value else None

    def event_id(
        self,
        delivery: str | None,
        headers: Mapping[str, str],
        payload: dict[str, Any],
        body: bytes,
    ) -> str:
        """The provider's id for this event (see the module docstring).

        InvalidPayloadId when the chosen value is present but unusable (too
        long, control characters): a 400, never a silently different key.
        """
        for parts in self.ids:
            values = [self._part(p, delivery, headers, payload) for p in parts]
            if all(v is not None for v in values):
                value = ":".join(v for v in values if v is not None)
                if not valid_id(value):
                    raise InvalidPayloadId(",".join(parts))
                return value
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def event_type(self, headers: Mapping[str, str], payload: dict[str, Any]) -> str | None:
        """The event's type, for attributes and records; a label only, never trusted."""
        for part in self.type_from:
            value = self._part(part, None, headers, payload)
            if value is not None and valid_id(value):
                return value
        return None


def _openai(now: float, nonce: str) -> bytes:
    return _json(
        {
            "id": f"evt_{nonce}",
            "object": "event",
            "created_at": int(now),
            "type": "response.completed",
            "data": {"id": f"resp_{nonce}"},
        }
    )


def _replicate(now: float, nonce: str) -> bytes:
    when = _iso(now)
    return _json(
        {
            "id": f"rp{nonce}",
            "model": "black-forest-labs/flux-schnell",
            "version": "dp-4d0bcc010b3049749a251855f12800be",
            "input": {"prompt": "a lighthouse at dusk"},
            "logs": "",
            "output": [f"https://replicate.delivery/xezq/{nonce}/out-0.webp"],
            "error": None,
            "status": "succeeded",
            "created_at": when,
            "started_at": when,
            "completed_at": when,
            "urls": {"get": f"https://api.replicate.com/v1/predictions/rp{nonce}"},
            "metrics": {"predict_time": 0.42},
        }
    )


def _fal(now: float, nonce: str) -> bytes:
    request_id = f"{nonce[:8]}-{nonce[8:12]}-4{nonce[12:15]}-8{nonce[:3]}-{nonce[:12]}"
    return _json(
        {
            "request_id": request_id,
            "gateway_request_id": request_id,
            "status": "OK",
            "payload": {
                "images": [
                    {
                        "url": f"https://v3.fal.media/files/{nonce}/image.png",
                        "content_type": "image/png",
                        "width": 1024,
                        "height": 1024,
                    }
                ],
                "seed": 196619188014358660,
            },
        }
    )


def _elevenlabs(now: float, nonce: str) -> bytes:
    return _json(
        {
            "type": "post_call_transcription",
            "event_timestamp": int(now),
            "data": {
                "agent_id": "agent_7301k1yq8ywfe2rs5x0k9",
                "conversation_id": f"conv_{nonce}",
                "status": "done",
                "transcript": [{"role": "agent", "message": "Hello, how can I help?"}],
                "metadata": {"call_duration_secs": 22},
            },
        }
    )


def _clerk(now: float, nonce: str) -> bytes:
    return _json(
        {
            "data": {"id": f"user_{nonce}", "object": "user", "first_name": "Ada"},
            "object": "event",
            "type": "user.created",
            "timestamp": int(now * 1000),  # Clerk's timestamp is in milliseconds
            "instance_id": "ins_2Yv5kQ3bN1",
        }
    )


def _resend(now: float, nonce: str) -> bytes:
    return _json(
        {
            "type": "email.delivered",
            "created_at": _iso(now),
            "data": {
                "email_id": f"{nonce[:8]}-{nonce[8:12]}-4{nonce[12:15]}-a{nonce[:3]}-{nonce[:12]}",
                "from": "Acme <onboarding@resend.dev>",
                "to": ["delivered@resend.dev"],
                "subject": "Your order has shipped",
                "created_at": _iso(now),
            },
        }
    )


def _paddle(now: float, nonce: str) -> bytes:
    return _json(
        {
            "event_id": f"evt_{nonce}",
            "event_type": "transaction.completed",
            "occurred_at": _iso(now),
            "notification_id": f"ntf_{nonce}",
            "data": {
                "id": f"txn_{nonce}",
                "status": "completed",
                "currency_code": "USD",
                "details": {"totals": {"total": "2000"}},
            },
        }
    )


def _twilio(now: float, nonce: str) -> bytes:
    sid = "SM" + (nonce * 4)[:32]
    return urlencode(
        {
            "AccountSid": "AC" + (nonce * 4)[:32][::-1],
            "ApiVersion": "2010-04-01",
            "From": "+15017122661",
            "MessageSid": sid,
            "MessageStatus": "delivered",
            "SmsSid": sid,
            "SmsStatus": "delivered",
            "To": "+15558675310",
        }
    ).encode()


def _stripe(now: float, nonce: str) -> bytes:
    return _json(
        {
            "id": f"evt_{nonce}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(now),
            "livemode": False,
            "data": {"object": {"id": f"pi_{nonce}", "object": "payment_intent", "amount": 2000}},
        }
    )


def _github(now: float, nonce: str) -> bytes:
    return _json({"zen": "Keep it logically awesome.", "hook_id": 1, "nonce": nonce})


def _slack(now: float, nonce: str) -> bytes:
    return _json(
        {
            "type": "event_callback",
            "event_id": f"Ev{nonce.upper()}",
            "event_time": int(now),
            "event": {"type": "app_mention", "text": "hello from hookpress"},
        }
    )


def _shopify(now: float, nonce: str) -> bytes:
    return _json({"id": int(nonce[:12], 16), "name": f"#{nonce[:6]}", "created_at": _iso(now)})


def _standard(now: float, nonce: str) -> bytes:
    return _json(
        {
            "type": "invoice.paid",
            "timestamp": _iso(now),
            "data": {"id": f"inv_{nonce}", "status": "paid"},
        }
    )


def _generic(now: float, nonce: str) -> bytes:
    return _json(
        {
            "id": f"evt_{nonce}",
            "status": "completed",
            "summary": "An example event sent by hookpress.",
            "occurred_at": _iso(now),
        }
    )


_SW = "https://www.standardwebhooks.com/"
_SVIX = "https://docs.svix.com/receiving/verifying-payloads/how-manual"

PROVIDERS: Mapping[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "openai",
            "OpenAI",
            "standard-webhooks",
            _openai,
            time_from=("payload:created_at",),
            docs="https://platform.openai.com/docs/guides/webhooks",
            oracle="openai (client.webhooks.verify_signature / unwrap)",
            key_format="whsec_…",
        ),
        Provider(
            "replicate",
            "Replicate",
            "standard-webhooks",
            _replicate,
            type_from=("payload:status",),
            time_from=("payload:completed_at", "payload:created_at"),
            docs="https://replicate.com/docs/topics/webhooks/verify-webhook",
            oracle="replicate (replicate.webhooks.validate)",
            notes="one prediction sends several webhooks (start, output, completed): "
            "each has its own webhook-id, so each is its own event",
            key_format="whsec_… (GET /v1/webhooks/default/secret)",
        ),
        Provider(
            "fal",
            "fal.ai",
            "fal",
            _fal,
            ids=(("delivery", "payload:status"), ("delivery",)),
            type_from=("payload:status",),
            docs="https://docs.fal.ai/model-apis/model-endpoints/webhooks",
            oracle=None,
            notes="asymmetric: the secret holds fal's published JWKS (hookpress keys refresh fal); "
            "the id joins the request id and status, since one request can notify more than once",
            key_format="JWKS from https://rest.fal.ai/.well-known/jwks.json",
            keys_url="https://rest.fal.ai/.well-known/jwks.json",
        ),
        Provider(
            "elevenlabs",
            "ElevenLabs",
            "elevenlabs",
            _elevenlabs,
            ids=(("payload:type", "payload:data.conversation_id"),),
            time_from=("payload:event_timestamp",),
            tolerance_s=1800,
            docs="https://elevenlabs.io/docs/product-guides/administration/webhooks",
            oracle="elevenlabs (client.webhooks.construct_event)",
            notes="no event id: type + conversation id; the 30-minute window is ElevenLabs' own",
            key_format="wsec_…",
        ),
        Provider(
            "clerk",
            "Clerk",
            "svix",
            _clerk,
            time_from=("payload:timestamp",),
            docs="https://clerk.com/docs/webhooks/sync-data",
            oracle="svix (Clerk's documented verifier; clerk-backend-api does not verify)",
            key_format="whsec_…",
        ),
        Provider(
            "resend",
            "Resend",
            "svix",
            _resend,
            time_from=("payload:created_at",),
            docs="https://resend.com/docs/dashboard/webhooks/verify-webhooks-requests",
            oracle="resend (resend.Webhooks.verify), svix",
            key_format="whsec_…",
        ),
        Provider(
            "paddle",
            "Paddle",
            "paddle",
            _paddle,
            ids=(("payload:event_id",),),
            type_from=("payload:event_type",),
            time_from=("payload:occurred_at",),
            tolerance_s=5,
            docs="https://developer.paddle.com/webhooks/signature-verification",
            oracle="paddle-python-sdk (Notifications.Verifier)",
            notes="Paddle's own 5-second window (its SDK's default); a source may widen it",
            key_format="pdl_ntfset_…",
        ),
        Provider(
            "twilio",
            "Twilio",
            "twilio",
            _twilio,
            ids=(),
            type_from=("payload:MessageStatus", "payload:CallStatus", "payload:SmsStatus"),
            docs="https://www.twilio.com/docs/usage/webhooks/webhooks-security",
            oracle="twilio (RequestValidator)",
            notes="form body; signs the public URL it was given (the source's url), so the "
            "replay horizon is the record TTL, as for GitHub; id = sha256 of the signed body "
            "(Twilio's I-Twilio-Idempotency-Token is not signed)",
            key_format="the account Auth Token",
        ),
        Provider(
            "stripe",
            "Stripe",
            "stripe",
            _stripe,
            ids=(("payload:id",),),
            time_from=("payload:created",),
            docs="https://docs.stripe.com/webhooks#verify-manually",
            oracle="stripe (WebhookSignature)",
            key_format="whsec_…",
        ),
        Provider(
            "github",
            "GitHub",
            "github",
            _github,
            type_from=("header:x-github-event",),
            docs="https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries",
            oracle=None,
            notes="X-GitHub-Delivery is not signed; no timestamp (replay horizon = record TTL)",
        ),
        Provider(
            "slack",
            "Slack",
            "slack",
            _slack,
            ids=(("payload:event_id",),),
            type_from=("payload:event.type", "payload:type"),
            time_from=("payload:event_time",),
            docs="https://api.slack.com/authentication/verifying-requests-from-slack",
            oracle="slack-sdk (signature.SignatureVerifier)",
        ),
        Provider(
            "shopify",
            "Shopify",
            "shopify",
            _shopify,
            type_from=("header:x-shopify-topic",),
            time_from=("payload:updated_at", "payload:created_at"),
            docs="https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook",
            oracle=None,
            notes="X-Shopify-Webhook-Id is not signed; no timestamp (replay horizon = record TTL)",
        ),
        Provider(
            "standard-webhooks",
            "Standard Webhooks",
            "standard-webhooks",
            _standard,
            time_from=("payload:timestamp",),
            docs=_SW,
            oracle="standardwebhooks (v1); v1a: RFC 8032 vectors (no Python SDK signs v1a)",
            key_format="whsec_… (v1) or whpk_… (v1a public key)",
        ),
        Provider(
            "svix",
            "Svix",
            "svix",
            _standard,
            time_from=("payload:timestamp",),
            docs=_SVIX,
            oracle="svix (Webhook)",
            key_format="whsec_…",
        ),
        Provider(
            "hmac-timestamp",
            "HMAC + timestamp",
            "hmac-timestamp",
            _generic,
            ids=(("payload:id",),),
            type_from=("payload:type", "payload:status"),
            time_from=("payload:occurred_at", "payload:created_at"),
            oracle=None,
        ),
    )
}


def provider(name: str) -> Provider:
    """The named provider; KeyError if there is none."""
    return PROVIDERS[name]
