/* _plugins.c - part of plugbox._core: the Supervisor's methods about plugins
 * rather than calls: their names, a worker's Hello (describe), the
 * sandboxed discovery scan, and hooks (an entry-point group called in every
 * plugin, synchronously or with a callback).
 */
#include "config.h"

#include "_core.h"


/* ---- plugins ---------------------------------------------------------------------- */

PyObject *pbpy_sup_plugins(SupObject *self, PyObject *unused)
{
	char **names;
	size_t n;
	int r;

	(void)unused;
	if (pbpy_enter(self) < 0)
		return NULL;
	/* skipped entries are reported to the output function */
	UNLOCKED(r = pb_supervisor_plugins(self->sup, &names, &n));
	pbpy_leave(self);
	if (pbpy_raise_deferred(self) < 0) {
		if (r == 0)
			pb_strv_free(names, n);
		return NULL;
	}
	if (r < 0) {
		errno = -r;
		return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, self->plugins_dir);
	}
	PyObject *list = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; list && i < n; i++) {
		PyObject *s = PyUnicode_DecodeFSDefault(names[i]);
		if (!s)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, (Py_ssize_t)i, s);
	}
	pb_strv_free(names, n);
	return list;
}

PyObject *pbpy_sup_describe(SupObject *self, PyObject *arg)
{
	const char *p = pbpy_utf8_name(arg, "the plugin name");
	pb_value *info = NULL;
	pb_error *err = NULL;
	PyObject *r = NULL;

	if (!p || pbpy_enter(self) < 0)
		return NULL;
	UNLOCKED(pb_describe(self->sup, p, &info, &err));
	pbpy_leave(self);
	if (pbpy_raise_deferred(self) < 0) {
		/* nothing to return it to */
	} else if (err) {
		PyObject *exc = pbpy_error_object(err);
		if (exc)
			pbpy_set_error(exc);
	} else if (info) {
		r = pbpy_from_value(info);
	} else {
		PyErr_NoMemory();
	}
	pb_value_destroy(info);
	pb_error_free(err);
	return r;
}

/* discover() -> [dict]: pb_supervisor_discover (no worker starts). */
PyObject *pbpy_sup_discover(SupObject *self, PyObject *noargs)
{
	pb_value *v = NULL;
	PyObject *list = NULL;
	int r;

	(void)noargs;
	if (pbpy_enter(self) < 0)
		return NULL;
	UNLOCKED(r = pb_supervisor_discover(self->sup, &v));
	pbpy_leave(self);
	if (pbpy_raise_deferred(self) < 0) {
		/* nothing to return it to */
	} else if (r == -ENOMEM) {
		PyErr_NoMemory();
	} else if (r < 0) {
		pbpy_os_error(r, pb_supervisor_strerror(self->sup));
	} else {
		list = pbpy_from_value(v);
	}
	pb_value_destroy(v);
	return list;
}

/* [(plugin, name, value, error)] of a hook's answers. */
static PyObject *hook_rows(const pb_hook_results *results)
{
	size_t n = pb_hook_results_count(results);
	PyObject *list = PyList_New((Py_ssize_t)n);

	for (size_t i = 0; list && i < n; i++) {
		const pb_error *e = pb_hook_result_error(results, i);
		PyObject *value = e ? Py_NewRef(Py_None) : pbpy_from_value(pb_hook_result_value(results, i));
		PyObject *error = e ? pbpy_error_object(e) : Py_NewRef(Py_None);
		PyObject *row = value && error ? Py_BuildValue("(ssOO)", pb_hook_result_plugin(results, i),
		                                               pb_hook_result_name(results, i), value, error)
		                               : NULL;
		Py_XDECREF(value);
		Py_XDECREF(error);
		if (!row)
			Py_CLEAR(list);
		else
			PyList_SET_ITEM(list, (Py_ssize_t)i, row);
	}
	return list;
}

/* A hook's request: its spec (kept until the hook ends) and options. */
struct hook_req {
	struct pbpy_spec s;
	pb_hook_options o;
	const char **plugins;
};

static void hook_req_free(struct hook_req *q)
{
	pbpy_spec_free(&q->s);
	PyMem_Free(q->plugins);
}

/* group, args, kwargs, timeout, flags, order, plugins (a list of str or
 * None); the str objects stay alive while the caller holds the list. */
