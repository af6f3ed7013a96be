/* call_loop.c - the supervisor's side of a call, for instruction counts
 * (`valgrind --tool=callgrind --collect-atstart=no`; docs/performance.md).
 *
 *   bench-call-loop N PLUGINS WORKER POLICIES [DEPTH]
 *
 * N + 1 calls of echo(12345) through the public API: synchronous pb_calls
 * as the bench's round trip makes them, or with DEPTH > 1, pb_call_start
 * with DEPTH calls in flight, as its pipelined section makes them. Counting is switched on after the first
 * call (which starts the worker) and off after the last, so callgrind's
 * total divided by N is the supervisor's instructions per call; the worker
 * runs outside valgrind (see worker_loop.c for its side).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
/* valgrind's headers come with Debian's valgrind package; without them the
 * count includes the worker's start (then compare two values of N). */
#if defined(__has_include) && __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT ((void)0)
#endif

#include "plugbox.h"

static long answered;

static void done(void *userdata, uint64_t id, pb_value *result, pb_error *err)
{
	(void)userdata;
	(void)id;
	if (!result || pb_value_get_int(result) != 12345) {
		fprintf(stderr, "bench-call-loop: a call failed: %s\n", err ? pb_error_get_message(err) : "?");
		exit(1);
	}
	answered++;
	pb_value_destroy(result);
}

/* n calls, depth at a time. */
static void pipelined(pb_supervisor *s, pb_value *arg, long n, long depth)
{
	pb_call_spec spec = { .plugin = "echo", .function = "echo", .args = &arg, .nargs = 1 };
	long started = 0;
	uint64_t id;

	answered = 0;
	while (answered < n) {
		while (started < n && started - answered < depth) {
			if (pb_call_start(s, &spec, done, NULL, &id) < 0) {
				fprintf(stderr, "bench-call-loop: pb_call_start: %s\n", pb_supervisor_strerror(s));
				exit(1);
			}
			started++;
		}
		pb_supervisor_dispatch(s, 1000);
	}
}

int main(int argc, char **argv)
{
	pb_supervisor *s;
	pb_value *arg;
	long n, depth = argc == 6 ? atol(argv[5]) : 1;

	if (argc < 5 || argc > 6 || (n = atol(argv[1])) < 1 || depth < 1) {
		fprintf(stderr, "usage: bench-call-loop N PLUGINS WORKER POLICIES [DEPTH]\n");
		return 2;
	}
	if (pb_supervisor_new(argv[2], &s) < 0)
		return 2;
	if (pb_supervisor_set_worker(s, argv[3]) < 0 || pb_supervisor_set_policies(s, argv[4]) < 0 ||
	    pb_supervisor_set_timeout(s, 600) < 0) {
		fprintf(stderr, "bench-call-loop: %s\n", pb_supervisor_strerror(s));
		return 2;
	}
	arg = pb_value_new_int(12345);
	for (long i = 0; i <= (depth > 1 ? 0 : n); i++) {
		pb_value *res = NULL;
		pb_error *err = NULL;

		if (i == 1)
			CALLGRIND_TOGGLE_COLLECT;
		if (pb_call(s, "echo", "echo", &arg, 1, &res, &err) < 0 || pb_value_get_int(res) != 12345) {
			fprintf(stderr, "bench-call-loop: call %ld failed: %s\n", i, err ? pb_error_get_message(err) : "?");
			return 1;
		}
		pb_value_destroy(res);
	}
	if (depth > 1) {
		CALLGRIND_TOGGLE_COLLECT;
		pipelined(s, arg, n, depth);
	}
	CALLGRIND_TOGGLE_COLLECT;
	pb_value_destroy(arg);
	pb_supervisor_free(s);
	return 0;
}
