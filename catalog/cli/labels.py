"""advtool labels commands (placeholder)."""


def register(sub, common):
    pass
