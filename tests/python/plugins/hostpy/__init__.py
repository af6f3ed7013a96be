"""hostpy: calls the host's functions with any arguments and reports what
came back, so the tests of the Python host package see exactly what a
plugin sees (tests/python/test_hostcalls.py)."""

import plugbox


@plugbox.export
def host(name, *args, **kwargs):
    """{"value": V} or {"error": [exception type, str(e), HostError.type or None]}."""
    try:
        return {"value": plugbox.host_call(name, *args, **kwargs)}
    except Exception as e:
        return {"error": [type(e).__name__, str(e), getattr(e, "type", None)]}


@plugbox.export
def twice(name, *args):
    """Two host calls in one plugin call: the second after the first's answer."""
    return [plugbox.host_call(name, *args), plugbox.host_call(name, *args)]


@plugbox.export
def echo(value):
    return value


@plugbox.export
def tuple_keys():
    """A dict whose keys travel as lists."""
    return {(1, (2, 3)): "tuple key", (): "empty"}
