/* check_pipeline.c - calls written ahead to a worker (supervisor/inflight.c)
 * through the public API: many calls answered in order by one worker; a
 * crash in the middle of a batch that fails only the call that ran (the
 * ones behind it run on the next worker); host calls, answered later or
 * calling back into the plugin, while top-level calls wait behind; what a
 * call prints reaching the host before its answer; the
 * policy's call-time counted from each call's own start; a call that times
 * out behind a slow one without ending the worker; a pipelined call's own
 * deadline; and a hostile worker answering a call that is pipelined but not
 * running, or answering twice; and a synchronous call waiting alone (its
 * output before its answer, a flood of it, its deadline, its worker killed,
 * siblings' deadlines and answers meanwhile). Plugins are
 * tests/plugins/pipeline/batch (copied as batch, limited and other) and
 * tests/plugins/channel/rogue. Needs
 * PLUGBOX_WORKER, PLUGBOX_POLICIES and PB_TEST_SRCDIR (set by make check). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugbox.h"
#include "runtime_testlib.h"

static pb_supervisor *open_pipeline(struct captured *out)
{
	pb_supervisor *sup = open_runtime(out);
	/* restart at once: the calls behind a crash are not kept waiting */
	ck_assert_int_eq(pb_supervisor_set_restart(sup, 10, 60, 0, 0), 0);
	return sup;
}

/* seq(x) answered [n, x]: the n-th seq call of its worker. */
static long long seq_n(const struct outcome *o)
{
	ck_assert_msg(o->result, "seq: %s", o->err ? pb_error_get_message(o->err) : "?");
	ck_assert_uint_eq(pb_value_list_length(o->result), 2);
	return (long long)pb_value_get_int(pb_value_list_get(o->result, 0));
}

static void ck_error(const struct outcome *o, pb_error_kind kind, const char *says)
{
	ck_assert_msg(o->err, "expected an error saying '%s'", says);
	ck_assert_msg(pb_error_get_kind(o->err) == kind, "kind %d, not %d: %s", (int)pb_error_get_kind(o->err), (int)kind,
	              pb_error_get_message(o->err));
	ck_assert_msg(strstr(pb_error_get_message(o->err), says), "'%s' does not say '%s'",
	              pb_error_get_message(o->err), says);
}

START_TEST(pipelined_calls_are_answered_in_order_by_one_worker)
{
	pb_supervisor *sup = open_pipeline(NULL);
	enum { N = 300 };
	static struct outcome o[N];

	for (int i = 0; i < N; i++)
		start(sup, "batch", "seq", pb_value_new_int(i), 0, &o[i]);
	run_until(sup, o, N, 60);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(seq_n(&o[i]), i + 1); /* one worker ran them all, in order */
		ck_assert_int_eq(pb_value_get_int(pb_value_list_get(o[i].result, 1)), i);
		ck_assert_uint_eq(o[i].order, o[0].order + (unsigned)i); /* and they ended in order */
		release(&o[i]);
	}
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(a_crash_in_a_batch_fails_only_the_call_that_ran)
{
	pb_supervisor *sup = open_pipeline(NULL);
	struct outcome o[8];

	start(sup, "batch", "seq", NULL, 0, &o[0]);
	start(sup, "batch", "seq", NULL, 0, &o[1]);
	start(sup, "batch", "crash", NULL, 0, &o[2]);
	for (int i = 3; i < 8; i++)
		start(sup, "batch", "seq", pb_value_new_int(i), 0, &o[i]);
	run_until(sup, o, 8, 60);
	ck_assert_int_eq(seq_n(&o[0]), 1);
	ck_assert_int_eq(seq_n(&o[1]), 2);
	ck_error(&o[2], PB_ERROR_CRASHED, "batch");
	/* the calls behind it never started: the next worker ran them */
	for (int i = 3; i < 8; i++)
		ck_assert_int_eq(seq_n(&o[i]), i - 2);
	for (int i = 0; i < 8; i++)
		release(&o[i]);
	pb_supervisor_free(sup);
}
END_TEST

