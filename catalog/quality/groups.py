"""What a duplicates run returns: groups with a representative, leaks between splits, and their JSON.

Kept per group (``keep``): ``first`` — the row imported first (``created_at``, then ``global_key``);
``central`` — the row scoring highest against the normalised mean of the group's vectors (ties: the
first). Every member carries its score to the representative (the catalog's one score; 1.0 for
content duplicates, whose bytes or normalised text are identical).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

KEEPS = ("first", "central")
METHODS = ("content", "exact", "approximate")


@dataclass
class Member:
    id: str
    global_key: str
    score: float

    def to_dict(self) -> dict:
        return {"id": self.id, "global_key": self.global_key, "score": round(self.score, 6)}


@dataclass
class DuplicateGroup:
    """Rows linked by scores ≥ the threshold (a connected component); ``members[0]`` is the representative."""

    members: list[Member]

    @property
    def representative(self) -> Member:
        return self.members[0]

    @property
    def size(self) -> int:
        return len(self.members)

    def to_dict(self) -> dict:
        return {"representative": self.representative.to_dict(), "size": self.size,
                "members": [m.to_dict() for m in self.members]}


@dataclass
class Leak:
    """A pair of rows scoring ≥ the threshold whose ``split_field`` values differ."""

    a: Member
    b: Member
    score: float
    a_value: object
    b_value: object

    def to_dict(self) -> dict:
        return {"a": {"id": self.a.id, "global_key": self.a.global_key, "value": self.a_value},
                "b": {"id": self.b.id, "global_key": self.b.global_key, "value": self.b_value},
                "score": round(self.score, 6)}


@dataclass
class DuplicateReport:
    method: str                      # content (hashes), exact (all pairs) or approximate (IVF lists)
    embedding: str | None
    min_score: float | None
    keep: str
    rows: int                        # rows considered (matching the filter, with a vector or a hash)
    pairs: int                       # pairs at or above the threshold
    groups: list[DuplicateGroup] = field(default_factory=list)
    split_field: str | None = None
    leaks: list[Leak] = field(default_factory=list)
    leak_pairs: int = 0              # all leaking pairs (``leaks`` lists at most MAX_LEAKS_LISTED)
    without: int = 0                 # rows matching the filter left out (no vector / no content hash)
    pair_recall: float | None = None  # approximate only: measured against exact on a sample
    recall_sample: int = 0
    seconds: float = 0.0

    @property
    def duplicate_rows(self) -> int:
        """Rows in some group that are not its representative (what deduplication drops)."""
        return sum(g.size - 1 for g in self.groups)

    def dropped_ids(self) -> list[str]:
        return [m.id for g in self.groups for m in g.members[1:]]

    def to_dict(self) -> dict:
        return {"method": self.method, "embedding": self.embedding, "min_score": self.min_score,
                "keep": self.keep, "rows": self.rows, "without": self.without, "pairs": self.pairs,
                "groups_count": len(self.groups), "duplicate_rows": self.duplicate_rows,
                "pair_recall": self.pair_recall, "recall_sample": self.recall_sample,
                "seconds": round(self.seconds, 3), "split_field": self.split_field,
                "leak_pairs": self.leak_pairs,
                "groups": [g.to_dict() for g in self.groups], "leaks": [x.to_dict() for x in self.leaks]}


def components(n: int, i: np.ndarray, j: np.ndarray) -> list[np.ndarray]:
    """The connected components of size ≥ 2 of the graph on ``n`` nodes with edges ``(i, j)``; each
    component's nodes ascending, components by their smallest node."""
    if len(i) == 0:
        return []
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    order = np.argsort(label, kind="stable")
    cuts = np.flatnonzero(np.diff(label[order])) + 1
    groups = [g for g in np.split(order, cuts) if len(g) > 1]
    groups.sort(key=lambda g: int(g[0]))
    return groups


def pick(group: np.ndarray, keep: str, first_rank: np.ndarray, vectors=None) -> int:
    """The node of ``group`` to keep: the best-ranked (``first_rank``: smaller is earlier) or the central
    one (``vectors``: the group's rows, in its order)."""
    if keep == "central" and vectors is not None:
        vecs = np.asarray(vectors, dtype=np.float64)
        centre = vecs.mean(axis=0)
        norm = np.linalg.norm(centre)
        if norm > 0:
            dist = np.abs(vecs - centre / norm).sum(axis=1)
            best = np.flatnonzero(dist <= dist.min())
            return int(group[best[np.argmin(first_rank[group[best]])]])
    return int(group[np.argmin(first_rank[group])])
