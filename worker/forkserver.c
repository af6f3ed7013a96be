/* forkserver.c - plugbox-worker --fork-server: a warm interpreter that
 * clones workers (the supervisor's side and the protocol:
 * supervisor/forkserver.h, forkserver_wire.h).
 *
 * It starts CPython with the standard library only, as every worker does
 * before its sandbox, loads the glue and the plugbox module, compiles once
 * (the first compile() of a process builds the AST types), freezes what
 * start-up allocated (gc.freeze: the children then share those pages
 * instead of copying them at their first collection) and waits for
 * requests. For each it clones a child into the plan's namespaces with
 * CLONE_PARENT, so the child is the supervisor's; the child runs
 * PyOS_AfterFork_Child, enters the jail exactly as an exec'd worker does
 * before exec (pb_child_enter), and then runs the worker's main past
 * interpreter start. The fork-server never reads, imports or names a
 * plugin's files (DESIGN.md): only its children do, inside their
 * sandboxes. The price: every child shares its hash secret and address
 * layout.
 *
 * Under --spawn zygote, its children are the plugins' zygotes (their argv
 * says --zygote): each enters its plugin's jail as any child does, then
 * imports its plugin and forks that plugin's workers (zygote.c). Every
 * zygote then shares the pages of this one interpreter.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proto/fdpass.h"
#include "jail/forkserver_wire.h"
#include "jail/jail.h"
#include "proto/names.h"
#include "proto/protocol.h"
#include "worker.h"

/* The fork-server's own command line (main's argv), for a zygote to show
 * itself as one in ps and /proc/PID/cmdline; and whether this process is
 * a clone. */
static char **own_argv;
static bool cloned;

bool pb_forkserver_cloned(void)
{
	return cloned;
}

/* A child cloned from here: its command line, the memory it shares with
 * us from argv[1] on ("--fork-server" and the room the supervisor left
 * after it), becomes "--name PLUGIN", or "--zygote --name PLUGIN" for a
 * plugin's zygote, as an exec'd worker's or zygote's says, so that ps,
 * plugbox selftest and the tests find it and its workers (the kernel reads
 * /proc/PID/cmdline from that memory). Returns whether it is a zygote. */
static bool show_name(char **argv)
{
	const char *name = NULL;
	bool zygote = false;
	char title[16 + PB_PLUGIN_NAME_MAX + 1];
	int len;

	for (int i = 0; argv[i]; i++) {
		zygote |= !strcmp(argv[i], "--zygote");
		if (!strcmp(argv[i], "--name") && argv[i + 1])
			name = argv[i + 1];
	}
	if (!name || !own_argv || !own_argv[1])
		return zygote;
	if (zygote)
		len = snprintf(title, sizeof(title), "--zygote%c--name%c%s", '\0', '\0', name);
	else
		len = snprintf(title, sizeof(title), "--name%c%s", '\0', name);
	char *start = own_argv[1], *end = start;
	for (int i = 1; own_argv[i]; i++)
		end = own_argv[i] + strlen(own_argv[i]) + 1;
	if (len < 0 || (size_t)len + 1 > (size_t)(end - start))
		return zygote;
	memset(start, 0, (size_t)(end - start));
	memcpy(start, title, (size_t)len);
	return zygote;
}

static int reply(int err, pid_t pid, int pidfd, const char *why)
{
	struct pb_forkserver_reply r;

	memset(&r, 0, sizeof(r));
	r.err = err;
	r.pid = pid;
	snprintf(r.why, sizeof(r.why), "%s", why);
	return pb_fdpass_send(PB_FORKSERVER_FD, &r, sizeof(r), &pidfd, pidfd >= 0 ? 1 : 0, 0) == (ssize_t)sizeof(r)
	               ? 0
	               : -1;
}

/* Start-up for every child to share: the interpreter, the glue, the
 * plugbox module, and gc.freeze() over all of it. zygotes: its children
 * are zygotes (--spawn shared-zygote), not workers. */
static int warm_up(const char *executable, bool zygotes, char *why, size_t why_len)
{
	PyObject *gc, *done;

	if (pb_interp_init(executable, "fork-server", why, why_len) < 0)
		return -1;
	if (!pb_glue_load() || !(done = PyImport_ImportModule("plugbox")))
		goto python_error;
	Py_DECREF(done);
	/* Zygotes only: traceback, which every zygote imports before it forks
	 * (bootstrap.py's preload), and with it re, enum, collections,
	 * functools, tokenize and the like (~1 MB): imported here once, their
	 * pages are every zygote's. Not for workers: their idle PSS grew by
	 * 0.37 MB with it (1.60 -> 1.97 MB, 100 fork-server workers, pinned),
	 * their first use of those modules copying the pages they touch. */
	if (zygotes && !(done = PyImport_ImportModule("traceback")))
		goto python_error;
	if (zygotes)
		Py_DECREF(done);
	/* Each child's start-up steps, rehearsed on the standard library
	 * (bootstrap.py's rehearse()): a zygote then copies ~0.5 MB fewer of
	 * this process's pages. */
	if (!(done = PyObject_CallMethod(pb_glue_load(), "rehearse", "[ss]", PB_PYTHON_STDLIB, PB_PYTHON_DYNLOAD)))
		goto python_error;
	Py_DECREF(done);
	/* A process's first compile() builds the AST types (~1.2 ms here);
	 * every child compiles its plugin's sources, so do it once for all. */
	if (!(done = Py_CompileString("pass", "<fork-server>", Py_file_input)))
		goto python_error;
	Py_DECREF(done);
	if (!(gc = PyImport_ImportModule("gc")))
		goto python_error;
	done = PyObject_CallMethod(gc, "freeze", NULL);
	Py_DECREF(gc);
	if (!done)
		goto python_error;
	Py_DECREF(done);
	pb_interp_fill_holes();
	return 0;
python_error:
	PyErr_Clear();
	snprintf(why, why_len, "python: cannot load the worker's glue");
	return -1;
}

