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
from .client import connect
from .config import SyncRecord, payload_token, write_sync
from .filters import metadata_paths

BATCH = 1_000  # points per request (the progress bar moves per batch)


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


def _digest(vec: np.ndarray, payload: dict) -> str:
    h = hashlib.blake2b(np.ascontiguousarray(vec, dtype=np.float32).tobytes(), digest_size=12)
    h.update(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


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
        now = con.execute("SELECT version FROM embeddings WHERE id = ?", [emb.id]).fetchone()
        if now is None or now[0] != emb.version:
            raise CatalogError(f"the vectors of embedding {emb.name} changed during the sync; run it again",
                               field="embedding")
        payloads = _payloads(con, emb, ids)
        token = payload_token(con)
    held = engine.manifest(name)
    digests = [_digest(mat[i], payloads[i]) for i in range(len(ids))]
    send = [i for i, rid in enumerate(ids.tolist()) if held.get(rid) != digests[i]]
    gone = sorted(set(held) - set(ids.tolist()))
    total = len(send) + len(gone)
    done = 0
    if progress:
        progress(0, total)
    for s in range(0, len(send), BATCH):
        part = send[s:s + BATCH]
        engine.upsert(name, [str(ids[i]) for i in part], np.asarray(mat[part]),
                      [{**payloads[i], "digest": digests[i]} for i in part])
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
    send = sum(1 for i, rid in enumerate(ids.tolist()) if held.get(rid) != _digest(mat[i], payloads[i]))
    return {"send": send, "delete": len(set(held) - set(ids.tolist()))}

