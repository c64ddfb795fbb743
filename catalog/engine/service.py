"""The engine service: configure the catalog's vector engine, sync embeddings to it, report their state,
and tell the search backend whether an embedding's copy can answer (:meth:`Engines.state`).

Documented behaviour for searches: a copy answers only when it was synced at the embedding's current
version. An explicit ``backend="qdrant"`` search on a stale or missing copy raises an error that says
so (and names the sync to run); the automatic choice then searches locally. When only metadata or
labels changed since the sync, the copy still answers, without pushing filters down to the engine.
"""

from __future__ import annotations

import dataclasses
import os

from ..errors import CatalogError
from . import config as cfgmod
from .client import connect, disconnect
from .hnsw import build_hnsw, current, hnsw_info
from .sync import SyncReport, pending, sync_embedding


class Engines:
    """``store`` (the file), ``cache`` (the vector cache), ``embeddings`` (resolves references)."""

    def __init__(self, store, cache, embeddings):
        self.store = store
        self.cache = cache
        self.embeddings = embeddings
        self._memo: dict = {"token": None}

    # -- configuration ----------------------------------------------------------------------------
    def set_engine(self, url, shards=None, replicas=None, api_key_env=None, hnsw_m=None, hnsw_ef_construct=None) -> dict:
        """Point the catalog at an engine (replacing any other; the new one holds nothing until synced).
        The same URL with the same shards, replicas and HNSW parameters keeps its collections (the next
        sync sends only what changed); other values start new collections."""
        new = cfgmod.check_config(url, shards, replicas, api_key_env, hnsw_m, hnsw_ef_construct)
        with self.store.transaction() as con:
            old = cfgmod.read_config(con)
            same = ("url", "shards", "replicas", "hnsw_m", "hnsw_ef_construct")
            if old is not None and all(getattr(old, k) == getattr(new, k) for k in same):
                new = dataclasses.replace(new, catalog_key=old.catalog_key)
            cfgmod.write_config(con, new)
        if old is not None:
            disconnect(old.url)
        return new.to_dict()

    def engine(self) -> dict | None:
        """The configured engine (url, kind, shards, replicas, api_key_env), or None."""
        cfg = self.config()
        return None if cfg is None else cfg.to_dict()

    def unset_engine(self) -> bool:
        """Forget the engine (its collections are left as they are); True when one was configured."""
        cfg = self.config()
        with self.store.transaction() as con:
            had = cfgmod.clear_config(con)
        if cfg is not None:
            disconnect(cfg.url)
        return had

    def config(self) -> cfgmod.EngineConfig | None:
        with self.store.connect() as con:
            return cfgmod.read_config(con)

    def _required(self) -> cfgmod.EngineConfig:
        cfg = self.config()
        if cfg is None:
            raise CatalogError("no vector engine is configured for this catalog", field="engine",
                               hint="set one first (engine set URL)")
        return cfg

    # -- sync and status ----------------------------------------------------------------------------
    def sync(self, embeddings=None, progress=None) -> list[SyncReport]:
        """Sync the named embeddings (default: every one with vectors); ``progress(name, done, total)``."""
        cfg = self._required()
        if embeddings:
            embs = [self.embeddings.get_embedding(e) for e in embeddings]
        else:
            counts = self.embeddings.embedding_counts()
            embs = [e for e in self.embeddings.get_embeddings() if counts.get(e.id, 0) > 0]
            self._drop_orphans(cfg, {e.id for e in self.embeddings.get_embeddings()})
        reports = []
        for emb in embs:
            step = (lambda d, t, n=emb.name: progress(n, d, t)) if progress else None
            reports.append(sync_embedding(self.store, self.cache, cfg, emb, step))
        return reports

    def _drop_orphans(self, cfg, known: set[str]) -> None:
        """Collections and records of embeddings that were deleted from the catalog."""
        with self.store.connect() as con:
            gone = [r for eid, r in cfgmod.read_sync(con).items() if eid not in known]
        engine = connect(cfg)
        for rec in gone:
            if rec.url == cfg.url:
                engine.drop(rec.collection)
            with self.store.transaction() as con:
                con.execute("DELETE FROM engine_sync WHERE embedding_id = ?", [rec.embedding_id])

    def status(self) -> list[dict]:
        """Per embedding with vectors: its version and count here, the engine's synced version and
        count, whether it is current, and what a sync would send and delete (asks the engine)."""
        cfg = self._required()
        counts = self.embeddings.embedding_counts()
        with self.store.connect() as con:
            recs = cfgmod.read_sync(con)
            token = cfgmod.payload_token(con)
        out = []
        for emb in self.embeddings.get_embeddings():
            rec = recs.get(emb.id)
            if not counts.get(emb.id) and rec is None:
                continue
            fresh = cfgmod.freshness(cfg, rec, emb, token)
            todo = pending(self.store, self.cache, cfg, emb) if counts.get(emb.id) else {"send": 0, "delete": 0}
            out.append({"embedding": emb.name, "id": emb.id, "version": emb.version, "count": counts.get(emb.id, 0),
                        "synced_version": rec.version if rec else None, "synced_count": rec.count if rec else 0,
                        "state": rec.state if rec else "never", "current": fresh.vectors and fresh.payload,
                        "pending_send": todo["send"], "pending_delete": todo["delete"], "reason": fresh.reason})
        return out

    def searchable(self, emb, what="the qdrant backend cannot search"):
        """``(engine, collection, payload current)`` of ``emb``'s copy, which answers; raises a
        :class:`CatalogError` (field ``backend``) when no engine is set or its copy is not current."""
        cfg, fresh = self.state(emb)
        if cfg is None:
            raise CatalogError(f"no vector engine is configured for this catalog, so {what}", field="backend",
                               hint="set one first (engine set URL), then sync")
        if not fresh.vectors:
            raise CatalogError(f"{what}: {fresh.reason}", field="backend",
                               hint="sync the embedding to the engine first")
        return connect(cfg), cfg.collection(emb), fresh.payload

    # -- the HNSW index (the qdrant-hnsw backend) ------------------------------------------------
    def index(self, embedding) -> dict:
        """Index an embedding's synced copy on the engine (HNSW) and measure its recall against the
        exact scan (:mod:`catalog.engine.hnsw`); returns the description (``ef``, ``recall``, ...)."""
        emb = self.embeddings.get_embedding(embedding)
        cfg, fresh = self.state(emb)
        if cfg is None:
            self._required()
        if not fresh.vectors:
            raise CatalogError(f"the engine's copy cannot be indexed: {fresh.reason}", field="embedding",
                               hint="sync the embedding to the engine first")
        return build_hnsw(self.store, self.cache, cfg, emb, self._memo["recs"][emb.id].count)

    def index_info(self, emb) -> dict | None:
        """The HNSW calibration of the engine's current copy of ``emb`` (None: not measured on it)."""
        cfg, fresh = self.state(emb)
        if not fresh.vectors:
            return None
        meta = hnsw_info(self.store, emb)
        return meta if current(meta, cfg, emb, self._memo["recs"][emb.id].count) else None

    # -- for the search backend -------------------------------------------------------------------
    def state(self, emb):
        """``(config or None, Freshness)`` for a search of ``emb``, read without contacting the engine;
        memoised while the catalog file is unchanged."""
        token = _file_token(self.store)
        if self._memo.get("token") != token:
            with self.store.connect() as con:
                cfg = cfgmod.read_config(con)
                recs = cfgmod.read_sync(con) if cfg else {}
                payload = cfgmod.payload_token(con) if cfg else None
            self._memo = {"token": token, "cfg": cfg, "recs": recs, "payload": payload}
        m = self._memo
        cfg = m["cfg"]
        fresh = cfgmod.freshness(cfg, m["recs"].get(emb.id), emb, m["payload"])
        return cfg, fresh


def _file_token(store):
    out = []
    for p in (store.path, store.path.with_name(store.path.name + ".wal")):
        try:
            st = os.stat(p)
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)
