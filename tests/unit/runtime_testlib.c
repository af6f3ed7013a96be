/* runtime_testlib.c - helpers the runtime tests share (runtime_testlib.h). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime_testlib.h"

char plugins[4096];
char policies[4096];

double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void capture(void *data, const char *plugin, pb_stream stream, const char *line)
{
	struct captured *c = data;
	size_t used = strlen(c->text);
	snprintf(c->text + used, sizeof(c->text) - used, "%s|%d|%s\n", plugin, (int)stream, line);
}

pb_supervisor *open_runtime(struct captured *out)
{
	pb_supervisor *sup = NULL;
	ck_assert_int_eq(pb_supervisor_new(plugins, &sup), 0);
	ck_assert_int_eq(pb_supervisor_set_policies(sup, policies), 0);
	ck_assert_int_eq(pb_supervisor_set_timeout(sup, 20), 0);
	/* These tests count the supervisor's children as its workers: no
	 * bytecode compiler may run beside them (test_cache.py covers it). */
	ck_assert_int_eq(pb_supervisor_set_bytecode_cache(sup, NULL), 0);
	if (out)
		pb_supervisor_set_output(sup, capture, out);
	return sup;
}

static int in_start; /* set while pb_call_start runs: no callback may come then */

static unsigned ended;

void record(void *data, uint64_t id, pb_value *result, pb_error *err)
{
	struct outcome *o = data;
	ck_assert_int_eq(in_start, 0);
	ck_assert_int_eq(o->done, 0);
	o->done++;
	o->id = id;
	o->result = result;
	o->err = err;
	o->at = now();
	o->order = ++ended;
}

void start(pb_supervisor *sup, const char *plugin, const char *function, pb_value *arg,
           double timeout, struct outcome *o)
{
	pb_call_spec spec = { .plugin = plugin, .function = function, .args = &arg, .nargs = arg ? 1 : 0, .timeout = timeout };
	uint64_t id = 0;
	memset(o, 0, sizeof(*o));
	in_start = 1;
	ck_assert_int_eq(pb_call_start(sup, &spec, record, o, &id), 0);
	in_start = 0;
	ck_assert_uint_ne(id, 0);
	o->id = id;
	pb_value_destroy(arg); /* borrowed only while the call is made */
}

void run_until(pb_supervisor *sup, struct outcome *o, size_t n, double seconds)
{
	double end = now() + seconds;
	for (;;) {
		size_t done = 0;
		for (size_t i = 0; i < n; i++)
			done += o[i].done;
		if (done == n)
			return;
		ck_assert_msg(now() < end, "%zu of %zu calls still unanswered", n - done, n);
		struct pollfd p = { .fd = pb_supervisor_get_fd(sup), .events = POLLIN };
		if (poll(&p, 1, 100) > 0)
			ck_assert_int_ge(pb_supervisor_dispatch(sup, 0), 0);
	}
}

void release(struct outcome *o)
{
	pb_value_destroy(o->result);
	pb_error_free(o->err);
	o->result = NULL;
	o->err = NULL;
}

const char *json_of(const pb_value *v, char *buf, size_t len)
{
	char *j = pb_value_to_json(v);
	snprintf(buf, len, "%s", j ? j : "(null)");
	free(j);
	return buf;
}

/* From the parent pid in /proc/PID/stat. */
size_t children(pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max) {
		char path[300], buf[512];
		int ppid = -1;
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t got = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[got] = '\0';
		char *close_paren = strrchr(buf, ')');
		char state;
		/* a zombie is not a worker any more */
		if (close_paren && sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid() &&
		    state != 'Z')
			out[n++] = (pid_t)atoi(e->d_name);
	}
	closedir(d);
	return n;
}

void host_recurse(void *data, pb_host_call *call)
{
	pb_value *arg = pb_value_new_int(pb_value_get_int(pb_host_call_arg(call, 0)) - 1);
	pb_value *result = NULL;
	pb_error *err = NULL;

	if (pb_call(data, pb_host_call_plugin(call), "nested", &arg, 1, &result, &err) == 0) {
		pb_host_call_return(call, result);
	} else {
		pb_host_call_fail(call, "RuntimeError", pb_error_get_message(err));
		pb_error_free(err);
	}
	pb_value_destroy(arg);
}

int write_policies(const char *name, const char *const *extra)
{
	const char *shipped = getenv("PLUGBOX_POLICIES");
	char cmd[8400];

	snprintf(policies, sizeof(policies), "/tmp/%s-%d", name, (int)getpid());
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s'/*.policy '%s/'", policies, shipped, policies);
	if (system(cmd) != 0)
		return -1;
	for (; extra && extra[0] && extra[1]; extra += 2) {
		FILE *f;

		snprintf(cmd, sizeof(cmd), "%s/%s", policies, extra[0]);
		f = fopen(cmd, "w");
		if (!f)
			return -1;
		fputs(extra[1], f);
		if (fclose(f) != 0)
			return -1;
	}
	return 0;
}

void remove_policies(void)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", policies);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", policies);
}
