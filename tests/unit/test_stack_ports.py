"""The local stack's ingress port is chosen when first needed, not when the stack is made.

A port free at construction is free for anyone's ``bind(0)`` until the ingress binds
it, and the stack starts the JVM emulators (which bind ephemeral ports of their own),
WordPress and deliver in between: the rehearsal lost a port that way in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hookpress.local import stack as stack_module
from hookpress.local.stack import LocalStack, StackOptions


def test_the_ingress_port_is_chosen_on_first_use_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen: list[int] = []

    def free_port() -> int:
        chosen.append(40000 + len(chosen))
        return chosen[-1]

    monkeypatch.setattr(stack_module, "free_port", free_port)
    stack = LocalStack(tmp_path, StackOptions(sources={"tw": "twilio", "gh": "github"}))
    assert chosen == []  # nothing reserved by making the stack

    first = stack.public_url("tw")
    assert chosen == [40000]
    assert first == "http://127.0.0.1:40000/tw"
    assert stack.public_url("gh") == "http://127.0.0.1:40000/gh"
    # what the ingress's own settings name (the URL a URL-signing provider signs)
    assert stack._source_config("tw")["url"] == first
    assert chosen == [40000]
