"""``python -m bench.fuzz``: what ``nox -s fuzz`` runs (see :func:`bench.fuzz.runner.main`)."""

from bench.fuzz.runner import main

raise SystemExit(main())
