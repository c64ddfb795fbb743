"""labeling (placeholder)."""


class LabelingMixin:
    pass
