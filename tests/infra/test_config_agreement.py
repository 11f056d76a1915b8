"""The Pulumi program and the functions accept and refuse exactly the same values.

For every key the program passes on to a function, hypothesis draws text
(numbers at and around the bounds, written every way Python's parsers take
them, and junk) and sets it twice: as the stack's config key, read by the
program's ``load()``, and as the function's environment variable, read by its
``from_env``. Then:

- ``pulumi up`` accepts the text exactly when the function does, and a
  refusal is the same sentence (the key named instead of the variable);
- when both accept, both read the same value, and the function reading the
  environment the program writes (``infra/env.py``) reads that value too.

The source map gets the same treatment, with maps of sources drawn valid and
invalid. The program refuses on purpose two things the function need not
know about, and the model names them: two sources sharing one secret (the
program creates one Secret Manager secret per source), and a source secret
that is the WordPress password's. Every other key is set so that only the
rule under test can refuse (``rawDeleteAfterDays`` 0: no TTL outlives the
payloads; ``deliverTimeoutS`` 600: any WordPress timeouts fit in it;
``smokeSource`` false: no name is reserved).

The pairs of key and variable are written out here, not taken from
``hookpress.config_rules``, so a program that sets the wrong variable fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import pulumi
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from infra_harness import BASE_CONFIG, PROJECT_NUMBER

from hookpress import config_rules as rules
from hookpress.lanes import LANES
from hookpress.providers import PROVIDERS
from hookpress.settings import DeliverSettings, IngressSettings, SettingsError
from hookpress.signatures import SCHEMES
from infra.config import ConfigError, Settings, load
from infra.env import deliver_env, ingress_env

# Only the rule under test may refuse (see the module's docstring).
QUIET = {
    "hookpress:projectNumber": PROJECT_NUMBER,
    "hookpress:manageSecretValues": "false",  # pragma: allowlist secret
    "hookpress:smokeSource": "false",
    "hookpress:rawDeleteAfterDays": "0",
    "hookpress:deliverTimeoutS": "600",
}
# The default id (a name, not a value) of the WordPress secret.
WP_SECRET = "hookpress-wp-app-password"  # pragma: allowlist secret

FUNCTION_ENV = {
    "ingress": {
        "HOOKPRESS_PROJECT": "p",
        "HOOKPRESS_RAW_BUCKET": "raw",
        "HOOKPRESS_SOURCES": json.dumps({"stripe": {"provider": "stripe"}}),
    },
    "deliver": {
        "HOOKPRESS_PROJECT": "p",
        "HOOKPRESS_RAW_BUCKET": "raw",
        "HOOKPRESS_WP_BASE_URL": "https://wp.example.com/wp-json",
        "HOOKPRESS_WP_USER": "ingest",
        "HOOKPRESS_WP_APP_PASSWORD_SECRET": WP_SECRET,
        "HOOKPRESS_PUSH_AUTH": "none",
    },
}
SETTINGS: dict[str, Callable[[Mapping[str, str]], Any]] = {
    "ingress": IngressSettings.from_env,
    "deliver": DeliverSettings.from_env,
}

EXAMPLES = 150
RUNS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a loaded machine; each example reads the whole stack config
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Outcome:
    """What one side made of a value: the settings it built, or the sentence it refused with."""

    value: Any = None
    refusal: str | None = None


def _program(**overrides: str) -> Outcome:
    config = {**BASE_CONFIG, **QUIET, **{f"hookpress:{k}": v for k, v in overrides.items()}}
    pulumi.runtime.set_all_config(config, [])
    try:
        return Outcome(load())
    except ConfigError as exc:
        return Outcome(refusal=str(exc))


def _function(which: str, env: Mapping[str, str]) -> Outcome:
    try:
        return Outcome(SETTINGS[which]({**FUNCTION_ENV[which], **env}))
    except SettingsError as exc:
        return Outcome(refusal=str(exc))


def _deployed(which: str, s: Settings) -> Any:
    """The function's settings as read from the environment the program gives it."""
    if which == "ingress":
        env = ingress_env(s, raw_bucket="raw", events_topic="events")
    else:
        env = deliver_env(s, raw_bucket="raw", push_account="push@p.iam.gserviceaccount.com")
    assert all(isinstance(v, str) for v in env.values())
    return SETTINGS[which](env)


@dataclass(frozen=True)
class Knob:
    """A config key the program passes on to a function as an environment variable."""

    key: str
    variable: str
    function: str
    program: Callable[[Settings], Any]  # where the program keeps the value
    read: Callable[[Any], Any]  # where the function keeps it
    #: other keys the program is given with it, so that no rule across keys (the ingress's
    #: memory for its concurrency of the largest bodies) refuses what the knob's own
    #: bounds allow: this test is about those bounds
    beside: tuple[tuple[str, str], ...] = ()


