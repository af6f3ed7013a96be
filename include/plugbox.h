/* plugbox.h - host API of libplugbox: run untrusted Python plugins, one
 * sandboxed worker process per plugin, and call their functions.
 *
 *   pb_supervisor *sup;
 *   pb_supervisor_new("/srv/plugins", &sup);
 *   pb_value *arg = pb_value_new_string("world");
 *   pb_value *result; pb_error *err;
 *   if (pb_call(sup, "greeter", "greet", &arg, 1, &result, &err) == 0) ...
 *
 * One supervisor drives every worker from one event loop (epoll over the
 * channels, pidfds for exits, one timer for every deadline) on the thread
 * that calls into it; it starts no threads. pb_call runs that loop until its
 * own call ends; pb_call_start returns at once and the host's own loop
 * watches pb_supervisor_get_fd and calls pb_supervisor_dispatch. Calls to one
 * plugin run one at a time in the order made; calls to different plugins run
 * at once. Every call ends exactly once, in a result or an error.
 *
 * Handles are opaque and belong to one thread at a time. Functions that can
 * fail return 0 or a negative errno; a failed call also yields a pb_error
 * that says what happened (kind, type, message, traceback). Link with
 * pkg-config's `plugbox`.
 */
#ifndef PLUGBOX_H
#define PLUGBOX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PB_API __attribute__((visibility("default")))
#else
#define PB_API
#endif

typedef struct pb_supervisor pb_supervisor;
typedef struct pb_value pb_value;
typedef struct pb_error pb_error;

/* What went wrong with a call. The numbers are stable. */
typedef enum pb_error_kind {
	PB_ERROR_EXCEPTION = 1,   /* the plugin raised */
	PB_ERROR_NOT_FOUND = 2,   /* no such plugin or function */
	PB_ERROR_CONFIG = 3,      /* the plugin's layout or manifest is invalid */
	PB_ERROR_VIOLATION = 4,   /* the sandbox stopped the plugin */
	PB_ERROR_TIMEOUT = 5,     /* the call's deadline passed; the worker was killed */
	PB_ERROR_CRASHED = 6,     /* the worker died */
	PB_ERROR_PROTOCOL = 7,    /* the worker sent something it must not */
	PB_ERROR_UNAVAILABLE = 8, /* the worker could not be started (a sandbox layer failed...) */
	PB_ERROR_BAD_REQUEST = 9, /* the call itself was malformed */
	PB_ERROR_CANCELLED = 10,  /* the host cancelled it (pb_cancel) */
} pb_error_kind;

/* Where a line of plugin output came from. */
typedef enum pb_stream {
	PB_STREAM_STDOUT = 1,     /* the plugin's stdout */
	PB_STREAM_STDERR = 2,     /* the plugin's stderr */
	PB_STREAM_SUPERVISOR = 3, /* the supervisor about the plugin (denied syscalls...) */
	PB_STREAM_LOG = 4,        /* the plugin's `logging` records: "LEVEL logger: message" */
} pb_stream;

/* Called from inside the supervisor's loop: it must not call back into the
 * supervisor, and the loop waits while it runs. Lines come metered (each
 * stream of each worker at most 1000 lines and 256 KiB a second; the rest
 * is dropped and a PB_STREAM_SUPERVISOR note counts it) and sanitised (no
 * control character, bidi override or invalid UTF-8: shown as \xNN or
 * \u{XXXX}). */
typedef void (*pb_output_fn)(void *userdata, const char *plugin, pb_stream stream, const char *line);

/* A record of a plugin's `logging`, as the plugin made it, for hosts that
 * keep records rather than lines (pb_supervisor_set_log). call_id is the
 * call (pb_call_start's id) the worker was running when it was logged, 0
 * for none (at import, between calls); level is Python's number (10 DEBUG
 * ... 50 CRITICAL); message has its arguments applied; exc_text is the
 * formatted exception and stack under it, "" for none. The text comes from
 * the plugin: logger is sanitised as one line (a newline shows as \n),
 * message and exc_text keep their line breaks and nothing else a terminal
 * acts on; each is cut to a bound. Metered as the log lines are. */
typedef void (*pb_log_fn)(void *userdata, const char *plugin, uint64_t call_id, int level,
                          const char *logger, const char *message, const char *exc_text);

