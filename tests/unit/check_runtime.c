/* check_runtime.c - the supervisor's runtime through the public header, as
 * a host program uses it: asynchronous calls watched through the
 * supervisor's descriptor, host functions (granted, nested, ungranted,
 * answered later, failing), plugin logging, a worker killed mid-call and
 * restarted, a deadline that ends one plugin while another answers, a crash
 * loop marked failed, idle stops, and shutdown with calls in flight. Plugins
 * are tests/plugins/runtime; policies are the shipped ones plus a grant
 * file written here. Needs PLUGBOX_WORKER, PLUGBOX_POLICIES and
 * PB_TEST_SRCDIR (set by make check). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plugbox.h"
#include "runtime_testlib.h"

START_TEST(async_calls_end_once_each_through_the_descriptor)
{
	pb_supervisor *sup = open_runtime(NULL);
	enum { N = 40 };
	struct outcome o[N];
	char buf[256], want[256];

	for (int i = 0; i < N; i++)
		start(sup, i % 2 ? "echo20" : "hostcalls", i % 2 ? "echo" : "depth_probe", pb_value_new_int(i), 0, &o[i]);
	ck_assert_uint_eq(pb_supervisor_calls_pending(sup), N);
	run_until(sup, o, N, 30);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(o[i].result, "call %d: %s", i, o[i].err ? pb_error_get_message(o[i].err) : "?");
		if (i % 2)
			snprintf(want, sizeof(want), "[\"echo20\",%d]", i);
		else
			snprintf(want, sizeof(want), "%d", i);
		ck_assert_str_eq(json_of(o[i].result, buf, sizeof(buf)), want);
		ck_assert_uint_ne(o[i].id, 0);
		release(&o[i]);
	}
	ck_assert_uint_eq(pb_supervisor_calls_pending(sup), 0);

	/* a malformed call is refused at once, and no callback comes */
	pb_call_spec bad = { .plugin = "echo20", .function = "echo", .timeout = -1 };
	struct outcome never = { 0 };
	ck_assert_int_eq(pb_call_start(sup, &bad, record, &never, NULL), -EINVAL);
	ck_assert_ptr_nonnull(strstr(pb_supervisor_strerror(sup), "timeout"));
	bad.timeout = 0;
	bad.function = NULL;
	ck_assert_int_eq(pb_call_start(sup, &bad, record, &never, NULL), -EINVAL);
	pb_supervisor_dispatch(sup, 100);
	ck_assert_int_eq(never.done, 0);
	ck_assert_uint_eq(pb_supervisor_calls_pending(sup), 0);
	pb_supervisor_free(sup);
}
END_TEST

/* ---- host functions ---- */

static pb_host_call *held;

static void host_add(void *data, pb_host_call *call)
{
	(void)data;
	ck_assert_str_eq(pb_host_call_plugin(call), "hostcalls");
	ck_assert_str_eq(pb_host_call_name(call), "add");
	ck_assert_uint_eq(pb_host_call_nargs(call), 2);
	pb_host_call_return(call, pb_value_new_int(pb_value_get_int(pb_host_call_arg(call, 0)) +
	                                           pb_value_get_int(pb_host_call_arg(call, 1))));
}

static void host_fail(void *data, pb_host_call *call)
{
	(void)data;
	pb_host_call_fail(call, "ValueError", "the host says no");
}

static void host_later(void *data, pb_host_call *call)
{
	(void)data;
	held = call; /* answered from the test's loop, after the function returned */
}

static pb_supervisor *open_hostcalls(struct captured *out)
{
	pb_supervisor *sup = open_runtime(out);
	held = NULL;
	ck_assert_int_eq(pb_supervisor_register(sup, "add", host_add, NULL), 0);
	ck_assert_int_eq(pb_supervisor_register(sup, "recurse", host_recurse, sup), 0);
	ck_assert_int_eq(pb_supervisor_register(sup, "fail", host_fail, NULL), 0);
	ck_assert_int_eq(pb_supervisor_register(sup, "later", host_later, NULL), 0);
	ck_assert_int_eq(pb_supervisor_register(sup, "secret", host_add, NULL), 0); /* registered, never granted */
	ck_assert_int_lt(pb_supervisor_register(sup, "no-dashes", host_add, NULL), 0);
	return sup;
}

