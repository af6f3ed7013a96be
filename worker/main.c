/* main.c - plugbox-worker: one sandboxed CPython for one plugin.
 *
 * Start-up order (DESIGN.md invariant 1): take the policy from the
 * supervisor, start CPython with the standard library only, apply every
 * sandbox layer, and only then read anything in the plugin directory (the
 * glue in bootstrap.py does that). Then load the seccomp programs the
 * policy keeps for after start-up, send Hello, and answer calls until told
 * to stop. Errors before Hello go back on the channel as an Error envelope
 * with id 0.
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

#include "frame.h"
#include "value.h"
#include "worker.h"

#define PB_PROTOCOL_VERSION 1

enum { EXIT_INTERNAL = 70, EXIT_SANDBOX = 71 };

static PyObject *glue;

static int send_error(uint64_t id, Plugbox__ErrorKind kind, const char *type,
                      const char *message, const char *tb)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Error err = PLUGBOX__ERROR__INIT;

	err.kind = kind;
	err.type = (char *)(type ? type : "");
	err.message = (char *)(message ? message : "");
	err.traceback = (char *)(tb ? tb : "");
	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_ERROR;
	env.error = &err;
	return pb_envelope_send(PB_FD_REPLIES, &env, PB_FRAME_MAX_DEFAULT);
}

/* Report the pending Python exception as an error reply. Exceptions the glue
 * raises for a missing function or a bad plugin layout get their own kinds. */
static int send_python_error(uint64_t id)
{
	PyObject *etype, *exc, *etb;
	PyObject *desc = NULL, *not_found, *config;
	Plugbox__ErrorKind kind = PLUGBOX__ERROR_KIND__ERROR_KIND_EXCEPTION;
	const char *type = "Exception", *message = "", *tb = "";
	int r;

	PyErr_Fetch(&etype, &exc, &etb);
	PyErr_NormalizeException(&etype, &exc, &etb);
	if (!exc) {
		exc = Py_None;
		Py_INCREF(exc);
	}
	if (etb && exc != Py_None)
		PyException_SetTraceback(exc, etb);
	Py_XDECREF(etype);
	Py_XDECREF(etb);
	if (!glue) {
		PyObject *text = PyObject_Str(exc);
		const char *t = text ? PyUnicode_AsUTF8(text) : NULL;
		r = send_error(id, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "",
		               t ? t : "the worker's glue failed to load", "");
		Py_XDECREF(text);
		Py_DECREF(exc);
		return r;
	}
	not_found = PyObject_GetAttrString(glue, "NotFound");
	config = PyObject_GetAttrString(glue, "ConfigError");
	if (not_found && PyObject_IsInstance(exc, not_found) == 1)
		kind = PLUGBOX__ERROR_KIND__ERROR_KIND_NOT_FOUND;
	else if (config && PyObject_IsInstance(exc, config) == 1)
		kind = PLUGBOX__ERROR_KIND__ERROR_KIND_CONFIG;
	desc = PyObject_CallMethod(glue, "describe", "O", exc);
	if (desc && PyTuple_Check(desc) && PyTuple_GET_SIZE(desc) == 3) {
		const char *t = PyUnicode_AsUTF8(PyTuple_GET_ITEM(desc, 0));
		const char *m = PyUnicode_AsUTF8(PyTuple_GET_ITEM(desc, 1));
		const char *b = PyUnicode_AsUTF8(PyTuple_GET_ITEM(desc, 2));
		if (t && m && b) {
			type = t;
			message = m;
			tb = b;
		}
	}
	PyErr_Clear();
	if (kind != PLUGBOX__ERROR_KIND__ERROR_KIND_EXCEPTION)
		tb = "";
	r = send_error(id, kind, type, message, tb);
	Py_XDECREF(desc);
	Py_XDECREF(not_found);
	Py_XDECREF(config);
	Py_XDECREF(exc);
	return r;
}

static int send_hello(const char *name, PyObject *info)
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
	char **layers = pb_layers_list(&nlayers);
	hello.exports = export_ptrs;
	hello.sys_path = path_ptrs;
	hello.entry_points = ep_ptrs;
	hello.n_layers = nlayers;
	hello.layers = layers;
	env.body_case = PLUGBOX__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	r = pb_envelope_send(PB_FD_REPLIES, &env, PB_FRAME_MAX_DEFAULT);
out:
	PyErr_Clear();
	free(export_ptrs);
	free(path_ptrs);
	free(ep_store);
	free(ep_ptrs);
	return r;
}

