"""``hookpress secrets rotate``: a new version of a source's signing secret, or retire the old."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hookpress.cli._context import Context, source_named, usage
from hookpress.cli._exit import ExitCode
from hookpress.cli._parser import Commands, add_command, add_group

if TYPE_CHECKING:
    from hookpress.ops.target import Source

__all__ = ["add_parser", "cmd_secrets_rotate"]


def add_parser(commands: Commands) -> None:
    """Register ``secrets`` and its command."""
    secrets = add_group(
        commands, "secrets", "rotate signing secrets", "Manage sources' signing secrets."
    )
    rotate = add_command(
        secrets,
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


def cmd_secrets_rotate(ctx: Context) -> ExitCode:
    """``hookpress secrets rotate``."""
    from hookpress.ops import rotation

    target = ctx.target()
    source = source_named(target, ctx.args.source)
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
        raise usage(str(exc)) from None
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
            raise usage(f"cannot read {args.value_file}: {exc.strerror or exc}") from None
    from hookpress.local.stack import generate_secret

    return generate_secret(source.provider or source.scheme or "hmac-timestamp"), True
