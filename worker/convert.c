/* convert.c - plugbox.Value <-> Python objects, inside the worker.
 *
 * Both directions are bounded by PB_VALUE_MAX_DEPTH, so the recursion here is
 * too. Python types without a Value counterpart (sets, objects, ...) raise
 * TypeError in the plugin's worker, which reaches the host as an error.
 */
#include "config.h"

#include <math.h>

#include "proto/frame.h"
#include "proto/value.h"
#include "worker.h"

/* A map key as Python can hash it: a list (a tuple on the host's side)
 * becomes a tuple, all the way down. Takes the reference. */
static PyObject *as_key(PyObject *k)
{
	PyObject *t;

	if (!k || !PyList_Check(k))
		return k;
	t = PyList_AsTuple(k);
	Py_DECREF(k);
	for (Py_ssize_t i = 0; t && i < PyTuple_GET_SIZE(t); i++) {
		PyObject *item = PyTuple_GET_ITEM(t, i);
		if (PyList_Check(item)) {
			Py_INCREF(item);
			PyObject *inner = as_key(item);
			if (!inner) {
				Py_DECREF(t);
				return NULL;
			}
			PyTuple_SET_ITEM(t, i, inner); /* steals; drops the list */
			Py_DECREF(item);
		}
	}
	return t;
}

static PyObject *to_py(const Plugbox__Value *v, unsigned depth)
{
	PyObject *o, *k, *x;

	if (depth > PB_VALUE_MAX_DEPTH) {
		PyErr_Format(PyExc_ValueError, "value nested deeper than %d levels", PB_VALUE_MAX_DEPTH);
		return NULL;
	}
	switch (v->kind_case) {
	case PLUGBOX__VALUE__KIND_NULL_VALUE:
		Py_RETURN_NONE;
	case PLUGBOX__VALUE__KIND_BOOL_VALUE:
		return PyBool_FromLong(v->bool_value);
	case PLUGBOX__VALUE__KIND_INT_VALUE:
		return PyLong_FromLongLong(v->int_value);
	case PLUGBOX__VALUE__KIND_FLOAT_VALUE:
		return PyFloat_FromDouble(v->float_value);
	case PLUGBOX__VALUE__KIND_STRING_VALUE: {
		size_t len;
		const char *s = pbv_string(v, &len);
		return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "strict");
	}
	case PLUGBOX__VALUE__KIND_BYTES_VALUE:
		return PyBytes_FromStringAndSize((const char *)v->bytes_value.data,
		                                 (Py_ssize_t)v->bytes_value.len);
	case PLUGBOX__VALUE__KIND_LIST_VALUE: {
		const Plugbox__ValueList *l = v->list_value;
		size_t n = l ? l->n_items : 0;
		o = PyList_New((Py_ssize_t)n);
		if (!o)
			return NULL;
		for (size_t i = 0; i < n; i++) {
			x = to_py(l->items[i], depth + 1);
			if (!x) {
				Py_DECREF(o);
				return NULL;
			}
			PyList_SET_ITEM(o, (Py_ssize_t)i, x);
		}
		return o;
	}
	case PLUGBOX__VALUE__KIND_MAP_VALUE: {
		const Plugbox__ValueMap *m = v->map_value;
		o = PyDict_New();
		if (!o)
			return NULL;
		for (size_t i = 0; m && i < m->n_entries; i++) {
			k = as_key(to_py(m->entries[i]->key, depth + 1));
			x = k ? to_py(m->entries[i]->value, depth + 1) : NULL;
			if (!x || PyDict_SetItem(o, k, x) < 0) {
				Py_XDECREF(k);
				Py_XDECREF(x);
				Py_DECREF(o);
				return NULL;
			}
			Py_DECREF(k);
			Py_DECREF(x);
		}
		return o;
	}
	default:
		PyErr_SetString(PyExc_ValueError, "value without a kind");
		return NULL;
	}
}

PyObject *pb_value_to_py(const Plugbox__Value *v)
{
	return to_py(v, 1);
}

static Plugbox__Value *from_py(PyObject *o, unsigned depth)
{
	Plugbox__Value *v = NULL;

	if (depth > PB_VALUE_MAX_DEPTH) {
		PyErr_Format(PyExc_ValueError, "value nested deeper than %d levels", PB_VALUE_MAX_DEPTH);
		return NULL;
	}
	if (o == Py_None) {
		v = pbv_new_null();
	} else if (PyBool_Check(o)) {
		v = pbv_new_bool(o == Py_True);
	} else if (PyLong_Check(o)) {
		int overflow = 0;
		long long i = PyLong_AsLongLongAndOverflow(o, &overflow);
		if (overflow) {
			PyErr_SetString(PyExc_OverflowError, "int does not fit in 64 bits");
			return NULL;
		}
		if (i == -1 && PyErr_Occurred())
			return NULL;
		v = pbv_new_int(i);
	} else if (PyFloat_Check(o)) {
		v = pbv_new_float(PyFloat_AS_DOUBLE(o));
	} else if (PyUnicode_Check(o)) {
		Py_ssize_t n;
		const char *s = PyUnicode_AsUTF8AndSize(o, &n);
		if (!s)
			return NULL;
		v = pbv_new_string(s, (size_t)n); /* U+0000 included */
	} else if (PyBytes_Check(o)) {
		v = pbv_new_bytes(PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
	} else if (PyByteArray_Check(o)) {
		v = pbv_new_bytes(PyByteArray_AS_STRING(o), (size_t)PyByteArray_GET_SIZE(o));
	} else if (PyList_Check(o) || PyTuple_Check(o)) {
		PyObject *seq = PySequence_Fast(o, "");
		if (!seq)
			return NULL;
		v = pbv_new_list();
		for (Py_ssize_t i = 0; v && i < PySequence_Fast_GET_SIZE(seq); i++) {
			Plugbox__Value *item = from_py(PySequence_Fast_GET_ITEM(seq, i), depth + 1);
			if (!item || pbv_list_append(v, item) < 0) {
				if (item)
					pbv_free(item);
				pbv_free(v);
				v = NULL;
				if (!PyErr_Occurred())
					PyErr_NoMemory();
			}
		}
		Py_DECREF(seq);
		return v;
	} else if (PyDict_Check(o)) {
		PyObject *k, *x;
		Py_ssize_t pos = 0;
		v = pbv_new_map();
		while (v && PyDict_Next(o, &pos, &k, &x)) {
			Plugbox__Value *kv = from_py(k, depth + 1);
			Plugbox__Value *xv = kv ? from_py(x, depth + 1) : NULL;
			if (!xv || pbv_map_put(v, kv, xv) < 0) {
				if (kv)
					pbv_free(kv);
				if (xv)
					pbv_free(xv);
				pbv_free(v);
				v = NULL;
				if (!PyErr_Occurred())
					PyErr_NoMemory();
			}
		}
		return v;
	} else {
		PyErr_Format(PyExc_TypeError, "cannot send an object of type '%.100s' to the host",
		             Py_TYPE(o)->tp_name);
		return NULL;
	}
	if (!v)
		PyErr_NoMemory();
	return v;
}

int pb_py_to_value(PyObject *o, Plugbox__Value **out)
{
	*out = from_py(o, 1);
	return *out ? 0 : -1;
}
