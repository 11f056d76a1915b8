"""Operations on a running hookpress stack, shared by the ``hookpress`` CLI and scripts.

One module per concern, each importable on its own (nothing here imports a
Google client, httpx or rich at module import, and the package imports none
of its modules, so a function archive that never calls these pays nothing):

- :mod:`hookpress.ops.target`: which stack to talk to (the local stack's
  ``.hookpress/local.json``, or a deployed stack from flags, environment and
  ``pulumi stack output --json``) and the adapters to reach it.
- :mod:`hookpress.ops.selection`: parsing times, days and rates; finding records
  by status, time range and source.
- :mod:`hookpress.ops.replay`: idempotent, rate-limited replay by key, by
  selection, from the dead-letter subscription or from raw objects in GCS
  (rebuilding missing records).
- :mod:`hookpress.ops.control`: the pause switch.
- :mod:`hookpress.ops.rotation`: adding and retiring signing-secret versions.
- :mod:`hookpress.ops.sending`: signed example requests, as a provider sends them.

Every backend failure surfaces as :class:`hookpress.backends.BackendError`;
a stack that cannot be reached or is not configured as
:class:`hookpress.ops.target.TargetError`.
"""

from __future__ import annotations

__all__: list[str] = []
