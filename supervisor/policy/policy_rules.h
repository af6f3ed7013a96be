/* policy_rules.h - what the policy layer's files share among themselves:
 * the rules plugbox puts around a policy's own (policy_rules.c), the
 * compile memo (policy_memo.c) and the C matcher (policy_match.c). Not for
 * other layers: policy.h is the layer's API.
 */
#ifndef PLUGBOX_POLICY_RULES_H
#define PLUGBOX_POLICY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

/* What an atom compares an argument with: its value, or the worker's pid. */
static inline uint64_t pb_atom_value(const struct pb_atom *a, int32_t self_pid)
{
	return a->self_pid ? (uint64_t)(uint32_t)self_pid : a->value;
}

/* Whether c holds for args, as the compiled program decides it
 * (policy_match.c). */
bool pb_cond_holds(const struct pb_cond *c, const uint64_t args[6], int32_t self_pid);

/* ---- built-in rules (policy_rules.c) ----------------------------------------
 * Each function makes out a new array (out owns it, not the entries'
 * conditions, which are static or the policy's) and returns 0 or -ENOMEM. */

/* seccomp(SECCOMP_SET_MODE_FILTER) allowed, for the after-start program,
 * and every seccomp(2) refused once it is loaded. */
extern const struct pb_entry pb_rule_open_filter, pb_rule_close_filter;
/* sendmsg on the report socket: the worker hands its listener over. */
extern const struct pb_entry pb_rule_handover;

/* l with e before (front) or after its entries. */
int pb_rules_with_entry(const struct pb_entry_list *l, const struct pb_entry *e, bool front,
                        struct pb_entry_list *out);
/* l after the two @network connect rules. */
int pb_rules_with_net(const struct pb_entry_list *l, struct pb_entry_list *out);
/* The start-up rules as learn mode runs them; *dflt becomes log. */
int pb_rules_learn(const struct pb_policy *p, struct pb_entry_list *out, struct pb_action *dflt);
/* l after what a zygote (zygote) or a zygote's child (!zygote) needs first. */
int pb_rules_zygote(const struct pb_entry_list *l, bool zygote, struct pb_entry_list *out);

/* ---- the compile memo (policy_memo.c) --------------------------------------- */

/* 0 and a copy of the kept programs in out if m holds those for self_pid
 * and mode; -ENOENT if not, -ENOMEM. */
int pb_compiled_memo_get(const struct pb_compiled_memo *m, int32_t self_pid, enum pb_compile_mode mode,
                         struct pb_bpf_blob *out);
/* Keep a copy of blob, compiled for self_pid and mode, in m. */
void pb_compiled_memo_put(struct pb_compiled_memo *m, int32_t self_pid, enum pb_compile_mode mode,
                          const struct pb_bpf_blob *blob);

#endif
