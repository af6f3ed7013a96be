/* worker_loop.c - the worker's side of a call, by itself and unsandboxed,
 * for instruction counts (`valgrind --tool=callgrind`; docs/performance.md).
 *
 *   bench-worker-loop N DEPTH PLUGINS_VIEW PLUGIN_DIR
 *
 * The real worker cannot run under valgrind (its seccomp filter and
 * Landlock leave valgrind no room), so this program runs the worker's own
 * code (calls.c, convert.c, the embedded glue) the way plugbox-worker does
 * after Hello, minus the sandbox: CPython with the standard library only,
 * the glue's setup() of the plugin, then pb_serve() on the channel
 * descriptors. A forked feeder writes N calls of echo(12345), DEPTH at a
 * time (1: one round trip after another), reads the answers and closes
 * the channel. Counting with N and with 3N calls and taking the difference
 * leaves the instructions per call, start-up excluded.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/frame.h"
#include "proto/protocol.h"
#include "proto/value.h"
#include "worker/worker.h"

/* bench.am builds the worker's main.c into this program with main renamed
 * (-Dmain=plugbox_worker_main: its other files call into it); this file's
 * main is the program's. */
#undef main

static void die(const char *what)
{
	fprintf(stderr, "bench-worker-loop: %s\n", what);
	exit(2);
}

/* The supervisor's part: calls out, answers read and checked. */
static void feed(int calls_fd, int replies_fd, long n, long depth)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Call call = PLUGBOX__CALL__INIT;
	Plugbox__Value *arg = pbv_new_int(12345);
	Plugbox__Value *args[] = { arg };
	struct pb_frame_in in;
	long sent = 0, got = 0;

	call.function = "echo";
	call.n_args = 1;
	call.args = args;
	env.body_case = PLUGBOX__ENVELOPE__BODY_CALL;
	env.call = &call;
	pb_frame_in_init(&in, PB_FRAME_MAX_DEFAULT, 64 * 1024);
	while (got < n) {
		while (sent < n && sent - got < depth) {
			env.id = (uint64_t)++sent;
			if (pb_envelope_send(calls_fd, &env, PB_FRAME_MAX_DEFAULT) < 0)
				die("writing a call");
		}
		const uint8_t *payload;
		uint32_t len;
		int r;
		while ((r = pb_frame_in_next(&in, &payload, &len)) == 0)
			if (pb_frame_in_fill(&in, replies_fd) < 0)
				die("reading an answer");
		Plugbox__Envelope *reply;
		char why[256];
		if (r < 0 || pb_envelope_decode(payload, len, &reply, why, sizeof(why)) < 0 ||
		    reply->body_case != PLUGBOX__ENVELOPE__BODY_RESULT || reply->id != (uint64_t)got + 1 ||
		    reply->result->value->int_value != 12345)
			die("a wrong answer");
		pb_envelope_free(reply);
		got++;
	}
	close(calls_fd);
	pbv_free(arg);
	pb_frame_in_free(&in);
}

int main(int argc, char **argv)
{
	int calls[2], replies[2];
	char why[512];
	pid_t feeder;
	int status;

	if (argc != 5)
		die("usage: bench-worker-loop N DEPTH PLUGINS_VIEW PLUGIN_DIR");
	if (pipe(calls) < 0 || pipe(replies) < 0)
		die("pipe");
	/* above the channel's numbers, so that dup2 below replaces nothing of ours */
	for (int i = 0; i < 2; i++) {
		calls[i] = fcntl(calls[i], F_DUPFD, PB_FD_FIRST_UNUSED);
		replies[i] = fcntl(replies[i], F_DUPFD, PB_FD_FIRST_UNUSED);
		if (calls[i] < 0 || replies[i] < 0)
			die("fcntl");
	}
	feeder = fork();
	if (feeder < 0)
		die("fork");
	if (feeder == 0) {
		close(calls[0]);
		close(replies[1]);
		feed(calls[1], replies[0], atol(argv[1]), atol(argv[2]));
		_exit(0);
	}
	if (dup2(calls[0], PB_FD_CALLS) < 0 || dup2(replies[1], PB_FD_REPLIES) < 0)
		die("dup2");
	close(calls[1]);
	close(replies[0]);
	if (pb_interp_init(BENCH_WORKER_PATH, "echo", why, sizeof(why)) < 0)
		die(why);
	PyObject *glue = pb_glue_load();
	PyObject *info = glue ? PyObject_CallMethod(glue, "setup", "sss[ss]i", "echo", argv[4], argv[3],
	                                            PB_PYTHON_STDLIB, PB_PYTHON_DYNLOAD, PB_ENTRY_POINTS_MAX)
	                      : NULL;
	if (!info) {
		PyErr_Print();
		die("the glue's setup failed");
	}
	Py_DECREF(info);
	if (pb_serve() < 0)
		die("pb_serve failed");
	if (waitpid(feeder, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("the feeder failed");
	return 0;
}
