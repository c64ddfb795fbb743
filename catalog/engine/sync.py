"""Incremental sync of an embedding to the engine: the engine's collection is made equal to the catalog.

The catalog (DuckDB) is the source of truth; the collection is a derived copy. Each point carries a
``digest`` of what it was made from (its normalised vector and its payload). A sync reads the
catalog's rows at the embedding's current version (the vector cache and one snapshot of the payloads),
reads the collection's ids and digests, sends only the rows that are new or changed and deletes the
points whose rows are gone. Because the engine itself says what it holds, an interrupted sync resumes
where it stopped: the next sync sends only what is still missing. ``engine_sync`` says ``syncing``
from the start of a sync until it finishes, so an interrupted copy is never taken for a synced one.

Payload: ``row_id``, ``global_key``, ``media_type``, ``metadata``, ``labels`` (names), ``keys`` (the
dotted metadata paths, for ``$exists``) and ``digest``.
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


def _payloads(con, emb, ids: np.ndarray) -> list[dict]:
    """The payload of every cached row (same order as ``ids``), read in the caller's snapshot."""
    rows = con.execute(
        "WITH l AS (SELECT row_id, list(label ORDER BY label) AS names FROM labels GROUP BY row_id) "
        "SELECT CAST(d.id AS VARCHAR), d.global_key, d.media_type, CAST(d.metadata AS VARCHAR), coalesce(l.names, []) "
        "FROM vectors v JOIN datarows d ON d.id = v.row_id LEFT JOIN l ON l.row_id = d.id "
        "WHERE v.embedding_id = ?", [emb.id]).fetchall()
    by_id = {r[0]: r for r in rows}
    out = []
    for rid in ids.tolist():
        r = by_id.get(rid)
        if r is None:
            raise CatalogError(f"the rows of embedding {emb.name} changed during the sync; run it again",
                               field="embedding")
        meta = _json(r[3]) if r[3] else {}
        out.append({"row_id": rid, "global_key": r[1], "media_type": r[2], "metadata": meta,
                    "labels": list(r[4]), "keys": metadata_paths(meta)})
    return out


def _json(text: str):
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # integers beyond 64 bits, which orjson refuses
        return json.loads(text)


def _digests(mat, payloads: list[dict]) -> list[str]:
    """Each row's digest: blake2b of its float32 vector and its payload's sorted JSON (the matrix read
    in blocks, not one memory-mapped row at a time)."""
    out: list[str] = []
    step = 16_384
    for s in range(0, len(payloads), step):
        block = np.ascontiguousarray(mat[s:s + step], dtype=np.float32)
        raw, width = memoryview(block).cast("B"), block.shape[1] * 4
        for j, p in enumerate(payloads[s:s + step]):
            h = hashlib.blake2b(raw[j * width:(j + 1) * width], digest_size=12)
            h.update(orjson.dumps(p, option=orjson.OPT_SORT_KEYS))
            out.append(h.hexdigest())
    return out


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
        payloads = _payloads(con, emb, ids)
        token = payload_token(con)
    held = engine.manifest(name) if engine.count(name) else {}  # a new collection: nothing to read back
    digests = _digests(mat, payloads)
    id_list = ids.tolist()
    send = np.array([i for i, rid in enumerate(id_list) if held.get(rid) != digests[i]], dtype=np.int64)
    gone = sorted(set(held) - set(id_list))
    total = len(send) + len(gone)
    done = 0
    if progress:
        progress(0, total)
    for s in range(0, len(send), BATCH):
        part = send[s:s + BATCH]
        whole = len(part) and part[-1] - part[0] == len(part) - 1  # a run of rows: one slice of the cache
        vecs = mat[part[0]:part[-1] + 1] if whole else mat[part]
        for i in part.tolist():
            payloads[i]["digest"] = digests[i]
        engine.upsert(name, [id_list[i] for i in part.tolist()], np.asarray(vecs, dtype=np.float32).tolist(),
                      [payloads[i] for i in part.tolist()])
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
        payloads = _payloads(con, emb, ids)
    held = engine.manifest(name) if engine.exists(name) else {}
    send = sum(1 for rid, d in zip(ids.tolist(), _digests(mat, payloads)) if held.get(rid) != d)
    return {"send": send, "delete": len(set(held) - set(ids.tolist()))}

