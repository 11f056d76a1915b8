"""``hookpress smoke``: its flags and its body, side by side."""

from __future__ import annotations

from hookpress.backends import BackendError
from hookpress.cli._context import Context, newest_secret
from hookpress.cli._exit import CliError, ExitCode
from hookpress.cli._parser import Commands, add_command

__all__ = ["add_parser", "cmd_smoke"]

_MARK = {True: "[green]✓[/]", False: "[red]✗[/]"}


def add_parser(commands: Commands) -> None:
    """Register ``smoke``."""
    smoke = add_command(
        commands,
        "smoke",
        "check a stack end to end: one signed event through to WordPress",
        "The check after `pulumi up` (give --stack-outputs) or against a local stack: sign a "
        "test event with the stack's smoke source, wait until it is delivered into WordPress, "
        "check that the dead-letter subscription holds nothing new and that the reconcile job "
        "has run recently. One verdict per check; exit 0 when all pass, 1 when one fails, 5 "
        "when a backend could not be reached (retry).",
        "examples:\n  pulumi stack output --json > stack.json && hookpress smoke "
        "--stack-outputs stack.json\n  hookpress smoke                      the local stack",
    )
    smoke.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for delivery (default 120)"
    )
    smoke.set_defaults(run=cmd_smoke)


def cmd_smoke(ctx: Context) -> ExitCode:
    """``hookpress smoke``."""
    import httpx

    from hookpress.ops.smoke import Smoke

    target = ctx.target()
    if target.smoke_source is None:
        raise CliError(
            f"the {target.describe()} names no smoke source",
            ExitCode.CONFIG,
            "deploy with hookpress:smokeSource true (the default), or start the local stack "
            "with `nox -s dev`",
        )
    source = target.source(target.smoke_source)
    secret = newest_secret(target, source)
    if secret is None:
        raise CliError(
            f"no enabled value of secret {source.secret} (the smoke source {source.name!r})",
            ExitCode.CONFIG,
            "the program stores one on `pulumi up`; check hookpress:smokeSource",
        )
    ctx.out.note(f"[dim]smoke test of the {target.describe()}[/]")

    def progress(line: str) -> None:
        if not ctx.out.json_mode:
            ctx.out.note(f"[dim]… {line}[/]")

    with httpx.Client(timeout=30.0, follow_redirects=False) as client:
        try:
            report = Smoke(
                target, client, secret, timeout_s=ctx.args.timeout, progress=progress
            ).run()
        except BackendError as exc:  # a backend failing outside a check's own handling
            raise CliError(
                f"{exc.backend} is unavailable ({exc.detail})", ExitCode.UNAVAILABLE
            ) from None
    if ctx.out.json_mode:
        ctx.out.json(
            {
                "ok": report.ok,
                "event_key": report.event_key,
                "checks": [
                    {"name": c.name, "ok": c.ok, "unavailable": c.unavailable, "detail": c.detail}
                    for c in report.checks
                ],
            }
        )
    else:
        for check in report.checks:
            mark = "[yellow]?[/]" if check.unavailable else _MARK[check.ok]
            ctx.out.result(f"{mark} {check.name:<13} {check.detail}")
    if report.ok:
        return ExitCode.OK
    return ExitCode.UNAVAILABLE if report.unavailable else ExitCode.INCOMPLETE
