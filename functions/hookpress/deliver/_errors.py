"""Delivery outcomes that are not a success.

Exceptions
----------
DeliveryError
    Base of every WordPress delivery failure. ``reason`` is a short code for
    logs and the record's ``last_error``; ``status`` the HTTP status WordPress
    answered, if it answered; ``body`` the start of its response.

RetryableDeliveryError(DeliveryError)
    Worth trying again later: 408, 409, 425, 429, any 5xx, a timeout, a
    connection error. The deliver function answers Pub/Sub non-2xx so the
    message is redelivered with backoff (and dead-lettered after N attempts).

PermanentDeliveryError(DeliveryError)
    Trying again cannot help: any other 4xx, a redirect (never followed), a
    missing raw payload. The event is marked ``failed``, the message acked,
    and the failure logged at ERROR for alerting.

AuthenticationFailed(RetryableDeliveryError)
    WordPress answered 401. The caller re-reads the application password
    once (it may have just been rotated); if that does not help, it is still
    retried rather than failed: during a rotation an instance may hold the
    revoked password until its cache refreshes, and a password fixed later
    should find the events still queued (or dead-lettered, for replay).
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "DeliveryError",
    "PermanentDeliveryError",
    "RetryableDeliveryError",
]


class DeliveryError(Exception):
    """A delivery to WordPress did not succeed."""

    def __init__(self, reason: str, status: int | None = None, body: str | None = None) -> None:
        super().__init__(reason if status is None else f"{reason} (HTTP {status})")
        self.reason = reason
        self.status = status
        self.body = body


class RetryableDeliveryError(DeliveryError):
    """Try again later."""


class PermanentDeliveryError(DeliveryError):
    """Do not try again."""


class AuthenticationFailed(RetryableDeliveryError):
    """WordPress refused the credentials (401)."""
