"""The rules of a label: its name, its sources, the labeled pool, and the one write path.

A label is a classification name on a data row with its ``source`` (``manual``: a person gave it;
``similarity``: label-by-similarity suggested it), the suggestion ``score`` (similarity labels only)
and ``reviewed`` (a person confirmed it; manual labels are always reviewed). Manual and reviewed
labels form the *labeled pool* that label-by-similarity learns from; unreviewed suggestions never do.

Writing rules (the same for every path: setting labels, importing a file and saving suggestions):
a manual label replaces a suggestion of the same name (it becomes manual and reviewed); a suggestion
never replaces a manual or reviewed label, and re-suggesting a pending one only refreshes its score.
"""

from __future__ import annotations

import pyarrow as pa

from ..errors import CatalogError
from ..slices import Slice
from ..store import registered, scalar

MAX_LABEL_LENGTH = 100
SOURCES = ("manual", "similarity")
EXPORT_COLUMNS = ("id", "global_key", "label", "source", "score", "reviewed")
POOL_CONDITION = "(source = 'manual' OR reviewed)"


def clean_label(name) -> str:
    """The label name trimmed; raises :class:`CatalogError` for an empty or over-long one."""
    if not isinstance(name, str):
        raise CatalogError(f"label {name!r} is not text; labels are names such as cat", field="labels")
    text = name.strip()
    if not text:
        raise CatalogError("label name is empty; give a name such as cat", field="labels")
    if len(text) > MAX_LABEL_LENGTH:
        raise CatalogError(f"label {text[:20]!r}... is {len(text)} characters long; use at most {MAX_LABEL_LENGTH}",
                           field="labels")
    return text


def as_list(value) -> list:
    """``value`` as a list: None is empty, one string (or scalar) is a list of one."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def clean_labels(values) -> list[str]:
    """Cleaned label names (:func:`clean_label`), duplicates dropped, order kept."""
    return list(dict.fromkeys(clean_label(n) for n in as_list(values)))


def check_score(score) -> float | None:
    """A suggestion score as a float in [0, 1] (or None)."""
    if score is None:
        return None
    score = float(score)
    if not 0.0 <= score <= 1.0:
        raise CatalogError(f"label score {score} is outside [0, 1]", field="score")
    return score


# -- the one write path for (row, label, source, score, reviewed) tuples ------------------------
_UPSERT = """
INSERT INTO labels (row_id, label, source, score, reviewed)
SELECT CAST(row_id AS UUID), label, source, score, reviewed FROM {incoming}
ON CONFLICT (row_id, label) DO UPDATE SET
    source = CASE WHEN excluded.source = 'manual' OR labels.source = 'manual' THEN 'manual' ELSE 'similarity' END,
    score = CASE WHEN excluded.source = 'manual' THEN NULL
                 WHEN labels.source = 'manual' THEN labels.score
                 WHEN labels.reviewed AND NOT excluded.reviewed THEN labels.score
                 ELSE excluded.score END,
    reviewed = labels.reviewed OR excluded.reviewed
"""


def write_labels(con, row_ids, labels, sources, scores, reviewed) -> int:
    """Upsert label tuples inside the caller's transaction; returns how many were new."""
    if not row_ids:
        return 0
    tbl = pa.table({
        "row_id": pa.array(row_ids, pa.string()), "label": pa.array(labels, pa.string()),
        "source": pa.array(sources, pa.string()), "score": pa.array(scores, pa.float64()),
        "reviewed": pa.array(reviewed, pa.bool_()),
    })
    with registered(con, tbl, "incoming_labels") as incoming:
        existing = scalar(con, f"SELECT count(*) FROM labels l JOIN {incoming} i "
                               "ON l.row_id = CAST(i.row_id AS UUID) AND l.label = i.label")
        con.execute(_UPSERT.format(incoming=incoming))
    return len(row_ids) - existing


def label_dict(label, source, score, reviewed, created) -> dict:
    """One label as :meth:`Labels.get_labels` returns it."""
    return {"label": label, "source": source, "score": score, "reviewed": bool(reviewed),
            "created_at": created.isoformat() if created is not None else None}


def global_keys(con, row_ids) -> dict[str, str]:
    """``{row id: global_key}`` for existing rows (one query)."""
    ids = list(dict.fromkeys(str(r) for r in row_ids))
    if not ids:
        return {}
    with registered(con, pa.table({"r": pa.array(ids, pa.string())}), "wanted_keys") as wanted:
        found = con.execute(f"SELECT CAST(d.id AS VARCHAR), d.global_key FROM datarows d "
                            f"JOIN {wanted} w ON CAST(d.id AS VARCHAR) = w.r").fetchall()
    return dict(found)


def slice_row_ids(slices, slice) -> list[str]:
    """Row ids of a saved slice given as a Slice object, or by name (looked up in ``slices``)."""
    if isinstance(slice, Slice):
        return list(slice.row_ids())
    return list(slices.get_slice(str(slice)).row_ids())
