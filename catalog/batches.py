"""Labeling batches ("send to annotate"): a named, frozen set of rows for a labeling project.

A batch takes the rows of a slice (or a list of ids) as they are at that moment; rows added to the
slice later do not join it. A row belongs to at most one batch per project: rows already sent to
another batch of the same project are skipped and reported. Names are unique within a project.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from .errors import AlreadyExists, CatalogError, NotFound
from .export import check_format, write_records
from .slices import check_name
from .store import one, registered

EXPORT_CHUNK = 5_000
EXPORT_COLUMNS = ("id", "global_key", "media_type", "row_data", "metadata", "labels")


def _check_project(project) -> str:
    if not isinstance(project, str) or not project.strip():
        raise CatalogError("a batch needs a `project` name", field="project")
    project = project.strip()
    if len(project) > 100 or any(not c.isprintable() for c in project):
        raise CatalogError(f"project name {project[:40]!r} must be at most 100 printable characters", field="project")
    return project


def _check_priority(priority) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 5:
        raise CatalogError(f"priority {priority!r} must be a whole number from 1 (highest) to 5 (lowest)",
                           field="priority")
    return priority


@dataclass
class Batch:
    id: str
    project: str
    name: str
    priority: int
    created_at: str | None
    size: int
    # filled in by create_batch: rows left out because another batch of the project has them
    skipped: list[dict] = field(default_factory=list)
    service: object = field(repr=False, compare=False, default=None)

    def row_ids(self) -> list[str]:
        return [r["id"] for r in self.rows()]

    def rows(self, limit: int | None = None, offset: int = 0) -> list[dict]:
        """``[{"id", "global_key"}]`` of the batch, by global_key."""
        return self.service.batch_rows(self.id, limit, offset)

    def export(self, out, fmt: str = "ndjson") -> int:
        return self.service.export_batch(self.name, self.project, out, fmt)

    def delete(self) -> None:
        self.service.delete_batch(self.name, self.project)

    def to_dict(self) -> dict:
        return {"id": self.id, "project": self.project, "name": self.name, "priority": self.priority,
                "created_at": self.created_at, "size": self.size}


_SELECT = """SELECT CAST(b.id AS VARCHAR), b.project, b.name, b.priority, b.created_at,
                    (SELECT count(*) FROM batch_rows r WHERE r.batch_id = b.id) FROM batches b"""

_SKIPPED = """SELECT CAST(d.id AS VARCHAR), d.global_key, b.name
    FROM {t} c JOIN batch_rows r ON r.row_id = CAST(c.id AS UUID) AND r.project = ?
    JOIN batches b ON b.id = r.batch_id JOIN datarows d ON d.id = r.row_id ORDER BY c.pos"""

_INSERT_ROWS = """INSERT INTO batch_rows (batch_id, project, row_id)
    SELECT ?, ?, CAST(c.id AS UUID) FROM {t} c
    WHERE NOT EXISTS (SELECT 1 FROM batch_rows r WHERE r.project = ? AND r.row_id = CAST(c.id AS UUID))
    ORDER BY c.pos"""


class Batches:
    """Labeling batches of one catalog: rows come from ``slices`` (a slice's rows) or ``refs`` (ids),
    and exports read row contents and labels from ``datarows``."""

    def __init__(self, store, refs, datarows, slices):
        self.store = store
        self.refs = refs
        self.datarows = datarows
        self.slices = slices

    def _batch(self, row) -> Batch:
        created = row[4].isoformat() if isinstance(row[4], datetime) else row[4]
        return Batch(id=row[0], project=row[1], name=row[2], priority=row[3], created_at=created, size=row[5],
                     service=self)

    def create_batch(self, name, project, slice=None, ids=None, priority: int = 3) -> Batch:
        """Freeze the rows of ``slice`` (a name) or ``ids`` (row ids or global_keys) into a new batch.

        Rows already in a batch of ``project`` are skipped and listed in ``batch.skipped``
        (``{"id", "global_key", "batch"}``). If every row is skipped nothing is created.
        """
        name = check_name(name, "batch", 1, 100)
        project = _check_project(project)
        priority = _check_priority(priority)
        if (slice is None) == (ids is None):
            raise CatalogError("choose the batch's rows with exactly one of `slice` or `ids`",
                               field="ids" if slice is None else "slice")
        if slice is not None:
            source = f"slice {slice!r}"
            row_ids = self.slices.get_slice(slice).row_ids()
        else:
            ids = [ids] if isinstance(ids, str) else list(ids)
            if not ids:
                raise CatalogError("`ids` needs at least one data row id or global_key", field="ids")
            source = "the given ids"
            row_ids = self.refs.resolve(ids, field="ids")
        row_ids = list(dict.fromkeys(row_ids))
        if not row_ids:
            raise CatalogError(f"{source} has no rows; nothing to send to project {project!r}")
        batch_id = str(uuid.uuid4())
        candidates = pa.table({"pos": pa.array(range(len(row_ids)), pa.int64()), "id": pa.array(row_ids, pa.string())})
        with self.store.transaction() as con:
            if one(con, "SELECT 1 FROM batches WHERE project = ? AND name = ?", [project, name]):
                raise AlreadyExists(f"project {project!r} already has a batch named {name!r}; choose another name",
                                    field="name")
            with registered(con, candidates, "batch_candidates") as t:
                skipped = con.execute(_SKIPPED.format(t=t), [project]).fetchall()
                if len(skipped) == len(row_ids):
                    raise CatalogError(
                        f"all {len(row_ids)} rows of {source} are already in batches of project {project!r} "
                        f"(e.g. {skipped[0][1]!r} in {skipped[0][2]!r}); nothing was created")
                con.execute("INSERT INTO batches (id, project, name, priority) VALUES (?, ?, ?, ?)",
                            [batch_id, project, name, priority])
                con.execute(_INSERT_ROWS.format(t=t), [batch_id, project, project])
        batch = self.get_batch(name, project)
        batch.skipped = [{"id": s[0], "global_key": s[1], "batch": s[2]} for s in skipped]
        return batch

    def get_batches(self, project=None) -> list[Batch]:
        with self.store.connect() as con:
            if project is None:
                rows = con.execute(f"{_SELECT} ORDER BY b.project, b.priority, b.created_at, b.name").fetchall()
            else:
                rows = con.execute(f"{_SELECT} WHERE b.project = ? ORDER BY b.priority, b.created_at, b.name",
                                   [str(project).strip()]).fetchall()
        return [self._batch(r) for r in rows]

    def get_batch(self, name, project) -> Batch:
        name, project = str(name).strip(), str(project).strip()
        with self.store.connect() as con:
            row = one(con, f"{_SELECT} WHERE b.project = ? AND b.name = ?", [project, name])
        if row is None:
            raise NotFound(f"project {project!r} has no batch named {name!r}", field="name",
                           hint="list the batches to see their names")
        return self._batch(row)

    def delete_batch(self, name, project) -> None:
        """Remove the batch; its rows become free to join another batch of the project."""
        b = self.get_batch(name, project)
        with self.store.transaction() as con:
            con.execute("DELETE FROM batch_rows WHERE batch_id = CAST(? AS UUID)", [b.id])
            con.execute("DELETE FROM batches WHERE id = CAST(? AS UUID)", [b.id])

    def batch_rows(self, batch_id, limit=None, offset=0) -> list[dict]:
        """``[{"id", "global_key"}]`` of the batch with id ``batch_id``, by global_key."""
        page, params = "", [batch_id]
        if limit is not None:
            page, params = page + " LIMIT ?", params + [limit]
        if offset:
            page, params = page + " OFFSET ?", params + [offset]
        with self.store.connect() as con:
            rows = con.execute(
                f"""SELECT CAST(d.id AS VARCHAR), d.global_key FROM batch_rows r JOIN datarows d ON d.id = r.row_id
                    WHERE r.batch_id = CAST(? AS UUID) ORDER BY d.global_key{page}""", params).fetchall()
        return [{"id": r[0], "global_key": r[1]} for r in rows]

    def export_batch(self, name, project, out, fmt: str = "ndjson") -> int:
        """Write every row of the batch: id, global_key, media_type, row_data, metadata, labels."""
        check_format(fmt)
        rows = self.get_batch(name, project).rows()
        return write_records(out, self._export_records(rows), fmt, EXPORT_COLUMNS)

    def _export_records(self, rows):
        for start in range(0, len(rows), EXPORT_CHUNK):
            ids = [r["id"] for r in rows[start:start + EXPORT_CHUNK]]
            extra = self.datarows.row_details(ids)
            for d in self.datarows.get_datarows(ids):
                yield {**d, "labels": extra.get(d["id"], ({}, []))[1]}
