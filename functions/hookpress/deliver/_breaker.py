"""A circuit breaker in front of WordPress, per function instance.

After ``threshold`` consecutive retryable failures it opens: deliveries are
answered non-2xx at once (Pub/Sub redelivers later) without calling
WordPress, for ``cooldown_s``. Then one request probes; its success closes
the breaker, its failure opens it for another cool-down. This keeps a sick
WordPress from being hammered by every queued event at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Breaker"]


class Breaker:
    """Closed → open after N failures → half-open (one probe) → closed or open."""

    def __init__(
        self, threshold: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._probing or self._clock() - self._opened_at >= self.cooldown_s:
                return "half-open"
            return "open"

    @property
    def probing(self) -> bool:
        """Whether the one probe of a half-open breaker is out (its slot taken)."""
        with self._lock:
            return self._probing

    def allow(self) -> bool:
        """Whether this request may call WordPress now."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._probing or self._clock() - self._opened_at < self.cooldown_s:
                return False
            self._probing = True  # exactly one probe
            return True

    def success(self) -> None:
        """WordPress answered with anything but a retryable failure: close."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def failure(self) -> None:
        """A retryable failure: count it, open at the threshold, re-open after a failed probe."""
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self.threshold:
                self._opened_at = self._clock()
                self._probing = False

    def abandon(self) -> None:
        """A call was allowed but never reached WordPress: free the probe slot."""
        with self._lock:
            self._probing = False
