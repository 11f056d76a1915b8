"""The configuration rules the functions and the Pulumi program share: one owner each.

A value ``pulumi up`` accepts must be one the function accepts at its first
request, and one the function refuses must stop ``pulumi up``. So the rules
both sides apply live here and nowhere else:

- the source map (``HOOKPRESS_SOURCES`` / ``hookpress:sources``) and each
  source in it: its name, provider or scheme, secret id, lane, tolerance, URL;
- the source-name and secret-id patterns;
- how a whole number, a number and a switch are read from text;
- the name, default and bounds of every numeric and boolean variable a
  function reads (the Pulumi program sets some of them from its own keys,
  with these very defaults and bounds).

``hookpress.settings`` reads the functions' environment with them; the
Pulumi program (``infra/config``) reads its stack configuration with them and
re-raises a :class:`SettingsError` as its own ``ConfigError`` with the same
sentence. ``tests/infra/test_config_agreement.py`` holds both sides to
accepting and refusing exactly the same values.

Deployed code imports this module: it imports neither ``pulumi`` nor
``hookpress.local``/``hookpress.cli``. Every function imports it (its
:class:`SettingsError`), so it stays light: the provider table is read only
when a source map is parsed, and a scheme id is checked against the
registry's ids without importing the scheme's module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import msgspec

from hookpress.lanes import LANES

__all__ = [
    "SECRET_ID",
    "SOURCE_NAME",
    "Knob",
    "Number",
    "SettingsError",
    "SourceConfig",
    "Switch",
    "WholeNumber",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_source",
    "parse_sources",
    "text",
]

#: a source's name: its URL path segment and part of its default secret id
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: a Secret Manager secret id (letters, digits, '-' and '_', at most 255):
#: https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create
SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(Exception):
    """Raised when a configuration value is missing or invalid.

    The message is a full sentence naming the variable (or config key); it
    never contains a secret value.
    """


def text(raw: str | None) -> str | None:
    """The value with surrounding blanks removed; None when unset or blank."""
    if raw is None:
        return None
    raw = raw.strip()
    return raw or None


_N = TypeVar("_N", int, float)


def _bounded(
    raw: str | None, name: str, default: _N, lo: _N, hi: _N, kind: Callable[[str], _N], what: str
) -> _N:
    """``raw`` read with ``kind`` and held to ``lo``..``hi``; ``default`` when unset or blank."""
    value = text(raw)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise SettingsError(f"{name} must be {what}, got {value[:32]!r}.") from None
    if not lo <= number <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, got {number}.")
    return number


def parse_int(raw: str | None, name: str, default: int, lo: int, hi: int) -> int:
    """A whole number from ``lo`` to ``hi``; ``default`` when unset or blank."""
    return _bounded(raw, name, default, lo, hi, int, "a whole number")


def parse_float(raw: str | None, name: str, default: float, lo: float, hi: float) -> float:
    """A number from ``lo`` to ``hi`` (NaN is not); ``default`` when unset or blank."""
    return _bounded(raw, name, default, lo, hi, float, "a number")


def parse_bool(raw: str | None, name: str, default: bool) -> bool:
    """A switch: 1/0, true/false, yes/no or on/off in any case; ``default`` when unset."""
    value = text(raw)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(f"{name} must be 1/0, true/false, yes/no or on/off, got {value[:32]!r}.")


_V = TypeVar("_V", int, float, bool)


class Knob(msgspec.Struct, Generic[_V], frozen=True):
    """A variable the functions read: its name in their environment and its default."""

    variable: str
    default: _V

    def read(self, raw: str | None, name: str | None = None) -> _V:
        """The value of ``raw``; errors name ``name`` (a config key) or else the variable."""
        raise NotImplementedError

    def from_env(self, env: Mapping[str, str]) -> _V:
        """The value of the variable in ``env``."""
        return self.read(env.get(self.variable))


class WholeNumber(Knob[int], frozen=True):
    """A whole-number variable and its bounds."""

    lo: int
    hi: int

    def read(self, raw: str | None, name: str | None = None) -> int:
        return parse_int(raw, name or self.variable, self.default, self.lo, self.hi)


class Number(Knob[float], frozen=True):
    """A numeric variable (seconds, mostly) and its bounds."""

    lo: float
    hi: float

    def read(self, raw: str | None, name: str | None = None) -> float:
        return parse_float(raw, name or self.variable, self.default, self.lo, self.hi)


class Switch(Knob[bool], frozen=True):
    """A boolean variable."""

    def read(self, raw: str | None, name: str | None = None) -> bool:
        return parse_bool(raw, name or self.variable, self.default)


# Every numeric and boolean variable the functions read. The Pulumi program
# sets those marked "(program)" from its own keys, with these defaults and bounds.

#: days a record is kept (Firestore TTL); the raw payload must outlive it (program)
EVENT_TTL_DAYS = WholeNumber("HOOKPRESS_EVENT_TTL_DAYS", 30, 1, 3_650)
#: the largest body ingress reads (program)
MAX_BODY_BYTES = WholeNumber("HOOKPRESS_MAX_BODY_BYTES", 1_048_576, 1_024, 33_554_432)
#: what one ingress request holds at its peak per byte of a provider-shaped body (program:
#: the memory an instance needs for its concurrency): the body, its copy in the upload, and
#: the parsed object. Measured at 8.1 through the real entry point for JSON of many short
#: values (parsing alone: 6.6; long strings: 2.3) by the test that keeps it honest,
#: tests/integration/test_ingress_memory.py. A body of empty objects parses at ~35 bytes
#: per byte, but only a signed body is parsed: only a holder of the source's secret can
#: send one.
INGRESS_BYTES_PER_BODY_BYTE = 10
#: the ingress process before any request (interpreter, imports, pools): the bench's
#: sweep measured 70-79 MiB resident with 8-64 threads (bench/results/bench.json)
INGRESS_BASE_MIB = 96
#: how far a signed timestamp may be from now, and the bounds of a source's own
#: ``tolerance`` (program)
TIMESTAMP_TOLERANCE_S = WholeNumber("HOOKPRESS_TIMESTAMP_TOLERANCE_S", 300, 1, 3_600)
#: whether ingress puts the payload on the message (program: the warehouse's includePayload)
MESSAGE_PAYLOAD = Switch("HOOKPRESS_MESSAGE_PAYLOAD", False)
RETRY_AFTER_S = WholeNumber("HOOKPRESS_RETRY_AFTER_S", 30, 1, 3_600)
BACKEND_TIMEOUT_S = Number("HOOKPRESS_BACKEND_TIMEOUT_S", 10.0, 0.1, 120.0)
SECRET_CACHE_TTL_S = Number("HOOKPRESS_SECRET_CACHE_TTL_S", 300.0, 0.0, 86_400.0)
SECRET_MIN_REFRESH_S = Number("HOOKPRESS_SECRET_MIN_REFRESH_S", 30.0, 0.0, 3_600.0)
#: deliver's timeouts towards WordPress (program); rotate reads the read timeout too
WP_CONNECT_TIMEOUT_S = Number("HOOKPRESS_WP_CONNECT_TIMEOUT_S", 5.0, 0.1, 60.0)
WP_READ_TIMEOUT_S = Number("HOOKPRESS_WP_READ_TIMEOUT_S", 30.0, 0.1, 300.0)
#: deliver holds every event instead of posting it (program: pauseDelivery)
PAUSE_WP_DELIVERY = Switch("HOOKPRESS_PAUSE_WP_DELIVERY", False)
#: the same switch under its short name (either one on holds deliveries)
PAUSE_WP_DELIVERY_SHORT = Switch("PAUSE_WP_DELIVERY", False)
BREAKER_THRESHOLD = WholeNumber("HOOKPRESS_BREAKER_THRESHOLD", 5, 1, 1_000)
BREAKER_COOLDOWN_S = Number("HOOKPRESS_BREAKER_COOLDOWN_S", 30.0, 0.0, 3_600.0)
CONTROL_TTL_S = Number("HOOKPRESS_CONTROL_TTL_S", 5.0, 0.0, 300.0)
RECONCILE_STUCK_AFTER_S = WholeNumber("HOOKPRESS_RECONCILE_STUCK_AFTER_S", 300, 1, 86_400)
RECONCILE_STALE_AFTER_S = WholeNumber("HOOKPRESS_RECONCILE_STALE_AFTER_S", 3_600, 1, 604_800)
RECONCILE_BATCH = WholeNumber("HOOKPRESS_RECONCILE_BATCH", 500, 1, 10_000)


class SourceConfig(msgspec.Struct, frozen=True):
    """One webhook source: its URL path segment, provider (and so scheme), secret and lane."""

    name: str
    scheme: str
    secret: str  # the Secret Manager secret id (or key in the local secrets file)
    provider: str = ""  # defaults to the scheme's own provider
    lane: str = "normal"
    tolerance_s: int | None = None  # None: the deployment-wide tolerance
    url: str | None = None  # the public URL the provider calls (URL-signing schemes: Twilio)

    def __post_init__(self) -> None:
        if not self.provider:
            msgspec.structs.force_setattr(self, "provider", self.scheme)


_SOURCE_KEYS = frozenset({"scheme", "provider", "secret", "lane", "tolerance", "url"})


def parse_source(name: Any, spec: Any, where: str, default_secret: str) -> SourceConfig:
    """Validate one source of a sources map; SettingsError naming ``where`` if it is wrong.

    ``spec`` is ``{provider | scheme, secret?, lane?, tolerance?, url?}``; a
    provider fixes the scheme, a bare scheme is the provider of the same name.
    """
    if not isinstance(name, str) or not SOURCE_NAME.match(name):
        raise SettingsError(
            f"{where} has an invalid source name {str(name)[:64]!r}: use "
            "lower-case letters, digits, '-' and '_' (at most 63)."
        )
    at = f"{where}[{name!r}]" if where.startswith("HOOKPRESS") else f"{where}.{name}"
    if not isinstance(spec, dict):
        raise SettingsError(f"{at} must be an object with a 'provider' (or 'scheme').")
    unknown = set(spec) - _SOURCE_KEYS
    if unknown:
        raise SettingsError(f"{at} has unknown keys: {', '.join(sorted(unknown))}.")
    chosen, scheme = _provider(at, spec.get("provider"), spec.get("scheme"))
    secret = spec.get("secret", default_secret)
    if not isinstance(secret, str) or not SECRET_ID.match(secret):
        raise SettingsError(f"{at}.secret must be a secret id (letters, digits, '-' and '_').")
    lane = spec.get("lane", "normal")
    if lane not in LANES:
        raise SettingsError(f"{at}.lane must be one of {', '.join(LANES)}, got {str(lane)[:32]!r}.")
    from hookpress.providers import PROVIDERS  # on first use: deliver parses no source

    tolerance = spec.get("tolerance", PROVIDERS[chosen].tolerance_s)
    bounds = TIMESTAMP_TOLERANCE_S
    if tolerance is not None and (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int)
        or not bounds.lo <= tolerance <= bounds.hi
    ):
        raise SettingsError(
            f"{at}.tolerance must be whole seconds between {bounds.lo} and {bounds.hi}."
        )
    url = spec.get("url")
    if url is not None:
        _check_url(at, url)
    return SourceConfig(
        name=name,
        scheme=scheme,
        secret=secret,
        provider=chosen,
        lane=lane,
        tolerance_s=tolerance,
        url=url,
    )


def _provider(at: str, provider: Any, scheme: Any) -> tuple[str, str]:
    """The source's provider and the scheme it fixes, from either key (or both, agreeing)."""
    from hookpress.providers import PROVIDERS  # on first use: deliver parses no source
    from hookpress.signatures import SCHEMES  # ids only: no scheme module is imported

    names = ", ".join(sorted(PROVIDERS))
    if provider is None and scheme is None:
        raise SettingsError(f"{at} needs a 'provider' (one of {names}) or a 'scheme'.")
    # Membership only once the value is known to be text: a list or map is unhashable.
    if provider is not None and (not isinstance(provider, str) or provider not in PROVIDERS):
        raise SettingsError(f"{at}.provider must be one of {names}, got {str(provider)[:32]!r}.")
    if scheme is not None and (not isinstance(scheme, str) or scheme not in SCHEMES):
        raise SettingsError(
            f"{at}.scheme must be one of {', '.join(sorted(SCHEMES))}, got {str(scheme)[:32]!r}."
        )
    chosen = str(provider if provider is not None else scheme)
    fixed = PROVIDERS[chosen].scheme_name
    if scheme is not None and scheme != fixed:
        raise SettingsError(
            f"{at}: provider {chosen} signs with scheme {fixed}, not {scheme}: give one of them."
        )
    return chosen, fixed


def _check_url(at: str, url: Any) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SettingsError(f"{at}.url must be the http(s) URL the provider calls.")
    if parts.query or parts.fragment:
        raise SettingsError(
            f"{at}.url must have no query or fragment (the request's own query is added)."
        )


def parse_sources(data: Any, where: str, secret_prefix: str) -> dict[str, SourceConfig]:
    """The whole source map: a non-empty object of source name to :func:`parse_source` spec.

    A source without a ``secret`` gets ``{secret_prefix}-source-{name}``.
    """
    if not isinstance(data, Mapping) or not data:
        raise SettingsError(f"{where} must be a non-empty map of source name to settings.")
    return {
        name: parse_source(name, spec, where, f"{secret_prefix}-source-{name}")
        for name, spec in data.items()
    }