/* Output lines with the call that produced them: call_id is the id the host
 * knows the call by (pb_call_start's, or pb_hook_start_id's for a hook's
 * calls) that the plugin's worker was running when the line was read, 0
 * for none. The worker writes what the plugin printed before it answers,
 * and the supervisor reads it before it takes the answer, so a call's own
 * lines come with its id; a thread printing after the call returned is
 * attributed to whatever runs then. Metered and sanitised as pb_output_fn. */
typedef void (*pb_call_output_fn)(void *userdata, const char *plugin, uint64_t call_id, pb_stream stream,
                                  const char *line);

/* Supervisor over a plugins directory (each subdirectory one plugin). */
PB_API int pb_supervisor_new(const char *plugins_dir, pb_supervisor **out);
/* Fails every call not yet answered (PB_ERROR_UNAVAILABLE, through its
 * callback), ends every worker (Shutdown, then SIGKILL after a grace
 * period), reaps them and frees. */
PB_API void pb_supervisor_free(pb_supervisor *sup);
/* Path of the plugbox-worker binary (default: the installed one, or the
 * PLUGBOX_WORKER environment variable). */
PB_API int pb_supervisor_set_worker(pb_supervisor *sup, const char *path);
/* Directory of the operator's syscall policies: plugin NAME runs under
 * DIR/NAME.policy if it exists, else DIR/default.policy. Default: the
 * installed policies (or the PLUGBOX_POLICIES environment variable). A
 * policy with errors fails the plugin's start with PB_ERROR_CONFIG naming
 * FILE:LINE:COL. */
PB_API int pb_supervisor_set_policies(pb_supervisor *sup, const char *dir);
/* Per-call deadline in seconds; 0 means none. Default 60. */
PB_API int pb_supervisor_set_timeout(pb_supervisor *sup, double seconds);
/* Receives plugin output and supervisor notes, one line at a time. Default:
 * written to stderr as "[plugin] line" through a bounded queue that never
 * blocks (what stderr does not take is dropped and counted). */
PB_API void pb_supervisor_set_output(pb_supervisor *sup, pb_output_fn fn, void *userdata);
/* Receives plugin log records whole instead of as PB_STREAM_LOG lines
 * (NULL: back to lines). The rate limit and the "dropped N log records"
 * notes (PB_STREAM_SUPERVISOR) are the same either way. */
PB_API void pb_supervisor_set_log(pb_supervisor *sup, pb_log_fn fn, void *userdata);
/* Receives the lines a worker produces (its stdout, stderr, log lines,
 * and plugbox's notes about it) with the call it belongs to, instead of the
 * output function (NULL: back to it). Notes that concern no worker (a
 * plugin that cannot start...) still go to the output function. A log
 * record's call_id (pb_log_fn) is, likewise, a hook's id for a hook's call. */
PB_API void pb_supervisor_set_call_output(pb_supervisor *sup, pb_call_output_fn fn, void *userdata);
/* The last error of a pb_supervisor_* function, as one line. */
PB_API const char *pb_supervisor_strerror(const pb_supervisor *sup);

/* Names of the plugins in the directory, sorted; entries that are not
 * directories or whose names are not [A-Za-z0-9_-]+ are skipped (and
 * reported to the output function). Free with pb_strv_free. */
PB_API int pb_supervisor_plugins(pb_supervisor *sup, char ***names, size_t *count);
PB_API void pb_strv_free(char **v, size_t count);

/* What every plugin says about itself, without starting any worker: one
 * sandboxed helper reads the metadata of every plugin whose directory,
 * plugin.toml or __init__.py changed since it was last read (the same
 * parsing a worker does), and the answers are kept until the plugin
 * changes. *out (free with pb_value_destroy): a list, sorted by name, of
 * maps with name, layout, version, exports, entry_points (maps of group,
 * name, value), priority (plugin.toml's, 0 when absent) and error (null,
 * or why this plugin's metadata is invalid). Returns 0, or -errno with
 * pb_supervisor_strerror (the directory cannot be read, the helper could
 * not run or died). */
PB_API int pb_supervisor_discover(pb_supervisor *sup, pb_value **out);

/* Describe a plugin (starts its worker): a map value with name, layout,
 * version, exports, entry_points, priority, sys_path, layers and policy_file
 * (the path of the policy its worker runs under). */
PB_API int pb_describe(pb_supervisor *sup, const char *plugin, pb_value **info, pb_error **err);

/* Call FUNCTION of PLUGIN with positional arguments (borrowed). On success
 * returns 0 and *result (free with pb_value_destroy). On failure returns a
 * negative errno and *err (free with pb_error_free). Never blocks past the
 * supervisor's timeout. */
