"""A cold start imports only what the first request needs (issue 12, point 4).

Each check runs in a fresh interpreter, as functions-framework starts an
instance: it loads the function's ``main.py``, builds the runtime from the
environment as the first request does, and reports which of hookpress's
signature-scheme modules (and ``cryptography``) were imported. Deliver
verifies no webhook signature, so it loads none of them, nor the provider
table; an ingress loads the scheme modules of the sources it has answered,
never every scheme. A source naming an unknown scheme or provider is still
refused when the settings are read, without importing any scheme module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"

#: loads functions/<argv[1]>/main.py, then runs argv[2]; prints what was imported
PROBE = """
import importlib.util, json, sys
name, then = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("main", f"{sys.argv[3]}/{name}/main.py")
main = importlib.util.module_from_spec(spec)
spec.loader.exec_module(main)
answer = None
exec(then)
print(json.dumps({
    "modules": sorted(
        m for m in sys.modules
        if m.startswith(("hookpress.signatures", "hookpress.providers", "cryptography"))
    ),
    "answer": answer,
}))
"""

#: the local backend: values from HOOKPRESS_SECRET_<ID> variables
FROM_ENVIRONMENT = "env"
BASE = {
    "HOOKPRESS_PROJECT": "p",
    "HOOKPRESS_RAW_BUCKET": "raw",
    "HOOKPRESS_SECRETS_BACKEND": FROM_ENVIRONMENT,
}


def fresh_interpreter(
    script: str, args: list[str], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``script`` in a new interpreter; the JSON object its last line prints."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def probe(function: str, then: str, env: dict[str, str]) -> dict[str, object]:
    return fresh_interpreter(PROBE, [function, then, str(FUNCTIONS)], env)


def scheme_modules(modules: object) -> set[str]:
    """The scheme modules among ``modules`` (not the helpers every scheme shares)."""
    assert isinstance(modules, list)
    shared = {"_common", "_ed25519", "_ids"}
    return {
        m
        for m in modules
        if m.startswith("hookpress.signatures.") and m.rpartition(".")[2] not in shared
    }


#: the id (not a value) of the Secret Manager secret holding WordPress's password
WORDPRESS_ID = "wp"


def test_deliver_builds_its_runtime_without_any_scheme_or_provider() -> None:
    env = {
        **BASE,
        "HOOKPRESS_WP_BASE_URL": "http://127.0.0.1:9/wp-json",
        "HOOKPRESS_WP_USER": "ingest",
        "HOOKPRESS_WP_APP_PASSWORD_SECRET": WORDPRESS_ID,
        "HOOKPRESS_PUSH_AUTH": "none",
    }
    then = "import os, hookpress.deliver as d; answer = type(d.build_runtime(os.environ)).__name__"
    result = probe("deliver", then, env)
    assert result["answer"] == "Runtime"
    # The event key's id rule, and nothing else of the package: no scheme, no provider.
    assert result["modules"] == ["hookpress.signatures", "hookpress.signatures._ids"]


# A request signed with the wrong key: the ingress verifies it (loading that source's
# scheme) and answers 401 before any backend is called.
INGEST = """
import os, hookpress.ingress as i
ingestor = i.build_ingestor(os.environ)
for source in sorted(ingestor.settings.sources.values(), key=lambda s: s.name):
    if source.name in sys.argv[4:]:
        result = ingestor.ingest(source, {}, b'{"id": "evt_1"}')
        assert result.outcome.name == "UNAUTHORIZED", result
answer = sorted(ingestor.settings.sources)
"""


@pytest.mark.parametrize(
    ("answered", "loaded"),
    [
        ([], set()),
        (["billing"], {"hookpress.signatures.hmac_headers"}),
        (["billing", "images"], {"hookpress.signatures.hmac_headers", "hookpress.signatures.fal"}),
    ],
)
def test_an_ingress_loads_only_the_schemes_of_the_sources_it_answered(
    answered: list[str], loaded: set[str]
) -> None:
    sources = {
        "billing": {"provider": "stripe"},
        "images": {"provider": "fal"},
        "sms": {"provider": "twilio", "url": "https://hooks.example.com/sms"},
    }
    env = {
        **BASE,
        "HOOKPRESS_SOURCES": json.dumps(sources),
        **{f"HOOKPRESS_SECRET_HOOKPRESS_SOURCE_{name.upper()}": "k" for name in sources},
    }
    then = INGEST.replace("sys.argv[4:]", repr(answered))
    result = probe("ingress", then, env)
    assert result["answer"] == ["billing", "images", "sms"]
    assert scheme_modules(result["modules"]) == loaded


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"scheme": "md5"}, ".scheme must be one of"),
        ({"provider": "acme"}, ".provider must be one of"),
        ({"provider": "stripe", "scheme": "github"}, "signs with scheme stripe"),
    ],
)
def test_a_wrong_source_is_refused_at_settings_time_without_loading_a_scheme(
    spec: dict[str, str], named: str
) -> None:
    then = (
        "from hookpress.settings import IngressSettings, SettingsError\n"
        "try:\n"
        "    IngressSettings.from_env(os.environ)\n"
        "except SettingsError as exc:\n"
        "    answer = str(exc)\n"
    )
    env = {**BASE, "HOOKPRESS_SOURCES": json.dumps({"a": spec})}
    result = probe("ingress", "import os\n" + then, env)
    assert isinstance(result["answer"], str)
    assert named in result["answer"]
    assert scheme_modules(result["modules"]) == set()


def test_every_registered_id_makes_the_scheme_of_that_name() -> None:
    from hookpress.signatures import SCHEMES

    assert len(SCHEMES) == 11
    for name in SCHEMES:
        assert SCHEMES[name].name == name
        assert SCHEMES[name] is SCHEMES[name]  # made once
    with pytest.raises(KeyError):
        SCHEMES["md5"]
    assert "md5" not in SCHEMES


#: loads functions/<argv[1]>/main.py as functions-framework does, counting the collector's runs
COLLECTIONS = """
import gc, importlib.util, json, sys
runs = []
def count(phase, info):
    if phase == "start":
        runs.append(info["generation"])
