"""Grouping search results by a metadata field (``SearchSpec.group_by``): one result per group.

Every match is given its group: the value of the field in its metadata, compared as JSON (numbers as
numbers, so ``1`` and ``1.0`` are one group, and ``1`` and ``"1"`` two). A row whose metadata lacks the
field (or holds JSON null there) is a group of its own. Each group is represented by its best-scoring
row (ties by row id) and carries its size; the representatives are then ordered and paged like rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..filters import json_path
from ..store import registered
from .backends.base import Matches

# The group key of one row: numbers normalised to one spelling, JSON null and a missing key as NULL.
_KEY_SQL = ("CASE WHEN __g IS NULL OR json_type(__g) = 'NULL' THEN NULL "
            "WHEN json_type(__g) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN 'n:' || CAST(CAST(__g AS DOUBLE) AS VARCHAR) "
            "ELSE 'j:' || CAST(__g AS VARCHAR) END")


@dataclass
class Groups:
    """For each representative (aligned with the matches it came with): its group's ``sizes`` and the
    field's ``values`` (the JSON value; None for a row without the field)."""

    sizes: np.ndarray
    values: list

    def subset(self, which) -> "Groups":
        idx = np.arange(len(self.sizes))[which]
        return Groups(self.sizes[idx], [self.values[int(i)] for i in idx])


def field_path(field: str) -> str:
    """The JSON path of a ``group_by`` field (``metadata.`` prefix allowed, as in filters)."""
    return json_path(field[len("metadata."):] if field.startswith("metadata.") else field, "group_by")


def group(con, candidates, matches: Matches, field: str) -> tuple[Matches, Groups]:
    """The best-scoring match of each group (in position order) and the groups' sizes and values.

    ``candidates`` is the ``(i, p, id)`` Arrow table of the matches (:func:`ranking.candidates`)."""
    n = len(matches)
    if n == 0:
        return matches, Groups(np.empty(0, np.int64), [])
    with registered(con, candidates, "search_groups") as name:
        res = con.execute(
            f"SELECT i, {_KEY_SQL} AS k, CAST(__g AS VARCHAR) AS v FROM (SELECT c.i, json_extract(d.metadata, ?) "
            f"AS __g FROM {name} c LEFT JOIN datarows d ON d.id = c.id) ORDER BY i", [field_path(field)]).fetchall()
    keys = [r[1] for r in res]
    raw = [r[2] for r in res]
    codes = np.empty(n, dtype=np.int64)  # a code per distinct key; rows without the field one each
    seen: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k is None:
            codes[i] = len(seen) + i  # strictly increasing with i, so never another row's code
        else:
            codes[i] = seen.setdefault(k, len(seen) + i)
    best = np.lexsort((matches.positions, -np.asarray(matches.scores, dtype=np.float64), codes))
    first = np.ones(n, dtype=bool)
    first[1:] = codes[best][1:] != codes[best][:-1]
    reps = np.sort(best[first])  # back in position order (the matches' own order is by position)
    sizes = np.unique(codes, return_counts=True)
    sizes = dict(zip(sizes[0].tolist(), sizes[1].tolist()))
    sizes = np.asarray([sizes[int(codes[i])] for i in reps], dtype=np.int64)
    values = [None if keys[int(i)] is None else json.loads(raw[int(i)]) for i in reps]
    return matches.subset(reps), Groups(sizes, values)
