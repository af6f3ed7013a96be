/* check_call.c - libplugbox through its public header only, as a host
 * program uses it: calls with positional and keyword arguments, errors as
 * codes plus messages, plugin output through the output callback, and one
 * worker kept across calls. Needs PLUGBOX_WORKER and PB_TEST_SRCDIR (set by
 * make check). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugbox.h"

static char plugins[4096];

struct captured {
	char text[4096];
};

static void capture(void *data, const char *plugin, pb_stream stream, const char *line)
{
	struct captured *c = data;
	size_t used = strlen(c->text);
	snprintf(c->text + used, sizeof(c->text) - used, "%s|%d|%s\n", plugin, (int)stream, line);
}

static pb_supervisor *open_features(void)
{
	pb_supervisor *sup = NULL;
	ck_assert_int_eq(pb_supervisor_new(plugins, &sup), 0);
	ck_assert_int_eq(pb_supervisor_set_timeout(sup, 30), 0);
	return sup;
}

static pb_value *json(const char *text)
{
	char *why = NULL;
	pb_value *v = pb_value_parse_json(text, &why);
	ck_assert_msg(v != NULL, "%s: %s", text, why ? why : "?");
	return v;
}

START_TEST(positional_and_keyword_arguments_arrive)
{
	pb_supervisor *sup = open_features();
	pb_value *args[2] = { json("1"), json("\"two\"") };
	const char *kwnames[1] = { "flag" };
	pb_value *kwvalues[1] = { json("{\"$bytes\": \"AAE=\"}") };
	pb_value *result = NULL;
	pb_error *err = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_int_eq(pb_call_kw(sup, "echo", "echo_all", args, 2, kwnames, kwvalues, 1, &result, &err), 0);
	f = open_memstream(&text, &len);
	ck_assert_int_eq(pb_value_print_json(result, f), 0);
	fclose(f);
	ck_assert_str_eq(text, "{\"args\":[1,\"two\"],\"kwargs\":{\"flag\":{\"$bytes\":\"AAE=\"}}}");
	ck_assert_str_eq(pb_value_get_string(pb_value_list_get(pb_value_map_get(result, "args"), 1)), "two");
	free(text);
	pb_value_destroy(result);
	for (int i = 0; i < 2; i++)
		pb_value_destroy(args[i]);
	pb_value_destroy(kwvalues[0]);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(errors_come_back_as_kinds_and_messages)
{
	pb_supervisor *sup = open_features();
	pb_value *result = NULL;
	pb_error *err = NULL;

	ck_assert_int_lt(pb_call(sup, "no-such-plugin", "f", NULL, 0, &result, &err), 0);
	ck_assert_ptr_null(result);
	ck_assert_int_eq(pb_error_get_kind(err), PB_ERROR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(pb_error_get_message(err), "no-such-plugin"));
	pb_error_free(err);

	ck_assert_int_lt(pb_call(sup, "echo", "no_such_function", NULL, 0, &result, &err), 0);
	ck_assert_int_eq(pb_error_get_kind(err), PB_ERROR_NOT_FOUND);
	ck_assert_str_eq(pb_error_kind_name(pb_error_get_kind(err)), "not_found");
	pb_error_free(err);

	pb_value *bad = json("\"\"");
	const char *noname[1] = { "" };
	ck_assert_int_lt(pb_call_kw(sup, "echo", "echo_all", NULL, 0, noname, &bad, 1, &result, &err), 0);
	ck_assert_int_eq(pb_error_get_kind(err), PB_ERROR_BAD_REQUEST);
	pb_error_free(err);
	pb_value_destroy(bad);
	pb_supervisor_free(sup);
}
END_TEST

START_TEST(output_goes_to_the_callback_and_the_worker_is_reused)
{
	pb_supervisor *sup = open_features();
	struct captured c = { "" };
	pb_value *arg = json("\"hi\"");
	pb_value *result = NULL;
	pb_error *err = NULL;

	pb_supervisor_set_output(sup, capture, &c);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pb_call(sup, "printer", "say", &arg, 1, &result, &err), 0);
		ck_assert_str_eq(pb_value_get_string(result), "done");
		pb_value_destroy(result);
	}
	/* Imported once: one worker served all three calls. */
	ck_assert_ptr_nonnull(strstr(c.text, "printer|1|printer imported\n"));
	ck_assert_ptr_null(strstr(strstr(c.text, "printer imported") + 1, "printer imported"));
	ck_assert_ptr_nonnull(strstr(c.text, "printer|1|hi\n"));
	ck_assert_ptr_nonnull(strstr(c.text, "printer|2|err: hi\n"));
	pb_value_destroy(arg);
	pb_supervisor_free(sup);
}
END_TEST

int main(void)
{
	const char *src = getenv("PB_TEST_SRCDIR");
	Suite *s = suite_create("call");
	TCase *tc = tcase_create("api");
	SRunner *sr;
	int failed;

	if (!src || !getenv("PLUGBOX_WORKER")) {
		fprintf(stderr, "check_call: run through make check (PB_TEST_SRCDIR, PLUGBOX_WORKER)\n");
		return 99;
	}
	snprintf(plugins, sizeof(plugins), "%s/plugins/features", src);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, positional_and_keyword_arguments_arrive);
	tcase_add_test(tc, errors_come_back_as_kinds_and_messages);
	tcase_add_test(tc, output_goes_to_the_callback_and_the_worker_is_reused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
