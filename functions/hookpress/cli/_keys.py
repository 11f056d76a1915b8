"""``hookpress keys refresh``: a provider's published public keys stored as a secret version."""

from __future__ import annotations

from hookpress.cli._context import Context, provider_of, source_named, usage
from hookpress.cli._exit import CliError, ExitCode
from hookpress.cli._parser import Commands, add_command, add_group

__all__ = ["add_parser", "cmd_keys_refresh"]


def add_parser(commands: Commands) -> None:
    """Register ``keys`` and its command."""
    keys = add_group(
        commands, "keys", "refresh published public keys", "Manage providers' public keys."
    )
    refresh = add_command(
        keys,
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


def cmd_keys_refresh(ctx: Context) -> ExitCode:
    """``hookpress keys refresh``."""
    import httpx

    from hookpress.ops import keys, rotation
    from hookpress.providers import PROVIDERS

    target = ctx.target()
    source = source_named(target, ctx.args.source)
    provider = PROVIDERS.get(provider_of(ctx, source))
    url = ctx.args.url or (provider.keys_url if provider else None)
    if not url:
        raise usage(
            f"source {source.name!r} has no published key set: its provider signs "
            "with a shared secret (hookpress secrets rotate)"
        )
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
        ctx.out.json(
            {
                "source": source.name,
                "secret": result.secret,
                "added": result.added,
                "keys": result.keys,
                "url": url,
            }
        )
    elif result.added:
        ctx.out.note(
            f"Stored {result.keys} key(s) from {url} as version {result.added} of "
            f"{result.secret}; the ingress accepts them within 5 minutes."
        )
    else:
        ctx.out.note(f"{result.secret} already holds the {result.keys} key(s) at {url}.")
    return ExitCode.OK
