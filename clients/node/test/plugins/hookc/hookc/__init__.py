"""hookc: a nodegroup provider that raises; it prints first, so a test
can tell whether it was called at all."""


def fail(*args, **kwargs):
    print("hookc was called", flush=True)
    raise KeyError("hookc has no answer")
