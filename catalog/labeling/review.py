"""Reviewing label-by-similarity suggestions: a reviewer's decisions per row, written in one go.

For each reviewed row the reviewer leaves some suggestions ticked (``accepted``, with their
suggestion scores) and may add labels by hand (``added``). Applying the decisions, in one
transaction (all of them or none):

- a ticked label the row already has in the labeled pool (manual or reviewed) is left as it is;
- a ticked label that is a pending (unreviewed) suggestion on the row is accepted (reviewed);
- a ticked suggestion not saved on the row yet is written as a reviewed ``similarity`` label with its
  score (clamped to [0, 1]);
- an added label that is none of these is written as a ``manual`` label;
- every other pending suggestion on the row is rejected (deleted): reviewing a row settles all of
  its unreviewed suggestions, the unticked ones included.

Accepted and manual labels join the labeled pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import CatalogError, NotFound
from ..labels.rules import clean_label
from ..store import shown
from .rule import RowSuggestions


@dataclass(frozen=True)
class ReviewDecision:
    """What the reviewer kept for one row (``row``: id or global_key)."""

    row: str
    accepted: Mapping[str, float] = field(default_factory=dict)  # ticked suggestions: label -> score
    added: tuple[str, ...] = ()  # labels added by hand (and left ticked)

    @classmethod
    def from_suggestions(cls, row: RowSuggestions, ticks: Mapping[str, bool] | None = None,
                         added: Iterable[str] = ()) -> ReviewDecision:
        """The decision for a row of a label-by-similarity result: ``ticks`` maps a label to whether
        it is ticked; a suggestion missing there keeps its ``suggested`` tick, an added label
        missing there is ticked."""
        ticks = ticks or {}
        accepted = {s.label: s.score for s in row.labels if ticks.get(s.label, s.suggested)}
        hand = tuple(dict.fromkeys(lab for lab in added if ticks.get(lab, True)))
        return cls(row.id, accepted, hand)


@dataclass
class ReviewReport:
    rows: int = 0  # decisions applied
    accepted: int = 0  # labels accepted or added (they are now in the labeled pool)
    rejected: int = 0  # pending suggestions deleted


def _plan(decision: ReviewDecision) -> dict[str, float | None]:
    """``{label: suggestion score, or None for a label added by hand}`` with cleaned names."""
    accept: dict[str, float | None] = {}
    for label, score in decision.accepted.items():
        accept[clean_label(label)] = None if score is None else min(1.0, max(0.0, float(score)))
    for label in decision.added:
        accept.setdefault(clean_label(label), None)
    return accept


def apply_review(store, refs, labels, decisions: Iterable[ReviewDecision]) -> ReviewReport:
    """Write the reviewer's ``decisions`` (see the module) in one transaction, through the
    :class:`catalog.labels.Labels` service ``labels``; ``refs`` resolves the rows."""
    decisions = list(decisions)
    for d in decisions:
        if not isinstance(d, ReviewDecision):
            raise CatalogError(f"a review decision must be a ReviewDecision, not {type(d).__name__}",
                               field="decisions")
    found = refs.lookup([d.row for d in decisions])
    missing = [d.row for d in decisions if found.get(str(d.row)) is None]
    if missing:
        raise NotFound(f"no data row with id or global_key {shown(dict.fromkeys(missing))}", field="decisions")
    row_ids = [found[str(d.row)] for d in decisions]
    twice = [d.row for d, rid in zip(decisions, row_ids) if row_ids.count(rid) > 1]
    if twice:
        raise CatalogError(f"data row {twice[0]!r} has more than one review decision; give one per row",
                           field="decisions")
    plans = [_plan(d) for d in decisions]
    report = ReviewReport(rows=len(decisions))
    if not decisions:
        return report
    with store.transaction():  # all of the review or nothing
        current = labels.get_labels(row_ids)
        for row_id, accept in zip(row_ids, plans):
            have = current.get(row_id, [])
            pending = [lab["label"] for lab in have if lab["source"] == "similarity" and not lab["reviewed"]]
            in_pool = {lab["label"] for lab in have if lab["source"] == "manual" or lab["reviewed"]}
            review, manual = [], []
            for label, score in accept.items():
                if label in in_pool:
                    continue
                if label in pending:
                    review.append(label)
                elif score is not None:
                    labels.set_labels(row_id, [label], source="similarity", score=score)
                    review.append(label)
                else:
                    manual.append(label)
            if review:
                report.accepted += labels.review_labels([row_id], accept=True, labels=review)
            if manual:
                report.accepted += len(labels.set_labels(row_id, manual, source="manual"))
            reject = [label for label in pending if label not in accept]
            if reject:
                report.rejected += labels.review_labels([row_id], accept=False, labels=reject)
    return report
