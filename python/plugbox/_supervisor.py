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
import logging
import math
import os
import re
import threading
import warnings
import weakref

from . import _core
from ._errors import ConfigError, Error, NotFound, from_core
from ._types import EntryPoint, HookResult, PluginInfo

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


# pb_supervisor_set_max_replicas's bound (PB_REPLICAS_MAX), checked here
# first so that the error names the keyword.
_MAX_REPLICAS = 64

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

    def hook(self, group, /, *args, **kwargs):
        return self._sup.hook(group, *args, _timeout=self._timeout, **kwargs)

    async def ahook(self, group, /, *args, **kwargs):
        return await self._sup.ahook(group, *args, _timeout=self._timeout, **kwargs)


# pb_hook_options (plugbox.h)
_HOOK_FIRST_RESULT, _HOOK_CONCURRENT, _HOOK_ALLOW_UNKNOWN, _HOOK_PRUNE_KWARGS = 1, 2, 4, 8
_HOOK_ORDERS = {"name": 0, "priority": 1, "given": 2}


def _hook_options(first_result, plugins, order, unknown_group, prune_kwargs, concurrent):
    """(flags, order, plugins) for _core.hook / hook_start, checked here so
    that a misspelt option fails before anything runs."""
    flags = 0
    if first_result:
        flags |= _HOOK_FIRST_RESULT
    if concurrent:
        flags |= _HOOK_CONCURRENT
    if prune_kwargs:
        flags |= _HOOK_PRUNE_KWARGS
    if unknown_group not in ("error", "ignore"):
        raise ValueError(f'unknown_group must be "error" or "ignore", not {unknown_group!r}')
    if unknown_group == "ignore":
        flags |= _HOOK_ALLOW_UNKNOWN
    if plugins is not None:
        if isinstance(plugins, str):
            raise TypeError("plugins must be a list of plugin names, not a str")
        plugins = list(plugins)
        if not all(isinstance(p, str) for p in plugins):
            raise TypeError("plugins must be a list of plugin names")
    if order is None:
        order = "given" if plugins is not None else "name"
    if order not in _HOOK_ORDERS:
        raise ValueError(f'order must be "name", "priority" or "given", not {order!r}')
    if order == "given" and plugins is None:
        raise ValueError('order="given" needs plugins=[...]')
    return flags, _HOOK_ORDERS[order], plugins


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


