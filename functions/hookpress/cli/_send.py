"""``hookpress send`` and ``hookpress sign``: a body signed as its provider would."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hookpress.backends import BackendError
from hookpress.cli._context import Context, newest_secret, provider_of, source_named, usage
from hookpress.cli._exit import CliError, ExitCode
from hookpress.cli._parser import Commands, add_command

if TYPE_CHECKING:
    from hookpress.ops.sending import SignedRequest
    from hookpress.ops.target import Source

__all__ = ["add_parser", "cmd_send", "cmd_sign"]


def add_parser(commands: Commands) -> None:
    """Register ``send`` and ``sign``."""
    send = add_command(
        commands,
        "send",
        "sign a webhook as its provider would and POST it to the ingress",
        "Sign the body with the source's scheme and newest secret, POST it to the "
        "source's ingress URL, print the answer and the event id (the event key).",
        "example:\n  hookpress send stripe --example\n  hookpress send github payload.json",
    )
    send.add_argument("source", help="the source name (the URL path segment)")
    _body_arguments(send)
    send.add_argument(
        "--example", action="store_true", help="send a generated example event (a fresh id)"
    )
    send.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    send.set_defaults(run=cmd_send)

    sign = add_command(
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
    _body_arguments(sign)
    sign.set_defaults(run=cmd_sign)


def _body_arguments(parser: argparse.ArgumentParser) -> None:
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
                ctx.unavailable_hint(),
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


def _signed(ctx: Context, *, example: bool) -> SignedRequest:
    from hookpress.ops.sending import sign_request

    target = ctx.target()
    source = source_named(target, ctx.args.source)
    provider = provider_of(ctx, source)
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


def _read_body(ctx: Context, file: str | None, *, example_provider: str | None) -> bytes:
    if file is None and example_provider is not None:
        from hookpress.ops.sending import example_payload

        return example_payload(example_provider, ctx.clock(), secrets.token_hex(8))
    if file is None and sys.stdin.isatty():
        raise usage("no body: give a FILE, - to read standard input, or --example (send)")
    if file is None or file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise usage(f"cannot read {file}: {exc.strerror or exc}") from None


def _signing_secret(ctx: Context, source: Source) -> str:
    given: str | None = ctx.args.secret
    if given:
        return given
    if source.signing_secrets:
        # An asymmetric key (Ed25519): the ingress holds the public half, this signs.
        return source.signing_secrets[0]
    value = newest_secret(ctx.target(), source)
    if value is None:
        raise CliError(
            f"no enabled value of secret {source.secret} (source {source.name!r})",
            ExitCode.CONFIG,
            "add one (hookpress secrets rotate) or pass --secret",
        )
    return value
