"""``python -m hookpress.cli``: the same as the ``hookpress`` console script."""

from __future__ import annotations

from hookpress.cli import main

raise SystemExit(main())
