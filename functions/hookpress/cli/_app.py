"""The ``hookpress`` command line: the parser, the commands, and the exit codes."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import secrets
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from hookpress.backends import BackendError
from hookpress.cli._exit import EXIT_CODES_HELP, CliError, ExitCode
from hookpress.cli._output import Output, ReplayProgress
from hookpress.ops.selection import (
    STATUSES,
    Selection,
    parse_day,
    parse_rate,
    parse_statuses,
    parse_when,
)
from hookpress.ops.target import Overrides, Source, Target, TargetError, resolve
from hookpress.settings import SettingsError

__all__ = ["build_parser", "main"]

_KEY = re.compile(r"^[0-9a-f]{64}$")
_DEFAULT_RATE = "20/s"
#: ``replay --via auto`` delivers straight to WordPress from this many events on.
_DIRECT_MIN_EVENTS = 10

DESCRIPTION = """\
Operate a hookpress stack: send signed test webhooks, look events up, replay
them, pause and resume delivery, rotate signing secrets.

Which stack: --local FILE (or HOOKPRESS_LOCAL) for a local stack; a deployed
stack with --stack-outputs FILE (from `pulumi stack output --json > FILE`),
--project, or HOOKPRESS_STACK_OUTPUTS / HOOKPRESS_PROJECT; otherwise the local
stack that `nox -s dev` is running (.hookpress/local.json here or in a parent
directory). Stack options go before or after the command.
"""

EPILOG = (
    """\
examples:
  hookpress send stripe --example            a signed example event to the local stack
  hookpress sign github event.json > h.txt   then: curl -H @h.txt --data-binary @event.json URL
  hookpress events show --source stripe --provider-id evt_123
  hookpress events list --status failed,dead --since 2h
  hookpress replay --dead-letters --rate 10/s
  hookpress replay --day 2026-01-02 --source stripe --dry-run
  hookpress pause --reason "WordPress upgrade" && hookpress resume
  hookpress secrets rotate github            then, once the provider switched: --retire
  hookpress smoke --stack-outputs stack.json  after pulumi up: one event through to WordPress

environment (flags win):
  HOOKPRESS_LOCAL             the local stack's description (local.json)
  HOOKPRESS_STACK_OUTPUTS     `pulumi stack output --json` of a deployed stack
  HOOKPRESS_PROJECT           Google Cloud project of a deployed stack
  HOOKPRESS_RAW_BUCKET, HOOKPRESS_FIRESTORE_DATABASE, HOOKPRESS_EVENTS_TOPIC,
  HOOKPRESS_DEAD_SUBSCRIPTION, HOOKPRESS_INGRESS_URL, HOOKPRESS_SOURCES,
  HOOKPRESS_EVENTS_COLLECTION, HOOKPRESS_CONTROL_COLLECTION: as the functions read them

