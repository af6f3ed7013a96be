/* policy_match.c - the decisions a compiled policy makes, made again in C.
 *
 * When a worker's syscall was trapped, logged or killed, the supervisor
 * names the rule that decided it (runtime/violation.c, `plugbox learn`,
 * `plugbox policy test`): the first rule of the syscall's chain whose
 * condition holds, else @default; under the @after-start rules, the more
 * severe of the two verdicts, as the kernel applies them. It must decide
 * exactly as the BPF that policy_compile.c emits: check_bpf runs both on
 * the same arguments.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"
#include "policy/policy_rules.h"

static bool atom_holds(const struct pb_atom *a, const uint64_t args[6], int32_t self_pid)
{
	uint64_t v = args[a->arg], k = pb_atom_value(a, self_pid);

	if (!a->wide) {
		v &= UINT32_MAX;
		k &= UINT32_MAX;
	}
	switch (a->op) {
	case PB_OP_EQ: return v == k;
	case PB_OP_NE: return v != k;
	case PB_OP_LT: return v < k;
	case PB_OP_LE: return v <= k;
	case PB_OP_GT: return v > k;
	case PB_OP_GE: return v >= k;
	case PB_OP_ANY_BITS: return (v & k) != 0;
	default: return (v & ~k) == 0;
	}
}

bool pb_cond_holds(const struct pb_cond *c, const uint64_t args[6], int32_t self_pid)
{
	size_t first = 0;

	for (size_t k = 0; k < c->nclauses; k++) {
		bool all = true;
		for (size_t i = first; i < c->clause_end[k] && all; i++)
			all = atom_holds(&c->atoms[i], args, self_pid);
		if (all)
			return true;
		first = c->clause_end[k];
	}
	return false;
}

static const struct pb_entry *chain_match(const struct pb_entry_list *l, int nr,
                                          const uint64_t args[6], int32_t self_pid)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].nr == nr && (!l->v[i].cond || pb_cond_holds(l->v[i].cond, args, self_pid)))
			return &l->v[i];
	return NULL;
}

/* The kernel's order of precedence among verdicts. */
static int severity(enum pb_action_kind k)
{
	switch (k) {
	case PB_ACT_KILL: return 4;
	case PB_ACT_TRAP: return 3;
	case PB_ACT_ERRNO: return 2;
	case PB_ACT_LOG: return 1;
	default: return 0;
	}
}

const struct pb_entry *pb_policy_match(const struct pb_policy *p, int nr, const uint64_t args[6],
                                       int32_t self_pid, bool after_start,
                                       struct pb_action *action)
{
	const struct pb_entry *e = chain_match(&p->start, nr, args, self_pid);
	*action = e ? e->action : p->dflt;
	if (after_start) {
		const struct pb_entry *a = chain_match(&p->after, nr, args, self_pid);
		/* Between equal verdicts the newer filter's data wins (the errno
		 * of two errnos or two traps); a start-up kill stays a kill, see
		 * kill_first. */
		if (a && severity(a->action.kind) >= severity(action->kind)) {
			*action = a->action;
			return a;
		}
	}
	return e;
}

bool pb_policy_has_log(const struct pb_policy *pol)
{
	const struct pb_entry_list *lists[] = { &pol->start, &pol->after };
	/* connect(2) is answered by the supervisor, as a log verdict is */
	if (pol->dflt.kind == PB_ACT_LOG || pol->sandbox.network == PB_NETWORK_CONNECT)
		return true;
	for (size_t l = 0; l < 2; l++)
		for (size_t i = 0; i < lists[l]->n; i++)
			if (lists[l]->v[i].action.kind == PB_ACT_LOG)
				return true;
	return false;
}
