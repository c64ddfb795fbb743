"""slices (placeholder)."""


class SlicesMixin:
    pass
