/* _core.c - plugbox._core, the CPython binding of libplugbox: the module,
 * the Supervisor type, its settings and lifecycle. Ownership of the
 * library and errors are in _owner.c, plugin listings and hooks in
 * _plugins.c, calls in _calls.c, host functions and output in _hostcall.c,
 * values in _values.c; _core.h says what holds them together.
 *
 * The pure-Python layer (plugbox/__init__.py) is the public API. This keeps
 * to what needs C: owning the pb_supervisor, converting values, releasing
 * the GIL while the library works, and taking it back in its callbacks.
 */
#include "config.h"

#include "_core.h"


/* ---- the supervisor ------------------------------------------------------------- */

static int check_double(SupObject *self, int r)
{
	if (r < 0) {
		PyErr_SetString(PyExc_ValueError, pb_supervisor_strerror(self->sup));
		return -1;
	}
	return 0;
}

/* PyUnicode_FSConverter that takes None as "not given". */
static int fs_path_or_none(PyObject *arg, void *addr)
{
	if (arg == Py_None) {
		*(PyObject **)addr = NULL;
		return 1;
	}
	return PyUnicode_FSConverter(arg, addr);
}

static PyObject *Sup_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *names[] = { "plugins_dir", "policies_dir", "worker", "timeout", "idle_timeout", NULL };
	PyObject *plugins = NULL, *policies = NULL, *worker = NULL;
	double timeout = 60, idle = 0;
	SupObject *self = NULL;
	int r;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O&O&dd:Supervisor", names, PyUnicode_FSConverter, &plugins,
	                                 fs_path_or_none, &policies, fs_path_or_none, &worker,
	                                 &timeout, &idle))
		goto out;
	self = (SupObject *)type->tp_alloc(type, 0);
	if (self)
		self->pid = (long)getpid();
	if (!self || !(self->functions = PyDict_New()) ||
	    !(self->plugins_dir = PyUnicode_DecodeFSDefault(PyBytes_AS_STRING(plugins))))
		goto fail;
	UNLOCKED(r = pb_supervisor_new(PyBytes_AS_STRING(plugins), &self->sup));
	if (r < 0) {
		errno = -r;
		PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, self->plugins_dir);
		goto fail;
	}
	if (policies && pb_supervisor_set_policies(self->sup, PyBytes_AS_STRING(policies)) < 0) {
		pbpy_raise_error("config", "", pb_supervisor_strerror(self->sup));
		goto fail;
	}
	if (worker && pb_supervisor_set_worker(self->sup, PyBytes_AS_STRING(worker)) < 0) {
		PyErr_NoMemory();
		goto fail;
	}
	if (check_double(self, pb_supervisor_set_timeout(self->sup, timeout)) < 0 ||
	    check_double(self, pb_supervisor_set_idle_timeout(self->sup, idle)) < 0)
		goto fail;
	goto out;
fail:
	if (self && self->sup) {
		/* nothing ran yet: no warning, no callbacks */
		UNLOCKED(pb_supervisor_free(self->sup));
		self->sup = NULL;
	}
	Py_CLEAR(self);
out:
	Py_XDECREF(plugins);
	Py_XDECREF(policies);
	Py_XDECREF(worker);
	return (PyObject *)self;
}

/* Free the library's supervisor: host calls still in Python's hands are
 * failed first, then calls still pending end through their callbacks (as
 * `unavailable`) and every worker is reaped. */
static int sup_close(SupObject *self)
{
	pb_supervisor *sup = self->sup;

	if (!sup)
		return 0;
	if (self->pid != (long)getpid()) {
		/* a forked child's copy: the workers are the parent's to end */
		self->sup = NULL;
		return 0;
	}
	if (self->busy) {
		PyErr_SetString(PyExc_RuntimeError, "the supervisor cannot be closed from inside one of its callbacks");
		return -1;
	}
	self->closing = 1;
	while (self->live)
		pb_host_call_fail(pbpy_hostcall_take(self->live), "RuntimeError", "the host closed the supervisor");
	pbpy_drain_orphans(self);
	self->owner = PyThread_get_thread_ident();
	self->busy++;
	UNLOCKED(pb_supervisor_free(sup));
	self->busy--;
	self->sup = NULL;
	PyMem_Free(self->orphans);
	self->orphans = NULL;
	self->norphans = self->corphans = 0;
	/* the handlers and the output callback usually refer back to the host */
	PyDict_Clear(self->functions);
	Py_CLEAR(self->output);
	Py_CLEAR(self->log);
	Py_CLEAR(self->on_change);
	return pbpy_raise_deferred(self);
}

