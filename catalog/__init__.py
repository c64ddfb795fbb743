"""A local-first embedding catalog: data rows, embeddings, L1 similarity search, slices and labels."""

from .batches import Batch
from .catalog import Catalog
from .embeddings import Embedding
from .errors import (AlreadyExists, CatalogBusy, CatalogError, LabelboxError, NotFound, ResourceConflict,
                     ResourceNotFoundError, ValidationError)
from .labeling import LabelBySimilarityResult, ReviewDecision
from .search import Hit, Page, SearchResult, SearchSpec
from .slices import Slice

__all__ = [
    "Catalog", "SearchSpec", "Page", "Embedding", "SearchResult", "Hit", "Slice", "Batch", "LabelBySimilarityResult", "ReviewDecision",
    "CatalogError", "CatalogBusy", "NotFound", "AlreadyExists", "ValidationError",
    "LabelboxError", "ResourceNotFoundError", "ResourceConflict",  # the Labelbox SDK's names of the above
]
__version__ = "0.1.0"
