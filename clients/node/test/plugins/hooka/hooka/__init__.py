"""hooka: a nodegroup provider that has nothing to say (None), so a
first-result hook goes on past it."""


def nothing(*args, **kwargs):
    return None