"""
    + EXIT_CODES_HELP
)


# -- the parser ------------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _stack_options(parser: argparse.ArgumentParser, *, nested: bool) -> None:
    # Nested parsers leave absent options out of the namespace (SUPPRESS), so a
    # value given before the command is not overwritten by the command's default.
    default: Any = argparse.SUPPRESS if nested else None
    group = parser.add_argument_group("stack (which one to operate on)")
    group.add_argument(
        "--local", metavar="FILE", type=Path, default=default, help="a local stack's local.json"
    )
    group.add_argument(
        "--stack-outputs",
        metavar="FILE",
        type=Path,
        default=default,
        help="a deployed stack: `pulumi stack output --json > FILE`",
    )
    group.add_argument("--project", default=default, help="Google Cloud project id")
    group.add_argument("--bucket", default=default, help="the raw-payload bucket")
    group.add_argument("--database", default=default, help="Firestore database id")
    group.add_argument("--ingress-url", default=default, help="the ingress base URL")
    group.add_argument("--events-topic", default=default, help="topic of event keys")
    group.add_argument("--dead-subscription", default=default, help="dead-letter pull subscription")
    parser.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="print one JSON document on stdout instead of text",
    )


def _body_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE|-",
        help="the JSON body (- or absent with a pipe: standard input)",
    )
    parser.add_argument(
        "--scheme",
        "--provider",
        dest="scheme",
        help="provider (or signature scheme), when the stack does not say (a deployed stack)",
    )
    parser.add_argument(
        "--secret", help="sign with this value (default: the newest enabled secret version)"
    )
    parser.add_argument(
        "--delivery-id",
        metavar="ID",
        help="the delivery id header, for schemes with one (standard-webhooks, github, shopify)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(
        prog="hookpress",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    from hookpress import __version__

    parser.add_argument("--version", action="version", version=f"hookpress {__version__}")
    _stack_options(parser, nested=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        parent: Any, name: str, help_text: str, description: str, epilog: str = ""
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(
            name,
            help=help_text,
            description=textwrap.fill(description, 88),
            epilog=(epilog + "\n" + EXIT_CODES_HELP).strip(),
            formatter_class=_Formatter,
        )
        _stack_options(sub, nested=True)
        return sub

    send = command(
        commands,
        "send",
        "sign a webhook as its provider would and POST it to the ingress",
        "Sign the body with the source's scheme and newest secret, POST it to the "
        "source's ingress URL, print the answer and the event id (the event key).",
        "example:\n  hookpress send stripe --example\n  hookpress send github payload.json",
    )
    send.add_argument("source", help="the source name (the URL path segment)")
    _body_argument(send)
    send.add_argument(
        "--example", action="store_true", help="send a generated example event (a fresh id)"
    )
    send.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    send.set_defaults(run=cmd_send)

    sign = command(
        commands,
        "sign",
        "print the signature headers for a body (for curl)",
        "Print the headers a provider would send with this body, one 'Name: value' a line "
        "(curl -H @FILE reads them). The signature covers the exact bytes: send the same file. "
        "Signed timestamps are valid for 5 minutes.",
        "example:\n  hookpress sign stripe event.json > headers.txt\n"
        "  curl -H @headers.txt --data-binary @event.json http://127.0.0.1:PORT/stripe",
    )
    sign.add_argument("source", help="the source name")
    _body_argument(sign)
    sign.set_defaults(run=cmd_sign)

    events = command(commands, "events", "look events up", "Look event records up.")
    events_commands = events.add_subparsers(dest="events_command", metavar="COMMAND", required=True)
    show = command(
        events_commands,
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

    listing = command(
        events_commands,
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

    replay = command(
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
        "--rate", default=_DEFAULT_RATE, help=f"at most N/s, N/m or N/h (default {_DEFAULT_RATE})"
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

    pause = command(
        commands,
        "pause",
        "hold deliveries (events keep being accepted and stored)",
        "Set the pause switch: deliver marks every event it receives 'held' instead of "
        "calling WordPress. Providers still get 202s; nothing is lost. Takes effect within "
        "HOOKPRESS_CONTROL_TTL_S (5 s).",
    )
    pause.add_argument("--reason", help="why (shown by `hookpress status`)")
    pause.set_defaults(run=cmd_pause)

    resume = command(
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
    resume.add_argument("--rate", default=_DEFAULT_RATE, help="replay rate (default 20/s)")
    resume.set_defaults(run=cmd_resume)

    status = command(
        commands,
        "status",
        "the pause switch and how many events need attention",
        "Show the stack, the pause switch and the number of events per status that may "
        "need attention (received, published, held, failed, dead).",
    )
    status.set_defaults(run=cmd_status)

    secrets_parser = command(
        commands, "secrets", "rotate signing secrets", "Manage sources' signing secrets."
    )
    secrets_commands = secrets_parser.add_subparsers(
        dest="secrets_command", metavar="COMMAND", required=True
    )
    rotate = command(
        secrets_commands,
        "rotate",
        "add a new secret version; --retire disables the older ones",
        "Add a new version of the source's signing secret. The ingress accepts every enabled "
        "version, so events signed with the old secret keep being accepted while the provider "
        "switches. Afterwards, `--retire` disables every version but the newest (the ingress "
        "stops accepting them within HOOKPRESS_SECRET_CACHE_TTL_S, 5 minutes). A generated "
        "value is printed on stdout, alone on its line: give it to the provider.",
        "examples:\n  hookpress secrets rotate github                   generate one\n"
        '  printf %s "$NEW" | hookpress secrets rotate stripe --value-file -\n'
        "  hookpress secrets rotate stripe --retire",
    )
    rotate.add_argument("source", help="the source name")
    value = rotate.add_mutually_exclusive_group()
    value.add_argument(
        "--value", help="the new secret (visible in the process list: prefer a file)"
    )
    value.add_argument("--value-file", metavar="FILE|-", help="read the new secret from FILE or -")
    value.add_argument("--retire", action="store_true", help="disable every version but the newest")
    rotate.set_defaults(run=cmd_secrets_rotate)

    keys_parser = command(
        commands, "keys", "refresh published public keys", "Manage providers' public keys."
    )
    keys_commands = keys_parser.add_subparsers(
        dest="keys_command", metavar="COMMAND", required=True
    )
    refresh = command(
        keys_commands,
        "refresh",
        "fetch a provider's published key set into the source's secret",
        "Fetch the public keys the source's provider publishes (fal.ai: a JSON Web Key Set) "
        "and, when they changed, store them as the newest version of the source's secret. "
        "The ingress never fetches keys itself; older versions stay enabled until "
        "`hookpress secrets rotate SOURCE --retire`. Run it after the provider announces a "
        "new key, or on a schedule.",
        "example:\n  hookpress keys refresh fal",
    )
    refresh.add_argument("source", help="the source name")
    refresh.add_argument("--url", help="the key set's URL (default: the provider's own)")
    refresh.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    refresh.set_defaults(run=cmd_keys_refresh)

    from hookpress.cli import _smoke

    _smoke.add_parser(commands, command)
    return parser


# -- the context a command runs in -----------------------------------------------------


@dataclass
class Context:
    """The parsed arguments, where to write, and the stack (resolved on first use)."""

    args: argparse.Namespace
    out: Output
    env: Mapping[str, str]
    cwd: Path
    clock: Callable[[], float] = time.time
    _target: Target | None = field(default=None, repr=False)

    def option(self, name: str) -> Any:
        """A stack option, wherever it was given (None if nowhere)."""
        return getattr(self.args, name, None)

    def target(self) -> Target:
        """The stack, resolved and activated once."""
        if self._target is None:
            overrides = Overrides(
                project=self.option("project"),
                bucket=self.option("bucket"),
                database=self.option("database"),
                ingress_url=self.option("ingress_url"),
                events_topic=self.option("events_topic"),
                dead_subscription=self.option("dead_subscription"),
            )
            self._target = resolve(
                local=self.option("local"),
                stack_outputs=self.option("stack_outputs"),
                overrides=overrides,
                env=self.env,
                cwd=self.cwd,
            )
            self._target.activate()
        return self._target

    def now(self) -> datetime:
        """The current time, UTC."""
        return datetime.fromtimestamp(self.clock(), UTC)


def _usage(message: str) -> CliError:
    return CliError(message, ExitCode.USAGE)


def _parsed(parse: Callable[[], Any]) -> Any:
    try:
        return parse()
    except ValueError as exc:
        raise _usage(str(exc)) from None


def _source(target: Target, name: str) -> Source:
    try:
        return target.source(name)
    except TargetError as exc:
        if target.kind == "cloud" and target.ingress_url:
            # A source the outputs do not list: trust the operator, the ingress will say.
            return Source(name, None, f"hookpress-source-{name}", f"{target.ingress_url}/{name}")
        raise CliError(str(exc), ExitCode.NOT_FOUND) from None


def _read_body(ctx: Context, file: str | None, *, example_provider: str | None) -> bytes:
    if file is None and example_provider is not None:
        from hookpress.ops.sending import example_payload

        return example_payload(example_provider, ctx.clock(), secrets.token_hex(8))
    if file is None and sys.stdin.isatty():
        raise _usage("no body: give a FILE, - to read standard input, or --example (send)")
    if file is None or file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise _usage(f"cannot read {file}: {exc.strerror or exc}") from None


def _provider(ctx: Context, source: Source) -> str:
    """The source's provider (a scheme name is the provider of the same name)."""
    from hookpress.providers import PROVIDERS

    name: str | None = getattr(ctx.args, "scheme", None) or source.provider or source.scheme
    if name is None:
        raise CliError(
            f"the provider of source {source.name!r} is unknown on the {ctx.target().describe()}",
            ExitCode.CONFIG,
            "pass --provider, or set HOOKPRESS_SOURCES as the ingress has it",
        )
    if name not in PROVIDERS:
        raise _usage(f"unknown provider {name!r}: one of {', '.join(sorted(PROVIDERS))}")
    return name


