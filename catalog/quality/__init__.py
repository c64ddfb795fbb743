"""Seeing and cleaning the data: duplicate groups, leaks between splits, scores between two rows, and
uniqueness and outliers (:mod:`.uniqueness`)."""

from .compare import Comparer, Comparison
from .duplicates import APPROXIMATE_ABOVE, DEFAULT_MIN_SCORE, DEFAULT_TAG, Duplicates
from .groups import KEEPS, DuplicateGroup, DuplicateReport, Leak, Member
from .uniqueness import (DEFAULT_NEIGHBOURS, MAX_NEIGHBOURS, MAX_OUTLIERS, Uniqueness, UniquenessReport,
                         uniqueness_scores)

__all__ = ["Comparer", "Comparison", "Duplicates", "DuplicateGroup", "DuplicateReport", "Leak", "Member",
           "KEEPS", "DEFAULT_MIN_SCORE", "DEFAULT_TAG", "APPROXIMATE_ABOVE", "Uniqueness", "UniquenessReport",
           "uniqueness_scores", "DEFAULT_NEIGHBOURS", "MAX_NEIGHBOURS", "MAX_OUTLIERS"]