/* ---- host calls while calls wait behind ---- */

static pb_host_call *held;

static void host_later(void *data, pb_host_call *call)
{
	(void)data;
	held = call; /* answered from the test's loop */
}

START_TEST(host_calls_run_while_calls_wait_behind_them)
{
	pb_supervisor *sup = open_pipeline(NULL);
	struct outcome o[5];
	char buf[64];

	held = NULL;
	ck_assert_int_eq(pb_supervisor_register(sup, "later", host_later, NULL), 0);
	ck_assert_int_eq(pb_supervisor_register(sup, "recurse", host_recurse, sup), 0);

	/* a host function that answers later: the calls behind wait for it */
	start(sup, "batch", "ask_later", NULL, 0, &o[0]);
	for (int i = 1; i < 5; i++)
		start(sup, "batch", "seq", pb_value_new_int(i), 0, &o[i]);
	double end = now() + 30;
	while (!held) {
		ck_assert(now() < end);
		pb_supervisor_dispatch(sup, 100);
	}
	end = now() + 0.3;
	while (now() < end)
		pb_supervisor_dispatch(sup, 50);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(o[i].done, 0);
	pb_host_call_return(held, pb_value_new_int(42));
	run_until(sup, o, 5, 30);
	ck_assert_int_eq(pb_value_get_int(o[0].result), 42);
	for (int i = 1; i < 5; i++) {
		ck_assert_int_eq(seq_n(&o[i]), i);
		ck_assert_uint_gt(o[i].order, o[i - 1].order);
	}
	for (int i = 0; i < 5; i++)
		release(&o[i]);

	/* nested(3): the host calls back into the plugin (nested calls), while
	 * top-level calls are already written behind the one that waits */
	start(sup, "batch", "nested", pb_value_new_int(3), 0, &o[0]);
	for (int i = 1; i < 5; i++)
		start(sup, "batch", "seq", pb_value_new_int(i), 0, &o[i]);
	run_until(sup, o, 5, 30);
	ck_assert_str_eq(json_of(o[0].result, buf, sizeof(buf)), "\"bottom\"");
	for (int i = 1; i < 5; i++) {
		ck_assert_int_eq(seq_n(&o[i]), i + 4); /* the same worker, after the first four */
		ck_assert_uint_gt(o[i].order, o[0].order);
		release(&o[i]);
	}
	release(&o[0]);
	pb_supervisor_free(sup);
}
END_TEST

/* ---- output before answers ---- */

static struct captured *order_log;

static void record_in_log(void *data, uint64_t id, pb_value *result, pb_error *err)
{
	size_t used = strlen(order_log->text);

	snprintf(order_log->text + used, sizeof(order_log->text) - used, "answer %lld\n",
	         result ? (long long)pb_value_get_int(result) : -1LL);
	record(data, id, result, err);
}

START_TEST(what_a_call_prints_comes_before_its_answer)
{
	struct captured out = { "" };
	pb_supervisor *sup = open_pipeline(&out);
	enum { N = 40 };
	struct outcome o[N];

	order_log = &out;
	for (int i = 0; i < N; i++) {
		pb_value *arg = pb_value_new_int(i);
		pb_call_spec spec = { .plugin = "batch", .function = "shout", .args = &arg, .nargs = 1 };
		memset(&o[i], 0, sizeof(o[i]));
		ck_assert_int_eq(pb_call_start(sup, &spec, record_in_log, &o[i], NULL), 0);
		pb_value_destroy(arg);
	}
	run_until(sup, o, N, 60);
	for (int i = 0; i < N; i++) {
		char line[64], answer[64];
		snprintf(line, sizeof(line), "batch|%d|line %d\n", (int)PB_STREAM_STDOUT, i);
		snprintf(answer, sizeof(answer), "answer %d\n", i);
		const char *l = strstr(out.text, line), *a = strstr(out.text, answer);
		ck_assert_msg(l && a && l < a, "call %d: its line and answer out of order in\n%s", i, out.text);
		release(&o[i]);
	}
	pb_supervisor_free(sup);
}
END_TEST

