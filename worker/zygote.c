/* zygote.c - a plugin's zygote (plugbox --spawn zygote): a worker that
 * started as every worker does (every layer before any plugin code),
 * imported its plugin, and forks the plugin's workers instead of answering
 * calls (the supervisor's side and the protocol: supervisor/jail/zygote.h,
 * zygote_wire.h). When the supervisor has a fork-server, the zygote is one
 * of its clones (forkserver.c), which entered the plugin's whole jail before
 * this file runs: every plugin's zygote then shares the fork-server's
 * interpreter pages, and with them its address layout and hash secret.
 *
 * The zygote imports the plugin's package, the modules its exports name
 * and plugin.toml's `preload`, freezes what that allocated (gc.freeze: the
 * children share those pages instead of copying them at their first
 * collection), gives freed heap back (malloc_trim), and then waits on its
 * control socket. Its seccomp program (policy_compile.c, PB_COMPILE_ZYGOTE)
 * lets it fork; each child, before it reads a call, takes its own
 * descriptors, closes every one of the zygote's, and stacks the program the
 * supervisor compiled for its own pid, in which forking fails. The zygote
 * runs no calls; it holds the GIL while it waits, so threads the plugin
 * started at import time do not run in it, and a fork copies only the
 * thread that forks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proto/fdpass.h"
#include "jail/zygote_wire.h"
#include "proto/protocol.h"
#include "worker.h"

static int reply(int err, int pidfd, const char *why)
{
	struct pb_zygote_reply r;

	memset(&r, 0, sizeof(r));
	r.magic = PB_ZYGOTE_MAGIC;
	r.err = err;
	snprintf(r.why, sizeof(r.why), "%s", why);
	return pb_fdpass_send(PB_ZYGOTE_FD, &r, sizeof(r), &pidfd, pidfd >= 0 ? 1 : 0, 0) == (ssize_t)sizeof(r) ? 0
	                                                                                                        : -1;
}

static int fail(int status, const char *why)
{
	pb_send_error(0, PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE, "", why, "");
	return status;
}

/* The plugin and its preloads, frozen; the heap trimmed. */
static void warm_up(void)
{
	PyObject *done = PyObject_CallMethod(pb_glue(), "zygote_preload", NULL), *gc;

	if (!done)
		PyErr_Clear();
	Py_XDECREF(done);
	if ((gc = PyImport_ImportModule("gc"))) {
		done = PyObject_CallMethod(gc, "freeze", NULL);
		Py_XDECREF(done);
		Py_DECREF(gc);
	}
	PyErr_Clear();
	malloc_trim(0);
}

/* In the child: descriptors 1-6 from the request, nothing of the zygote's
 * beyond them, then its own programs from descriptor 6 (written by the
 * supervisor once it knows the child's pid). */
static int become_child(int fds[PB_ZYGOTE_NFDS], const char *fresh_scratch)
{
	char why[512];
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	int moved[PB_ZYGOTE_NFDS];

	PyOS_AfterFork_Child();
	signal(SIGCHLD, SIG_DFL);
	/* Above 0-6 first, so that no dup3 below overwrites one not yet taken. */
	for (int i = 0; i < PB_ZYGOTE_NFDS; i++)
		if ((moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64)) < 0)
			_exit(PB_EXIT_SANDBOX);
	for (int i = 0; i < PB_ZYGOTE_NFDS - 1; i++)
		if (dup3(moved[i], i + 1, 0) < 0)
			_exit(PB_EXIT_SANDBOX);
	/* The zygote's descriptors and the exec channel: its closing tells the
	 * supervisor the child is in place, as an exec does. */
	if (close_range(PB_FD_FIRST_UNUSED, ~0U, 0) < 0)
		_exit(PB_EXIT_SANDBOX);
	pb_layers_set_start(pb_forkserver_cloned()
	                            ? "start: forked from its plugin's zygote, itself cloned from the fork-server "
	                              "(the plugin imported once; its address layout and hash secret are the "
	                              "fork-server's, shared with every plugin's zygote and its workers)"
	                            : "start: forked from its plugin's zygote (the plugin imported once; its address "
	                              "layout and hash secret are shared with this plugin's other workers, never "
	                              "another plugin's)");
	if (pb_sandbox_read_policy(PB_FD_POLICY, &blob, &blob_len, why, sizeof(why)) < 0)
		return fail(PB_EXIT_SANDBOX, why);
	close(PB_FD_POLICY);
	int r = pb_sandbox_apply_more(blob, blob_len, why, sizeof(why));
	free(blob);
	if (r < 0)
		return fail(PB_EXIT_SANDBOX, why);
	if (fresh_scratch) {
		/* @fresh-per-call: the worker before this one (ended, as only one
		 * runs at a time) must leave nothing in the scratch tmpfs that
		 * every child of the zygote shares. Fail closed. */
		PyObject *done = PyObject_CallMethod(pb_glue(), "empty_scratch", "s", fresh_scratch);
		if (!done) {
			PyErr_Clear();
			snprintf(why, sizeof(why), "scratch: cannot empty %s for a fresh worker (@fresh-per-call)",
			         fresh_scratch);
			return fail(PB_EXIT_SANDBOX, why);
		}
		Py_DECREF(done);
	}
	return 0;
}

int pb_zygote_become(const char *fresh_scratch)
{
	warm_up();
	/* Its children are reaped by the kernel; the supervisor learns how
	 * each ended from its pidfd (supervisor/jail/zygote.c). */
	signal(SIGCHLD, SIG_IGN);
	if (reply(0, -1, "") < 0)
		_exit(0);
	for (;;) {
		struct pb_zygote_request req = { 0 };
		int fds[PB_ZYGOTE_NFDS], pidfd = -1, mflags;
		size_t nfds;
		ssize_t n = pb_fdpass_recv(PB_ZYGOTE_FD, &req, sizeof(req), 0, fds, PB_ZYGOTE_NFDS, &nfds, &mflags);

		if (n <= 0)
			_exit(0); /* the supervisor closed the socket, or is gone */
		if (n != (ssize_t)sizeof(req) || req.magic != PB_ZYGOTE_MAGIC || nfds != PB_ZYGOTE_NFDS || (mflags & (MSG_TRUNC | MSG_CTRUNC))) {
			reply(EBADMSG, -1, "zygote: a request it cannot read");
		} else {
			PyOS_BeforeFork();
			pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PIDFD | SIGCHLD), NULL, &pidfd,
			                           NULL, NULL);
			int e = errno;
			if (pid == 0)
				return become_child(fds, fresh_scratch);
			PyOS_AfterFork_Parent();
			if (pid < 0)
				reply(e, -1, e == EAGAIN ? "zygote: cannot fork (its process limit)" : "zygote: cannot fork");
			else
				reply(0, pidfd, "");
		}
		if (pidfd >= 0)
			close(pidfd);
		for (size_t i = 0; i < nfds && i < PB_ZYGOTE_NFDS; i++)
			close(fds[i]);
	}
}
