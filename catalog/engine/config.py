"""Which vector engine a catalog scales out on, and what each embedding's copy there holds.

One engine per catalog (table ``engine_config``), named by a URL:

* ``http://host:6333`` or ``https://host:6333``: a Qdrant server or cluster, through ``qdrant-client``
  (``shards`` and ``replicas`` are used when a collection is created; the API key is read from the
  environment variable ``api_key_env`` at connection time, never stored);
* ``edge:PATH``: Qdrant's engine embedded in this process (``qdrant-edge-py``), one shard folder per
  embedding under ``PATH``;
* ``local:PATH``: ``qdrant-client``'s local mode (tests and demos only).

``hnsw_m`` (edges per node, :data:`HNSW_M_RANGE`) and ``hnsw_ef_construct`` (candidates while
building, :data:`HNSW_EF_CONSTRUCT_RANGE`) set the HNSW graph of the collections the engine creates
(``edge:`` and servers; ``local:`` always searches exactly); unset, Qdrant's defaults apply (m 16,
ef_construct 100). A denser graph costs build time and memory and gives more recall per search width.

Per embedding, ``engine_sync`` records the engine's copy: the URL and collection, ``state``
(``syncing`` while a sync runs or after one was interrupted, ``synced`` after it finished), the
embedding ``version`` it holds, the ``payload_token`` of the rows' metadata and labels it holds, and
its ``count``. A copy answers searches only when it is ``synced`` at the embedding's current version on
the configured URL (:func:`freshness`).
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import CatalogError
from ..store.connection import one, scalar

KINDS = ("http", "edge", "local")
MAX_SHARDS = 1024
MAX_REPLICAS = 64
HNSW_M_RANGE = (4, 128)
HNSW_EF_CONSTRUCT_RANGE = (8, 2048)
DEFAULT_HNSW = (16, 100)  # Qdrant's m and ef_construct, used for the one of the two that is not set
FULL_SCAN_KB = 10_000  # Qdrant's default full_scan_threshold, given with an edge shard's HNSW parameters
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HOST_RE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?(/[A-Za-z0-9._\-/]*)?$")


@dataclass(frozen=True)
class EngineConfig:
    """A configured engine: ``url`` as given, its ``kind`` and, for ``edge:``/``local:``, its folder."""

    url: str
    shards: int | None = None
    replicas: int | None = None
    api_key_env: str | None = None
    catalog_key: str = ""
    hnsw_m: int | None = None
    hnsw_ef_construct: int | None = None

    @property
    def kind(self) -> str:
        return self.url.split(":", 1)[0] if self.url.startswith(("edge:", "local:")) else "http"

    @property
    def path(self) -> Path | None:
        return Path(self.url.split(":", 1)[1]) if self.kind != "http" else None

    def hnsw(self) -> tuple[int, int] | None:
        """``(m, ef_construct)`` for new collections, or None for Qdrant's defaults."""
        if self.hnsw_m is None and self.hnsw_ef_construct is None:
            return None
        return (self.hnsw_m or DEFAULT_HNSW[0], self.hnsw_ef_construct or DEFAULT_HNSW[1])

    def collection(self, emb) -> str:
        """The collection (edge: the shard folder) of an embedding: the catalog's key, so that catalogs
        sharing a server never share a collection, and the embedding id."""
        return f"catalog_{self.catalog_key}_{str(emb.id).replace('-', '')}"

    def api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise CatalogError(f"the API key variable {self.api_key_env} of the vector engine at {self.url} is "
                               "not set; export it, or set the engine again without an API key", field="engine")
        return value

    def to_dict(self) -> dict:
        return {"url": self.url, "kind": self.kind, "shards": self.shards, "replicas": self.replicas,
                "api_key_env": self.api_key_env, "hnsw_m": self.hnsw_m, "hnsw_ef_construct": self.hnsw_ef_construct}


def check_url(url) -> str:
    """The URL, checked: ``http(s)://host[:port]``, ``edge:PATH`` or ``local:PATH``."""
    if not isinstance(url, str) or not url.strip():
        raise CatalogError("the engine URL is empty; use http://host:6333, edge:PATH or local:PATH", field="url")
    url = url.strip()
    if url.startswith(("edge:", "local:")):
        kind, path = url.split(":", 1)
        if not path.strip():
            raise CatalogError(f"engine URL {url!r} names no folder; write {kind}:PATH", field="url")
        if "\x00" in path:
            raise CatalogError(f"engine URL {url!r} holds a NUL character", field="url")
        return f"{kind}:{Path(path).expanduser().absolute()}"
    if url.startswith(("http://", "https://")):
        if not _HOST_RE.match(url):
            raise CatalogError(f"engine URL {url!r} is not of the form http(s)://host:port", field="url")
        port = re.search(r":(\d{1,5})(/|$)", url.split("//", 1)[1])
        if port and not 0 < int(port.group(1)) < 65536:
            raise CatalogError(f"engine URL {url!r} has port {port.group(1)}, outside 1-65535", field="url")
        return url.rstrip("/")
    raise CatalogError(f"engine URL {url!r} is not supported; use http(s)://host:6333 (a Qdrant server), "
                       "edge:PATH (Qdrant Edge in this process) or local:PATH (tests and demos)", field="url")


