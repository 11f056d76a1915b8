"""``hookpress replay``: events sent to delivery again, and the report of what was done."""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING

from hookpress.cli._context import EVENT_KEY, Context, parse_selection, parsed, usage
from hookpress.cli._exit import CliError, ExitCode
from hookpress.cli._output import ReplayProgress
from hookpress.cli._parser import Commands, add_command
from hookpress.ops.selection import Selection, parse_day, parse_rate, parse_statuses, parse_when

if TYPE_CHECKING:
    from hookpress.ops.direct import DirectDelivery
    from hookpress.ops.replay import Replayer, Report
    from hookpress.ops.target import Target

__all__ = ["DEFAULT_RATE", "add_parser", "cmd_replay", "new_replayer", "render_report"]

DEFAULT_RATE = "20/s"
#: ``replay --via auto`` delivers straight to WordPress from this many events on.
_DIRECT_MIN_EVENTS = 10


def add_parser(commands: Commands) -> None:
    """Register ``replay``."""
    replay = add_command(
        commands,
        "replay",
        "send events to delivery again (idempotent, rate-limited)",
        "Send events to delivery again. Exactly one selection: event KEYs; --status and/or "
        "--since/--until (records in Firestore); --dead-letters (the dead-letter pull "
        "subscription: a message is acknowledged only after its event is republished); "
        "--gcs-prefix or --day (raw payloads in GCS: missing records are rebuilt from the "
        "objects and their metadata). Delivered events are skipped, so running it twice is "
        "harmless.",
        "examples:\n  hookpress replay 3f1c…e9\n  hookpress replay --status failed --since 2h\n"
        "  hookpress replay --dead-letters\n"
        "  hookpress replay --day 2026-01-02 --source stripe --rate 50/s",
    )
    replay.add_argument("keys", nargs="*", metavar="KEY", help="event keys")
    replay.add_argument(
        "--status",
        help="held, failed, dead, received; published only with --stale-after (comma-separated)",
    )
    replay.add_argument(
        "--stale-after",
        metavar="DURATION",
        help="with --status published: replay published events untouched this long "
        "(e.g. 1h): their message was lost",
    )
    replay.add_argument("--since", help="received at or after (2h, 1d, 2026-01-02, ISO time)")
    replay.add_argument("--until", help="received before")
    replay.add_argument("--source", action="append", help="only this source (repeatable)")
    replay.add_argument(
        "--dead-letters", action="store_true", help="drain the dead-letter pull subscription"
    )
    replay.add_argument(
        "--gcs-prefix", action="append", metavar="PREFIX", help="raw objects under PREFIX"
    )
    replay.add_argument("--day", help="raw objects of one day (YYYY-MM-DD, today, yesterday)")
    replay.add_argument(
        "--rate", default=DEFAULT_RATE, help=f"at most N/s, N/m or N/h (default {DEFAULT_RATE})"
    )
    replay.add_argument("--limit", type=int, help="at most this many events")
    replay.add_argument(
        "--via",
        choices=("auto", "pubsub", "wordpress"),
        default="auto",
        help="pubsub: republish, deliver posts each event; wordpress: deliver here, up to 100 "
        "events a request to the plugin's batch route (needs the stack's WordPress, from an "
        f"allowlisted address); auto (default): wordpress for KEYs or --status/--since/--until "
        f"selecting {_DIRECT_MIN_EVENTS} or more events when it can, else pubsub",
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="say what would be done; publish nothing"
    )
    replay.set_defaults(run=cmd_replay)


