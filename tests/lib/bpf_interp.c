/* bpf_interp.c - see bpf_interp.h: the shared interpreter as the unit
 * tests and the fuzzer call it, and their action oracle. */
#include "config.h"

#include "proto/protocol.h"
#include "tests/lib/bpf_interp.h"

uint32_t bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d, bpf_fail_fn fail)
{
	struct pb_bpf_fault fault;
	uint32_t ret;

	if (pb_bpf_run(f, n, d, &ret, &fault) < 0)
		fail(fault.what, fault.pc);
	return ret;
}

uint32_t bpf_run_chain(const struct pb_bpf_prog *progs, unsigned n, bool with_after,
                       const struct seccomp_data *d, bpf_fail_fn fail)
{
	struct pb_bpf_fault fault;
	uint32_t ret;

	if (pb_bpf_run_chain(progs, n, with_after, d, &ret, &fault) < 0)
		fail(fault.what, fault.pc);
	return ret;
}

/* policy_compile.c has its own mapping: this one is the tests' oracle and
 * stays written out apart from the code it checks, on purpose. */
uint32_t bpf_action_value(const struct pb_action *a)
{
	switch (a->kind) {
	case PB_ACT_ALLOW: return SECCOMP_RET_ALLOW;
	case PB_ACT_ERRNO: return SECCOMP_RET_ERRNO | ((uint32_t)a->err & SECCOMP_RET_DATA);
	case PB_ACT_LOG: return SECCOMP_RET_USER_NOTIF;
	case PB_ACT_TRAP: return SECCOMP_RET_TRAP | ((uint32_t)a->err & SECCOMP_RET_DATA);
	case PB_ACT_KILL: return SECCOMP_RET_TRAP | PB_TRAP_KILL;
	}
	return SECCOMP_RET_KILL_PROCESS;
}

static bool is_attack(int nr)
{
	int nrs[256];
	size_t n = pb_syscall_group_numbers("attack", nrs, 256);

	for (size_t i = 0; i < n; i++)
		if (nrs[i] == nr)
			return true;
	return false;
}

uint32_t bpf_learn_expect(const struct pb_action *a, bool decided, int nr, const uint64_t args[6])
{
	const struct pb_entry *guard = pb_policy_learn_guard(nr, args);

	return guard                               ? bpf_action_value(&guard->action)
	       : is_attack(nr)                     ? bpf_action_value(a)
	       : a->kind == PB_ACT_ALLOW           ? SECCOMP_RET_ALLOW
	       : a->kind == PB_ACT_KILL && decided ? bpf_action_value(a)
	                                           : SECCOMP_RET_USER_NOTIF;
}
