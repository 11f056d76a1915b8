"""Exit codes scripts can rely on, and the one exception commands raise to use them."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["EXIT_CODES_HELP", "CliError", "ExitCode"]


class ExitCode(IntEnum):
    """What ``hookpress`` returns."""

    OK = 0  # done: everything asked for is done (or needed nothing)
    INCOMPLETE = 1  # it ran, but not everything succeeded: a rejected send, events left unreplayed
    USAGE = 2  # the command line is wrong
    NOT_FOUND = 3  # no such event or source
    CONFIG = 4  # no stack to talk to, or its description is incomplete
    UNAVAILABLE = 5  # a backend or the ingress could not be reached or failed: retry later
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODES_HELP = """\
exit codes:
  0    done (for send: 202 accepted or 200 duplicate; for replay: every selected
       event was replayed or needed nothing)
  1    ran, but not everything succeeded (send: the ingress refused the request;
       replay: events missing, failed or left in the dead-letter subscription)
  2    usage error (unknown command, bad or conflicting options)
  3    not found (no record for that event key, unknown source)
  4    no stack to talk to, or its description is incomplete (no
       .hookpress/local.json, no project, unknown scheme or secret)
  5    a backend or the ingress is unavailable (Firestore, Pub/Sub, GCS,
       Secret Manager, a 503 or no answer): safe to retry
  130  interrupted (Ctrl-C); what was done stands, replay is idempotent
"""


class CliError(Exception):
    """A failure to report in one sentence, with the exit code it maps to."""

    def __init__(self, message: str, code: ExitCode, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.hint = hint
