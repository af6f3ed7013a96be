/* policy_testlib.c - see policy_testlib.h. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy_testlib.h"

char tmpdir[256];
static pid_t tmpdir_owner;

/* Check forks a process per test, which runs atexit handlers too. */
static void remove_tmpdir(void)
{
	if (getpid() == tmpdir_owner)
		rmdir(tmpdir);
}

int policy_test_tmpdir(const char *prefix)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/%s.XXXXXX", base && *base ? base : "/tmp", prefix);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return -1;
	}
	tmpdir_owner = getpid();
	atexit(remove_tmpdir);
	return 0;
}

void collect(void *data, bool is_error, const char *line)
{
	struct diag *d = data;
	int n = snprintf(d->text + d->len, sizeof(d->text) - d->len, "%s\n", line);

	if (n > 0)
		d->len += (size_t)n < sizeof(d->text) - d->len ? (size_t)n : sizeof(d->text) - d->len - 1;
	if (is_error)
		d->errors++;
	else
		d->warnings++;
}

void write_policy(const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.policy", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

void remove_policy(const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.policy", tmpdir, name);
	unlink(path);
}

/* Load policy text; the test fails on any error. */
struct pb_policy *policy_from(const char *text)
{
	struct diag d = { .len = 0 };
	struct pb_policy *p = NULL;
	int r;

	write_policy("t", text);
	r = pb_policy_load(tmpdir, "t", collect, &d, &p);
	remove_policy("t");
	ck_assert_msg(r == 0 && p, "policy did not load (%d):\n%s--- policy:\n%s", r, d.text, text);
	return p;
}

struct pb_policy *policy_fmt(const char *fmt, ...)
{
	static char text[65536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return policy_from(text);
}

unsigned line_starting(const char *dir, const char *file, const char *text)
{
	char path[1024], line[4200];
	unsigned n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		n++;
		if (!strncmp(line, text, strlen(text))) {
			fclose(f);
			return n;
		}
	}
	fclose(f);
	ck_abort_msg("%s has no line '%s'", path, text);
	return 0;
}

bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* Program i of a blob: its header and instructions. */
bool blob_program(const struct pb_bpf_blob *b, unsigned idx, uint32_t *header,
                  const struct sock_filter **insns)
{
	size_t off = 0;

	for (unsigned i = 0; off + 4 <= b->len; i++) {
		uint32_t h = (uint32_t)b->data[off] | (uint32_t)b->data[off + 1] << 8 |
		             (uint32_t)b->data[off + 2] << 16 | (uint32_t)b->data[off + 3] << 24;
		if (i == idx) {
			*header = h;
			*insns = (const struct sock_filter *)(b->data + off + 4);
			return true;
		}
		off += 4 + (h & 0xffff) * sizeof(struct sock_filter);
	}
	return false;
}
