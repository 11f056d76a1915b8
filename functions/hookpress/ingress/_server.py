"""The ingress's server: uvicorn's worker as functions-framework starts it, made to keep
two rules the default mode's server kept: a bounded request head, and no reading of a
body nobody will use.

functions-framework serves an ``aio`` function under gunicorn with uvicorn's worker
(``uvicorn_worker.UvicornWorker``), which takes httptools (a C HTTP parser) and
uvloop when they are installed, as the ingress's requirements install them. In the
default mode gunicorn bounded each header field (8,190 bytes) and their number
(100); httptools bounds neither, and functions-framework sets no limit on the
request line in either mode. Left so, a request's head could hold as much as
Cloud Run lets through (32 MiB an HTTP/1 request:
https://cloud.google.com/run/quotas), outside the memory rule the Pulumi program
keeps (``hookpress.config_rules``), once per concurrent request.

:func:`harden_the_server` makes the worker use :class:`EdgeProtocol`: uvicorn's own
httptools protocol that counts the bytes of each request's head as they arrive
and answers 431 and closes the connection once they pass :data:`MAX_HEAD_BYTES`,
before the head is whole. It also closes a connection whose answer is complete
while its request's body is still arriving. The ingress's own refusals say
``Connection: close`` (``hookpress.ingress._http.respond``); what
functions-framework's routes answer before the function runs (a 405 for a method
they do not list, a 404, Starlette's 307) says nothing, and uvicorn would read and
drop the rest of such an upload to find the next request.

functions-framework chooses the worker class itself; the class attribute the
worker reads its settings from is the one way in (uvicorn documents subclassing
the worker to change them). Without httptools, uvicorn parses with h11, which
bounds the head itself (16 KiB) but keeps reading an unused body.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from hookpress.ingress._http import answer
from hookpress.ingress._pipeline import Outcome, Result
from hookpress.logs import Logger

__all__ = ["MAX_HEAD_BYTES", "harden_the_server"]

#: A request line and headers larger than this are refused with 431. Webhook heads are a
#: few KiB (a signature, a timestamp, an id, the platform's forwarding headers).
MAX_HEAD_BYTES = 64 * 1024

_log = Logger("ingress")


def harden_the_server() -> bool:
    """Make functions-framework's uvicorn worker parse with :class:`EdgeProtocol`.

    False, changing nothing, when httptools is not installed (uvicorn then takes h11,
    which bounds the head itself)."""
    try:
        import uvicorn_worker  # type: ignore[import-untyped]
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return False

    class EdgeProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, refusing a head over :data:`MAX_HEAD_BYTES` and
        closing a connection whose request body is still arriving when its answer is out."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_bytes = 0  # bytes received since this request's head began
            self._in_head = True  # its headers are not complete yet

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head, self._head_bytes = True, 0  # the next request on the connection

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            # Checked after the parser has taken the bytes: a chunk that completes the head
            # and carries body bytes too is not counted against it. The parser holds at most
            # the limit plus one read.
            if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
                self._refuse()

        def on_response_complete(self) -> None:
            # The body's end has not been parsed (uvicorn clears more_body then): close
            # instead of reading the rest of an upload no one will use.
            cycle = self.cycle
            if cycle is not None and cycle.more_body and not self.transport.is_closing():
                self.transport.close()
            super().on_response_complete()

        def _refuse(self) -> None:
            if self.transport.is_closing():
                return
            # The status table's answer (hookpress.ingress._http), written by hand: the
            # request never became an ASGI request for Starlette to answer.
            result = Result(Outcome.HEADERS_TOO_LARGE, reason=f"over {MAX_HEAD_BYTES} bytes")
            status, payload, headers = answer(result, 0)
            body = payload.encode()
            lines = [
                f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
                "content-type: application/json",
            ]
            lines += [f"{name.lower()}: {value}" for name, value in headers.items()]
            lines += [f"content-length: {len(body)}", "connection: close", "", ""]
            self.transport.write("\r\n".join(lines).encode("latin-1") + body)
            self.transport.close()
            _log.warning(
                "ingress refused a request head",
                outcome=result.outcome.value,
                http_status=status,
                reason=result.reason,
            )

    uvicorn_worker.UvicornWorker.CONFIG_KWARGS = {
        **uvicorn_worker.UvicornWorker.CONFIG_KWARGS,
        "http": EdgeProtocol,
    }
    return True
