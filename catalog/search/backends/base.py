"""The small interface every search backend implements, and what a backend declares it can do.

A backend answers one question: *which rows of an embedding score within [min, max] against the
query vectors, and with what score?* Anchor resolution, aggregation, metadata filters, ordering and
paging live in :mod:`catalog.search.service` and :mod:`catalog.search.ranking` and are shared by all
backends; :class:`Capabilities` tells the search service which parts a backend does itself.

A backend is added by one module with a :class:`Backend` subclass and one entry in
:data:`catalog.search.backends.registry.BACKENDS`:

* ``open(context, emb, exact)`` makes one for an embedding (``exact`` is the exact backend over the
  same vector cache, for anchor vectors and fallbacks);
* ``ready(context, emb)`` says whether it can answer now without building anything (the automatic
  choice only uses backends that are ready);
* ``vectors(row_ids)`` returns the normalised vectors of the given rows (anchors) and the ids that
  have none;
* ``search(query)`` returns :class:`Matches`. Scores must come from :mod:`catalog.scoring` (for a
  remote engine: its L1 distances on normalised vectors passed through ``score_from_l1``), and
  ``table`` must be sorted by row id so that ties can be broken deterministically;
* ``size`` is the number of rows with a vector;
* ``offered(context)`` says whether clients list it as a choice for the catalog (default: always).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...scoring import l1_from_score


@dataclass(frozen=True)
class Capabilities:
    """What a backend does itself; the search service does the rest.

    ``exact``: its matches are exactly the exact scan's (else it is held to ``recall``, its declared
    mean recall against the exact scan on structured data). ``orders``: the score orders it answers
    (others are answered by the exact scan). ``sorts``: the result sorts (``SearchSpec.sort``) whose
    matches it answers; the service does the sorting itself, but a sort other than ``"score"`` needs
    every row in the range (no top-k shortcut), and the others are answered by the exact scan.
    ``anchors``: for several query vectors (``aggregate="max"``) it says which one gave each match its
    score (``Matches.anchors``); the service routes to the exact scan when asked and it cannot. ``top_k``: it uses ``Query.limit_hint`` for one query
    vector; ``per_anchor_top_k``: also for several (``aggregate="max"``). ``filters``: it applies
    metadata filters itself (else the service filters its matches)."""

    exact: bool
    orders: tuple[str, ...] = ("desc", "asc")
    sorts: tuple[str, ...] = ("score", "global_key", "created")
    anchors: bool = True
    top_k: bool = False
    per_anchor_top_k: bool = False
    filters: bool = False
    recall: float = 1.0


@dataclass(frozen=True)
class Context:
    """What backends are made from: the catalog's store (file, cache folder), its vector cache and its
    engine service (:class:`catalog.engine.Engines`; None where no engine can be used)."""

    store: object
    cache: object
    engines: object = None


@dataclass
class Query:
    """What a backend is asked: normalised query vectors and an inclusive score range.

    ``vectors`` has one row for ``mean`` (the combined query) and one row per anchor for ``max``
    (a row's score is its best score over the rows). ``limit_hint`` is ``offset + limit`` (None:
    every match is needed), given only to backends whose capabilities use it; ``order`` the order.
    ``where`` is the spec's filter document: a backend may use it to narrow its candidates (the service
    applies the filter to its matches unless ``Capabilities.filters``). ``exclude`` holds the row ids the
    service drops from the matches (the anchors): a backend that lists only the rows the top
    ``limit_hint`` needs lists these too where they are in range, so that its ``unlisted`` count holds
    none of them.
    """

    vectors: np.ndarray
    min_score: float
    max_score: float
    limit_hint: int | None = None
    order: str = "desc"
    where: dict | None = None
    exclude: tuple = ()


@dataclass
class Matches:
    """Rows whose score lies in the range: ``table[positions]`` are their ids, ``scores`` their scores.

    ``table`` is sorted by row id (position order is id order). ``complete`` is False when an
    approximate backend may have missed rows in the range (the total is then a lower bound).
    ``anchors`` (several query vectors only; None otherwise) holds, for each match, the index of the
    query vector that gave its score (the nearest one; ties: the lowest index). ``unlisted`` counts the
    rows in the range that are not listed (a backend answering a top ``limit_hint`` without a filter may
    leave out rows that cannot reach the page); the total is ``len`` plus it. A subset lists what it
    lists: ``unlisted`` stays with the matches the backend returned.
    ``recall``: for an incomplete answer, the backend's measured recall against the exact scan (None
    when unknown).
    """

    table: np.ndarray
    positions: np.ndarray
    scores: np.ndarray
    complete: bool = True
    anchors: np.ndarray | None = None
    unlisted: int = 0
    recall: float | None = None

    def __len__(self) -> int:
        return len(self.positions)

    def subset(self, which) -> "Matches":
        """The matches selected by a boolean mask or an index array (same table, in that order)."""
        return Matches(self.table, self.positions[which], self.scores[which], complete=self.complete,
                       anchors=None if self.anchors is None else self.anchors[which], recall=self.recall)


class Backend(ABC):
    """One way of scoring an embedding's rows against query vectors."""

    name: ClassVar[str] = "abstract"
    capabilities: ClassVar[Capabilities]

    @classmethod
    @abstractmethod
    def open(cls, context: Context, emb, exact) -> "Backend":
        """A backend for ``emb``; ``exact`` is the exact backend over the same cache."""

    @classmethod
    def ready(cls, context: Context, emb) -> bool:
        """Whether it can answer for ``emb`` now, without a build (used by the automatic choice)."""
        return True

    @classmethod
    def offered(cls, context: Context) -> bool:
        """Whether clients offer it as a choice for this catalog (e.g. only with an engine configured)."""
        return True

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
    hi = l1_from_score(min_score, dims)
    lo = l1_from_score(max_score, dims)
    return lo - 1e-4 - lo * 1e-5, hi + 1e-4 + hi * 1e-5


def in_range(scores: np.ndarray, min_score: float, max_score: float) -> np.ndarray:
    return (scores >= min_score) & (scores <= max_score)