static PyObject *Sup_close(SupObject *self, PyObject *unused)
{
	(void)unused;
	if (sup_close(self) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static void Sup_finalize(SupObject *self)
{
	PyObject *type, *value, *tb;

	if (!self->sup)
		return;
	PyErr_Fetch(&type, &value, &tb);
	if (PyErr_ResourceWarning((PyObject *)self, 1, "unclosed plugbox supervisor %R", self->plugins_dir) < 0)
		PyErr_WriteUnraisable((PyObject *)self);
	if (sup_close(self) < 0)
		PyErr_WriteUnraisable((PyObject *)self);
	PyErr_Restore(type, value, tb);
}

static int Sup_traverse(SupObject *self, visitproc visit, void *arg)
{
	Py_VISIT(self->output);
	Py_VISIT(self->log);
	Py_VISIT(self->on_change);
	Py_VISIT(self->functions);
	for (int i = 0; i < 3; i++)
		Py_VISIT(self->deferred[i]);
	return 0;
}

static int Sup_clear(SupObject *self)
{
	/* only for an unreachable cycle, which tp_finalize has closed already */
	Py_CLEAR(self->output);
	Py_CLEAR(self->log);
	Py_CLEAR(self->on_change);
	if (self->functions)
		PyDict_Clear(self->functions);
	for (int i = 0; i < 3; i++)
		Py_CLEAR(self->deferred[i]);
	return 0;
}

static void Sup_dealloc(SupObject *self)
{
	if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
		return; /* resurrected */
	PyObject_GC_UnTrack(self);
	Py_CLEAR(self->output);
	Py_CLEAR(self->log);
	Py_CLEAR(self->on_change);
	Py_CLEAR(self->functions);
	Py_CLEAR(self->plugins_dir);
	for (int i = 0; i < 3; i++)
		Py_CLEAR(self->deferred[i]);
	PyMem_Free(self->orphans);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Sup_repr(SupObject *self)
{
	return PyUnicode_FromFormat("<plugbox._core.Supervisor %R%s>", self->plugins_dir, self->sup ? "" : " closed");
}

/* ---- settings --------------------------------------------------------------------- */

static PyObject *Sup_register(SupObject *self, PyObject *args)
{
	PyObject *name, *handler, *old;
	const char *n;

	if (!PyArg_ParseTuple(args, "UO:register", &name, &handler) || !(n = pbpy_utf8_name(name, "the name")))
		return NULL;
	if (!PyCallable_Check(handler)) {
		PyErr_SetString(PyExc_TypeError, "the handler must be callable");
		return NULL;
	}
	if (pbpy_enter(self) < 0)
		return NULL;
	old = PyDict_GetItemWithError(self->functions, name);
	Py_XINCREF(old);
	if (PyErr_Occurred() || PyDict_SetItem(self->functions, name, handler) < 0) {
		Py_XDECREF(old);
		pbpy_leave(self);
		return NULL;
	}
	int r = pb_supervisor_register(self->sup, n, pbpy_host_trampoline, self);
	if (r < 0) {
		if (old)
			PyDict_SetItem(self->functions, name, old);
		else
			PyDict_DelItem(self->functions, name);
		if (r == -ENOMEM)
			PyErr_NoMemory();
		else
			PyErr_SetString(PyExc_ValueError, pb_supervisor_strerror(self->sup));
	}
	Py_XDECREF(old);
	pbpy_leave(self);
	if (r < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *Sup_set_output(SupObject *self, PyObject *fn)
{
	if (fn != Py_None && !PyCallable_Check(fn)) {
		PyErr_SetString(PyExc_TypeError, "output must be callable or None");
		return NULL;
	}
	if (pbpy_enter(self) < 0)
		return NULL;
	Py_XSETREF(self->output, fn == Py_None ? NULL : Py_NewRef(fn));
	if (self->output)
		pb_supervisor_set_output(self->sup, pbpy_output_trampoline, self);
	else
		pb_supervisor_set_output(self->sup, NULL, NULL);
	pbpy_leave(self);
	Py_RETURN_NONE;
}

static PyObject *Sup_set_log(SupObject *self, PyObject *fn)
{
	if (fn != Py_None && !PyCallable_Check(fn)) {
		PyErr_SetString(PyExc_TypeError, "the log function must be callable or None");
		return NULL;
	}
	if (pbpy_enter(self) < 0)
		return NULL;
	Py_XSETREF(self->log, fn == Py_None ? NULL : Py_NewRef(fn));
	if (self->log)
		pb_supervisor_set_log(self->sup, pbpy_log_trampoline, self);
	else
		pb_supervisor_set_log(self->sup, NULL, NULL);
	pbpy_leave(self);
	Py_RETURN_NONE;
}

/* ---- plugins installed, replaced, removed ------------------------------------- */

static void change_trampoline(void *userdata, const char *plugin, pb_plugin_change change)
{
	static const char *const names[] = { [PB_PLUGIN_INSTALLED] = "installed",
		                             [PB_PLUGIN_REPLACED] = "upgraded",
		                             [PB_PLUGIN_REMOVED] = "removed" };
	SupObject *self = userdata;
	PyGILState_STATE gil = PyGILState_Ensure();
	PyObject *fn = self->on_change ? Py_NewRef(self->on_change) : NULL;

	if (fn && change >= PB_PLUGIN_INSTALLED && change <= PB_PLUGIN_REMOVED) {
		PyObject *r;
		self->in_output++;
		r = PyObject_CallFunction(fn, "ss", plugin, names[change]);
		self->in_output--;
		if (!r)
			pbpy_callback_failed(self, fn);
		Py_XDECREF(r);
	}
	Py_XDECREF(fn);
	PyGILState_Release(gil);
}

static PyObject *Sup_set_change_callback(SupObject *self, PyObject *fn)
{
	if (fn != Py_None && !PyCallable_Check(fn)) {
		PyErr_SetString(PyExc_TypeError, "the change callback must be callable or None");
		return NULL;
	}
	if (pbpy_enter(self) < 0)
		return NULL;
	Py_XSETREF(self->on_change, fn == Py_None ? NULL : Py_NewRef(fn));
	pb_supervisor_set_change_callback(self->sup, self->on_change ? change_trampoline : NULL, self);
	pbpy_leave(self);
	Py_RETURN_NONE;
}

static PyObject *Sup_generation(SupObject *self, PyObject *unused)
{
	uint64_t g;

	(void)unused;
	if (pbpy_enter(self) < 0)
		return NULL;
	UNLOCKED(g = pb_supervisor_generation(self->sup));
	pbpy_leave(self);
	if (pbpy_raise_deferred(self) < 0)
		return NULL;
	return PyLong_FromUnsignedLongLong((unsigned long long)g);
}

static PyObject *Sup_set_timeout(SupObject *self, PyObject *args)
{
	double t;
	if (!PyArg_ParseTuple(args, "d:set_timeout", &t) || pbpy_enter(self) < 0)
		return NULL;
	int r = check_double(self, pb_supervisor_set_timeout(self->sup, t));
	pbpy_leave(self);
	return r < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *Sup_set_spawn_mode(SupObject *self, PyObject *args)
{
	const char *mode;
	int r;
	if (!PyArg_ParseTuple(args, "s:set_spawn_mode", &mode))
		return NULL;
	pb_spawn_mode m = !strcmp(mode, "exec")            ? PB_SPAWN_EXEC
	                  : !strcmp(mode, "fork-server")   ? PB_SPAWN_FORK_SERVER
	                  : !strcmp(mode, "zygote")        ? PB_SPAWN_ZYGOTE
	                  : !strcmp(mode, "shared-zygote") ? PB_SPAWN_SHARED_ZYGOTE
	                                                   : (pb_spawn_mode)-1;
	if ((int)m < 0) {
		PyErr_Format(PyExc_ValueError, "spawn must be 'exec', 'fork-server', 'zygote' or 'shared-zygote', not %R",
		             PyTuple_GET_ITEM(args, 0));
		return NULL;
	}
	if (pbpy_enter(self) < 0)
		return NULL;
	UNLOCKED(r = pb_supervisor_set_spawn_mode(self->sup, m));
	(void)r; /* every mode here is valid */
	return pbpy_done_none(self);
}

static PyObject *Sup_set_max_replicas(SupObject *self, PyObject *args)
{
	unsigned int n;
	int r;
	if (!PyArg_ParseTuple(args, "I:set_max_replicas", &n) || pbpy_enter(self) < 0)
		return NULL;
	UNLOCKED(r = pb_supervisor_set_max_replicas(self->sup, n));
	if (check_double(self, r) < 0) {
		pbpy_leave(self);
		return NULL;
	}
	return pbpy_done_none(self);
}

static PyObject *Sup_set_idle_timeout(SupObject *self, PyObject *args)
{
	double t;
	int r;
	if (!PyArg_ParseTuple(args, "d:set_idle_timeout", &t) || pbpy_enter(self) < 0)
		return NULL;
	UNLOCKED(r = pb_supervisor_set_idle_timeout(self->sup, t));
	if (check_double(self, r) < 0) {
		pbpy_leave(self);
		return NULL;
	}
	return pbpy_done_none(self);
}

static PyObject *Sup_set_restart(SupObject *self, PyObject *args)
{
	unsigned int max_crashes;
	double window, backoff, backoff_max;
	if (!PyArg_ParseTuple(args, "Iddd:set_restart", &max_crashes, &window, &backoff, &backoff_max) ||
	    pbpy_enter(self) < 0)
		return NULL;
	int r = check_double(self, pb_supervisor_set_restart(self->sup, max_crashes, window, backoff, backoff_max));
	pbpy_leave(self);
	return r < 0 ? NULL : Py_NewRef(Py_None);
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static PyObject *Sup_start(SupObject *self, PyObject *args)
{
	PyObject *plugin = Py_None;
	const char *p = NULL;
	int r;

	if (!PyArg_ParseTuple(args, "|O:start", &plugin) ||
	    (plugin != Py_None && !(p = pbpy_utf8_name(plugin, "the plugin name"))) || pbpy_enter(self) < 0)
		return NULL;
	UNLOCKED(r = pb_supervisor_start(self->sup, p));
	if (r < 0) {
		pbpy_leave(self);
		if (r == -ENOMEM)
			return PyErr_NoMemory();
		if (!p) /* the plugins directory cannot be read */
			return pbpy_os_error(r, pb_supervisor_strerror(self->sup));
		return pbpy_raise_error("not_found", p, pb_supervisor_strerror(self->sup));
	}
	return pbpy_done_none(self);
}

/* stop and reset: -ENOENT means the supervisor never ran the plugin. */
static PyObject *by_name(SupObject *self, PyObject *arg, int (*fn)(pb_supervisor *, const char *))
{
	const char *p = pbpy_utf8_name(arg, "the plugin name");
	int r;

	if (!p || pbpy_enter(self) < 0)
		return NULL;
	UNLOCKED(r = fn(self->sup, p));
	PyObject *known = PyBool_FromLong(r == 0);
	PyObject *none = pbpy_done_none(self);
	if (!none) {
		Py_DECREF(known);
		return NULL;
	}
	Py_DECREF(none);
	return known;
}

static PyObject *Sup_stop(SupObject *self, PyObject *arg)
{
	return by_name(self, arg, pb_supervisor_stop);
}
static PyObject *Sup_reset(SupObject *self, PyObject *arg)
{
	return by_name(self, arg, pb_supervisor_reset);
}

static PyObject *Sup_state(SupObject *self, PyObject *arg)
{
	const char *p = pbpy_utf8_name(arg, "the plugin name");
	if (!p || pbpy_enter(self) < 0)
		return NULL;
	const char *state = pb_supervisor_plugin_state(self->sup, p);
	pbpy_leave(self);
	if (!state)
		Py_RETURN_NONE;
	return PyUnicode_FromString(state);
}

static PyObject *Sup_shutdown(SupObject *self, PyObject *args)
{
	double grace;
	if (!PyArg_ParseTuple(args, "d:shutdown", &grace) || pbpy_enter(self) < 0)
		return NULL;
	UNLOCKED(pb_supervisor_shutdown(self->sup, grace));
	return pbpy_done_none(self);
}

static PyObject *Sup_finished(SupObject *self, PyObject *unused)
{
	(void)unused;
	if (!self->sup)
		Py_RETURN_TRUE;
	return PyBool_FromLong(pb_supervisor_finished(self->sup));
}

static PyObject *Sup_fileno(SupObject *self, PyObject *unused)
{
	(void)unused;
	if (!self->sup) {
		PyErr_SetString(PyExc_RuntimeError, "the supervisor is closed");
		return NULL;
	}
	return PyLong_FromLong(pb_supervisor_get_fd(self->sup));
}

static PyObject *Sup_calls_pending(SupObject *self, PyObject *unused)
{
	(void)unused;
	return PyLong_FromSize_t(self->sup ? pb_supervisor_calls_pending(self->sup) : 0);
}

static PyObject *Sup_get_closed(SupObject *self, void *closure)
{
	(void)closure;
	return PyBool_FromLong(self->sup == NULL);
}

static PyObject *Sup_get_busy(SupObject *self, void *closure)
{
	(void)closure;
	return PyBool_FromLong(self->busy > 0 && self->owner == PyThread_get_thread_ident());
}

/* ---- the type and the module ------------------------------------------------------ */

static PyMethodDef Sup_methods[] = {
	{ "close", (PyCFunction)Sup_close, METH_NOARGS, "End every worker and free the supervisor." },
	{ "call", (PyCFunction)pbpy_sup_call, METH_VARARGS,
	  "call(plugin, function, args, kwargs, timeout) -> value; runs the loop until the call ends." },
	{ "call_start", (PyCFunction)pbpy_sup_call_start, METH_VARARGS,
	  "call_start(plugin, function, args, kwargs, timeout, callback): callback(value, error) runs\n"
	  "once, from inside a later dispatch() or call()." },
	{ "dispatch", (PyCFunction)pbpy_sup_dispatch, METH_VARARGS,
	  "dispatch(timeout_ms=0) -> number of calls that ended." },
	{ "fileno", (PyCFunction)Sup_fileno, METH_NOARGS, "The descriptor that polls readable when there is work." },
	{ "calls_pending", (PyCFunction)Sup_calls_pending, METH_NOARGS, "Calls made and not yet ended." },
	{ "register", (PyCFunction)Sup_register, METH_VARARGS, "register(name, handler): handler(HostCall)." },
	{ "set_output", (PyCFunction)Sup_set_output, METH_O, "set_output(fn or None): fn(plugin, stream, line)." },
	{ "set_log", (PyCFunction)Sup_set_log, METH_O,
	  "set_log(fn or None): fn(plugin, call_id, level, logger, message, exc_text) per log record." },
	{ "cancel", (PyCFunction)pbpy_sup_cancel, METH_O, "cancel(call_id) -> bool: cancel a pending call." },
	{ "set_timeout", (PyCFunction)Sup_set_timeout, METH_VARARGS, "Per-call deadline in seconds (0: none)." },
	{ "set_idle_timeout", (PyCFunction)Sup_set_idle_timeout, METH_VARARGS, "Stop idle workers (0: never)." },
	{ "set_spawn_mode", (PyCFunction)Sup_set_spawn_mode, METH_VARARGS,
	  "How workers start: 'exec' (the default) or 'fork-server'." },
	{ "set_max_replicas", (PyCFunction)Sup_set_max_replicas, METH_VARARGS,
	  "set_max_replicas(n): the most workers one plugin may have at once, whatever its @replicas (1-64)." },
	{ "set_restart", (PyCFunction)Sup_set_restart, METH_VARARGS,
	  "set_restart(max_crashes, window, backoff, backoff_max)" },
	{ "start", (PyCFunction)Sup_start, METH_VARARGS, "start(plugin=None): start and keep running." },
	{ "stop", (PyCFunction)Sup_stop, METH_O, "stop(plugin) -> False if the supervisor never ran it." },
	{ "reset", (PyCFunction)Sup_reset, METH_O, "reset(plugin) -> False if the supervisor never ran it." },
	{ "state", (PyCFunction)Sup_state, METH_O, "state(plugin) -> str, or None if never run." },
	{ "shutdown", (PyCFunction)Sup_shutdown, METH_VARARGS, "shutdown(grace): stop taking calls." },
	{ "finished", (PyCFunction)Sup_finished, METH_NOARGS, "True once a shutdown has ended everything." },
	{ "plugins", (PyCFunction)pbpy_sup_plugins, METH_NOARGS, "Names of the plugins, sorted." },
	{ "describe", (PyCFunction)pbpy_sup_describe, METH_O, "describe(plugin) -> dict (starts its worker)." },
	{ "set_change_callback", (PyCFunction)Sup_set_change_callback, METH_O,
	  "set_change_callback(fn or None): fn(plugin, 'installed' | 'upgraded' | 'removed')." },
	{ "generation", (PyCFunction)Sup_generation, METH_NOARGS,
	  "generation() -> int: plugins installed, replaced or removed so far." },
	{ "hook", (PyCFunction)pbpy_sup_hook, METH_VARARGS,
	  "hook(group, args, kwargs, timeout, flags, order, plugins) -> [(plugin, name, value, error)]" },
	{ "hook_start", (PyCFunction)pbpy_sup_hook_start, METH_VARARGS,
	  "hook_start(group, args, kwargs, timeout, flags, order, plugins, callback): callback(rows, error)\n"
	  "runs once, from inside a later dispatch() (or at once when nothing is to be called)." },
	{ "discover", (PyCFunction)pbpy_sup_discover, METH_NOARGS,
	  "discover() -> [dict]: every plugin's metadata from one sandboxed scan (no worker starts)." },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef Sup_getset[] = {
	{ "closed", (getter)Sup_get_closed, NULL, "True once closed", NULL },
	{ "busy", (getter)Sup_get_busy, NULL, "True inside one of its callbacks on this thread", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject SupType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	        .tp_name = "plugbox._core.Supervisor",
	.tp_basicsize = sizeof(SupObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "Supervisor(plugins_dir, policies_dir=None, worker=None, timeout=60.0, idle_timeout=0.0)\n\n"
	          "The library's supervisor; use plugbox.Supervisor.",
	.tp_new = Sup_new,
	.tp_dealloc = (destructor)Sup_dealloc,
	.tp_finalize = (destructor)Sup_finalize,
	.tp_traverse = (traverseproc)Sup_traverse,
	.tp_clear = (inquiry)Sup_clear,
	.tp_repr = (reprfunc)Sup_repr,
	.tp_methods = Sup_methods,
	.tp_getset = Sup_getset,
};

static PyMethodDef module_methods[] = {
	{ "_set_error_factory", pbpy_set_error_factory, METH_O,
	  "_set_error_factory(fn): fn(kind, plugin, type, message, traceback, syscall, rule) -> exception" },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef core_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "plugbox._core",
	.m_doc = "The C binding of libplugbox under the plugbox package.",
	.m_size = -1,
	.m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__core(void)
{
	PyObject *m;

	if (PyType_Ready(&SupType) < 0 || PyType_Ready(&PbPy_HostCallType) < 0 || pbpy_hostcall_init_streams() < 0)
		return NULL;
	if (!(m = PyModule_Create(&core_module)))
		return NULL;
	if (PyModule_AddType(m, &SupType) < 0 || PyModule_AddType(m, &PbPy_HostCallType) < 0 ||
	    PyModule_AddStringConstant(m, "__version__", PACKAGE_VERSION) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_DEPTH", PBPY_MAX_DEPTH) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