def cmd_replay(ctx: Context) -> ExitCode:
    """``hookpress replay``."""
    args = ctx.args
    by_selection = bool(args.status or args.since or args.until)
    by_gcs = bool(args.gcs_prefix or args.day)
    modes = [bool(args.keys), by_selection, args.dead_letters, by_gcs]
    if sum(modes) != 1:
        raise usage(
            "choose exactly one selection: KEYs, --status/--since/--until, --dead-letters, "
            "or --gcs-prefix/--day"
        )
    if args.source and (args.keys or args.dead_letters):
        raise usage("--source narrows --status/--since/--until and --gcs-prefix/--day only")
    if args.limit is not None and args.limit < 1:
        raise usage("--limit must be at least 1")
    if args.gcs_prefix and args.day:
        raise usage("--gcs-prefix and --day both name raw objects: give one")
    if args.status:
        statuses = parsed(lambda: parse_statuses(args.status))
        allowed = {"held", "failed", "dead", "received"}
        if args.stale_after:
            allowed.add("published")
        bad = [s for s in statuses if s not in allowed]
        if bad:
            raise usage(
                f"{', '.join(bad)} events are not replayed (delivered is done, published is on "
                "its way unless --stale-after says otherwise): use held, failed, dead or received"
            )
    if args.via == "wordpress" and (args.dead_letters or by_gcs):
        raise usage("--via wordpress replays KEYs and --status/--since/--until selections only")
    if args.stale_after and not (args.status and "published" in args.status):
        raise usage("--stale-after applies to --status published only")
    for key in args.keys:
        if not EVENT_KEY.match(key):
            raise usage(f"{key!r} is not an event key (64 hex characters)")
    # Everything the operator typed is checked before any stack is touched.
    per_second = parsed(lambda: parse_rate(args.rate))
    selection = parse_selection(ctx, since_default=None, limit=args.limit) if by_selection else None
    day = parsed(lambda: parse_day(args.day, ctx.now().date())) if args.day else None
    target = ctx.target()
    replayer = new_replayer(ctx, per_second=per_second, dry_run=args.dry_run, with_raw=by_gcs)
    if args.stale_after:
        now = ctx.now()
        cutoff = parsed(lambda: parse_when(args.stale_after, now))
        replayer.stale_published_s = max(0.0, (now - cutoff).total_seconds())
    ctx.out.note(f"[dim]{target.describe()}[/]")
    if selection is not None and not selection.statuses:
        selection = Selection(
            statuses=("held", "failed", "dead", "received"),
            since=selection.since,
            until=selection.until,
            sources=selection.sources,
            limit=selection.limit,
        )
    # Keys and selections are replayed by key: then they can go straight to WordPress.
    by_keys = bool(args.keys) or (
        selection is not None and args.via != "pubsub" and not args.dry_run
    )
    keys: list[str] = list(args.keys)
    if by_keys and selection is not None:
        from hookpress.ops.selection import select

        keys = [s.key for s in select(replayer.records, selection)]
    if by_keys and args.via != "pubsub" and not args.dry_run:
        replayer.direct = _direct(ctx, target, len(keys), forced=args.via == "wordpress")
    with ReplayProgress(ctx.out, "replay") as progress:
        if by_keys:
            report = replayer.replay_keys(keys, progress)
        elif selection is not None:
            report = replayer.replay_selection(selection, progress)
        elif args.dead_letters:
            report = replayer.replay_dead_letters(target.dead_letters(), args.limit, progress)
        else:
            prefixes = _prefixes(ctx, target, day)
            report = replayer.replay_gcs(prefixes, tuple(args.source or ()), progress)
    return render_report(ctx, report, "replay")


def new_replayer(ctx: Context, *, per_second: float, dry_run: bool, with_raw: bool) -> Replayer:
    """A Replayer of the context's stack (``with_raw``: it can read raw payloads from GCS)."""
    from hookpress.logs import Logger
    from hookpress.ops.replay import RateLimiter, Replayer
    from hookpress.publication import Publication

    target = ctx.target()
    records = target.records()
    publication = Publication(
        records,
        target.publisher(),
        lease_s=2 * target.timeout_s + 1,
        log=Logger("hookpress-cli", stream=sys.stderr),
    )
    return Replayer(
        records=records,
        publication=publication,
        raw=target.raw() if with_raw else None,
        limiter=RateLimiter(per_second),
        dry_run=dry_run,
        schemes={n: s.provider or s.scheme for n, s in target.sources.items() if s.scheme},
        ttl_days=target.event_ttl_days,
        clock=ctx.clock,
    )


