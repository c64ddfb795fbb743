"""One small interface over the three ways of reaching Qdrant: a server or cluster (``qdrant-client``
over HTTP), Qdrant Edge in this process (``qdrant-edge-py``) and ``qdrant-client``'s local mode.

Collections hold the L2-normalised vectors under ``Distance.MANHATTAN`` (Qdrant then reports the L1
distance as the point's score, smaller is nearer, and ``score_threshold`` is the largest distance),
with the point id the data row's UUID. Filters arrive in a neutral form (:mod:`catalog.engine.filters`)
and are converted here to each library's ``Filter``.

Every failure of the engine (unreachable, refusing, a library missing) raises :class:`EngineError`,
one line naming the URL; open connections and shards are kept per process (:func:`connect`).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import uuid
from pathlib import Path

import numpy as np

from ..errors import CatalogError
from .config import FULL_SCAN_KB, EngineConfig

PAGE = 10_000  # points per query or scroll page
CHECKS = ("vd", "gd")  # the payload's check values (catalog.engine.sync), read back by manifest()
EDGE_INDEXING_KB = None  # an edge shard's segment size (KB) from which it is HNSW-indexed (None: Qdrant's default)
_lock = threading.RLock()
_open: dict[str, "Engine"] = {}


class EngineError(CatalogError):
    """The vector engine is unreachable, refuses a request or cannot be used here."""


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


@contextlib.contextmanager
def guarded(url: str, what: str):
    """Any failure inside becomes one :class:`EngineError` naming the URL and what was being done."""
    try:
        yield
    except CatalogError:
        raise
    except Exception as exc:  # the libraries raise many types (httpx, grpc, pyo3 runtime errors, ...)
        text = str(exc)
        if "WouldBlock" in text or "already accessed by another instance" in text:
            raise EngineError(f"the vector engine at {url} is open in another process ({url.split(':', 1)[0]}: "
                              "serves one process at a time); close that process (a dashboard, a sync) and "
                              "run this again, or use a Qdrant server", field="engine") from None
        raise EngineError(f"the vector engine at {url} failed to {what} ({_short(exc)}); check that it runs and "
                          "is reachable, or search without it", field="engine") from None


class Engine:
    """A connection to one engine; ``name`` is a collection."""

    def __init__(self, cfg: EngineConfig):
        self.cfg = cfg
        self.url = cfg.url

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def flush(self, name) -> None:
        """Make what was written durable (a server does on each request)."""


# -- qdrant-client: a server, a cluster, or local mode --------------------------------------------------
class ClientEngine(Engine):
    def __init__(self, cfg: EngineConfig):
        super().__init__(cfg)
        try:
            from qdrant_client import QdrantClient, models
        except ImportError:
            raise EngineError("the vector engine needs the qdrant-client package; install the catalog's "
                              "`qdrant` extra (pip install 'embedding-catalog[qdrant]')", field="engine") from None
        self.models = models
        self.local = cfg.kind == "local"
        with guarded(cfg.url, "open"):
            if self.local:
                cfg.path.mkdir(parents=True, exist_ok=True)
                self.client = QdrantClient(path=str(cfg.path))
            else:
                self.client = QdrantClient(url=cfg.url, api_key=cfg.api_key(), timeout=30, check_compatibility=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    def exists(self, name) -> bool:
        with guarded(self.url, "list its collections"):
            return self.client.collection_exists(name)

    def ensure(self, name, dims) -> None:
        if self.exists(name):
            return
        m = self.models
        with guarded(self.url, f"create collection {name}"):
            hnsw = self.cfg.hnsw()
            extra = {} if self.local else {"shard_number": self.cfg.shards, "replication_factor": self.cfg.replicas,
                                           "hnsw_config": hnsw and m.HnswConfigDiff(m=hnsw[0], ef_construct=hnsw[1])}
            self.client.create_collection(name, vectors_config=m.VectorParams(size=dims, distance=m.Distance.MANHATTAN),
                                          **{k: v for k, v in extra.items() if v})

    def drop(self, name) -> None:
        if self.exists(name):
            with guarded(self.url, f"delete collection {name}"):
                self.client.delete_collection(name)

    def count(self, name) -> int:
        with guarded(self.url, f"count collection {name}"):
            return int(self.client.count(name, exact=True).count)

    def manifest(self, name) -> dict[str, tuple]:
        out, offset = {}, None
        with guarded(self.url, f"read collection {name}"):
            while True:
                recs, offset = self.client.scroll(name, limit=PAGE, offset=offset, with_payload=list(CHECKS),
                                                  with_vectors=False)
                out.update((str(r.id), _held(r.payload)) for r in recs)
                if offset is None:
                    return out

    def upsert(self, name, ids, vectors, payloads) -> None:
        """Write points (``vectors``: a float32 matrix, one row each; the payloads replace theirs)."""
        m = self.models
        points = [m.PointStruct(id=i, vector=v, payload=p) for i, v, p in zip(ids, _lists(vectors), payloads)]
        with guarded(self.url, f"write to collection {name}"):
            self.client.upsert(name, points=points, wait=True)

    def set_payload(self, name, payload, ids) -> None:
        """Add ``payload``'s keys to the payload of every point of ``ids`` (one request)."""
        with guarded(self.url, f"write to collection {name}"):
            self.client.set_payload(name, payload=payload, points=list(ids), wait=True)

    def delete(self, name, ids) -> None:
        with guarded(self.url, f"delete from collection {name}"):
            self.client.delete(name, points_selector=self.models.PointIdsList(points=list(ids)), wait=True)

    def optimize(self, name) -> None:
        """Build the HNSW index now where the engine does it on request (a server indexes by itself)."""

    def indexed(self, name) -> int:
        """Vectors the engine holds in its HNSW index (the rest are searched by a full scan)."""
        with guarded(self.url, f"describe collection {name}"):
            return int(self.client.get_collection(name).indexed_vectors_count or 0)

    def query(self, name, vector, threshold, flt, limit, offset, ef=None) -> list[str]:
        """Point ids within L1 ``threshold``, nearest first: Qdrant's exact mode, or its HNSW index
        searched with ``hnsw_ef=ef`` when ``ef`` is given (local mode is always exact)."""
        params = self.models.SearchParams(exact=True) if ef is None else self.models.SearchParams(hnsw_ef=int(ef))
        kw = {} if self.local else {"search_params": params}
        with guarded(self.url, f"search collection {name}"):
            res = self.client.query_points(name, query=np.asarray(vector, np.float32).tolist(), limit=limit,
                                           offset=offset, score_threshold=threshold, query_filter=self._filter(flt),
                                           with_payload=False, with_vectors=False, **kw)
        return [str(p.id) for p in res.points]

    def query_many(self, name, vectors, flt, limit) -> list[list[str]]:
        """The ``limit`` nearest point ids of each vector (exact mode), in one request."""
        m = self.models
        qf = self._filter(flt)
        kw = {} if self.local else {"params": m.SearchParams(exact=True)}
        reqs = [m.QueryRequest(query=np.asarray(v, np.float32).tolist(), filter=qf, limit=limit, with_payload=False,
                               with_vector=False, **kw) for v in vectors]
        with guarded(self.url, f"search collection {name}"):
            res = self.client.query_batch_points(name, requests=reqs)
        return [[str(p.id) for p in r.points] for r in res]

    def _filter(self, flt):
        if flt is None:
            return None
        m = self.models

        def cond(c):
            if isinstance(c, dict):
                return self._filter(c)
            kind = c[0]
            if kind == "value":
                return m.FieldCondition(key=c[1], match=m.MatchValue(value=c[2]))
            if kind == "any":
                return m.FieldCondition(key=c[1], match=m.MatchAny(any=list(c[2])))
            if kind == "range":
                return m.FieldCondition(key=c[1], range=m.Range(**c[2]))
            if kind == "empty":
                return m.IsEmptyCondition(is_empty=m.PayloadField(key=c[1]))
            return m.HasIdCondition(has_id=list(c[1]))

        return m.Filter(**{k: [cond(c) for c in v] for k, v in flt.items() if v})


