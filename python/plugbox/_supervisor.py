"""plugbox.Supervisor: the host side of plugbox, over the C library.

One Supervisor owns one pb_supervisor: a worker process per plugin, started
on the plugin's first call, all driven by one event loop inside the library.
Synchronous methods run that loop (with the GIL released) until they are
done; acall() lets asyncio's loop drive it through the library's descriptor.
"""

import asyncio
import atexit
import builtins
import functools
import inspect
import math
import os
import re
import threading
import warnings
import weakref

from . import _core
from ._errors import Error, NotFound, from_core
from ._types import HookResult, PluginInfo

__all__ = ["Supervisor", "CallOptions"]

_core._set_error_factory(from_core)

# Exceptions a host function may raise that the plugin gets as themselves
# (pb_host_call_fail's list); anything else arrives as plugbox.HostError.
_PASSED_AS_THEMSELVES = frozenset({
    "PermissionError", "LookupError", "KeyError", "ValueError", "TypeError", "RuntimeError", "TimeoutError"})

_PLUGIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")

_MAX_SECONDS = 86400.0 * 365

# Supervisors still open when the interpreter exits are closed then, so that
# their workers are shut down and reaped rather than killed by the kernel
# and left as zombies (finalizers do not reliably run at exit).
_open = weakref.WeakSet()


@atexit.register
def _close_at_exit():
    for sup in list(_open):
        # a daemon thread may still be inside a call: leave that one alone
        if sup._lock.acquire(blocking=False):
            try:
                if not sup._core.busy:
                    sup.close()
            except Exception:
                pass
            finally:
                sup._lock.release()


def _seconds(value, what, none_means=0.0):
    """A positive number of seconds (None: none_means) as a float."""
    if value is None:
        return none_means
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or None, not {type(value).__name__}")
    seconds = float(value)
    if not (0 < seconds <= _MAX_SECONDS) or math.isnan(seconds):
        raise ValueError(f"{what} must be more than 0 seconds and at most a year, not {value!r}")
    return seconds


# The function the worker answers by importing the plugin (PB_WARM_FUNCTION).
_WARM = "<warm>"

# "No _timeout given", apart from None ("the supervisor's deadline").
_UNSET = object()


def _deadline(timeout, kwargs):
    """The seconds of a call's _timeout option (0.0: the supervisor's).

    A keyword argument `timeout` is the plugin's, like any other: it used to
    be taken as the deadline, so a caller that still writes it without
    saying _timeout gets a DeprecationWarning that its meaning changed."""
    if timeout is _UNSET:
        if "timeout" in kwargs:
            warnings.warn(
                "plugbox: timeout= is now passed to the plugin as a keyword argument and no "
                "longer sets the call's deadline; write _timeout=SECONDS or "
                "sup.options(timeout=SECONDS).call(...) for the deadline (_timeout=None "
                "keeps the supervisor's and silences this warning)",
                DeprecationWarning, stacklevel=3)
        return 0.0
    return _seconds(timeout, "_timeout")


class CallOptions:
    """sup.options(timeout=...): call(), acall() and hook() with these call
    options, kept apart from the keyword arguments the plugin receives."""

    __slots__ = ("_sup", "_timeout")

    def __init__(self, sup, timeout):
        _seconds(timeout, "timeout")   # refused now, not at the first call
        self._sup = sup
        self._timeout = timeout

    def __repr__(self):
        return f"<plugbox.CallOptions timeout={self._timeout!r} of {self._sup!r}>"

    def call(self, plugin, function, /, *args, **kwargs):
        return self._sup.call(plugin, function, *args, _timeout=self._timeout, **kwargs)

    async def acall(self, plugin, function, /, *args, **kwargs):
        return await self._sup.acall(plugin, function, *args, _timeout=self._timeout, **kwargs)

    def hook(self, group, /, *args, first_result=False, **kwargs):
        return self._sup.hook(group, *args, first_result=first_result, _timeout=self._timeout, **kwargs)


def _takes_plugin(fn):
    """True if fn has a keyword-only parameter `plugin`."""
    try:
        param = inspect.signature(fn).parameters.get("plugin")
    except (TypeError, ValueError):
        return False
    return param is not None and param.kind is inspect.Parameter.KEYWORD_ONLY


