"""Label-by-similarity: the rule (:mod:`.rule`), the :class:`Labeling` service (:mod:`.suggest`),
leave-one-out evaluation (:mod:`.evaluate`) and applying a review (:mod:`.review`)."""

from .evaluate import Evaluation
from .review import ReviewDecision, ReviewReport
from .rule import LabelBySimilarityResult, LabelSuggestion, Neighbor, RowSuggestions
from .suggest import Labeling

__all__ = ["Labeling", "LabelBySimilarityResult", "RowSuggestions", "LabelSuggestion", "Neighbor", "Evaluation",
           "ReviewDecision", "ReviewReport"]
