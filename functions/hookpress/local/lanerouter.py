"""Pub/Sub subscription filters, applied locally: the emulator stores them but ignores them.

Measured with the Pub/Sub emulator the local stack runs: three subscriptions
created with the filters of :func:`hookpress.lanes.lane_filter` each received
every test message (high, bulk, normal and one without the attribute), and
``get_subscription`` returned the filters unchanged
(``tests/integration/test_providers_ingress.py`` keeps that measurement). In
the cloud, Pub/Sub evaluates a subscription's filter at publish time: a
message that does not match never enters that subscription's backlog.

So locally :class:`LaneRouter` plays that part. One router subscription on the
``events`` topic pushes every message to it; it evaluates each lane's own
filter string (the one the cloud subscription gets) with :func:`matches`,
publishes the message — same data, same attributes — to that lane's topic,
and only then answers 204 (a failed publish is a 503 and redelivered:
nothing is lost). Each lane's push subscription (retry and dead-letter
policy as in the cloud) is on its lane's topic, so its backlog holds its
lane's messages only, as in the cloud; a bulk flood never queues in front of
a high message. :func:`matches` implements the part of the filter grammar the
lanes use — ``attributes.K = "v"``, ``attributes.K != "v"``, ``attributes:K``,
``NOT``, ``AND``, ``OR`` and parentheses — with the documented semantics
(https://cloud.google.com/pubsub/docs/subscription-message-filter): ``!=`` is
true for a message without the attribute. A message matching no lane, or
more than one, is a bug in the filters: the router counts it and answers 500.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

from hookpress.local.faultproxy import QuietHTTPServer

__all__ = ["FilterSyntaxError", "LaneRouter", "matches"]

_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<op>!=|=|:)|(?P<str>"(?:[^"\\]|\\.)*")'
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.\-]*))"
)


class FilterSyntaxError(ValueError):
    """A filter outside the supported grammar."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FilterSyntaxError(f"cannot read the filter at {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, attributes: Mapping[str, str]) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.attributes = attributes

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterSyntaxError("the filter ends too early")
        self.i += 1
        return token

    def expr(self) -> bool:
        return self.chain("OR", self.term)

    def term(self) -> bool:
        return self.chain("AND", self.factor)

    def chain(self, word: str, operand: Callable[[], bool]) -> bool:
        """``operand (word operand)*``: OR of terms, AND of factors (both sides always read)."""
        values = [operand()]
        while self.peek() == ("word", word):
            self.take()
            values.append(operand())
        return any(values) if word == "OR" else all(values)

    def factor(self) -> bool:
        kind, text = self.take()
        if (kind, text) == ("word", "NOT"):
            return not self.factor()
        if kind == "lp":
            value = self.expr()
            if self.take()[0] != "rp":
                raise FilterSyntaxError("a parenthesis is not closed")
            return value
        if kind != "word" or not text.startswith("attributes"):
            raise FilterSyntaxError(f"unexpected {text!r}")
        op_kind, op = self.take()
        if op_kind != "op":
            raise FilterSyntaxError(f"expected an operator after {text!r}")
        if op == ":":
            _, key = self.take()
            return key in self.attributes
        key = text.removeprefix("attributes.")
        str_kind, literal = self.take()
        if str_kind != "str":
            raise FilterSyntaxError("a comparison needs a quoted value")
        wanted = str(json.loads(literal))
        have = self.attributes.get(key)
        return have == wanted if op == "=" else have != wanted

    def run(self) -> bool:
        value = self.expr()
        if self.peek() is not None:
            raise FilterSyntaxError(f"unexpected {self.peek()!r}")
        return value


def matches(filter_text: str | None, attributes: Mapping[str, str]) -> bool:
    """Whether a message with ``attributes`` passes ``filter_text`` (None or "" passes all)."""
    if not filter_text:
        return True
    return _Parser(filter_text, attributes).run()


class _Handler(BaseHTTPRequestHandler):
    server: _RouterServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        status = self.server.router.handle_push(self.rfile.read(length))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """One line per push would drown the stack's own log lines."""


class _RouterServer(QuietHTTPServer):
    router: LaneRouter


class LaneRouter:
    """Routes the events topic's messages to per-lane topics by the lanes' real filters.

    The router subscription pushes here (push is the emulator's fast path: a
    streaming pull added about a second per message). A message is answered
    204 once its lane's topic has it, 503 otherwise (Pub/Sub redelivers).
    """

    def __init__(self, project: str, topics: Mapping[str, str], filters: Mapping[str, str]) -> None:
        for rule in filters.values():
            matches(rule, {})  # refuse an unsupported filter at start, not per message
        self.project = project
        self.topics = dict(topics)  # lane -> topic path
        self.filters = dict(filters)  # lane -> filter string
        self.counts: dict[str, int] = dict.fromkeys(topics, 0) | {"unroutable": 0}
        self._lock = threading.Lock()
        self._publisher: Any = None
        self._server: _RouterServer | None = None

    def route(self, attributes: Mapping[str, str]) -> str | None:
        """The one lane whose filter the message matches (None: none or several)."""
        lanes = [lane for lane, rule in self.filters.items() if matches(rule, attributes)]
        return lanes[0] if len(lanes) == 1 else None

    def handle_push(self, envelope: bytes) -> int:
        """Republish one pushed message to its lane's topic; the HTTP status to answer."""
        try:
            message = json.loads(envelope)["message"]
            attributes = {str(k): str(v) for k, v in (message.get("attributes") or {}).items()}
            data = base64.b64decode(message.get("data") or "")
        except (ValueError, KeyError, TypeError, AttributeError):
            return 400
        lane = self.route(attributes)
        if lane is None:
            with self._lock:
                self.counts["unroutable"] += 1
            return 500  # a bug in the filters: redelivered, then dead-lettered, never dropped
        try:
            self._publisher.publish(self.topics[lane], data, **attributes).result(timeout=30)
        except Exception:  # noqa: BLE001 - any failure: Pub/Sub redelivers, nothing is lost
            return 503
        with self._lock:
            self.counts[lane] += 1
        return 204

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT/ (the router subscription's push endpoint)."""
        if self._server is None:
            raise RuntimeError("the router is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> LaneRouter:
        """Listen on a free loopback port."""
        from google.cloud import pubsub_v1

        self._publisher = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.001, max_messages=100)
        )
        server = _RouterServer(("127.0.0.1", 0), _Handler)
        server.router = self
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True, name="lane-router").start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
