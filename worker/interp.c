/* interp.c - start an isolated CPython that can run no plugin code yet.
 *
 * The order here is what keeps plugin code from running before the sandbox
 * (DESIGN.md "Embedding CPython 3.11"): pre-initialise in UTF-8 mode before
 * any PyConfig_Set* call; site_import=0 so Debian's sitecustomize (and any
 * apport_python_hook a plugin ships) never runs; a search path of the
 * standard library only, so a plugin's deps/encodings cannot shadow the
 * codecs imported during start-up; home and executable set so that neither
 * PATH, the cwd, pyvenv.cfg nor a <executable>._pth is consulted.
 */
#include "config.h"

#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

#include <marshal.h> /* after Python.h (worker.h) */

extern PyObject *PyInit_plugbox(void);

static const char bootstrap_source[] =
#include "worker/bootstrap.inc"
        ;
static const unsigned char bootstrap_code[] = {
#include "worker/bootstrap.code"
};

static int status_failed(PyStatus st, const char *step, char *why, size_t why_len)
{
	if (!PyStatus_Exception(st))
		return 0;
	snprintf(why, why_len, "python: %s: %s%s%s", step, st.func ? st.func : "",
	         st.func ? ": " : "", st.err_msg ? st.err_msg : "exit requested");
	return -1;
}

static int append_path(PyConfig *c, const char *path, char *why, size_t why_len)
{
	wchar_t *w = Py_DecodeLocale(path, NULL);
	PyStatus st;

	if (!w) {
		snprintf(why, why_len, "python: cannot decode path %s", path);
		return -1;
	}
	st = PyWideStringList_Append(&c->module_search_paths, w);
	PyMem_RawFree(w);
	return status_failed(st, "module_search_paths", why, why_len);
}

int pb_interp_init(const char *executable, const char *plugin, char *why, size_t why_len)
{
	PyPreConfig pre;
	PyConfig c;
	PyStatus st;
	char argv0[256];
	char *argv[] = { argv0, NULL };

	PyPreConfig_InitIsolatedConfig(&pre);
	pre.utf8_mode = 1;
	st = Py_PreInitialize(&pre);
	if (status_failed(st, "pre-initialise", why, why_len))
		return -1;

	/* Must precede initialisation: 3.11 silently ignores it afterwards. */
	if (PyImport_AppendInittab("plugbox", PyInit_plugbox) < 0) {
		snprintf(why, why_len, "python: cannot register the plugbox module");
		return -1;
	}

	PyConfig_InitIsolatedConfig(&c);
	c.site_import = 0;
	c.write_bytecode = 0;
	c.user_site_directory = 0;
	c.use_environment = 0;
	c.install_signal_handlers = 0;
	c.buffered_stdio = 0; /* output reaches the supervisor in order */
	c.pathconfig_warnings = 0;
	c.parse_argv = 0;
	c.module_search_paths_set = 1;
	snprintf(argv0, sizeof(argv0), "plugbox-worker:%s", plugin);

	st = PyConfig_SetBytesString(&c, &c.home, PB_PYTHON_HOME);
	if (!status_failed(st, "home", why, why_len))
		st = PyConfig_SetBytesString(&c, &c.executable, executable);
	if (!status_failed(st, "executable", why, why_len))
		st = PyConfig_SetBytesString(&c, &c.program_name, executable);
	if (!status_failed(st, "program_name", why, why_len))
		st = PyConfig_SetBytesArgv(&c, 1, argv);
	if (status_failed(st, "configure", why, why_len) ||
	    append_path(&c, PB_PYTHON_STDLIB, why, why_len) < 0 ||
	    append_path(&c, PB_PYTHON_DYNLOAD, why, why_len) < 0) {
		PyConfig_Clear(&c);
		return -1;
	}
	st = Py_InitializeFromConfig(&c);
	PyConfig_Clear(&c);
	if (status_failed(st, "initialise", why, why_len))
		return -1;
	/* Every worker installs the cancel handler through _signal
	 * (cancel.c), whose first import asks the kernel for all 64 signal
	 * dispositions: done here, a fork-server's children find it imported. */
	PyObject *signal_mod = PyImport_ImportModule("_signal");
	if (!signal_mod) {
		PyErr_Clear();
		snprintf(why, why_len, "python: cannot import _signal");
		return -1;
	}
	Py_DECREF(signal_mod);
	return 0;
}

/* pymalloc's pool header in CPython 3.11 on 64-bit (Objects/obmalloc.c
 * with USE_LARGE_POOLS: 16 KiB pools of one size class each, 32 classes
 * of 16 bytes up to 512): struct pool_header { union { block *_padding;
 * uint count; } ref; block *freeblock; struct pool_header *nextpool,
 * *prevpool; uint arenaindex, szidx, nextoffset, maxnextoffset; }. Three
 * of its fields are read, by offset, only to tell where an allocation
 * landed; a layout other than this one shows in the size class and last
 * offset, and stops the filling. */
#define PB_POOL_SIZE 16384u
#define PB_POOL_CLASSES 32u
#define PB_POOL_COUNT 0          /* blocks in use */
#define PB_POOL_SZIDX 36         /* its size class */
#define PB_POOL_MAXNEXTOFFSET 44 /* the offset of its last block */

static unsigned int pool_field(const char *pool, size_t offset)
{
	unsigned int v;

	memcpy(&v, pool + offset, sizeof(v));
	return v;
}

/* The filler blocks, each holding the address of the one kept before it:
 * never freed, and reachable. */
static void *kept_blocks;

static void keep(void *p)
{
	*(void **)p = kept_blocks;
	kept_blocks = p;
}

/* pymalloc: fill the free blocks of every partly used pool, so that each
 * size's next block comes from an empty pool. */
