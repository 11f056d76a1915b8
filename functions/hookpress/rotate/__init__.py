"""The rotate function: Secret Manager ``SECRET_ROTATE`` notifications.

For the WordPress application password it rotates for real, through the
plugin's credentials routes (the only ones the ingest user may call besides
ingest):

1. create a new application password, authenticated with the current one;
2. store it as a new secret version (deliver instances pick it up: a 401
   makes them re-read the secret);
3. with the new password, delete every other application password of the
   user (``retire-others``): the answer names the password that
   authenticated, which must be the one just created, so the new password is
   proven by the same call that revokes the rest — including any password
   minted by someone else, so exactly one is left;
4. disable the older secret versions.

A failure before step 3 leaves the old password working (nothing is revoked
until the new one authenticates); the notification is answered non-2xx so
Pub/Sub retries. Provider signing secrets belong to the provider: for them
an alert-worthy reminder is logged. Any other event type (``TOPIC_CONFIGURED``,
``SECRET_VERSION_ADD``, …) is acknowledged and ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hookpress.backends import BackendError
from hookpress.backends.secrets import (
    SecretValues,
    SecretWriter,
    build_secret_values,
    build_secret_writer,
)
from hookpress.instance import Instance
from hookpress.logs import Logger
from hookpress.pushauth import CertsCache, OidcVerifier, PushAuthError, push_verifier
from hookpress.rotate._wordpress import AppPasswords, RotationError
from hookpress.settings import RotateSettings

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx
    from flask import Request, Response

__all__ = [
    "AppPasswords",
    "Notification",
    "RotationError",
    "Rotator",
    "Runtime",
    "build_runtime",
    "handle_request",
    "install",
    "parse_notification",
]

_log = Logger("rotate")


@dataclass(frozen=True, slots=True)
class Notification:
    """A Secret Manager event notification."""

    event_type: str
    secret: str  # the secret id (last segment of projects/P/secrets/ID)


class MalformedNotification(Exception):
    """Not a push envelope carrying a Secret Manager notification."""


def parse_notification(body: bytes) -> Notification:
    """Parse the push envelope: ``attributes.eventType`` and ``attributes.secretId``."""
    try:
        envelope: Any = json.loads(body)
    except ValueError:
        raise MalformedNotification("not_json") from None
    message = envelope.get("message") if isinstance(envelope, dict) else None
    if not isinstance(message, dict):
        raise MalformedNotification("no_message")
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise MalformedNotification("bad_attributes")
    event_type = attributes.get("eventType")
    secret_id = attributes.get("secretId")
    if not isinstance(secret_id, str) and isinstance(message.get("data"), str):
        try:
            secret_id = json.loads(base64.b64decode(message["data"], validate=True)).get("name")
        except (binascii.Error, ValueError, AttributeError):
            secret_id = None
    if not isinstance(event_type, str) or not isinstance(secret_id, str) or not secret_id:
        raise MalformedNotification("no_event")
    return Notification(event_type=event_type, secret=secret_id.rsplit("/", 1)[-1])


@dataclass(eq=False)
class Rotator:
    """Rotates the WordPress application password; reminds about provider secrets."""

    settings: RotateSettings
    _: KW_ONLY
    values: SecretValues
    writer: SecretWriter
    wordpress: AppPasswords
    log: Logger

    def handle(self, note: Notification) -> str:
        """Act on one notification; the outcome for the log. Raises on a failed rotation."""
        if note.event_type != "SECRET_ROTATE":
            return "ignored"
        if note.secret != self.settings.wp_app_password_secret:
            self.log.error(
                f"provider secret {note.secret} is due for rotation: the provider owns it. "
                "Create a new secret at the provider, add it with "
                f"'hookpress secrets rotate' (both stay accepted), then retire the old one.",
                outcome="provider_rotation_due",
                secret=note.secret,
            )
            return "reminded"
        self.rotate_wordpress()
        return "rotated"

    def rotate_wordpress(self) -> None:
        """The four steps of the module docstring."""
        secret = self.settings.wp_app_password_secret
        current = self.values.fetch(secret)
        if not current:
            raise RotationError("no_current_password")
        name = f"hookpress {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
        created = self.wordpress.create(current[0], name)
        version = self.writer.add_version(secret, created.password)
        retired = self.wordpress.retire_others(created.password)
        if retired.uuid != created.uuid:
            raise RotationError("verify:uuid_mismatch")
        disabled = self.writer.disable_older(secret, keep=1)
        self.log.info(
            "wordpress application password rotated",
            outcome="rotated",
            secret=secret,
            version=version,
            new_uuid=created.uuid,
            revoked=retired.revoked,
            disabled_versions=len(disabled),
        )


@dataclass(frozen=True, slots=True)
class Runtime:
    """What one instance holds."""

    rotator: Rotator
    verifier: OidcVerifier | None


def build_runtime(
    env: Mapping[str, str],
    *,
    log: Logger = _log,
    transport: httpx.BaseTransport | None = None,
    certs: CertsCache | None = None,
) -> Runtime:
    """Read the settings and wire the adapters."""
    settings = RotateSettings.from_env(env)
    rotator = Rotator(
        settings,
        values=build_secret_values(settings.secrets, settings.project, env, 10.0),
        writer=build_secret_writer(settings.secrets, settings.project, 10.0),
        wordpress=AppPasswords(
            settings.wp_base_url, settings.wp_user, settings.wp_timeout_s, transport
        ),
        log=log,
    )
    verifier = push_verifier(
        settings.push_auth, settings.push_audience, settings.push_service_account, log, certs
    )
    return Runtime(rotator, verifier)


_instance: Instance[Runtime] = Instance(lambda: build_runtime(os.environ), _log)
install = _instance.install


def handle_request(request: Request) -> Response:
    """The functions-framework entry point's whole body."""
    from flask import Response

    def answer(status: int) -> Response:
        return Response("", status=status, mimetype="text/plain")

    started = time.perf_counter()
    runtime = _instance.ready()
    if runtime is None:
        return answer(503)
    if request.method != "POST":
        return answer(405)
    if runtime.verifier is not None:
        try:
            runtime.verifier.verify(request.headers.get("Authorization"))
        except PushAuthError as exc:
            _log.warning("push refused", outcome="unauthenticated", reason=exc.reason)
            return answer(exc.status)
    try:
        note = parse_notification(request.get_data(cache=False)[: 1024 * 1024])
    except MalformedNotification as exc:
        _log.warning("push refused", outcome="malformed_envelope", reason=str(exc))
        return answer(400)
    try:
        outcome = runtime.rotator.handle(note)
    except (RotationError, BackendError) as exc:
        # Alert-worthy; Pub/Sub retries. Nothing was revoked unless the new password worked.
        _log.error(
            "rotation failed",
            outcome="rotation_failed",
            reason=str(exc),
            secret=note.secret,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return answer(503)
    _log.info(
        f"rotate {outcome}",
        outcome=outcome,
        event_type=note.event_type,
        secret=note.secret,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return answer(204)
