/* install.c - plugbox-worker --install: the unpacker of `plugbox install`.
 *
 * A wheel or a plugin directory is untrusted input. This mode keeps the
 * start-up order of a plugin worker (main.c): the policy is read, the
 * capability check and Landlock are in place, CPython starts with the
 * standard library alone, the seccomp filter is loaded, and only then does
 * worker/install.py, trusted code using the standard library only
 * (zipfile, email, csv, hashlib, tomllib), touch the input: the wheel on
 * fd 3, opened read-only by the supervisor, or the directory bound
 * read-only into the mount tree. The one tree it may write is the staging
 * directory (mount tree, Landlock; install.policy kills symlink, link,
 * mknod and rename). It answers with a few lines on fd 4 (install.h),
 * which the supervisor reads as hostile.
 *
 * Mode "scan" is the same walls around the discovery scan: for each plugin
 * NAME given after the options, the metadata a worker's Hello would carry,
 * read by the same glue (bootstrap.read_static) from --plugin DIR/NAME bound
 * read-only, answered as one Envelope per plugin (id i+1: a Hello, or an
 * Error for a plugin whose metadata is bad) on fd 4, framed as on a
 * channel; the supervisor decodes them as hostile (helpers/scan.c).
 *
 * Mode "compile" is the same walls around another job: the bytecode
 * compiler of a plugin's cache (compile.c, compile.py), which reads the
 * plugin bound read-only at --plugin and writes pycs beneath --staging.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/install.h"
#include "install_mode.h"
#include "worker.h"

enum { PB_FD_INPUT = PB_FD_CALLS,
       PB_FD_RESULT = PB_FD_REPLIES };

static const char install_source[] =
#include "worker/install.inc"
        ;

/* One write of the whole answer: the supervisor reads until EOF anyway,
 * but a single write keeps a killed worker from leaving half a line. */
