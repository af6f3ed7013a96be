/* _hostcall.c - the library's callbacks into Python other than call
 * completions: host functions (a plugin's plugbox.host.NAME(...)) and
 * plugin output and log records.
 *
 * A host call reaches Python as a HostCall object. The Python layer answers
 * it once (return_value or fail), now or later from an asyncio task. If the
 * object dies unanswered, its destructor fails the call, so a plugin never
 * waits for an answer nobody will give (it would wait until its deadline).
 */
#include "_core.h"

#include <structmember.h>
#include <string.h>

static PyObject *stream_names[PB_STREAM_LOG + 1];

int pbpy_hostcall_init_streams(void)
{
	static const char *const names[] = {
		[PB_STREAM_STDOUT] = "stdout",
		[PB_STREAM_STDERR] = "stderr",
		[PB_STREAM_SUPERVISOR] = "supervisor",
		[PB_STREAM_LOG] = "log",
	};
	for (int i = PB_STREAM_STDOUT; i <= PB_STREAM_LOG; i++)
		if (!stream_names[i] && !(stream_names[i] = PyUnicode_InternFromString(names[i])))
			return -1;
	return 0;
}

static void unlink_live(HostCallObject *hc)
{
	if (hc->prev)
		hc->prev->next = hc->next;
	else if (hc->owner->live == hc)
		hc->owner->live = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	hc->prev = hc->next = NULL;
}

pb_host_call *pbpy_hostcall_take(HostCallObject *hc)
{
	pb_host_call *call = hc->call;
	if (call) {
		hc->call = NULL;
		unlink_live(hc);
	}
	return call;
}

static HostCallObject *hostcall_new(SupObject *self, pb_host_call *call)
{
	HostCallObject *hc = PyObject_GC_New(HostCallObject, &PbPy_HostCallType);
	if (!hc)
		return NULL;
	hc->owner = (SupObject *)Py_NewRef(self);
	hc->call = NULL;
	hc->prev = hc->next = NULL;
	hc->plugin = PyUnicode_FromString(pb_host_call_plugin(call));
	hc->name = PyUnicode_FromString(pb_host_call_name(call));
	hc->args = PyTuple_New((Py_ssize_t)pb_host_call_nargs(call));
	hc->kwargs = PyDict_New();
	PyObject_GC_Track(hc);
	if (!hc->plugin || !hc->name || !hc->args || !hc->kwargs)
		goto fail;
	for (size_t i = 0; i < pb_host_call_nargs(call); i++) {
		PyObject *v = pbpy_from_value(pb_host_call_arg(call, i));
		if (!v)
			goto fail;
		PyTuple_SET_ITEM(hc->args, (Py_ssize_t)i, v);
	}
	for (size_t i = 0; i < pb_host_call_nkwargs(call); i++) {
		const char *name;
		PyObject *v = pbpy_from_value(pb_host_call_kwarg(call, i, &name));
		int r = v ? PyDict_SetItemString(hc->kwargs, name, v) : -1;
		Py_XDECREF(v);
		if (r < 0)
			goto fail;
	}
	/* only now does hc own the call: after a failure the caller answers it */
	hc->call = call;
	hc->next = self->live;
	if (self->live)
		self->live->prev = hc;
	self->live = hc;
	return hc;
fail:
	Py_DECREF(hc);
	return NULL;
}

static void answer_lost(HostCallObject *hc)
{
	SupObject *self = hc->owner;
	pb_host_call *call = self ? pbpy_hostcall_take(hc) : NULL;

	if (!call || !self->sup)
		return;
	if (self->busy && self->owner != PyThread_get_thread_ident()) {
		/* another thread is inside the library: answered when it comes out */
		if (self->norphans == self->corphans) {
			size_t n = self->corphans ? 2 * self->corphans : 8;
			pb_host_call **o = PyMem_Realloc(self->orphans, n * sizeof(*o));
			if (!o)
				return; /* out of memory: the plugin's call then ends at its deadline */
			self->orphans = o;
			self->corphans = n;
		}
		self->orphans[self->norphans++] = call;
		return;
	}
	pb_host_call_fail(call, "RuntimeError", "the host function gave no answer");
}

