"""Search backends: the interface (:mod:`.base`), the registry (:mod:`.registry`), one module each."""

from .approximate import ApproximateBackend
from .base import Backend, Capabilities, Context, Matches, Query, in_range, range_thresholds
from .exact import ExactBackend
from .qdrant import QdrantBackend
from .registry import APPROXIMATE_MIN_ROWS, AUTO_ORDER, BACKENDS, ENGINE_ORDER, Plan, check_choice, names, plan

__all__ = ["Backend", "Capabilities", "Context", "Matches", "Query", "in_range", "range_thresholds",
           "ExactBackend", "ApproximateBackend", "QdrantBackend", "BACKENDS", "AUTO_ORDER", "ENGINE_ORDER", "APPROXIMATE_MIN_ROWS", "Plan",
           "check_choice", "names", "plan"]