static void answer(const char *text, size_t len)
{
	while (len > 0) {
		ssize_t n = write(PB_FD_RESULT, text, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

/* "failed TAB why": control characters and tabs become '?'. */
static void answer_failed(const char *why)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "failed\t%s", why);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	for (int i = 7; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[n++] = '\n';
	answer(line, (size_t)n);
}

static void usage_exit(void)
{
	fprintf(stderr, "usage: /ABSOLUTE/plugbox-worker --install wheel|dir|version [--staging DIR] "
	                "[--source DIR --source-id DEV:INO] [--old DIR] [--name NAME] --landlock MODE [--read PATH]... [--write PATH]...\n"
	                "         [--limit KEY=N]... [--probe w:PATH|r:PATH]...\n"
	                "       /ABSOLUTE/plugbox-worker --install compile --staging DIR --plugin DIR [--alias DIR]... "
	                "[--name NAME] ...\n"
	                "       /ABSOLUTE/plugbox-worker --install scan --plugin PLUGINS ... NAME...\n"
	                "(started by plugbox install with descriptors 3-6 prepared; not for direct use)\n");
	exit(PB_EXIT_INTERNAL);
}

#define MAX_LIMITS 8
#define MAX_ALIASES 4

/* What a job needs besides its mode and trees. */
struct job_args {
	const char *source_id;      /* dir: DEV:INO the source must be */
	const char *plugin;         /* compile: the plugin, where its workers see it */
	char *aliases[MAX_ALIASES]; /* compile: other paths its workers import it by */
	size_t naliases;
	char *limits[MAX_LIMITS];
	size_t nlimits;
	char *probes[PB_INSTALL_MAX_PROBES];
	size_t nprobes;
};

/* Mode "scan": one answer per plugin, whatever happens to the others. */
static int run_scan(const char *plugins, char *const *names, size_t n)
{
	PyObject *glue = pb_glue_load();
	char dir[4096];

	if (!glue)
		return -1;
	for (size_t i = 0; i < n; i++) {
		PyObject *info = NULL;
		int r = -ENAMETOOLONG;

		if (snprintf(dir, sizeof(dir), "%s/%s", plugins, names[i]) < (int)sizeof(dir)) {
			info = PyObject_CallMethod(glue, "scan_one", "ssi", names[i], dir, PB_ENTRY_POINTS_MAX);
			r = info ? pb_send_hello(PB_FD_RESULT, i + 1, names[i], info, false) : pb_send_python_error(i + 1);
		}
		Py_XDECREF(info);
		PyErr_Clear();
		if (r < 0 && pb_send_error(i + 1, PLUGBOX__ERROR_KIND__ERROR_KIND_CONFIG, "",
		                           r == -EMSGSIZE ? "its metadata is larger than a frame may be"
		                                          : "its metadata could not be read",
		                           "") < 0)
			return -1;
	}
	return 0;
}

/* Everything after the layers: run install.run(...) (or the compiler) and
 * write its text. */
static int run_unpacker(const char *mode, const char *staging, const char *source, const char *old,
                        const char *name, const struct job_args *a)
{
	PyObject *code, *module, *lim = PyDict_New(), *prb = PyList_New(0), *text = NULL;
	char *const *limits = a->limits, *const *probes = a->probes;
	size_t nlimits = a->nlimits, nprobes = a->nprobes;
	int r = -1;

	if (!lim || !prb)
		goto out;
	for (size_t i = 0; i < nlimits; i++) {
		char *eq = strchr(limits[i], '=');
		char *end;
		unsigned long long v;
		errno = 0;
		v = eq ? strtoull(eq + 1, &end, 10) : 0;
		if (!eq || errno || end == eq + 1 || *end)
			goto out;
		PyObject *key = PyUnicode_FromStringAndSize(limits[i], eq - limits[i]);
		PyObject *val = PyLong_FromUnsignedLongLong(v);
		int bad = !key || !val || PyDict_SetItem(lim, key, val) < 0;
		Py_XDECREF(key);
		Py_XDECREF(val);
		if (bad)
			goto out;
	}
	for (size_t i = 0; i < nprobes; i++) {
		PyObject *p = PyUnicode_FromString(probes[i]);
		int bad = !p || PyList_Append(prb, p) < 0;
		Py_XDECREF(p);
		if (bad)
			goto out;
	}
	if (!strcmp(mode, "compile")) {
		text = pb_compile_run(staging, a->plugin, name, a->aliases, a->naliases, lim);
		goto answer;
	}
	code = Py_CompileString(install_source, "<plugbox-install>", Py_file_input);
	if (!code)
		goto out;
	module = PyImport_ExecCodeModule("_plugbox_install", code);
	Py_DECREF(code);
	if (!module)
		goto out;
	text = PyObject_CallMethod(module, "run", "sizzzzzOO", mode, PB_FD_INPUT, staging, source,
	                           a->source_id, old, name, lim, prb);
	Py_DECREF(module);
answer:
	if (text) {
		Py_ssize_t len;
		const char *s = PyUnicode_AsUTF8AndSize(text, &len);
		if (s && len > 0 && (size_t)len <= PB_INSTALL_RESULT_MAX) {
			answer(s, (size_t)len);
			r = 0;
		}
	}
out:
	if (r < 0) {
		/* install.run answers for every error it expects; this is a bug or
		 * memory running out. */
		PyErr_Clear();
		answer_failed("the unpacker itself failed (out of memory, or a bug in plugbox)");
	}
	Py_XDECREF(text);
	Py_XDECREF(lim);
	Py_XDECREF(prb);
	return r;
}

int pb_install_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "install", required_argument, NULL, 'i' },
		{ "staging", required_argument, NULL, 's' },
		{ "source", required_argument, NULL, 'S' },
		{ "old", required_argument, NULL, 'o' },
		{ "name", required_argument, NULL, 'n' },
		{ "landlock", required_argument, NULL, 'l' },
		{ "read", required_argument, NULL, 'R' },
		{ "write", required_argument, NULL, 'W' },
		{ "limit", required_argument, NULL, 'L' },
		{ "probe", required_argument, NULL, 'p' },
		{ "plugin", required_argument, NULL, 'P' },
		{ "alias", required_argument, NULL, 'a' },
		{ "source-id", required_argument, NULL, 'I' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode = NULL, *staging = NULL, *source = NULL, *old = NULL, *name = NULL, *landlock = NULL;
	const char *read_paths[PB_LANDLOCK_MAX_PATHS], *write_paths[PB_LANDLOCK_MAX_PATHS];
	struct job_args a = { 0 };
	struct pb_landlock_request ll = { .read = read_paths, .write = write_paths };
	char why[512];
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'i': mode = optarg; break;
		case 's': staging = optarg; break;
		case 'S': source = optarg; break;
		case 'o': old = optarg; break;
		case 'n': name = optarg; break;
		case 'l': landlock = optarg; break;
		case 'R':
		case 'W':
			if (pb_landlock_request_add(&ll, c == 'W', optarg) < 0)
				usage_exit();
			break;
		case 'L':
			if (a.nlimits == MAX_LIMITS)
				usage_exit();
			a.limits[a.nlimits++] = optarg;
			break;
		case 'p':
			if (a.nprobes == PB_INSTALL_MAX_PROBES)
				usage_exit();
			a.probes[a.nprobes++] = optarg;
			break;
		case 'P': a.plugin = optarg; break;
		case 'I': a.source_id = optarg; break;
		case 'a':
			if (a.naliases == MAX_ALIASES || optarg[0] != '/')
				usage_exit();
			a.aliases[a.naliases++] = optarg;
			break;
		default: usage_exit();
		}
	}
	bool scan = mode && !strcmp(mode, "scan");
	if (!mode || !landlock || (optind != argc && !scan) || argv[0][0] != '/')
		usage_exit();
	if (scan ? !a.plugin || a.plugin[0] != '/' : !strcmp(mode, "version") ? !old
	                                     : !strcmp(mode, "compile")       ? !staging || !a.plugin || a.plugin[0] != '/'
	                                                                      : (!staging || (!strcmp(mode, "dir") ? !source || !a.source_id : strcmp(mode, "wheel") != 0)))
		usage_exit();
	if (!strcmp(landlock, "required"))
		ll.mode = PB_LANDLOCK_REQUIRED;
	else if (!strcmp(landlock, "optional"))
		ll.mode = PB_LANDLOCK_OPTIONAL;
	else if (!strcmp(landlock, "off"))
		ll.mode = PB_LANDLOCK_OFF;
	else
		usage_exit();
	for (int fd = 0; fd < PB_FD_FIRST_UNUSED; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			usage_exit();

	/* As in main.c: nothing but stdio, the input, the result, the report
	 * socket and the policy survives into Python. */
	if (close_range(PB_FD_FIRST_UNUSED, ~0U, 0) < 0) {
		answer_failed("descriptors: close_range failed");
		return PB_EXIT_SANDBOX;
	}
	/* A write past RLIMIT_FSIZE fails with EFBIG, which install.py reports
	 * as a refusal naming the member, instead of killing the process. */
	signal(SIGXFSZ, SIG_IGN);
	r = pb_sandbox_read_policy(PB_FD_POLICY, &blob, &blob_len, why, sizeof(why));
	close(PB_FD_POLICY);
	if (r < 0) {
		answer_failed(why);
		return PB_EXIT_SANDBOX;
	}
	if (pb_layers_capabilities(why, sizeof(why)) < 0 || pb_layers_landlock(&ll, why, sizeof(why)) < 0) {
		answer_failed(why);
		return PB_EXIT_SANDBOX;
	}
	if (pb_interp_init(argv[0], "install", why, sizeof(why)) < 0) {
		answer_failed(why);
		return PB_EXIT_INTERNAL;
	}
	r = pb_sandbox_apply(blob, blob_len, why, sizeof(why));
	free(blob);
	/* There is no plugin to import first: rules for after start-up apply
	 * from the start too. */
	if (r == 0)
		r = pb_sandbox_apply_after_start(why, sizeof(why));
	if (r < 0) {
		answer_failed(why);
		return PB_EXIT_SANDBOX;
	}
	if (scan)
		r = run_scan(a.plugin, argv + optind, (size_t)(argc - optind));
	else
		r = run_unpacker(mode, staging, source, old, name, &a);
	fflush(NULL);
	_exit(r < 0 ? PB_EXIT_INTERNAL : 0);
}