def _signing_secret(ctx: Context, source: Source) -> str:
    given: str | None = ctx.args.secret
    if given:
        return given
    target = ctx.target()
    if source.signing_secrets:
        # An asymmetric key (Ed25519): the ingress holds the public half, this signs.
        return source.signing_secrets[0]
    values: tuple[str, ...] = ()
    if target.kind == "cloud" or target.secrets.backend == "file":
        values = target.secret_values().fetch(source.secret)
    values = values or source.inline_secrets
    if not values:
        raise CliError(
            f"no enabled value of secret {source.secret} (source {source.name!r})",
            ExitCode.CONFIG,
            "add one (hookpress secrets rotate) or pass --secret",
        )
    return values[0]


def _signed(ctx: Context, *, example: bool) -> Any:
    from hookpress.ops.sending import sign_request

    target = ctx.target()
    source = _source(target, ctx.args.source)
    provider = _provider(ctx, source)
    body = _read_body(ctx, ctx.args.file, example_provider=provider if example else None)
    try:
        return sign_request(
            source=source.name,
            scheme=provider,
            secret=_signing_secret(ctx, source),
            body=body,
            now=ctx.clock(),
            url=source.url,
            delivery_id=ctx.args.delivery_id,
            signed_url=source.public_url,
        )
    except ValueError as exc:
        # e.g. fal.ai signs with a private key only fal holds: pass --secret with a test key.
        raise CliError(f"cannot sign as {provider}: {exc}", ExitCode.CONFIG) from None


