/* _values.c - Python objects <-> pb_value for plugbox._core.
 *
 * Only the types the wire carries are sent; anything else is refused here,
 * before a call is made, with a message that says which argument and where
 * inside it. No Python code runs during a conversion (no __index__, no
 * __iter__, no __getitem__ of a subclass), so a container cannot change
 * under it and a hostile object cannot re-enter the supervisor.
 */
#include "_core.h"

#include <string.h>

/* A failure deep inside a value: the position is collected on the way back
 * up (cheaper than tracking it on the way down, which every successful
 * conversion would pay for). */
struct conv {
	PyObject *trail; /* list of path components, innermost first; NULL until an error */
};

static int trail_push(struct conv *c, PyObject *component)
{
	if (!component)
		return -1;
	if (!c->trail && !(c->trail = PyList_New(0))) {
		Py_DECREF(component);
		return -1;
	}
	int r = PyList_Append(c->trail, component);
	Py_DECREF(component);
	return r;
}

static pb_value *refuse(PyObject *type, const char *fmt, PyObject *obj)
{
	PyErr_Format(type, fmt, Py_TYPE(obj)->tp_name);
	return NULL;
}

static pb_value *no_memory(void)
{
	PyErr_NoMemory();
	return NULL;
}

static pb_value *convert(PyObject *o, int depth, struct conv *c);

static pb_value *convert_string(PyObject *o)
{
	Py_ssize_t len;
	const char *s = PyUnicode_AsUTF8AndSize(o, &len);
	if (!s) {
		if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
			PyErr_Clear();
			PyErr_SetString(PyExc_ValueError, "cannot send a str that is not valid Unicode (it has surrogates)");
		}
		return NULL;
	}
	pb_value *v = pb_value_new_string_len(s, (size_t)len); /* U+0000 included */
	return v ? v : no_memory();
}

