"""``hookpress pause``, ``resume`` and ``status``: the pause switch and what needs attention."""

from __future__ import annotations

import getpass
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hookpress.backends import BackendError
from hookpress.cli._context import Context, parsed
from hookpress.cli._exit import ExitCode
from hookpress.cli._output import ReplayProgress
from hookpress.cli._parser import Commands, add_command
from hookpress.cli._replay import DEFAULT_RATE, new_replayer, render_report
from hookpress.ops.selection import Selection, parse_rate

if TYPE_CHECKING:
    from hookpress.backends.firestore import EventRecords

__all__ = ["add_parser", "cmd_pause", "cmd_resume", "cmd_status"]


def add_parser(commands: Commands) -> None:
    """Register ``pause``, ``resume`` and ``status``."""
    pause = add_command(
        commands,
        "pause",
        "hold deliveries (events keep being accepted and stored)",
        "Set the pause switch: deliver marks every event it receives 'held' instead of "
        "calling WordPress. Providers still get 202s; nothing is lost. Takes effect within "
        "HOOKPRESS_CONTROL_TTL_S (5 s).",
    )
    pause.add_argument("--reason", help="why (shown by `hookpress status`)")
    pause.set_defaults(run=cmd_pause)

    resume = add_command(
        commands,
        "resume",
        "deliver again, and replay what was held",
        "Clear the pause switch, wait until every deliver instance has noticed, then replay "
        "every held event.",
    )
    resume.add_argument(
        "--no-replay", action="store_true", help="only clear the switch; leave held events"
    )
    resume.add_argument(
        "--settle",
        type=float,
        help="seconds to wait before replaying (default: HOOKPRESS_CONTROL_TTL_S + 1)",
    )
    resume.add_argument("--rate", default=DEFAULT_RATE, help="replay rate (default 20/s)")
    resume.set_defaults(run=cmd_resume)

    status = add_command(
        commands,
        "status",
        "the pause switch and how many events need attention",
        "Show the stack, the pause switch and the number of events per status that may "
        "need attention (received, published, held, failed, dead).",
    )
    status.set_defaults(run=cmd_status)


def cmd_pause(ctx: Context) -> ExitCode:
    """``hookpress pause``."""
    from hookpress.ops.control import read_control, set_paused

    target = ctx.target()
    records = target.records()
    before = read_control(records, target.control_collection)
    state = set_paused(
        records,
        target.control_collection,
        paused=True,
        reason=ctx.args.reason,
        by=_operator(),
        now=ctx.clock(),
    )
    if ctx.out.json_mode:
        ctx.out.json({**state.as_json(), "was_paused": before.paused})
    else:
        ctx.out.result(
            "[yellow]Deliveries are paused[/]"
            + (" (they already were)" if before.paused else "")
            + f" on the {target.describe()}."
        )
        ctx.out.note(
            f"Deliver instances hold new events within {target.control_ttl_s:g} s; providers "
            "still get 202 and every event is stored. `hookpress resume` delivers what was held."
        )
    return ExitCode.OK


def cmd_resume(ctx: Context) -> ExitCode:
    """``hookpress resume``."""
    from hookpress.ops.control import set_paused

    per_second = parsed(lambda: parse_rate(ctx.args.rate))
    target = ctx.target()
    records = target.records()
    state = set_paused(
        records,
        target.control_collection,
        paused=False,
        reason=None,
        by=_operator(),
        now=ctx.clock(),
    )
    if ctx.args.no_replay:
        if ctx.out.json_mode:
            ctx.out.json({**state.as_json(), "replay": None})
        else:
            ctx.out.result("[green]Deliveries resumed[/]; held events were left as they are.")
        return ExitCode.OK
    settle = ctx.args.settle if ctx.args.settle is not None else target.control_ttl_s + 1
    if not ctx.out.json_mode:
        ctx.out.result(f"[green]Deliveries resumed[/] on the {target.describe()}.")
        ctx.out.note(f"waiting {settle:g} s for every deliver instance to notice, then replaying")
    time.sleep(max(settle, 0.0))
    replayer = new_replayer(ctx, per_second=per_second, dry_run=False, with_raw=False)
    with ReplayProgress(ctx.out, "held") as progress:
        report = replayer.replay_selection(Selection(statuses=("held",)), progress)
    if ctx.out.json_mode:
        ctx.out.json(
            {
                **state.as_json(),
                "replay": {
                    "ok": report.ok,
                    "counts": {a.value: n for a, n in report.counts.items()},
                    "aborted": report.aborted,
                },
            }
        )
        return ExitCode.OK if report.ok else ExitCode.INCOMPLETE
    return render_report(ctx, report, "held events replayed")


def cmd_status(ctx: Context) -> ExitCode:
    """``hookpress status``."""
    from hookpress.ops.control import read_control

    target = ctx.target()
    records = target.records()
    state = read_control(records, target.control_collection)
    counts = _count_statuses(records, ("received", "published", "held", "failed", "dead"))
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "target": target.describe(),
                "kind": target.kind,
                "project": target.project,
                "control": state.as_json(),
                "counts": counts,
            }
        )
        return ExitCode.OK
    ctx.out.result(f"stack: {target.describe()}")
    if state.paused:
        since = f" since {state.changed_at:%Y-%m-%d %H:%M:%S} UTC" if state.changed_at else ""
        reason = f" ({state.reason})" if state.reason else ""
        ctx.out.result(f"deliveries: [yellow]paused[/]{since}{reason}")
    else:
        ctx.out.result("deliveries: [green]running[/]")
    ctx.out.result("events: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    return ExitCode.OK


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _count_statuses(records: EventRecords, statuses: Sequence[str]) -> dict[str, int]:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from google.cloud.firestore_v1.base_query import FieldFilter

    counts: dict[str, int] = {}
    try:
        for status in statuses:
            # Untyped on purpose: the library annotates count() as returning the class (it
            # returns an instance) and get() as one flat list (it is a list per response).
            query: Any = records.collection().where(filter=FieldFilter("status", "==", status))
            result = query.count().get()
            counts[status] = int(result[0][0].value)
    except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, OSError) as exc:
        raise BackendError("firestore", type(exc).__name__) from None
    return counts
