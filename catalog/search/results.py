"""What a search returns: a page of :class:`Hit` and the total (:class:`SearchResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .auto_range import RangeChoice, ScoreDistribution


@dataclass
class Hit:
    """One result row. ``anchor`` says, for ``aggregate="max"`` ("similar to any"), which positive
    anchor gave the row its score (the nearest one; ties: the first in the spec's order): the anchor
    row's id for a row anchor, the anchor's index in ``SearchSpec.anchors`` for a vector anchor; None
    for ``mean`` (one combined query), for a pure filter listing, and when the text or image prompt
    was the nearest. ``to_dict()`` leaves it out; ``to_dict(details=True)`` adds it.

    With ``SearchSpec.group_by`` each hit stands for its group: ``group`` is the field's value (None
    for a row without it, a group of one), ``group_size`` the number of matching rows in the group, and
    the hit's score is the group's best score; ``to_dict()`` then has both keys (else neither)."""

    id: str
    global_key: str
    score: float | None
    anchor: str | int | None = None
    group: object = None
    group_size: int | None = None

    def to_dict(self, details: bool = False) -> dict:
        out = {"id": self.id, "global_key": self.global_key, "score": self.score}
        if self.group_size is not None:
            out["group"], out["group_size"] = self.group, self.group_size
        if details:
            out["anchor"] = self.anchor
        return out


@dataclass
class SearchResult:
    """``total`` rows matched (score range and filters); ``results`` is the requested page.

    ``backend`` names the backend that answered; ``complete`` is False only when an explicitly
    approximate search may have missed rows (``total`` is then a lower bound).

    ``score_range`` is the range the search used (:class:`RangeChoice`: ``min_score``, ``max_score``,
    ``automatic``, ``reason``, ``message``); None where no range applies (a pure filter listing).
    ``distribution`` is the query's :class:`ScoreDistribution` when the range was automatic (it was
    computed to choose it), else None. ``to_dict()`` keeps ``total`` and ``results`` only;
    ``to_dict(details=True)`` adds ``score_range`` and ``distribution``, and each hit's ``anchor``.
    ``warnings`` are one-line notes for the user (e.g. the vector engine failed and the automatic
    choice searched locally); clients show them, ``to_dict`` leaves them out. ``recall``: when
    ``complete`` is False, the answering backend's recall against the exact scan as measured when its
    index was calibrated (None otherwise).
    """

    total: int
    results: list[Hit] = field(default_factory=list)
    backend: str = "exact"
    complete: bool = True
    score_range: RangeChoice | None = None
    distribution: ScoreDistribution | None = None
    warnings: list[str] = field(default_factory=list)
    recall: float | None = None

    def to_dict(self, details: bool = False) -> dict:
        out = {"total": self.total, "results": [h.to_dict(details) for h in self.results]}
        if details:
            out["score_range"] = None if self.score_range is None else self.score_range.to_dict()
            out["distribution"] = None if self.distribution is None else self.distribution.to_dict()
        return out

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)
