"""Similarity search: one :class:`SearchSpec` (anchors, a score range, aggregation, filter, order),
run by the :class:`Searcher` on a backend from the registry (:mod:`catalog.search.backends`).

``Catalog.search(spec, page)`` returns a :class:`SearchResult` (``total`` and a page of :class:`Hit`);
``Catalog.search_row_ids(spec)`` returns every matching row id, in order. A spec without a range is
automatic (:mod:`catalog.search.auto_range`): the result's ``score_range`` says which range was used
and why; ``Catalog.score_distribution(spec)`` returns the query's :class:`ScoreDistribution`.
"""

from .backends import (APPROXIMATE_MIN_ROWS, BACKENDS, ApproximateBackend, Backend, Capabilities, ExactBackend,
                       Matches, Query)
from .auto_range import TOP_N, RangeChoice, ScoreDistribution, choose_range
from .results import Hit, SearchResult
from .service import Searcher, split_call
from .spec import ALL, Page, SearchSpec

__all__ = ["SearchSpec", "Page", "ALL", "Searcher", "split_call", "SearchResult", "Hit", "Backend", "Capabilities",
           "Matches", "Query", "ExactBackend", "ApproximateBackend", "BACKENDS", "APPROXIMATE_MIN_ROWS", "RangeChoice",
           "ScoreDistribution", "choose_range", "TOP_N"]
