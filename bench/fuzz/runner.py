"""The run: both halves in batches, their figures, and the results files.

``python -m bench.fuzz`` (``nox -s fuzz``) starts the emulators, runs the
ingress half, then the deliver half against a throwaway WordPress, and writes
``bench/results/fuzz.json`` and ``fuzz.md``.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench._common import RESULTS, machine, write_json, write_markdown
from bench.fuzz.deliver import DeliverFuzzer, DeliverReport
from bench.fuzz.oracle import InvariantBroken
from bench.fuzz.target import FuzzReport, IngressFuzzer
from hookpress.local.emulators import emulators_in_env


def rss_mib() -> float:
    """This process's resident set size."""
    import psutil

    return float(psutil.Process().memory_info().rss) / (1024 * 1024)


def in_batches(
    fuzzer: IngressFuzzer | DeliverFuzzer,
    cases: int,
    batch: int,
    base_seed: int,
    after_batch: Callable[[int, float], None],
    then: Callable[[], object] | None = None,
) -> None:
    """``cases`` cases, ``batch`` at a time, the i-th batch seeded ``base_seed + i``.

    ``after_batch`` gets the number of cases run so far and the seconds since
    the start; ``then`` runs after the last batch, inside the time the report
    records (``report.seconds``).
    """
    started = time.monotonic()
    done = index = 0
    while done < cases:
        size = min(batch, cases - done)
        before = fuzzer.report.cases
        fuzzer.run_batch(size, base_seed + index)
        done += fuzzer.report.cases - before
        index += 1
        after_batch(done, time.monotonic() - started)
    if then is not None:
        then()
    fuzzer.report.seconds = time.monotonic() - started


def run(
    fuzzer: IngressFuzzer,
    cases: int,
    batch: int,
    base_seed: int,
    progress: Callable[[str], None] | None = None,
) -> FuzzReport:
    """Run ``cases`` cases in batches; sample RSS after each; audit the backends at the end."""

    def sample_rss(done: int, elapsed: float) -> None:
        gc.collect()
        fuzzer.report.rss_mib.append(rss_mib())
        if progress:
            progress(f"{done:,} cases, RSS {fuzzer.report.rss_mib[-1]:.0f} MiB, {elapsed:.0f} s")

    in_batches(fuzzer, cases, batch, base_seed, sample_rss, then=fuzzer.audit)
    return fuzzer.report


def run_deliver(
    fuzzer: DeliverFuzzer,
    cases: int,
    batch: int,
    base_seed: int,
    progress: Callable[[str], None] | None = None,
) -> DeliverReport:
    """Run ``cases`` deliver cases in batches (each with its half-open start and sentinel)."""

    def say(done: int, elapsed: float) -> None:
        if progress:
            progress(f"deliver: {done:,} cases, {elapsed:.0f} s")

    in_batches(fuzzer, cases, batch, base_seed, say)
    return fuzzer.report


def markdown(report: FuzzReport, command: str) -> str:
    """The results table."""
    data = report.as_dict()
    samples = data["rss_mib_after_each_batch"]
    rss_list = ", ".join(str(x) for x in samples[:12]) + (" …" if len(samples) > 12 else "")
    lines = [
        "# Fuzzing the ingress and delivery",
        "",
        f"Command: `{command}`",
        "",
        "## Ingress: hostile requests at the public edge",
        "",
        "| figure | value |",
        "|---|---|",
        f"| cases | {data['cases']:,} in {data['batches']} batches |",
        f"| wall time | {data['seconds']} s ({data['cases_per_second']} cases/s) |",
        f"| 5xx | {sum(v for k, v in report.statuses.items() if k >= 500)} |",
        f"| accepted (202 + 200) | {data['accepted']:,} ({data['new_events']:,} new events) |",
        "| accepted without a valid signature | 0 (checked per case by an independent oracle) |",
        f"| RSS after each batch (MiB) | {rss_list} |",
        f"| RSS growth (median of the last quarter of batches minus the first) "
        f"| {data['rss_growth_mib']} MiB (max {max(samples, default=0)} MiB) |",
        "",
        "Statuses: " + ", ".join(f"{k}: {v:,}" for k, v in data["statuses"].items()),
        "",
        "Answered by: "
        + ", ".join(f"{k}: {v:,}" for k, v in data["answered_by"].items())
        + " (ingress: our code; framework: functions-framework's Starlette routes, "
        "before the function; server: uvicorn's parser refused the request head). "
        f"Framework answers that left a body unread and the connection open: "
        f"{data['framework_unread_kept_open']:,}.",
        "",
        "Case kinds: " + ", ".join(f"{k}: {v:,}" for k, v in data["kinds"].items()),
        "",
        "Backend audit: every object, record and message belongs to an accepted, "
        "genuinely signed request.",
        "",
        "| check | count |",
        "|---|---|",
        *(f"| {k} | {v:,} |" for k, v in data["audit"].items()),
        "",
    ]
    return "\n".join(lines)