/* ---- a lone synchronous call ----
 *
 * The supervisor's shortcuts for one call waiting alone (the catch-up
 * poll skipped when the loop saw nothing else of the worker; docs/
 * performance.md) must keep what the loop promised: output before its
 * answer, a flood drained while the call waits, the call's deadline, the
 * worker's death, and everyone else's timers and answers meanwhile. */

START_TEST(a_lone_call_that_floods_its_output_is_answered)
{
	/* 1 MB of output, 16 pipes' worth, while its synchronous call is all
	 * that waits: a supervisor that only waited for the answer would
	 * leave the worker blocked writing, and both would wait for ever. */
	struct captured out = { "" };
	pb_supervisor *sup = open_pipeline(&out);
	pb_value *arg = pb_value_new_int(1 << 20), *result = NULL;
	pb_error *err = NULL;
	double t0 = now();

	ck_assert_int_eq(pb_call(sup, "batch", "flood", &arg, 1, &result, &err), 0);
	ck_assert_int_eq(pb_value_get_int(result), 1 << 20);
	ck_assert_msg(now() - t0 < 30, "%.1f s", now() - t0);
	/* the first lines were shown, the rest metered (and said so) */
	ck_assert_ptr_nonnull(strstr(out.text, "batch|1|xxxxxxxxxx"));
	pb_value_destroy(result);
	pb_value_destroy(arg);
	pb_supervisor_free(sup);
}
END_TEST

/* After the worker's end: the next synchronous call is answered, by a new
 * worker; then the supervisor is freed. */
static void next_call_answered(pb_supervisor *sup, long long n)
{
	pb_value *arg = pb_value_new_int(n), *result = NULL;
	pb_error *err = NULL;

	ck_assert_int_eq(pb_supervisor_set_timeout(sup, 20), 0);
	ck_assert_int_eq(pb_call(sup, "batch", "echo", &arg, 1, &result, &err), 0);
	ck_assert_int_eq(pb_value_get_int(result), n);
	pb_value_destroy(result);
	pb_value_destroy(arg);
	pb_supervisor_free(sup);
}

START_TEST(a_lone_call_times_out_while_its_worker_says_nothing)
{
	pb_supervisor *sup = open_pipeline(NULL);
	pb_value *arg = pb_value_new_float(30), *result = NULL;
	pb_error *err = NULL;
	double t0;

	/* started first: the deadline below is the call's, not the start's */
	ck_assert_int_eq(pb_supervisor_warm(sup, "batch", &err), 0);
	ck_assert_int_eq(pb_supervisor_set_timeout(sup, 0.5), 0);
	t0 = now();
	ck_assert_int_eq(pb_call(sup, "batch", "sleep", &arg, 1, &result, &err), -ETIMEDOUT);
	ck_assert_msg(now() - t0 >= 0.45 && now() - t0 < 10, "%.2f s", now() - t0);
	ck_assert_int_eq(pb_error_get_kind(err), PB_ERROR_TIMEOUT);
	pb_error_free(err);
	pb_value_destroy(arg);
	next_call_answered(sup, 5);
}
END_TEST