static pb_value *call_ok(pb_supervisor *sup, const char *plugin, const char *function, pb_value *arg)
{
	pb_value *result = NULL;
	pb_error *err = NULL;
	int r = pb_call(sup, plugin, function, arg ? &arg : NULL, arg ? 1 : 0, &result, &err);
	ck_assert_msg(r == 0, "%s.%s: %s", plugin, function, err ? pb_error_get_message(err) : "?");
	pb_value_destroy(arg);
	return result;
}

START_TEST(host_functions_answer_granted_calls_and_nested_ones)
{
	pb_supervisor *sup = open_hostcalls(NULL);
	pb_value *args[2] = { pb_value_new_int(2), pb_value_new_int(40) };
	pb_value *result = NULL;
	pb_error *err = NULL;
	char buf[256];

	ck_assert_int_eq(pb_call(sup, "hostcalls", "add_via_host", args, 2, &result, &err), 0);
	ck_assert_int_eq(pb_value_get_int(result), 42);
	pb_value_destroy(result);
	/* nested(3): plugin -> host recurse -> plugin nested(2) -> ... -> "bottom" */
	result = call_ok(sup, "hostcalls", "nested", pb_value_new_int(3));
	ck_assert_str_eq(json_of(result, buf, sizeof(buf)), "\"bottom\"");
	pb_value_destroy(result);
	/* the worker is still in order afterwards */
	ck_assert_int_eq(pb_call(sup, "hostcalls", "add_via_host", args, 2, &result, &err), 0);
	ck_assert_int_eq(pb_value_get_int(result), 42);
	pb_value_destroy(result);
	pb_value_destroy(args[0]);
	pb_value_destroy(args[1]);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(an_ungranted_host_call_is_a_permission_error_and_a_log_line)
{
	struct captured out = { "" };
	pb_supervisor *sup = open_hostcalls(&out);
	char buf[1024];

	pb_value *result = call_ok(sup, "hostcalls", "ungranted", NULL);
	json_of(result, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, "[\"PermissionError\",") == buf, "%s", buf);
	ck_assert_msg(strstr(buf, "'secret'") && strstr(buf, "@host-call secret"), "%s", buf);
	ck_assert_msg(strstr(out.text, "hostcalls|3|denied host call secret(): not granted by policy"), "%s", out.text);
	pb_value_destroy(result);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(host_function_errors_and_late_answers_reach_the_plugin)
{
	pb_supervisor *sup = open_hostcalls(NULL);
	pb_value *name = pb_value_new_string("fail");
	pb_value *result = NULL;
	pb_error *err = NULL;
	struct outcome o;

	ck_assert_int_lt(pb_call(sup, "hostcalls", "ask", &name, 1, &result, &err), 0);
	ck_assert_int_eq(pb_error_get_kind(err), PB_ERROR_EXCEPTION);
	ck_assert_str_eq(pb_error_get_type(err), "ValueError");
	ck_assert_str_eq(pb_error_get_message(err), "the host says no");
	pb_error_free(err);
	pb_value_destroy(name);

	name = pb_value_new_string("missing");
	ck_assert_int_lt(pb_call(sup, "hostcalls", "ask", &name, 1, &result, &err), 0);
	ck_assert_str_eq(pb_error_get_type(err), "LookupError");
	ck_assert_ptr_nonnull(strstr(pb_error_get_message(err), "registers no such function"));
	pb_error_free(err);
	pb_value_destroy(name);

	/* answered after the host function returned, from the host's loop */
	name = pb_value_new_string("later");
	start(sup, "hostcalls", "ask", name, 0, &o);
	while (!held)
		ck_assert_int_ge(pb_supervisor_dispatch(sup, 1000), 0);
	ck_assert_int_eq(o.done, 0);
	pb_host_call_return(held, pb_value_new_string("worth the wait"));
	run_until(sup, &o, 1, 10);
	ck_assert_str_eq(pb_value_get_string(o.result), "worth the wait");
	release(&o);

	/* from a thread of the plugin: refused inside the plugin */
	result = call_ok(sup, "hostcalls", "from_thread", NULL);
	ck_assert_str_eq(pb_value_get_string(result), "RuntimeError");
	pb_value_destroy(result);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(plugin_logging_reaches_the_output_tagged_with_the_plugin)
{
	struct captured out = { "" };
	pb_supervisor *sup = open_runtime(&out);
	pb_value *args[2] = { pb_value_new_string("WARNING"), pb_value_new_string("disk almost full") };
	pb_value *result = NULL;
	pb_error *err = NULL;

	ck_assert_int_eq(pb_call(sup, "logger", "emit", args, 2, &result, &err), 0);
	pb_value_destroy(result);
	result = call_ok(sup, "logger", "emit_exc", NULL);
	pb_value_destroy(result);
	ck_assert_msg(strstr(out.text, "logger|4|WARNING logger.test: disk almost full\n"), "%s", out.text);
	ck_assert_msg(strstr(out.text, "logger|4|ERROR logger.test: caught it\n"), "%s", out.text);
	ck_assert_msg(strstr(out.text, "logger|4|  ValueError: boom for the log\n"), "%s", out.text);
	pb_value_destroy(args[0]);
	pb_value_destroy(args[1]);
	pb_supervisor_free(sup);
}
END_TEST

struct logged {
	char text[8192];
	uint64_t call_id;
	unsigned n;
};

static void keep_record(void *data, const char *plugin, uint64_t call_id, int level, const char *logger,
                        const char *message, const char *exc_text)
{
	struct logged *l = data;
	size_t used = strlen(l->text);

	snprintf(l->text + used, sizeof(l->text) - used, "%s|%d|%s|%s|%s\n", plugin, level, logger, message, exc_text);
	l->call_id = call_id;
	l->n++;
}

START_TEST(records_reach_the_log_function_whole_with_their_call)
{
	struct captured out = { "" };
	struct logged logged = { "", 0, 0 };
	pb_supervisor *sup = open_runtime(&out);
	struct outcome o;

	pb_supervisor_set_log(sup, keep_record, &logged);
	start(sup, "logger", "emit_exc", NULL, 0, &o);
	run_until(sup, &o, 1, 15);
	ck_assert_ptr_nonnull(o.result);
	ck_assert_uint_eq(logged.n, 1);
	ck_assert_uint_eq(logged.call_id, o.id); /* the call it was logged in */
	/* the message alone; the traceback apart, its lines kept */
	ck_assert_msg(strstr(logged.text, "logger|40|logger.test|caught it|Traceback (most recent call last):\n"),
	              "%s", logged.text);
	ck_assert_msg(strstr(logged.text, "\nValueError: boom for the log\n"), "%s", logged.text);
	ck_assert_msg(!strstr(out.text, "|4|"), "no log lines besides the records: %s", out.text);
	release(&o);
	pb_supervisor_free(sup);
}
END_TEST

/* ---- cancelling ---- */

/* Until the call runs the plugin's code: its "sleeping" record came. */
static void wait_sleeping(pb_supervisor *sup, struct logged *logged)
{
	double end = now() + 15;

	while (!strstr(logged->text, "|sleeping ")) {
		ck_assert(now() < end);
		pb_supervisor_dispatch(sup, 50);
	}
}

START_TEST(a_cancelled_call_ends_cancelled_and_the_worker_goes_on)
{
	pb_supervisor *sup = open_runtime(NULL);
	struct logged logged = { "", 0, 0 };
	struct outcome o[3];
	pid_t before[8], after[8];
	char buf[256];
	double t;

	pb_supervisor_set_log(sup, keep_record, &logged);
	start(sup, "canceller", "sleep", pb_value_new_float(30), 0, &o[0]);
	wait_sleeping(sup, &logged);
	start(sup, "canceller", "mark", pb_value_new_string("behind"), 0, &o[1]);
	start(sup, "canceller", "mark", pb_value_new_string("kept"), 0, &o[2]);
	pb_supervisor_dispatch(sup, 100); /* the marks are written ahead to the worker */
	ck_assert_uint_eq(children(before, 8), 1);
	t = now();
	ck_assert_int_eq(pb_cancel(sup, o[1].id), 0);
	ck_assert_int_eq(pb_cancel(sup, o[0].id), 0);
	ck_assert_int_eq(pb_cancel(sup, o[0].id + 1000), -ENOENT);
	run_until(sup, o, 3, 15);
	ck_assert_msg(now() - t < 2, "%g s", now() - t);
	ck_assert_int_eq(pb_error_get_kind(o[0].err), PB_ERROR_CANCELLED);
	ck_assert_str_eq(pb_error_kind_name(PB_ERROR_CANCELLED), "cancelled");
	ck_assert_int_eq(pb_error_get_kind(o[1].err), PB_ERROR_CANCELLED);
	ck_assert_str_eq(pb_value_get_string(o[2].result), "kept");
	ck_assert_int_eq(pb_cancel(sup, o[2].id), -ENOENT); /* ended already */
	for (int i = 0; i < 3; i++)
		release(&o[i]);
	/* the same worker: it stopped the sleep, and never ran "behind" */
	pb_value *seen = call_ok(sup, "canceller", "seen", NULL);
	ck_assert_str_eq(json_of(seen, buf, sizeof(buf)), "[null,\"stopped None\",\"kept\"]");
	pb_value_destroy(seen);
	ck_assert_uint_eq(children(after, 8), 1);
	ck_assert_int_eq(before[0], after[0]);
	pb_supervisor_free(sup);
}
END_TEST

/* ---- crashes, deadlines, restarts ---- */

START_TEST(a_worker_killed_mid_call_gives_crashed_and_the_next_call_restarts_it)
{
	pb_supervisor *sup = open_runtime(NULL);
	struct outcome o;
	pid_t pids[8];

	start(sup, "spinner", "sleep", pb_value_new_float(30), 0, &o);
	/* wait until the worker runs the call */
	double end = now() + 15;
	while (children(pids, 8) == 0 || strcmp(pb_supervisor_plugin_state(sup, "spinner"), "busy") != 0) {
		ck_assert(now() < end);
		pb_supervisor_dispatch(sup, 50);
	}
	ck_assert_uint_eq(children(pids, 8), 1);
	ck_assert_int_eq(kill(pids[0], SIGKILL), 0);
	run_until(sup, &o, 1, 10);
	ck_assert_ptr_nonnull(o.err);
	ck_assert_int_eq(pb_error_get_kind(o.err), PB_ERROR_CRASHED);
	ck_assert_msg(strstr(pb_error_get_message(o.err), "signal 9"), "%s", pb_error_get_message(o.err));
	release(&o);

	pb_value *result = call_ok(sup, "spinner", "ok", NULL);
	ck_assert_str_eq(pb_value_get_string(result), "ok");
	pb_value_destroy(result);
	ck_assert_uint_eq(children(pids, 8), 1);
	pb_supervisor_free(sup);
	ck_assert_uint_eq(children(pids, 8), 0);
}
END_TEST

START_TEST(a_spinning_plugin_times_out_while_others_keep_answering)
{
	pb_supervisor *sup = open_runtime(NULL);
	enum { N = 20 };
	struct outcome spin, o[N];

	start(sup, "spinner", "spin", NULL, 2.0, &spin);
	for (int i = 0; i < N; i++)
		start(sup, "echo20", "echo", pb_value_new_int(i), 0, &o[i]);
	run_until(sup, o, N, 15);
	ck_assert_int_eq(spin.done, 0); /* all the others answered while it spun */
	for (int i = 0; i < N; i++) {
		ck_assert_ptr_nonnull(o[i].result);
		release(&o[i]);
	}
	run_until(sup, &spin, 1, 15);
	ck_assert_int_eq(pb_error_get_kind(spin.err), PB_ERROR_TIMEOUT);
	ck_assert_msg(strstr(pb_error_get_message(spin.err), "timed out after 2 s"), "%s",
	              pb_error_get_message(spin.err));
	release(&spin);
	/* and it answers again afterwards */
	pb_value *result = call_ok(sup, "spinner", "ok", NULL);
	pb_value_destroy(result);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(a_crash_loop_is_reported_not_retried_forever)
{
	struct captured out = { "" };
	pb_supervisor *sup = open_runtime(&out);
	pb_value *result = NULL;
	pb_error *err = NULL;

	ck_assert_int_eq(pb_supervisor_set_restart(sup, 3, 60, 0.01, 0.05), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_lt(pb_call(sup, "spinner", "crash", NULL, 0, &result, &err), 0);
		ck_assert_int_eq(pb_error_get_kind(err), PB_ERROR_CRASHED);
		pb_error_free(err);
	}
	ck_assert_str_eq(pb_supervisor_plugin_state(sup, "spinner"), "failed");
	double t0 = now();
	ck_assert_int_lt(pb_call(sup, "spinner", "ok", NULL, 0, &result, &err), 0);
	ck_assert(now() - t0 < 1.0); /* an explicit error at once, not a hang */
	ck_assert_int_eq(pb_error_get_kind(err), PB_ERROR_UNAVAILABLE);
	ck_assert_msg(strstr(pb_error_get_message(err), "ended 3 times within 60 s"), "%s", pb_error_get_message(err));
	pb_error_free(err);
	ck_assert_msg(strstr(out.text, "spinner|3|plugin 'spinner' failed"), "%s", out.text);
	/* other plugins are not affected, and a reset lets it run again */
	result = call_ok(sup, "echo20", "echo", pb_value_new_int(1));
	pb_value_destroy(result);
	ck_assert_int_eq(pb_supervisor_reset(sup, "spinner"), 0);
	result = call_ok(sup, "spinner", "ok", NULL);
	pb_value_destroy(result);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(idle_workers_stop_and_start_again_on_the_next_call)
{
	pb_supervisor *sup = open_runtime(NULL);
	pid_t pids[8];

	ck_assert_int_eq(pb_supervisor_set_idle_timeout(sup, 0.3), 0);
	pb_value *result = call_ok(sup, "spinner", "ok", NULL);
	pb_value_destroy(result);
	ck_assert_str_eq(pb_supervisor_plugin_state(sup, "spinner"), "ready");
	double end = now() + 5;
	while (strcmp(pb_supervisor_plugin_state(sup, "spinner"), "stopped") != 0) {
		ck_assert(now() < end);
		pb_supervisor_dispatch(sup, 100);
	}
	ck_assert_uint_eq(children(pids, 8), 0);
	result = call_ok(sup, "spinner", "ok", NULL);
	pb_value_destroy(result);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(eager_start_and_stop)
{
	pb_supervisor *sup = open_runtime(NULL);
	pid_t pids[8];

	ck_assert_int_eq(pb_supervisor_start(sup, "echo20"), 0);
	ck_assert_int_lt(pb_supervisor_start(sup, "no-such-plugin"), 0);
	double end = now() + 15;
	while (strcmp(pb_supervisor_plugin_state(sup, "echo20"), "ready") != 0) {
		ck_assert(now() < end);
		pb_supervisor_dispatch(sup, 100);
	}
	ck_assert_uint_eq(children(pids, 8), 1);
	ck_assert_int_eq(pb_supervisor_stop(sup, "echo20"), 0);
	while (strcmp(pb_supervisor_plugin_state(sup, "echo20"), "stopped") != 0) {
		ck_assert(now() < end);
		pb_supervisor_dispatch(sup, 100);
	}
	ck_assert_uint_eq(children(pids, 8), 0);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(shutdown_finishes_calls_in_flight_and_fails_the_rest)
{
	pb_supervisor *sup = open_runtime(NULL);
	struct outcome quick[3], stuck, late;
	pid_t pids[8];

	for (int i = 0; i < 3; i++)
		start(sup, "echo20", "echo", pb_value_new_int(i), 0, &quick[i]);
	start(sup, "spinner", "spin", NULL, 0, &stuck);
	pb_supervisor_dispatch(sup, 0);
	pb_supervisor_shutdown(sup, 1.0);
	start(sup, "echo20", "echo", pb_value_new_int(9), 0, &late);
	double t0 = now();
	while (!pb_supervisor_finished(sup)) {
		ck_assert(now() - t0 < 10);
		pb_supervisor_dispatch(sup, 100);
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(quick[i].done, 1);
		ck_assert_msg(quick[i].result, "%s", quick[i].err ? pb_error_get_message(quick[i].err) : "");
		release(&quick[i]);
	}
	ck_assert_int_eq(stuck.done, 1);
	ck_assert_int_eq(pb_error_get_kind(stuck.err), PB_ERROR_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(pb_error_get_message(stuck.err), "shut down"));
	release(&stuck);
	ck_assert_int_eq(late.done, 1);
	ck_assert_int_eq(pb_error_get_kind(late.err), PB_ERROR_UNAVAILABLE);
	release(&late);
	ck_assert_uint_eq(children(pids, 8), 0);
	ck_assert_uint_eq(pb_supervisor_calls_pending(sup), 0);
	pb_supervisor_free(sup);
}
END_TEST

/* ---- values ---- */

START_TEST(values_are_built_and_read_through_the_api)
{
	pb_value *m = pb_value_new_map();
	pb_value *l = pb_value_new_list();
	const pb_value *key;
	size_t len;
	char buf[256];

	ck_assert_int_eq(pb_value_list_append(l, pb_value_new_bool(1)), 0);
	ck_assert_int_eq(pb_value_list_append(l, pb_value_new_float(1.5)), 0);
	ck_assert_int_eq(pb_value_list_append(l, pb_value_new_bytes("\0\1", 2)), 0);
	ck_assert_int_eq(pb_value_list_append(l, pb_value_new_null()), 0);
	ck_assert_int_eq(pb_value_map_set(m, pb_value_new_string("xs"), l), 0);
	ck_assert_int_eq(pb_value_map_set(m, pb_value_new_int(7), pb_value_new_string("seven")), 0);
	ck_assert_ptr_null(pb_value_new_string("\xff"));
	pb_value *x = pb_value_new_int(1), *orphan = pb_value_new_null();
	ck_assert_int_eq(pb_value_list_append(x, orphan), -EINVAL);
	pb_value_destroy(orphan); /* refused: still the caller's */
	pb_value_destroy(x);

	ck_assert_int_eq(pb_value_get_kind(m), PB_VALUE_MAP);
	ck_assert_uint_eq(pb_value_map_length(m), 2);
	const pb_value *v = pb_value_map_entry(m, 1, &key);
	ck_assert_int_eq(pb_value_get_int(key), 7);
	ck_assert_str_eq(pb_value_get_string(v), "seven");
	const pb_value *xs = pb_value_map_get(m, "xs");
	ck_assert_int_eq(pb_value_get_bool(pb_value_list_get(xs, 0)), 1);
	ck_assert(pb_value_get_float(pb_value_list_get(xs, 1)) == 1.5);
	ck_assert_int_eq(memcmp(pb_value_get_bytes(pb_value_list_get(xs, 2), &len), "\0\1", 2), 0);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(pb_value_get_kind(pb_value_list_get(xs, 3)), PB_VALUE_NULL);
	ck_assert_ptr_null(pb_value_get_bytes(v, &len));
	ck_assert_str_eq(json_of(m, buf, sizeof(buf)),
	                 "{\"$map\":[[\"xs\",[true,1.5,{\"$bytes\":\"AAE=\"},null]],[7,\"seven\"]]}");
	pb_value_destroy(m);
}
END_TEST

/* U+0000 in a string: built and read with lengths, never cut short. */
START_TEST(strings_with_u0000_are_built_and_read_by_length)
{
	size_t len = 99;
	char buf[64];
	pb_value *s = pb_value_new_string_len("a\0b", 3), *m = pb_value_new_map();

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(memcmp(pb_value_get_string_len(s, &len), "a\0b", 4), 0); /* NUL after it */
	ck_assert_uint_eq(len, 3);
	ck_assert_ptr_null(pb_value_get_string(s)); /* no C string cut at U+0000 */
	ck_assert_str_eq(json_of(s, buf, sizeof(buf)), "\"a\\u0000b\"");
	ck_assert_ptr_null(pb_value_new_string_len("a\0\xff", 3)); /* still UTF-8 only */
	ck_assert_ptr_null(pb_value_get_string_len(m, &len));
	ck_assert_uint_eq(len, 0);
	/* "k\0x" is not the key "k". */
	ck_assert_int_eq(pb_value_map_set(m, pb_value_new_string_len("k\0x", 3), pb_value_new_int(1)), 0);
	ck_assert_ptr_null(pb_value_map_get(m, "k"));
	ck_assert_int_eq(pb_value_map_set(m, pb_value_new_string("k"), pb_value_new_int(2)), 0);
	ck_assert_int_eq(pb_value_get_int(pb_value_map_get(m, "k")), 2);
	pb_value *empty = pb_value_new_string_len(NULL, 0);
	ck_assert_str_eq(pb_value_get_string(empty), "");
	pb_value_destroy(empty);
	pb_value_destroy(s);
	pb_value_destroy(m);
}
END_TEST

int main(void)
{
	const char *src = getenv("PB_TEST_SRCDIR");
	Suite *s = suite_create("runtime");
	TCase *tc = tcase_create("runtime");
	SRunner *sr;
	int failed;

	if (!src || !getenv("PLUGBOX_WORKER") || !getenv("PLUGBOX_POLICIES")) {
		fprintf(stderr, "check_runtime: run through make check (PB_TEST_SRCDIR, PLUGBOX_WORKER, PLUGBOX_POLICIES)\n");
		return 99;
	}
	snprintf(plugins, sizeof(plugins), "%s/plugins/runtime", src);
	if (write_policies("check_runtime", (const char *const[]){ "hostcalls.policy",
	                                                           "@include default\n@host-call add recurse fail later missing\n", NULL }) < 0) {
		fprintf(stderr, "check_runtime: cannot write the test policies in %s\n", policies);
		return 99;
	}
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, async_calls_end_once_each_through_the_descriptor);
	tcase_add_test(tc, host_functions_answer_granted_calls_and_nested_ones);
	tcase_add_test(tc, an_ungranted_host_call_is_a_permission_error_and_a_log_line);
	tcase_add_test(tc, host_function_errors_and_late_answers_reach_the_plugin);
	tcase_add_test(tc, plugin_logging_reaches_the_output_tagged_with_the_plugin);
	tcase_add_test(tc, records_reach_the_log_function_whole_with_their_call);
	tcase_add_test(tc, a_cancelled_call_ends_cancelled_and_the_worker_goes_on);
	tcase_add_test(tc, a_worker_killed_mid_call_gives_crashed_and_the_next_call_restarts_it);
	tcase_add_test(tc, a_spinning_plugin_times_out_while_others_keep_answering);
	tcase_add_test(tc, a_crash_loop_is_reported_not_retried_forever);
	tcase_add_test(tc, idle_workers_stop_and_start_again_on_the_next_call);
	tcase_add_test(tc, eager_start_and_stop);
	tcase_add_test(tc, shutdown_finishes_calls_in_flight_and_fails_the_rest);
	tcase_add_test(tc, values_are_built_and_read_through_the_api);
	tcase_add_test(tc, strings_with_u0000_are_built_and_read_by_length);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_policies();
	return failed ? 1 : 0;
}