def _fail(hc, exc):
    """Answer a host call with the exception a host function raised."""
    name = type(exc).__name__
    if name in _PASSED_AS_THEMSELVES and type(exc) is getattr(builtins, name):
        # KeyError's str() is the repr of its key; the plugin re-creates the
        # exception from the message, so pass the key's text as it was given.
        if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
            message = exc.args[0]
        else:
            message = str(exc)
        hc.fail(name, message)
    else:
        hc.fail(name, f"{name}: {exc}" if str(exc) else name)


def _answer(hc, value):
    try:
        hc.return_value(value)
    except (TypeError, ValueError, OverflowError) as e:
        # the host function's result cannot be sent: the plugin hears why
        hc.fail("TypeError" if isinstance(e, TypeError) else "ValueError", str(e))


async def _await(awaitable):
    return await awaitable


def _set_future(fut, value, error):
    if fut.done():
        return   # the await was cancelled: the call finished, its answer is dropped
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(value)


def _resolve(loop, fut, value, error):
    """A call's completion, from inside the library (any thread that drove it)."""
    if asyncio._get_running_loop() is loop:
        _set_future(fut, value, error)
        return
    try:
        loop.call_soon_threadsafe(_set_future, fut, value, error)
    except RuntimeError:
        pass   # the loop is closed: nobody waits for this answer any more


