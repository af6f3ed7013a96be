"""plugbox's exceptions: one class per way a call can fail (the library's
pb_error_kind), under plugbox.Error, each also a subclass of the builtin
exception a Python programmer would reach for where there is one."""

__all__ = [
    "Error", "PluginError", "SandboxViolation", "WorkerCrashed", "CallTimeout", "ProtocolError",
    "NotFound", "ConfigError", "Unavailable", "BadRequest", "CallCancelled",
]


class Error(Exception):
    """A call failed. Attributes:

    kind              the library's name for what happened: "exception", "not_found",
                      "config", "violation", "timeout", "crashed", "protocol",
                      "unavailable", "bad_request" or "cancelled"
    plugin            the plugin's name ("" when the call never reached one)
    message           one line saying what happened
    remote_type       the Python exception type raised in the plugin, or ""
    remote_traceback  the plugin's Python traceback (the stack at the call for a
                      sandbox violation), or ""
    """

    kind = "unknown"

    def __init__(self, message="", *, plugin="", remote_type="", remote_traceback="", kind=None):
        super().__init__(message)
        self.message = message
        self.plugin = plugin
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback
        if kind is not None:
            self.kind = kind

    def __str__(self):
        return self.message


class PluginError(Error):
    """The plugin raised. str() is "Type: message"; the plugin's traceback is
    in remote_traceback and is shown with the exception's own traceback."""

    kind = "exception"

    def __str__(self):
        return f"{self.remote_type}: {self.message}" if self.remote_type else self.message


class SandboxViolation(Error):
    """The sandbox stopped the plugin at a system call. syscall is its name
    ("ptrace"), rule the policy rule that decided ("'@default kill' at
    FILE:LINE"); both "" when the worker was killed without a report."""

    kind = "violation"

    def __init__(self, message="", *, syscall="", rule="", **kw):
        super().__init__(message, **kw)
        self.syscall = syscall
        self.rule = rule


class WorkerCrashed(Error):
    """The plugin's worker died during the call (signal, exit, resource limit)."""

    kind = "crashed"


class CallTimeout(Error, TimeoutError):
    """The call's deadline passed; the worker was killed."""

    kind = "timeout"


class ProtocolError(Error):
    """The worker sent something it must not; it was ended."""

    kind = "protocol"


class NotFound(Error, LookupError):
    """No such plugin, or no such function in it."""

    kind = "not_found"


class ConfigError(Error):
    """The plugin's layout or manifest is invalid, or its policy has an error."""

    kind = "config"


class Unavailable(Error):
    """The worker could not be started, the plugin is marked failed after
    repeated crashes, or the supervisor was shut down."""

    kind = "unavailable"


class BadRequest(Error, ValueError):
    """The call itself was malformed (a value too large for a frame, calls
    nested too deeply...)."""

    kind = "bad_request"


class CallCancelled(Error):
    """The host cancelled the call (an acall() whose task was cancelled,
    or whose asyncio.wait_for timed out): it never started, or it was
    interrupted in its worker."""

    kind = "cancelled"


_BY_KIND = {cls.kind: cls for cls in (PluginError, SandboxViolation, WorkerCrashed, CallTimeout,
                                      ProtocolError, NotFound, ConfigError, Unavailable, BadRequest,
                                      CallCancelled)}

for _cls in (Error, *_BY_KIND.values()):
    _cls.__module__ = "plugbox"


def from_core(kind, plugin, type_, message, traceback, syscall, rule):
    """The exception for one library error (called by plugbox._core)."""
    cls = _BY_KIND.get(kind, Error)
    extra = {"syscall": syscall, "rule": rule} if cls is SandboxViolation else {}
    e = cls(message, plugin=plugin, remote_type=type_, remote_traceback=traceback,
            kind=None if cls is not Error else kind, **extra)
    if traceback:
        # Shown under the host's own traceback when the exception is not caught.
        e.add_note(f"In plugin {plugin!r}:\n{traceback.rstrip()}")
    return e
