"""typeA: raises, which must not hide the other plugins of the group."""


def run(*args, **kwargs):
    raise ValueError("p2_fails refuses")
