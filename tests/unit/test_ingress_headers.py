"""The ingress reads a request's headers from the ASGI scope (``scope["headers"]``): the same
names and values as Starlette's own reading of them (``request.headers``), for any list.

What is compared, exactly: for a list of (name, value) byte pairs, ``scope_headers(raw)``
against, for each distinct name, the ", "-join in arrival order of every value Starlette's
``Headers(raw=raw).getlist(name)`` finds under it. Starlette looks a name up by comparing
the lower-cased name's bytes with the raw names' bytes as they are: it relies on the ASGI
server having lower-cased every name (uvicorn does, ``bytes.lower()``, ASCII only), and finds
nothing under a name a server left in mixed case. So a mixed-case list is compared with
Starlette's reading of it as a server would have handed it over (its names ASCII-lower-cased);
names are HTTP tokens (RFC 9110, 5.6.2: ASCII), the only names uvicorn's parsers accept;
values are any latin-1 text (obs-text included), which ASGI hands over undecoded.
"""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.requests import Request

from hookpress.ingress._http import scope_headers

_TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# A few names only, so that lists repeat names (in one case or in several) often.
_NAME = st.sampled_from(["content-type", "x-hub-signature-256", "webhook-id", "a"]) | st.text(
    alphabet=_TCHAR, min_size=1, max_size=12
)
_VALUE = st.text(alphabet=st.characters(min_codepoint=0x00, max_codepoint=0xFF), max_size=30)
_PAIRS = st.lists(st.tuples(_NAME, _VALUE), max_size=12)


def _raw(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


def starlette_reading(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Every name Starlette holds, and all its values joined by ", " in arrival order."""
    headers = Headers(raw=raw)
    return {name: ", ".join(headers.getlist(name)) for name in headers}


def as_a_server_hands_them(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The names lower-cased as uvicorn lower-cases them (``bytes.lower()``)."""
    return [(name.lower(), value) for name, value in raw]


@settings(max_examples=500, deadline=None)
@given(pairs=_PAIRS.map(lambda ps: [(n.lower(), v) for n, v in ps]))
def test_scope_headers_read_what_starlette_reads(pairs: list[tuple[str, str]]):
    """Lower-case names, as ASGI requires: exactly Starlette's reading, repeats joined."""
    raw = _raw(pairs)
    assert scope_headers(raw) == starlette_reading(raw)


@settings(max_examples=500, deadline=None)
@given(pairs=_PAIRS)
def test_mixed_case_names_read_as_a_server_would_hand_them_over(pairs: list[tuple[str, str]]):
    """Any case: the names are lower-cased, the values of one name in any case are joined."""
    raw = _raw(pairs)
    assert scope_headers(raw) == starlette_reading(as_a_server_hands_them(raw))


def test_a_signature_header_arrives_by_its_lower_case_name():
    """A request as uvicorn hands it over, read both ways (``Request.headers`` itself too)."""
    raw = [
        (b"host", b"hooks.example.com"),
        (b"webhook-signature", b"v1,abc"),
        (b"x-hub-signature-256", b"sha256=00"),
        (b"content-type", b"application/json"),
        (b"x-forwarded-for", b"203.0.113.7"),
        (b"x-forwarded-for", b"198.51.100.2"),
        (b"x-note", "caf\xe9".encode("latin-1")),  # obs-text: latin-1, as Starlette decodes it
    ]
    headers = scope_headers(raw)
    assert headers["webhook-signature"] == "v1,abc"
    assert headers["x-hub-signature-256"] == "sha256=00"
    assert headers["content-type"] == "application/json"
    assert headers["x-forwarded-for"] == "203.0.113.7, 198.51.100.2"  # RFC 9110, 5.3
    assert headers["x-note"] == "café"
    assert "content-length" not in headers
    request = Request({"type": "http", "headers": raw})
    assert headers == {k: ", ".join(request.headers.getlist(k)) for k in request.headers}


def test_a_name_a_server_left_in_mixed_case_is_lower_cased():
    """Where Starlette would find nothing (it compares bytes), the ingress finds the header."""
    raw = [(b"Stripe-Signature", b"t=1,v1=00"), (b"stripe-signature", b"v1=11")]
    assert scope_headers(raw) == {"stripe-signature": "t=1,v1=00, v1=11"}
    assert Headers(raw=raw).getlist("stripe-signature") == ["v1=11"]
