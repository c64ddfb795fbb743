"""Data rows: import (upsert by global_key), lookup, listing and export."""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa

from ..errors import CatalogError, NotFound, ValidationError
from ..export import check_format, write_records
from ..store import registered, resolution_sql, scalar, shown
from ..store.hashes import hash_imported
from .ingest import Ingest, cut, read_metadata_file
from .writing import write_aliases

ROW_COLUMNS = ("id", "global_key", "media_type", "row_data", "metadata", "created_at")
EXPORT_COLUMNS = ("id", "global_key", "media_type", "row_data", "metadata")


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # (source, note): imported, but worth a look (a global_key repeated within one record file)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    # records without media_type whose type was inferred, by type ({"image": 3, "text": 2})
    inferred: dict[str, int] = field(default_factory=dict)
    generated_keys: int = 0  # text rows without a global_key that got one (``text-<sha256>``)
    vectors: dict[str, int] = field(default_factory=dict)  # inline vectors imported, by embedding name

    @property
    def imported(self) -> int:
        return self.created + self.updated


def _row_dict(row) -> dict:
    rid, key, media, data, meta, created = row
    return {"id": str(rid), "global_key": key, "media_type": media, "row_data": data,
            "metadata": json.loads(meta) if isinstance(meta, str) else (meta or {}),
            "created_at": created.isoformat() if created is not None else None}


_FIELDS = "CAST(d.id AS VARCHAR), d.global_key, d.media_type, d.row_data, CAST(d.metadata AS VARCHAR), d.created_at"
_SELECT = f"SELECT {_FIELDS} FROM datarows d"

_UPSERT = """
    INSERT INTO datarows (id, global_key, media_type, row_data, metadata)
    SELECT CAST(id AS UUID), global_key, media_type, row_data, CAST(metadata AS JSON) FROM {t}
    ON CONFLICT (global_key) DO UPDATE SET
        media_type = excluded.media_type,
        row_data = excluded.row_data,
        metadata = json_merge_patch(datarows.metadata, excluded.metadata),
        updated_at = now()
"""


