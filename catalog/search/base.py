"""The small interface every search backend implements.

A backend answers one question: *which rows of an embedding score within [min, max] against the
query vectors, and with what score?* Anchor resolution, aggregation, metadata filters, ordering and
paging live in :mod:`catalog.search.query` and are shared by all backends.

Adding a backend (for example a remote vector engine with native Manhattan distance, such as
Qdrant) means writing one module with a :class:`Backend` subclass and registering it in
:data:`catalog.search.query.BACKENDS`:

* ``vectors(row_ids)`` returns the normalised vectors of the given rows (anchors) and the ids that
  have none;
* ``search(query)`` returns :class:`Matches` — scores must come from :mod:`catalog.scoring` (for a
  remote engine: its L1 distances on normalised vectors passed through ``score_from_l1``), and
  ``table`` must be sorted by row id so that ties can be broken deterministically;
* ``size`` is the number of rows with a vector (used to pick a backend).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass
class Query:
    """What a backend is asked: normalised query vectors and an inclusive score range.

    ``vectors`` has one row for ``mean`` (the combined query) and one row per anchor for ``max``
    (a row's score is its best score over the rows). ``limit_hint`` is ``offset + limit`` (None:
    every match is needed) and ``order`` the requested order; approximate backends may use them,
    exact ones ignore them.
    """

    vectors: np.ndarray
    min_score: float
    max_score: float
    limit_hint: int | None = None
    order: str = "desc"


@dataclass
class Matches:
    """Rows whose score lies in the range: ``table[positions]`` are their ids, ``scores`` their scores.

    ``table`` is sorted by row id (position order is id order). ``complete`` is False when an
    approximate backend may have missed rows in the range (the total is then a lower bound).
    """

    table: np.ndarray
    positions: np.ndarray
    scores: np.ndarray
    complete: bool = True

    def __len__(self) -> int:
        return len(self.positions)


class Backend(ABC):
    """One way of scoring an embedding's rows against query vectors."""

    name = "abstract"

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of rows that have a vector."""

    @abstractmethod
    def vectors(self, row_ids: list[str]) -> tuple[np.ndarray, list[str]]:
        """``(normalised vectors of the rows that have one, in order; ids that have none)``."""

    @abstractmethod
    def search(self, query: Query) -> Matches:
        """Rows scoring within ``[query.min_score, query.max_score]`` (inclusive)."""


def range_thresholds(min_score: float, max_score: float, dims: int) -> tuple[float, float]:
    """L1 distance bounds slightly wider than the score range (the exact check is on scores)."""
    from ..scoring import l1_from_score

    hi = l1_from_score(min_score, dims)
    lo = l1_from_score(max_score, dims)
    return lo - 1e-4 - lo * 1e-5, hi + 1e-4 + hi * 1e-5


def in_range(scores: np.ndarray, min_score: float, max_score: float) -> np.ndarray:
    return (scores >= min_score) & (scores <= max_score)
