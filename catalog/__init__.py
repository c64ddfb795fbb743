"""A local-first embedding catalog: data rows, embeddings, L1 similarity search, slices and labels."""

from .catalog import Catalog
from .embeddings import Embedding
from .errors import AlreadyExists, CatalogBusy, CatalogError, NotFound, ValidationError

__all__ = ["Catalog", "Embedding", "CatalogError", "CatalogBusy", "NotFound", "AlreadyExists", "ValidationError"]
__version__ = "0.1.0"