KNOBS = {
    knob.key + "/" + knob.function: knob
    for knob in (
        Knob(
            "maxBodyBytes",
            "HOOKPRESS_MAX_BODY_BYTES",
            "ingress",
            lambda s: s.ingress.max_body_bytes,
            lambda f: f.max_body_bytes,
            beside=(("ingressConcurrency", "1"),),
        ),
        Knob(
            "timestampToleranceS",
            "HOOKPRESS_TIMESTAMP_TOLERANCE_S",
            "ingress",
            lambda s: s.ingress.timestamp_tolerance_s,
            lambda f: f.timestamp_tolerance_s,
        ),
        Knob(
            "eventTtlDays",
            "HOOKPRESS_EVENT_TTL_DAYS",
            "ingress",
            lambda s: s.event_ttl_days,
            lambda f: f.event_ttl_days,
        ),
        Knob(
            "eventTtlDays",
            "HOOKPRESS_EVENT_TTL_DAYS",
            "deliver",
            lambda s: s.event_ttl_days,
            lambda f: f.event_ttl_days,
        ),
        Knob(
            "wpConnectTimeoutS",
            "HOOKPRESS_WP_CONNECT_TIMEOUT_S",
            "deliver",
            lambda s: s.deliver.wp_connect_timeout_s,
            lambda f: f.wp_connect_timeout_s,
        ),
        Knob(
            "wpReadTimeoutS",
            "HOOKPRESS_WP_READ_TIMEOUT_S",
            "deliver",
            lambda s: s.deliver.wp_read_timeout_s,
            lambda f: f.wp_read_timeout_s,
        ),
        Knob(
            "pauseDelivery",
            "HOOKPRESS_PAUSE_WP_DELIVERY",
            "deliver",
            lambda s: s.deliver.paused,
            lambda f: f.paused,
        ),
    )
}


def _check_knob(knob: Knob, raw: str) -> str:
    """Check one value; say whether both sides accepted or refused it."""
    program = _program(**dict(knob.beside), **{knob.key: raw})
    function = _function(knob.function, {knob.variable: raw})
    assert (program.refusal is None) == (function.refusal is None), (program, function)
    if program.refusal is not None:
        assert function.refusal is not None
        assert program.refusal.replace(f"hookpress:{knob.key}", knob.variable) == function.refusal
        return "refused"
    value = knob.read(function.value)
    assert knob.program(program.value) == value
    assert knob.read(_deployed(knob.function, program.value)) == value
    return "accepted"


# --- what the values are drawn from -------------------------------------------------

_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_JUNK = st.one_of(
    st.text(_CHARS, max_size=8),
    st.sampled_from(
        [
            *("", " ", "\t", "1e3", "1.0", "1.", ".5", "nan", "NaN", "inf", "-inf", "-0", "0x10"),
            *("1_000", "1__0", "_1", "١٢٣", "1 000", "+5", "5.", "true", "12abc", "0b11", "1e-400"),
        ]
    ),
)


def _whole_texts(lo: int, hi: int) -> st.SearchStrategy[str]:
    near = st.sampled_from([lo - 1, lo, lo + 1, hi - 1, hi, hi + 1, 0, -1, -lo, 2 * hi])
    ints = st.one_of(near, st.integers(lo - 10, hi + 10), st.integers())
    spelled = st.one_of(
        ints.map(str),
        ints.map(lambda i: f"  {i}\t"),
        ints.map(lambda i: f"{i:_}"),
        ints.map(lambda i: f"+{i}" if i >= 0 else str(i)),
        ints.map(lambda i: f"{i}.0"),
        ints.map(lambda i: f"{i:e}"),
        ints.map(lambda i: "0" + str(abs(i))),
    )
    return st.one_of(spelled, _JUNK)


def _float_texts(lo: float, hi: float) -> st.SearchStrategy[str]:
    edges = [lo, hi, 0.0, -0.0]
    edges += [math.nextafter(b, d) for b in (lo, hi) for d in (-math.inf, math.inf)]
    floats = st.one_of(
        st.sampled_from(edges),
        st.floats(min_value=lo - 1, max_value=hi + 1),
        st.floats(allow_nan=True, allow_infinity=True),
    )
    spelled = st.one_of(
        floats.map(repr),
        floats.map(str),
        floats.map(lambda f: f"{f:g}"),
        floats.map(lambda f: f"{f:.17e}"),
        floats.map(lambda f: f" {f!r} "),
        st.integers(int(lo) - 2, int(hi) + 2).map(str),
    )
    return st.one_of(spelled, _JUNK)