static int handle_call(uint64_t id, const Plugbox__Call *call)
{
	PyObject *args = NULL, *kwargs = NULL, *res = NULL;
	Plugbox__Value *value = NULL;
	int r;

	args = PyTuple_New((Py_ssize_t)call->n_args);
	kwargs = PyDict_New();
	if (!args || !kwargs)
		goto python_error;
	for (size_t i = 0; i < call->n_args; i++) {
		PyObject *a = pb_value_to_py(call->args[i]);
		if (!a)
			goto python_error;
		PyTuple_SET_ITEM(args, (Py_ssize_t)i, a);
	}
	for (size_t i = 0; i < call->n_kwargs; i++) {
		PyObject *a = pb_value_to_py(call->kwargs[i]->value);
		if (!a || PyDict_SetItemString(kwargs, call->kwargs[i]->name, a) < 0) {
			Py_XDECREF(a);
			goto python_error;
		}
		Py_DECREF(a);
	}
	res = PyObject_CallMethod(glue, "invoke", "sOO", call->function, args, kwargs);
	if (!res)
		goto python_error;
	if (pb_py_to_value(res, &value) < 0)
		goto python_error;
	{
		Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
		Plugbox__Result result = PLUGBOX__RESULT__INIT;
		result.value = value;
		env.id = id;
		env.body_case = PLUGBOX__ENVELOPE__BODY_RESULT;
		env.result = &result;
		r = pb_envelope_send(PB_FD_REPLIES, &env, PB_FRAME_MAX_DEFAULT);
		if (r == -EMSGSIZE)
			r = send_error(id, PLUGBOX__ERROR_KIND__ERROR_KIND_EXCEPTION, "ValueError",
			               "the result is larger than a frame may be", "");
	}
	pbv_free(value);
	Py_XDECREF(args);
	Py_XDECREF(kwargs);
	Py_XDECREF(res);
	return r;

python_error:
	Py_XDECREF(args);
	Py_XDECREF(kwargs);
	Py_XDECREF(res);
	return send_python_error(id);
}

static int serve(void)
{
	struct pb_frame_reader reader;
	int r;

	pb_frame_reader_init(&reader, PB_FRAME_MAX_DEFAULT);
	for (;;) {
		Plugbox__Envelope *env = NULL;
		uint8_t *payload;
		uint32_t len;
		char why[256];

		r = pb_frame_read_blocking(&reader, PB_FD_CALLS);
		if (r == -ENODATA) {
			r = 0;          /* the supervisor closed the channel: done */
			break;
		}
		if (r < 0)
			break;
		r = pb_frame_take(&reader, &payload, &len);
		if (r < 0)
			break;
		r = pb_envelope_decode(payload, len, &env, why, sizeof(why));
		free(payload);
		if (r < 0) {
			fprintf(stderr, "plugbox-worker: bad frame from the supervisor: %s\n", why);
			break;
		}
		if (env->body_case == PLUGBOX__ENVELOPE__BODY_SHUTDOWN) {
			pb_envelope_free(env);
			r = 0;
			break;
		}
		if (env->body_case == PLUGBOX__ENVELOPE__BODY_CALL)
			r = handle_call(env->id, env->call);
		else
			r = send_error(env->id, PLUGBOX__ERROR_KIND__ERROR_KIND_BAD_REQUEST, "",
			               "the worker accepts only calls and shutdown", "");
		pb_envelope_free(env);
		if (r < 0)
			break;
	}
	pb_frame_reader_free(&reader);
	return r;
}