gc.callbacks.append(count)
frozen_before = gc.get_freeze_count()
spec = importlib.util.spec_from_file_location("main", f"{sys.argv[2]}/{sys.argv[1]}/main.py")
main = importlib.util.module_from_spec(spec)
spec.loader.exec_module(main)
print(json.dumps({
    "runs": len(runs),
    "enabled": gc.isenabled(),
    "frozen": gc.get_freeze_count() - frozen_before,
}))
"""


def collections_while_loading(function: str) -> dict[str, object]:
    return fresh_interpreter(COLLECTIONS, [function, str(FUNCTIONS)])


def test_the_ingress_loads_with_the_collector_held_then_frozen_and_running() -> None:
    held = collections_while_loading("ingress")
    assert held["runs"] == 0  # not one collection while Starlette, uvicorn and hookpress load
    assert held["enabled"] is True  # and it runs again for the requests
    assert isinstance(held["frozen"], int)
    assert held["frozen"] > 10_000  # what the import made, out of every later scan
    # deliver loads without it (hookpress/startup.py says why): the count is not vacuous
    assert collections_while_loading("deliver")["runs"] > 0


def test_collector_held_restores_what_it_found_and_nests() -> None:
    import gc

    from hookpress.startup import collector_held

    was = gc.isenabled()
    try:
        gc.enable()
        with collector_held():
            assert not gc.isenabled()
            with collector_held():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the inner block leaves it as it found it: off
        assert gc.isenabled()
        gc.disable()
        with collector_held():
            pass
        assert not gc.isenabled()  # entered off, left off
    finally:
        gc.unfreeze()  # this test's process keeps collecting what it froze
        (gc.enable if was else gc.disable)()


#: loads functions/<argv[1]>/main.py, then the modules argv[3:] name and every signature
#: scheme (what any first request may load); prints the classes hookpress made dataclasses
DATACLASSES = """
import dataclasses, importlib, importlib.util, json, sys
made = []
process = dataclasses._process_class
def noted(cls, *args, **kwargs):
    made.append(f"{cls.__module__}.{cls.__qualname__}")
    return process(cls, *args, **kwargs)
dataclasses._process_class = noted
spec = importlib.util.spec_from_file_location("main", f"{sys.argv[2]}/{sys.argv[1]}/main.py")
main = importlib.util.module_from_spec(spec)
spec.loader.exec_module(main)
for name in sys.argv[3:]:
    importlib.import_module(name)
from hookpress.signatures import SCHEMES
schemes = [SCHEMES[name] for name in SCHEMES]
print(json.dumps({"made": [m for m in made if m.startswith("hookpress")], "schemes": len(schemes)}))
"""

#: what a first request loads beyond main.py: the wire and the REST backends, and for
#: deliver the push's token check
FIRST_REQUEST = ["hookpress.wire", "hookpress.backends._rest", "hookpress.backends._auth"]


@pytest.mark.parametrize(
    ("function", "later"),
    [("ingress", FIRST_REQUEST), ("deliver", [*FIRST_REQUEST, "hookpress.pushauth"])],
)
def test_a_cold_start_generates_no_dataclass(function: str, later: list[str]) -> None:
    """Each dataclass writes and compiles its methods at import, 0.6-1 ms a class on
    Python 3.12 (bench/RESULTS.md, run 29): the value classes a function loads to serve
    are msgspec Structs, made in C."""
    result = dataclasses_made(function, later)
    assert result["schemes"] == 11  # every scheme module was loaded
    assert result["made"] == []


def test_the_dataclass_probe_sees_one() -> None:
    # The reconciler runs on a schedule, where a start's milliseconds cost nothing: its
    # report is still a dataclass, and the probe names it.
    assert "hookpress.reconcile.Report" in dataclasses_made("reconcile", [])["made"]


def dataclasses_made(function: str, later: list[str]) -> dict[str, Any]:
    return fresh_interpreter(DATACLASSES, [function, str(FUNCTIONS), *later])
