"""The deliver half's target: ingress and deliver in this process, WordPress for real.

:class:`DeliverFuzzer` signs each :class:`~bench.fuzz.payloads.DeliverCase`
for its provider, has the ingress accept it, pushes it to the deliver
function, which posts to a real WordPress, and checks the outcome, the
breaker's probe slot and, after every batch, a normal event.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from bench._common import FUNCTIONS
from bench.fuzz.oracle import InvariantBroken
from bench.fuzz.payloads import DELIVER_SOURCES, DeliverCase, DeliverStrategies
from bench.fuzz.strategies import next_nonce
from bench.fuzz.target import (
    IngressFuzzer,
    LogSink,
    RunReport,
    hypothesis_run,
    public_url,
    tally,
)
from hookpress.providers import PROVIDERS


@dataclass
class DeliverReport(RunReport):
    """Counts of one deliver run."""

    RATE_DIGITS: ClassVar[int] = 2

    ingress_statuses: Counter[int] = field(default_factory=Counter)
    ingress_refused: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    deliver_statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    failed_reasons: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    half_open_batches: int = 0
    sentinels_delivered: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            **super().as_dict(),
            "ingress_statuses": tally(self.ingress_statuses),
            "ingress_refused": tally(self.ingress_refused),
            "sources": tally(self.sources),
            "deliver_statuses": tally(self.deliver_statuses),
            "deliver_5xx": sum(v for k, v in self.deliver_statuses.items() if k >= 500),
            "outcomes": tally(self.outcomes),
            "non_final": sum(
                v
                for k, v in self.outcomes.items()
                if k not in {"delivered", "failed", "refused_at_ingress"}
            ),
            "failed_reasons": dict(self.failed_reasons.most_common()),
            "kinds": tally(self.kinds),
            "half_open_batches": self.half_open_batches,
            "sentinels_delivered": self.sentinels_delivered,
        }


class DeliverFuzzer:
    """The ingress and the deliver entry points in this process, WordPress for real.

    Each case is signed for one of the providers, accepted by the ingress
    (its own fresh bucket, collection and topic, as :class:`IngressFuzzer`),
    then pushed to the deliver function, which calls the real WordPress.
    Every batch starts with the breaker half-open (opened by WordPress
    failures, cooled down), so a payload that took and kept the probe slot
    would show as a 503 at the next case. After every batch a normal event
    must be delivered and readable in WordPress.
    """

    def __init__(self, project: str, workdir: Path, site: Any) -> None:
        import functions_framework

        from hookpress import deliver
        from hookpress.deliver import Breaker

        self.site = site
        self.ingress = IngressFuzzer(project, workdir, DELIVER_SOURCES)
        tag = self.ingress.tag
        secrets_file = workdir / f"{tag}-wp-secrets.json"
        secrets_file.write_text(json.dumps({f"{tag}-wp": [site.app_password]}))
        secrets_file.chmod(0o600)
        self.env = {
            "HOOKPRESS_PROJECT": project,
            "HOOKPRESS_RAW_BUCKET": tag,
            "HOOKPRESS_EVENTS_COLLECTION": tag,
            "HOOKPRESS_CONTROL_COLLECTION": f"{tag}-control",
            "HOOKPRESS_WP_BASE_URL": site.rest_base,
            "HOOKPRESS_WP_USER": site.ingest_user,
            "HOOKPRESS_WP_APP_PASSWORD_SECRET": f"{tag}-wp",
            "HOOKPRESS_PUSH_AUTH": "none",
            "HOOKPRESS_SECRETS_BACKEND": "file",
            "HOOKPRESS_SECRETS_FILE": str(secrets_file),
        }
        with contextlib.redirect_stdout(LogSink()):
            self.runtime = deliver.build_runtime(self.env)
        self.clock = _ManualClock()
        self.breaker = Breaker(3, 30, self.clock)
        self.runtime.deliverer.breaker = self.breaker
        deliver.install(self.runtime)
        app = functions_framework.create_app(
            target="deliver", source=str(FUNCTIONS / "deliver" / "main.py")
        )
        self.client = app.test_client()
        self.report = DeliverReport()

    def close(self) -> None:
        """Uninstall both functions, close WordPress's connection pool."""
        from hookpress import deliver

        deliver.install(None)
        self.runtime.deliverer.wordpress.close()
        self.ingress.close()

    # -- one case ---------------------------------------------------------------

    def _accept(self, source: str, body: bytes, event_type: str | None) -> str | None:
        """Send through the ingress: the event key, or None for a documented refusal.

        The ingress must accept a signed object, except one whose provider id is
        present but unusable (``fal``'s status, ``elevenlabs``' type and
        conversation id are read from the payload): that is a 400, never a
        silently different key (DESIGN.md), and nothing reaches deliver.
        """
        from hookpress.events import InvalidPayloadId
        from hookpress.payloads import MalformedBody, parse_payload

        provider = PROVIDERS[source]
        scheme = provider.scheme
        form = scheme.name == "twilio"
        signed = scheme.sign(body, self.ingress.signing[source], now=time.time(),
                             delivery_id=f"fz-{next_nonce()}", url=public_url(source))  # fmt: skip
        content_type = "application/x-www-form-urlencoded" if form else "application/json"
        headers = {"Content-Type": content_type, **signed}
        type_header = scheme.type_header
        if type_header:
            headers.pop(next(h for h in headers if h.lower() == type_header), None)
            if event_type is not None:
                headers[type_header] = event_type
        with contextlib.redirect_stdout(LogSink()):
            resp = self.ingress.client.post(f"/{source}", data=body, headers=headers)
        self.report.ingress_statuses[resp.status_code] += 1
        if resp.status_code == 400:
            lower = {k.lower(): v for k, v in headers.items()}
            delivery = lower.get(scheme.id_header) if scheme.id_header else None
            try:
                provider.event_id(delivery, lower, parse_payload(body, "form" if form else "json"),
                                  body)  # fmt: skip
            except InvalidPayloadId:
                self.report.ingress_refused["invalid_id"] += 1
                return None
            except MalformedBody:
                pass  # the fuzzer's own body is not what it meant to send: an invariant below
        if resp.status_code not in (200, 202):
            raise InvariantBroken(f"the ingress answered {resp.status_code} to a signed object")
        return str(resp.get_json()["event_id"])

    def _push(self, key: str) -> int:
        data = base64.b64encode(json.dumps({"event_key": key}).encode()).decode()
        envelope = {
            "message": {"data": data, "messageId": key[:16], "attributes": {"event_key": key}},
            "subscription": "projects/hookpress-local/subscriptions/events-deliver",
        }
        sink = LogSink()
        with contextlib.redirect_stdout(sink):
            status = int(self.client.post("/", json=envelope).status_code)
        if self.site.app_password in "".join(sink.lines):
            raise InvariantBroken("the application password in a deliver log line")
        return status

    def check(self, case: DeliverCase) -> None:
        """Accept, deliver, and check every invariant; raise InvariantBroken."""
        report = self.report
        report.cases += 1
        report.kinds.update(case.kinds)
        report.sources[case.source] += 1
        was_probing_slot_free = not self.breaker.probing
        key = self._accept(case.source, case.body, case.event_type)
        if key is None:
            report.outcomes["refused_at_ingress"] += 1
            return
        status = self._push(key)
        report.deliver_statuses[status] += 1
        record = self.ingress.ingestor.records.get(key)
        state = record.data.get("status") if record else "no record"
        report.outcomes[str(state)] += 1
        detail = ""
        if record is not None:
            downstream = record.data.get("downstream_body") or ""
            detail = f" last_error={record.data.get('last_error')!r} wp={downstream[:300]!r}"
        if status >= 500:
            raise InvariantBroken(f"deliver answered {status}: {case.describe()}{detail}")
        if status != 204:
            raise InvariantBroken(f"deliver answered {status}, not 204: {case.describe()}")
        if state not in {"delivered", "failed"}:
            raise InvariantBroken(f"left {state!r}, not final: {case.describe()}{detail}")
        if state == "failed" and record is not None:
            reason = str(record.data.get("last_error") or "")
            if not reason.startswith(("unusable_payload:", "wordpress_rejected")):
                raise InvariantBroken(f"failed for {reason!r}: {case.describe()}{detail}")
            report.failed_reasons[_failure_label(reason, record.data)] += 1
        if self.breaker.probing or (was_probing_slot_free and self.breaker.state == "open"):
            raise InvariantBroken(f"the breaker's probe slot is held: {case.describe()}")

    def force_half_open(self) -> None:
        """Open the breaker as three WordPress failures would, then let it cool down."""
        for _ in range(self.breaker.threshold):
            self.breaker.failure()
        self.clock.t += self.breaker.cooldown_s
        if self.breaker.state != "half-open":
            raise InvariantBroken(f"the breaker did not open ({self.breaker.state})")
        self.report.half_open_batches += 1

    def sentinel(self) -> None:
        """A normal event after hostile ones: delivered, and exactly one post in WordPress."""
        import httpx

        external_id = f"sentinel-{self.ingress.tag}-{next_nonce()}"
        body = json.dumps(
            {"id": external_id, "status": "completed", "summary": "after the storm"}
        ).encode()
        key = self._accept("hmac-timestamp", body, None)
        if key is None:
            raise InvariantBroken("the ingress refused a normal event")
        status = self._push(key)
        record = self.ingress.ingestor.records.get(key)
        if status != 204 or record is None or record.data.get("status") != "delivered":
            raise InvariantBroken(
                f"a normal event after a batch was not delivered ({status}, "
                f"{record and record.data.get('status')})"
            )
        if self.breaker.state != "closed":
            raise InvariantBroken(f"the breaker is {self.breaker.state} after a normal event")
        site = self.site
        with httpx.Client(auth=(site.admin_user, site.admin_app_password), timeout=60) as admin:
            posts = admin.get(
                f"{site.rest_base}/wp/v2/ai-events",
                params={"external_id": external_id, "status": "any"},
            ).json()
        if len(posts) != 1 or posts[0]["meta"].get("status") != "completed":
            raise InvariantBroken(f"WordPress holds {len(posts)} posts for the normal event")
        self.report.sentinels_delivered += 1

    def run_batch(self, size: int, batch_seed: int) -> None:
        """Half-open breaker, ``size`` hypothesis cases, then the normal event."""
        self.force_half_open()
        hypothesis_run(DeliverStrategies().cases(), self.check, size, batch_seed)
        self.sentinel()
        self.report.batches += 1


def _failure_label(reason: str, record: Mapping[str, Any]) -> str:
    """``unusable_payload:<why>``, or WordPress's status and error code (never the payload)."""
    if not reason.startswith("wordpress_rejected"):
        return reason
    try:
        answer = json.loads(record.get("downstream_body") or "")
        code = str(answer.get("code", "?"))
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        params = data.get("params")
        what = ",".join(sorted(params)) if isinstance(params, dict) else data.get("reason")
    except (ValueError, AttributeError):
        code, what = "?", None
    label = f"wordpress_rejected:{record.get('downstream_status')}:{code}"
    return f"{label}:{what}" if what else label


class _ManualClock:
    """The breaker's clock, moved by the fuzzer (cool-downs without waiting)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t
