"""One exception type for problems a user can fix, with the fix spelled out."""


class RagError(Exception):
    """An error the user can act on: `message` says what happened, `hint` says how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class Unavailable(RagError):
    """Something the index lives on (its database server) cannot be reached right now. Nothing was changed, and
    the same call may work later: the HTTP API answers 503 with Retry-After, and the CLI exits like any RagError."""


class LoadError(Exception):
    """A single file could not be read; ingestion reports it and carries on with the rest."""


class UsageError(RagError):
    """The request itself is wrong (a path that does not exist, a filter value nothing can match): the CLI exits
    with 2, the HTTP API answers 422, and nothing was done."""
