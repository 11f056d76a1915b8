"""Hostile requests for the ingress: hypothesis strategies bound to one run's secrets.

Genuinely signed events for every scheme, the same with one thing broken,
random header soup, strict-JSON traps under a valid signature, bodies at and
over the size limit, lying lengths, chunked bodies (in chunks of any size),
content encodings, methods (some the server's parser refuses) and request
targets as a hostile client writes them (repeated slashes, encoded slashes
and newlines, queries, ``*``); :meth:`Strategies.cases` mixes them.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Mapping, Sequence

from hypothesis import strategies as st

from bench.fuzz.oracle import (
    ALL_SIGNATURE_HEADERS,
    MAX_BODY,
    SIGNATURE_HEADERS,
    SOURCES,
    TOLERANCE,
    Case,
)

_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:"
#: header value characters: U+0020 to U+00FF but DEL (C1 controls included)
HEADER_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
_NONCE = itertools.count()


def next_nonce() -> str:
    """A fresh number of fixed width. Hypothesis replays cases while it explores; a
    nonce that grows a digit would change a body's length between a case and its
    replay, and with it the bounds of the next draw (FlakyStrategyDefinition)."""
    return f"{next(_NONCE):010d}"


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
#: any JSON value, small: scalars, lists and objects a few levels deep
JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
#: Bodies the strict parser must refuse (400) even under a valid signature.
NASTY_BODIES: tuple[bytes, ...] = (
    b"",
    b"null",
    b"[]",
    b'"a string"',
    b"42",
    b'{"id": "x", "id": "y"}',
    b'{"id": NaN}',
    b'{"n": Infinity}',
    b'{"n": -Infinity}',
    b'{"s": "\\ud800"}',
    b'{"s": "\\udfff\\ud800"}',
    b"\xef\xbb\xbf{}",
    b'{"a": 1} trailing',
    b'{"a": 1',
    b"{'a': 1}",
    b"\xff\xfe{}",
    b'{"s": "\xc3\x28"}',
    b'{"a": [' * 70 + b"1" + b"]" * 70 + b"}",
    b'{"a": ' * 100 + b"1" + b"}" * 100,
    b'{"id": ""}',
    b'{"id": "' + b"x" * 300 + b'"}',
    b'{"id": "a\\nb"}',
    b'{"id": true}',
    b'{"event_id": "a\\u0000b", "id": "a\\u0000b"}',
    b'{"type": "url_verification", "challenge": ""}',
    b'{"type": "url_verification", "challenge": 7}',
)
_TS_GARBAGE = (
    "",
    " ",
    "-1",
    "+1700000000",
    "1e9",
    "0x10",
    "9" * 16,
    "9" * 40,
    "\u0661\u0667\u0660\u0660",
    "1700000000.5",
    "NaN",
    "None",
    "01",
)
_ENCODINGS = (
    "gzip",
    "deflate",
    "br",
    "x-gzip",
    "compress",
    "zstd",
    "gzip, identity",
    "identity;q=0",
)
#: The function's other methods (the ingress's 405), methods llhttp knows but no route
#: serves (Starlette's 405), and methods llhttp refuses (uvicorn's 400: it knows methods
#: by their upper-case names only).
_METHODS = (
    "GET",
    "PUT",
    "PATCH",
    "DELETE",
    "OPTIONS",
    "HEAD",
    "TRACE",
    "PROPFIND",
    "PURGE",
    "FOO",
    "post",
    "Post",
)
#: Request targets ({s}: the case's source) for what the server and the framework do
#: before the function: repeated and encoded slashes, an encoded newline (the route's
#: ``$`` matches before a final one; one elsewhere routes nowhere, and with a trailing
#: slash is redirected), a query, a fragment, functions-framework's own 404 paths, ``*``.
_TARGETS = (
    "//{s}",
    "/{s}//",
    "//{s}//",
    "/%2F{s}",
    "/{s}%2F",
    "/{s}%2f",
    "/%73%74%72%69%70%65",
    "/{s}?",
    "/{s}?x=1&y",
    "/{s}/?{s}",
    "/?{s}",
    "/{s}#top",
    "/{s}%0a",
    "/{s}%0A/",
    "/{s}%0a%0a",
    "/a%0ab/",
    "/%0a/",
    "/%0a",
    "/{s}%00",
    "/{s}%ff",
    "/%20{s}",
    "/x/%2e%2e/{s}",
    "/robots.txt",
    "/favicon.ico",
    "/robots.txt%0a",
    "/robots.txt/",
    "/",
    "*",
)


class Strategies:
    """Strategies bound to one run's secrets."""

    def __init__(self, keys: Mapping[str, Sequence[str]]) -> None:
        self.keys = keys

    def json_payload(self) -> st.SearchStrategy[bytes]:
        """A JSON object with a fresh, valid id (and the same as Slack's ``event_id``)."""

        @st.composite
        def build(draw: st.DrawFn) -> bytes:
            extra = draw(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=4))
            for reserved in ("id", "event_id", "type", "challenge"):
                extra.pop(reserved, None)
            ident = draw(st.text(alphabet=_ID_CHARS, min_size=1, max_size=24))
            nonce = next_nonce()
            obj = {"id": f"fz_{ident}_{nonce}", "event_id": f"Ev{ident}{nonce}", **extra}
            if draw(st.booleans()):
                obj["type"] = draw(st.sampled_from(["order.paid", "batch.completed", "x"]))
            return json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()

        return build()

    def _sign(
        self,
        source: str,
        body: bytes,
        *,
        secret: str,
        offset: float,
        delivery_id: str | None,
    ) -> list[tuple[str, str]]:
        from hookpress.signatures import SCHEMES

        signed = SCHEMES[source].sign(
            body, secret, now=time.time() + offset, delivery_id=delivery_id
        )
        return [("Content-Type", "application/json"), *signed.items()]

    def signed(
        self, bodies: st.SearchStrategy[bytes] | None = None, kind: str = "signed"
    ) -> st.SearchStrategy[Case]:
        """A genuinely signed request for a configured source."""
        body_strategy = bodies if bodies is not None else self.json_payload()

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            source = draw(st.sampled_from(SOURCES))
            body = draw(body_strategy)
            secret = draw(st.sampled_from(list(self.keys[source])))
            offset = draw(st.integers(-(TOLERANCE - 10), TOLERANCE - 10))
            delivery = draw(st.none() | st.text(alphabet=_ID_CHARS, min_size=1, max_size=40))
            if delivery is not None:
                delivery = f"{delivery}-{next_nonce()}"
            headers = self._sign(source, body, secret=secret, offset=offset, delivery_id=delivery)
            path = draw(st.sampled_from([f"/{source}", f"/{source}/"]))
            return Case(kind, "POST", path, headers, body, pristine=bodies is None)

        return build()

    def mutated(self) -> st.SearchStrategy[Case]:
        """A signed request with exactly one thing broken (or harmlessly changed)."""

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            case = draw(self.signed(kind="mutated"))
            case.pristine = False
            source = case.path.strip("/")
            mutation = draw(
                st.sampled_from(
                    [
                        "truncate",
                        "flip",
                        "swapcase",
                        "drop",
                        "empty",
                        "whitespace",
                        "duplicate",
                        "stale",
                        "ts_garbage",
                        "body_flip",
                        "body_append",
                        "body_truncate",
                        "wrong_secret",
                        "other_scheme",
                        "extra_entry",
                        "prefix",
                        "id_change",
                    ]
                )
            )
            case.kind = f"mutated:{mutation}"
            sig_names = [n for n, _ in case.headers if n.lower() in SIGNATURE_HEADERS[source]]
            target = draw(st.sampled_from(sig_names))
            idx = next(i for i, (n, _) in enumerate(case.headers) if n == target)
            name, value = case.headers[idx]
            if mutation == "truncate":
                cut = draw(st.integers(0, max(0, len(value) - 1)))
                case.headers[idx] = (name, value[:cut])
            elif mutation == "flip" and value:
                pos = draw(st.integers(0, len(value) - 1))
                char = draw(HEADER_CHARS)
                case.headers[idx] = (name, value[:pos] + char + value[pos + 1 :])
            elif mutation == "swapcase":
                case.headers[idx] = (name, value.swapcase())
            elif mutation == "drop":
                del case.headers[idx]
            elif mutation == "empty":
                case.headers[idx] = (name, draw(st.sampled_from(["", " ", "\t"])))
            elif mutation == "whitespace":
                pad = draw(st.sampled_from([" ", "\t", "  "]))
                where = draw(st.sampled_from(["both", "inside"]))
                mid = len(value) // 2
                new = f"{pad}{value}{pad}" if where == "both" else value[:mid] + pad + value[mid:]
                case.headers[idx] = (name, new)
            elif mutation == "duplicate":
                other = draw(st.sampled_from([value, "", "garbage", value[::-1]]))
                case.headers.insert(idx + draw(st.integers(0, 1)), (name, other))
            elif mutation == "stale":
                shift = draw(st.integers(TOLERANCE + 5, 10**9)) * draw(st.sampled_from([-1, 1]))
                secret = self.keys[source][0]
                case.headers = self._sign(
                    source, case.body, secret=secret, offset=shift, delivery_id=None
                )
            elif mutation == "ts_garbage":
                ts_names = [n for n, _ in case.headers if "timestamp" in n.lower()]
                garbage = draw(st.sampled_from(_TS_GARBAGE))
                if ts_names:
                    j = next(i for i, (n, _) in enumerate(case.headers) if n == ts_names[0])
                    case.headers[j] = (ts_names[0], garbage)
                elif source == "stripe":
                    case.headers[idx] = (name, re.sub(r"t=\d+", f"t={garbage}", value))
                else:
                    case.headers[idx] = (name, garbage)
            elif mutation == "body_flip" and case.body:
                pos = draw(st.integers(0, len(case.body) - 1))
                byte = draw(st.integers(0, 255))
                case.body = case.body[:pos] + bytes([byte]) + case.body[pos + 1 :]
            elif mutation == "body_append":
                case.body += draw(st.sampled_from([b" ", b"\n", b"\x00", b"{}", b"x"]))
            elif mutation == "body_truncate":
                case.body = case.body[: draw(st.integers(0, max(0, len(case.body) - 1)))]
            elif mutation == "wrong_secret":
                from hookpress.local.stack import generate_secret

                case.headers = self._sign(
                    source, case.body, secret=generate_secret(source), offset=0, delivery_id=None
                )
            elif mutation == "other_scheme":
                other = draw(st.sampled_from([s for s in SOURCES if s != source]))
                secret = draw(st.sampled_from(list(self.keys[source]) + list(self.keys[other])))
                case.headers = self._sign(
                    other, case.body, secret=secret, offset=0, delivery_id=None
                )
            elif mutation == "extra_entry":
                junk = draw(
                    st.sampled_from(
                        ["v1,", "v1", "v1,a,b", "v1=zz", "t=1", ",", "v1,!!!!", "v0,AAAA"]
                    )
                )
                sep = " " if source == "standard-webhooks" else ","
                case.headers[idx] = (name, f"{value}{sep}{junk}")
            elif mutation == "prefix":
                case.headers[idx] = (
                    name,
                    draw(st.sampled_from(["sha1=", "v1=", "v0:", "SHA256=", "=", "t="])) + value,
                )
            elif mutation == "id_change":
                id_names = [
                    n
                    for n, _ in case.headers
                    if n.lower() in {"webhook-id", "x-github-delivery", "x-shopify-webhook-id"}
                ]
                if id_names:
                    j = next(i for i, (n, _) in enumerate(case.headers) if n == id_names[0])
                    new_id = draw(st.text(HEADER_CHARS, max_size=300))
                    case.headers[j] = (id_names[0], new_id)
            return case

        return build()

    def soup(self) -> st.SearchStrategy[Case]:
        """Random headers from every scheme's vocabulary, random values, random bodies."""

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            source = draw(st.sampled_from(SOURCES))
            names = draw(st.lists(st.sampled_from(ALL_SIGNATURE_HEADERS), max_size=5))
            values = st.text(HEADER_CHARS, max_size=120) | st.sampled_from(
                [
                    "v1,AAAA",
                    "t=1,v1=00",
                    "sha256=" + "0" * 64,
                    "v0=" + "f" * 64,
                    "A" * 43 + "=",
                    str(int(time.time())),
                ]
            )
            headers = [(n, draw(values)) for n in names]
            body = draw(st.binary(max_size=256) | self.json_payload())
            return Case("soup", "POST", f"/{source}", headers, body)

        return build()

    def strict_json(self) -> st.SearchStrategy[Case]:
        """Bodies the strict parser must refuse, under a genuine signature."""
        return self.signed(
            st.sampled_from(NASTY_BODIES) | st.binary(max_size=128), kind="strict_json"
        )

    def sizes(self) -> st.SearchStrategy[Case]:
        """Bodies at and over the limit, lying lengths, chunked transfer."""

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            variant = draw(
                st.sampled_from(
                    [
                        "at_limit",
                        "over_limit",
                        "far_over",
                        "lie_long",
                        "lie_short",
                        "chunked",
                        "chunked_at_limit",
                        "chunked_over",
                    ]
                )
            )
            if variant in {"at_limit", "over_limit", "far_over"} or variant.startswith("chunked_"):
                size = {
                    "at_limit": MAX_BODY - draw(st.integers(0, 2)),
                    "over_limit": MAX_BODY + draw(st.integers(1, 3)),
                    "far_over": MAX_BODY * draw(st.integers(2, 4)),
                    "chunked_at_limit": MAX_BODY - draw(st.integers(0, 2)),
                    "chunked_over": MAX_BODY + draw(st.integers(1, MAX_BODY)),
                }[variant]
                nonce = next_nonce().encode()
                pad = size - len(b'{"id":"big","p":""}') - len(nonce)
                body = b'{"id":"big' + nonce + b'","p":"' + b"a" * max(0, pad) + b'"}'
                case = draw(self.signed(st.just(body), kind=f"size:{variant}"))
                case.pristine = False
                if variant.startswith("chunked_"):
                    # no length to refuse early by: the ingress must stop reading past the limit
                    case.chunked = True
                    case.piece = draw(st.sampled_from([4096, 16384, 65536]))
                return case
            case = draw(self.signed(kind=f"size:{variant}"))
            case.pristine = False
            if variant == "lie_long":
                case.declared_length = len(case.body) + draw(st.integers(1, 10_000))
            elif variant == "lie_short":
                case.declared_length = draw(st.integers(0, max(0, len(case.body) - 1)))
            else:
                case.chunked = True
                case.piece = draw(st.integers(1, max(1, len(case.body))))
                case.pristine = True  # a chunked, genuinely signed event is still an event
            return case

        return build()

    def encodings(self) -> st.SearchStrategy[Case]:
        """A genuine request with a Content-Encoding."""

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            case = draw(self.signed(kind="encoding"))
            enc = draw(st.sampled_from(_ENCODINGS) | st.text(HEADER_CHARS, min_size=1, max_size=20))
            case.headers.append(("Content-Encoding", enc))
            case.pristine = enc.strip().lower() in {"", "identity"}
            return case

        return build()

    def routes(self) -> st.SearchStrategy[Case]:
        """Other methods, unknown and odd request targets, or both (signed or not)."""

        @st.composite
        def build(draw: st.DrawFn) -> Case:
            case = draw(self.signed(kind="route"))
            case.pristine = False
            what = draw(st.sampled_from(["method", "path", "both"]))
            case.kind = f"route:{what}"
            if what != "path":
                case.method = draw(st.sampled_from(_METHODS))
            if what != "method":
                source = case.path.strip("/")
                segment = draw(
                    st.text(
                        st.characters(
                            min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#%"
                        ),
                        max_size=40,
                    )
                    | st.sampled_from(
                        [
                            "",
                            "STRIPE",
                            "stripe%2F",
                            "%73tripe",
                            "stripe/x",
                            "../stripe",
                            "stripe.json",
                            "a" * 300,
                        ]
                    )
                )
                # the target as is: the fuzzer writes the request line itself
                case.path = draw(
                    st.just("/" + segment)
                    | st.sampled_from(_TARGETS).map(lambda t: t.format(s=source))
                )
            return case

        return build()

    def cases(self) -> st.SearchStrategy[Case]:
        """The mixture: most cases never reach the backends."""
        weighted: list[tuple[int, st.SearchStrategy[Case]]] = [
            (2, self.signed()),
            (34, self.mutated()),
            (30, self.soup()),
            (10, self.strict_json()),
            (2, self.sizes()),
            (8, self.encodings()),
            (14, self.routes()),
        ]
        pool = [strategy for weight, strategy in weighted for _ in range(weight)]
        return st.sampled_from(pool).flatmap(lambda strategy: strategy)