static _Noreturn void run_child(const struct pb_jail *plan, char **argv, const int fds[PB_CHILD_FDS],
                                int exec_fd, pid_t parent)
{
	const char *step = "descriptors";
	int argc = 0, r;

	PyOS_AfterFork_Child();
	cloned = true;
	bool zygote = show_name(argv);
	r = pb_child_enter(fds, exec_fd, parent, plan, &step);
	/* Taking the plugin's uid without an exec left it not dumpable: an
	 * exec'd zygote is, and its workers (its uid, its pid namespace) may
	 * read its /proc entries, which is how a worker tells its own zygote
	 * from any other process (selftest's list_processes). */
	if (r == 0 && zygote && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) {
		r = -errno;
		step = "zygote: prctl(PR_SET_DUMPABLE)";
	}
	if (r < 0)
		pb_child_fail(-r, step);
	/* What close-on-exec says for an exec'd worker: the jail is in place. */
	close(PB_CHILD_EXEC_FD);
	while (argv[argc])
		argc++;
	_exit(pb_worker_run(argc, argv, true));
}

/* One request: unpack, clone, answer. Closes the descriptors it got. */
static void serve_request(const uint8_t *buf, size_t len, int *fds, size_t nfds, pid_t parent)
{
	struct pb_jail plan;
	char **argv = NULL;
	int child_fds[PB_CHILD_FDS], pidfd = -1;
	pid_t pid;

	if (nfds != PB_FORKSERVER_NFDS) {
		reply(EBADMSG, 0, -1, "fork-server: a request needs 7 descriptors");
		goto out;
	}
	if (pb_jail_unpack(buf, len, &plan, &argv) < 0) {
		reply(EBADMSG, 0, -1, "fork-server: a request it cannot read");
		goto out;
	}
	child_fds[0] = -1;
	for (int i = 1; i < PB_CHILD_FDS; i++)
		child_fds[i] = fds[i - 1];
	pid = (pid_t)syscall(SYS_clone, (unsigned long)plan.clone_flags | CLONE_PARENT | CLONE_PIDFD | SIGCHLD,
	                     NULL, &pidfd, NULL, NULL);
	if (pid == 0)
		run_child(&plan, argv, child_fds, fds[PB_CHILD_FDS - 1], parent);
	if (pid < 0)
		reply(errno, 0, -1, plan.clone_flags ? "namespaces: cannot create them" : "cannot start a worker");
	else
		reply(0, pid, pidfd, "");
	if (pidfd >= 0)
		close(pidfd);
	pb_jail_argv_free(argv);
	pb_jail_free(&plan);
out:
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

int pb_forkserver_main(int argc, char **argv)
{
	static uint8_t buf[PB_FORKSERVER_MAX_REQUEST];
	pid_t parent = getppid();
	char why[256];

	bool zygotes = argc > 2 && !strcmp(argv[2], "--zygotes");

	if (argc < 2 || argc > 3 + zygotes || argv[0][0] != '/') {
		fprintf(stderr, "usage: /ABSOLUTE/plugbox-worker --fork-server [--zygotes] (started by plugbox)\n");
		return PB_EXIT_INTERNAL;
	}
	own_argv = argv;
	if (warm_up(argv[0], zygotes, why, sizeof(why)) < 0) {
		reply(EIO, 0, -1, why);
		return PB_EXIT_INTERNAL;
	}
	if (reply(0, 0, -1, "") < 0)
		return PB_EXIT_INTERNAL;
	for (;;) {
		int fds[PB_FORKSERVER_NFDS + 4], mflags;
		size_t nfds;
		ssize_t n = pb_fdpass_recv(PB_FORKSERVER_FD, buf, sizeof(buf), 0, fds, sizeof(fds) / sizeof(fds[0]),
		                           &nfds, &mflags);

		if (n <= 0)
			return 0; /* the supervisor closed the socket, or is gone */
		if (nfds > sizeof(fds) / sizeof(fds[0]))
			nfds = sizeof(fds) / sizeof(fds[0]); /* the rest were closed */
		if (mflags & (MSG_TRUNC | MSG_CTRUNC)) {
			for (size_t i = 0; i < nfds; i++)
				close(fds[i]);
			reply(EMSGSIZE, 0, -1, "fork-server: a request too large");
			continue;
		}
		serve_request(buf, (size_t)n, fds, nfds, parent);
		/* The next child must not find this plugin's plan in its memory. */
		explicit_bzero(buf, (size_t)n);
	}
}
