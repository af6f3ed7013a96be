"""hookb: a nodegroup provider that answers with what it was given."""


def answer(*args, **kwargs):
    return {"plugin": "hookb", "args": list(args), "kwargs": kwargs}
