"""plugbox for host applications: run untrusted Python plugins, each in its
own sandboxed worker process, and call them from Python.

    import plugbox

    with plugbox.Supervisor("/srv/plugins", "/etc/plugbox/policies") as sup:
        sup.register("lookup_user", lookup_user)     # plugins may call it back
        print(sup.call("plug1", "greet", "world"))
        for r in sup.hook("typeA", context):         # every plugin of a group
            print(r.plugin, r.name, r.value if r.ok else r.error)

Every plugin runs in its own worker under the operator's syscall policy and
sees only its own vendored dependencies. Failures are exceptions under
plugbox.Error: PluginError (the plugin raised), SandboxViolation,
WorkerCrashed, CallTimeout, ProtocolError, NotFound, ConfigError,
Unavailable and BadRequest. Values cross as None, bool, int (64-bit), float,
str, bytes, list and dict; anything else is refused before it is sent.

This package is the C library libplugbox (plugbox._core) under a thin
Python layer; see plugbox.Supervisor.
"""

from . import _core
from ._errors import (BadRequest, CallCancelled, CallTimeout, ConfigError, Error, NotFound, PluginError,
                      ProtocolError, SandboxViolation, Unavailable, WorkerCrashed)
from ._supervisor import CallOptions, Supervisor
from ._types import EntryPoint, HookResult, LoadedEntryPoint, PluginInfo

__version__ = _core.__version__

__all__ = [
    "Supervisor", "CallOptions", "PluginInfo", "EntryPoint", "LoadedEntryPoint", "HookResult",
    "Error", "PluginError", "SandboxViolation", "WorkerCrashed", "CallTimeout", "ProtocolError",
    "NotFound", "ConfigError", "Unavailable", "BadRequest", "CallCancelled",
]

Supervisor.__module__ = "plugbox"
CallOptions.__module__ = "plugbox"
