"""hookpress: secure webhook ingestion on Google Cloud, delivered into WordPress.

This package is the shared core bundled into every function's source archive
(see ``infra/``). Its sub-packages ``hookpress.cli``, ``hookpress.ops`` and
``hookpress.local`` (the command-line tool, the operations it runs and the local
stack) are left out of the archives, and deployed code never imports them: ruff's
TID251 (pyproject.toml) and tests/unit/test_deployed_imports.py hold that.
"""

__version__ = "0.1.0"
