"""The DuckDB file: connections (:class:`Store`), the schema, Arrow hand-over and row references."""

from .arrow import registered
from .connection import DEFAULT_DB, CatalogReadOnly, Store, one, resolve_db_path, scalar
from .rowrefs import ALIAS_KINDS, DELETE_ALIASES_SQL, RowRefs, ambiguity, resolution_sql, shown
from .schema import (CATALOG_TABLES, CLIP_ID, COLOR_TEXTURE_ID, MIGRATIONS, MINILM_ID, MPNET_ID, OFF_THE_SHELF,
                     ROW_TABLES, SCHEMA_VERSION, CatalogDamaged, NotACatalog, migrate, schema_version)

__all__ = ["Store", "one", "scalar", "resolve_db_path", "DEFAULT_DB", "registered", "RowRefs", "resolution_sql",
           "shown", "ambiguity", "ALIAS_KINDS", "DELETE_ALIASES_SQL", "CLIP_ID", "MPNET_ID", "MINILM_ID",
           "COLOR_TEXTURE_ID", "OFF_THE_SHELF", "MIGRATIONS", "SCHEMA_VERSION", "ROW_TABLES", "migrate",
           "schema_version", "CATALOG_TABLES", "CatalogDamaged",
           "NotACatalog", "CatalogReadOnly"]