# -- commands --------------------------------------------------------------------------


def cmd_send(ctx: Context) -> ExitCode:
    """``hookpress send``."""
    import httpx

    from hookpress.ops.sending import post

    request = _signed(ctx, example=ctx.args.example)
    if request.url is None:
        raise CliError(
            "the ingress URL is unknown",
            ExitCode.CONFIG,
            "pass --ingress-url, set HOOKPRESS_INGRESS_URL, or give --stack-outputs",
        )
    with httpx.Client(timeout=ctx.args.timeout, follow_redirects=False) as client:
        try:
            result = post(client, request)
        except BackendError as exc:
            raise CliError(
                f"the ingress at {request.url} did not answer ({exc.detail})",
                ExitCode.UNAVAILABLE,
                _local_hint(ctx),
            ) from None
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "http_status": result.http_status,
                "status": result.status,
                "event_id": result.event_id,
                "error": result.error,
                "retry_after": result.retry_after,
                "provider_id": request.provider_id,
                "source": ctx.args.source,
                "url": request.url,
            }
        )
    else:
        colour = "green" if result.ok else "red"
        line = f"[{colour}]{result.http_status} {result.status}[/]"
        if result.event_id:
            line += f"  event_id={result.event_id}"
        if result.error:
            line += f"  error={result.error}"
        ctx.out.result(line)
        if result.event_id:
            ctx.out.note(f"[dim]follow it: hookpress events show {result.event_id}[/]")
    if result.ok:
        return ExitCode.OK
    if result.http_status == 503:
        return ExitCode.UNAVAILABLE
    return ExitCode.INCOMPLETE


def cmd_sign(ctx: Context) -> ExitCode:
    """``hookpress sign``."""
    request = _signed(ctx, example=False)
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "headers": request.headers,
                "url": request.url,
                "provider_id": request.provider_id,
                "event_key": request.event_key,
            }
        )
    else:
        for name, value in request.headers.items():
            ctx.out.plain(f"{name}: {value}")
        if request.url:
            ctx.out.note(f"[dim]POST the same bytes to {request.url} within 5 minutes[/]")
    return ExitCode.OK


def _event_key(ctx: Context) -> str:
    from hookpress.events import event_key

    args = ctx.args
    if args.key and (args.provider_id or args.source):
        raise _usage("give an event KEY, or --provider-id with --source, not both")
    if args.key:
        key = str(args.key).strip().lower()
        if not _KEY.match(key):
            raise _usage("an event key is 64 hex characters (see --provider-id to compute one)")
        return key
    if args.provider_id and args.source:
        return event_key(args.source, args.provider_id)
    raise _usage("give an event KEY, or --provider-id ID --source SOURCE")


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


def _selection(ctx: Context, *, since_default: str | None, limit: int | None) -> Selection:
    args = ctx.args
    now = ctx.now()
    since_text = args.since or since_default
    return Selection(
        statuses=_parsed(lambda: parse_statuses(args.status)) if args.status else (),
        since=_parsed(lambda: parse_when(since_text, now)) if since_text else None,
        until=_parsed(lambda: parse_when(args.until, now)) if args.until else None,
        sources=tuple(args.source or ()),
        limit=limit,
    )


