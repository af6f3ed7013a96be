/* _owner.c - part of plugbox._core: who may be inside the library (one
 * thread at a time, never re-entered from a callback: pbpy_enter and
 * pbpy_leave), exceptions kept from callbacks, and the library's errors
 * turned into plugbox's exception classes (through the factory that
 * plugbox._errors registers). _core.h has the rules.
 */
#include "config.h"

#include "_core.h"


static PyObject *error_factory; /* plugbox._errors.from_core */

/* ---- errors ----------------------------------------------------------------- */

static PyObject *make_error(const char *kind, const char *plugin, const char *type, const char *message,
                            const char *traceback, const char *syscall, const char *rule)
{
	if (!error_factory) {
		PyErr_SetString(PyExc_RuntimeError, "plugbox._core: no error factory registered");
		return NULL;
	}
	return PyObject_CallFunction(error_factory, "sssssss", kind, plugin ? plugin : "", type ? type : "",
	                             message ? message : "", traceback ? traceback : "", syscall ? syscall : "",
	                             rule ? rule : "");
}

PyObject *pbpy_error_object(const pb_error *e)
{
	return make_error(pb_error_kind_name(pb_error_get_kind(e)), pb_error_get_plugin(e), pb_error_get_type(e),
	                  pb_error_get_message(e), pb_error_get_traceback(e), pb_error_get_syscall(e),
	                  pb_error_get_rule(e));
}

void pbpy_set_error(PyObject *exc)
{
	PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
	Py_DECREF(exc);
}

PyObject *pbpy_raise_error(const char *kind, const char *plugin, const char *message)
{
	PyObject *exc = make_error(kind, plugin, "", message, "", "", "");
	if (exc)
		pbpy_set_error(exc);
	return NULL;
}

void pbpy_callback_failed(SupObject *self, PyObject *where)
{
	if (PyErr_ExceptionMatches(PyExc_Exception) || self->deferred[0]) {
		PyErr_WriteUnraisable(where);
		return;
	}
	PyErr_Fetch(&self->deferred[0], &self->deferred[1], &self->deferred[2]);
}

int pbpy_raise_deferred(SupObject *self)
{
	if (!self->deferred[0])
		return 0;
	PyErr_Restore(self->deferred[0], self->deferred[1], self->deferred[2]);
	self->deferred[0] = self->deferred[1] = self->deferred[2] = NULL;
	return -1;
}

/* ---- ownership of the library ----------------------------------------------- */

int pbpy_enter(SupObject *self)
{
	unsigned long me = PyThread_get_thread_ident();
	if (!self->sup || self->closing) {
		PyErr_SetString(PyExc_RuntimeError, "the supervisor is closed");
		return -1;
	}
	if (self->pid != (long)getpid()) {
		PyErr_SetString(PyExc_RuntimeError, "a Supervisor made before fork() cannot be used in the child");
		return -1;
	}
	if (self->in_output) {
		PyErr_SetString(PyExc_RuntimeError, "the output callback and the change callback must not call the supervisor");
		return -1;
	}
	if (self->busy && self->owner != me) {
		PyErr_SetString(PyExc_RuntimeError, "the supervisor is in use by another thread");
		return -1;
	}
	self->owner = me;
	self->busy++;
	return 0;
}

void pbpy_drain_orphans(SupObject *self)
{
	while (self->norphans > 0)
		pb_host_call_fail(self->orphans[--self->norphans], "RuntimeError", "the host function gave no answer");
}

void pbpy_leave(SupObject *self)
{
	if (--self->busy == 0 && self->sup)
		pbpy_drain_orphans(self);
}

/* OSError(errno, message): Python picks the subclass (FileNotFoundError...). */
PyObject *pbpy_os_error(int r, const char *message)
{
	PyObject *exc = PyObject_CallFunction(PyExc_OSError, "is", -r, message);
	if (exc) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
	return NULL;
}

/* After a library function that ran callbacks: what they kept comes first. */
PyObject *pbpy_done_none(SupObject *self)
{
	pbpy_leave(self);
	if (pbpy_raise_deferred(self) < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* ---- the error factory ---------------------------------------------------------- */

/* plugbox._errors registers the function that builds its exceptions. */
PyObject *pbpy_set_error_factory(PyObject *module, PyObject *fn)
{
	(void)module;
	if (!PyCallable_Check(fn)) {
		PyErr_SetString(PyExc_TypeError, "the error factory must be callable");
		return NULL;
	}
	Py_XSETREF(error_factory, Py_NewRef(fn));
	Py_RETURN_NONE;
}
