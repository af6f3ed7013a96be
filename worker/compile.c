/* compile.c - plugbox-worker --install compile: the bytecode compiler of a
 * plugin's cache.
 *
 * install.c puts the same walls in place as for the unpacker (the policy,
 * compile.policy, names them), then calls pb_compile_run, which runs
 * worker/compile.py (embedded, trusted, standard library only) over the
 * plugin: compile() on every source, never an import of one. The glue
 * (bootstrap.py) is loaded only for its readers of __deps_dir__ and
 * plugin.toml, which parse without executing, so the compiler knows the
 * dependency directories exactly as a worker will.
 */
#include "config.h"

#include "install_mode.h"
#include "worker.h"

static const char compile_source[] =
#include "worker/compile.inc"
        ;

PyObject *pb_compile_run(const char *out, const char *plugin, const char *name, char *const *aliases,
                         size_t naliases, PyObject *limits)
{
	PyObject *glue = pb_glue_load(), *code, *module, *list, *text;

	if (!glue)
		return NULL;
	list = PyList_New(0);
	for (size_t i = 0; list && i < naliases; i++) {
		PyObject *s = PyUnicode_FromString(aliases[i]);
		if (!s || PyList_Append(list, s) < 0) {
			Py_XDECREF(s);
			Py_CLEAR(list);
			break;
		}
		Py_DECREF(s);
	}
	if (!list)
		return NULL;
	code = Py_CompileString(compile_source, "<plugbox-compile>", Py_file_input);
	module = code ? PyImport_ExecCodeModule("_plugbox_compile", code) : NULL;
	Py_XDECREF(code);
	text = module ? PyObject_CallMethod(module, "run", "sssOOO", out, plugin, name ? name : "", list,
	                                    limits, glue)
	              : NULL;
	Py_XDECREF(module);
	Py_DECREF(list);
	return text;
}
