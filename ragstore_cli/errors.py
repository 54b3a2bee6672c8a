"""One exception hierarchy for ragstore, and the single place that maps it to exit codes.

Every error a user can see is a `RagstoreError`: its `str()` is the one-line message printed
without a traceback (unless `--debug`). Messages pass through `redact()` before they are shown.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # stdout's reader went away (`ragstore … | head`): 128 + SIGPIPE, as for git (cli/pipe.py)


class RagstoreError(Exception):
    """Base of every error ragstore reports to a user."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(RagstoreError):
    """A setting is missing, malformed or points at something that does not exist."""

    exit_code = EXIT_USAGE

    def __init__(self, variable: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"{variable}: {problem}", hint=hint)
        self.variable = variable


class UsageError(RagstoreError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class OperationFailed(RagstoreError):
    """An operation (a check, a migration, an import...) ran and failed."""

    exit_code = EXIT_FAILED


class ConnectionFailed(OperationFailed):
    """A backend could not be reached, authenticated or spoken to."""

    def __init__(self, backend: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend
        self.transient = transient


class DataError(OperationFailed):
    """Stored or archived data is malformed, inconsistent or fails verification."""


class LockConflict(RagstoreError):
    """A lock or a conflicting operation prevented the operation."""

    exit_code = EXIT_CONFLICT


class Interrupted(RagstoreError):
    """The user interrupted the operation (Ctrl-C)."""

    exit_code = EXIT_INTERRUPTED
