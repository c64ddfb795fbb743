"""Labels on data rows: the rules (:mod:`.rules`), label files (:mod:`.io`) and the :class:`Labels` service."""

from .rules import MAX_LABEL_LENGTH, POOL_CONDITION, SOURCES, clean_label, write_labels
from .service import LabelImportReport, Labels

__all__ = ["Labels", "LabelImportReport", "clean_label", "write_labels", "MAX_LABEL_LENGTH", "SOURCES",
           "POOL_CONDITION"]
