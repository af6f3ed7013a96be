/* _core.h - shared by the parts of the extension plugbox._core:
 * _core.c (the module, the Supervisor type, settings, lifecycle),
 * _owner.c (who is inside the library; errors as exceptions),
 * _plugins.c (listings, describe, discovery, hooks),
 * _calls.c (calls, synchronous and asynchronous, and the loop),
 * _hostcall.c (host functions and plugin output: the library's callbacks
 * into Python) and _values.c (Python objects <-> pb_value).
 *
 * Three rules shape the extension:
 *
 * - The library belongs to one thread at a time, must not be re-entered from
 *   its output callback, and must not be freed from inside its own loop. The
 *   Python layer serializes with a lock; pbpy_enter enforces the same rules
 *   again, because a rule broken here is a crash, not an exception.
 * - Every library callback runs inside some library function we called, on
 *   the same thread, with the GIL released by us: PyGILState_Ensure takes it
 *   back. An exception cannot cross the C library: an ordinary one escaping
 *   a callback goes to sys.unraisablehook; a KeyboardInterrupt or SystemExit
 *   is kept and raised when the library returns to us.
 * - Every host call is answered exactly once: by the Python layer, else by
 *   the HostCall object's destructor, else by close() before the library's
 *   supervisor is freed.
 */
#ifndef PLUGBOX_PY_CORE_H
#define PLUGBOX_PY_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <plugbox.h>

/* The deepest value a call may carry: the library refuses arguments and host
 * results deeper than this (a scalar is 1 level, a list of scalars 2). */
#define PBPY_MAX_DEPTH 63

typedef struct HostCallObject HostCallObject;

typedef struct {
	PyObject_HEAD
	        pb_supervisor *sup; /* NULL once closed */
	PyObject *plugins_dir;      /* str, for repr */
	PyObject *output;           /* callable(plugin, stream, line), or NULL: the library's default */
	PyObject *log;              /* callable(plugin, call_id, level, logger, message, exc_text), or NULL: lines */
	PyObject *on_change;        /* callable(plugin, change), or NULL */
	PyObject *functions;        /* dict: host function name -> handler(HostCall) */
	HostCallObject *live;       /* host calls handed to Python and not yet answered */
	pb_host_call **orphans;     /* dropped by a thread that did not own the supervisor */
	size_t norphans, corphans;
	PyObject *deferred[3]; /* a BaseException caught in a callback: type, value, traceback */
	long pid;              /* the process that made it: a forked child must not touch it */
	unsigned long owner;   /* the thread inside the library while busy > 0 */
	int busy;
	int in_output;
	int closing;
} SupObject;

struct HostCallObject {
	PyObject_HEAD
	        SupObject *owner; /* strong */
	pb_host_call *call;       /* NULL once answered */
	PyObject *plugin, *name, *args, *kwargs;
	HostCallObject *prev, *next; /* in owner->live while unanswered */
};

/* ---- _owner.c ---- */
/* A library function that may do work (spawn, reap, run callbacks): the
 * GIL is released around it. */
#define UNLOCKED(stmt)                       \
	do {                                 \
		Py_BEGIN_ALLOW_THREADS stmt; \
		Py_END_ALLOW_THREADS         \
	} while (0)
int pbpy_enter(SupObject *self);
void pbpy_leave(SupObject *self);
void pbpy_drain_orphans(SupObject *self);
/* An exception escaped into a library callback: report or keep it. */
void pbpy_callback_failed(SupObject *self, PyObject *where);
/* Raise what a callback kept: -1 then, else 0. */
int pbpy_raise_deferred(SupObject *self);
/* The Python exception (plugbox.Error subclass) for a library error. */
PyObject *pbpy_error_object(const pb_error *e);
/* Raise plugbox's exception of kind KIND ("bad_request", "not_found", ...). */
PyObject *pbpy_raise_error(const char *kind, const char *plugin, const char *message);
/* Set `err` (a new exception instance) as the current exception. */
void pbpy_set_error(PyObject *exc);
/* OSError for a negative errno r, with the library's message. */
PyObject *pbpy_os_error(int r, const char *message);
/* Leave the library; None, or NULL with what a callback kept raised. */
PyObject *pbpy_done_none(SupObject *self);
/* plugbox._core._set_error_factory(fn). */
PyObject *pbpy_set_error_factory(PyObject *module, PyObject *fn);
/* ---- _plugins.c ---- */
PyObject *pbpy_sup_plugins(SupObject *self, PyObject *unused);
PyObject *pbpy_sup_describe(SupObject *self, PyObject *arg);
PyObject *pbpy_sup_discover(SupObject *self, PyObject *noargs);
PyObject *pbpy_sup_hook(SupObject *self, PyObject *args);
PyObject *pbpy_sup_hook_start(SupObject *self, PyObject *args);

/* ---- _calls.c ---- */
/* A call as pb_call_start takes it, built from Python arguments. */
struct pbpy_spec {
	pb_call_spec spec;
	pb_value **args;
	pb_value **kwvalues;
	const char **kwnames;
	size_t nargs, nkw;
};
/* plugin and function are str (plugin may be NULL for a hook), args a
 * tuple, kwargs a dict or None, all kept alive by the caller while the
 * spec is used; timeout 0 means the supervisor's. */
int pbpy_spec_build(struct pbpy_spec *s, PyObject *plugin, PyObject *function, PyObject *args,
                    PyObject *kwargs, double timeout);
void pbpy_spec_free(struct pbpy_spec *s);
const char *pbpy_utf8_name(PyObject *o, const char *what);
PyObject *pbpy_sup_call(SupObject *self, PyObject *args);
PyObject *pbpy_sup_call_start(SupObject *self, PyObject *args);
PyObject *pbpy_sup_dispatch(SupObject *self, PyObject *args);
PyObject *pbpy_sup_cancel(SupObject *self, PyObject *arg);

/* ---- _hostcall.c ---- */
extern PyTypeObject PbPy_HostCallType;
void pbpy_host_trampoline(void *userdata, pb_host_call *call);
void pbpy_output_trampoline(void *userdata, const char *plugin, pb_stream stream, const char *line);
void pbpy_log_trampoline(void *userdata, const char *plugin, uint64_t call_id, int level, const char *logger,
                         const char *message, const char *exc_text);
/* Take the library handle out of an unanswered host call (NULL if answered). */
pb_host_call *pbpy_hostcall_take(HostCallObject *hc);
int pbpy_hostcall_init_streams(void);

/* ---- _values.c ---- */
/* Where a value goes, for error messages: "argument 2", "keyword argument
 * 'x'", "result of host function 'add'". index 0 and name NULL are left out. */
struct pbpy_where {
	const char *what;
	Py_ssize_t index;
	const char *name;
};

/* Python -> pb_value (owned by the caller). NULL with an exception set:
 * TypeError for an object that cannot be sent, OverflowError for an int
 * outside 64 bits, ValueError for a str with NUL or surrogates or a value
 * nested too deeply; the message starts with `where` and the position. */
pb_value *pbpy_to_value(PyObject *obj, const struct pbpy_where *where);

/* pb_value -> Python: maps become dicts (list keys become tuples), lists
 * lists. New reference, or NULL with an exception set. */
PyObject *pbpy_from_value(const pb_value *v);

#endif
