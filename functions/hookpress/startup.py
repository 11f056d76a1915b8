"""How a function's ``main`` loads its modules: with Python's cyclic collector held.

functions-framework imports ``main`` once per instance, in the process that then
forks the worker answering requests. Everything that import makes (modules,
classes, functions, tables) lives as long as the instance, yet the collector
scans it again and again while it is being made: the ingress's ``main`` imports
Starlette, uvicorn's worker and ``hookpress.ingress``, tens of thousands of
objects, and every 700 more container objects made than freed start a collection
of the young ones and, now and then, of all of them. :func:`collector_held` holds
the collector while the block runs, then moves what exists into the permanent
generation (``gc.freeze()``), which no later collection scans, and lets it run
again. That is the pattern Python's ``gc`` documentation gives for a process that
forks workers (https://docs.python.org/3/library/gc.html#gc.freeze): collections in
the worker no longer touch the objects it shares with its parent. Reference
counting still frees a frozen object nothing refers to; only a frozen cycle that
later becomes garbage stays, and an import makes few.

Measured on the ingress (bench/RESULTS.md, "The collector held while ``main.py``
loads (run 26)"): its start to functions-framework's first answer, sixty starts a
side taking turns with the unheld ``main``, was 3.7 and 4.5 ms shorter at the median
of the pairs in two batches (48 and 45 of 60 faster). deliver's ``main`` imports
little that functions-framework has not loaded already: forty starts a side showed
no difference, and it does not use this.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_held"]


@contextlib.contextmanager
def collector_held() -> Iterator[None]:
    """Hold the cyclic collector for the block, then freeze what exists and restore it.

    Nested, or entered with the collector already off, it leaves the collector as
    it found it: off."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
