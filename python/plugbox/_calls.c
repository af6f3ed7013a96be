/* _calls.c - calls into plugins: synchronous (the library's loop runs here,
 * the GIL released, until the call ends), asynchronous (a callback per
 * call, run from whichever library function this thread is in when the
 * call ends), and the loop itself for hosts that drive it (asyncio).
 */
#include "_core.h"

#include <errno.h>
#include <string.h>

void pbpy_spec_free(struct pbpy_spec *s)
{
	for (size_t i = 0; i < s->nargs; i++)
		pb_value_destroy(s->args[i]);
	for (size_t i = 0; i < s->nkw; i++)
		pb_value_destroy(s->kwvalues[i]);
	PyMem_Free(s->args);
	PyMem_Free(s->kwvalues);
	PyMem_Free(s->kwnames);
	memset(s, 0, sizeof(*s));
}

/* The library takes C strings: NUL inside a name would cut it short. */
const char *pbpy_utf8_name(PyObject *o, const char *what)
{
	Py_ssize_t len;
	const char *s;
	if (!PyUnicode_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be a str, not %s", what, Py_TYPE(o)->tp_name);
		return NULL;
	}
	if (!(s = PyUnicode_AsUTF8AndSize(o, &len)))
		return NULL;
	if ((size_t)len != strlen(s)) {
		PyErr_Format(PyExc_ValueError, "%s contains NUL", what);
		return NULL;
	}
	return s;
}

int pbpy_spec_build(struct pbpy_spec *s, PyObject *plugin, PyObject *function, PyObject *args,
                    PyObject *kwargs, double timeout)
{
	memset(s, 0, sizeof(*s));
	if ((plugin && !(s->spec.plugin = pbpy_utf8_name(plugin, "the plugin name"))) ||
	    (function && !(s->spec.function = pbpy_utf8_name(function, "the function name"))))
		return -1;
	if (!PyTuple_Check(args) || (kwargs != Py_None && !PyDict_Check(kwargs))) {
		PyErr_SetString(PyExc_TypeError, "arguments must be a tuple and keyword arguments a dict");
		return -1;
	}
	if (!(timeout >= 0) || timeout > 86400.0 * 365) {
		PyErr_SetString(PyExc_ValueError, "timeout must be more than 0 seconds and at most a year");
		return -1;
	}
	s->spec.timeout = timeout;
	Py_ssize_t n = PyTuple_GET_SIZE(args), nk = kwargs == Py_None ? 0 : PyDict_GET_SIZE(kwargs);
	s->args = PyMem_Calloc((size_t)n + 1, sizeof(*s->args));
	s->kwvalues = PyMem_Calloc((size_t)nk + 1, sizeof(*s->kwvalues));
	s->kwnames = PyMem_Calloc((size_t)nk + 1, sizeof(*s->kwnames));
	if (!s->args || !s->kwvalues || !s->kwnames) {
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		struct pbpy_where where = { "argument", i + 1, NULL };
		if (!(s->args[i] = pbpy_to_value(PyTuple_GET_ITEM(args, i), &where)))
			return -1;
		s->nargs++;
	}
	PyObject *key, *value;
	Py_ssize_t pos = 0;
	while (nk && PyDict_Next(kwargs, &pos, &key, &value)) {
		const char *name = pbpy_utf8_name(key, "a keyword argument's name");
		struct pbpy_where where = { "keyword argument", 0, name };
		if (!name || !(s->kwvalues[s->nkw] = pbpy_to_value(value, &where)))
			return -1;
		s->kwnames[s->nkw++] = name;
	}
	s->spec.args = s->args;
	s->spec.nargs = s->nargs;
	s->spec.kwnames = s->kwnames;
	s->spec.kwvalues = s->kwvalues;
	s->spec.nkwargs = s->nkw;
	return 0;
}

/* pb_call_start with the GIL released: it may spawn a worker, and it runs
 * no callback. */
