"""Errors the catalog raises for user mistakes, in neutral words.

Every error is a :class:`CatalogError` whose message is one line naming what is wrong and the fix,
without naming a client: no command names, no ``--flags``, no widget labels.

* ``field`` names the offending input by its library name (``where``, ``anchors``, ``min_score``,
  ``embedding``, ``dims``, ``replace``, …).
* Where the message itself names an input, it writes the library name in backticks
  (`` `where` must be a JSON object``); each client replaces such a name with its own word for the
  input: the CLI with its flag (``--where``), the dashboard with the widget's label, the REST API keeps
  the name (it is the JSON key).
* ``hint`` is an optional neutral suggestion appended after ``; `` (the CLI may word it as a command).

The CLI prints the message without a traceback and exits non-zero.
"""


class CatalogError(Exception):
    """A user-facing error: one line, no traceback needed.

    ``field`` is the library name of the input at fault (or None); ``hint`` a neutral suggestion
    (or None). ``str(error)`` is the message alone; clients add their own wording of ``field``."""

    exit_code = 2

    def __init__(self, message: str = "", *, field: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message

    def worded(self, names: dict[str, str], hints: dict[str, str] | None = None) -> str:
        """The message with each backticked input name replaced by a client's word for it
        (``names``: library name → word) and the hint by the client's wording (``hints``)."""
        text = self.message
        for name, word in names.items():
            text = text.replace(f"`{name}`", word)
        if self.hint:
            text = f"{text}; {(hints or {}).get(self.hint, self.hint)}"
        return text

    def to_dict(self) -> dict:
        """``{"code", "message", "field", "hint"}`` — the shape a JSON client shows."""
        return {"code": type(self).__name__, "message": self.message, "field": self.field, "hint": self.hint}


class NotFound(CatalogError):
    """An id, name or key that matches nothing."""


class AlreadyExists(CatalogError):
    """A unique name or key that is already taken."""


class CatalogBusy(CatalogError):
    """Another process holds the DuckDB file longer than we are willing to wait."""

    exit_code = 3


class VectorsChanged(CatalogBusy):
    """An embedding's vectors changed while an operation was reading them (it may be run again at once)."""


class ValidationError(CatalogError):
    """Input that failed validation; ``errors`` lists ``(line, reason)`` pairs where lines apply."""

    def __init__(self, message, errors=None, total=None, unit="line", *, field=None, hint=None):
        super().__init__(message, field=field, hint=hint)
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


# -- the Labelbox SDK's names (``lbox.exceptions`` / ``labelbox.exceptions``) for the same errors --------
# Code written against the SDK catches these names unchanged; they are the classes above, not copies.
LabelboxError = CatalogError  # the SDK's base class; the ADV client raises it for every failed call
ResourceNotFoundError = NotFound  # ``get_embedding_by_name`` of a name that matches nothing
ResourceConflict = AlreadyExists  # a name that is already taken
