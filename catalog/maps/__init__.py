"""Embedding maps: 2-D projections of an embedding's vectors, cached per version, and selection on them."""

from .polygon import MAX_VERTICES, PointIndex, box_polygon, check_polygon, points_in_polygon
from .projection import PCA_FIT_ROWS, UMAP_MAX_ROWS, umap_available
from .service import COLOUR_BY, METHODS, EmbeddingMap, Maps

__all__ = ["COLOUR_BY", "METHODS", "MAX_VERTICES", "PCA_FIT_ROWS", "UMAP_MAX_ROWS", "EmbeddingMap", "Maps", "PointIndex",
           "box_polygon", "check_polygon", "points_in_polygon", "umap_available"]