def check_config(url, shards=None, replicas=None, api_key_env=None, hnsw_m=None, hnsw_ef_construct=None) -> EngineConfig:
    url = check_url(url)
    for name, value, (least, most) in (("shards", shards, (1, MAX_SHARDS)), ("replicas", replicas, (1, MAX_REPLICAS)),
                                       ("hnsw_m", hnsw_m, HNSW_M_RANGE),
                                       ("hnsw_ef_construct", hnsw_ef_construct, HNSW_EF_CONSTRUCT_RANGE)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
            raise CatalogError(f"`{name}` must be a whole number from {least} to {most}, got {value!r}", field=name)
    if (hnsw_m is not None or hnsw_ef_construct is not None) and url.startswith("local:"):
        raise CatalogError("`hnsw_m` and `hnsw_ef_construct` apply to edge: and to a Qdrant server, not to local: "
                           "(it always searches exactly)", field="hnsw_m" if hnsw_m is not None else "hnsw_ef_construct")
    if (shards or replicas) and not url.startswith("http"):
        raise CatalogError(f"`shards` and `replicas` apply to a Qdrant server or cluster (http(s)://), "
                           f"not to {url.split(':', 1)[0]}: (one shard in this process)", field="shards")
    if api_key_env is not None:
        if not isinstance(api_key_env, str) or not _ENV_RE.match(api_key_env):
            raise CatalogError(f"`api_key_env` must name an environment variable (letters, digits, _), got "
                               f"{api_key_env!r}", field="api_key_env")
        if not url.startswith("http"):
            raise CatalogError("`api_key_env` applies to a Qdrant server (http(s)://) only", field="api_key_env")
    return EngineConfig(url, shards, replicas, api_key_env, uuid.uuid4().hex[:12], hnsw_m, hnsw_ef_construct)


# -- the tables ----------------------------------------------------------------------------------------
def read_config(con) -> EngineConfig | None:
    row = one(con, "SELECT url, shards, replicas, api_key_env, catalog_key, hnsw_m, hnsw_ef_construct FROM engine_config "
                   "WHERE key = 'engine'")
    return None if row is None else EngineConfig(*row)


def write_config(con, cfg: EngineConfig) -> None:
    con.execute("DELETE FROM engine_config WHERE key = 'engine'")
    con.execute("INSERT INTO engine_config (key, url, shards, replicas, api_key_env, catalog_key, hnsw_m, "
                "hnsw_ef_construct) VALUES ('engine', ?, ?, ?, ?, ?, ?, ?)",
                [cfg.url, cfg.shards, cfg.replicas, cfg.api_key_env, cfg.catalog_key, cfg.hnsw_m, cfg.hnsw_ef_construct])
    con.execute("DELETE FROM engine_sync")  # a new engine holds nothing yet


def clear_config(con) -> bool:
    had = scalar(con, "SELECT count(*) FROM engine_config") > 0
    con.execute("DELETE FROM engine_config")
    con.execute("DELETE FROM engine_sync")
    return had


@dataclass(frozen=True)
class SyncRecord:
    embedding_id: str
    url: str
    collection: str
    state: str
    version: int
    payload_token: str
    count: int
    synced_at: object = None


def read_sync(con, embedding_id=None) -> dict[str, SyncRecord]:
    sql = ("SELECT CAST(embedding_id AS VARCHAR), url, collection, state, version, payload_token, count, synced_at "
           "FROM engine_sync")
    rows = con.execute(sql + (" WHERE embedding_id = ?" if embedding_id else ""),
                       [str(embedding_id)] if embedding_id else []).fetchall()
    return {r[0]: SyncRecord(*r) for r in rows}


def write_sync(con, rec: SyncRecord) -> None:
    con.execute("DELETE FROM engine_sync WHERE embedding_id = ?", [rec.embedding_id])
    con.execute("INSERT INTO engine_sync (embedding_id, url, collection, state, version, payload_token, count) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", [rec.embedding_id, rec.url, rec.collection, rec.state,
                                                 rec.version, rec.payload_token, rec.count])


def payload_token(con) -> str:
    """A fingerprint of everything a payload is made of (global keys, media types, metadata, labels)
    over the whole catalog: it changes whenever any of it changes (conservatively: also for rows of
    other embeddings)."""
    n, rows = one(con, "SELECT count(*), coalesce(bit_xor(hash(id, global_key, media_type, "
                       "CAST(metadata AS VARCHAR))), 0) FROM datarows")
    m, labels = one(con, "SELECT count(*), coalesce(bit_xor(hash(row_id, label)), 0) FROM labels")
    return f"{n}:{rows}:{m}:{labels}"


@dataclass(frozen=True)
class Freshness:
    """Whether the engine's copy of an embedding can answer: ``vectors`` (synced at the current version
    on the configured URL) and ``payload`` (its metadata and labels are current, so filters may be
    pushed down); ``reason`` says why not."""

    vectors: bool
    payload: bool
    reason: str = ""


def freshness(cfg: EngineConfig | None, rec: SyncRecord | None, emb, token: str | None) -> Freshness:
    if cfg is None:
        return Freshness(False, False, "no vector engine is configured")
    if rec is None or rec.url != cfg.url:
        return Freshness(False, False, f"embedding {emb.name} was never synced to the engine at {cfg.url}")
    if rec.state != "synced":
        return Freshness(False, False, f"the last sync of embedding {emb.name} to the engine at {cfg.url} did not "
                                       "finish")
    if rec.version != emb.version:
        return Freshness(False, False, f"the engine at {cfg.url} holds version {rec.version} of embedding "
                                       f"{emb.name}, the catalog has version {emb.version}")
    return Freshness(True, token is not None and rec.payload_token == token)
