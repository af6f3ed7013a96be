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

Cancellation

When the host cancels a call (an asyncio task awaiting it is cancelled, or
its wait_for times out), plugbox.Cancelled (a BaseException) is raised in
the call wherever it is, a time.sleep() included. Clean up in `finally`
and let it propagate; a call that has not returned within two seconds of
the cancel has its worker killed and replaced.

Logging

Records that no handler of the plugin's takes go to the host (plugin name,
logger name, level, message, the traceback apart, the call being run), at
level INFO and above
unless the plugin changes the root logger's level:

    import logging
    logging.getLogger(__name__).info("loaded %d rows", n)

plugbox's handler is `logging.lastResort`, not a handler on the root
logger, so `logging.basicConfig()` and `dictConfig()` work as in any
program: the handlers they add then receive the records (a StreamHandler's
output reaches the host as the plugin's stderr). Messages longer than
16 KiB are cut.
"""

import sys as _sys

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


class Cancelled(BaseException):
    """Raised in a call the host cancelled (plugbox's own signal
    interrupts it). Like KeyboardInterrupt it is not an Exception, so
    `except Exception` lets it through; let it propagate: a call that goes
    on regardless has its worker killed after a grace period."""


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


def _attach_handler(logging):
    """Forward the plugin's log records to the supervisor, as Python's own
    last resort: the handler of the records no handler of the plugin's
    takes. The root logger keeps no handler, so code that configures or
    checks logging (basicConfig, dictConfig, hasHandlers(), CPython's own
    test_logging) finds a fresh interpreter, and a handler it adds receives
    its records (a StreamHandler's text still reaches the host, as the
    plugin's stderr)."""

    formatter = logging.Formatter()

    def _exc_text(record):
        """The record's exception and stack, formatted as a Formatter
        would put them under its message ("" for neither)."""
        text = record.exc_text or ""
        if record.exc_info and not text:
            text = record.exc_text = formatter.formatException(record.exc_info)
        if record.stack_info:
            text = (text + "\n" if text else "") + formatter.formatStack(record.stack_info)
        return text

    class _SupervisorHandler(logging.Handler):
        """Sends each record to the supervisor as a Log envelope; where
        code has replaced sys.stderr (to capture it), writes there at
        WARNING and above instead, as the standard last resort does."""

        def __init__(self):
            super().__init__()
            self.setFormatter(logging.Formatter("%(message)s"))

        def emit(self, record):
            stream = _sys.stderr
            try:
                if stream is not _sys.__stderr__ and stream is not None:
                    if record.levelno >= logging.WARNING:
                        stream.write(self.format(record) + "\n")
                    return
                _log(record.levelno, record.name, record.getMessage(), _exc_text(record))
            except RecursionError:
                raise
            except Exception:
                self.handleError(record)

    # Named where the handler it replaces lives: logging.__all__ lists
    # lastResort, and code checks that its public names come from logging
    # (test_logging's test__all__).
    _SupervisorHandler.__module__ = logging.__name__
    logging.lastResort = _SupervisorHandler()
    logging.getLogger().setLevel(logging.INFO)


class _LoggingLoader:
    """The standard library's loader for `logging`, attaching the handler
    once the module has run and before its importer sees it."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _attach_handler(module)


class _LoggingFinder:
    """Finds `logging` in the standard library alone, whatever a plugin's
    dependency directories hold, the first time anything imports it."""

    def __init__(self, stdlib_paths):
        self._paths = list(stdlib_paths)

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "logging":
            return None
        _sys.meta_path.remove(self)
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec(fullname, self._paths)
        if spec is not None:
            spec.loader = _LoggingLoader(spec.loader)
        return spec


def _forward_logging(stdlib_paths):
    """Called by the worker before any plugin code is imported. `logging`
    costs more to import than the interpreter costs to start, so most
    plugins, which never log, do not pay for it."""
    if "logging" in _sys.modules:
        _attach_handler(_sys.modules["logging"])
    else:
        _sys.meta_path.insert(0, _LoggingFinder(stdlib_paths))