def _log_record(plugin, call_id, level, logger, message, exc_text):
    """A plugin's log record, from inside the library: a LogRecord in the
    host's logging, under plugbox.plugin.PLUGIN.LOGGER. The message is taken
    as it is (no %-arguments are applied again); exc_text is the plugin's
    formatted traceback, which a Formatter prints under the message. extra:
    plugin (the plugin's name) and call (the id of the call it was logged
    in, None outside a call)."""
    name = f"plugbox.plugin.{plugin}.{logger}" if logger else f"plugbox.plugin.{plugin}"
    target = logging.getLogger(name)
    if not target.isEnabledFor(level):
        return
    record = target.makeRecord(name, level, "<plugin " + plugin + ">", 0, message, None, None,
                               extra={"plugin": plugin, "call": call_id or None})
    record.exc_text = exc_text or None
    target.handle(record)


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
                  workers: their first call comes without import time; they
                  share the zygote's hash secret and address layout, one
                  plugin's, never another's; docs/performance.md) or
                  "shared-zygote" (the same, each zygote cloned from the
                  fork-server: about half the memory per plugin, but every
                  plugin's workers share the fork-server's hash secret and
                  address layout, as under "fork-server")
    max_replicas  the most workers one plugin may have at once, whatever its
                  policy's `@replicas N` asks for: a whole number from 1 to 64
                  (None: the library's default, 8)
    output        output(plugin, stream, line) receives every line a plugin prints
                  and the supervisor's notes about it; stream is "stdout",
                  "stderr", "supervisor" or (with log="lines") "log". Default:
                  written to stderr.
    log           where plugins' `logging` records go: "records" (the default)
                  makes each a logging.LogRecord in this process's logging,
                  under the logger plugbox.plugin.PLUGIN.LOGGER, with the
                  plugin's level, message and exc_text, and extra plugin= and
                  call= (the id of the call it was logged in, or None);
                  "lines" sends them to output as "LEVEL logger: message" lines.

    A Supervisor belongs to one thread at a time: its methods take a lock,
    which the thread inside a call keeps (host functions may call back in).
    Use it as a context manager, or call close().
    """

    def __init__(self, plugins_dir, policies_dir=None, *, worker=None, timeout=60.0,
                 idle_timeout=None, spawn="exec", max_replicas=None, output=None, log="records"):
        if output is not None and not callable(output):
            raise TypeError("output must be callable or None")
        if log not in ("records", "lines"):
            raise ValueError(f"log must be 'records' or 'lines', not {log!r}")
        if spawn not in ("exec", "fork-server", "zygote", "shared-zygote"):
            raise ValueError(f"spawn must be 'exec', 'fork-server', 'zygote' or 'shared-zygote', not {spawn!r}")
        if max_replicas is not None:
            if isinstance(max_replicas, bool) or not isinstance(max_replicas, int):
                raise TypeError(f"max_replicas must be a whole number or None, not {type(max_replicas).__name__}")
            if not 1 <= max_replicas <= _MAX_REPLICAS:
                raise ValueError(f"max_replicas must be from 1 to {_MAX_REPLICAS}, not {max_replicas!r}")
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
        if log == "records":
            self._core.set_log(_log_record)
        self._core.set_spawn_mode(spawn)
        if max_replicas is not None:
            self._core.set_max_replicas(max_replicas)
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
        once. Cancelling the await (task.cancel(), an asyncio.wait_for or
        asyncio.timeout that runs out) cancels the call: one not yet started
        never runs, a running one is interrupted in its worker (the plugin
        gets plugbox.Cancelled), and the plugin's next call does not wait
        for it."""
        seconds = _deadline(_timeout, kwargs)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            self._watch(loop)
            try:
                call_id = self._core.call_start(plugin, function, args, kwargs, seconds,
                                                functools.partial(_resolve, loop, fut))
            finally:
                self._detach()
        try:
            return await fut
        except asyncio.CancelledError:
            if not fut.done() or fut.cancelled():
                self._cancel(call_id)
            raise

    def _cancel(self, call_id):
        """Cancel a call acall() no longer waits for (its answer, a
        CallCancelled, is dropped)."""
        with self._lock:
            if self._core.closed:
                return
            try:
                self._core.cancel(call_id)
            except RuntimeError:
                # from inside one of the supervisor's callbacks, which may
                # not call it: the call runs on, and its answer is dropped
                pass

    def hook(self, group, /, *args, first_result=False, plugins=None, order=None, unknown_group="error",
             prune_kwargs=False, concurrent=False, _timeout=_UNSET, **kwargs):
        """Call every entry point of GROUP in the plugins that provide one
        and return a HookResult per answer. Who provides it comes from
        entry_points() (no other plugin's worker starts).

        first_result  stop at the first answer whose value is not None: the
                      entry points are called one after another and none
                      after that answer is called (pluggy's firstresult);
                      with concurrent=True all are called at once and the
                      list still stops there. The errors and None values
                      before it stay. Without it, all run concurrently.
        plugins       only these plugins (a name that is no plugin raises
                      NotFound); their order is the order, unless given.
        order         "name" (plugins by name, then entry points by name;
                      the default), "priority" (plugin.toml's `priority`,
                      highest first) or "given" (the plugins list's order).
        unknown_group "error" (a group no plugin declares raises NotFound,
                      with the nearest group as a hint) or "ignore" ([]).
        prune_kwargs  each entry point receives only the keyword arguments
                      its signature accepts (pluggy's rule); the worker,
                      which sees the signature, drops the rest.
        A failure is an answer (with .error) and hides no other; a plugin
        whose metadata is invalid is one answer with name "". _timeout is
        each call's deadline, as for call(); every other keyword argument
        goes to the plugins."""
        seconds = _deadline(_timeout, kwargs)
        flags, order_no, names = _hook_options(first_result, plugins, order, unknown_group, prune_kwargs,
                                               concurrent)
        with self._lock:
            self._blocking += 1
            try:
                rows = self._core.hook(group, args, kwargs, seconds, flags, order_no, names)
            finally:
                self._blocking -= 1
        return [HookResult(*row) for row in rows]

    async def ahook(self, group, /, *args, first_result=False, plugins=None, order=None, unknown_group="error",
                    prune_kwargs=False, concurrent=False, _timeout=_UNSET, **kwargs):
        """hook() for asyncio, with the same options: the running loop
        drives the calls, so other tasks run meanwhile and several ahooks
        (and acalls) proceed at once."""
        seconds = _deadline(_timeout, kwargs)
        flags, order_no, names = _hook_options(first_result, plugins, order, unknown_group, prune_kwargs,
                                               concurrent)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        def done(rows, error):
            _resolve(loop, fut, None if rows is None else [HookResult(*row) for row in rows], error)

        with self._lock:
            self._watch(loop)
            try:
                self._core.hook_start(group, args, kwargs, seconds, flags, order_no, names, done)
            finally:
                self._detach()
        return await fut

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
                return PluginInfo._from_core(plugin, self._core.describe(plugin), self)
            finally:
                self._blocking -= 1

    def _discover(self):
        with self._lock:
            self._blocking += 1
            try:
                return self._core.discover()
            finally:
                self._blocking -= 1

    def entry_points(self, group=None):
        """[(plugin, EntryPoint)] of every plugin (only GROUP's when given),
        by plugin name, then in the order the plugin declares them. No
        worker starts: one sandboxed helper reads every plugin's metadata,
        and its answer is kept until a plugin changes (its directory,
        plugin.toml or __init__.py). ep.load() returns a callable proxy.
        A plugin whose metadata is invalid has no entry points here; see
        plugins() for its error."""
        pairs = []
        for info in self._discover():
            if info.get("error") is not None:
                continue
            for e in info.get("entry_points", []):
                if group is None or e["group"] == group:
                    pairs.append((info["name"], EntryPoint._bound(self, info["name"], e["group"], e["name"],
                                                                  e["value"])))
        return pairs

    def plugins(self, *, errors="include", workers=False):
        """A PluginInfo for every plugin in the directory, sorted by name,
        from the discovery scan: no worker starts (sys_path and layers are
        then empty). workers=True starts each plugin's worker and asks it
        instead, as before. A plugin that cannot be read or started is
        listed with only its name and .error (errors="include", the
        default), left out (errors="skip"), or raises (errors="raise")."""
        if errors not in ("include", "skip", "raise"):
            raise ValueError(f'errors must be "include", "skip" or "raise", not {errors!r}')
        infos = []
        if not workers:
            for info in self._discover():
                name = info["name"]
                if info.get("error") is None:
                    infos.append(PluginInfo._from_core(name, info, self))
                    continue
                e = ConfigError(info["error"], plugin=name)
                if errors == "raise":
                    raise e
                if errors == "include":
                    infos.append(PluginInfo(name=name, error=e))
            return infos
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
