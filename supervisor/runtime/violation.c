/* violation.c - name a trapped or logged syscall, and the rule that decided
 * it, the way a user reads them: "ptrace(0x10, 0x1, ...)", "'ptrace: kill'
 * at python.policy:210". The numbers come from the worker's report or the
 * kernel's notification; the names from libseccomp and the operator's
 * policy, never from the worker.
 */
#include "config.h"

#include <linux/audit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <seccomp.h>

#include "runtime/process.h"
#include "runtime/violation.h"

#define LEARNED_MAX 4096

/* The rule's text in buf, and where it is written in *at (file NULL: built
 * in, or no rule of a file decided). */
static void decide(const struct process *w, int nr, uint32_t arch, const uint64_t args[6],
                   struct pb_action *action, char *buf, size_t len, struct pb_where *at)
{
	const struct pb_entry *e;
	char where[300];

	*at = (struct pb_where){ 0 };
	if (!pb_native_arch(arch, nr)) {
		*action = (struct pb_action){ PB_ACT_KILL, 0 };
		snprintf(buf, len, "'kill what is not a native %s syscall' (plugbox's built-in guard)",
		         pb_arch_name(AUDIT_ARCH_X86_64, 0));
		return;
	}
	if (!w->policy) {
		*action = (struct pb_action){ PB_ACT_KILL, 0 };
		snprintf(buf, len, "(no policy loaded)");
		return;
	}
	if (w->learning && (e = pb_policy_learn_guard(nr, args)) != NULL) {
		*action = e->action;
		snprintf(buf, len, "'%s' (plugbox learn makes no namespace, whatever the policy)", e->text);
		return;
	}
	if (!w->learning && (e = pb_policy_net_entry(w->policy, nr, args)) != NULL) {
		*action = e->action;
		pb_where_format(&w->policy->sandbox.network_where, where, sizeof(where));
		snprintf(buf, len, "'%s' (plugbox's, for @network connect at %s)", e->text, where);
		return;
	}
	e = pb_policy_match(w->policy, nr, args, w->proc.from_zygote ? w->proc.self_pid : w->proc.pid, w->after_start,
	                    action);
	if (e) {
		*at = e->where;
		pb_where_format(&e->where, where, sizeof(where));
		snprintf(buf, len, "'%s' at %s", e->text, where);
	} else if (w->policy->dflt_where.file) {
		/* Read after "by rule": the @default as written, then why it decided. */
		const char *err = action->err ? strerrorname_np(action->err) : NULL;
		char act[64];
		switch (action->kind) {
		case PB_ACT_ERRNO: snprintf(act, sizeof(act), "errno %s", err ? err : "?"); break;
		case PB_ACT_TRAP: snprintf(act, sizeof(act), "trap %s", err ? err : "?"); break;
		case PB_ACT_LOG: snprintf(act, sizeof(act), "log"); break;
		default: snprintf(act, sizeof(act), "kill"); break;
		}
		*at = w->policy->dflt_where;
		pb_where_format(&w->policy->dflt_where, where, sizeof(where));
		snprintf(buf, len, "'@default %s' at %s (no rule of policy '%s' decided)", act, where,
		         w->policy->name);
	} else {
		snprintf(buf, len, "'@default kill', built in (policy '%s' has none; no rule of it decided)",
		         w->policy->name);
	}
}

void pb_describe_rule(const struct process *w, int nr, uint32_t arch, const uint64_t args[6],
                      struct pb_action *action, char *buf, size_t len)
{
	struct pb_where at;
	decide(w, nr, arch, args, action, buf, len, &at);
}

void pb_violation_syscall_name(const struct process *w, char *buf, size_t len)
{
	pb_syscall_name(w->violation_nr, w->violation_arch, buf, len);
}

void pb_violation_syscall(const struct process *w, char *buf, size_t len)
{
	pb_format_syscall(w->violation_nr, w->violation_arch, w->violation_args, buf, len);
}

void pb_violation_rule(const struct process *w, char *buf, size_t len, struct pb_where *at)
{
	struct pb_action a;
	decide(w, w->violation_nr, w->violation_arch, w->violation_args, &a, buf, len, at);
}

/* Learn mode keeps the arguments that policies usually rule on (the ioctl
 * request, the socket family, type and protocol, the prctl option); other
 * calls are kept by number alone, or every read() would be its own entry. */
void pb_learn_record(pb_supervisor *s, int raw_nr, const uint64_t raw_args[6])
{
	uint64_t args[6] = { 0 };
	int nr = raw_nr;
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

	if (name && !strcmp(name, "ioctl")) {
		args[1] = raw_args[1] & UINT32_MAX;
	} else if (name && !strcmp(name, "socket")) {
		args[0] = raw_args[0] & UINT32_MAX;
		args[1] = raw_args[1] & UINT32_MAX;
		args[2] = raw_args[2] & UINT32_MAX;
	} else if (name && !strcmp(name, "prctl")) {
		args[0] = raw_args[0] & UINT32_MAX;
	}
	free(name);
	for (size_t i = 0; i < s->nlearned; i++)
		if (s->learned[i].nr == nr && !memcmp(s->learned[i].args, args, sizeof(s->learned[i].args)))
			return;
	if (s->nlearned >= LEARNED_MAX)
		return;
	struct pb_learned_call *n = realloc(s->learned, (s->nlearned + 1) * sizeof(*n));
	if (!n)
		return;
	s->learned = n;
	n[s->nlearned].nr = nr;
	memcpy(n[s->nlearned].args, args, sizeof(n[s->nlearned].args));
	s->nlearned++;
}

void pb_learn_start(pb_supervisor *s)
{
	s->mode = PB_COMPILE_LEARN;
}

struct pb_learned_call *pb_learned(pb_supervisor *s, size_t *n)
{
	*n = s->nlearned;
	return s->learned;
}