PB_API int pb_call(pb_supervisor *sup, const char *plugin, const char *function,
                   pb_value *const *args, size_t nargs, pb_value **result, pb_error **err);

/* The same with keyword arguments: kwnames[i] names kwvalues[i] (borrowed). */
PB_API int pb_call_kw(pb_supervisor *sup, const char *plugin, const char *function,
                      pb_value *const *args, size_t nargs,
                      const char *const *kwnames, pb_value *const *kwvalues, size_t nkwargs,
                      pb_value **result, pb_error **err);

/* ---- asynchronous calls ------------------------------------------------- */

/* A call as pb_call_start takes it; everything is borrowed for the
 * duration of pb_call_start only. */
typedef struct pb_call_spec {
	const char *plugin;
	const char *function;
	pb_value *const *args;
	size_t nargs;
	const char *const *kwnames; /* kwnames[i] names kwvalues[i] */
	pb_value *const *kwvalues;
	size_t nkwargs;
	double timeout; /* seconds from now; 0: the supervisor's */
} pb_call_spec;

/* How a call ended: exactly one of result and err is set, and the callback
 * owns it (pb_value_destroy / pb_error_free). It runs inside
 * pb_supervisor_dispatch (or pb_call), never inside pb_call_start, and may
 * make further calls. */
typedef void (*pb_call_done_fn)(void *userdata, uint64_t call_id, pb_value *result, pb_error *err);

/* Queue a call and return at once; its id (never 0) goes to *call_id. The
 * callback runs exactly once, whatever happens to the worker. Returns 0,
 * or -EINVAL (a NULL field, a name that is not UTF-8, a value nested too
 * deeply) or -ENOMEM, in which case the callback never runs. */
PB_API int pb_call_start(pb_supervisor *sup, const pb_call_spec *spec, pb_call_done_fn done,
                         void *userdata, uint64_t *call_id);

/* pb_call_start with flags. PB_CALL_ALONE: the call is not written to its
 * worker ahead of time behind another, nor another behind it (calls to a
 * plugin are otherwise pipelined): what the worker prints before it
 * answers is then exactly this call's (pb_call_output_fn), at the price of
 * a round trip between this call and the ones before and after it. */
#define PB_CALL_ALONE 1u
PB_API int pb_call_start_ex(pb_supervisor *sup, const pb_call_spec *spec, unsigned flags, pb_call_done_fn done,
                            void *userdata, uint64_t *call_id);

/* Cancel the call CALL_ID (pb_call_start's). A call that has not started
 * never runs. A running call is interrupted in its worker (plugbox.Cancelled
 * is raised in it) and the worker stays for the next calls; a worker that
 * has not stopped it within PB_CANCEL_GRACE seconds is killed and replaced,
 * and the calls queued behind it go to the new worker. Either way the call
 * ends now, with PB_ERROR_CANCELLED, through its callback (from the next
 * dispatch, never inside pb_cancel). Returns 0, or -ENOENT when no such
 * call is pending (it ended already, or never was). A call nested in a
 * host call that waits for another nested call ends its worker at once. */
#define PB_CANCEL_GRACE 2.0
PB_API int pb_cancel(pb_supervisor *sup, uint64_t call_id);
/* The id the host knows a call in a worker by: call_id itself, or the
 * hook's id (pb_hook_start_id) for a call a hook made; 0 when no worker
 * runs call_id now. */
PB_API uint64_t pb_call_origin(pb_supervisor *sup, uint64_t call_id);

/* A descriptor that polls readable while the supervisor has work to do:
 * bytes from a worker, an exit, a deadline or a finished call. Watch it in
 * the host's loop and call pb_supervisor_dispatch(sup, 0) when it is. */
PB_API int pb_supervisor_get_fd(const pb_supervisor *sup);
/* Do what is ready, waiting up to timeout_ms for something (-1: until
 * something happens, 0: not at all). Runs callbacks. Returns the number of
 * calls that ended, or a negative errno. */
PB_API int pb_supervisor_dispatch(pb_supervisor *sup, int timeout_ms);
/* Calls made and not yet ended. */
PB_API size_t pb_supervisor_calls_pending(const pb_supervisor *sup);

/* ---- hooks: one entry-point group across every plugin ------------------- */

/* The answers of a hook, in order (see pb_hook). */
typedef struct pb_hook_results pb_hook_results;

/* Stop at the first answer, in order, that is a value other than null:
 * the entry points are called one after another, and none after that
 * answer is called at all (pluggy's firstresult). */
