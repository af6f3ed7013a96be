/* main.c - plugbox-worker: one sandboxed CPython for one plugin.
 *
 * Start-up order (DESIGN.md invariant 1): take the policy from the
 * supervisor, start CPython with the standard library only, apply every
 * sandbox layer, and only then read anything in the plugin directory (the
 * glue in bootstrap.py does that). Then load the seccomp programs the
 * policy keeps for after start-up, send Hello, and answer calls until told
 * to stop (calls.c). Errors before Hello go back on the channel as an Error
 * envelope with id 0.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/frame.h"
#include "install_mode.h"
#include "proto/names.h"
#include "proto/protocol.h"
#include "worker.h"

int pb_send_hello(int fd, uint64_t id, const char *name, PyObject *info, bool with_layers)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Hello hello = PLUGBOX__HELLO__INIT;
	PyObject *exports = PyDict_GetItemString(info, "exports");
	PyObject *eps = PyDict_GetItemString(info, "entry_points");
	PyObject *path = PyDict_GetItemString(info, "sys_path");
	Plugbox__EntryPoint *ep_store = NULL, **ep_ptrs = NULL;
	char **export_ptrs = NULL, **path_ptrs = NULL;
	size_t nlayers = 0;
	int r = -ENOMEM;

	hello.protocol_version = PB_PROTOCOL_VERSION;
	hello.plugin = (char *)name;
	hello.layout = (char *)PyUnicode_AsUTF8(PyDict_GetItemString(info, "layout"));
	hello.version = (char *)PyUnicode_AsUTF8(PyDict_GetItemString(info, "version"));
	PyObject *prio = PyDict_GetItemString(info, "priority");
	hello.priority = prio && PyLong_Check(prio) ? (int32_t)PyLong_AsLong(prio) : 0;
	if (!hello.layout || !hello.version || !exports || !eps || !path)
		return -EINVAL;

	hello.n_exports = (size_t)PyList_Size(exports);
	hello.n_entry_points = (size_t)PyList_Size(eps);
	hello.n_sys_path = (size_t)PyList_Size(path);
	export_ptrs = calloc(hello.n_exports + 1, sizeof(char *));
	path_ptrs = calloc(hello.n_sys_path + 1, sizeof(char *));
	ep_store = calloc(hello.n_entry_points + 1, sizeof(*ep_store));
	ep_ptrs = calloc(hello.n_entry_points + 1, sizeof(*ep_ptrs));
	if (!export_ptrs || !path_ptrs || !ep_store || !ep_ptrs)
		goto out;
	r = -EINVAL;
	for (size_t i = 0; i < hello.n_exports; i++)
		if (!(export_ptrs[i] = (char *)PyUnicode_AsUTF8(PyList_GET_ITEM(exports, i))))
			goto out;
	for (size_t i = 0; i < hello.n_sys_path; i++)
		if (!(path_ptrs[i] = (char *)PyUnicode_AsUTF8(PyList_GET_ITEM(path, i))))
			goto out;
	for (size_t i = 0; i < hello.n_entry_points; i++) {
		PyObject *t = PyList_GET_ITEM(eps, i);
		plugbox__entry_point__init(&ep_store[i]);
		if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 3)
			goto out;
		ep_store[i].group = (char *)PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, 0));
		ep_store[i].name = (char *)PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, 1));
		ep_store[i].value = (char *)PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, 2));
		if (!ep_store[i].group || !ep_store[i].name || !ep_store[i].value)
			goto out;
		ep_ptrs[i] = &ep_store[i];
	}
	char **layers = with_layers ? pb_layers_list(&nlayers) : NULL;
	hello.exports = export_ptrs;
	hello.sys_path = path_ptrs;
	hello.entry_points = ep_ptrs;
	hello.n_layers = nlayers;
	hello.layers = layers;
	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	r = pb_envelope_send(fd, &env, PB_FRAME_MAX_DEFAULT);
out:
	PyErr_Clear();
	free(export_ptrs);
	free(path_ptrs);
	free(ep_store);
	free(ep_ptrs);
	return r;
}

static void usage_exit(void)
{
	fprintf(stderr, "usage: /ABSOLUTE/plugbox-worker --name NAME --dir PLUGIN_DIR --root IMPORT_ROOT\n"
	                "         --landlock required|optional|off --network none|host [--read PATH]... [--write PATH]...\n"
	                "         [--cache DIR] [--list-root]\n"
	                "(started by plugbox with descriptors 3-6 prepared; not for direct use)\n");
	exit(PB_EXIT_INTERNAL);
}

/* What the supervisor's command line says (spawn.c writes it). */
struct worker_args {
	const char *name, *dir, *root, *cache;
	const char *read_paths[PB_LANDLOCK_MAX_PATHS], *write_paths[PB_LANDLOCK_MAX_PATHS];
	struct pb_landlock_request ll;
	bool zygote;               /* --zygote: become the plugin's zygote (zygote.c) */
	const char *fresh_scratch; /* --fresh-scratch DIR: its children empty DIR first */
};

