"""advtool search commands (placeholder)."""


def register(sub, common):
    pass
