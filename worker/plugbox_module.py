"""plugbox: what a plugin may import from its host.

    import plugbox

    @plugbox.export
    def greet(name):
        return "hello " + name

    @plugbox.export(name="add")
    def add_numbers(a, b):
        return a + b

Exported functions can be called by name (`plugbox call ... PLUGIN greet`).
"""

_exports = {}


def export(func=None, *, name=None):
    """Make func callable by the host under its own name or `name`."""
    def register(f):
        if not callable(f):
            raise TypeError("plugbox.export needs a callable")
        key = name if name is not None else f.__name__
        if not isinstance(key, str) or not key:
            raise ValueError("plugbox.export: the name must be a non-empty string")
        _exports[key] = f
        return f
    if func is not None:
        return register(func)
    return register