_SWITCH_WORDS = ["1", "0", "true", "false", "yes", "no", "on", "off", "y", "n", "2", "-1"]
_SWITCH_WORDS += ["t", "f", "tru", "enable", "", " ", "none", "null"]
_SWITCHES = st.one_of(
    # Each word in a random mix of upper and lower case.
    st.tuples(st.sampled_from(_SWITCH_WORDS), st.lists(st.booleans(), min_size=8, max_size=8)).map(
        lambda pair: "".join(c.upper() if up else c for c, up in zip(*pair, strict=False))
    ),
    st.sampled_from([f" {w}\t" for w in _SWITCH_WORDS]),
    _JUNK,
)


def _texts(knob: Knob) -> st.SearchStrategy[str]:
    """Text aimed at the knob's bounds (the function's own, which the draws straddle)."""
    rule = {
        "HOOKPRESS_MAX_BODY_BYTES": rules.MAX_BODY_BYTES,
        "HOOKPRESS_TIMESTAMP_TOLERANCE_S": rules.TIMESTAMP_TOLERANCE_S,
        "HOOKPRESS_EVENT_TTL_DAYS": rules.EVENT_TTL_DAYS,
        "HOOKPRESS_WP_CONNECT_TIMEOUT_S": rules.WP_CONNECT_TIMEOUT_S,
        "HOOKPRESS_WP_READ_TIMEOUT_S": rules.WP_READ_TIMEOUT_S,
        "HOOKPRESS_PAUSE_WP_DELIVERY": rules.PAUSE_WP_DELIVERY,
    }[knob.variable]
    if isinstance(rule, rules.WholeNumber):
        return _whole_texts(rule.lo, rule.hi)
    if isinstance(rule, rules.Number):
        return _float_texts(rule.lo, rule.hi)
    return _SWITCHES


@pytest.mark.parametrize("name", sorted(KNOBS))
@RUNS
@given(data=st.data())
def test_the_program_and_the_function_agree_on_every_value_of_a_knob(
    name: str, data: st.DataObject
) -> None:
    knob = KNOBS[name]
    raw = data.draw(_texts(knob), label=knob.key)
    event(_check_knob(knob, raw))  # --hypothesis-show-statistics: how many of each


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("maxBodyBytes/ingress", "1023"),
        ("maxBodyBytes/ingress", "33554432"),
        ("timestampToleranceS/ingress", " 3600 "),
        ("eventTtlDays/deliver", "1_000"),
        ("wpConnectTimeoutS/deliver", "0.09999999999999999"),
        ("wpReadTimeoutS/deliver", "12.3456789"),  # ':g' would have deployed 12.3457
        ("wpReadTimeoutS/deliver", "nan"),
        ("pauseDelivery/deliver", "YES"),
        ("pauseDelivery/deliver", "maybe"),
    ],
)
def test_known_edges_of_the_knobs(name: str, raw: str) -> None:
    """The draws above find these; kept as plain cases so a failure is easy to read."""
    _check_knob(KNOBS[name], raw)


def test_the_knob_table_covers_every_numeric_or_switch_variable_the_program_sets() -> None:
    """A variable the program sets that no knob above covers would escape the agreement test."""
    s = _program().value
    assert s is not None
    covered = {k.variable for k in KNOBS.values()}
    for which in ("ingress", "deliver"):
        env = (
            ingress_env(s, raw_bucket="raw", events_topic="events")
            if which == "ingress"
            else deliver_env(s, raw_bucket="raw", push_account="push@p.iam.gserviceaccount.com")
        )
        numeric = {
            k
            for k, v in env.items()
            if isinstance(v, str)
            and k.startswith("HOOKPRESS_")
            and (v.replace(".", "", 1).isdigit() or v in {"true", "false"})
        }
        assert numeric <= covered, numeric - covered


# --- the source map ---------------------------------------------------------------

_NAMES = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9_-]{0,6}", fullmatch=True),
    st.sampled_from(["stripe", "gh", "a", "x" * 63, "x" * 64, "", "A", "-x", "a b", "é", "s/"]),
)
_PROVIDERS = st.one_of(st.sampled_from(sorted(PROVIDERS)), st.sampled_from(["md5", "", "Stripe"]))
_SCHEMES = st.one_of(st.sampled_from(sorted(SCHEMES)), st.sampled_from(["md5", "hmac"]))
_ODD = st.one_of(st.none(), st.integers(-1, 2), st.booleans(), st.just([]), st.just({}))
_SECRETS = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-]{1,6}", fullmatch=True),
    st.sampled_from(["shared", WP_SECRET, "hookpress-source-stripe", "", "a b", "x" * 256]),
)
_LANES = st.one_of(st.sampled_from(LANES), st.sampled_from(["urgent", "", "HIGH"]))
_TOLERANCES = st.one_of(
    st.integers(-1, 3_602), st.sampled_from([0, 1, 3_600, 3_601, 1.5, 300.0, "300", True])
)
_URLS = st.sampled_from(
    [
        *("https://hooks.example.com/sms", "http://127.0.0.1:8080/x", "ftp://x", "https://"),
        *("https://x/p?q=1", "https://x/p#f", "", "hooks.example.com/sms"),
    ]
)


