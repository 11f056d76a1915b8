"""Hostile requests and hostile payloads: ``nox -s fuzz`` and, shorter, tests/fuzz.

Two halves. The ingress half (100,000 cases; the suite runs 10,000) attacks
the public edge; the deliver half (2,000 cases; the suite runs 200) sends
payloads no transform expected through the ingress and the deliver function
into a real WordPress.

**The ingress half.**

Hypothesis builds requests for the real entry point (``functions/ingress/main.py``
as deployed: functions-framework's ASGI app, called directly with the scope,
``receive`` and ``send`` uvicorn would give it; :mod:`~bench.fuzz.target` says
how) with healthy emulator backends: genuinely signed events for every scheme,
the same with one thing broken (a truncated, flipped, re-cased, duplicated or
dropped signature header, a timestamp outside the window or not a number, a
body changed after signing, the wrong secret, another scheme's headers), random
header soup, strict-JSON traps under a valid signature, bodies at and over the
size limit, lying Content-Lengths, chunked bodies, content encodings, methods
and request targets.

Invariants checked on every case:

- never a 5xx (the backends are healthy), never a status outside the table;
- the status the table prescribes for the method, the path, the encoding and
  the size; before the function, what functions-framework's routes answer
  (Starlette's 405 for a method no route serves, its 404 for /robots.txt,
  /favicon.ico and a path no route matches, its 307 where toggling the
  trailing slashes makes one match), and uvicorn's 400 for a request head its
  parser refuses (the app is then never called);
- who answered: an answer of the ingress's own comes with exactly one log line
  of that status, one of the framework's with none; the ingress's answer says
  ``Connection: close`` whenever it did not take the body whole, and it never
  reads more than one piece past the size limit;
- the ASGI conversation keeps uvicorn's rules (the start first, header values
  it would write, the declared length, nothing after the end);
- an accepted answer (202, or 200 duplicate) only for a request whose
  signature an independent oracle verifies, and then the stored GCS object is
  the exact bytes sent and the record's ``body_sha256`` matches;
- a genuinely signed JSON object with nothing broken is accepted;
- no log line carries a secret or a signature.

After the run the backends are audited: every GCS object, Firestore record
and Pub/Sub message of the run belongs to an accepted, genuinely signed
request. The process's RSS is sampled after each batch (each batch is a fresh
hypothesis run, so the fuzzer's own bookkeeping does not accumulate).

**The deliver half** (:class:`DeliverFuzzer`). Genuinely signed JSON objects
for every provider (one source each, so every default transform is reached;
Twilio's are form bodies) whose fields the transforms read hold hostile values:
numbers past every range (``1e308``, ``10**4000``, ``2**64``), times out of
range, impossible or nearly ISO 8601 (``"1e400"``, year 1 at +14:00,
``"2026-02-30"``), markup, control and bidi characters, wrong types,
nesting to the parser's limit, fields of hundreds of KiB; and unsigned type
headers of any text. Each is accepted by the ingress, pushed to deliver,
and posted to WordPress (MariaDB and ``php -S``, the plugin as shipped).
Invariants on every case: the ingress accepts it (or answers 400 where the
provider's id, read from the payload, is unusable: fal.ai's status,
ElevenLabs' type), deliver answers 204 (never a 5xx), the event ends
``delivered`` or ``failed`` (with ``unusable_payload:…`` or WordPress's 4xx as
the reason), and the breaker's one probe slot is never left taken: every
batch starts with the breaker half-open. After every batch a normal event
must be delivered, close the breaker, and be one post in WordPress.

**Where each part lives.** :mod:`~bench.fuzz.oracle` (the status table and
the independent signature check), :mod:`~bench.fuzz.strategies` (hostile
requests), :mod:`~bench.fuzz.target` (the ingress under test),
:mod:`~bench.fuzz.payloads` (hostile payloads), :mod:`~bench.fuzz.deliver`
(ingress, deliver and WordPress under test), :mod:`~bench.fuzz.runner` (the
run, its figures and the results files).

**Reproducing a run.** A seed fixes the cases for one tree only: Hypothesis
also draws from the literal constants of every local module loaded
(``hypothesis.internal.conjecture.providers``), so an edit to any module of the
repository changes the cases a seed produces.
"""

from __future__ import annotations

from bench.fuzz.deliver import DeliverFuzzer, DeliverReport
from bench.fuzz.oracle import SOURCES, Case, Expected, InvariantBroken, genuine, prescribed
from bench.fuzz.payloads import DELIVER_SOURCES, DeliverCase, DeliverStrategies
from bench.fuzz.runner import main, run, run_deliver
from bench.fuzz.strategies import Strategies
from bench.fuzz.target import AsgiClient, FuzzReport, IngressFuzzer, hypothesis_run

__all__ = [
    "DELIVER_SOURCES",
    "SOURCES",
    "AsgiClient",
    "Case",
    "DeliverCase",
    "DeliverFuzzer",
    "DeliverReport",
    "DeliverStrategies",
    "Expected",
    "FuzzReport",
    "IngressFuzzer",
    "InvariantBroken",
    "Strategies",
    "genuine",
    "hypothesis_run",
    "main",
    "prescribed",
    "run",
    "run_deliver",
]
