"""Seeing and cleaning the data: duplicate groups, leaks between splits, and scores between two rows."""

from .compare import Comparer, Comparison
from .duplicates import APPROXIMATE_ABOVE, DEFAULT_MIN_SCORE, DEFAULT_TAG, Duplicates
from .groups import KEEPS, DuplicateGroup, DuplicateReport, Leak, Member

__all__ = ["Comparer", "Comparison", "Duplicates", "DuplicateGroup", "DuplicateReport", "Leak", "Member",
           "KEEPS", "DEFAULT_MIN_SCORE", "DEFAULT_TAG", "APPROXIMATE_ABOVE"]
