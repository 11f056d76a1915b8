"""What is built once and kept: a function instance's runtime, an adapter's client.

Nothing is built at import (functions-framework imports ``main`` at start-up,
and tests import it with no environment); the first request builds the
runtime from the environment, under a lock, and every later request reuses
it. Tests put their own runtime in place with ``install``. A runtime the
settings refuse is logged on each request that finds it missing, the same
way by every function (:meth:`Instance.ready`), and answered 503 by its entry
point. The adapters hold their clients and endpoints the same way
(:class:`Lazy`): nothing is made until a call needs it. Having built its runtime,
an instance starts what its first request will wait for (connections, tokens, keys)
in threads of their own (:func:`background`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from hookpress.config_rules import SettingsError

if TYPE_CHECKING:
    from hookpress.logs import Logger

__all__ = ["Instance", "Lazy", "background"]

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value made on first use, or the one given; concurrent first calls make one.

    A failed make raises to its caller and is tried again by the next call.
    """

    def __init__(self, make: Callable[[], T], given: T | None = None) -> None:
        self._make = make
        self._value = given
        self._lock = threading.Lock()

    def __call__(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
                value = self._value
        return value

    def peek(self) -> T | None:
        """The value if it has been made, else None (nothing is made)."""
        return self._value


class Instance(Lazy[T]):
    """A function instance's runtime: built on first use, replaceable, its failure logged."""

    def __init__(self, build: Callable[[], T], log: Logger) -> None:
        super().__init__(build)
        self._log = log

    @property
    def built(self) -> bool:
        """Whether the value exists yet."""
        return self.peek() is not None

    def ready(self) -> T | None:
        """The value; None, after logging why, when the settings refuse to build it."""
        value = self._value
        if value is not None:  # every request after the first: one read, no try
            return value
        try:
            return self()
        except SettingsError as exc:
            log = self._log
            log.critical(f"{log.component} is misconfigured: {exc}", outcome="misconfigured")
            return None

    def install(self, value: T | None) -> None:
        """Use ``value`` from now on (None: build again on next use)."""
        with self._lock:
            self._value = value


def background(target: Callable[[], object], name: str) -> threading.Thread | None:
    """Run ``target`` in a daemon thread of its own: work an instance starts ahead of the
    request that will need it (``wire.Endpoint.warm``). None if no thread can be had; the
    request then does the work itself, as it would have without."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    try:
        thread.start()
    except RuntimeError:  # can't start new thread
        return None
    return thread
