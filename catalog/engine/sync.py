"""Incremental sync of an embedding to the engine: the engine's collection is made equal to the catalog.

The catalog (DuckDB) is the source of truth; the collection is a derived copy. A sync reads the
catalog's rows at the embedding's current version (the vector cache and one snapshot of the payloads),
reads the collection's ids and check values, sends only the rows that are new or changed and deletes
the points whose rows are gone. Because the engine itself says what it holds, an interrupted sync
resumes where it stopped: the next sync sends only what is still missing. ``engine_sync`` says
``syncing`` from the start of a sync until it finishes, so an interrupted copy is never taken for a
synced one.

Payload (what :mod:`catalog.engine.filters` filters on): ``global_key``, ``media_type``, ``metadata``,
``labels`` (names; left out when there are none), ``keys`` (the dotted metadata paths, for
``$exists``; left out when there are none), and two signed 64-bit check values: ``vd``, of the
point's float32 vector and global key, and ``gd``, of the rest of its payload (the *group*: the rows
whose media type, metadata and labels are equal share it). The point id is the row id. A batch
upserts each point with its global key and ``vd`` (and, for a group of fewer than
:data:`GROUP_MIN` rows in the batch, the whole payload), then sets each larger group's payload on its
points in one request; a point written but interrupted before its group was set has no ``gd`` and is
sent again. Copies written with the earlier payload format (a hexadecimal ``digest``) hold no check
values and are therefore sent again once, in full.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import orjson

from ..errors import CatalogError
from ..store.connection import one
from .client import connect
from .config import SyncRecord, payload_token, write_sync
from .filters import metadata_paths

BATCH = 4_096  # points per request (the progress bar moves per batch)
GROUP_MIN = 4  # rows of one group in a batch from which its payload is set in one request for all of them


@dataclass
class SyncReport:
    embedding: str
    version: int
    sent: int
    deleted: int
    count: int

    def to_dict(self) -> dict:
        return {"embedding": self.embedding, "version": self.version, "sent": self.sent, "deleted": self.deleted,
                "count": self.count}


@dataclass
class Rows:
    """The payload side of every cached row (cache order): ``keys`` (global keys), ``group`` (each
    row's group index) and per group its payload (with ``gd``)."""

    keys: list
    group: np.ndarray
    groups: list


def _check(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)


def _rows(con, emb, ids: np.ndarray) -> Rows:
    """The payloads of every cached row (same order as ``ids``), read in the caller's snapshot; each
    distinct metadata text is parsed once."""
    rows = con.execute(
        "WITH l AS (SELECT row_id, list(label ORDER BY label) AS names FROM labels GROUP BY row_id) "
        "SELECT CAST(d.id AS VARCHAR), d.global_key, d.media_type, CAST(d.metadata AS VARCHAR), coalesce(l.names, []) "
        "FROM vectors v JOIN datarows d ON d.id = v.row_id LEFT JOIN l ON l.row_id = d.id "
        "WHERE v.embedding_id = ?", [emb.id]).fetchall()
    by_id = {r[0]: r for r in rows}
    seen: dict = {}
    keys, group = [], np.empty(len(ids), np.int64)
    for n, rid in enumerate(ids.tolist()):
        r = by_id.get(rid)
        if r is None:
            raise CatalogError(f"the rows of embedding {emb.name} changed during the sync; run it again",
                               field="embedding")
        keys.append(r[1])
        group[n] = seen.setdefault((r[2], r[3], tuple(r[4])), len(seen))
    groups = []
    for media, text, labels in seen:
        meta = _json(text) if text else {}
        p = {"media_type": media, "metadata": meta}
        if labels:
            p["labels"] = list(labels)
        paths = metadata_paths(meta)
        if paths:
            p["keys"] = paths
        p["gd"] = _check(orjson.dumps(p, option=orjson.OPT_SORT_KEYS))
        groups.append(p)
    return Rows(keys, group, groups)


def _json(text: str):
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # integers beyond 64 bits, which orjson refuses
        return json.loads(text)


def _checks(mat, rows: Rows) -> list[tuple[int, int]]:
    """Each row's ``(vd, gd)``: blake2b of its float32 vector and global key, and its group's (the
    matrix read in blocks, not one memory-mapped row at a time)."""
    out: list = []
    step = 16_384
    gds = [g["gd"] for g in rows.groups]
    for s in range(0, len(rows.keys), step):
        block = np.ascontiguousarray(mat[s:s + step], dtype=np.float32)
        raw, width = memoryview(block).cast("B"), block.shape[1] * 4
        for j, (key, g) in enumerate(zip(rows.keys[s:s + step], rows.group[s:s + step].tolist())):
            h = hashlib.blake2b(raw[j * width:(j + 1) * width], digest_size=8)
            h.update((key or "").encode())
            out.append((int.from_bytes(h.digest(), "little", signed=True), gds[g]))
    return out


def _send(engine, name, id_list, rows: Rows, checks, vecs, part) -> None:
    """Upsert the points of ``part`` (cache positions; ``vecs`` their float32 vectors), then set the
    payload of each group with :data:`GROUP_MIN` or more of them."""
    members: dict = {}
    for i, g in zip(part.tolist(), rows.group[part].tolist()):
        members.setdefault(g, []).append(i)
    shared = {g for g, m in members.items() if len(m) >= GROUP_MIN}
    payloads = []
    for i, g in zip(part.tolist(), rows.group[part].tolist()):
        own = {"global_key": rows.keys[i], "vd": checks[i][0]}
        payloads.append(own if g in shared else {**own, **rows.groups[g]})
    engine.upsert(name, [id_list[i] for i in part.tolist()], vecs, payloads)
    for g in shared:
        engine.set_payload(name, rows.groups[g], [id_list[i] for i in members[g]])


def sync_embedding(store, cache, cfg, emb, progress=None) -> SyncReport:
    """Make the engine's collection of ``emb`` equal to the catalog; ``progress(done, total)`` after
    each batch (an exception from it interrupts the sync; the next one resumes)."""
    engine = connect(cfg)
    name = cfg.collection(emb)
    engine.ensure(name, emb.dims)  # an engine that cannot be reached fails here, before anything is written
    with store.transaction() as con:
        write_sync(con, SyncRecord(emb.id, cfg.url, name, "syncing", emb.version, "", 0))
    ids, mat = cache.load(emb)
    with store.transaction() as con:  # one snapshot: the version, the payloads and their fingerprint agree
        now = one(con, "SELECT version FROM embeddings WHERE id = ?", [emb.id])
        if now is None or now[0] != emb.version:
            raise CatalogError(f"the vectors of embedding {emb.name} changed during the sync; run it again",
                               field="embedding")
        rows = _rows(con, emb, ids)
        token = payload_token(con)
    held = engine.manifest(name) if engine.count(name) else {}  # a new collection: nothing to read back
    checks = _checks(mat, rows)
    id_list = ids.tolist()
    send = np.array([i for i, rid in enumerate(id_list) if held.get(rid) != checks[i]], dtype=np.int64)
    gone = sorted(set(held) - set(id_list))
    total = len(send) + len(gone)
    done = 0
    if progress:
        progress(0, total)
    for s in range(0, len(send), BATCH):
        part = send[s:s + BATCH]
        whole = len(part) and part[-1] - part[0] == len(part) - 1  # a run of rows: one slice of the cache
        vecs = np.ascontiguousarray(mat[part[0]:part[-1] + 1] if whole else mat[part], dtype=np.float32)
        _send(engine, name, id_list, rows, checks, vecs, part)
        done += len(part)
        if progress:
            progress(done, total)
    for s in range(0, len(gone), BATCH):
        engine.delete(name, gone[s:s + BATCH])
        done += len(gone[s:s + BATCH])
        if progress:
            progress(done, total)
    engine.flush(name)
    count = engine.count(name)
    with store.transaction() as con:
        write_sync(con, SyncRecord(emb.id, cfg.url, name, "synced", emb.version, token, count))
    return SyncReport(emb.name, emb.version, len(send), len(gone), count)


def pending(store, cache, cfg, emb) -> dict:
    """What a sync of ``emb`` would do now, without doing it: rows to send and points to delete."""
    engine = connect(cfg)
    name = cfg.collection(emb)
    ids, mat = cache.load(emb)
    with store.connect() as con:
        rows = _rows(con, emb, ids)
    held = engine.manifest(name) if engine.exists(name) else {}
    send = sum(1 for rid, c in zip(ids.tolist(), _checks(mat, rows)) if held.get(rid) != c)
    return {"send": send, "delete": len(set(held) - set(ids.tolist()))}