static int hook_req_build(struct hook_req *q, PyObject *args, PyObject **callback, const char **group)
{
	PyObject *g, *cargs, *kwargs, *plugins;
	double timeout;
	unsigned flags;
	int order;
	int ok = callback ? PyArg_ParseTuple(args, "UO!OdIiOO:hook_start", &g, &PyTuple_Type, &cargs, &kwargs, &timeout,
	                                     &flags, &order, &plugins, callback)
	                  : PyArg_ParseTuple(args, "UO!OdIiO:hook", &g, &PyTuple_Type, &cargs, &kwargs, &timeout,
	                                     &flags, &order, &plugins);

	memset(q, 0, sizeof(*q));
	if (!ok || !(*group = pbpy_utf8_name(g, "the group")))
		return -1;
	if (plugins != Py_None) {
		if (!PyList_Check(plugins)) {
			PyErr_SetString(PyExc_TypeError, "plugins must be a list of str");
			return -1;
		}
		Py_ssize_t n = PyList_GET_SIZE(plugins);
		if (!(q->plugins = PyMem_Calloc((size_t)n + 1, sizeof(*q->plugins)))) {
			PyErr_NoMemory();
			return -1;
		}
		for (Py_ssize_t i = 0; i < n; i++)
			if (!(q->plugins[i] = pbpy_utf8_name(PyList_GET_ITEM(plugins, i), "a plugin name")))
				return -1;
		q->o.plugins = q->plugins;
		q->o.nplugins = (size_t)n;
	}
	q->o.flags = flags;
	q->o.order = (pb_hook_order)order;
	return pbpy_spec_build(&q->s, NULL, NULL, cargs, kwargs, timeout);
}

/* A failed pb_hook_ex / pb_hook_start as an exception: a bad request,
 * an unknown group or plugin (LookupError), or the directory. */
static void hook_error(SupObject *self, int r)
{
	if (r == -ENOMEM)
		PyErr_NoMemory();
	else if (r == -EINVAL)
		pbpy_raise_error("bad_request", "", pb_supervisor_strerror(self->sup));
	else if (r == -ENOENT)
		pbpy_raise_error("not_found", "", pb_supervisor_strerror(self->sup));
	else
		pbpy_os_error(r, pb_supervisor_strerror(self->sup));
}

/* hook(group, args, kwargs, timeout, flags, order, plugins) -> [(plugin, name, value, error)] */
PyObject *pbpy_sup_hook(SupObject *self, PyObject *args)
{
	struct hook_req q;
	const char *g;
	PyObject *list = NULL;
	pb_hook_results *results = NULL;
	int r;

	if (hook_req_build(&q, args, NULL, &g) < 0 || pbpy_enter(self) < 0) {
		hook_req_free(&q);
		return NULL;
	}
	UNLOCKED(r = pb_hook_ex(self->sup, g, &q.s.spec, &q.o, &results));
	hook_req_free(&q);
	pbpy_leave(self);
	if (pbpy_raise_deferred(self) < 0)
		goto out;
	if (r < 0) {
		hook_error(self, r);
		goto out;
	}
	list = hook_rows(results);
out:
	pb_hook_results_free(results);
	return list;
}

/* An asynchronous hook: callback(rows, error) runs exactly once. */
struct async_hook {
	struct hook_req q;
	PyObject *callback;
	SupObject *self; /* borrowed: the supervisor outlives its hooks */
};

static void async_hook_done(void *data, pb_hook_results *results, int status)
{
	struct async_hook *h = data;
	PyGILState_STATE gil = PyGILState_Ensure();
	PyObject *rows = status == 0 ? hook_rows(results) : NULL, *error = NULL, *r = NULL;

	if (!rows) {
		PyObject *type, *tb;
		if (!PyErr_Occurred())
			PyErr_NoMemory();
		PyErr_Fetch(&type, &error, &tb);
		PyErr_NormalizeException(&type, &error, &tb);
		Py_XDECREF(type);
		Py_XDECREF(tb);
	}
	r = PyObject_CallFunctionObjArgs(h->callback, rows ? rows : Py_None, error ? error : Py_None, NULL);
	if (!r)
		pbpy_callback_failed(h->self, h->callback);
	Py_XDECREF(r);
	Py_XDECREF(rows);
	Py_XDECREF(error);
	pb_hook_results_free(results);
	hook_req_free(&h->q);
	Py_DECREF(h->callback);
	PyMem_Free(h);
	PyGILState_Release(gil);
}

/* hook_start(group, args, kwargs, timeout, flags, order, plugins, callback) */
PyObject *pbpy_sup_hook_start(SupObject *self, PyObject *args)
{
	struct async_hook *h = PyMem_Calloc(1, sizeof(*h));
	PyObject *callback;
	const char *g;
	int r;

	if (!h)
		return PyErr_NoMemory();
	if (hook_req_build(&h->q, args, &callback, &g) < 0 || !PyCallable_Check(callback)) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "callback must be callable");
		hook_req_free(&h->q);
		PyMem_Free(h);
		return NULL;
	}
	h->callback = Py_NewRef(callback);
	h->self = self;
	if (pbpy_enter(self) < 0) {
		hook_req_free(&h->q);
		Py_DECREF(h->callback);
		PyMem_Free(h);
		return NULL;
	}
	/* done may run (and free h) inside pb_hook_start: h is not touched
	 * after a success. */
	UNLOCKED(r = pb_hook_start(self->sup, g, &h->q.s.spec, &h->q.o, async_hook_done, h));
	pbpy_leave(self);
	if (r < 0) {
		hook_req_free(&h->q);
		Py_DECREF(h->callback);
		PyMem_Free(h);
		hook_error(self, r);
		return NULL;
	}
	if (pbpy_raise_deferred(self) < 0)
		return NULL;
	Py_RETURN_NONE;
}