#define PB_HOOK_FIRST_RESULT 1u
/* With PB_HOOK_FIRST_RESULT: call every entry point at once and stop
 * waiting at the first non-null answer (those after it still run, their
 * answers dropped). Faster, but the later calls' side effects happen. */
#define PB_HOOK_CONCURRENT 2u
/* A group that no plugin declares gives no answers instead of -ENOENT. */
#define PB_HOOK_ALLOW_UNKNOWN 4u
/* Each entry point receives only the keyword arguments its signature
 * accepts (all of them if it takes **kwargs), as pluggy passes hook
 * implementations only what they declare. The worker prunes them. */
#define PB_HOOK_PRUNE_KWARGS 8u
/* Each call is made with PB_CALL_ALONE (its output exactly its own). */
#define PB_HOOK_ALONE 16u

/* The order of the answers (and, sequentially, of the calls). */
typedef enum pb_hook_order {
	PB_HOOK_ORDER_NAME = 0,     /* plugins by name (bytewise), then entry points by name */
	PB_HOOK_ORDER_PRIORITY = 1, /* `priority` in plugin.toml, highest first; then by name */
	PB_HOOK_ORDER_GIVEN = 2,    /* the order of `plugins` (which must be set) */
} pb_hook_order;

typedef struct pb_hook_options {
	unsigned flags; /* PB_HOOK_* */
	pb_hook_order order;
	/* Only these plugins (NULL: every plugin); a name that is not a
	 * plugin of the directory is an error (-ENOENT). */
	const char *const *plugins;
	size_t nplugins;
} pb_hook_options;

/* Call every entry point of GROUP in every plugin that provides one (its
 * `*.dist-info/entry_points.txt`), as the entry-point plugin pattern does
 * with `for ep in entry_points(group=GROUP): ep.load()(...)`. Who provides
 * the group comes from pb_supervisor_discover, so only those plugins'
 * workers start. Without PB_HOOK_FIRST_RESULT the calls run concurrently;
 * the answers come back in the options' order. A plugin whose metadata is
 * invalid is one answer with an empty entry-point name and its error, so
 * that no failure hides the others; an error never stops a hook.
 * spec->plugin and spec->function are ignored (NULL is fine); its
 * arguments and timeout go to every call. With PB_HOOK_FIRST_RESULT the
 * answers stop at the first non-null value (the errors and null values
 * before it stay). opts NULL: every plugin, by name, no flags. Returns 0
 * and *out (free with pb_hook_results_free), or -EINVAL (a bad group or
 * options), -ENOENT (no plugin declares GROUP, unless
 * PB_HOOK_ALLOW_UNKNOWN; a plugin in `plugins` does not exist; or the
 * plugins directory cannot be read: see pb_supervisor_strerror, which
 * suggests a group when one is close), -ENOMEM. */
PB_API int pb_hook_ex(pb_supervisor *sup, const char *group, const pb_call_spec *spec,
                      const pb_hook_options *opts, pb_hook_results **out);
/* The same without waiting: done(userdata, results, status) runs exactly
 * once with what pb_hook_ex would give (status 0 and results, which it
 * owns, or -ENOMEM and NULL), from a later pb_supervisor_dispatch, or
 * before pb_hook_start returns when there is nothing to call. spec and its
 * arguments are borrowed until done runs (first-result calls are made one
 * after another); opts only during pb_hook_start. Returns 0, or the
 * errors of pb_hook_ex, in which case done never runs. */
typedef void (*pb_hook_done_fn)(void *userdata, pb_hook_results *results, int status);
PB_API int pb_hook_start(pb_supervisor *sup, const char *group, const pb_call_spec *spec,
                         const pb_hook_options *opts, pb_hook_done_fn done, void *userdata);
/* pb_hook_start that also gives the hook an id (*hook_id, never 0, from
 * the calls' sequence): pb_cancel(hook_id) cancels every call the hook has
 * made and makes no more (done still runs once, with the answers so far:
 * the cancelled calls' PB_ERROR_CANCELLED among them), and the hook's calls
 * carry it as their origin (pb_call_origin, pb_call_output_fn, pb_log_fn,
 * pb_host_call_origin). */
PB_API int pb_hook_start_id(pb_supervisor *sup, const char *group, const pb_call_spec *spec,
                            const pb_hook_options *opts, pb_hook_done_fn done, void *userdata,
                            uint64_t *hook_id);