def render_report(ctx: Context, report: Report, title: str) -> ExitCode:
    """Print what a replay did; exit 0 if everything selected was replayed or needed nothing."""
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "ok": report.ok,
                "dry_run": report.dry_run,
                "aborted": report.aborted,
                "counts": {a.value: n for a, n in report.counts.items()},
                "items": [
                    {
                        "event_key": i.key,
                        "action": i.action.value,
                        "status": i.status,
                        "source": i.source,
                        "detail": i.detail,
                    }
                    for i in report.items
                ],
            }
        )
    else:
        ctx.out.summary(report, title=title)
    return ExitCode.OK if report.ok else ExitCode.INCOMPLETE


def _direct(ctx: Context, target: Target, count: int, *, forced: bool) -> DirectDelivery | None:
    """A DirectDelivery for replay, or None (republish) with a note saying why."""
    from hookpress.ops.direct import BatchingWordPress, DirectDelivery, probe

    def decline(why: str, hint: str) -> None:
        if forced:
            raise CliError(f"cannot deliver straight to WordPress: {why}", ExitCode.CONFIG, hint)
        ctx.out.note(f"[dim]republishing through Pub/Sub: {why}[/]")

    if not forced and count < _DIRECT_MIN_EVENTS:
        return None
    wp = target.wordpress
    if wp is None:
        decline(
            "this tool does not know the stack's WordPress",
            "set HOOKPRESS_WP_BASE_URL, HOOKPRESS_WP_USER and HOOKPRESS_WP_APP_PASSWORD_SECRET "
            "(the deliver function's values), or use --via pubsub",
        )
        return None
    passwords = target.secret_values().fetch(wp.password_secret)
    if not passwords:
        decline(f"the secret {wp.password_secret} has no enabled version", "use --via pubsub")
        return None
    import httpx

    with httpx.Client(timeout=target.timeout_s, follow_redirects=False) as client:
        why = probe(client, wp.base_url, wp.user, passwords[0])
    if why is not None:
        decline(why, "use --via pubsub, or run from an address on the plugin's allowlist")
        return None
    from hookpress.backends.secrets import CachedSecrets
    from hookpress.deliver import Breaker, Deliverer
    from hookpress.logs import Logger
    from hookpress.settings import DeliverSettings

    settings = DeliverSettings(
        project=target.project,
        raw_bucket=target.require_bucket(),
        wp_base_url=wp.base_url,
        wp_user=wp.user,
        wp_app_password_secret=wp.password_secret,
        push_auth="none",
        events_collection=target.events_collection,
        control_collection=target.control_collection,
        firestore_database=target.firestore_database,
        control_ttl_s=target.control_ttl_s,
        event_ttl_days=target.event_ttl_days,
        secrets=target.secrets,
    )
    deliverer = Deliverer(
        settings,
        records=target.records(),
        raw=target.raw(),
        secrets=CachedSecrets(target.secret_values(), ttl_s=300, min_refresh_interval_s=5),
        wordpress=BatchingWordPress(wp.base_url, wp.user),
        breaker=Breaker(settings.breaker_threshold, settings.breaker_cooldown_s),
        log=Logger("hookpress-cli", stream=sys.stderr),
    )
    ctx.out.note(
        f"delivering {count} events straight to WordPress, up to 100 a request ({wp.base_url})"
    )
    return DirectDelivery(deliverer)


def _prefixes(ctx: Context, target: Target, day: date | None) -> list[str]:
    args = ctx.args
    if args.gcs_prefix or day is None:
        return list(args.gcs_prefix or ())
    sources = list(args.source or target.sources)
    if not sources:
        raise CliError(
            "the stack's sources are unknown, so the day's objects cannot be listed",
            ExitCode.CONFIG,
            "pass --source NAME (repeatable), or --gcs-prefix raw/NAME/YYYY/MM/DD/",
        )
    return [f"raw/{s}/{day:%Y/%m/%d}/" for s in sources]