def deliver_markdown(report: DeliverReport, failure: str | None) -> str:
    """The deliver half's results."""
    data = report.as_dict()
    reasons = ", ".join(f"{k}: {v:,}" for k, v in data["failed_reasons"].items()) or "none"
    return "\n".join(
        [
            "## Deliver: hostile payloads into a real WordPress",
            "",
            "| figure | value |",
            "|---|---|",
            f"| cases | {data['cases']:,} in {data['batches']} batches |",
            f"| wall time | {data['seconds']} s ({data['cases_per_second']} cases/s) |",
            f"| deliver 5xx | {data['deliver_5xx']} |",
            f"| events left in a non-final state | {data['non_final']} |",
            f"| outcomes | {', '.join(f'{k}: {v:,}' for k, v in data['outcomes'].items())} |",
            f"| refused at the ingress (unusable provider id) "
            f"| {sum(data['ingress_refused'].values()):,} |",
            f"| batches begun with the breaker half-open | {data['half_open_batches']} |",
            f"| normal events delivered after a batch | {data['sentinels_delivered']} |",
            f"| invariants | {'held' if failure is None else 'BROKEN: ' + failure} |",
            "",
            f"Failure reasons: {reasons}",
            "",
            "Hostile kinds (cases containing each): "
            + ", ".join(f"{k}: {v:,}" for k, v in data["kinds"].items()),
            "",
            "Cases by source (one per provider): "
            + ", ".join(f"{k}: {v:,}" for k, v in data["sources"].items()),
            "",
        ]
    )


def _run_deliver_half(
    project: str, workdir: Path, cases: int, batch: int, base_seed: int, say: Callable[[str], None]
) -> tuple[DeliverReport, str | None]:
    from hookpress.local.wordpress import WordPressServer

    with WordPressServer(workdir / "wordpress") as server:
        fuzzer = DeliverFuzzer(project, workdir, server.site)
        try:
            run_deliver(fuzzer, cases, batch, base_seed, say)
        except InvariantBroken as exc:
            return fuzzer.report, str(exc)
        finally:
            fuzzer.close()
    return fuzzer.report, None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.fuzz [--cases N] [--batch N] [--seed N]``."""
    import bench.fuzz

    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=(bench.fuzz.__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--max-rss-growth-mib", type=float, default=64.0)
    parser.add_argument("--deliver-cases", type=int, default=2_000, help="0: ingress only")
    parser.add_argument("--deliver-batch", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    flags = [f"--cases {args.cases}"] if args.cases != 100_000 else []
    if args.deliver_cases != 2_000:
        flags.append(f"--deliver-cases {args.deliver_cases}")
    command = "nox -s fuzz" + (" -- " + " ".join(flags) if flags else "")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with (
        tempfile.TemporaryDirectory(prefix="hookpress-fuzz-") as tmp,
        emulators_in_env(Path(tmp) / "emulators") as emulators,
    ):
        project = emulators.project
        fuzzer = IngressFuzzer(project, Path(tmp))
        failure: str | None = None
        try:
            run(fuzzer, args.cases, args.batch, args.seed, say)
        except InvariantBroken as exc:
            failure = str(exc)
        finally:
            fuzzer.close()
        deliver_report, deliver_failure = DeliverReport(), None
        if args.deliver_cases > 0:
            deliver_report, deliver_failure = _run_deliver_half(
                project, Path(tmp), args.deliver_cases, args.deliver_batch, args.seed, say
            )
    report = fuzzer.report
    data = {
        "command": command,
        "machine": machine(),
        "invariants_held": failure is None,
        "failure": failure,
        "max_rss_growth_mib": args.max_rss_growth_mib,
        **report.as_dict(),
        "deliver": {
            "invariants_held": deliver_failure is None,
            "failure": deliver_failure,
            **deliver_report.as_dict(),
        },
    }
    bounded = report.rss_growth_mib <= args.max_rss_growth_mib
    data["rss_bounded"] = bounded
    text = markdown(report, command) + "\n" + deliver_markdown(deliver_report, deliver_failure)
    write_json(args.out / "fuzz.json", data)
    write_markdown(args.out / "fuzz.md", text)
    print(text)
    if failure or deliver_failure:
        say(f"INVARIANT BROKEN: {failure or deliver_failure}")
        return 1
    if not bounded:
        say(f"RSS grew {report.rss_growth_mib:.1f} MiB (limit {args.max_rss_growth_mib})")
        return 1
    return 0
