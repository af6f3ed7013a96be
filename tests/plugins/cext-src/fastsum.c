/* fastsum.c - a tiny C extension module vendored by the cextplug test plugin.
 *
 * fastsum.sum(sequence_of_ints) -> int, computed in C with overflow checks.
 * Built by tests/integration/test_layouts.py with
 *   $PB_CC -shared -fPIC $PB_PYTHON_CFLAGS fastsum.c -o deps/fastsum$EXT_SUFFIX
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *fastsum_sum(PyObject *self, PyObject *arg)
{
	(void)self;
	PyObject *seq = PySequence_Fast(arg, "sum() expects a sequence of ints");
	if (seq == NULL)
		return NULL;

	long long total = 0;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	for (Py_ssize_t i = 0; i < n; i++) {
		long long item = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
		if (item == -1 && PyErr_Occurred()) {
			Py_DECREF(seq);
			return NULL;
		}
		if (__builtin_add_overflow(total, item, &total)) {
			Py_DECREF(seq);
			PyErr_SetString(PyExc_OverflowError, "sum does not fit in 64 bits");
			return NULL;
		}
	}
	Py_DECREF(seq);
	return PyLong_FromLongLong(total);
}

static PyMethodDef fastsum_methods[] = {
	{ "sum", fastsum_sum, METH_O, "Sum a sequence of ints in C." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef fastsum_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "fastsum",
	.m_doc = "A C extension vendored by a plugbox test plugin.",
	.m_size = 0,
	.m_methods = fastsum_methods,
};

PyMODINIT_FUNC PyInit_fastsum(void)
{
	return PyModuleDef_Init(&fastsum_module);
}
