"""The ``hookpress`` command: operate a hookpress stack, local or deployed.

``main`` is the console script (``hookpress = "hookpress.cli:main"``). The
commands are thin: each parses its arguments, resolves the stack
(:mod:`hookpress.ops.target`), calls an operation of :mod:`hookpress.ops`, and
renders the result with rich (or as JSON with ``--json``). This package is
left out of the function archives; rich is imported only here.
"""

from __future__ import annotations

from hookpress.cli._app import main
from hookpress.cli._exit import ExitCode

__all__ = ["ExitCode", "main"]
