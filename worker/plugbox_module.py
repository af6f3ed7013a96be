"""plugbox: what a plugin may import from its host.

Exports

    import plugbox

    @plugbox.export
    def greet(name):
        return "hello " + name

    @plugbox.export(name="add")
    def add_numbers(a, b):
        return a + b

Exported functions can be called by name (`plugbox call ... PLUGIN greet`).

Calling the host

    total = plugbox.host.add(1, 2)              # the host function "add"
    rows = plugbox.host_call("db.query", "x")  # any name, even a non-identifier

`plugbox.host.NAME(*args, **kwargs)` and `plugbox.host_call(NAME, *args,
**kwargs)` call a function the host registered, if the plugin's policy
grants it (`@host-call NAME`), and return its result. Arguments and results
are plugbox values (None, bool, int, float, str, bytes, list/tuple, dict);
anything else raises TypeError before anything is sent. `plugbox.host` has
no attributes starting with "_"; use host_call for such names.

The host function may call back into the plugin before it returns; those
calls run in the same thread, nested (at most 16 calls deep).

Host calls are allowed only while the plugin is handling a call, and only
from the thread that runs that call (not from threads the plugin starts,
not at import time): otherwise RuntimeError.

If the host function fails, the call raises: PermissionError (for instance
a host function the policy does not grant), LookupError, KeyError,
ValueError, TypeError, RuntimeError or TimeoutError when the host reports
one of those, and plugbox.HostError for anything else (with the host's
error type in `.type`, its text in `.message`).

Logging

The root logger forwards every record to the host (plugin name, logger name,
level, message with any traceback), at level INFO and above unless the
plugin changes the root logger's level:

    import logging
    logging.getLogger(__name__).info("loaded %d rows", n)

Messages longer than 16 KiB are cut. `logging.basicConfig()` does nothing,
since the root logger already has a handler (`force=True` would remove it,
and with it the forwarding).
"""

import logging as _logging

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


class HostError(Exception):
    """A host function failed with an error that has no Python builtin here."""

    def __init__(self, message, type="HostError", traceback=""):
        super().__init__(message)
        self.message = message
        self.type = type
        self.traceback = traceback


# Error types a host function may report that are raised as themselves.
_HOST_EXCEPTIONS = {cls.__name__: cls for cls in (
    PermissionError, LookupError, KeyError, ValueError, TypeError, RuntimeError, TimeoutError)}


def host_call(name, /, *args, **kwargs):
    """Call the host function `name` and return its result."""
    outcome = _host_call(name, args, kwargs)
    if outcome[0]:
        return outcome[1]
    _, type_name, message, traceback = outcome
    cls = _HOST_EXCEPTIONS.get(type_name)
    if cls is not None:
        raise cls(message)
    raise HostError(message, type_name, traceback)


class _Host:
    """plugbox.host.NAME(*args, **kwargs) is plugbox.host_call("NAME", ...)."""

    __slots__ = ()

    def __getattr__(self, name):
        # Dunder lookups (copy, pickle, inspect) must not become host calls.
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            return host_call(name, *args, **kwargs)
        call.__name__ = call.__qualname__ = name
        return call

    def __repr__(self):
        return "<plugbox.host>"


host = _Host()


class _SupervisorHandler(_logging.Handler):
    """Sends each record to the supervisor as a Log envelope."""

    def __init__(self):
        super().__init__()
        self.setFormatter(_logging.Formatter("%(message)s"))

    def emit(self, record):
        try:
            _log(record.levelno, record.name, self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _forward_logging():
    """Called by the worker before any plugin code is imported."""
    root = _logging.getLogger()
    root.addHandler(_SupervisorHandler())
    root.setLevel(_logging.INFO)
