"""Errors the catalog raises for user mistakes.

Every error is a :class:`CatalogError` whose message is one line naming the input and the fix; the
CLI prints it without a traceback and exits non-zero.
"""


class CatalogError(Exception):
    """A user-facing error: one line, no traceback needed."""

    exit_code = 2


class NotFound(CatalogError):
    """An id, name or key that matches nothing."""


class AlreadyExists(CatalogError):
    """A unique name or key that is already taken."""


class CatalogBusy(CatalogError):
    """Another process holds the DuckDB file longer than we are willing to wait."""

    exit_code = 3


class ValidationError(CatalogError):
    """Input that failed validation; ``errors`` lists ``(line, reason)`` pairs where lines apply."""

    def __init__(self, message, errors=None, total=None, unit="line"):
        super().__init__(message)
        self.unit = unit
        self.errors = list(errors or [])
        self.total = total if total is not None else len(self.errors)

    def report(self, first=20):
        """The message, then ``line N: reason`` for the first ``first`` errors, then a count."""
        lines = [str(self)]
        for line, reason in self.errors[:first]:
            lines.append(f"{self.unit} {line}: {reason}" if line is not None else reason)
        if self.total > first:
            lines.append(f"... and {self.total - first} more errors")
        return "\n".join(lines)
