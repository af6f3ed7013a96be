/* bpf_run.c - the classic-BPF interpreter of bpf_run.h: how plugbox (policy
 * test, policy explain), the unit tests and the fuzzer run compiled
 * programs. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "policy/bpf_run.h"
#include "proto/protocol.h"

#define FAULT(w, at)               \
	do {                       \
		fault->what = (w); \
		fault->pc = (at);  \
		return -EINVAL;    \
	} while (0)

int pb_bpf_run(const struct sock_filter *f, size_t n, const struct seccomp_data *d, uint32_t *ret,
               struct pb_bpf_fault *fault)
{
	uint32_t A = 0;
	size_t pc = 0;

	for (;;) {
		if (pc >= n)
			FAULT("ran off the end of the program", pc);
		const struct sock_filter *i = &f[pc];
		switch (i->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (i->k % 4 != 0 || (size_t)i->k + 4 > sizeof(*d))
				FAULT("a load outside seccomp_data", pc);
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
			*ret = i->k;
			return 0;
		default:
			FAULT("an opcode the compiler does not emit", pc);
		}
	}
}

int pb_bpf_run_chain(const struct pb_bpf_prog *progs, unsigned n, bool with_after,
                     const struct seccomp_data *d, uint32_t *ret, struct pb_bpf_fault *fault)
{
	uint32_t verdicts[8];
	unsigned k = 0;

	for (unsigned i = 0; i < n && k < 8; i++)
		if (with_after || !(progs[i].header & PB_PROG_AFTER_START)) {
			int r = pb_bpf_run(progs[i].insns, progs[i].header & PB_PROG_COUNT_MASK, d, &verdicts[k],
			                   fault);
			if (r < 0)
				return r;
			k++;
		}
	if (k == 0)
		FAULT("no program to run", 0);
	*ret = verdicts[k - 1];
	for (unsigned i = k - 1; i-- > 0;)
		if ((int32_t)(verdicts[i] & SECCOMP_RET_ACTION_FULL) < (int32_t)(*ret & SECCOMP_RET_ACTION_FULL))
			*ret = verdicts[i];
	return 0;
}

int pb_bpf_blob_split(const struct pb_bpf_blob *b, struct pb_bpf_prog *progs, unsigned max)
{
	size_t off = 0;
	unsigned n = 0;

	while (off < b->len) {
		uint32_t h;
		size_t count;

		if (b->len - off < 4 || n >= max)
			return -EINVAL;
		h = (uint32_t)b->data[off] | (uint32_t)b->data[off + 1] << 8 |
		    (uint32_t)b->data[off + 2] << 16 | (uint32_t)b->data[off + 3] << 24;
		count = h & PB_PROG_COUNT_MASK;
		if (count == 0 || count > BPF_MAXINSNS || (b->len - off - 4) / sizeof(struct sock_filter) < count)
			return -EINVAL;
		progs[n].header = h;
		progs[n].insns = (const struct sock_filter *)(const void *)(b->data + off + 4);
		n++;
		off += 4 + count * sizeof(struct sock_filter);
	}
	return (int)n;
}

int pb_bpf_verdict_action(uint32_t ret, struct pb_action *a, bool *silent)
{
	uint32_t data = ret & SECCOMP_RET_DATA;

	*silent = false;
	a->err = 0;
	switch (ret & SECCOMP_RET_ACTION_FULL) {
	case SECCOMP_RET_ALLOW: a->kind = PB_ACT_ALLOW; return 0;
	case SECCOMP_RET_ERRNO:
		a->kind = PB_ACT_ERRNO;
		a->err = (int)data;
		return 0;
	case SECCOMP_RET_USER_NOTIF: a->kind = PB_ACT_LOG; return 0;
	case SECCOMP_RET_TRAP:
		a->kind = data == PB_TRAP_KILL ? PB_ACT_KILL : PB_ACT_TRAP;
		a->err = data == PB_TRAP_KILL ? 0 : (int)data;
		return 0;
	case SECCOMP_RET_KILL_PROCESS:
	case SECCOMP_RET_KILL_THREAD:
		a->kind = PB_ACT_KILL;
		*silent = true;
		return 0;
	default:
		return -EINVAL;
	}
}
