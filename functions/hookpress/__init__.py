"""hookpress: secure webhook ingestion on Google Cloud, delivered into WordPress.

This package is the shared core bundled into every function's source archive
(see ``infra/``). Its sub-packages ``hookpress.cli`` and ``hookpress.local``
(the command-line tool and the local stack) are left out of the archives.
"""

__version__ = "0.1.0"
