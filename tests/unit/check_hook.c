/* check_hook.c - pb_hook and plugin replacement through the public header:
 * an entry-point group called across tests/plugins/hooks (order, errors
 * that hide nothing, concurrency across workers, the first-result mode
 * leaving calls in flight behind), and a plugin directory swapped under a
 * supervisor between two pb_call()s with no dispatch in between. Needs
 * PLUGBOX_WORKER, PLUGBOX_POLICIES and PB_TEST_SRCDIR (set by make check). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "plugbox.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static char hooks[4096];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void quiet(void *data, const char *plugin, pb_stream stream, const char *line)
{
	(void)data;
	(void)plugin;
	(void)stream;
	(void)line;
}

static pb_supervisor *open_dir(const char *dir)
{
	pb_supervisor *sup = NULL;
	ck_assert_int_eq(pb_supervisor_new(dir, &sup), 0);
	ck_assert_int_eq(pb_supervisor_set_timeout(sup, 20), 0);
	pb_supervisor_set_output(sup, quiet, NULL);
	return sup;
}

static const char *json_of(const pb_value *v, char *buf, size_t len)
{
	char *j = pb_value_to_json(v);
	snprintf(buf, len, "%s", j ? j : "(null)");
	free(j);
	return buf;
}

/* "plugin name" of answer i, and its result as JSON or its error kind. */
static void expect_answer(const pb_hook_results *r, size_t i, const char *plugin, const char *name,
                          const char *result_json, pb_error_kind error)
{
	char buf[512];

	ck_assert_str_eq(pb_hook_result_plugin(r, i), plugin);
	ck_assert_str_eq(pb_hook_result_name(r, i), name);
	if (result_json) {
		ck_assert_msg(pb_hook_result_error(r, i) == NULL, "%s:%s failed: %s", plugin, name,
		              pb_hook_result_error(r, i) ? pb_error_get_message(pb_hook_result_error(r, i)) : "");
		ck_assert_str_eq(json_of(pb_hook_result_value(r, i), buf, sizeof(buf)), result_json);
	} else {
		ck_assert_ptr_null(pb_hook_result_value(r, i));
		ck_assert_ptr_nonnull(pb_hook_result_error(r, i));
		ck_assert_int_eq(pb_error_get_kind(pb_hook_result_error(r, i)), error);
	}
}

