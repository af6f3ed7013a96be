/* check_policy_cache.c - the supervisor's policy cache (policy_cache.c):
 * a policy is parsed once while its files hold the same bytes, and any
 * edit of the policy or of a file it @includes, even one that keeps the
 * size and the modification time, is parsed at the next load. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy/policy_cache.h"
#include "policy_testlib.h"

static uint64_t parsed(const struct pb_policy_cache *c)
{
	uint64_t p, k;
	pb_policy_cache_counts(c, &p, &k);
	return p;
}

static uint64_t kept(const struct pb_policy_cache *c)
{
	uint64_t p, k;
	pb_policy_cache_counts(c, &p, &k);
	return k;
}

/* The errno the policy gives getpid. */
static int getpid_errno(const struct pb_policy *p)
{
	uint64_t args[6] = { 0 };
	struct pb_action a;

	pb_policy_match(p, SYS_getpid, args, 1, false, &a);
	ck_assert_int_eq(a.kind, PB_ACT_ERRNO);
	return a.err;
}

/* A load through the cache that must succeed. */
static struct pb_policy *load_ok(struct pb_policy_cache *c, const char *name)
{
	struct diag d = { 0 };
	struct pb_policy *p = NULL;

	ck_assert_msg(pb_policy_cache_load(c, tmpdir, name, collect, &d, &p) == 0, "%s", d.text);
	return p;
}

/* The policies of a test, written, and removed at its end. */
static void write_pair(const char *top, const char *base)
{
	write_policy("base", base);
	write_policy("top", top);
}

static void remove_pair(void)
{
	remove_policy("top");
	remove_policy("base");
}

/* Rewrite NAME with TEXT, then give it back the modification time it had:
 * only its bytes tell the edit. */
static void rewrite_keeping_mtime(const char *name, const char *text)
{
	char path[512];
	struct stat before, after;

	snprintf(path, sizeof(path), "%s/%s.policy", tmpdir, name);
	ck_assert_int_eq(stat(path, &before), 0);
	write_policy(name, text);
	const struct timespec times[2] = { before.st_atim, before.st_mtim };
	ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
	ck_assert_int_eq(stat(path, &after), 0);
	ck_assert_int_eq(after.st_size, before.st_size);
	ck_assert(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
}

START_TEST(kept_while_unchanged)
{
	struct pb_policy_cache *c = pb_policy_cache_new();
	struct pb_policy *a = NULL, *b = NULL;

	write_pair("getpid: return EPERM\n@include base\n", FLOOR "@default errno ESTALE\n");
	a = load_ok(c, "top");
	b = load_ok(c, "top");
	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(parsed(c), 1);
	ck_assert_uint_eq(kept(c), 1);
	ck_assert_int_eq(getpid_errno(b), EPERM);
	/* Each holder frees its own; the cache keeps its own until freed. */
	pb_policy_free(a);
	pb_policy_cache_free(c);
	ck_assert_int_eq(getpid_errno(b), EPERM);
	pb_policy_free(b);
	remove_pair();
}
END_TEST

/* Same size, same mtime, other bytes: parsed again, and the edit holds. */
START_TEST(edit_seen_by_its_bytes)
{
	struct pb_policy_cache *c = pb_policy_cache_new();
	struct pb_policy *a = NULL, *b = NULL;

	write_pair("getpid: return EPERM\n@include base\n", FLOOR "@default errno ESTALE\n");
	a = load_ok(c, "top");
	ck_assert_int_eq(getpid_errno(a), EPERM);
	rewrite_keeping_mtime("top", "getpid: return EBADF\n@include base\n");
	b = load_ok(c, "top");
	ck_assert_ptr_ne(a, b);
	ck_assert_uint_eq(parsed(c), 2);
	ck_assert_int_eq(getpid_errno(b), EBADF);
	/* The worker that started before the edit keeps what it started with. */
	ck_assert_int_eq(getpid_errno(a), EPERM);
	pb_policy_free(a);
	pb_policy_free(b);
	pb_policy_cache_free(c);
	remove_pair();
}
END_TEST

/* An edit of a file the policy @includes counts as an edit of the policy. */
START_TEST(include_edit_seen)
{
	struct pb_policy_cache *c = pb_policy_cache_new();
	struct pb_policy *a = NULL, *b = NULL, *again = NULL;

	write_pair("@include base\n", FLOOR "@default errno ESTALE\n");
	a = load_ok(c, "top");
	ck_assert_int_eq(getpid_errno(a), ESTALE);
	rewrite_keeping_mtime("base", FLOOR "@default errno ENOLCK\n");
	b = load_ok(c, "top");
	ck_assert_int_eq(getpid_errno(b), ENOLCK);
	again = load_ok(c, "top");
	ck_assert_ptr_eq(b, again);
	ck_assert_uint_eq(parsed(c), 2);
	ck_assert_uint_eq(kept(c), 1);
	pb_policy_free(a);
	pb_policy_free(b);
	pb_policy_free(again);
	pb_policy_cache_free(c);
	remove_pair();
}
END_TEST

/* A policy that stops loading says why at every load, and nothing stale is
 * handed out; once it is mended it loads again. */
START_TEST(errors_never_kept)
{
	struct pb_policy_cache *c = pb_policy_cache_new();
	struct diag d = { 0 };
	struct pb_policy *a = NULL, *p = (struct pb_policy *)1;

	write_pair("@include base\n", FLOOR "@default errno ESTALE\n");
	a = load_ok(c, "top");
	remove_policy("base");
	for (int i = 1; i <= 2; i++) {
		ck_assert_int_lt(pb_policy_cache_load(c, tmpdir, "top", collect, &d, &p), 0);
		ck_assert_ptr_null(p);
		ck_assert_int_eq(d.errors, i);
	}
	write_policy("base", FLOOR "@default errno ENOLCK\n");
	p = load_ok(c, "top");
	ck_assert_int_eq(getpid_errno(p), ENOLCK);
	ck_assert_uint_eq(parsed(c), 4);
	ck_assert_uint_eq(kept(c), 0);
	pb_policy_free(a);
	pb_policy_free(p);
	pb_policy_cache_free(c);
	remove_pair();
}
END_TEST

/* @network connect resolves its names into the policy for each worker:
 * such a policy is never shared between two loads. */
START_TEST(network_connect_not_shared)
{
	struct pb_policy_cache *c = pb_policy_cache_new();
	struct pb_policy *a = NULL, *b = NULL;

	write_policy("net", FLOOR "@default errno ESTALE\n@network connect 127.0.0.1:8080\n");
	a = load_ok(c, "net");
	b = load_ok(c, "net");
	ck_assert_ptr_ne(a, b);
	ck_assert_uint_eq(parsed(c), 2);
	ck_assert_uint_eq(kept(c), 0);
	pb_policy_free(a);
	pb_policy_free(b);
	pb_policy_cache_free(c);
	remove_policy("net");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy_cache");
	TCase *tc = tcase_create("policy_cache");
	SRunner *sr;
	int failed;

	if (policy_test_tmpdir("check_policy_cache") < 0)
		return 1;
	tcase_add_test(tc, kept_while_unchanged);
	tcase_add_test(tc, edit_seen_by_its_bytes);
	tcase_add_test(tc, include_edit_seen);
	tcase_add_test(tc, errors_never_kept);
	tcase_add_test(tc, network_connect_not_shared);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
