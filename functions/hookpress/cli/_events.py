"""``hookpress events show`` and ``hookpress events list``: event records looked up."""

from __future__ import annotations

from typing import Any

from hookpress.cli._context import EVENT_KEY, Context, parse_selection, usage
from hookpress.cli._exit import CliError, ExitCode
from hookpress.cli._parser import Commands, add_command, add_group
from hookpress.ops.selection import STATUSES

__all__ = ["add_parser", "cmd_events_list", "cmd_events_show"]


def add_parser(commands: Commands) -> None:
    """Register ``events`` and its commands."""
    events = add_group(commands, "events", "look events up", "Look event records up.")
    show = add_command(
        events,
        "show",
        "one event's record (by key, or by provider id and source)",
        "Show one event's record. The key is sha256 of '{source}:{provider id}': give the key, "
        "or --provider-id with --source and it is computed.",
        "example:\n  hookpress events show --source stripe --provider-id evt_1NG8Du2eZvKYlo2C",
    )
    show.add_argument("key", nargs="?", help="the event key (64 hex characters)")
    show.add_argument("--provider-id", metavar="ID", help="the provider's event id")
    show.add_argument("--source", help="the source name (with --provider-id)")
    show.add_argument(
        "--payload", action="store_true", help="also print the raw payload stored in GCS"
    )
    show.set_defaults(run=cmd_events_show)

    listing = add_command(
        events,
        "list",
        "events by status, time and source",
        "List event records received in a time window, oldest first.",
        "example:\n  hookpress events list --status held,failed,dead --since 1d",
    )
    listing.add_argument(
        "--status", help=f"one or more of {', '.join(STATUSES)}, comma-separated (default: all)"
    )
    listing.add_argument(
        "--since", default="24h", help="received at or after: 2h, 1d, 2026-01-02 … (default 24h)"
    )
    listing.add_argument("--until", help="received before (default: now)")
    listing.add_argument("--source", action="append", help="only this source (repeatable)")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.set_defaults(run=cmd_events_list)


def cmd_events_show(ctx: Context) -> ExitCode:
    """``hookpress events show``."""
    key = _event_key(ctx)
    target = ctx.target()
    snapshot = target.records().get(key)
    if snapshot is None:
        hint = None
        if ctx.args.provider_id:
            hint = (
                f"the key is sha256 of '{ctx.args.source}:{ctx.args.provider_id}': check the "
                "source name and the id (records expire after HOOKPRESS_EVENT_TTL_DAYS; the raw "
                "payload may still be in GCS: hookpress replay --gcs-prefix raw/SOURCE/)"
            )
        raise CliError(f"no event {key} on the {target.describe()}", ExitCode.NOT_FOUND, hint)
    payload: bytes | None = None
    if ctx.args.payload:
        raw = target.raw()
        try:
            payload = raw.get(raw.name_of(str(snapshot.data.get("raw_uri", ""))))
        except ValueError:
            payload = None
    if ctx.out.json_mode:
        document: dict[str, Any] = {"event_key": key, **snapshot.data}
        if ctx.args.payload:
            document["payload"] = payload.decode("utf-8", "replace") if payload else None
        ctx.out.json(document)
        return ExitCode.OK
    ctx.out.record(key, snapshot.data)
    if ctx.args.payload:
        if payload is None:
            ctx.out.note("[yellow]the raw payload is not in the bucket[/]")
        else:
            ctx.out.plain(payload.decode("utf-8", "replace"))
    return ExitCode.OK


def _event_key(ctx: Context) -> str:
    from hookpress.events import event_key

    args = ctx.args
    if args.key and (args.provider_id or args.source):
        raise usage("give an event KEY, or --provider-id with --source, not both")
    if args.key:
        key = str(args.key).strip().lower()
        if not EVENT_KEY.match(key):
            raise usage("an event key is 64 hex characters (see --provider-id to compute one)")
        return key
    if args.provider_id and args.source:
        return event_key(args.source, args.provider_id)
    raise usage("give an event KEY, or --provider-id ID --source SOURCE")


def cmd_events_list(ctx: Context) -> ExitCode:
    """``hookpress events list``."""
    from hookpress.ops.selection import select

    limit = ctx.args.limit
    if limit < 1:
        raise usage("--limit must be at least 1")
    selection = parse_selection(ctx, since_default="24h", limit=limit + 1)
    rows = [(s.key, s.data) for s in select(ctx.target().records(), selection)]
    truncated = len(rows) > limit
    rows = rows[:limit]
    if ctx.out.json_mode:
        ctx.out.json([{"event_key": k, **d} for k, d in rows])
    elif rows:
        ctx.out.records(rows)
    else:
        ctx.out.note("no events match")
    if truncated:
        ctx.out.note(
            f"[yellow]showing the first {limit}: narrow with --since/--until or raise --limit[/]"
        )
    return ExitCode.OK
