"""The distributed vector engine (Qdrant) the catalog scales out on: configuration (:mod:`.config`),
connections (:mod:`.client`), filters (:mod:`.filters`), incremental sync (:mod:`.sync`) and the
service behind the ``Catalog`` facade (:mod:`.service`). DuckDB stays the source of truth; the engine
holds a derived, rebuildable copy."""

from .client import EngineError
from .config import EngineConfig, check_url
from .service import Engines
from .sync import SyncReport

__all__ = ["Engines", "EngineConfig", "EngineError", "SyncReport", "check_url"]
