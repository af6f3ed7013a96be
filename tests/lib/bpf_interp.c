/* bpf_interp.c - the classic-BPF interpreter of bpf_interp.h: one copy for
 * the unit tests and the fuzzer, so that both judge the compiled programs
 * by the same rules. */
#include "config.h"

#include <string.h>

#include "proto/protocol.h"
#include "tests/lib/bpf_interp.h"

uint32_t bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d, bpf_fail_fn fail)
{
	uint32_t A = 0;
	size_t pc = 0;

	for (;;) {
		if (pc >= n)
			fail("ran off the end of the program", pc);
		const struct sock_filter *i = &f[pc];
		switch (i->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (i->k % 4 != 0 || (size_t)i->k + 4 > sizeof(*d))
				fail("a load outside seccomp_data", pc);
			memcpy(&A, (const uint8_t *)d + i->k, 4);
			pc++;
			break;
		case BPF_JMP | BPF_JA:
			pc += 1 + (size_t)i->k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += 1 + (size_t)(A == i->k ? i->jt : i->jf);
			break;
		case BPF_JMP | BPF_JGT | BPF_K:
			pc += 1 + (size_t)(A > i->k ? i->jt : i->jf);
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += 1 + (size_t)(A >= i->k ? i->jt : i->jf);
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += 1 + (size_t)((A & i->k) ? i->jt : i->jf);
			break;
		case BPF_RET | BPF_K:
			return i->k;
		default:
			fail("an opcode the compiler does not emit", pc);
		}
	}
}

uint32_t bpf_run_chain(const struct bpf_prog *progs, unsigned n, bool with_after, const struct seccomp_data *d,
                       bpf_fail_fn fail)
{
	uint32_t verdicts[8], ret;
	unsigned k = 0;

	for (unsigned i = 0; i < n && k < 8; i++)
		if (with_after || !(progs[i].header & PB_PROG_AFTER_START))
			verdicts[k++] = bpf_run(progs[i].insns, progs[i].header & 0xffff, d, fail);
	if (k == 0)
		fail("no program to run", 0);
	ret = verdicts[k - 1];
	for (unsigned i = k - 1; i-- > 0;)
		if ((int32_t)(verdicts[i] & SECCOMP_RET_ACTION_FULL) < (int32_t)(ret & SECCOMP_RET_ACTION_FULL))
			ret = verdicts[i];
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
