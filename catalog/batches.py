"""batches (placeholder)."""


class BatchesMixin:
    pass