/* pb_hook_ex with opts.flags = flags and the rest default. */
PB_API int pb_hook(pb_supervisor *sup, const char *group, const pb_call_spec *spec, unsigned flags,
                   pb_hook_results **out);
PB_API size_t pb_hook_results_count(const pb_hook_results *r);
PB_API const char *pb_hook_result_plugin(const pb_hook_results *r, size_t i);
/* The entry point's name within GROUP ("" when the plugin could not start). */
PB_API const char *pb_hook_result_name(const pb_hook_results *r, size_t i);
/* Exactly one of these is non-NULL; both borrowed from r. */
PB_API const pb_value *pb_hook_result_value(const pb_hook_results *r, size_t i);
PB_API const pb_error *pb_hook_result_error(const pb_hook_results *r, size_t i);
PB_API void pb_hook_results_free(pb_hook_results *r);

/* ---- host functions: what plugins may call back --------------------------- */

/* A plugin calls `plugbox.host.NAME(*args, **kwargs)`. The supervisor runs
 * the host function registered under NAME if the plugin's policy grants it
 * (`@host-call NAME`); otherwise the plugin gets a PermissionError and the
 * output function a note. The function answers with pb_host_call_return or
 * pb_host_call_fail, exactly once, now or later; the plugin waits until it
 * does (the call's deadline still runs). While a host function runs, a call
 * it makes to the same plugin is delivered at once, nested in the waiting
 * call; other calls to that plugin wait their turn. */
typedef struct pb_host_call pb_host_call;
typedef void (*pb_host_fn)(void *userdata, pb_host_call *call);

/* NAME: [A-Za-z_][A-Za-z0-9_]*, at most 64 bytes; registering it again
 * replaces the function. */
PB_API int pb_supervisor_register(pb_supervisor *sup, const char *name, pb_host_fn fn, void *userdata);

/* Reading a host call (valid until it is answered). */
PB_API const char *pb_host_call_plugin(const pb_host_call *call);
PB_API const char *pb_host_call_name(const pb_host_call *call);
PB_API size_t pb_host_call_nargs(const pb_host_call *call);
PB_API const pb_value *pb_host_call_arg(const pb_host_call *call, size_t i);
PB_API size_t pb_host_call_nkwargs(const pb_host_call *call);
/* The i-th keyword argument; its name goes to *name. */
PB_API const pb_value *pb_host_call_kwarg(const pb_host_call *call, size_t i, const char **name);
/* The id the host knows the call that made this host call by (pb_call_start's,
 * or a hook's id for a hook's call); 0 once that call has ended. */
PB_API uint64_t pb_host_call_origin(const pb_host_call *call);
/* Start a call nested in this host call while it waits for its answer (a
 * host function that answers later, from the host's own loop, calling the
 * plugin back first): as pb_call_start, but spec->plugin must be the host
 * call's plugin, and the call runs at once inside the waiting one. -ESRCH:
 * the host call was answered or its call ended; -EBUSY: a call nested in
 * it runs now (one at a time); -EINVAL: another plugin, or a bad spec. */
PB_API int pb_host_call_nest(pb_host_call *call, const pb_call_spec *spec, pb_call_done_fn done, void *userdata,
                             uint64_t *call_id);
/* Answer: the plugin's call returns `result` (taken; NULL means None). Frees
 * the host call. If the plugin's worker has gone meanwhile, the answer is
 * dropped. */
PB_API void pb_host_call_return(pb_host_call *call, pb_value *result);
/* Answer with an exception raised in the plugin: `type` is a Python builtin
 * exception name (ValueError, KeyError, PermissionError, LookupError,
 * TypeError, RuntimeError, TimeoutError); any other becomes
 * plugbox.HostError. Frees the host call. */
PB_API void pb_host_call_fail(pb_host_call *call, const char *type, const char *message);

/* ---- worker lifecycle ----------------------------------------------------- */

/* Workers start on a plugin's first call. This starts PLUGIN's now (NULL:
 * every plugin in the directory), has it import the plugin's modules (its
 * package, and those its exports and entry points name) as a first call,
 * so that the host's first call does not pay for them, and keeps it
 * running: after a crash it is restarted even when no call waits.
 * Asynchronous; returns 0 or -ENOENT. */
PB_API int pb_supervisor_start(pb_supervisor *sup, const char *plugin);
/* The function name of that first call, PB_WARM_FUNCTION: pb_call(sup,
 * plugin, PB_WARM_FUNCTION, ...) returns null once the plugin is imported,
 * or fails with the plugin's import error. pb_supervisor_warm does it. */
