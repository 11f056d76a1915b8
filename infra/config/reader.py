"""Typed, validated access to one config namespace; every error is one sentence naming the key.

Whole numbers, numbers and switches are read by ``hookpress.config_rules``,
the functions' own readers: a value means here what it means to the function
that will read it. Their :class:`~hookpress.config_rules.SettingsError`
becomes a :class:`ConfigError` with the same sentence.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pulumi

from hookpress import config_rules as rules
from infra.config.model import ConfigError

__all__ = ["Reader", "config_errors"]

_V = TypeVar("_V", int, float, bool)


@contextmanager
def config_errors() -> Iterator[None]:
    """Re-raise a shared rule's SettingsError as the program's ConfigError (same sentence)."""
    try:
        yield
    except rules.SettingsError as exc:
        raise ConfigError(str(exc)) from None


class Reader:
    """One config namespace (``hookpress``, ``gcp``)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.cfg = pulumi.Config(namespace)

    def key(self, name: str) -> str:
        """The full key, e.g. ``hookpress:maxBodyBytes``."""
        return f"{self.namespace}:{name}"

    def text(self, name: str, default: str | None = None) -> str | None:
        """The value without surrounding blanks; ``default`` when unset or blank."""
        value = rules.text(self.cfg.get(name))
        return default if value is None else value

    def required(self, name: str, what: str) -> str:
        """The value, or ConfigError saying it must be ``what``."""
        value = self.text(name)
        if value is None:
            raise ConfigError(
                f"{self.key(name)} is not set: it must be {what} "
                f"(pulumi config set {self.key(name)} ...)."
            )
        return value

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        """A whole number from ``lo`` to ``hi`` (a key no function reads)."""
        with config_errors():
            return rules.parse_int(self.cfg.get(name), self.key(name), default, lo, hi)

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        """A number from ``lo`` to ``hi`` (a key no function reads)."""
        with config_errors():
            return rules.parse_float(self.cfg.get(name), self.key(name), default, lo, hi)

    def boolean(self, name: str, default: bool) -> bool:
        """A switch (a key no function reads)."""
        with config_errors():
            return rules.parse_bool(self.cfg.get(name), self.key(name), default)

    def knob(self, name: str, knob: rules.Knob[_V]) -> _V:
        """A key the program passes on to a function: that variable's default and bounds."""
        with config_errors():
            return knob.read(self.cfg.get(name), self.key(name))

    def not_above(
        self, low: str, low_value: int, high: str, high_value: int, unit: str = ""
    ) -> None:
        """ConfigError unless the value of key ``low`` is at most that of key ``high``."""
        if low_value > high_value:
            raise ConfigError(
                f"{self.key(low)} ({low_value}{unit}) is larger than "
                f"{self.key(high)} ({high_value}{unit})."
            )

    def obj(self, name: str) -> Any:
        """Structured config (a map or list), None when unset."""
        try:
            return self.cfg.get_object(name)
        except Exception:  # noqa: BLE001  # pulumi raises a bare JSON error; say which key
            raise ConfigError(
                f"{self.key(name)} is not valid JSON/YAML structured config."
            ) from None

    def string_list(self, name: str) -> tuple[str, ...]:
        """A list of strings, blanks dropped."""
        value = self.obj(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.key(name)} must be a list of strings.")
        return tuple(v.strip() for v in value if v.strip())
