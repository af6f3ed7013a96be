/* check_uids.c - unit tests for the uids workers run as when plugbox is
 * root (supervisor/jail/uids.c): a helper worker (an install unpacker, a
 * bytecode compiler) gets a uid of its own from the plugin range, never one
 * that a plugin of any supervisor or another live helper holds, and gives
 * it back when its claim is released. The claims are OFD locks in
 * /run/plugbox/uids.lock, so "another supervisor" is another open file
 * description, here in this process. As another user the test is skipped
 * (exit 77): only root runs workers as other uids.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "jail/uids.h"

static bool none_taken(uid_t uid, void *arg)
{
	(void)uid;
	(void)arg;
	return false;
}

static bool in_range(uid_t uid)
{
	return uid >= PB_PLUGIN_UID_BASE && uid < PB_PLUGIN_UID_BASE + PB_PLUGIN_UID_RANGE;
}

START_TEST(test_two_live_helpers_never_share_a_uid)
{
	int a = -1, b = -1;
	uid_t ua, ub;
	char why[256];

	ck_assert_int_eq(pb_uid_claim_helper(&a, &ua, why, sizeof(why)), 0);
	ck_assert_int_eq(pb_uid_claim_helper(&b, &ub, why, sizeof(why)), 0);
	ck_assert(in_range(ua) && in_range(ub));
	ck_assert_uint_ne(ua, ub);
	/* released: the next helper may have it again */
	pb_uid_release(&a);
	ck_assert_int_eq(a, -1);
	ck_assert_int_eq(pb_uid_claim_helper(&a, &ua, why, sizeof(why)), 0);
	ck_assert_uint_ne(ua, ub);
	pb_uid_release(&a);
	pb_uid_release(&b);
}
END_TEST

START_TEST(test_a_helper_never_takes_a_plugins_uid)
{
	int sup = -1, h = -1;
	uid_t plugin_uid, helper_uid;
	char why[256];

	/* A supervisor's plugin whose directory hashes where the helpers start. */
	ck_assert_int_eq(pb_uid_claim(&sup, "plugbox helper", none_taken, NULL, &plugin_uid, why, sizeof(why)), 0);
	ck_assert_int_eq(pb_uid_claim_helper(&h, &helper_uid, why, sizeof(why)), 0);
	ck_assert(in_range(helper_uid));
	ck_assert_uint_ne(helper_uid, plugin_uid);
	pb_uid_release(&h);
	pb_uid_release(&sup);
}
END_TEST

static Suite *uids_suite(void)
{
	Suite *s = suite_create("uids");
	TCase *tc = tcase_create("helpers");
	tcase_add_test(tc, test_two_live_helpers_never_share_a_uid);
	tcase_add_test(tc, test_a_helper_never_takes_a_plugins_uid);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (geteuid() != 0) {
		fprintf(stderr, "check_uids: skipped: only root claims worker uids\n");
		return 77;
	}
	sr = srunner_create(uids_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed < 77 ? failed : 76;
}