/* The steps of pb_worker_run return GO_ON, or the exit status to end with
 * (the error already sent on the channel as an Error with id 0). */
#define GO_ON (-1)

static int fail(int status, const char *why)
{
	pb_send_error(0, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "", why, "");
	return status;
}

/* --landlock and --network; and descriptors 0-6 must all be there. */
static void parse_modes(struct worker_args *a, const char *landlock, const char *network)
{
	if (!strcmp(landlock, "required"))
		a->ll.mode = PB_LANDLOCK_REQUIRED;
	else if (!strcmp(landlock, "optional"))
		a->ll.mode = PB_LANDLOCK_OPTIONAL;
	else if (!strcmp(landlock, "off"))
		a->ll.mode = PB_LANDLOCK_OFF;
	else
		usage_exit();
	if (strcmp(network, "none") != 0 && strcmp(network, "host") != 0)
		usage_exit();
	a->ll.network = !strcmp(network, "host");
	for (int fd = 0; fd < PB_FD_FIRST_UNUSED; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			usage_exit();
}

static void parse_args(int argc, char **argv, struct worker_args *a)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "dir", required_argument, NULL, 'd' },
		{ "root", required_argument, NULL, 'r' },
		{ "landlock", required_argument, NULL, 'l' },
		{ "network", required_argument, NULL, 'N' },
		{ "read", required_argument, NULL, 'R' },
		{ "write", required_argument, NULL, 'W' },
		{ "cache", required_argument, NULL, 'C' },
		{ "list-root", no_argument, NULL, 'L' },
		{ "zygote", no_argument, NULL, 'Z' },
		{ "fresh-scratch", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	const char *landlock = NULL, *network = NULL;
	int c;

	memset(a, 0, sizeof(*a));
	a->ll.read = a->read_paths;
	a->ll.write = a->write_paths;
	optind = 0; /* getopt from the start: a fork-server child may have used it */
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': a->name = optarg; break;
		case 'd': a->dir = optarg; break;
		case 'r': a->root = optarg; break;
		case 'l': landlock = optarg; break;
		case 'N': network = optarg; break;
		case 'C': a->cache = optarg; break;
		case 'L': a->ll.list_root = true; break;
		case 'Z': a->zygote = true; break;
		case 'F': a->fresh_scratch = optarg; break;
		case 'R':
		case 'W':
			if (pb_landlock_request_add(&a->ll, c == 'W', optarg) < 0)
				usage_exit();
			break;
		default: usage_exit();
		}
	}
	/* argv[0] is our absolute path: there is no /proc/self/exe in the
	 * worker's file system. */
	if (!a->name || !a->dir || !a->root || !landlock || !network || optind != argc ||
	    !pb_valid_plugin_name(a->name) || a->dir[0] != '/' || a->root[0] != '/' || argv[0][0] != '/' ||
	    (a->cache && a->cache[0] != '/'))
		usage_exit();
	parse_modes(a, landlock, network);
}

/* Invariant 1: nothing but the channel and stdio survives into Python. */
static int close_inherited(bool warm)
{
	if (close_range(PB_FD_FIRST_UNUSED, ~0U, 0) < 0)
		return fail(PB_EXIT_SANDBOX, "descriptors: close_range failed");
	pb_layers_add(warm ? "start: cloned from the fork-server (its address layout and hash secret are shared "
	                     "with every worker cloned from it)"
	                   : "start: exec (its own address layout and hash secret)");
	pb_layers_add("descriptors: 0-6 only, stdin /dev/null");
	pb_layers_add("environment: LANG only");
	return GO_ON;
}

static int take_policy(uint8_t **blob, size_t *blob_len)
{
	char why[512];
	int r = pb_sandbox_read_policy(PB_FD_POLICY, blob, blob_len, why, sizeof(why));

	close(PB_FD_POLICY);
	return r < 0 ? fail(PB_EXIT_SANDBOX, why) : GO_ON;
}

/* Before the interpreter reads a byte: the walls of invariant 1 that this
 * process raises itself. Fail closed. */
static int raise_walls(const struct pb_landlock_request *ll)
{
	char why[512];

	if (pb_layers_capabilities(why, sizeof(why)) < 0 || pb_layers_landlock(ll, why, sizeof(why)) < 0)
		return fail(PB_EXIT_SANDBOX, why);
	return GO_ON;
}

