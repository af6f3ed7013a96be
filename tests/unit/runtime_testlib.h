/* runtime_testlib.h - what the tests of the runtime through the public API
 * share (check_runtime.c, check_pipeline.c): a supervisor on a plugins and
 * a policies directory, output captured, asynchronous calls recorded and
 * driven by the host's own poll loop, the workers as this process's
 * children, and a policies directory of the shipped ones plus the test's. */
#ifndef PLUGBOX_RUNTIME_TESTLIB_H
#define PLUGBOX_RUNTIME_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "plugbox.h"

extern char plugins[4096];
extern char policies[4096];

double now(void);

struct captured {
	char text[16384];
};
void capture(void *data, const char *plugin, pb_stream stream, const char *line);
/* A supervisor on `plugins` and `policies`, calls' timeout 20 s. */
pb_supervisor *open_runtime(struct captured *out);

struct outcome {
	int done;
	pb_value *result;
	pb_error *err;
	uint64_t id;
	double at;
	unsigned order; /* how many calls had ended before it, + 1 */
};
void record(void *data, uint64_t id, pb_value *result, pb_error *err);
/* Start a call with one argument (taken) or none. */
void start(pb_supervisor *sup, const char *plugin, const char *function, pb_value *arg,
           double timeout, struct outcome *o);
/* The host's own loop: poll the supervisor's descriptor, dispatch when it
 * is readable, until every outcome is in (or the test's clock runs out). */
void run_until(pb_supervisor *sup, struct outcome *o, size_t n, double seconds);
void release(struct outcome *o);
const char *json_of(const pb_value *v, char *buf, size_t len);
/* The pids of this process's children that are not zombies (the workers:
 * Check runs each test in its own process). */
size_t children(pid_t *out, size_t max);

/* The host function "recurse": call the calling plugin's nested(n - 1)
 * from inside it, while the plugin waits for this very host call; data is
 * the supervisor. */
void host_recurse(void *data, pb_host_call *call);

/* A copy of the shipped policies (PLUGBOX_POLICIES) in a directory of its
 * own (name: the test program's), with `extra` policies written there: an
 * array of file name, text, ..., NULL. Sets `policies`; 0 or -1 (outside
 * any test: no ck_assert). */
int write_policies(const char *name, const char *const *extra);
void remove_policies(void);

#endif