static pb_value *convert_bytes(PyObject *o)
{
	pb_value *v;
	if (PyBytes_Check(o)) {
		v = pb_value_new_bytes(PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
	} else if (PyByteArray_Check(o)) {
		v = pb_value_new_bytes(PyByteArray_AS_STRING(o), (size_t)PyByteArray_GET_SIZE(o));
	} else {
		/* a memoryview, possibly strided: its bytes in C order */
		PyObject *b = PyBytes_FromObject(o);
		if (!b)
			return NULL;
		v = pb_value_new_bytes(PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
		Py_DECREF(b);
	}
	return v ? v : no_memory();
}

static pb_value *convert_sequence(PyObject *o, int depth, struct conv *c)
{
	pb_value *list = pb_value_new_list();
	if (!list)
		return no_memory();
	/* PySequence_Fast_* on a list or tuple reads the items in place; no
	 * Python code runs between these reads, so the size cannot change. */
	Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
	for (Py_ssize_t i = 0; i < n; i++) {
		pb_value *item = convert(PySequence_Fast_GET_ITEM(o, i), depth + 1, c);
		if (!item) {
			trail_push(c, PyUnicode_FromFormat("[%zd]", i));
			pb_value_destroy(list);
			return NULL;
		}
		if (pb_value_list_append(list, item) < 0) {
			pb_value_destroy(item);
			pb_value_destroy(list);
			return no_memory();
		}
	}
	return list;
}

static pb_value *convert_dict(PyObject *o, int depth, struct conv *c)
{
	pb_value *map = pb_value_new_map();
	PyObject *key, *value;
	Py_ssize_t pos = 0;

	if (!map)
		return no_memory();
	while (PyDict_Next(o, &pos, &key, &value)) {
		pb_value *k = convert(key, depth + 1, c);
		if (!k) {
			trail_push(c, PyUnicode_FromString("<key>"));
			pb_value_destroy(map);
			return NULL;
		}
		pb_value *v = convert(value, depth + 1, c);
		if (!v) {
			trail_push(c, PyUnicode_FromFormat("[%R]", key));
			pb_value_destroy(k);
			pb_value_destroy(map);
			return NULL;
		}
		if (pb_value_map_set(map, k, v) < 0) {
			pb_value_destroy(k);
			pb_value_destroy(v);
			pb_value_destroy(map);
			return no_memory();
		}
	}
	return map;
}

static pb_value *convert(PyObject *o, int depth, struct conv *c)
{
	pb_value *v;

	if (depth > PBPY_MAX_DEPTH) {
		PyErr_Format(PyExc_ValueError, "cannot send a value nested deeper than %d levels", PBPY_MAX_DEPTH);
		return NULL;
	}
	if (o == Py_None) {
		v = pb_value_new_null();
	} else if (PyBool_Check(o)) { /* before int: bool is an int */
		v = pb_value_new_bool(o == Py_True);
	} else if (PyLong_Check(o)) {
		int overflow;
		long long i = PyLong_AsLongLongAndOverflow(o, &overflow);
		if (overflow)
			return refuse(PyExc_OverflowError, "cannot send %s: outside the signed 64-bit range", o);
		if (i == -1 && PyErr_Occurred())
			return NULL;
		v = pb_value_new_int((int64_t)i);
	} else if (PyFloat_Check(o)) {
		v = pb_value_new_float(PyFloat_AS_DOUBLE(o));
	} else if (PyUnicode_Check(o)) {
		return convert_string(o);
	} else if (PyBytes_Check(o) || PyByteArray_Check(o) || PyMemoryView_Check(o)) {
		return convert_bytes(o);
	} else if (PyList_Check(o) || PyTuple_Check(o)) {
		return convert_sequence(o, depth, c);
	} else if (PyDict_Check(o)) {
		return convert_dict(o, depth, c);
	} else {
		return refuse(PyExc_TypeError, "cannot send %s", o);
	}
	return v ? v : no_memory();
}

/* "argument 2, at [0]['k']: cannot send set" (a dict key that cannot be sent
 * shows as <key>). */
static void explain(const struct pbpy_where *where, struct conv *c)
{
	PyObject *type, *value, *tb, *path, *prefix, *msg = NULL;

	if (PyErr_ExceptionMatches(PyExc_MemoryError))
		return;
	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	if (where->name)
		prefix = where->index ? PyUnicode_FromFormat("%s %zd '%s'", where->what, where->index, where->name)
		                      : PyUnicode_FromFormat("%s '%s'", where->what, where->name);
	else
		prefix = where->index ? PyUnicode_FromFormat("%s %zd", where->what, where->index)
		                      : PyUnicode_FromString(where->what);
	path = PyUnicode_FromString("");
	if (path && c->trail && PyList_GET_SIZE(c->trail) > 0 && PyList_Reverse(c->trail) == 0) {
		PyObject *joined = PyUnicode_Join(path, c->trail);
		Py_SETREF(path, joined ? PyUnicode_FromFormat(", at %U", joined) : NULL);
		Py_XDECREF(joined);
	}
	if (prefix && path)
		msg = PyUnicode_FromFormat("%U%U: %S", prefix, path, value);
	Py_XDECREF(prefix);
	Py_XDECREF(path);
	if (!msg) {
		PyErr_Restore(type, value, tb);
		return;
	}
	PyErr_SetObject(type, msg);
	Py_DECREF(msg);
	Py_DECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
}

pb_value *pbpy_to_value(PyObject *obj, const struct pbpy_where *where)
{
	struct conv c = { NULL };
	pb_value *v = convert(obj, 1, &c);
	if (!v)
		explain(where, &c);
	Py_XDECREF(c.trail);
	return v;
}

/* ---- pb_value -> Python ---------------------------------------------------- */

static PyObject *from_value(const pb_value *v, int as_key);

static PyObject *from_list(const pb_value *v, int as_key)
{
	size_t n = pb_value_list_length(v);
	/* a list used as a dict key comes back as a tuple: it must be hashable */
	PyObject *out = as_key ? PyTuple_New((Py_ssize_t)n) : PyList_New((Py_ssize_t)n);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		PyObject *item = from_value(pb_value_list_get(v, i), as_key);
		if (!item) {
			Py_DECREF(out);
			return NULL;
		}
		if (as_key)
			PyTuple_SET_ITEM(out, (Py_ssize_t)i, item);
		else
			PyList_SET_ITEM(out, (Py_ssize_t)i, item);
	}
	return out;
}

static PyObject *from_map(const pb_value *v, int as_key)
{
	size_t n = pb_value_map_length(v);
	/* No Python object produces a map as a key (a dict is unhashable), but
	 * a worker may send one: it becomes a tuple of (key, value) pairs. */
	PyObject *out = as_key ? PyTuple_New((Py_ssize_t)n) : PyDict_New();
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const pb_value *key;
		const pb_value *value = pb_value_map_entry(v, i, &key);
		PyObject *k = from_value(key, 1);
		PyObject *val = k ? from_value(value, as_key) : NULL;
		int r = -1;
		if (k && val) {
			if (as_key) {
				PyObject *pair = PyTuple_Pack(2, k, val);
				if (pair) {
					PyTuple_SET_ITEM(out, (Py_ssize_t)i, pair);
					r = 0;
				}
			} else {
				r = PyDict_SetItem(out, k, val);
			}
		}
		Py_XDECREF(k);
		Py_XDECREF(val);
		if (r < 0) {
			Py_DECREF(out);
			return NULL;
		}
	}
	return out;
}

static PyObject *from_value(const pb_value *v, int as_key)
{
	switch (pb_value_get_kind(v)) {
	case PB_VALUE_NULL:
		Py_RETURN_NONE;
	case PB_VALUE_BOOL:
		return PyBool_FromLong(pb_value_get_bool(v));
	case PB_VALUE_INT:
		return PyLong_FromLongLong(pb_value_get_int(v));
	case PB_VALUE_FLOAT:
		return PyFloat_FromDouble(pb_value_get_float(v));
	case PB_VALUE_STRING: {
		size_t len;
		const char *s = pb_value_get_string_len(v, &len);
		return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "surrogateescape");
	}
	case PB_VALUE_BYTES: {
		size_t len;
		const void *b = pb_value_get_bytes(v, &len);
		return PyBytes_FromStringAndSize(b, (Py_ssize_t)len);
	}
	case PB_VALUE_LIST:
		return from_list(v, as_key);
	case PB_VALUE_MAP:
		return from_map(v, as_key);
	}
	PyErr_SetString(PyExc_SystemError, "plugbox: a value of unknown kind");
	return NULL;
}

PyObject *pbpy_from_value(const pb_value *v)
{
	if (!v)
		Py_RETURN_NONE;
	return from_value(v, 0);
}