def cmd_events_list(ctx: Context) -> ExitCode:
    """``hookpress events list``."""
    from hookpress.ops.selection import select

    limit = ctx.args.limit
    if limit < 1:
        raise _usage("--limit must be at least 1")
    selection = _selection(ctx, since_default="24h", limit=limit + 1)
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


def _replayer(ctx: Context, *, per_second: float, dry_run: bool, with_raw: bool) -> Any:
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


def _report(ctx: Context, report: Any, title: str) -> ExitCode:
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


def cmd_replay(ctx: Context) -> ExitCode:
    """``hookpress replay``."""
    args = ctx.args
    by_selection = bool(args.status or args.since or args.until)
    by_gcs = bool(args.gcs_prefix or args.day)
    modes = [bool(args.keys), by_selection, args.dead_letters, by_gcs]
    if sum(modes) != 1:
        raise _usage(
            "choose exactly one selection: KEYs, --status/--since/--until, --dead-letters, "
            "or --gcs-prefix/--day"
        )
    if args.source and (args.keys or args.dead_letters):
        raise _usage("--source narrows --status/--since/--until and --gcs-prefix/--day only")
    if args.limit is not None and args.limit < 1:
        raise _usage("--limit must be at least 1")
    if args.gcs_prefix and args.day:
        raise _usage("--gcs-prefix and --day both name raw objects: give one")
    if args.status:
        statuses = _parsed(lambda: parse_statuses(args.status))
        allowed = {"held", "failed", "dead", "received"}
        if args.stale_after:
            allowed.add("published")
        bad = [s for s in statuses if s not in allowed]
        if bad:
            raise _usage(
                f"{', '.join(bad)} events are not replayed (delivered is done, published is on "
                "its way unless --stale-after says otherwise): use held, failed, dead or received"
            )
    if args.via == "wordpress" and (args.dead_letters or by_gcs):
        raise _usage("--via wordpress replays KEYs and --status/--since/--until selections only")
    if args.stale_after and not (args.status and "published" in args.status):
        raise _usage("--stale-after applies to --status published only")
    for key in args.keys:
        if not _KEY.match(key):
            raise _usage(f"{key!r} is not an event key (64 hex characters)")
    # Everything the operator typed is checked before any stack is touched.
    per_second = _parsed(lambda: parse_rate(args.rate))
    selection = _selection(ctx, since_default=None, limit=args.limit) if by_selection else None
    day = _parsed(lambda: parse_day(args.day, ctx.now().date())) if args.day else None
    target = ctx.target()
    replayer = _replayer(ctx, per_second=per_second, dry_run=args.dry_run, with_raw=by_gcs)
    if args.stale_after:
        now = ctx.now()
        cutoff = _parsed(lambda: parse_when(args.stale_after, now))
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
    return _report(ctx, report, "replay")


def _direct(ctx: Context, target: Target, count: int, *, forced: bool) -> Any:
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


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


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

    per_second = _parsed(lambda: parse_rate(ctx.args.rate))
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
    replayer = _replayer(ctx, per_second=per_second, dry_run=False, with_raw=False)
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
    return _report(ctx, report, "held events replayed")


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


def _count_statuses(records: Any, statuses: Sequence[str]) -> dict[str, int]:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc
    from google.cloud.firestore_v1.base_query import FieldFilter

    counts: dict[str, int] = {}
    try:
        for status in statuses:
            query = records.collection().where(filter=FieldFilter("status", "==", status))
            result = query.count().get()
            counts[status] = int(result[0][0].value)
    except (gexc.GoogleAPIError, auth_exc.GoogleAuthError, OSError) as exc:
        raise BackendError("firestore", type(exc).__name__) from None
    return counts


def _new_secret(ctx: Context, source: Source) -> tuple[str, bool]:
    args = ctx.args
    if args.value:
        return args.value, False
    if args.value_file:
        if args.value_file == "-":
            return sys.stdin.read().strip(), False
        try:
            return Path(args.value_file).read_text(encoding="utf-8").strip(), False
        except OSError as exc:
            raise _usage(f"cannot read {args.value_file}: {exc.strerror or exc}") from None
    from hookpress.local.stack import generate_secret

    return generate_secret(source.provider or source.scheme or "hmac-timestamp"), True


