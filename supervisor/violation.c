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

#include "supervisor_internal.h"

#define LEARNED_MAX 4096

static const char *arch_name(uint32_t arch, int nr)
{
	switch (arch) {
	case AUDIT_ARCH_X86_64: return (nr & 0x40000000) ? "x32" : "x86_64";
	case AUDIT_ARCH_I386: return "i386";
	case AUDIT_ARCH_AARCH64: return "aarch64";
	case AUDIT_ARCH_ARM: return "arm";
	default: return "unknown architecture";
	}
}

bool pb_native_arch(uint32_t arch, int nr)
{
#if defined(__x86_64__)
	return arch == AUDIT_ARCH_X86_64 && !(nr & 0x40000000);
#else
	(void)nr;
	return arch == AUDIT_ARCH_AARCH64;
#endif
}

/* The syscall's name in its ABI, or "syscall NR" when libseccomp has none. */
static void syscall_name(int nr, uint32_t arch, char *buf, size_t len)
{
	uint32_t token = arch;
	char *name;

	if (arch == AUDIT_ARCH_X86_64 && (nr & 0x40000000))
		token = SCMP_ARCH_X32;
	name = seccomp_syscall_resolve_num_arch(token, nr);
	if (name)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "syscall %d", nr);
	free(name);
}

void pb_format_syscall(int nr, uint32_t arch, const uint64_t args[6], char *buf, size_t len)
{
	bool native = pb_native_arch(arch, nr);
	char name[64];

	syscall_name(nr, arch, name, sizeof(name));
	snprintf(buf, len, "%s(%#llx, %#llx, %#llx, %#llx, %#llx, %#llx)%s%s%s", name,
	         (unsigned long long)args[0], (unsigned long long)args[1],
	         (unsigned long long)args[2], (unsigned long long)args[3],
	         (unsigned long long)args[4], (unsigned long long)args[5],
	         native ? "" : " via the ", native ? "" : arch_name(arch, nr), native ? "" : " ABI");
}

void pb_describe_rule(const struct process *w, int nr, uint32_t arch, const uint64_t args[6],
                      struct pb_action *action, char *buf, size_t len)
{
	const struct pb_entry *e;
	char where[300];

	if (!pb_native_arch(arch, nr)) {
		*action = (struct pb_action){ PB_ACT_KILL, 0 };
		snprintf(buf, len, "'kill what is not a native %s syscall' (plugbox's built-in guard)",
		         arch_name(AUDIT_ARCH_X86_64, 0));
		return;
	}
	if (!w->policy) {
		*action = (struct pb_action){ PB_ACT_KILL, 0 };
		snprintf(buf, len, "(no policy loaded)");
		return;
	}
	e = pb_policy_match(w->policy, nr, args, w->proc.pid, w->after_start, action);
	if (e) {
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
		pb_where_format(&w->policy->dflt_where, where, sizeof(where));
		snprintf(buf, len, "'@default %s' at %s (no rule of policy '%s' decided)", act, where,
		         w->policy->name);
	} else {
		snprintf(buf, len, "'@default kill', built in (policy '%s' has none; no rule of it decided)",
		         w->policy->name);
	}
}

void pb_violation_syscall_name(const struct process *w, char *buf, size_t len)
{
	syscall_name(w->violation_nr, w->violation_arch, buf, len);
}

void pb_violation_syscall(const struct process *w, char *buf, size_t len)
{
	pb_format_syscall(w->violation_nr, w->violation_arch, w->violation_args, buf, len);
}

void pb_violation_rule(const struct process *w, char *buf, size_t len)
{
	struct pb_action a;
	pb_describe_rule(w, w->violation_nr, w->violation_arch, w->violation_args, &a, buf, len);
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