/* CPython with the standard library only (a warm child has it already). */
static int start_interpreter(const char *executable, const char *name, bool warm)
{
	char why[512];

	if (!warm && pb_interp_init(executable, name, why, sizeof(why)) < 0)
		return fail(PB_EXIT_INTERNAL, why);
	/* before the filter: the policy needs no rule for it */
	if (pb_cancel_install(why, sizeof(why)) < 0)
		return fail(PB_EXIT_INTERNAL, why);
	return GO_ON;
}

static int load_filter(uint8_t *blob, size_t blob_len)
{
	char why[512];
	int r = pb_sandbox_apply(blob, blob_len, why, sizeof(why));

	free(blob);
	return r < 0 ? fail(PB_EXIT_SANDBOX, why) : GO_ON;
}

/* The plugin's bytecode cache (read-only, written by plugbox's compiler),
 * then its paths and its import: the first bytes of the plugin directory
 * read, inside every wall. A cache that cannot be used leaves the plugin
 * uncached, never unstarted. *info: what Hello says. */
static int import_plugin(const struct worker_args *a, PyObject **info)
{
	PyObject *glue = pb_glue_load();

	if (!glue) {
		pb_send_python_error(0);
		return PB_EXIT_INTERNAL;
	}
	if (a->cache) {
		PyObject *used = PyObject_CallMethod(glue, "use_cache", "ssss", a->cache, a->name, a->dir, a->root);
		if (!used)
			PyErr_Clear();
		Py_XDECREF(used);
	}
	*info = PyObject_CallMethod(glue, "setup", "sss[ss]i", a->name, a->dir, a->root, PB_PYTHON_STDLIB,
	                            PB_PYTHON_DYNLOAD, PB_ENTRY_POINTS_MAX);
	if (!*info || !PyDict_Check(*info)) {
		Py_XDECREF(*info);
		*info = NULL;
		pb_send_python_error(0);
		return 0; /* the plugin's own failure, said on the channel */
	}
	return GO_ON;
}

/* Rules for after start-up forbid what importing needs (strict: no
 * opening files), so the plugin is imported first, under the start-up
 * rules. Last before Hello: the supervisor must not hand out a worker that
 * is missing part of its policy. */
static int load_after_start(void)
{
	char why[512];

	if (pb_sandbox_has_after_start()) {
		PyObject *done = PyObject_CallMethod(pb_glue(), "preload", NULL);
		if (!done)
			PyErr_Clear();
		Py_XDECREF(done);
	}
	if (pb_sandbox_apply_after_start(why, sizeof(why)) < 0)
		return fail(PB_EXIT_SANDBOX, why);
	return GO_ON;
}

/* Everything after exec, or, for a child of the fork-server (warm: its
 * interpreter and glue are already up), after pb_child_enter: the walls in
 * the order of invariant 1, then the plugin, then calls until told to
 * stop. */
int pb_worker_run(int argc, char **argv, bool warm)
{
	struct worker_args a;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	PyObject *info = NULL;
	int r;

	parse_args(argc, argv, &a);
	if ((r = close_inherited(warm)) != GO_ON || (r = take_policy(&blob, &blob_len)) != GO_ON)
		return r;
	if ((r = raise_walls(&a.ll)) != GO_ON || (r = start_interpreter(argv[0], a.name, warm)) != GO_ON) {
		free(blob);
		return r;
	}
	if ((r = load_filter(blob, blob_len)) != GO_ON || (r = import_plugin(&a, &info)) != GO_ON)
		return r;
	/* A zygote returns here only in a child, its own programs stacked. */
	if (a.zygote && (r = pb_zygote_become(a.fresh_scratch)) != 0) {
		Py_DECREF(info);
		return r;
	}
	r = load_after_start();
	if (r == GO_ON)
		r = pb_send_hello(PB_FD_REPLIES, 0, a.name, info, true) < 0 ? PB_EXIT_INTERNAL : GO_ON;
	Py_DECREF(info);
	if (r != GO_ON)
		return r;
	r = pb_serve();
	/* Skip Py_FinalizeEx: plugin atexit handlers and threads have nothing
	 * left to say, and the supervisor only waits for the exit. */
	fflush(NULL);
	_exit(r < 0 ? PB_EXIT_INTERNAL : 0);
}

int main(int argc, char **argv)
{
	/* `plugbox install` starts this same binary to unpack untrusted input
	 * (install.c): the same layers, another job. */
	if (argc > 1 && !strcmp(argv[1], "--install"))
		return pb_install_main(argc, argv);
	/* The fork-server (forkserver.c): workers cloned from a warm interpreter. */
	if (argc > 1 && !strcmp(argv[1], "--fork-server"))
		return pb_forkserver_main(argc, argv);
	return pb_worker_run(argc, argv, false);
}
