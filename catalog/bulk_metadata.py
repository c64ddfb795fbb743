"""bulk_metadata (placeholder)."""


class MetadataMixin:
    pass
