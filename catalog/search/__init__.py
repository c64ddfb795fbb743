"""Similarity search (placeholder: filled in by the search module)."""


class SearchMixin:
    pass