static size_t fill_pools(void)
{
	size_t filled = 0;

	for (unsigned int idx = 0; idx < PB_POOL_CLASSES; idx++) {
		size_t size = (size_t)(idx + 1) * 16;
		for (;;) {
			void *p = PyObject_Malloc(size);
			if (!p)
				return filled;
			const char *pool = (const char *)p - ((uintptr_t)p & (PB_POOL_SIZE - 1));
			if (pool_field(pool, PB_POOL_SZIDX) != idx ||
			    pool_field(pool, PB_POOL_MAXNEXTOFFSET) != PB_POOL_SIZE - size) {
				PyObject_Free(p); /* not the layout above: leave the rest */
				return filled;
			}
			if (pool_field(pool, PB_POOL_COUNT) == 1) {
				PyObject_Free(p); /* an empty pool: every used one is full */
				break;
			}
			keep(p);
			filled++;
		}
	}
	return filled;
}

/* glibc's main arena: take every free chunk of up to 1 KiB-odd (its
 * tcache, fast and small bins, and what larger free chunks split into),
 * largest sizes first, until an allocation comes from the top of the heap
 * (at or above where the top chunk began: the heap grows up). Bounded,
 * in case the arena is not one contiguous heap. */
static size_t fill_heap(void)
{
	size_t filled = 0, budget = 1u << 20;
	struct mallinfo2 mi = mallinfo2();
	uintptr_t top = (uintptr_t)sbrk(0) - mi.keepcost;

	for (size_t size = 1032; size >= 24 && budget; size -= 16) {
		while (budget--) {
			void *p = malloc(size);
			if (!p)
				return filled;
			if ((uintptr_t)p >= top) {
				free(p);
				break;
			}
			keep(p);
			filled++;
		}
	}
	return filled;
}

/* After fork, a child that allocates gets the first free block of its
 * size, a hole in a page it shares with its parent, and copies that page
 * (4 KiB for one object): a zygote's start-up takes a few hundred blocks
 * freed by the fork-server before its clone, over as many shared pages
 * (pb_child_enter's paths, the plugin's import). Filled here, the next
 * blocks come from empty pools and the top of the heap: pages of the
 * child's own, packed. The filler blocks are kept; they sit in pages the
 * process already had, shared with its children. Not for a zygote: its
 * filler would land in pages it still shares with the fork-server (one
 * plugin's own pages went from 1.45 to 1.74 MB that way). */
size_t pb_interp_fill_holes(void)
{
	return fill_pools() + fill_heap();
}

/* The glue's code object: the bytecode compiled at build time when this
 * interpreter reads that version of it, else the source compiled now. */
static PyObject *embedded_code(const unsigned char *code, size_t len, const char *source,
                               const char *filename)
{
	long magic = PyImport_GetMagicNumber();

	if (len > 4 && magic != -1 &&
	    (unsigned long)(code[0] | code[1] << 8 | code[2] << 16 | (unsigned long)code[3] << 24) ==
	            (unsigned long)magic) {
		PyObject *obj = PyMarshal_ReadObjectFromString((const char *)code + 4, (Py_ssize_t)(len - 4));
		if (obj && PyCode_Check(obj))
			return obj;
		Py_XDECREF(obj);
	}
	PyErr_Clear();
	return Py_CompileString(source, filename, Py_file_input);
}

static PyObject *glue;

PyObject *pb_glue_load(void)
{
	PyObject *code;

	if (glue)
		return glue;
	code = embedded_code(bootstrap_code, sizeof(bootstrap_code), bootstrap_source, "<plugbox-worker>");
	if (!code)
		return NULL;
	glue = PyImport_ExecCodeModule("_plugbox_worker", code);
	Py_DECREF(code);
	return glue;
}

PyObject *pb_glue(void)
{
	return glue;
}

/* The built-in `plugbox` module plugins import: its body is Python
 * (worker/plugbox_module.py), executed when it is first imported (by the
 * glue's setup(), before any plugin code). The C halves of host calls and
 * logging are private names in its namespace, there before the body runs. */
static const char plugbox_module_source[] =
#include "worker/plugbox_module.inc"
        ;
static const unsigned char plugbox_module_code[] = {
#include "worker/plugbox_module.code"
};

static PyMethodDef plugbox_natives[] = {
	{ "_host_call", pb_py_host_call, METH_VARARGS,
	  "_host_call(name, args, kwargs): send a HostCall and wait for its HostResult." },
	{ "_log", pb_py_log, METH_VARARGS,
	  "_log(level, logger, message[, exc_text]): send one Log record to the supervisor." },
	{ NULL, NULL, 0, NULL },
};

static int plugbox_exec(PyObject *module)
{
	PyObject *dict = PyModule_GetDict(module);
	PyObject *builtins = PyEval_GetBuiltins();
	PyObject *code, *res;

	if (PyDict_SetItemString(dict, "__builtins__", builtins) < 0 ||
	    PyModule_AddFunctions(module, plugbox_natives) < 0)
		return -1;
	code = embedded_code(plugbox_module_code, sizeof(plugbox_module_code), plugbox_module_source, "<plugbox>");
	if (!code)
		return -1;
	res = PyEval_EvalCode(code, dict, dict);
	Py_DECREF(code);
	if (!res)
		return -1;
	Py_DECREF(res);
	return 0;
}

static PyModuleDef_Slot plugbox_slots[] = {
	{ Py_mod_exec, (void *)plugbox_exec },
	{ 0, NULL },
};

static struct PyModuleDef plugbox_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "plugbox",
	.m_doc = "What a plugin may use from plugbox: exports, host calls, logging.",
	.m_size = 0,
	.m_slots = plugbox_slots,
};

PyObject *PyInit_plugbox(void)
{
	return PyModuleDef_Init(&plugbox_def);
}
