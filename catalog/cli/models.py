"""advtool models commands (placeholder)."""


def register(sub, common):
    pass


def register_embeddings(es, common):
    """Adds ``advtool embeddings compute`` to the embeddings group."""
