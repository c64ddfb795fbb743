"""Plain data for the labeling review: suggestions as returned by the library, and the reviewer's edits.

Kept free of Streamlit so the review logic (what "Apply" writes) is easy to follow and to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _get(obj, name, default=None):
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


@dataclass
class Suggestion:
    label: str
    score: float
    suggested: bool


@dataclass
class Neighbour:
    id: str
    global_key: str
    score: float
    labels: list[str] = field(default_factory=list)


@dataclass
class QueryRow:
    id: str
    global_key: str
    hits: list[Neighbour]
    labels: list[Suggestion]


def parse_results(result) -> list[QueryRow]:
    """``label_by_similarity``'s answer (an object with ``to_dict``, a dict or a list) as :class:`QueryRow`s."""
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    items = result.get("results", []) if isinstance(result, dict) else list(result or [])
    out = []
    for it in items:
        hits = [Neighbour(str(_get(h, "id")), _get(h, "global_key", ""), float(_get(h, "score", 0.0)),
                          [(_get(x, "label") if not isinstance(x, str) else x) for x in (_get(h, "labels") or [])])
                for h in _get(it, "hits") or []]
        labels = [Suggestion(str(_get(x, "label")), float(_get(x, "score", 0.0)), bool(_get(x, "suggested", False)))
                  for x in _get(it, "labels") or []]
        labels.sort(key=lambda s: -s.score)
        out.append(QueryRow(str(_get(it, "id")), _get(it, "global_key", ""), hits, labels))
    return out


@dataclass
class Plan:
    """What Apply writes for one row."""

    row_id: str
    accept: dict[str, float | None]      # label -> suggestion score (None: added by hand)
    reject: list[str]                    # unreviewed suggestions already on the row that were unticked


def plan(rows: list[QueryRow], ticks: dict[tuple[str, str], bool], added: dict[str, list[str]],
         pending: dict[str, list[str]]) -> list[Plan]:
    """The writes for the reviewed rows: ticked labels are accepted (reviewed), unticked pending
    suggestions are rejected. ``pending`` maps a row to its unreviewed suggestions in the catalog."""
    plans = []
    for r in rows:
        accept: dict[str, float | None] = {}
        for s in r.labels:
            if ticks.get((r.id, s.label), s.suggested):
                accept[s.label] = s.score
        for lab in added.get(r.id, []):
            if ticks.get((r.id, lab), True):
                accept.setdefault(lab, None)
        reject = [lab for lab in pending.get(r.id, []) if lab not in accept]
        if accept or reject:
            plans.append(Plan(r.id, accept, reject))
    return plans