class Supervisor:
    """Run the plugins of PLUGINS_DIR, each in its own sandboxed worker.

    policies_dir  the operator's policies: plugin NAME runs under NAME.policy if
                  it exists, else default.policy (default: $PLUGBOX_POLICIES, else
                  the installed ones)
    worker        the plugbox-worker binary (default: $PLUGBOX_WORKER, else the
                  installed one)
    timeout       each call's deadline in seconds (None: no deadline; a policy's
                  @limit call-time still bounds it)
    idle_timeout  stop a worker that had no call for this many seconds (None: never)
    spawn         "exec" (the default: every worker a fresh process) or
                  "fork-server" (workers cloned from one warm interpreter:
                  faster to start and smaller, but sharing its hash secret and
                  address layout; README: Performance) or "zygote" (each
                  plugin imported once, in a zygote of its own that forks its
                  workers: their first call comes without import time;
                  docs/performance.md)
    output        output(plugin, stream, line) receives every line a plugin prints
                  and the supervisor's notes about it; stream is "stdout",
                  "stderr", "supervisor" or "log". Default: written to stderr.

    A Supervisor belongs to one thread at a time: its methods take a lock,
    which the thread inside a call keeps (host functions may call back in).
    Use it as a context manager, or call close().
    """

    def __init__(self, plugins_dir, policies_dir=None, *, worker=None, timeout=60.0,
                 idle_timeout=None, spawn="exec", output=None):
        if output is not None and not callable(output):
            raise TypeError("output must be callable or None")
        if spawn not in ("exec", "fork-server", "zygote"):
            raise ValueError(f"spawn must be 'exec', 'fork-server' or 'zygote', not {spawn!r}")
        self._lock = threading.RLock()
        self._core = _core.Supervisor(plugins_dir, policies_dir, worker,
                                      _seconds(timeout, "timeout"), _seconds(idle_timeout, "idle_timeout"))
        self._plugins_dir = os.path.realpath(os.fsdecode(plugins_dir))   # as the library has it
        self._loop = None          # the asyncio loop whose reader drives the library
        self._fd = -1
        self._attached = False     # keep the reader even with no call pending
        self._blocking = 0         # synchronous calls in progress (they block any loop)
        self._finished = None      # aclose()'s future
        if output is not None:
            self._core.set_output(output)
        self._core.set_spawn_mode(spawn)
        _open.add(self)

    def __repr__(self):
        state = "closed" if self._core.closed else "open"
        return f"<plugbox.Supervisor {self._plugins_dir!r} {state}>"

    @property
    def plugins_dir(self):
        return self._plugins_dir

    @property
    def closed(self):
        return self._core.closed

    # ---- closing ----------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()

    def close(self):
        """End every worker and free the supervisor. Calls still pending end
        with Unavailable; host calls not yet answered fail in their plugin.
        Does nothing when already closed."""
        with self._lock:
            if self._core.closed:
                return
            if self._core.busy:
                raise RuntimeError("the supervisor cannot be closed from inside one of its callbacks")
            self._detach(force=True)
            self._core.close()

    def shutdown(self, grace=10.0):
        """Close gracefully: take no more calls, give those in flight `grace`
        seconds to finish, then fail what is left and close."""
        grace = _seconds(grace, "grace", none_means=0.0) if grace else 0.0
        with self._lock:
            if self._core.closed:
                return
            self._core.shutdown(grace)
            self._blocking += 1
            try:
                while not self._core.finished():
                    self._core.dispatch(100)
            finally:
                self._blocking -= 1
            self.close()

    async def aclose(self, grace=0.0):
        """close() for asyncio: the workers are ended while the loop runs on.
        With grace, calls in flight get that many seconds to finish."""
        grace = _seconds(grace, "grace") if grace else 0.0
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._core.closed:
                return
            if self._finished is None:
                self._core.shutdown(grace)
                self._finished = loop.create_future()
                self._watch(loop)
                self._check_finished()
            finished = self._finished
        await asyncio.shield(finished)
        self.close()

    # ---- calls ------------------------------------------------------------------

    def options(self, *, timeout=None):
        """Call options apart from the plugin's keyword arguments:
        sup.options(timeout=5).call(plugin, function, *args, **kwargs), and
        the same for acall() and hook(). timeout (seconds) is the call's
        deadline instead of the supervisor's (None: the supervisor's)."""
        return CallOptions(self, timeout)

    def call(self, plugin, function, /, *args, _timeout=_UNSET, **kwargs):
        """Call FUNCTION of PLUGIN with these arguments and return its result.

        function is an exported name, an entry point "group:name" or a
        reference "module:attr" inside the plugin. Every keyword argument is
        the plugin's, timeout= included; _timeout (seconds) is this call's
        deadline instead of the supervisor's (also sup.options(timeout=)).
        Raises a plugbox.Error on failure: PluginError if the plugin raised,
        SandboxViolation, CallTimeout, WorkerCrashed, NotFound, ..."""
        seconds = _deadline(_timeout, kwargs)
        with self._lock:
            self._blocking += 1
            try:
                return self._core.call(plugin, function, args, kwargs, seconds)
            finally:
                self._blocking -= 1

    async def acall(self, plugin, function, /, *args, _timeout=_UNSET, **kwargs):
        """call() for asyncio: the running loop watches the library's
        descriptor while calls are pending; calls to different plugins run at
        once. Cancelling the await does not stop the call: it finishes in its
        worker and its answer is dropped."""
        seconds = _deadline(_timeout, kwargs)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            self._watch(loop)
            try:
                self._core.call_start(plugin, function, args, kwargs, seconds,
                                      functools.partial(_resolve, loop, fut))
            finally:
                self._detach()
        return await fut

    def hook(self, group, /, *args, first_result=False, _timeout=_UNSET, **kwargs):
        """Call every entry point of GROUP in every plugin that provides one,
        concurrently, and return a HookResult per answer: ordered by plugin
        name, then entry-point name. A failure is an answer (with .error) and
        hides no other; a plugin that cannot start is one answer with name "".
        With first_result the list stops at the first answer whose value is
        not None (the errors and None values before it stay). _timeout is
        each call's deadline, as for call(); timeout= is the plugins'."""
        seconds = _deadline(_timeout, kwargs)
        with self._lock:
            self._blocking += 1
            try:
                rows = self._core.hook(group, args, kwargs, seconds, bool(first_result))
            finally:
                self._blocking -= 1
        return [HookResult(*row) for row in rows]

    # ---- plugins installed, upgraded, removed ---------------------------------------

    @property
    def generation(self):
        """How many times a plugin was installed, upgraded (its directory
        replaced: plugbox install over it) or removed since this supervisor
        was made, up to date when read. A registry built from plugins() at
        generation G is stale once this is no longer G."""
        with self._lock:
            return self._core.generation()

    def on_change(self, fn):
        """fn(plugin, change) for every plugin installed, upgraded or removed
        from now on; change is "installed", "upgraded" or "removed". It runs
        while the supervisor's loop runs (a call, dispatch(), an attached
        asyncio loop, or reading generation) and must not call the
        supervisor: schedule the work. None removes it. Returns fn, so it
        can decorate."""
        with self._lock:
            self._core.set_change_callback(fn)
        return fn

    # ---- plugins ------------------------------------------------------------------

    def plugin_names(self):
        """The plugin names in the directory, sorted (no worker is started)."""
        with self._lock:
            return self._core.plugins()

    def describe(self, plugin):
        """PluginInfo for one plugin, as its worker reports it (starts the
        worker); raises a plugbox.Error if it cannot start."""
        with self._lock:
            self._blocking += 1
            try:
                return PluginInfo._from_core(plugin, self._core.describe(plugin))
            finally:
                self._blocking -= 1

    def plugins(self, *, errors="include"):
        """A PluginInfo for every plugin in the directory, sorted by name; each
        worker is started to describe its plugin. A plugin that cannot start
        is listed with only its name and .error (errors="include", the
        default), left out (errors="skip"), or raises (errors="raise")."""
        if errors not in ("include", "skip", "raise"):
            raise ValueError(f'errors must be "include", "skip" or "raise", not {errors!r}')
        infos = []
        with self._lock:
            for name in self._core.plugins():
                try:
                    infos.append(self.describe(name))
                except Error as e:
                    if errors == "raise":
                        raise
                    if errors == "include":
                        infos.append(PluginInfo(name=name, error=e))
        return infos

    # ---- host functions -------------------------------------------------------------

    def register(self, name, fn=None):
        """Make fn callable by plugins as plugbox.host.NAME(*args, **kwargs),
        by those whose policy grants it (`@host-call NAME`); others get a
        PermissionError. Registering a name again replaces the function.

        fn receives the plugin's arguments; if it has a keyword-only parameter
        `plugin`, that is the calling plugin's name (which a plugin cannot set
        itself). Its return value goes back to the plugin; an exception goes
        back as itself when it is PermissionError, LookupError, KeyError,
        ValueError, TypeError, RuntimeError or TimeoutError, else as
        plugbox.HostError("Type: message"). If fn returns an awaitable while an
        asyncio loop drives the supervisor, the plugin gets the result once
        it completes.

        Also a decorator: @sup.register("name") or @sup.register."""
        if fn is None:
            if callable(name):
                return self.register(name.__name__, name)

            def decorator(f):
                self.register(name, f)
                return f
            return decorator
        if not callable(fn):
            raise TypeError(f"host function {name!r} must be callable")
        handler = functools.partial(self._host_call, fn, _takes_plugin(fn))
        with self._lock:
            self._core.register(name, handler)
        return fn

    def _host_call(self, fn, takes_plugin, hc):
        kwargs = hc.kwargs
        if takes_plugin:
            if "plugin" in kwargs:
                hc.fail("TypeError", f"{hc.name}() got an unexpected keyword argument 'plugin'")
                return
            kwargs["plugin"] = hc.plugin
        try:
            result = fn(*hc.args, **kwargs)
        except Exception as e:
            _fail(hc, e)
            return
        except BaseException:
            hc.fail("RuntimeError", f"host function {hc.name}() was interrupted")
            raise
        if inspect.isawaitable(result):
            self._answer_later(hc, result)
        else:
            _answer(hc, result)

    def _answer_later(self, hc, awaitable):
        loop = asyncio._get_running_loop()
        if loop is None:
            # no loop on this thread: run the awaitable to its end right here
            try:
                result = asyncio.run(_await(awaitable))
            except Exception as e:
                _fail(hc, e)
                return
            _answer(hc, result)
        elif self._blocking == 0:
            task = asyncio.ensure_future(awaitable)
            task.add_done_callback(functools.partial(self._answer_from_task, hc))
        else:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            hc.fail("RuntimeError", f"host function {hc.name}() is asynchronous, but the host is blocked "
                    "in a synchronous plugbox call on its event loop's thread (use acall)")

    def _answer_from_task(self, hc, task):
        with self._lock:
            if hc.answered or self._core.closed:
                return
            if task.cancelled():
                hc.fail("RuntimeError", f"host function {hc.name}() was cancelled")
            elif task.exception() is not None:
                _fail(hc, task.exception())
            else:
                _answer(hc, task.result())

    # ---- the loop -------------------------------------------------------------------

    def fileno(self):
        """The library's descriptor: readable when dispatch() has work."""
        return self._core.fileno()

    def dispatch(self, timeout=0.0):
        """Do what is ready, waiting up to timeout seconds for something (None:
        until something happens). For hosts with their own event loop, which
        watch fileno(). Returns the number of calls that ended."""
        ms = -1 if timeout is None else max(0, math.ceil(float(timeout) * 1000))
        with self._lock:
            return self._core.dispatch(ms)

    @property
    def calls_pending(self):
        """Calls made and not yet ended."""
        return self._core.calls_pending()

    def attach(self, loop=None):
        """Let an asyncio loop drive the supervisor even while no call is
        pending, so that idle workers are stopped and crashed ones restarted
        on time (acall() alone watches only while calls are pending)."""
        loop = loop or asyncio.get_running_loop()
        with self._lock:
            self._watch(loop)
            self._attached = True

    def detach(self):
        """Undo attach()."""
        with self._lock:
            self._attached = False
            self._detach()

    def _watch(self, loop):
        if self._loop is loop:
            return
        if self._loop is not None:
            if not self._loop.is_closed():
                raise RuntimeError("this Supervisor is driven by another event loop; use one loop at a time")
            self._loop = None
        fd = self._core.fileno()
        loop.add_reader(fd, self._on_readable)
        self._loop, self._fd = loop, fd

    def _detach(self, force=False):
        loop = self._loop
        if loop is None or not (force or (not self._attached and self._finished is None
                                          and self._core.calls_pending() == 0)):
            return
        self._loop = None
        if not loop.is_closed():
            loop.remove_reader(self._fd)

    def _on_readable(self):
        with self._lock:
            if self._core.closed:
                self._detach(force=True)
                return
            try:
                self._core.dispatch(0)
            finally:
                self._check_finished()
                self._detach()

    def _check_finished(self):
        fut = self._finished
        if fut is not None and self._core.finished():
            self._finished = None
            if not fut.done():
                fut.set_result(None)

    # ---- lifecycle ------------------------------------------------------------------

    def _exists(self, plugin):
        return (isinstance(plugin, str) and _PLUGIN_NAME.fullmatch(plugin) is not None
                and os.path.isdir(os.path.join(self._plugins_dir, plugin)))

    def _not_found(self, plugin):
        return NotFound(f"no plugin {plugin!r} in {self._plugins_dir}", plugin=plugin)

    def start(self, plugin=None):
        """Start PLUGIN's worker now (None: every plugin's), have it import
        the plugin as its first call (so the host's first call does not pay
        for it), and keep it running: after a crash it is restarted even
        when no call waits (while something drives the supervisor: a call,
        dispatch(), or attach()). It returns at once."""
        with self._lock:
            self._core.start(plugin)

    def warm(self, plugin, *, _timeout=None):
        """Start PLUGIN's worker if it has none and import the plugin's
        modules now (its package, and those its exports and entry points
        name); returns None when done. An import error is raised here, as
        the PluginError a call would raise."""
        with self._lock:
            self._blocking += 1
            try:
                return self._core.call(plugin, _WARM, (), {}, _seconds(_timeout, "_timeout"))
            finally:
                self._blocking -= 1

    def stop(self, plugin):
        """Stop PLUGIN's worker once its calls are done; a later call starts it again."""
        with self._lock:
            if not self._core.stop(plugin) and not self._exists(plugin):
                raise self._not_found(plugin)

    def reset(self, plugin):
        """Forget PLUGIN's crashes and its failed mark."""
        with self._lock:
            if not self._core.reset(plugin) and not self._exists(plugin):
                raise self._not_found(plugin)

    def state(self, plugin):
        """What PLUGIN's worker is doing: "stopped", "starting", "ready", "busy",
        "stopping", "backoff" or "failed"."""
        with self._lock:
            state = self._core.state(plugin)
        if state is None:
            if not self._exists(plugin):
                raise self._not_found(plugin)
            return "stopped"
        return state

    def set_restart(self, max_crashes=5, window=60.0, backoff=0.1, backoff_max=10.0):
        """After a crash a worker restarts after `backoff` seconds, doubling up
        to `backoff_max`; `max_crashes` crashes within `window` seconds mark the
        plugin failed (its calls raise Unavailable) until the window has passed
        or reset()."""
        with self._lock:
            self._core.set_restart(max_crashes, window, backoff, backoff_max)
