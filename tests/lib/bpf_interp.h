/* bpf_interp.h - a classic-BPF interpreter for the seccomp programs
 * policy_compile.c emits, shared by the unit tests (check_bpf.c) and the
 * policy fuzzer (fuzz_policy.c): both run the compiled programs here and
 * compare the verdict with pb_policy_match's.
 *
 * It knows exactly the instructions the compiler emits (a 32-bit load from
 * seccomp_data, the jumps, a constant return); anything else, a load
 * outside seccomp_data or a jump off the end is a broken program, reported
 * through the caller's `fail` (ck_abort_msg, or the fuzzer's abort), which
 * must not return.
 */
#ifndef PLUGBOX_BPF_INTERP_H
#define PLUGBOX_BPF_INTERP_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

typedef void (*bpf_fail_fn)(const char *what, size_t pc) __attribute__((noreturn));

struct bpf_prog {
	uint32_t header;                /* the blob's header: instruction count and PB_PROG_* bits */
	const struct sock_filter *insns;
};

/* One program's return value for d. */
uint32_t bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d, bpf_fail_fn fail);
/* Every program, as the kernel runs a filter chain: the lowest action
 * wins, and among equal actions the most recently loaded program's data.
 * Programs marked PB_PROG_AFTER_START count only with with_after. */
uint32_t bpf_run_chain(const struct bpf_prog *progs, unsigned n, bool with_after, const struct seccomp_data *d,
                       bpf_fail_fn fail);
/* The seccomp return value an action of the matcher stands for. */
uint32_t bpf_action_value(const struct pb_action *a);

#endif
