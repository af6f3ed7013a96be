/* bpf_run.h - a classic-BPF interpreter for the seccomp programs
 * policy_compile.c emits. One copy, shared by `plugbox policy test` and
 * `policy explain` (which judge a policy by what its compiled filter says,
 * not by what the matcher believes), the unit tests (check_bpf.c) and the
 * policy fuzzer (fuzz_policy.c), so that all of them run the programs by
 * the same rules.
 *
 * It knows exactly the instructions the compiler emits (a 32-bit load from
 * seccomp_data, the jumps, a constant return); anything else, a load
 * outside seccomp_data or a jump off the end is a broken program: the run
 * fails with -EINVAL and says what and where in *fault.
 */
#ifndef PLUGBOX_BPF_RUN_H
#define PLUGBOX_BPF_RUN_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

/* One program of a compiled blob. */
struct pb_bpf_prog {
	uint32_t header; /* the blob's header: instruction count and PB_PROG_* bits */
	const struct sock_filter *insns;
};

/* Why a program could not be run: a constant string, and the instruction. */
struct pb_bpf_fault {
	const char *what;
	size_t pc;
};

/* One program's return value for d: 0 with *ret, or -EINVAL with *fault. */
int pb_bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d, uint32_t *ret,
               struct pb_bpf_fault *fault);
/* Every program, as the kernel runs a filter chain: the lowest action
 * wins, and among equal actions the most recently loaded program's data.
 * Programs marked PB_PROG_AFTER_START count only with with_after. */
int pb_bpf_run_chain(const struct pb_bpf_prog *progs, unsigned n, bool with_after,
                     const struct seccomp_data *d, uint32_t *ret, struct pb_bpf_fault *fault);
/* The programs of a compiled blob (at most max): how many, or -EINVAL
 * when the blob is not a sequence of well-formed programs. */
int pb_bpf_blob_split(const struct pb_bpf_blob *b, struct pb_bpf_prog *progs, unsigned max);

/* A seccomp return value as the policy language says it: allow, errno E,
 * log, trap E, kill (a trap with PB_TRAP_KILL, which the worker reports;
 * *silent false) or kill (SECCOMP_RET_KILL_*, the guard's, not reported;
 * *silent true). -EINVAL for a value the compiler never returns. */
int pb_bpf_verdict_action(uint32_t ret, struct pb_action *a, bool *silent);

#endif
