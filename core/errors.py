"""The project's one base error and its one-line formatter.

Every error meant for a person (CLI, job log, app page) derives from ValueAuditError, so
callers can tell "bad input, say what to do" from a bug. Messages are read in the app as well
as on the command line, so they name settings in words ("batch size", "database path"), never
CLI flags; `hint` carries an optional next step in the same generic wording, and `cli_hint`
the command-line spelling of it (a flag), which only the CLI prints."""
from __future__ import annotations


class ValueAuditError(Exception):
    """Base of the project's user-facing errors; `hint` says what to do next (optional)."""

    def __init__(self, *args, hint: str | None = None, cli_hint: str | None = None):
        super().__init__(*args)
        self.hint = hint
        self.cli_hint = cli_hint


class ModelError(ValueAuditError, ValueError):
    """A model that cannot be used as asked; the message says what to do. Defined here, not
    in models.py, so that family.py (which models.py imports) can raise it too; callers use
    `models.ModelError`."""


def one_line(e: BaseException | str) -> str:
    """The first non-empty line of an error's message (or of a message string), or the
    error's class name when it has none: what a CLI line, a job's status or an app banner
    shows instead of a traceback."""
    for line in str(e).strip().splitlines():
        if line.strip():
            return line.strip()
    return "unknown error" if isinstance(e, str) else type(e).__name__