static int start(SupObject *self, struct pbpy_spec *s, pb_call_done_fn done, void *data, uint64_t *id)
{
	int r;
	Py_BEGIN_ALLOW_THREADS
	        r = pb_call_start(self->sup, &s->spec, done, data, id);
	Py_END_ALLOW_THREADS if (r == -ENOMEM)
	        PyErr_NoMemory();
	else if (r < 0)
	        pbpy_raise_error("bad_request", s->spec.plugin, pb_supervisor_strerror(self->sup));
	return r;
}

/* A synchronous call's outcome. On the heap: if the wait is interrupted
 * (KeyboardInterrupt), the call goes on and its answer is dropped here. */
struct sync_outcome {
	int done, abandoned;
	pb_value *result;
	pb_error *err;
};

static void sync_done(void *data, uint64_t id, pb_value *result, pb_error *err)
{
	struct sync_outcome *o = data;
	(void)id;
	if (o->abandoned) {
		pb_value_destroy(result);
		pb_error_free(err);
		PyMem_RawFree(o);
		return;
	}
	o->done = 1;
	o->result = result;
	o->err = err;
}

static void outcome_free(struct sync_outcome *o)
{
	pb_value_destroy(o->result);
	pb_error_free(o->err);
	PyMem_RawFree(o);
}

/* Run the library's loop until o is done. 0, or -1 with an exception: a
 * signal handler raised, or a callback kept a KeyboardInterrupt; then the
 * call is abandoned (it runs on, its answer dropped). */
static int wait_for(SupObject *self, struct sync_outcome *o)
{
	while (!o->done) {
		int r;
		Py_BEGIN_ALLOW_THREADS
		        r = pb_supervisor_dispatch(self->sup, -1);
		Py_END_ALLOW_THREADS if (self->deferred[0]) break;
		if (r < 0 && r != -EINTR) {
			errno = -r;
			PyErr_SetFromErrno(PyExc_OSError);
			break;
		}
		/* epoll_wait returns on a signal: a pending Ctrl-C is raised now */
		if (!o->done && PyErr_CheckSignals() < 0)
			break;
	}
	if (o->done && !self->deferred[0])
		return 0;
	if (o->done)
		outcome_free(o);
	else
		o->abandoned = 1;
	if (self->deferred[0]) {
		PyErr_Clear();
		pbpy_raise_deferred(self);
	}
	return -1;
}

static PyObject *outcome_object(struct sync_outcome *o)
{
	PyObject *r = NULL;
	if (o->err) {
		PyObject *exc = pbpy_error_object(o->err);
		if (exc)
			pbpy_set_error(exc);
	} else {
		r = pbpy_from_value(o->result);
	}
	outcome_free(o);
	return r;
}

PyObject *pbpy_sup_call(SupObject *self, PyObject *args)
{
	PyObject *plugin, *function, *cargs, *kwargs;
	double timeout;
	struct pbpy_spec s;
	struct sync_outcome *o;
	int r;

	if (!PyArg_ParseTuple(args, "UUO!Od:call", &plugin, &function, &PyTuple_Type, &cargs, &kwargs, &timeout))
		return NULL;
	if (pbpy_spec_build(&s, plugin, function, cargs, kwargs, timeout) < 0) {
		pbpy_spec_free(&s);
		return NULL;
	}
	if (!(o = PyMem_RawCalloc(1, sizeof(*o)))) {
		pbpy_spec_free(&s);
		return PyErr_NoMemory();
	}
	if (pbpy_enter(self) < 0) {
		pbpy_spec_free(&s);
		PyMem_RawFree(o);
		return NULL;
	}
	r = start(self, &s, sync_done, o, NULL);
	pbpy_spec_free(&s);
	if (r < 0) {
		pbpy_leave(self);
		PyMem_RawFree(o);
		return NULL;
	}
	r = wait_for(self, o);
	pbpy_leave(self);
	return r < 0 ? NULL : outcome_object(o);
}

