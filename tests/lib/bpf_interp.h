/* bpf_interp.h - the tests' side of the one classic-BPF interpreter
 * (supervisor/policy/bpf_run.c, which `plugbox policy test` runs too):
 * wrappers that turn a broken program into the caller's `fail`
 * (ck_abort_msg, or the fuzzer's abort), which must not return, and the
 * tests' own oracle for what an action compiles to.
 */
#ifndef PLUGBOX_BPF_INTERP_H
#define PLUGBOX_BPF_INTERP_H

#include "policy/bpf_run.h"

typedef void (*bpf_fail_fn)(const char *what, size_t pc) __attribute__((noreturn));

/* pb_bpf_run and pb_bpf_run_chain, failing through `fail`. */
uint32_t bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d, bpf_fail_fn fail);
uint32_t bpf_run_chain(const struct pb_bpf_prog *progs, unsigned n, bool with_after,
                       const struct seccomp_data *d, bpf_fail_fn fail);
/* The seccomp return value an action of the matcher stands for. */
uint32_t bpf_action_value(const struct pb_action *a);
/* What the learn-mode filter must answer for nr(args), given the matcher's
 * verdict `a` when enforcing and whether a rule (not @default) decided:
 * learn's own guard (no namespaces) first, the verdicts on @attack as when
 * enforcing, allow as allow, a kill rule still kills (only @default's kill,
 * what no rule names, is logged), everything else logged. */
uint32_t bpf_learn_expect(const struct pb_action *a, bool decided, int nr, const uint64_t args[6]);

#endif