#define PB_WARM_FUNCTION "<warm>"
PB_API int pb_supervisor_warm(pb_supervisor *sup, const char *plugin, pb_error **err);
/* Stop PLUGIN's worker once its calls are done (Shutdown, then SIGKILL
 * after a grace period); a later call starts it again. */
PB_API int pb_supervisor_stop(pb_supervisor *sup, const char *plugin);
/* Stop a worker that has had no call for `seconds` (0: never, the default). */
PB_API int pb_supervisor_set_idle_timeout(pb_supervisor *sup, double seconds);
/* After a crash a worker is started again after `backoff` seconds, doubling
 * with each crash up to `backoff_max`. `max_crashes` crashes within
 * `window` seconds mark the plugin failed: its calls end at once with
 * PB_ERROR_UNAVAILABLE until `window` seconds have passed or
 * pb_supervisor_reset. Defaults: 5 crashes in 60 s, backoff 0.1 s to 10 s. */
PB_API int pb_supervisor_set_restart(pb_supervisor *sup, unsigned max_crashes, double window,
                                     double backoff, double backoff_max);
/* Forget PLUGIN's crashes and its failed mark. */
PB_API int pb_supervisor_reset(pb_supervisor *sup, const char *plugin);
/* What PLUGIN's worker is doing: "stopped", "starting", "ready", "busy",
 * "stopping", "backoff" or "failed"; NULL for an unknown plugin. */
PB_API const char *pb_supervisor_plugin_state(pb_supervisor *sup, const char *plugin);
/* Stop taking calls (new ones end at once with PB_ERROR_UNAVAILABLE), give
 * the ones in flight `grace` seconds to finish, then fail what is left and
 * end every worker. Asynchronous: dispatch until pb_supervisor_finished. */
PB_API void pb_supervisor_shutdown(pb_supervisor *sup, double grace);
/* True once a shutdown has ended every call and reaped every worker. */
PB_API int pb_supervisor_finished(const pb_supervisor *sup);

/* ---- plugins installed, replaced, removed ------------------------------------ */

/* A plugin directory appeared under PLUGINS, was replaced by another (an
 * upgrade, a downgrade or a reinstall: plugbox install over it), or went
 * away (plugbox remove). Edits inside a plugin's directory are not such
 * changes. */
typedef enum pb_plugin_change {
	PB_PLUGIN_INSTALLED = 1,
	PB_PLUGIN_REPLACED = 2,
	PB_PLUGIN_REMOVED = 3,
} pb_plugin_change;
typedef void (*pb_change_fn)(void *userdata, const char *plugin, pb_plugin_change change);
/* fn(userdata, plugin, change) for each change from now on, called from
 * within pb_supervisor_dispatch, a call or pb_supervisor_generation (the
 * supervisor notices changes as its loop runs); it must not call the
 * supervisor. NULL: no callback. */
PB_API void pb_supervisor_set_change_callback(pb_supervisor *sup, pb_change_fn fn, void *userdata);
/* How many such changes the supervisor has seen since it was made, up to
 * date when this returns (it reads what inotify holds, without waiting): a
 * registry built from the plugin list at generation G is stale once this
 * is not G. */
PB_API uint64_t pb_supervisor_generation(pb_supervisor *sup);

/* ---- start-up and speed ---------------------------------------------------- */

/* How workers start.
 * PB_SPAWN_EXEC (the default): every worker is a fresh exec of
 *   plugbox-worker, with its own address layout (ASLR) and hash secret.
 * PB_SPAWN_FORK_SERVER: a fork-server, started once, holds an interpreter
 *   initialised with the standard library only and forks each worker from
 *   it; the child enters the plugin's jail and sandbox before it reads a
 *   byte of the plugin. Starts are several times faster and idle workers
 *   share most of their memory, but every worker shares the fork-server's
 *   address layout and hash secret (README: Performance).
 * PB_SPAWN_ZYGOTE: each plugin's first worker is exec'd, imports the
 *   plugin and becomes its zygote, which forks the plugin's further
 *   workers with the plugin already imported. They share the zygote's
 *   address layout and hash secret: one plugin's, never another's.
 * PB_SPAWN_SHARED_ZYGOTE: the same, but each plugin's zygote is cloned
 *   from the fork-server instead of exec'd: about half the memory per
 *   plugin, and, as under PB_SPAWN_FORK_SERVER, one address layout and
 *   hash secret across every plugin (docs/security.md). */
