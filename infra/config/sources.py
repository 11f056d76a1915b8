"""``hookpress:sources``, and the smoke source the program adds for ``hookpress smoke``.

Each source is validated by ``hookpress.config_rules.parse_sources``, the
very rule the ingress applies to ``HOOKPRESS_SOURCES``. What only the
program needs on top: one Secret Manager secret per source (it creates them),
and the smoke source's name and secret left free.
"""

from __future__ import annotations

from hookpress import config_rules as rules
from infra.config.model import SMOKE_SCHEME, SMOKE_SOURCE, ConfigError, Source
from infra.config.reader import Reader, config_errors

__all__ = ["read_sources"]


def read_sources(r: Reader, prefix: str) -> tuple[tuple[Source, ...], bool]:
    """The configured sources (by name), plus the smoke source when ``smokeSource`` is on."""
    sources = _configured(r, prefix)
    smoke = r.boolean("smokeSource", True)
    if smoke:
        sources = (*sources, _smoke(r, prefix, sources))
    return sources, smoke


def _configured(r: Reader, prefix: str) -> tuple[Source, ...]:
    data = r.obj("sources")
    if data is None:
        raise ConfigError(
            f"{r.key('sources')} is not set: it must map each source name to its scheme, e.g. "
            f"pulumi config set --path '{r.key('sources')}.stripe.scheme' stripe."
        )
    with config_errors():
        parsed = rules.parse_sources(
            dict(sorted(data.items())) if isinstance(data, dict) else data,
            r.key("sources"),
            prefix,
        )
    sources: list[Source] = []
    secret_ids: set[str] = set()
    for name, source in parsed.items():
        if source.secret in secret_ids:
            raise ConfigError(
                f"{r.key('sources')}.{name}.secret {source.secret!r} is used by another source: "
                "each source needs its own secret."
            )
        secret_ids.add(source.secret)
        sources.append(
            Source(
                name=name,
                scheme=source.scheme,
                secret_id=source.secret,
                provider=source.provider,
                lane=source.lane,
                # Only a tolerance the config sets: otherwise the function keeps the provider's.
                tolerance_s=source.tolerance_s if "tolerance" in data[name] else None,
                tolerance_set="tolerance" in data[name],
                url=source.url,
            )
        )
    return tuple(sources)


def _smoke(r: Reader, prefix: str, sources: tuple[Source, ...]) -> Source:
    if SMOKE_SOURCE in {s.name for s in sources}:
        raise ConfigError(
            f"{r.key('sources')} has a source named {SMOKE_SOURCE!r}, which the program "
            f"provisions for `hookpress smoke`: rename it, or set {r.key('smokeSource')} "
            "false."
        )
    secret = f"{prefix}-source-{SMOKE_SOURCE}"
    if secret in {s.secret_id for s in sources}:
        raise ConfigError(
            f"{r.key('sources')} uses the secret {secret!r}, which the smoke source "
            "needs: give that source another secret id."
        )
    return Source(name=SMOKE_SOURCE, scheme=SMOKE_SCHEME, secret_id=secret, generated=True)
