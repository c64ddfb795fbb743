"""Off-the-shelf embedding models (placeholder)."""


class ModelsMixin:
    pass