typedef enum pb_spawn_mode {
	PB_SPAWN_EXEC = 0,
	PB_SPAWN_FORK_SERVER = 1,
	PB_SPAWN_ZYGOTE = 2,
	PB_SPAWN_SHARED_ZYGOTE = 3,
} pb_spawn_mode;
PB_API int pb_supervisor_set_spawn_mode(pb_supervisor *sup, pb_spawn_mode mode);
/* The most workers one plugin may have at once, whatever its policy's
 * `@replicas N` asks for (1 to 64; default 8). Replicas share the plugin's
 * queue, calls start in the order they were made, and each worker runs one
 * call at a time; in-memory state is per worker. */
PB_API int pb_supervisor_set_max_replicas(pb_supervisor *sup, unsigned n);
/* The root of the per-plugin bytecode caches: DIR/NAME holds plugin NAME's
 * compiled modules, written only by a sandboxed compiler and read-only to
 * the plugin's workers. NULL turns caching off. Default: PLUGINS/.plugbox/cache
 * (off when it cannot be created). A root anyone but this process's user
 * may write is not used. Set it before the first worker starts: a change
 * takes effect once no cache is being built. */
PB_API int pb_supervisor_set_bytecode_cache(pb_supervisor *sup, const char *dir);
/* The pid of PLUGIN's current worker (with replicas, its oldest), or -1 when it has none. */
PB_API int pb_supervisor_plugin_pid(pb_supervisor *sup, const char *plugin);

/* ---- counting and watching workers ------------------------------------------- */

/* What pb_supervisor_plugin_stat counts for a plugin, since the supervisor
 * was made. */
typedef enum pb_stat {
	PB_STAT_STARTS = 1,         /* workers started */
	PB_STAT_RESTARTS = 2,       /* of those, started after the one before crashed */
	PB_STAT_CRASHES = 3,        /* workers that ended unasked (violations, limits, timeouts, protocol) */
	PB_STAT_VIOLATIONS = 4,     /* of those, stopped by the sandbox */
	PB_STAT_OUTPUT_DROPPED = 5, /* lines of output and log records the meters turned away */
	PB_STAT_HOST_DENIED = 6,    /* host calls its policy does not grant */
	PB_STAT_CPU_SECONDS = 7,    /* CPU time of its workers, the live one's so far included */
	PB_STAT_PEAK_RSS_BYTES = 8, /* the largest peak resident memory of any of its workers */
} pb_stat;
/* 0 and *value; a plugin the supervisor has not met yet counts 0.
 * -ENOENT for a name that is not a plugin name, -EINVAL for another stat. */
PB_API int pb_supervisor_plugin_stat(pb_supervisor *sup, const char *plugin, pb_stat stat, double *value);

/* What happens to workers, as it happens. */
typedef enum pb_event_kind {
	PB_EVENT_SPAWN = 1,       /* a worker started */
	PB_EVENT_EXIT = 2,        /* a worker ended as asked (stop, idle, shutdown) */
	PB_EVENT_CRASH = 3,       /* a worker ended unasked: a signal, a limit, a timeout */
	PB_EVENT_VIOLATION = 4,   /* the sandbox stopped a worker */
	PB_EVENT_RESTART = 5,     /* a worker started after the one before crashed (after its SPAWN) */
	PB_EVENT_HOST_DENIED = 6, /* a plugin called a host function its policy does not grant */
	PB_EVENT_PROTOCOL = 7,    /* a worker broke the protocol and was ended */
} pb_event_kind;
/* message: one line saying what happened (it may quote the plugin);
 * err: for CRASH, VIOLATION and PROTOCOL the error its calls got (the
 * syscall, rule and policy file:line of a violation), else NULL. Called
 * from inside the supervisor's loop, like the output function: it must
 * not call back into the supervisor. */
typedef void (*pb_event_fn)(void *userdata, const char *plugin, pb_event_kind kind, int pid, const char *message,
                            const pb_error *err);
PB_API void pb_supervisor_set_event_callback(pb_supervisor *sup, pb_event_fn fn, void *userdata);

/* ---- errors --------------------------------------------------------------- */

PB_API pb_error_kind pb_error_get_kind(const pb_error *e);
PB_API const char *pb_error_kind_name(pb_error_kind kind);
PB_API const char *pb_error_get_plugin(const pb_error *e);
PB_API const char *pb_error_get_type(const pb_error *e); /* Python type, or "" */
PB_API const char *pb_error_get_message(const pb_error *e);
PB_API const char *pb_error_get_traceback(const pb_error *e); /* Python traceback, or "" */
/* For PB_ERROR_VIOLATION: the syscall's name ("ptrace") and the policy rule
 * that decided, as in the message ("'@default kill' at FILE:LINE ..."); ""
 * for other errors and when the worker was killed without a report. */
