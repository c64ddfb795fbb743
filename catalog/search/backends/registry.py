"""The registered search backends and the choice between them.

``BACKENDS`` maps a name to its class; a new backend is one module and one entry here. The automatic
choice (``backend=None`` or ``"auto"``) uses the first backend of :data:`ENGINE_ORDER` that is ready
(a configured vector engine holding the embedding's current version), whatever the size; else it scans
exactly below :data:`APPROXIMATE_MIN_ROWS` vectors and, above it, uses the first inexact backend in
:data:`AUTO_ORDER` that is ready for the embedding; an answer from it that may be incomplete is then
re-run on the exact scan. An engine that fails (unreachable, refusing) under the automatic choice is
replaced by the local choice, with a warning in :attr:`Plan.warnings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...engine.client import EngineError
from ...errors import CatalogError
from .approximate import ApproximateBackend
from .base import Backend, Context
from .exact import ExactBackend
from .qdrant import QdrantBackend
from .qdrant_hnsw import QdrantHnswBackend

BACKENDS: dict[str, type[Backend]] = {
    ExactBackend.name: ExactBackend,
    ApproximateBackend.name: ApproximateBackend,
    QdrantBackend.name: QdrantBackend,
    QdrantHnswBackend.name: QdrantHnswBackend,  # by name only: never the automatic choice
}
ENGINE_ORDER: tuple[str, ...] = (QdrantBackend.name,)
AUTO_ORDER: tuple[str, ...] = (ApproximateBackend.name,)
APPROXIMATE_MIN_ROWS = 200_000  # automatic choice: exact below this many vectors


@dataclass
class Plan:
    """The backend that answers, the exact backend beside it, and whether the choice was automatic
    (then an incomplete answer falls back to the exact scan); ``warnings`` say why an automatic choice
    did not use the vector engine although it was ready."""

    backend: Backend
    exact: ExactBackend
    auto: bool
    warnings: list[str] = field(default_factory=list)


def names() -> tuple[str, ...]:
    return tuple(BACKENDS)


def offered(context: Context) -> tuple[str, ...]:
    """The backend names clients offer for this catalog (the engine's only when one is configured)."""
    return tuple(name for name, cls in BACKENDS.items() if cls.offered(context))


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
    warnings = []
    for name in ENGINE_ORDER:
        cls = BACKENDS[name]
        if cls.ready(context, emb):
            try:
                return Plan(cls.open(context, emb, exact), exact, True)
            except EngineError as exc:
                warnings.append(f"{exc}; searched locally instead")
    local = _local(context, emb, exact)
    local.warnings = warnings
    return local


def _local(context: Context, emb, exact: ExactBackend) -> Plan:
    if exact.size >= APPROXIMATE_MIN_ROWS:
        for name in AUTO_ORDER:
            cls = BACKENDS[name]
            if cls.ready(context, emb):
                return Plan(cls.open(context, emb, exact), exact, True)
    return Plan(exact, exact, False)
