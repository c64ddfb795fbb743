"""labels (placeholder)."""


class LabelsMixin:
    pass
