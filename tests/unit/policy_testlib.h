/* policy_testlib.h - what the policy unit tests share: writing a policy
 * to a temporary directory and loading it, finding a line in a policy file,
 * and reading a compiled blob. */
#ifndef PLUGBOX_POLICY_TESTLIB_H
#define PLUGBOX_POLICY_TESTLIB_H

#include <linux/audit.h>
#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

/* What every policy must allow (the worker floor). */
#define FLOOR "read: 1\nwrite: 1\nrt_sigreturn: 1\nexit_group: 1\n"

/* The directory policies are written to; made by policy_test_tmpdir(). */
extern char tmpdir[256];
/* Make tmpdir (removed at exit by the process that made it); 0 or -1. */
int policy_test_tmpdir(const char *prefix);

struct diag {
	char text[16384];
	size_t len;
	int errors, warnings;
};

void collect(void *data, bool is_error, const char *line);
void write_policy(const char *name, const char *text);
void remove_policy(const char *name);
/* Load policy text; the test fails on any error. */
struct pb_policy *policy_from(const char *text);
struct pb_policy *policy_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The number of the first line of DIR/FILE starting with text; the test
 * fails when there is none. */
unsigned line_starting(const char *dir, const char *file, const char *text);
bool ends_with(const char *s, const char *suffix);
/* Program i of a blob: its header and instructions. */
bool blob_program(const struct pb_bpf_blob *b, unsigned idx, uint32_t *header,
                  const struct sock_filter **insns);

#endif
