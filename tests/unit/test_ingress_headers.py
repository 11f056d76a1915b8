"""The ingress reads a request's headers from the WSGI environ: the same names and values
as werkzeug's own reading of it (``request.headers``), lower-cased, for any environ."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from hookpress.ingress._http import environ_headers, lower_headers

_NAME = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=20)
_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)


def _environ(extra: dict[str, str]) -> dict[str, object]:
    environ: dict[str, object] = EnvironBuilder(path="/s", method="POST").get_environ()
    environ.update(extra)
    return environ


@settings(max_examples=300, deadline=None)
@given(
    http=st.dictionaries(_NAME.map(lambda n: f"HTTP_{n}"), _VALUE, max_size=12),
    cgi=st.dictionaries(
        st.sampled_from(["CONTENT_TYPE", "CONTENT_LENGTH", "REMOTE_ADDR", "QUERY_STRING"]),
        _VALUE,
    ),
    shadowed=st.dictionaries(st.sampled_from(["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"]), _VALUE),
)
def test_environ_headers_read_what_werkzeug_reads(
    http: dict[str, str], cgi: dict[str, str], shadowed: dict[str, str]
):
    environ = _environ({**http, **cgi, **shadowed})
    assert environ_headers(environ) == lower_headers(Request(environ))  # type: ignore[arg-type]


def test_a_signature_header_arrives_by_its_lower_case_name():
    environ = _environ(
        {
            "HTTP_WEBHOOK_SIGNATURE": "v1,abc",
            "HTTP_X_HUB_SIGNATURE_256": "sha256=00",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": "",  # empty: not a header, as werkzeug reads it
            "HTTP_CONTENT_TYPE": "text/plain",  # CGI's CONTENT_TYPE is the one
        }
    )
    headers = environ_headers(environ)
    assert headers["webhook-signature"] == "v1,abc"
    assert headers["x-hub-signature-256"] == "sha256=00"
    assert headers["content-type"] == "application/json"
    assert "content-length" not in headers