PB_API const char *pb_error_get_syscall(const pb_error *e);
PB_API const char *pb_error_get_rule(const pb_error *e);
/* For PB_ERROR_VIOLATION with the worker's report: its six raw arguments go
 * to args and 6 is returned; 0 (args untouched) otherwise. */
PB_API size_t pb_error_get_syscall_args(const pb_error *e, uint64_t args[6]);
/* Where the rule that decided is written: the policy file's path, and its
 * line in *line (if line is not NULL); "" and 0 for a built-in rule and
 * for other errors. */
PB_API const char *pb_error_get_policy_file(const pb_error *e, unsigned *line);
PB_API void pb_error_free(pb_error *e);

/* ---- values ---------------------------------------------------------------- */

/* A value is null, bool, int (64-bit), float, string (UTF-8), bytes, list
 * or map (any keys). JSON notation as in README.md ("$bytes", "$float",
 * "$map"). pb_value_parse_json sets *why (free it) to a one-line reason on
 * failure. A string may contain U+0000 (JSON "\u0000", a Python str with
 * "\0"): the *_len functions build and read such strings; the C-string
 * functions refuse them (NULL) rather than cut them short. */
typedef enum pb_value_kind {
	PB_VALUE_NULL = 1,
	PB_VALUE_BOOL,
	PB_VALUE_INT,
	PB_VALUE_FLOAT,
	PB_VALUE_STRING,
	PB_VALUE_BYTES,
	PB_VALUE_LIST,
	PB_VALUE_MAP,
} pb_value_kind;

PB_API pb_value *pb_value_parse_json(const char *json, char **why);
PB_API int pb_value_print_json(const pb_value *v, FILE *out);
/* The same as a malloc'd string (free it); NULL on failure. */
PB_API char *pb_value_to_json(const pb_value *v);
PB_API void pb_value_destroy(pb_value *v);

/* Building: NULL when out of memory (or a string that is not UTF-8). */
PB_API pb_value *pb_value_new_null(void);
PB_API pb_value *pb_value_new_bool(int b);
PB_API pb_value *pb_value_new_int(int64_t i);
PB_API pb_value *pb_value_new_float(double d);
PB_API pb_value *pb_value_new_string(const char *s);                 /* copied */
PB_API pb_value *pb_value_new_string_len(const char *s, size_t len); /* copied; may hold U+0000 */
PB_API pb_value *pb_value_new_bytes(const void *data, size_t len);   /* copied */
PB_API pb_value *pb_value_new_list(void);
PB_API pb_value *pb_value_new_map(void);
/* Take ownership of item (key and value) on success; 0, -EINVAL (not a
 * list / map) or -ENOMEM (then the caller still owns them). */
PB_API int pb_value_list_append(pb_value *list, pb_value *item);
PB_API int pb_value_map_set(pb_value *map, pb_value *key, pb_value *value);

/* Reading (borrowed results, valid while v lives). */
PB_API pb_value_kind pb_value_get_kind(const pb_value *v);
PB_API int pb_value_get_bool(const pb_value *v);           /* 0 unless a true bool */
PB_API int64_t pb_value_get_int(const pb_value *v);        /* 0 unless an int */
PB_API double pb_value_get_float(const pb_value *v);       /* 0 unless a float */
PB_API const char *pb_value_get_string(const pb_value *v); /* NULL unless a string without U+0000 */
/* Any string: its bytes, *len of them (a NUL follows them); NULL unless a string. */
PB_API const char *pb_value_get_string_len(const pb_value *v, size_t *len);
PB_API const void *pb_value_get_bytes(const pb_value *v, size_t *len); /* NULL unless bytes */
PB_API size_t pb_value_list_length(const pb_value *v);                 /* 0 unless a list */
PB_API const pb_value *pb_value_list_get(const pb_value *v, size_t i);
PB_API size_t pb_value_map_length(const pb_value *v); /* 0 unless a map */
/* The i-th entry of a map: its value, with its key in *key. */
PB_API const pb_value *pb_value_map_entry(const pb_value *v, size_t i, const pb_value **key);
PB_API const pb_value *pb_value_map_get(const pb_value *v, const char *key); /* string keys */

#ifdef __cplusplus
}
#endif
#endif
