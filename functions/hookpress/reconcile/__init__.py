"""The reconcile function: a sweep, every few minutes (Cloud Scheduler).

- Records stuck in ``received`` for longer than ``HOOKPRESS_RECONCILE_STUCK_AFTER_S``
  lost their publish (the ingress died between the Firestore create and the
  publish, and the provider never retried): they are published now, through
  the same claim as the ingress, so a late provider retry and the sweep never
  both publish.
- Records ``published`` but untouched for longer than
  ``HOOKPRESS_RECONCILE_STALE_AFTER_S`` have had no delivery attempt for that
  long: Pub/Sub should have pushed them. They are reported (ERROR, alert-worthy)
  with a sample of keys; ``hookpress replay`` is the answer (see the runbook).

Cloud Scheduler calls it with an OIDC token for the scheduler identity whose
audience is this function's service URL; the token is checked here as
deliver checks Pub/Sub's (``hookpress.pushauth``). Each sweep leaves a
heartbeat, ``control/reconcile`` (``last_run_at`` and the counts), which
``hookpress smoke`` reads to tell that the job runs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from hookpress.backends import BackendError
from hookpress.backends.firestore import EventRecords
from hookpress.backends.pubsub import EventPublisher
from hookpress.events import Status
from hookpress.instance import Instance
from hookpress.logs import Logger
from hookpress.publication import Publication
from hookpress.pushauth import OidcVerifier, PushAuthError, push_verifier
from hookpress.settings import ReconcileSettings

if TYPE_CHECKING:
    from flask import Request, Response

__all__ = [
    "HEARTBEAT_DOCUMENT",
    "Reconciler",
    "Report",
    "build_reconciler",
    "handle_request",
    "install",
]

_log = Logger("reconcile")
_SAMPLE = 20
#: the control document each sweep writes: {last_run_at, stuck, republished, stale}
HEARTBEAT_DOCUMENT = "reconcile"


@dataclass
class Report:
    """What one sweep found and did."""

    stuck: int = 0
    republished: int = 0
    stale: int = 0
    stale_sample: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Reconciler:
    """One sweep per call; safe to call concurrently (claims make publishing exclusive)."""

    settings: ReconcileSettings
    _: KW_ONLY
    records: EventRecords
    publication: Publication
    log: Logger
    clock: Callable[[], float] = time.time
    # None: callers are not checked (HOOKPRESS_PUSH_AUTH=none, the local stack only).
    verifier: OidcVerifier | None = None

    def sweep(self) -> Report:
        """Publish what is stuck, report what is stale."""
        now = self.clock()
        at = datetime.fromtimestamp(now, UTC)
        report = Report()
        stuck = self.records.with_status(
            Status.RECEIVED.value,
            at - timedelta(seconds=self.settings.stuck_after_s),
            self.settings.batch,
        )
        report.stuck = len(stuck)
        for snapshot in stuck:
            try:
                if self.publication.publish_received(snapshot, now):
                    report.republished += 1
                    self.log.info(
                        "reconcile republished a stuck event",
                        event_key=snapshot.key,
                        source=snapshot.data.get("source"),
                        outcome="republished",
                    )
            except BackendError as exc:
                # Left for the next sweep; the claim was released.
                self.log.warning(
                    "reconcile could not publish", event_key=snapshot.key, reason=exc.backend
                )
        stale = self.records.with_status(
            Status.PUBLISHED.value,
            at - timedelta(seconds=self.settings.stale_after_s),
            self.settings.batch,
        )
        report.stale = len(stale)
        report.stale_sample = [s.key for s in stale[:_SAMPLE]]
        if stale:
            self.log.error(
                f"{len(stale)} published events have had no delivery attempt for over "
                f"{self.settings.stale_after_s} s: check the push subscription "
                "(docs/runbook.md, 'Published events are not delivered')",
                outcome="stale_published",
                count=len(stale),
                sample=report.stale_sample,
            )
        self._heartbeat(at, report)
        return report

    def _heartbeat(self, at: datetime, report: Report) -> None:
        """Record that this sweep ran; a failed write is logged, never fails the sweep."""
        try:
            self.records.set(
                HEARTBEAT_DOCUMENT,
                {
                    "last_run_at": at,
                    "stuck": report.stuck,
                    "republished": report.republished,
                    "stale": report.stale,
                },
                collection=self.settings.control_collection,
            )
        except BackendError as exc:
            self.log.warning("reconcile heartbeat not written", reason=exc.backend)


def build_reconciler(env: Mapping[str, str], log: Logger = _log) -> Reconciler:
    """Read the settings and wire the adapters."""
    settings = ReconcileSettings.from_env(env)
    timeout = settings.backend_timeout_s
    records = EventRecords(
        settings.project, settings.firestore_database, settings.events_collection, timeout
    )
    publisher = EventPublisher(settings.project, settings.events_topic, timeout)
    return Reconciler(
        settings,
        records=records,
        publication=Publication(records, publisher, lease_s=2 * timeout + 1, log=log),
        log=log,
        verifier=push_verifier(
            settings.push_auth,
            settings.push_audience,
            settings.push_service_account,
            log,
            env=env,
        ),
    )


_instance: Instance[Reconciler] = Instance(lambda: build_reconciler(os.environ), _log)
install = _instance.install


def handle_request(request: Request) -> Response:
    """The functions-framework entry point's whole body."""
    from flask import Response

    started = time.perf_counter()
    reconciler = _instance.ready()
    if reconciler is None:
        return Response("misconfigured", status=503, mimetype="text/plain")
    if request.method != "POST":
        return Response("", status=405, mimetype="text/plain")
    if reconciler.verifier is not None:
        try:
            reconciler.verifier.verify(request.headers.get("Authorization"))
        except PushAuthError as exc:
            _log.warning("call refused", outcome="unauthenticated", reason=exc.reason)
            return Response("", status=exc.status, mimetype="text/plain")
    try:
        report = reconciler.sweep()
    except BackendError as exc:
        _log.error("reconcile sweep failed", outcome="unavailable", reason=exc.backend)
        return Response("unavailable", status=503, mimetype="text/plain")
    _log.info(
        "reconcile sweep",
        outcome="swept",
        stuck=report.stuck,
        republished=report.republished,
        stale=report.stale,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return Response(json.dumps(asdict(report)), status=200, mimetype="application/json")