static int HostCall_traverse(HostCallObject *hc, visitproc visit, void *arg)
{
	Py_VISIT(hc->owner);
	Py_VISIT(hc->args);
	Py_VISIT(hc->kwargs);
	return 0;
}

static int HostCall_clear(HostCallObject *hc)
{
	answer_lost(hc);
	Py_CLEAR(hc->args);
	Py_CLEAR(hc->kwargs);
	return 0;
}

static void HostCall_dealloc(HostCallObject *hc)
{
	PyObject_GC_UnTrack(hc);
	answer_lost(hc);
	Py_CLEAR(hc->owner);
	Py_CLEAR(hc->plugin);
	Py_CLEAR(hc->name);
	Py_CLEAR(hc->args);
	Py_CLEAR(hc->kwargs);
	PyObject_GC_Del(hc);
}

/* Answering touches the supervisor: the same ownership rules as a call. */
static pb_host_call *claim(HostCallObject *hc)
{
	if (!hc->call) {
		PyErr_SetString(PyExc_RuntimeError, "this host call was already answered");
		return NULL;
	}
	if (pbpy_enter(hc->owner) < 0)
		return NULL;
	return pbpy_hostcall_take(hc);
}

static PyObject *HostCall_return_value(HostCallObject *hc, PyObject *value)
{
	struct pbpy_where where = { "result of host function", 0, PyUnicode_AsUTF8(hc->name) };
	pb_value *v = NULL;

	if (!hc->call) {
		PyErr_SetString(PyExc_RuntimeError, "this host call was already answered");
		return NULL;
	}
	/* converted first: a value that cannot be sent leaves the call unanswered */
	if (value != Py_None && !(v = pbpy_to_value(value, &where)))
		return NULL;
	pb_host_call *call = claim(hc);
	if (!call) {
		pb_value_destroy(v);
		return NULL;
	}
	pb_host_call_return(call, v);
	pbpy_leave(hc->owner);
	Py_RETURN_NONE;
}

static PyObject *HostCall_fail(HostCallObject *hc, PyObject *args)
{
	PyObject *type, *message;
	const char *t, *m;

	if (!PyArg_ParseTuple(args, "UU:fail", &type, &message) ||
	    !(t = pbpy_utf8_name(type, "the exception type")) || !(m = pbpy_utf8_name(message, "the message")))
		return NULL;
	pb_host_call *call = claim(hc);
	if (!call)
		return NULL;
	pb_host_call_fail(call, t, m);
	pbpy_leave(hc->owner);
	Py_RETURN_NONE;
}

static PyObject *HostCall_get_answered(HostCallObject *hc, void *closure)
{
	(void)closure;
	return PyBool_FromLong(hc->call == NULL);
}

static PyObject *HostCall_repr(HostCallObject *hc)
{
	return PyUnicode_FromFormat("<plugbox host call %U() from plugin %R%s>", hc->name, hc->plugin,
	                            hc->call ? "" : ", answered");
}

static PyMethodDef HostCall_methods[] = {
	{ "return_value", (PyCFunction)HostCall_return_value, METH_O,
	  "return_value(value): the plugin's host call returns value." },
	{ "fail", (PyCFunction)HostCall_fail, METH_VARARGS,
	  "fail(type, message): the plugin's host call raises; type is a builtin exception name the\n"
	  "plugin raises as such (PermissionError, LookupError, KeyError, ValueError, TypeError,\n"
	  "RuntimeError, TimeoutError), any other becomes plugbox.HostError there." },
	{ NULL, NULL, 0, NULL },
};

static PyMemberDef HostCall_members[] = {
	{ "plugin", T_OBJECT_EX, offsetof(HostCallObject, plugin), READONLY, "the calling plugin" },
	{ "name", T_OBJECT_EX, offsetof(HostCallObject, name), READONLY, "the host function's name" },
	{ "args", T_OBJECT_EX, offsetof(HostCallObject, args), READONLY, "positional arguments (tuple)" },
	{ "kwargs", T_OBJECT_EX, offsetof(HostCallObject, kwargs), READONLY, "keyword arguments (dict)" },
	{ NULL, 0, 0, 0, NULL },
};

