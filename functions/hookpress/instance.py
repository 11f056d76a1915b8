"""What a function instance builds once: its runtime, on the first request.

Nothing is built at import (functions-framework imports ``main`` at start-up,
and tests import it with no environment); the first request builds the
runtime from the environment, under a lock, and every later request reuses
it. Tests put their own runtime in place with ``install``. A runtime the
settings refuse is logged once per request, the same way by every function
(:meth:`Instance.ready`), and answered 503 by its entry point.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from hookpress.config_rules import SettingsError

if TYPE_CHECKING:
    from hookpress.logs import Logger

__all__ = ["Instance"]

T = TypeVar("T")


class Instance(Generic[T]):
    """A lazily built, thread-safe, replaceable per-instance value."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the value exists yet."""
        return self._value is not None

    def get(self) -> T:
        """The value, built on first use (a failed build is retried by the next call)."""
        value = self._value
        if value is not None:
            return value
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value

    def ready(self, log: Logger) -> T | None:
        """The value; None, after logging why, when the settings refuse to build it."""
        value = self._value
        if value is not None:  # every request after the first: no call, no try
            return value
        try:
            return self.get()
        except SettingsError as exc:
            log.critical(f"{log.component} is misconfigured: {exc}", outcome="misconfigured")
            return None

    def install(self, value: T | None) -> None:
        """Use ``value`` from now on (None: build again on next use)."""
        with self._lock:
            self._value = value