START_TEST(every_provider_answers_in_order_and_no_failure_hides_another)
{
	pb_supervisor *sup = open_dir(hooks);
	pb_value *arg = pb_value_new_int(7);
	pb_call_spec spec = { .args = &arg, .nargs = 1 };
	pb_hook_results *r;

	ck_assert_int_eq(pb_hook(sup, "typeA", &spec, 0, &r), 0);
	ck_assert_uint_eq(pb_hook_results_count(r), 6);
	expect_answer(r, 0, "p0_broken", "", NULL, PB_ERROR_CONFIG);
	expect_answer(r, 1, "p1_none", "run", "null", 0);
	expect_answer(r, 2, "p2_fails", "run", NULL, PB_ERROR_EXCEPTION);
	ck_assert_str_eq(pb_error_get_type(pb_hook_result_error(r, 2)), "ValueError");
	expect_answer(r, 3, "p3_value", "run", "{\"plugin\":\"p3_value\",\"entry\":\"run\",\"args\":[7]}", 0);
	expect_answer(r, 4, "p3_value", "zrun", "{\"plugin\":\"p3_value\",\"entry\":\"zrun\",\"args\":[7]}", 0);
	expect_answer(r, 5, "p4_value", "run", "{\"plugin\":\"p4_value\",\"entry\":\"run\",\"args\":[7]}", 0);
	ck_assert_ptr_null(pb_hook_result_plugin(r, 6));
	pb_hook_results_free(r);

	ck_assert_int_eq(pb_hook(sup, "typeB", NULL, 0, &r), 0);
	ck_assert_uint_eq(pb_hook_results_count(r), 3);
	expect_answer(r, 0, "p0_broken", "", NULL, PB_ERROR_CONFIG);
	expect_answer(r, 1, "p4_value", "other", "\"p4_value typeB\"", 0);
	expect_answer(r, 2, "p5_none_group", "other", "\"p5 typeB\"", 0);
	pb_hook_results_free(r);

	ck_assert_int_eq(pb_hook(sup, "nobody", NULL, 0, &r), 0);
	ck_assert_uint_eq(pb_hook_results_count(r), 1); /* p0_broken still says why it cannot start */
	pb_hook_results_free(r);

	ck_assert_int_eq(pb_hook(sup, "bad:group", NULL, 0, &r), -EINVAL);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(pb_hook(sup, "", NULL, 0, &r), -EINVAL);
	ck_assert_int_eq(pb_hook(sup, "typeA", NULL, 64, &r), -EINVAL);
	pb_value_destroy(arg);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(providers_run_concurrently_across_workers)
{
	pb_supervisor *sup = open_dir(hooks);
	pb_value *delay = pb_value_new_float(1.0);
	const char *kwnames[] = { "delay" };
	pb_call_spec spec = { .kwnames = kwnames, .kwvalues = &delay, .nkwargs = 1 };
	pb_hook_results *r;
	double t0, took;

	/* Workers up first, so that only the calls are timed. */
	ck_assert_int_eq(pb_hook(sup, "typeA", NULL, 0, &r), 0);
	pb_hook_results_free(r);
	t0 = now();
	ck_assert_int_eq(pb_hook(sup, "typeA", &spec, 0, &r), 0);
	took = now() - t0;
	/* p3_value's two entry points share one worker (2 s); p4_value's runs
	 * beside them. One after another would be 3 s. */
	ck_assert_msg(took >= 1.9 && took < 2.8, "typeA with 1 s delays took %.2f s", took);
	ck_assert_uint_eq(pb_hook_results_count(r), 6);
	pb_hook_results_free(r);
	pb_value_destroy(delay);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(first_result_calls_in_turn_and_nothing_after_the_first_value)
{
	pb_supervisor *sup = open_dir(hooks);
	pb_hook_results *r;

	ck_assert_int_eq(pb_hook(sup, "typeA", NULL, PB_HOOK_FIRST_RESULT, &r), 0);
	/* Errors and nulls before the winner stay; nothing after it. */
	ck_assert_uint_eq(pb_hook_results_count(r), 4);
	expect_answer(r, 0, "p0_broken", "", NULL, PB_ERROR_CONFIG);
	expect_answer(r, 1, "p1_none", "run", "null", 0);
	expect_answer(r, 2, "p2_fails", "run", NULL, PB_ERROR_EXCEPTION);
	expect_answer(r, 3, "p3_value", "run", "{\"plugin\":\"p3_value\",\"entry\":\"run\",\"args\":[]}", 0);
	pb_hook_results_free(r);
	/* p3_value's zrun and p4_value's run were never called: no call is
	 * left, and p4_value's worker was never even started. */
	ck_assert_uint_eq(pb_supervisor_calls_pending(sup), 0);
	ck_assert_int_eq(pb_supervisor_plugin_pid(sup, "p4_value"), -1);
	ck_assert_int_eq(pb_supervisor_plugin_pid(sup, "p5_none_group"), -1);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(concurrent_first_result_stops_at_the_first_value_and_leaves_the_rest_running)
{
	pb_supervisor *sup = open_dir(hooks);
	pb_value *delay = pb_value_new_float(1.5);
	const char *kwnames[] = { "delay" };
	pb_call_spec spec = { .kwnames = kwnames, .kwvalues = &delay, .nkwargs = 1 };
	pb_hook_results *r;

	ck_assert_int_eq(pb_hook(sup, "typeA", &spec, PB_HOOK_FIRST_RESULT | PB_HOOK_CONCURRENT, &r), 0);
	ck_assert_uint_eq(pb_hook_results_count(r), 4);
	expect_answer(r, 3, "p3_value", "run", "{\"plugin\":\"p3_value\",\"entry\":\"run\",\"args\":[]}", 0);
	/* p3_value's zrun (1.5 s more) and p4_value's run may still be going:
	 * they end unobserved, with the supervisor's other calls. */
	ck_assert_uint_ge(pb_supervisor_calls_pending(sup), 1);
	pb_hook_results_free(r);
	pb_value *result = NULL;
	pb_error *err = NULL;
	ck_assert_int_eq(pb_call(sup, "p4_value", "typeB:other", NULL, 0, &result, &err), 0);
	pb_value_destroy(result);
	pb_value_destroy(delay);
	/* Freeing with calls still in flight ends them; ASan sees no leak. */
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(discovery_lists_every_plugin_and_starts_no_worker)
{
	pb_supervisor *sup = open_dir(hooks);
	pb_value *list = NULL;
	char buf[512];

	ck_assert_int_eq(pb_supervisor_discover(sup, &list), 0);
	ck_assert_uint_eq(pb_value_list_length(list), 6);
	const pb_value *broken = pb_value_list_get(list, 0), *p3 = pb_value_list_get(list, 3);
	ck_assert_str_eq(pb_value_get_string(pb_value_map_get(broken, "name")), "p0_broken");
	ck_assert_int_eq(pb_value_get_kind(pb_value_map_get(broken, "error")), PB_VALUE_STRING);
	ck_assert_str_eq(pb_value_get_string(pb_value_map_get(p3, "name")), "p3_value");
	ck_assert_int_eq(pb_value_get_kind(pb_value_map_get(p3, "error")), PB_VALUE_NULL);
	ck_assert_str_eq(pb_value_get_string(pb_value_map_get(p3, "layout")), "path");
	ck_assert_uint_eq(pb_value_list_length(pb_value_map_get(p3, "entry_points")), 2);
	json_of(pb_value_map_get(p3, "entry_points"), buf, sizeof(buf));
	ck_assert_msg(strstr(buf, "\"p3_value:second\"") != NULL, "%s", buf);
	pb_value_destroy(list);
	ck_assert_int_eq(pb_supervisor_discover(sup, &list), 0); /* from the cache */
	ck_assert_uint_eq(pb_value_list_length(list), 6);
	pb_value_destroy(list);
	for (const char *const *p = (const char *const[]){ "p0_broken", "p1_none", "p2_fails", "p3_value", "p4_value",
	                                                   "p5_none_group", NULL };
	     *p; p++)
		ck_assert_int_eq(pb_supervisor_plugin_pid(sup, *p), -1);
	pb_supervisor_free(sup);
}
END_TEST

static void hook_done(void *userdata, pb_hook_results *r, int status)
{
	pb_hook_results **out = userdata;
	ck_assert_int_eq(status, 0);
	*out = r;
}

START_TEST(hook_options_choose_plugins_order_and_run_asynchronously)
{
	pb_supervisor *sup = open_dir(hooks);
	const char *given[] = { "p4_value", "p3_value" };
	pb_hook_options o = { .order = PB_HOOK_ORDER_GIVEN, .plugins = given, .nplugins = 2 };
	pb_hook_results *r = NULL;

	ck_assert_int_eq(pb_hook_ex(sup, "typeA", NULL, &o, &r), 0);
	ck_assert_uint_eq(pb_hook_results_count(r), 3);
	expect_answer(r, 0, "p4_value", "run", "{\"plugin\":\"p4_value\",\"entry\":\"run\",\"args\":[]}", 0);
	expect_answer(r, 1, "p3_value", "run", "{\"plugin\":\"p3_value\",\"entry\":\"run\",\"args\":[]}", 0);
	expect_answer(r, 2, "p3_value", "zrun", "{\"plugin\":\"p3_value\",\"entry\":\"zrun\",\"args\":[]}", 0);
	pb_hook_results_free(r);
	r = NULL;

	/* The same, without waiting: the answer comes from a dispatch. */
	ck_assert_int_eq(pb_hook_start(sup, "typeA", NULL, &o, hook_done, &r), 0);
	ck_assert_ptr_null(r);
	while (!r)
		ck_assert_int_ge(pb_supervisor_dispatch(sup, 1000), 0);
	ck_assert_uint_eq(pb_hook_results_count(r), 3);
	pb_hook_results_free(r);

	/* A plugin that is not there, a list order without a list. */
	const char *missing[] = { "p3_value", "no_such" };
	o.plugins = missing;
	ck_assert_int_eq(pb_hook_ex(sup, "typeA", NULL, &o, &r), -ENOENT);
	ck_assert_ptr_nonnull(strstr(pb_supervisor_strerror(sup), "no_such"));
	o.plugins = NULL;
	o.nplugins = 0;
	ck_assert_int_eq(pb_hook_ex(sup, "typeA", NULL, &o, &r), -EINVAL);
	o.order = 7;
	ck_assert_int_eq(pb_hook_ex(sup, "typeA", NULL, &o, &r), -EINVAL);
	pb_supervisor_free(sup);
}
END_TEST

/* ---- a plugin directory replaced between two calls ---- */

static void write_plugin(const char *dir, const char *version)
{
	char path[4200];
	FILE *f;

	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/__init__.py", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "import plugbox\n\n@plugbox.export\ndef version():\n    return '%s'\n", version);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(a_call_after_a_swap_reaches_the_new_directory_without_a_dispatch_between)
{
	char root[] = "/tmp/check_hook-XXXXXX", dir[4200], staged[4200], cmd[4300];
	pb_supervisor *sup;
	pb_value *result = NULL;
	pb_error *err = NULL;

	ck_assert_ptr_nonnull(mkdtemp(root));
	ck_assert_int_eq(chmod(root, 0755), 0);
	snprintf(dir, sizeof(dir), "%s/up", root);
	snprintf(staged, sizeof(staged), "%s/.staged", root);
	write_plugin(dir, "1");
	write_plugin(staged, "2");
	sup = open_dir(root);
	ck_assert_int_eq(pb_call(sup, "up", "version", NULL, 0, &result, &err), 0);
	ck_assert_str_eq(pb_value_get_string(result), "1");
	pb_value_destroy(result);
	/* The installer's swap; the idle worker of version 1 has not been
	 * told by any dispatch when the next call is made. */
	ck_assert_int_eq(syscall(SYS_renameat2, AT_FDCWD, staged, AT_FDCWD, dir, RENAME_EXCHANGE), 0);
	ck_assert_int_eq(pb_call(sup, "up", "version", NULL, 0, &result, &err), 0);
	ck_assert_str_eq(pb_value_get_string(result), "2");
	pb_value_destroy(result);
	pb_supervisor_free(sup);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
	const char *src = getenv("PB_TEST_SRCDIR");
	Suite *s = suite_create("hook");
	TCase *tc = tcase_create("hook");
	SRunner *sr;
	int failed;

	if (!src || !getenv("PLUGBOX_WORKER") || !getenv("PLUGBOX_POLICIES")) {
		fprintf(stderr, "check_hook: run through make check (PB_TEST_SRCDIR, PLUGBOX_WORKER, PLUGBOX_POLICIES)\n");
		return 99;
	}
	snprintf(hooks, sizeof(hooks), "%s/plugins/hooks", src);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, every_provider_answers_in_order_and_no_failure_hides_another);
	tcase_add_test(tc, providers_run_concurrently_across_workers);
	tcase_add_test(tc, first_result_calls_in_turn_and_nothing_after_the_first_value);
	tcase_add_test(tc, concurrent_first_result_stops_at_the_first_value_and_leaves_the_rest_running);
	tcase_add_test(tc, discovery_lists_every_plugin_and_starts_no_worker);
	tcase_add_test(tc, hook_options_choose_plugins_order_and_run_asynchronously);
	tcase_add_test(tc, a_call_after_a_swap_reaches_the_new_directory_without_a_dispatch_between);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