static PyGetSetDef HostCall_getset[] = {
	{ "answered", (getter)HostCall_get_answered, NULL, "True once answered", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject PbPy_HostCallType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	        .tp_name = "plugbox._core.HostCall",
	.tp_basicsize = sizeof(HostCallObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.tp_doc = "A plugin's call of a host function, to be answered once.",
	.tp_dealloc = (destructor)HostCall_dealloc,
	.tp_traverse = (traverseproc)HostCall_traverse,
	.tp_clear = (inquiry)HostCall_clear,
	.tp_repr = (reprfunc)HostCall_repr,
	.tp_methods = HostCall_methods,
	.tp_members = HostCall_members,
	.tp_getset = HostCall_getset,
};

/* The one pb_host_fn: finds the handler by name and hands it a HostCall. */
void pbpy_host_trampoline(void *userdata, pb_host_call *call)
{
	SupObject *self = userdata;
	PyGILState_STATE gil = PyGILState_Ensure();
	PyObject *handler = self->closing ? NULL : PyDict_GetItemString(self->functions, pb_host_call_name(call));
	HostCallObject *hc;

	if (!handler) {
		pb_host_call_fail(call, "RuntimeError", "the host is closing");
		PyGILState_Release(gil);
		return;
	}
	Py_INCREF(handler);
	hc = hostcall_new(self, call);
	if (!hc) {
		pb_host_call_fail(call, "RuntimeError", "the host could not read the call's arguments");
		pbpy_callback_failed(self, handler);
	} else {
		PyObject *r = PyObject_CallOneArg(handler, (PyObject *)hc);
		if (!r)
			pbpy_callback_failed(self, handler);
		Py_XDECREF(r);
		Py_DECREF(hc); /* the last reference, unless the handler kept it to answer later */
	}
	Py_DECREF(handler);
	PyGILState_Release(gil);
}

void pbpy_output_trampoline(void *userdata, const char *plugin, pb_stream stream, const char *line)
{
	SupObject *self = userdata;
	PyGILState_STATE gil = PyGILState_Ensure();
	PyObject *fn = self->output ? Py_NewRef(self->output) : NULL;

	if (fn) {
		PyObject *name = stream >= PB_STREAM_STDOUT && stream <= PB_STREAM_LOG ? stream_names[stream] : Py_None;
		/* a plugin may print any bytes: decoding must never lose the line */
		PyObject *text = PyUnicode_DecodeUTF8(line, (Py_ssize_t)strlen(line), "replace");
		PyObject *r = NULL;
		self->in_output++;
		if (text)
			r = PyObject_CallFunction(fn, "sOO", plugin, name, text);
		self->in_output--;
		if (!r)
			pbpy_callback_failed(self, fn);
		Py_XDECREF(r);
		Py_XDECREF(text);
		Py_DECREF(fn);
	}
	PyGILState_Release(gil);
}

/* A plugin's log record whole: the text is sanitised UTF-8 already, but a
 * cut may fall anywhere, so decoding must never lose the record. */
void pbpy_log_trampoline(void *userdata, const char *plugin, uint64_t call_id, int level, const char *logger,
                         const char *message, const char *exc_text)
{
	SupObject *self = userdata;
	PyGILState_STATE gil = PyGILState_Ensure();
	PyObject *fn = self->log ? Py_NewRef(self->log) : NULL;

	if (fn) {
		PyObject *l = PyUnicode_DecodeUTF8(logger, (Py_ssize_t)strlen(logger), "replace");
		PyObject *m = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace");
		PyObject *e = PyUnicode_DecodeUTF8(exc_text, (Py_ssize_t)strlen(exc_text), "replace");
		PyObject *r = NULL;
		self->in_output++;
		if (l && m && e)
			r = PyObject_CallFunction(fn, "sKiOOO", plugin, (unsigned long long)call_id, level, l, m, e);
		self->in_output--;
		if (!r)
			pbpy_callback_failed(self, fn);
		Py_XDECREF(r);
		Py_XDECREF(l);
		Py_XDECREF(m);
		Py_XDECREF(e);
		Py_DECREF(fn);
	}
	PyGILState_Release(gil);
}
