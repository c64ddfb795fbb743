"""advtool slices commands (placeholder)."""


def register(sub, common):
    pass
