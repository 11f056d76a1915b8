"""The public surface of each core package, pinned: a change here is a deliberate one."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "hookpress.ingress": [
        "Ingestor", "Outcome", "Result", "build_ingestor", "handle_request", "install",
        "pool_size",
    ],
    "hookpress.deliver": [
        "AuthenticationFailed", "Breaker", "CONTROL_DOCUMENT", "CertsCache", "Deliverer",
        "DeliveryError", "OidcVerifier", "Outcome", "PermanentDeliveryError", "PushAuthError",
        "Result", "RetryableDeliveryError", "Runtime", "WordPressClient", "build_runtime",
        "classify", "handle_request", "install",
    ],
    "hookpress.signatures": [
        "KeyPair", "SCHEMES", "Scheme", "SignatureError", "Verified", "valid_id",
    ],
    "hookpress.providers": ["PROVIDERS", "Provider", "provider"],
    "hookpress.payloads": [
        "FORMATS", "MAX_FIELDS", "MalformedBody", "form_pairs", "parse_form", "parse_payload",
    ],
    "hookpress.backends": ["BackendError"],
    "hookpress.rotate": [
        "AppPasswords", "Notification", "RotationError", "Rotator", "Runtime", "build_runtime",
        "handle_request", "install", "parse_notification",
    ],
    "hookpress.reconcile": [
        "HEARTBEAT_DOCUMENT", "Reconciler", "Report", "build_reconciler", "handle_request",
        "install",
    ],
    "hookpress.publication": ["Prepared", "Publication", "REPLAYABLE"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_and_importable(module: str):
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PUBLIC[module])
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_the_deliver_exception_tree():
    from hookpress.deliver import (
        AuthenticationFailed,
        DeliveryError,
        PermanentDeliveryError,
        RetryableDeliveryError,
    )

    assert issubclass(RetryableDeliveryError, DeliveryError)
    assert issubclass(PermanentDeliveryError, DeliveryError)
    assert issubclass(AuthenticationFailed, RetryableDeliveryError)
