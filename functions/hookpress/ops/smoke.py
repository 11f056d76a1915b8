"""The check after ``pulumi up`` (or against a local stack): ``hookpress smoke``.

Four checks, each a verdict:

1. **ingress**: a signed test event of the stack's smoke source (the program
   provisions it, with a generated secret) is accepted (202).
2. **delivered**: that event reaches ``delivered``: stored, published, pushed
   with the subscription's token, posted into WordPress (a real post of source
   ``smoke``).
3. **dead letters**: the dead-letter pull subscription holds nothing that
   arrived since the check started (its messages are looked at and given back,
   never acknowledged).
4. **reconcile**: the reconciler's heartbeat (``control/reconcile``, written by
   every sweep) is younger than two schedule periods, so the scheduler job runs
   and its calls are accepted.

A backend that cannot be reached makes its check *unavailable* (retry), not
failed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hookpress.backends import BackendError

if TYPE_CHECKING:
    import httpx

    from hookpress.ops.target import Target

__all__ = ["Check", "Smoke", "SmokeReport"]

_TERMINAL = {"failed", "dead", "held"}
# Clocks of this machine and the backends may differ a little.
_SKEW = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Check:
    """One verdict: ``ok``, or failed, or ``unavailable`` (a backend did not answer)."""

    name: str
    ok: bool
    detail: str
    unavailable: bool = False


@dataclass
class SmokeReport:
    """Every check, in order, and the test event's key."""

    checks: list[Check] = field(default_factory=list)
    event_key: str | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def unavailable(self) -> bool:
        """Nothing failed for certain, but a backend did not answer."""
        return not self.ok and all(c.ok or c.unavailable for c in self.checks)


@dataclass
class Smoke:
    """Runs the checks against one stack."""

    target: Target
    client: httpx.Client
    secret: str
    timeout_s: float = 120.0
    poll_s: float = 1.0
    progress: Callable[[str], None] = lambda line: None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def run(self) -> SmokeReport:
        report = SmokeReport()
        started = datetime.fromtimestamp(self.clock(), UTC)
        sent = self._send(report)
        report.checks.append(sent)
        if sent.ok and report.event_key:
            report.checks.append(self._delivered(report.event_key))
        else:
            # Not a verdict of its own: nothing could be followed.
            report.checks.append(
                Check("delivered", False, "no event was accepted to follow", sent.unavailable)
            )
        report.checks.append(self._dead_letters(started, report.event_key))
        report.checks.append(self._reconciled(started))
        return report

    # -- the checks ----------------------------------------------------------------------

    def _send(self, report: SmokeReport) -> Check:
        from hookpress.ops.sending import example_payload, post, sign_request

        name = self.target.smoke_source
        if name is None:
            return Check("ingress", False, "the stack provisions no smoke source")
        source = self.target.source(name)
        if source.scheme is None or source.url is None:
            return Check("ingress", False, f"the scheme or URL of source {name!r} is unknown")
        body = example_payload(source.scheme, self.clock(), secrets.token_hex(8))
        request = sign_request(
            source=name, scheme=source.scheme, secret=self.secret, body=body,
            now=self.clock(), url=source.url,
        )  # fmt: skip
        try:
            result = post(self.client, request)
        except BackendError as exc:
            return Check("ingress", False, f"no answer from {source.url} ({exc.detail})", True)
        report.event_key = result.event_id
        if result.http_status == 202:
            return Check("ingress", True, f"202 accepted, event {result.event_id}")
        detail = f"{result.http_status} {result.status}" + (
            f" ({result.error})" if result.error else ""
        )
        return Check("ingress", False, detail, unavailable=result.http_status == 503)

    def _delivered(self, key: str) -> Check:
        records = self.target.records()
        deadline = self.clock() + self.timeout_s
        begun = self.clock()
        last_said = 0.0
        status = "unknown"
        while True:
            try:
                snapshot = records.get(key)
            except BackendError as exc:
                return Check("delivered", False, f"{exc.backend} unavailable", True)
            data: dict[str, Any] = snapshot.data if snapshot is not None else {}
            status = str(data.get("status", "not recorded"))
            if status == "delivered":
                post_id = data.get("wp_post_id")
                return Check(
                    "delivered",
                    True,
                    f"delivered in {self.clock() - begun:.0f} s (WordPress post {post_id})",
                )
            if status in _TERMINAL:
                reason = data.get("last_error") or data.get("downstream_status")
                return Check("delivered", False, f"{status}: {reason}")
            now = self.clock()
            if now >= deadline:
                return Check(
                    "delivered",
                    False,
                    f"still {status} after {self.timeout_s:.0f} s (attempts "
                    f"{data.get('attempts', 0)}, last error {data.get('last_error')})",
                )
            if now - last_said >= 2.0:
                self.progress(f"waiting for delivery: {status}, {now - begun:.0f} s")
                last_said = now
            self.sleep(self.poll_s)

    def _dead_letters(self, started: datetime, key: str | None) -> Check:
        dead = self.target.dead_letters()
        try:
            pulled = dead.pull(100)
            dead.release([m.ack_id for m in pulled])
        except BackendError as exc:
            return Check("dead letters", False, f"{exc.backend} unavailable", True)
        new = [
            m
            for m in pulled
            if (key is not None and m.event_key == key)
            or (m.published_at is not None and m.published_at >= started - _SKEW)
        ]
        if new:
            keys = ", ".join(sorted({m.event_key or m.message_id for m in new})[:5])
            return Check("dead letters", False, f"{len(new)} new dead letter(s): {keys}")
        older = f" ({len(pulled)} older ones wait for replay)" if pulled else ""
        return Check("dead letters", True, f"nothing new on {self.target.dead_subscription}{older}")

    def _reconciled(self, started: datetime) -> Check:
        from hookpress.reconcile import HEARTBEAT_DOCUMENT

        records = self.target.records()
        try:
            snapshot = records.get(HEARTBEAT_DOCUMENT, collection=self.target.control_collection)
        except BackendError as exc:
            return Check("reconcile", False, f"{exc.backend} unavailable", True)
        last = snapshot.data.get("last_run_at") if snapshot is not None else None
        if not isinstance(last, datetime):
            return Check("reconcile", False, "the reconcile job has never run (no heartbeat)")
        every = self.target.reconcile_every_s
        age = (started - last).total_seconds()
        if every is None:
            return Check("reconcile", True, f"last ran {age:.0f} s ago (schedule unknown)")
        allowed = 2 * every + 60
        if age > allowed:
            return Check(
                "reconcile",
                False,
                f"last ran {age:.0f} s ago; the job runs every {every:.0f} s",
            )
        return Check("reconcile", True, f"last ran {max(age, 0):.0f} s ago (every {every:.0f} s)")
