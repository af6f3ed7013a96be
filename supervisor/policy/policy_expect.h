/* policy_expect.h - expectation files: what a policy's compiled filter
 * must decide for given syscalls, checked without running any plugin
 * (`plugbox policy test`, issue 24), and the syscall a user names to
 * `plugbox policy explain`.
 *
 * One row per line ('#' starts a comment):
 *
 *     [ABI:]SYSCALL[(ARG, ...)]   OUTCOME
 *     @GROUP                      OUTCOME
 *
 * ABI is x86_64 (the native one), x32 or i386 (on aarch64: aarch64); ARG is
 * a value as in a policy condition (numbers, constants such as AF_INET,
 * `|`, `~`, SELF_PID), 64 bits wide: a row may put garbage in the upper half
 * of an argument the kernel reads as 32 bits. Missing arguments are 0.
 * OUTCOME is allow, kill, log, trap [ERRNO] (any errno when none is given)
 * or errno ERRNO. A @GROUP row stands for one row per member.
 */
#ifndef PLUGBOX_POLICY_EXPECT_H
#define PLUGBOX_POLICY_EXPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/bpf_run.h"
#include "policy/policy.h"

/* A syscall as the filter sees it. */
struct pb_expect_call {
	uint32_t arch; /* AUDIT_ARCH_* */
	int nr;        /* in that ABI (x32: with the x32 bit) */
	uint64_t args[6];
	unsigned self_pid_args; /* bit i: args[i] is the worker's own pid */
};

struct pb_expect_row {
	const char *file; /* owned by the set */
	unsigned line;
	char *label; /* "ptrace", "i386:ptrace", "@attack: bpf": for reports */
	char *text;  /* the row as written, comment removed */
	struct pb_expect_call call;
	struct pb_action want;
	bool any_err; /* `trap` without an errno */
};

struct pb_expect_set {
	struct pb_expect_row *v;
	size_t n, cap;
	char **files;
	size_t nfiles;
};

/* Add the rows of the file at path to *set. Returns 0, or a negative errno
 * after reporting every error as "FILE:LINE:COL: message" through diag. */
int pb_expect_load(const char *path, pb_policy_diag_fn diag, void *data, struct pb_expect_set *set);
void pb_expect_free(struct pb_expect_set *set);

/* "[ABI:]SYSCALL[(ARG, ...)]" alone (policy explain); errors name `where`
 * (e.g. "command line"). 0, or -EINVAL after reporting. */
int pb_expect_parse_call(const char *text, const char *where, pb_policy_diag_fn diag, void *data,
                         struct pb_expect_call *call);

/* The compiled programs' verdict for call, as the kernel runs them once
 * the plugin is started (after_start) or before. 0, or -EINVAL with
 * *fault for a broken program. */
int pb_expect_run(const struct pb_bpf_prog *progs, unsigned n, const struct pb_expect_call *call,
                  int32_t self_pid, bool after_start, struct pb_action *got, bool *silent,
                  struct pb_bpf_fault *fault);
/* Does got meet the row? */
bool pb_expect_met(const struct pb_expect_row *row, const struct pb_action *got);
/* An outcome as a row writes it: "allow", "errno EACCES", "trap ENOSYS". */
const char *pb_expect_outcome(const struct pb_action *a, bool any_err, char *buf, size_t len);
/* "i386:ptrace(0x10, 0x1, 0, 0, 0, 0)" */
void pb_expect_call_format(const struct pb_expect_call *call, char *buf, size_t len);

#endif
