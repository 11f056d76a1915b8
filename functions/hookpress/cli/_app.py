"""The ``hookpress`` command line: the command tree, and :func:`main` with its exit codes.

Each command group lives in a module of its own, its flags beside its body:
``_send`` (send, sign), ``_events`` (events show, list), ``_replay``,
``_control`` (pause, resume, status), ``_secrets`` (secrets rotate), ``_keys``
(keys refresh) and ``_smoke``. What they share is in ``_parser`` (the help
layout, the stack options) and ``_context`` (the stack, usage errors, sources).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hookpress.backends import BackendError
from hookpress.cli import _control, _events, _keys, _replay, _secrets, _send, _smoke
from hookpress.cli._context import Context
from hookpress.cli._exit import EXIT_CODES_HELP, CliError, ExitCode
from hookpress.cli._output import Output
from hookpress.cli._parser import Formatter, stack_options
from hookpress.ops.target import Target, TargetError
from hookpress.settings import SettingsError

__all__ = ["build_parser", "main"]

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


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree, in the order ``hookpress --help`` lists it."""
    parser = argparse.ArgumentParser(
        prog="hookpress",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    from hookpress import __version__

    parser.add_argument("--version", action="version", version=f"hookpress {__version__}")
    stack_options(parser, nested=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _send.add_parser(commands)  # send, sign
    _events.add_parser(commands)  # events show, events list
    _replay.add_parser(commands)
    _control.add_parser(commands)  # pause, resume, status
    _secrets.add_parser(commands)  # secrets rotate
    _keys.add_parser(commands)  # keys refresh
    _smoke.add_parser(commands)
    return parser


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
        ctx.use(target)
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
        out.error(f"{exc.backend} is unavailable ({exc.detail})", ctx.unavailable_hint())
        return int(ExitCode.UNAVAILABLE)
    except KeyboardInterrupt:
        out.error("interrupted: what was done stands (replay is idempotent: run it again)")
        return int(ExitCode.INTERRUPTED)
