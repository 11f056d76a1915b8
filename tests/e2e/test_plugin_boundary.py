"""The WordPress boundary, attacked from outside: every route form, every core route.

Two measures of issue 10 come from this module and are printed at the end of
the run (``hookpress figures``):

- route forms tried from outside the allowlist, and how many reached the
  ingest handler (must be 0);
- non-ingest core routes tried with the ingest application password, and how
  many were reachable (must be 0).

"Outside" is a real second peer: the client binds 127.0.0.2, and PHP's
built-in server reports it as REMOTE_ADDR (shown by
``test_the_server_sees_the_outside_address``).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookpress.local.wordpress import WordPressServer, WordPressSite

from .conftest import OUTSIDE_ADDRESS
from .plugin_site import WP_FILES

NewEvent = Callable[..., dict[str, Any]]
RecordFigure = Callable[[str, object], None]

INGEST = "/ai-guy/v1/ingest"

#: How the route string can be spelt. Percent-escapes are sent as written.
SPELLINGS = [
    "/ai-guy/v1/ingest",
    "/ai-guy/v1/ingest/",
    "/ai-guy/v1/ingest//",
    "/AI-GUY/V1/INGEST",
    "/Ai-Guy/v1/Ingest/",
    "/ai-guy/v1/ingest%0A",  # PCRE's "$" matches before a final newline
    "/ai-guy/v1/ingest%0a/",
    "/ai-guy/v1/ingest%0A%0A",
    "/ai-guy/v1/ingest%5C",  # untrailingslashit() strips backslashes too
    "/ai-guy/v1/ingest/%5C/",
    "/ai%2Dguy/v1/ingest",
    "/ai-guy%2Fv1%2Fingest",
    "/%61i-guy/v1/%49NGEST",
    "/ai-guy/v1/ingest%0D",
    "/ai-guy/v1/ingest%09",
    "/ai-guy/v1/ingest%20",
    "/ai-guy/v1/ingest%00",
    "/ai-guy/v1/ingest.",
    "/ai-guy//v1/ingest",
    "//ai-guy/v1/ingest",
    "/ai-guy/v1/./ingest",
    "/ai-guy/v1/inge%C5%BFt",  # U+017F folds to "s" only in Unicode matching
]

#: Where a route string can go: pretty permalinks, PATH_INFO style, plain
#: permalinks (?rest_route=) on the front page, on index.php, and on another
#: REST URL (the query string wins over the pretty path).
BASES = [
    "/wp-json{route}",
    "/index.php/wp-json{route}",
    "/?rest_route={route}",
    "/index.php?rest_route={route}",
    "/wp-json/wp/v2/posts?rest_route={route}",
]

#: POST, and the two ways WordPress lets another method stand for POST.
METHODS = ["POST", "GET ?_method=POST", "GET X-HTTP-Method-Override: POST"]


@dataclass(frozen=True)
class Form:
    """One way of sending an ingest request."""

    name: str
    method: str
    target: str  # raw path and query, sent byte for byte
    headers: tuple[tuple[str, str], ...] = ()
    kind: str = "json"  # json, batch or form


def _route_forms() -> list[Form]:
    forms = []
    for spelling in SPELLINGS:
        for base in BASES:
            target = base.format(route=spelling)
            for method in METHODS:
                joiner = "&" if "?" in target else "?"
                if method == "POST":
                    forms.append(Form(f"POST {target}", "POST", target))
                elif method.startswith("GET ?"):
                    forms.append(Form(f"{method} {target}", "GET", f"{target}{joiner}_method=POST"))
                else:
                    forms.append(
                        Form(
                            f"{method} {target}",
                            "GET",
                            target,
                            (("X-HTTP-Method-Override", "POST"),),
                        )
                    )
    for spelling in ("/ai-guy/v1/ingest", "/AI-GUY/v1/ingest/", "/ai-guy/v1/ingest\n"):
        for batch in ("/wp-json/batch/v1", "/?rest_route=/batch/v1"):
            forms.append(
                Form(f"batch {batch} -> {spelling!r}", "POST", batch, kind=f"batch:{spelling}")
            )
    forms.append(Form("form-encoded rest_route", "POST", "/", kind="form"))
    forms.append(Form("upper-case prefix", "POST", "/WP-JSON/ai-guy/v1/ingest"))
    return forms


FORMS = _route_forms()


def _url(site: WordPressSite, target: str) -> httpx.URL:
    base = httpx.URL(site.url)
    return httpx.URL(scheme=base.scheme, host=base.host, port=base.port, raw_path=target.encode())


def _send(
    client: httpx.Client, site: WordPressSite, form: Form, body: dict[str, Any]
) -> httpx.Response:
    headers = dict(form.headers)
    if form.kind.startswith("batch:"):
        path = form.kind.split(":", 1)[1]
        content = json.dumps(
            {
                "requests": [
                    {
                        "method": "POST",
                        "path": path,
                        "body": body,
                        "headers": {"Content-Type": "application/json"},
                    }
                ]
            }
        ).encode()
        headers["Content-Type"] = "application/json"
    elif form.kind == "form":
        fields = {"rest_route": "/ai-guy/v1/ingest\n", **{k: str(v) for k, v in body.items()}}
        content = httpx.QueryParams(fields).__str__().encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    else:
        content = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    return client.request(form.method, _url(site, form.target), content=content, headers=headers)


def _reached(response: httpx.Response) -> bool:
    """The ingest handler answered: only it says created/updated/unchanged/stale."""
    if not 200 <= response.status_code < 300:
        return False
    try:
        data = response.json()
    except ValueError:
        return False
    if isinstance(data, dict) and "responses" in data:  # a batch: look inside
        return any(
            isinstance(item, dict) and 200 <= int(item.get("status", 0)) < 300
            for item in data["responses"]
        )
    return isinstance(data, dict) and "result" in data


def _code(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data.get("code") if isinstance(data, dict) else None


def _map(function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    # As many at once as the server has workers: a few seconds instead of a minute.
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(function, items))


def test_the_server_sees_the_outside_address(wordpress_server: WordPressServer) -> None:
    # The address the PHP server hands to WordPress for a peer bound to 127.0.0.2.
    marker = wordpress_server.docroot / "hookpress-remote-addr.php"
    shutil.copyfile(WP_FILES / "hookpress-remote-addr.php", marker)
    try:
        site = wordpress_server.site
        transport = httpx.HTTPTransport(local_address=OUTSIDE_ADDRESS)
        with httpx.Client(transport=transport, timeout=30) as client:
            seen = client.get(f"{site.url}/hookpress-remote-addr.php").text
    finally:
        marker.unlink()
    assert seen == OUTSIDE_ADDRESS


def test_no_route_form_reaches_the_handler_from_outside(
    wordpress: WordPressSite,
    ingest_client: httpx.Client,
    outside_ingest_client: httpx.Client,
    admin_client: httpx.Client,
    new_event: NewEvent,
    record_figure: RecordFigure,
) -> None:
    # From an allowlisted address first: which of these forms does WordPress
    # really route to the ingest handler? Those are the ones that matter.
    inside = _map(lambda form: _send(ingest_client, wordpress, form, new_event()), FORMS)
    routed = {form for form, response in zip(FORMS, inside, strict=True) if _reached(response)}

    # Every class of spelling the router accepts is among them.
    for expected in (
        "POST /wp-json/ai-guy/v1/ingest",
        "POST /wp-json/AI-GUY/V1/INGEST",
        "POST /?rest_route=/ai-guy/v1/ingest%0A",
        "POST /index.php?rest_route=/Ai-Guy/v1/Ingest/",
        "POST /wp-json/ai-guy/v1/ingest%5C",
        "POST /wp-json/ai%2Dguy/v1/ingest",
        "POST /index.php/wp-json/ai-guy%2Fv1%2Fingest",
        "POST /wp-json/wp/v2/posts?rest_route=/ai-guy/v1/ingest%0a/",
        "GET ?_method=POST /?rest_route=/AI-GUY/V1/INGEST",
        "GET X-HTTP-Method-Override: POST /wp-json/ai-guy/v1/ingest//",
    ):
        assert expected in {form.name for form in routed}, expected

    # Now the same forms from outside the allowlist, each event tagged with a
    # source of its own so that anything stored can be found afterwards.
    source = f"outside-{uuid.uuid4().hex[:12]}"
    outside = _map(
        lambda form: _send(outside_ingest_client, wordpress, form, new_event(source=source)), FORMS
    )

    reached = [
        form.name for form, response in zip(FORMS, outside, strict=True) if _reached(response)
    ]
    refused_by_guard = [
        form.name
        for form, response in zip(FORMS, outside, strict=True)
        if form in routed
        and (response.status_code, _code(response)) == (403, "hookpress_address_forbidden")
    ]
    stored = admin_client.get(
        f"{wordpress.rest_base}/wp/v2/ai-events",
        params={"source": source, "status": "any", "per_page": 100},
    )
    assert stored.status_code == 200, stored.text

    record_figure(
        "route forms tried from outside the allowlist",
        f"{len(FORMS)} (WordPress routes {len(routed)} of them to the ingest handler); "
        f"reached the handler: {len(reached)}; stored: {len(stored.json())}",
    )
    assert reached == []
    assert stored.json() == []
    # Each form that leads to the handler was stopped by the address check itself.
    assert len(refused_by_guard) == len(routed), sorted(
        f.name for f in routed if f.name not in refused_by_guard
    )


def test_outside_callers_get_no_description_of_the_route(
    wordpress: WordPressSite, outside_ingest_client: httpx.Client
) -> None:
    # Core answers OPTIONS with the route's schema; from outside the answer is 403.
    for target in ("/wp-json/ai-guy/v1/ingest", "/?rest_route=/AI-GUY/v1/ingest%0A"):
        for method in ("OPTIONS", "GET"):
            response = outside_ingest_client.request(method, _url(wordpress, target))
            assert (response.status_code, _code(response)) == (403, "hookpress_address_forbidden")
            assert "occurred_at" not in response.text


def test_no_credentials_form_reaches_its_handler_from_outside(
    wordpress: WordPressSite,
    wordpress_server: WordPressServer,
    outside_ingest_client: httpx.Client,
) -> None:
    count = (
        "echo count(WP_Application_Passwords::get_user_application_passwords("
        "get_user_by('login', 'hookpress-ingest')->ID));"
    )
    before = wordpress_server.run_php(count)
    forms = [
        Form(f"POST {base.format(route=route)}", "POST", base.format(route=route))
        for route in (
            "/ai-guy/v1/credentials",
            "/AI-GUY/v1/Credentials/",
            "/ai-guy/v1/credentials%0A",
            "/ai-guy/v1/credentials/retire-others",
            "/ai-guy/v1/credentials/RETIRE-OTHERS%0a",
        )
        for base in BASES
    ]
    responses = _map(lambda form: _send(outside_ingest_client, wordpress, form, {}), forms)

    assert [r.status_code for r in responses if 200 <= r.status_code < 300] == []
    assert wordpress_server.run_php(count) == before


# -- the ingest identity can do nothing but ingest ---------------------------


@pytest.fixture(scope="module")
def core_routes(admin_client: httpx.Client, wordpress: WordPressSite) -> dict[str, Any]:
    """Every route the site lists in its index, as the administrator sees it."""
    index = admin_client.get(f"{wordpress.rest_base}/")
    assert index.status_code == 200, index.text
    routes: dict[str, Any] = index.json()["routes"]
    return routes


_GROUP = re.compile(r"\(\?P<(\w+)>")
_SAMPLES = ["me", "1", "a1", "hookpress/hookpress", "core/paragraph", "a1/a1", "a"]


def _groups(route: str) -> list[tuple[int, int, str, str]]:
    """Named groups of a route pattern: (start, end, name, inner pattern)."""
    found = []
    for match in _GROUP.finditer(route):
        depth, index = 1, match.end()
        while depth:
            char = route[index]
            if char == "\\":
                index += 2
                continue
            depth += {"(": 1, ")": -1}.get(char, 0)
            index += 1
        found.append((match.start(), index, match.group(1), route[match.end() : index - 1]))
    return found


def _concrete(route: str, ingest_user_id: int) -> str:
    """A path the route's pattern matches, with the ingest user's own id for users."""
    path = route
    for start, end, name, inner in reversed(_groups(route)):
        preferred = [str(ingest_user_id)] if name == "id" and "/users/" in route else []
        value = next(
            candidate
            for candidate in [*preferred, *_SAMPLES]
            if re.fullmatch(inner, candidate, re.IGNORECASE)
        )
        path = path[:start] + value + path[end:]
    assert re.fullmatch(route, path, re.IGNORECASE), (route, path)
    return path


def test_the_confined_routes_are_not_in_the_index(
    wordpress: WordPressSite, core_routes: dict[str, Any]
) -> None:
    anonymous = httpx.get(f"{wordpress.rest_base}/", timeout=60).json()["routes"]

    confined = ("/ai-guy/v1/ingest", "/ai-guy/v1/credentials")
    for routes in (anonymous, core_routes):
        assert [r for r in routes if r.startswith(confined)] == []
    # The read-only events route is an ordinary, discoverable route (for readers of events).
    assert "/ai-guy/v1/events" in anonymous


def _confined(response: httpx.Response) -> bool:
    return (response.status_code, _code(response)) == (403, "hookpress_ingest_only")


@pytest.fixture(scope="module")
def ingest_user_id(wordpress_server: WordPressServer) -> int:
    return int(wordpress_server.run_php("echo get_user_by('login', 'hookpress-ingest')->ID;"))


def test_the_ingest_password_reaches_no_other_route(
    wordpress: WordPressSite,
    wordpress_server: WordPressServer,
    ingest_client: httpx.Client,
    outside_ingest_client: httpx.Client,
    core_routes: dict[str, Any],
    ingest_user_id: int,
    record_figure: RecordFigure,
) -> None:
    attempts: list[tuple[str, str]] = []
    for route, description in core_routes.items():
        path = _concrete(route, ingest_user_id)
        for method in sorted({m for e in description["endpoints"] for m in e["methods"]}):
            attempts.append((method, f"/wp-json{path}"))
    # The same doors by other spellings: plain permalinks, case, a newline,
    # a method override, and the batch route, which dispatches sub-requests.
    for method, target in [
        ("GET", "/?rest_route=/wp/v2/users/me"),
        ("POST", "/?rest_route=/wp/v2/users/me/application-passwords"),
        ("GET", "/wp-json/WP/V2/USERS/ME"),
        ("GET", "/?rest_route=/wp/v2/users/me%0A"),
        ("GET", "/wp-json/wp/v2/users/me?_method=POST"),
        ("GET", "/index.php/wp-json/wp/v2/settings"),
        ("POST", "/wp-json/wp/v2/posts?_method=POST"),
        ("OPTIONS", "/wp-json/wp/v2/users/me"),
        ("HEAD", "/wp-json/wp/v2/users/me"),
    ]:
        attempts.append((method, target))
    batch = json.dumps(
        {
            "requests": [
                {"method": "POST", "path": "/wp/v2/users/me", "body": {"first_name": "owned"}},
                {"method": "POST", "path": "/wp/v2/posts", "body": {"title": "owned"}},
            ]
        }
    )
    count = (
        f"echo count(WP_Application_Passwords::get_user_application_passwords({ingest_user_id}));"
    )
    passwords_before = wordpress_server.run_php(count)

    def attempt(args: tuple[httpx.Client, str, str]) -> httpx.Response:
        client, method, target = args
        body = (
            batch
            if target.endswith("/batch/v1")
            else ("{}" if method not in ("GET", "HEAD", "OPTIONS") else None)
        )
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return client.request(method, _url(wordpress, target), content=body, headers=headers)

    jobs = [
        (client, method, target)
        for client in (ingest_client, outside_ingest_client)
        for method, target in attempts
    ]
    responses = _map(attempt, jobs)
    reachable = sorted(
        {
            f"{method} {target} -> {response.status_code} {_code(response)}"
            for (_, method, target), response in zip(jobs, responses, strict=True)
            # HEAD has no body to carry the code; its status says it all.
            if not (_confined(response) or (method == "HEAD" and response.status_code == 403))
        }
    )

    record_figure(
        "non-ingest routes tried with the ingest password",
        f"{len(core_routes)} routes, {len(jobs)} requests from 127.0.0.1 and {OUTSIDE_ADDRESS}; "
        f"reachable: {len(reachable)}",
    )
    assert reachable == []
    assert "/wp/v2/users/me" in core_routes
    assert "/batch/v1" in core_routes
    assert wordpress_server.run_php(count) == passwords_before
    profile = wordpress_server.run_php(f"echo get_user_meta({ingest_user_id}, 'first_name', true);")
    assert profile != "owned"


def test_the_ingest_password_is_refused_outside_the_rest_api(
    wordpress: WordPressSite, wordpress_server: WordPressServer
) -> None:
    # XML-RPC accepts application passwords too. Its HTTP endpoint needs PHP's
    # xml extension, which this machine's PHP lacks (Debian's php-xml), so the
    # authentication step XML-RPC runs is called as xmlrpc.php would call it.
    code = (
        "define('XMLRPC_REQUEST', true);"
        "$out = array();"
        "foreach (json_decode(base64_decode('%s'), true) as $login => $password) {"
        "  $user = wp_authenticate_application_password(null, $login, $password);"
        "  $out[$login] = is_wp_error($user) ? $user->get_error_code() : 'ok';"
        "}"
        "echo json_encode($out);"
    )
    logins = {
        wordpress.admin_user: wordpress.admin_app_password,
        wordpress.ingest_user: wordpress.app_password,
    }
    encoded = base64.b64encode(json.dumps(logins).encode()).decode()

    result = json.loads(wordpress_server.run_php(code % encoded))

    assert result == {wordpress.admin_user: "ok", wordpress.ingest_user: "hookpress_rest_only"}


@pytest.fixture
def cookie_session(
    wordpress_server: WordPressServer, wordpress: WordPressSite
) -> Iterator[tuple[httpx.Client, str]]:
    """A logged-in browser session (cookie + REST nonce) of a fresh ingest user."""
    login = f"ingest-cookie-{uuid.uuid4().hex[:8]}"
    wordpress_server.create_user(login, "hookpress_ingest")
    password = uuid.uuid4().hex
    wordpress_server.run_php(f"wp_set_password('{password}', get_user_by('login', '{login}')->ID);")
    with httpx.Client(base_url=wordpress.url, timeout=60, follow_redirects=False) as browser:
        browser.cookies.set("wordpress_test_cookie", "WP Cookie check")
        signed_in = browser.post(
            "/wp-login.php", data={"log": login, "pwd": password, "testcookie": "1"}
        )
        assert signed_in.status_code == 302, signed_in.text
        nonce = browser.get("/wp-admin/admin-ajax.php", params={"action": "rest-nonce"}).text
        assert re.fullmatch(r"[0-9a-f]{10}", nonce), nonce
        yield browser, nonce


def test_a_cookie_session_cannot_ingest_or_reach_anything(
    cookie_session: tuple[httpx.Client, str], new_event: NewEvent
) -> None:
    browser, nonce = cookie_session
    headers = {"X-WP-Nonce": nonce}

    ingest = browser.post(f"/wp-json{INGEST}", json=new_event(), headers=headers)
    me = browser.get("/wp-json/wp/v2/users/me", headers=headers)

    # The nonce is valid (the session is logged in), and still:
    assert ingest.status_code == 401, ingest.text
    assert ingest.json()["code"] == "hookpress_application_password_required"
    assert _confined(me), me.text


# -- each check point holds on its own ------------------------------------------

DISPATCH = Path(__file__).resolve().parent / "php" / "dispatch.php"


def _dispatch(
    server: WordPressServer,
    *,
    remove: list[str],
    route: str = "/ai-guy/v1/ingest\n",
    address: str = OUTSIDE_ADDRESS,
    method: str = "POST",
    content_type: str = "application/json",
    body: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    args = {
        "remove": remove,
        "route": route,
        "address": address,
        "method": method,
        "content_type": content_type,
        "body": json.dumps(body or {}),
    }
    result = json.loads(server.run_php_file(DISPATCH, args))
    return result["status"], result["data"]


# Core runs permission_callback only for arguments that validate (an invalid
# request is refused with 400 before it), so these requests are valid but for
# the one property each check is about.
@pytest.mark.parametrize(
    "remove",
    [[], ["pre_dispatch"], ["pre_dispatch", "before_callbacks"]],
    ids=["all three", "without pre_dispatch", "permission_callback alone"],
)
def test_each_check_point_refuses_on_its_own(
    wordpress_server: WordPressServer, new_event: NewEvent, remove: list[str]
) -> None:
    # The address.
    status, data = _dispatch(wordpress_server, remove=remove, body=new_event())
    assert (status, data["code"]) == (403, "hookpress_address_forbidden")
    # The media type, from an allowed address.
    status, data = _dispatch(
        wordpress_server,
        remove=remove,
        address="127.0.0.1",
        content_type="application/x-www-form-urlencoded",
        body=new_event(),
    )
    assert (status, data["code"]) == (415, "hookpress_unsupported_media_type")
    # The size (the metadata's own 64 KiB limit is the handler's, later).
    status, data = _dispatch(
        wordpress_server,
        remove=remove,
        address="127.0.0.1",
        body=new_event(metadata={"blob": "x" * 300_000}),
    )
    assert (status, data["code"]) == (413, "hookpress_payload_too_large")


def test_confinement_holds_without_pre_dispatch(wordpress_server: WordPressServer) -> None:
    status, data = _dispatch(
        wordpress_server,
        remove=["pre_dispatch"],
        route="/wp/v2/users/me",
        address="127.0.0.1",
        method="GET",
    )

    assert (status, data["code"]) == (403, "hookpress_ingest_only")


def test_one_request_takes_one_token_whatever_the_check_points(
    wordpress_server: WordPressServer,
    new_event: NewEvent,
    plugin_options: Callable[..., None],
) -> None:
    plugin_options(rate_per_minute=1, burst=1)

    first = _dispatch(wordpress_server, remove=[], address="127.0.0.1", body=new_event())
    second = _dispatch(wordpress_server, remove=[], address="127.0.0.1", body=new_event())

    # Three check points, one token: the first request passes, the bucket is then empty.
    assert first[0] == 201, first
    assert (second[0], second[1]["code"]) == (429, "hookpress_rate_limited")
