"""The registered search backends and the choice between them.

``BACKENDS`` maps a name to its class; a new backend is one module and one entry here. The automatic
choice (``backend=None`` or ``"auto"``) scans exactly below :data:`APPROXIMATE_MIN_ROWS` vectors and,
above it, uses the first inexact backend in :data:`AUTO_ORDER` that is ready for the embedding; an
answer from it that may be incomplete is then re-run on the exact scan.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import CatalogError
from .approximate import ApproximateBackend
from .base import Backend, Context
from .exact import ExactBackend

BACKENDS: dict[str, type[Backend]] = {
    ExactBackend.name: ExactBackend,
    ApproximateBackend.name: ApproximateBackend,
}
AUTO_ORDER: tuple[str, ...] = (ApproximateBackend.name,)
APPROXIMATE_MIN_ROWS = 200_000  # automatic choice: exact below this many vectors


@dataclass
class Plan:
    """The backend that answers, the exact backend beside it, and whether the choice was automatic
    (then an incomplete answer falls back to the exact scan)."""

    backend: Backend
    exact: ExactBackend
    auto: bool


def names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def check_choice(choice) -> str | None:
    """``None`` for the automatic choice, else a registered backend name."""
    if choice in (None, "auto"):
        return None
    if choice not in BACKENDS:
        listed = " or ".join(BACKENDS)
        raise CatalogError(f"backend {choice!r} is not supported; use {listed} (or leave it out)", field="backend")
    return choice


def plan(context: Context, emb, choice=None) -> Plan:
    """The backend for ``emb`` (``choice``: a name, or None/"auto" to choose by size and readiness)."""
    choice = check_choice(choice)
    exact = ExactBackend.open(context, emb)
    if choice is not None:
        cls = BACKENDS[choice]
        return Plan(cls.open(context, emb, exact), exact, False)
    if exact.size >= APPROXIMATE_MIN_ROWS:
        for name in AUTO_ORDER:
            cls = BACKENDS[name]
            if cls.ready(context, emb):
                return Plan(cls.open(context, emb, exact), exact, True)
    return Plan(exact, exact, False)