static bool valid_name(const char *s)
{
	if (!*s || strlen(s) > 128)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

static void usage_exit(void)
{
	fprintf(stderr, "usage: /ABSOLUTE/plugbox-worker --name NAME --dir PLUGIN_DIR --root IMPORT_ROOT\n"
	        "         --landlock required|optional|off --network none|host [--read PATH]... [--write PATH]...\n"
	        "(started by plugbox with descriptors 3-6 prepared; not for direct use)\n");
	exit(EXIT_INTERNAL);
}

#define MAX_PATH_ARGS 64

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "dir", required_argument, NULL, 'd' },
		{ "root", required_argument, NULL, 'r' },
		{ "landlock", required_argument, NULL, 'l' },
		{ "network", required_argument, NULL, 'N' },
		{ "read", required_argument, NULL, 'R' },
		{ "write", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *dir = NULL, *root = NULL, *landlock = NULL, *network = NULL;
	const char *read_paths[MAX_PATH_ARGS], *write_paths[MAX_PATH_ARGS];
	struct pb_landlock_request ll = { .read = read_paths, .write = write_paths };
	char why[512];
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'd': dir = optarg; break;
		case 'r': root = optarg; break;
		case 'l': landlock = optarg; break;
		case 'N': network = optarg; break;
		case 'R':
			if (ll.nread == MAX_PATH_ARGS)
				usage_exit();
			read_paths[ll.nread++] = optarg;
			break;
		case 'W':
			if (ll.nwrite == MAX_PATH_ARGS)
				usage_exit();
			write_paths[ll.nwrite++] = optarg;
			break;
		default: usage_exit();
		}
	}
	/* argv[0] is our absolute path: there is no /proc/self/exe in the
	 * worker's file system. */
	if (!name || !dir || !root || !landlock || !network || optind != argc || !valid_name(name) ||
	    dir[0] != '/' || root[0] != '/' || argv[0][0] != '/')
		usage_exit();
	if (!strcmp(landlock, "required"))
		ll.mode = PB_LANDLOCK_REQUIRED;
	else if (!strcmp(landlock, "optional"))
		ll.mode = PB_LANDLOCK_OPTIONAL;
	else if (!strcmp(landlock, "off"))
		ll.mode = PB_LANDLOCK_OFF;
	else
		usage_exit();
	if (strcmp(network, "none") && strcmp(network, "host"))
		usage_exit();
	ll.network = !strcmp(network, "host");
	for (int fd = 0; fd < PB_FD_FIRST_UNUSED; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			usage_exit();

	/* Invariant 1: nothing but the channel and stdio survives into Python. */
	if (close_range(PB_FD_FIRST_UNUSED, ~0U, 0) < 0) {
		send_error(0, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "", "descriptors: close_range failed", "");
		return EXIT_SANDBOX;
	}
	pb_layers_add("descriptors: 0-6 only, stdin /dev/null");
	pb_layers_add("environment: LANG only");
	r = pb_sandbox_read_policy(PB_FD_POLICY, &blob, &blob_len, why, sizeof(why));
	close(PB_FD_POLICY);
	if (r < 0) {
		send_error(0, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "", why, "");
		return EXIT_SANDBOX;
	}
	/* Before the interpreter reads a byte: the walls of DESIGN.md's
	 * invariant 1 that this process raises itself. Fail closed. */
	if (pb_layers_capabilities(why, sizeof(why)) < 0 || pb_layers_landlock(&ll, why, sizeof(why)) < 0) {
		send_error(0, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "", why, "");
		return EXIT_SANDBOX;
	}

	if (pb_interp_init(argv[0], name, why, sizeof(why)) < 0) {
		send_error(0, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "", why, "");
		return EXIT_INTERNAL;
	}
	r = pb_sandbox_apply(blob, blob_len, why, sizeof(why));
	free(blob);
	if (r < 0) {
		send_error(0, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "", why, "");
		return EXIT_SANDBOX;
	}

	/* From here on the plugin directory is read, inside the sandbox. */
	glue = pb_glue_load();
	if (!glue) {
		send_python_error(0);
		return EXIT_INTERNAL;
	}
	PyObject *info = PyObject_CallMethod(glue, "setup", "sss[ss]", name, dir, root,
	                                     PB_PYTHON_STDLIB, PB_PYTHON_DYNLOAD);
	if (!info || !PyDict_Check(info)) {
		Py_XDECREF(info);
		send_python_error(0);
		return 0;
	}
	/* Rules for after start-up forbid what importing needs (strict: no
	 * opening files), so the plugin is imported first, under the start-up
	 * rules. Last before Hello: the supervisor must not hand out a worker
	 * that is missing part of its policy. */
	if (pb_sandbox_has_after_start()) {
		PyObject *done = PyObject_CallMethod(glue, "preload", NULL);
		if (!done)
			PyErr_Clear();
		Py_XDECREF(done);
	}
	r = pb_sandbox_apply_after_start(why, sizeof(why));
	if (r < 0) {
		Py_DECREF(info);
		send_error(0, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "", why, "");
		return EXIT_SANDBOX;
	}
	r = send_hello(name, info);
	Py_DECREF(info);
	if (r < 0)
		return EXIT_INTERNAL;
	r = serve();
	/* Skip Py_FinalizeEx: plugin atexit handlers and threads have nothing
	 * left to say, and the supervisor only waits for the exit. */
	fflush(NULL);
	_exit(r < 0 ? EXIT_INTERNAL : 0);
}