static void *kill_workers_soon(void *unused)
{
	pid_t pids[16];
	size_t n;

	(void)unused;
	usleep(300 * 1000);
	n = children(pids, 16);
	for (size_t i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	return (void *)n;
}

START_TEST(a_lone_call_ends_when_its_worker_is_killed)
{
	pb_supervisor *sup = open_pipeline(NULL);
	pb_value *arg = pb_value_new_float(30), *result = NULL;
	pb_error *err = NULL;
	pthread_t killer;
	void *killed;
	double t0;

	ck_assert_int_eq(pb_supervisor_warm(sup, "batch", &err), 0);
	t0 = now();
	ck_assert_int_eq(pthread_create(&killer, NULL, kill_workers_soon, NULL), 0);
	ck_assert_int_lt(pb_call(sup, "batch", "sleep", &arg, 1, &result, &err), 0);
	ck_assert_int_eq(pthread_join(killer, &killed), 0);
	ck_assert_int_eq((int)(size_t)killed, 1);
	ck_assert_msg(now() - t0 < 10, "%.2f s", now() - t0);
	ck_assert_int_eq(pb_error_get_kind(err), PB_ERROR_CRASHED);
	pb_error_free(err);
	pb_value_destroy(arg);
	next_call_answered(sup, 6);
}
END_TEST

START_TEST(siblings_time_out_and_answer_while_a_synchronous_call_waits)
{
	/* A call to another plugin with a deadline of its own, and one that
	 * is answered at once, made before a synchronous call of 4 s: both end
	 * (their callbacks run) while the synchronous call still waits. */
	pb_supervisor *sup = open_pipeline(NULL);
	pb_value *arg = pb_value_new_float(4), *result = NULL;
	pb_error *err = NULL;
	struct outcome timer, quick;
	double t0 = now(), back;

	start(sup, "other", "sleep", pb_value_new_float(30), 0.5, &timer);
	start(sup, "limited", "echo", pb_value_new_int(7), 0, &quick);
	ck_assert_int_eq(pb_call(sup, "batch", "sleep", &arg, 1, &result, &err), 0);
	back = now();
	ck_assert_int_eq(timer.done, 1);
	ck_assert_int_eq(quick.done, 1);
	ck_assert_int_eq(pb_error_get_kind(timer.err), PB_ERROR_TIMEOUT);
	ck_assert_int_eq(pb_value_get_int(quick.result), 7);
	ck_assert_msg(timer.at - t0 < 3 && back - timer.at > 1, "timed out at %.2f s, the call back at %.2f s",
	              timer.at - t0, back - t0);
	ck_assert_msg(back - quick.at > 1, "answered at %.2f s, the call back at %.2f s", quick.at - t0, back - t0);
	release(&timer);
	release(&quick);
	pb_value_destroy(result);
	pb_value_destroy(arg);
	pb_supervisor_free(sup);
}
END_TEST

/* ---- time limits ---- */

START_TEST(call_time_counts_from_each_calls_own_start)
{
	pb_supervisor *sup = open_pipeline(NULL);
	struct outcome o[4], t[3];

	/* limited's policy: @limit call-time 400ms. Four calls of 0.25 s
	 * written at once take 1 s in all, each well within its limit. */
	for (int i = 0; i < 4; i++)
		start(sup, "limited", "sleep", pb_value_new_float(0.25), 0, &o[i]);
	run_until(sup, o, 4, 30);
	for (int i = 0; i < 4; i++) {
		ck_assert_msg(o[i].result, "sleep %d: %s", i, o[i].err ? pb_error_get_message(o[i].err) : "?");
		release(&o[i]);
	}
	/* A spin after a sleep: its limit starts when the sleep has answered,
	 * and only it ends; the call behind it runs on the next worker. */
	double t0 = now();
	start(sup, "limited", "sleep", pb_value_new_float(0.2), 0, &t[0]);
	start(sup, "limited", "spin", NULL, 0, &t[1]);
	start(sup, "limited", "echo", pb_value_new_int(5), 0, &t[2]);
	run_until(sup, t, 3, 30);
	ck_assert_msg(t[0].result, "%s", t[0].err ? pb_error_get_message(t[0].err) : "?");
	ck_error(&t[1], PB_ERROR_TIMEOUT, "call-time");
	ck_assert_double_ge(t[1].at - t0, 0.2 + 0.4 - 0.05);
	ck_assert_int_eq(pb_value_get_int(t[2].result), 5);
	for (int i = 0; i < 3; i++)
		release(&t[i]);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(a_call_timing_out_behind_a_slow_one_leaves_the_worker_alone)
{
	struct captured out = { "" };
	pb_supervisor *sup = open_pipeline(&out);
	struct outcome o[4];

	start(sup, "batch", "seq", NULL, 0, &o[0]);
	start(sup, "batch", "sleep", pb_value_new_float(0.8), 0, &o[1]);
	start(sup, "batch", "seq", pb_value_new_int(7), 0.2, &o[2]); /* written ahead, never started */
	start(sup, "batch", "seq", pb_value_new_int(8), 0, &o[3]);
	run_until(sup, o, 4, 30);
	ck_assert_int_eq(seq_n(&o[0]), 1);
	ck_error(&o[2], PB_ERROR_TIMEOUT, "waiting for the worker");
	ck_assert_uint_lt(o[2].order, o[1].order); /* answered at its deadline, not after the sleep */
	ck_assert_msg(o[1].result, "%s", o[1].err ? pb_error_get_message(o[1].err) : "?");
	/* the same worker went on, and skipped the call that had ended */
	ck_assert_msg(seq_n(&o[3]) == 2, "%s", out.text);
	ck_assert_msg(!strstr(out.text, "worker ended"), "%s", out.text);
	for (int i = 0; i < 4; i++)
		release(&o[i]);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(a_pipelined_call_meets_its_own_deadline)
{
	pb_supervisor *sup = open_pipeline(NULL);
	struct outcome o[3];
	double t0 = now();

	start(sup, "batch", "sleep", pb_value_new_float(0.3), 0, &o[0]);
	start(sup, "batch", "spin", NULL, 1.0, &o[1]); /* counts from now, the queue included */
	start(sup, "batch", "echo", pb_value_new_int(9), 0, &o[2]);
	run_until(sup, o, 3, 30);
	ck_assert_msg(o[0].result, "%s", o[0].err ? pb_error_get_message(o[0].err) : "?");
	ck_error(&o[1], PB_ERROR_TIMEOUT, "timed out after 1 s");
	ck_assert_double_ge(o[1].at - t0, 1.0 - 0.05);
	ck_assert_double_lt(o[1].at - t0, 1.0 + 5);
	ck_assert_int_eq(pb_value_get_int(o[2].result), 9);
	for (int i = 0; i < 3; i++)
		release(&o[i]);
	pb_supervisor_free(sup);
}
END_TEST

/* ---- a hostile worker ---- */

/* Run a call to rogue synchronously and return its id. */
static uint64_t warm_rogue(pb_supervisor *sup)
{
	struct outcome o;
	char buf[64];

	start(sup, "rogue", "hello", NULL, 0, &o);
	run_until(sup, &o, 1, 30);
	ck_assert_str_eq(json_of(o.result, buf, sizeof(buf)), "\"hi\"");
	release(&o);
	return o.id;
}

START_TEST(answering_a_call_that_waits_behind_is_a_protocol_error)
{
	pb_supervisor *sup = open_pipeline(NULL);
	struct outcome o[3];
	char buf[64], want[128];
	uint64_t w = warm_rogue(sup);

	/* ids are given in order: the next three calls are w+1, w+2, w+3 */
	start(sup, "rogue", "answer_as", pb_value_new_int((int64_t)w + 2), 0, &o[0]);
	start(sup, "rogue", "hello", NULL, 0, &o[1]);
	start(sup, "rogue", "hello", NULL, 0, &o[2]);
	ck_assert_uint_eq(o[1].id, w + 2);
	run_until(sup, o, 3, 30);
	snprintf(want, sizeof(want), "answered call %llu while call %llu was pending",
	         (unsigned long long)w + 2, (unsigned long long)w + 1);
	ck_error(&o[0], PB_ERROR_PROTOCOL, want);
	/* the calls behind it had not started: a new worker answers them */
	for (int i = 1; i < 3; i++) {
		ck_assert_str_eq(json_of(o[i].result, buf, sizeof(buf)), "\"hi\"");
		release(&o[i]);
	}
	release(&o[0]);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(answering_twice_is_a_protocol_error_for_the_call_then_running)
{
	pb_supervisor *sup = open_pipeline(NULL);
	struct outcome o[3];
	char buf[64], want[128];
	uint64_t w = warm_rogue(sup);

	start(sup, "rogue", "answer_twice", pb_value_new_int((int64_t)w + 1), 0, &o[0]);
	start(sup, "rogue", "hello", NULL, 0, &o[1]);
	start(sup, "rogue", "hello", NULL, 0, &o[2]);
	run_until(sup, o, 3, 30);
	ck_assert_int_eq(pb_value_get_int(o[0].result), 1); /* the first answer counts */
	/* the second came when the next call had started */
	snprintf(want, sizeof(want), "answered call %llu while call %llu was pending",
	         (unsigned long long)w + 1, (unsigned long long)w + 2);
	ck_error(&o[1], PB_ERROR_PROTOCOL, want);
	ck_assert_str_eq(json_of(o[2].result, buf, sizeof(buf)), "\"hi\"");
	for (int i = 0; i < 3; i++)
		release(&o[i]);
	pb_supervisor_free(sup);
}
END_TEST

/* batch three times (as batch, limited and other) and rogue, in a directory of our own. */
static int copy_plugins(const char *src)
{
	char cmd[9 * 4096 + 256];

	snprintf(plugins, sizeof(plugins), "/tmp/check_pipeline-plugins-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -r '%s/plugins/pipeline/batch' '%s/batch' && "
	                           "cp -r '%s/plugins/pipeline/batch' '%s/limited' && cp -r '%s/plugins/channel/rogue' '%s/rogue' && "
	                           "cp -r '%s/plugins/pipeline/batch' '%s/other'",
	         plugins, src, plugins, src, plugins, src, plugins, src, plugins);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const char *src = getenv("PB_TEST_SRCDIR");
	static const char *const extra[] = {
		"batch.policy",
		"@include default\n@host-call later recurse\n",
		"limited.policy",
		"@include default\n@limit call-time 400ms\n",
		NULL,
	};
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("pipeline");
	SRunner *sr;
	char cmd[4200];
	int failed;

	if (!src || !getenv("PLUGBOX_WORKER") || !getenv("PLUGBOX_POLICIES")) {
		fprintf(stderr, "check_pipeline: run through make check (PB_TEST_SRCDIR, PLUGBOX_WORKER, PLUGBOX_POLICIES)\n");
		return 99;
	}
	if (copy_plugins(src) < 0 || write_policies("check_pipeline", extra) < 0) {
		fprintf(stderr, "check_pipeline: cannot set up %s and %s\n", plugins, policies);
		return 99;
	}
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, pipelined_calls_are_answered_in_order_by_one_worker);
	tcase_add_test(tc, a_crash_in_a_batch_fails_only_the_call_that_ran);
	tcase_add_test(tc, host_calls_run_while_calls_wait_behind_them);
	tcase_add_test(tc, what_a_call_prints_comes_before_its_answer);
	tcase_add_test(tc, a_lone_call_that_floods_its_output_is_answered);
	tcase_add_test(tc, a_lone_call_times_out_while_its_worker_says_nothing);
	tcase_add_test(tc, a_lone_call_ends_when_its_worker_is_killed);
	tcase_add_test(tc, siblings_time_out_and_answer_while_a_synchronous_call_waits);
	tcase_add_test(tc, call_time_counts_from_each_calls_own_start);
	tcase_add_test(tc, a_call_timing_out_behind_a_slow_one_leaves_the_worker_alone);
	tcase_add_test(tc, a_pipelined_call_meets_its_own_deadline);
	tcase_add_test(tc, answering_a_call_that_waits_behind_is_a_protocol_error);
	tcase_add_test(tc, answering_twice_is_a_protocol_error_for_the_call_then_running);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	remove_policies();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", plugins);
	if (system(cmd) != 0)
		fprintf(stderr, "check_pipeline: could not remove %s\n", plugins);
	return failed ? 1 : 0;
}