def cmd_secrets_rotate(ctx: Context) -> ExitCode:
    """``hookpress secrets rotate``."""
    from hookpress.ops import rotation

    target = ctx.target()
    source = _source(target, ctx.args.source)
    writer = target.secret_writer()
    values = target.secret_values()
    generated: str | None = None
    try:
        if ctx.args.retire:
            result = rotation.retire(writer, values, source.secret)
        else:
            value, was_generated = _new_secret(ctx, source)
            generated = value if was_generated else None
            result = rotation.add_version(writer, values, source.secret, value)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    if target.kind == "local" and target.local_file is not None:
        rotation.sync_local_file(target.local_file, source.name, values.fetch(source.secret))
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "source": source.name,
                "secret": result.secret,
                "added": result.added,
                "retired": result.retired,
                "enabled": result.enabled,
                "value": generated,
            }
        )
        return ExitCode.OK
    if ctx.args.retire:
        if result.retired:
            ctx.out.note(
                f"Disabled version(s) {', '.join(result.retired)} of {result.secret}; only the "
                "newest is accepted once the ingress refreshes its cache (within 5 minutes)."
            )
        else:
            ctx.out.note(f"{result.secret} has only one enabled version: nothing to retire.")
        return ExitCode.OK
    ctx.out.note(
        f"Added version {result.added} of {result.secret} (source {source.name}); "
        f"{result.enabled} enabled version(s) are accepted now."
    )
    ctx.out.note(
        "Give the provider the new secret; once it signs with it, run "
        f"`hookpress secrets rotate {source.name} --retire`."
    )
    if generated is not None:
        ctx.out.plain(generated)
    return ExitCode.OK


def cmd_keys_refresh(ctx: Context) -> ExitCode:
    """``hookpress keys refresh``."""
    import httpx

    from hookpress.ops import keys, rotation
    from hookpress.providers import PROVIDERS

    target = ctx.target()
    source = _source(target, ctx.args.source)
    provider = PROVIDERS.get(_provider(ctx, source))
    url = ctx.args.url or (provider.keys_url if provider else None)
    if not url:
        raise _usage(f"source {source.name!r} has no published key set: its provider signs "
                     "with a shared secret (hookpress secrets rotate)")  # fmt: skip
    with httpx.Client(timeout=ctx.args.timeout, follow_redirects=False) as client:
        try:
            result = keys.refresh(
                client, url, target.secret_writer(), target.secret_values(), source.secret
            )
        except keys.KeySetError as exc:
            raise CliError(str(exc), ExitCode.INCOMPLETE) from None
    if target.kind == "local" and target.local_file is not None and result.added:
        values = target.secret_values().fetch(source.secret)
        rotation.sync_local_file(target.local_file, source.name, values)
    if ctx.out.json_mode:
        ctx.out.json({"source": source.name, "secret": result.secret, "added": result.added,
                      "keys": result.keys, "url": url})  # fmt: skip
    elif result.added:
        ctx.out.note(f"Stored {result.keys} key(s) from {url} as version {result.added} of "
                     f"{result.secret}; the ingress accepts them within 5 minutes.")  # fmt: skip
    else:
        ctx.out.note(f"{result.secret} already holds the {result.keys} key(s) at {url}.")
    return ExitCode.OK


# -- main ------------------------------------------------------------------------------


def _local_hint(ctx: Context) -> str | None:
    target = ctx._target
    if target is not None and target.kind == "local":
        return "is the local stack running? start it with `nox -s dev`"
    if target is not None:
        return "check your credentials (gcloud auth application-default login) and try again"
    return None


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    target: Target | None = None,
) -> int:
    """Run one command; return its exit code.

    ``env`` replaces the process environment and ``target`` the stack the
    command would resolve (for scripts and tests that already hold one).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else ExitCode.USAGE
    out = Output(json_mode=bool(getattr(args, "json", False)))
    ctx = Context(args=args, out=out, env=os.environ if env is None else env, cwd=Path.cwd())
    if target is not None:
        target.activate()
        ctx._target = target
    run: Callable[[Context], ExitCode] = args.run
    try:
        return int(run(ctx))
    except CliError as exc:
        out.error(exc.message, exc.hint)
        return int(exc.code)
    except (TargetError, SettingsError) as exc:
        out.error(str(exc))
        return int(ExitCode.CONFIG)
    except BackendError as exc:
        out.error(f"{exc.backend} is unavailable ({exc.detail})", _local_hint(ctx))
        return int(ExitCode.UNAVAILABLE)
    except KeyboardInterrupt:
        out.error("interrupted: what was done stands (replay is idempotent: run it again)")
        return int(ExitCode.INTERRUPTED)