/* An asynchronous call: callback(value, error) runs exactly once. */
struct async_call {
	SupObject *self; /* borrowed: the supervisor outlives its calls (closing ends them all) */
	PyObject *callback;
};

static void async_done(void *data, uint64_t id, pb_value *result, pb_error *err)
{
	struct async_call *c = data;
	PyGILState_STATE gil = PyGILState_Ensure();
	PyObject *value = NULL, *error = NULL, *r = NULL;
	(void)id;

	if (err)
		error = pbpy_error_object(err);
	else
		value = pbpy_from_value(result);
	if (!value && !error) {
		/* the answer could not be made (MemoryError): the caller hears that */
		PyObject *type, *tb;
		PyErr_Fetch(&type, &error, &tb);
		PyErr_NormalizeException(&type, &error, &tb);
		Py_XDECREF(type);
		Py_XDECREF(tb);
	}
	if (value || error)
		r = PyObject_CallFunctionObjArgs(c->callback, value ? value : Py_None, error ? error : Py_None, NULL);
	if (!r)
		pbpy_callback_failed(c->self, c->callback);
	Py_XDECREF(r);
	Py_XDECREF(value);
	Py_XDECREF(error);
	pb_value_destroy(result);
	pb_error_free(err);
	Py_DECREF(c->callback);
	PyMem_Free(c);
	PyGILState_Release(gil);
}

PyObject *pbpy_sup_call_start(SupObject *self, PyObject *args)
{
	PyObject *plugin, *function, *cargs, *kwargs, *callback;
	double timeout;
	struct pbpy_spec s;
	struct async_call *c;
	uint64_t id = 0;
	int r;

	if (!PyArg_ParseTuple(args, "UUO!OdO:call_start", &plugin, &function, &PyTuple_Type, &cargs, &kwargs,
	                      &timeout, &callback))
		return NULL;
	if (!PyCallable_Check(callback)) {
		PyErr_SetString(PyExc_TypeError, "callback must be callable");
		return NULL;
	}
	if (pbpy_spec_build(&s, plugin, function, cargs, kwargs, timeout) < 0) {
		pbpy_spec_free(&s);
		return NULL;
	}
	if (!(c = PyMem_Malloc(sizeof(*c)))) {
		pbpy_spec_free(&s);
		return PyErr_NoMemory();
	}
	c->self = self;
	c->callback = Py_NewRef(callback);
	if (pbpy_enter(self) < 0) {
		r = -1;
	} else {
		r = start(self, &s, async_done, c, &id);
		pbpy_leave(self);
	}
	pbpy_spec_free(&s);
	if (r < 0) {
		Py_DECREF(c->callback);
		PyMem_Free(c);
		return NULL;
	}
	return PyLong_FromUnsignedLongLong(id);
}

/* cancel(call_id): True if the call was pending and is now cancelled (its
 * callback runs from the next dispatch, with a Cancelled error), False if
 * it had ended already. */
PyObject *pbpy_sup_cancel(SupObject *self, PyObject *arg)
{
	unsigned long long id = PyLong_AsUnsignedLongLong(arg);
	int r;

	if (id == (unsigned long long)-1 && PyErr_Occurred())
		return NULL;
	if (pbpy_enter(self) < 0)
		return NULL;
	r = pb_cancel(self->sup, id);
	pbpy_leave(self);
	if (r == -ENOMEM)
		return PyErr_NoMemory();
	return PyBool_FromLong(r == 0);
}

PyObject *pbpy_sup_dispatch(SupObject *self, PyObject *args)
{
	int timeout_ms = 0, r;

	if (!PyArg_ParseTuple(args, "|i:dispatch", &timeout_ms) || pbpy_enter(self) < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	        r = pb_supervisor_dispatch(self->sup, timeout_ms);
	Py_END_ALLOW_THREADS
	        pbpy_leave(self);
	if (pbpy_raise_deferred(self) < 0)
		return NULL;
	if (r < 0 && r != -EINTR) {
		errno = -r;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	return PyLong_FromLong(r < 0 ? 0 : r);
}