# -- Qdrant Edge: the engine in this process, one shard folder per collection ---------------------------
class EdgeEngine(Engine):
    def __init__(self, cfg: EngineConfig):
        super().__init__(cfg)
        try:
            import qdrant_edge
        except ImportError:
            raise EngineError("the edge: engine needs the qdrant-edge-py package; install the catalog's `qdrant` "
                              "extra (pip install 'embedding-catalog[qdrant]')", field="engine") from None
        self.q = qdrant_edge
        self.shards: dict[str, object] = {}

    def _folder(self, name) -> Path:
        return self.cfg.path / name

    def close(self) -> None:
        for shard in self.shards.values():
            with contextlib.suppress(Exception):
                shard.close()
        self.shards.clear()

    def exists(self, name) -> bool:
        return name in self.shards or (self._folder(name).is_dir() and any(self._folder(name).iterdir()))

    def _shard(self, name, dims=None):
        shard = self.shards.get(name)
        if shard is not None:
            return shard
        q = self.q
        with guarded(self.url, f"open shard {name}"):
            if self.exists(name):
                shard = q.EdgeShard.load(str(self._folder(name)))
            elif dims is None:
                raise EngineError(f"the vector engine at {self.url} has no shard {name}; sync the embedding first",
                                  field="engine")
            else:
                self._folder(name).mkdir(parents=True, exist_ok=True)
                opt = None if EDGE_INDEXING_KB is None else q.EdgeOptimizersConfig(indexing_threshold=EDGE_INDEXING_KB)
                hnsw = self.cfg.hnsw()
                graph = hnsw and q.HnswIndexConfig(m=hnsw[0], ef_construct=hnsw[1], full_scan_threshold=FULL_SCAN_KB)
                cfg = q.EdgeConfig(vectors=q.EdgeVectorParams(size=int(dims), distance=q.Distance.Manhattan),
                                   optimizers=opt, hnsw_config=graph)
                shard = q.EdgeShard.create(str(self._folder(name)), cfg)
        self.shards[name] = shard
        return shard

    def ensure(self, name, dims) -> None:
        self._shard(name, dims)

    def drop(self, name) -> None:
        shard = self.shards.pop(name, None)
        if shard is not None:
            with contextlib.suppress(Exception):
                shard.close()
        shutil.rmtree(self._folder(name), ignore_errors=True)

    def count(self, name) -> int:
        with guarded(self.url, f"count shard {name}"):
            return int(self._shard(name).count(self.q.CountRequest(exact=True)))

    def manifest(self, name) -> dict[str, tuple]:
        shard, out, offset = self._shard(name), {}, None
        with guarded(self.url, f"read shard {name}"):
            while True:
                recs, offset = shard.scroll(self.q.ScrollRequest(limit=PAGE, offset=offset, with_payload=list(CHECKS)))
                out.update((str(r.id), _held(r.payload)) for r in recs)
                if offset is None:
                    return out

    def upsert(self, name, ids, vectors, payloads) -> None:
        q, shard = self.q, self._shard(name)
        rows = np.ascontiguousarray(vectors, dtype=np.float32)  # each row handed over as a buffer, no float list
        points = [q.Point(i, memoryview(v), p) for i, v, p in zip(ids, rows, payloads)]
        with guarded(self.url, f"write to shard {name}"):
            shard.update(q.UpdateOperation.upsert_points(points))  # the shard's WAL keeps it until flush

    def set_payload(self, name, payload, ids) -> None:
        shard = self._shard(name)
        with guarded(self.url, f"write to shard {name}"):
            shard.update(self.q.UpdateOperation.set_payload(list(ids), payload))

    def delete(self, name, ids) -> None:
        shard = self._shard(name)
        with guarded(self.url, f"delete from shard {name}"):
            shard.update(self.q.UpdateOperation.delete_points([uuid.UUID(i) for i in ids]))

    def flush(self, name) -> None:
        with guarded(self.url, f"write shard {name}"):
            self._shard(name).flush()

    def optimize(self, name) -> None:
        with guarded(self.url, f"index shard {name}"):
            self._shard(name).optimize()  # blocks until the segments are merged and indexed (HNSW)

    def indexed(self, name) -> int:
        with guarded(self.url, f"describe shard {name}"):
            return int(self._shard(name).info().indexed_vectors_count)

    def query(self, name, vector, threshold, flt, limit, offset, ef=None) -> list[str]:
        q, shard = self.q, self._shard(name)
        params = q.SearchParams(exact=True) if ef is None else q.SearchParams(hnsw_ef=int(ef), exact=False)
        with guarded(self.url, f"search shard {name}"):
            req = q.QueryRequest(limit=limit, offset=offset, query=q.Query.Nearest(np.asarray(vector, np.float32).tolist()),
                                 score_threshold=threshold, filter=self._filter(flt), with_payload=False,
                                 with_vector=False, params=params)
            return [str(p.id) for p in shard.query(req)]

    def query_many(self, name, vectors, flt, limit) -> list[list[str]]:
        q, shard = self.q, self._shard(name)
        with guarded(self.url, f"search shard {name}"):
            qf = self._filter(flt)
            reqs = [q.QueryRequest(limit=limit, query=q.Query.Nearest(np.asarray(v, np.float32).tolist()), filter=qf,
                                   with_payload=False, with_vector=False, params=q.SearchParams(exact=True))
                    for v in vectors]
            return [[str(p.id) for p in r] for r in shard.query_batch(q.QueryBatchRequest(reqs))]

    def _filter(self, flt):
        if flt is None:
            return None
        q = self.q

        def cond(c):
            if isinstance(c, dict):
                return self._filter(c)
            kind = c[0]
            if kind == "value":
                return q.FieldCondition(c[1], match=q.MatchValue(c[2]))
            if kind == "any":
                return q.FieldCondition(c[1], match=q.MatchAny(list(c[2])))
            if kind == "range":
                return q.FieldCondition(c[1], range=q.RangeFloat(**c[2]))
            if kind == "empty":
                return q.IsEmptyCondition(c[1])
            return q.HasIdCondition(set(c[1]))

        return q.Filter(**{k: [cond(c) for c in v] for k, v in flt.items() if v})


def _held(payload) -> tuple:
    """A point's check values as the sync compares them (None where absent)."""
    payload = payload or {}
    return tuple(payload.get(k) for k in CHECKS)


def _lists(vectors) -> list:
    """Vectors as lists of floats (what the libraries convert fastest), from lists or an array."""
    return vectors if isinstance(vectors, list) else np.asarray(vectors, np.float32).tolist()


def connect(cfg: EngineConfig) -> Engine:
    """The process's connection to the engine of ``cfg`` (opened once; edge shards and local folders
    allow one opener per process)."""
    with _lock:
        engine = _open.get(cfg.url)
        if engine is None or engine.cfg != cfg:
            if engine is not None:
                engine.close()
            engine = _open[cfg.url] = (EdgeEngine if cfg.kind == "edge" else ClientEngine)(cfg)
        return engine


def disconnect(url: str) -> None:
    with _lock:
        engine = _open.pop(url, None)
        if engine is not None:
            engine.close()