class DataRows:
    """The data rows of one catalog (``store``); references resolve through ``refs`` (:class:`RowRefs`);
    records' inline vectors go to the embeddings of ``embeddings`` through ``importer`` (:class:`VectorImport`)."""

    def __init__(self, store, refs, embeddings, importer):
        self.store = store
        self.refs = refs
        self.embeddings = embeddings
        self.importer = importer

    # -- import ---------------------------------------------------------------------------------
    def import_datarows(self, paths, metadata_file=None, progress=None, copy_files: bool = False) -> ImportReport:
        """Import images, folders, .zip archives and record files (JSON lines or a JSON array); one transaction.

        Records' inline vectors are imported in the same transaction; if any is invalid, nothing at
        all is written and :class:`ValidationError` lists every ``file:line`` (:mod:`.inline`).

        ``progress(done, total)``, when given, is called after each of the ``paths`` has been read
        (``total`` is the number of paths), then once more with ``(total, total)`` after the write.
        ``copy_files`` copies local image files into the catalog's media folder, so rows stay valid
        when their sources are removed (uploaded files); by default rows point at the files themselves.
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        paths = list(paths)
        ingest = Ingest(self.store.media_dir, copy_files=copy_files, embedding_for=self.embeddings.get_embedding)
        extra: dict[str, dict] = {}
        if metadata_file is not None:
            mpath = Path(metadata_file)
            if not mpath.is_file():
                raise CatalogError(f"metadata file {mpath} does not exist", field="metadata_file")
            try:
                extra, problems = read_metadata_file(mpath)
            except UnicodeDecodeError:
                raise CatalogError(f"metadata file {mpath} is not UTF-8 text", field="metadata_file") from None
            except ValueError as exc:
                raise CatalogError(str(exc), field="metadata_file") from None
            except (csv.Error, OSError) as exc:
                raise CatalogError(f"metadata file {mpath} cannot be read ({cut(str(exc))})",
                                   field="metadata_file") from None
            ingest.skipped.extend(problems)
        with ingest.media_kept_on_success():  # a refused or failed import removes the images it copied
            return self._collect_and_write(ingest, paths, extra, progress)

    def _collect_and_write(self, ingest: Ingest, paths: list, extra: dict, progress) -> ImportReport:
        for done, p in enumerate(paths, start=1):
            ingest.add_path(Path(p))
            if progress is not None:
                progress(done, len(paths))
        inline = ingest.vectors
        if inline.total_errors:
            n = inline.total_errors
            raise ValidationError(f"{n} inline vector{'s' if n != 1 else ''} of the data-row records cannot be "
                                  "imported; nothing was imported (no rows, no vectors)",
                                  [(None, e) for e in inline.errors], n, field="paths")
        records: dict[str, dict] = {}
        for rec in ingest.records:  # a later record of the same key wins
            records[rec["global_key"]] = rec
        report = ImportReport(skipped=ingest.skipped, warnings=ingest.warnings, inferred=dict(ingest.inferred),
                              generated_keys=ingest.generated_keys)
        # metadata for keys that are neither imported now nor already in the catalog is reported
        with self.store.transaction() as con:
            keys = list(records) + [k for k in extra if k not in records]
            existing = set()
            if keys:
                with registered(con, pa.table({"k": pa.array(keys, pa.string())})) as t:
                    existing = {r[0] for r in con.execute(
                        f"SELECT global_key FROM datarows WHERE global_key IN (SELECT k FROM {t})").fetchall()}
            for key in extra:
                if key not in records and key not in existing:
                    report.skipped.append((f"metadata for {cut(key)}", "no data row with this global_key"))
            rows = []
            for key, rec in records.items():
                meta = dict(rec["metadata"])
                meta.update(extra.get(key, {}))
                rows.append((str(uuid.uuid4()), key, rec["media_type"], rec["row_data"], orjson.dumps(meta).decode()))
            if rows:
                tbl = pa.table({
                    "id": pa.array([r[0] for r in rows]), "global_key": pa.array([r[1] for r in rows]),
                    "media_type": pa.array([r[2] for r in rows]), "row_data": pa.array([r[3] for r in rows]),
                    "metadata": pa.array([r[4] for r in rows]),
                })
                with registered(con, tbl) as t:
                    con.execute(_UPSERT.format(t=t))
                hash_imported(con, list(records))  # content hashes for exact duplicates
            for key, meta in extra.items():
                if key not in records and key in existing:
                    con.execute(
                        "UPDATE datarows SET metadata = json_merge_patch(metadata, CAST(? AS JSON)), updated_at = now() WHERE global_key = ?",
                        [orjson.dumps(meta).decode(), key],
                    )
            report.warnings.extend(write_aliases(con, records))
            for emb, keys, vectors in inline.batches():
                report.vectors[emb.name] = self.importer.import_array(emb, keys, vectors)
            report.updated = sum(1 for k in records if k in existing)
            report.created = len(records) - report.updated
        if progress is not None:
            progress(len(paths), len(paths))
        return report

    # -- lookup ---------------------------------------------------------------------------------
    def count_datarows(self) -> int:
        with self.store.connect() as con:
            return scalar(con, "SELECT count(*) FROM datarows")

    def list_datarows(self, limit: int = 50, offset: int = 0) -> list[dict]:
        if limit < 0 or offset < 0:
            raise CatalogError("`limit` and `offset` must not be negative", field="limit" if limit < 0 else "offset")
        with self.store.connect() as con:
            rows = con.execute(f"{_SELECT} ORDER BY d.global_key LIMIT ? OFFSET ?", [limit, offset]).fetchall()
        return [_row_dict(r) for r in rows]

    def get_datarows(self, refs) -> list[dict]:
        """Rows for ids or global_keys, in the order given; unknown ones raise :class:`NotFound`."""
        refs = [str(r) for r in refs]
        if not refs:
            return []
        with self.store.connect() as con, registered(con, _ordered(refs)) as t:
            rows = con.execute(f"SELECT m.pos, m.k, {_FIELDS} FROM ({resolution_sql(t)}) m "
                               "LEFT JOIN datarows d ON d.id = m.rid ORDER BY m.pos").fetchall()
        missing = [r[1] for r in rows if r[2] is None]
        if missing:
            raise NotFound(f"no data row with id or global_key {shown(dict.fromkeys(missing))}")
        seen, out = set(), []
        for r in rows:
            d = _row_dict(r[2:])
            if d["id"] not in seen:
                seen.add(d["id"])
                out.append(d)
        return out

    def global_keys(self, row_ids) -> list[str]:
        """The global_key of each data-row id, in the order given (one join, no row details: fast for
        100,000 ids); an id that matches no row raises :class:`NotFound`."""
        ids = [str(r) for r in row_ids]
        if not ids:
            return []
        with self.store.connect() as con, registered(con, _ordered(ids)) as t:
            got = con.execute(f"SELECT t.k, d.global_key FROM {t} t LEFT JOIN datarows d "
                              "ON d.id = TRY_CAST(t.k AS UUID) ORDER BY t.pos").fetchall()
        missing = [k for k, key in got if key is None]
        if missing:
            raise NotFound(f"no data row with id {shown(dict.fromkeys(missing))}")
        return [key for _, key in got]

    def get_datarow(self, ref) -> dict:
        return self.get_datarows([ref])[0]

    def resolve_row_ids(self, refs) -> list[str]:
        """Data-row ids for ids or global_keys (order kept, duplicates dropped)."""
        return self.refs.resolve(refs)

    def row_details(self, ids) -> dict:
        """``{row_id: (metadata, [label dicts])}`` for row ``ids`` (unknown ids are left out); labels are
        ``{"label", "source", "score", "reviewed"}``, by label."""
        if not ids:
            return {}
        with self.store.connect() as con, registered(con, pa.table({"id": pa.array(list(ids), pa.string())})) as t:
            rows = con.execute(
                f"""SELECT CAST(d.id AS VARCHAR), CAST(d.metadata AS VARCHAR),
                           list({{'label': l.label, 'source': l.source, 'score': l.score, 'reviewed': l.reviewed}}
                                ORDER BY l.label) FILTER (WHERE l.label IS NOT NULL)
                    FROM {t} e JOIN datarows d ON d.id = CAST(e.id AS UUID)
                    LEFT JOIN labels l ON l.row_id = d.id
                    GROUP BY d.id, d.metadata""").fetchall()
        return {r[0]: (json.loads(r[1]), list(r[2] or [])) for r in rows}

    # -- export ---------------------------------------------------------------------------------
    def iter_datarows(self, batch: int = 10_000):
        with self.store.connect() as con:
            cur = con.execute(f"{_SELECT} ORDER BY d.global_key")
            while True:
                chunk = cur.fetchmany(batch)
                if not chunk:
                    break
                for r in chunk:
                    yield _row_dict(r)

    def export_datarows(self, out, fmt: str = "ndjson") -> int:
        """Write every row (id, global_key, media_type, row_data, metadata) to a text stream."""
        check_format(fmt)
        return write_records(out, self.iter_datarows(), fmt, EXPORT_COLUMNS)


def _ordered(refs: list[str]) -> pa.Table:
    """``(pos, k)``: the references with their positions, to join on and keep their order."""
    return pa.table({"pos": pa.array(range(len(refs)), pa.int64()), "k": pa.array(refs, pa.string())})