def _value(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(good, good, good, _ODD)


_SPEC_KEYS = {
    "provider": _value(_PROVIDERS),
    "scheme": _value(_SCHEMES),
    "secret": _value(_SECRETS),
    "lane": _value(_LANES),
    "tolerance": _value(_TOLERANCES),
    "url": _value(_URLS),
}


def _spec(required: str) -> st.SearchStrategy[dict[str, Any]]:
    optional = {k: v for k, v in _SPEC_KEYS.items() if k != required}
    return st.fixed_dictionaries({required: _SPEC_KEYS[required]}, optional=optional)


# Valid sources, so that whole maps are often accepted (and compared field by field).
_GOOD_NAMES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,6}", fullmatch=True)
_GOOD_SPECS = st.fixed_dictionaries(
    {"provider": st.sampled_from(sorted(PROVIDERS))},
    optional={
        "secret": st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True),
        "lane": st.sampled_from(LANES),
        "tolerance": st.one_of(st.none(), st.integers(1, 3_600)),
        "url": st.sampled_from(["https://hooks.example.com/sms", "http://127.0.0.1:8080/x"]),
    },
)
_SPECS = st.one_of(
    _GOOD_SPECS,
    _spec("provider"),
    _spec("scheme"),
    st.fixed_dictionaries({}, optional=_SPEC_KEYS),
    st.fixed_dictionaries({"provider": _PROVIDERS, "secretValue": st.just("x")}),
    _ODD,
    st.text(max_size=3),
)
_SOURCE_MAPS = st.one_of(
    st.dictionaries(_GOOD_NAMES, _GOOD_SPECS, min_size=1, max_size=4),
    st.dictionaries(
        _GOOD_NAMES, st.one_of(_GOOD_SPECS, _GOOD_SPECS, _SPECS), min_size=1, max_size=3
    ),
    st.dictionaries(_NAMES, _SPECS, min_size=1, max_size=4),
    st.dictionaries(_NAMES, _SPECS, max_size=0),
    st.sampled_from([[], [{"provider": "stripe"}], "stripe", 3, None]),
)


def _check_sources(sources: Any) -> str:
    """Check one source map; say whether both sides accepted it, or which refused it."""
    raw = json.dumps(sources)
    program = _program(sources=raw)
    function = _function("ingress", {"HOOKPRESS_SOURCES": raw})
    # What only the program refuses: a secret two sources share, or the WordPress password's.
    secrets = [s.secret for s in function.value.sources.values()] if function.value else []
    program_only = len(set(secrets)) < len(secrets) or WP_SECRET in secrets
    expected = function.refusal is None and not program_only
    assert (program.refusal is None) == expected, (program, function)
    if program.refusal is not None:
        return "refused by the program only" if program_only else "refused"
    s = program.value
    direct = function.value.sources
    assert [src.name for src in s.sources] == sorted(direct)
    deployed = _deployed("ingress", s).sources
    assert set(deployed) == set(direct)
    for name, source in direct.items():
        # The program gives a URL-signing source (Twilio) its public URL unless one is set.
        url = source.url
        if url is None and source.scheme == "twilio":
            url = f"{s.function_url('ingress')}/{name}"
        assert deployed[name] == msgspec.structs.replace(source, url=url), name
    return "accepted"


@settings(RUNS, max_examples=4 * EXAMPLES)
@given(sources=_SOURCE_MAPS)
@example(sources={"billing": {"provider": "paddle", "tolerance": None}})
@example(sources={"a": {"provider": ["stripe"]}})
@example(sources={"a": {"scheme": {"x": 1}}})
@example(
    sources={"a": {"provider": "github", "secret": "s"}, "b": {"scheme": "github", "secret": "s"}}
)
@example(sources={"sms": {"provider": "twilio"}})
def test_the_program_and_the_function_agree_on_every_source_map(sources: Any) -> None:
    event(_check_sources(sources))


@RUNS
@given(value=st.one_of(st.booleans(), st.sampled_from(["true", "false", "TRUE", "yes", "1", ""])))
def test_the_warehouse_payload_switch_reaches_ingress_as_the_program_read_it(value: Any) -> None:
    """``warehouse.includePayload`` is structured config, not text the function reads as such:
    it accepts a YAML boolean or true/false only, and ingress is told ``true`` when the
    warehouse is on and wants the payload. Whatever the program accepts, ingress reads alike.
    """
    program = _program(warehouse=json.dumps({"enabled": True, "includePayload": value}))
    if program.refusal is not None:
        assert "hookpress:warehouse.includePayload" in program.refusal
        return
    s = program.value
    assert _deployed("ingress", s).message_payload is s.warehouse.include_payload
