/* violation.c - name a trapped syscall, and the rule that decided it, the
 * way a user reads them: "ptrace(0x10, ...)", "'ptrace: kill' (built-in
 * policy)". The numbers come from the worker's report; the names from
 * libseccomp and the policy table, never from the worker.
 */
#include "config.h"

#include <linux/audit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor_internal.h"

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

/* "ptrace(0x10, 0x1, ...)" for the syscall of a report. */
void pb_violation_syscall(const struct worker *w, char *buf, size_t len)
{
	uint32_t token = w->violation_arch;
	bool native = pb_native_arch(w->violation_arch, w->violation_nr);
	char number[32];
	char *name;

	if (w->violation_arch == AUDIT_ARCH_X86_64 && (w->violation_nr & 0x40000000))
		token = SCMP_ARCH_X32;
	name = seccomp_syscall_resolve_num_arch(token, w->violation_nr);
	snprintf(number, sizeof(number), "syscall %d", w->violation_nr);
	snprintf(buf, len, "%s(%#llx, %#llx, %#llx, %#llx, %#llx, %#llx)%s%s",
	         name ? name : number,
	         (unsigned long long)w->violation_args[0], (unsigned long long)w->violation_args[1],
	         (unsigned long long)w->violation_args[2], (unsigned long long)w->violation_args[3],
	         (unsigned long long)w->violation_args[4], (unsigned long long)w->violation_args[5],
	         native ? "" : " via the ", native ? "" : arch_name(w->violation_arch, w->violation_nr));
	free(name);
}

/* Which rule decided a reported syscall, as a user reads it. */
void pb_violation_rule(const pb_supervisor *s, const struct worker *w,
                          const struct pb_syscall_rule **rule_out, char *buf, size_t len)
{
	const struct pb_syscall_rule *rule = NULL;

	if (!pb_native_arch(w->violation_arch, w->violation_nr)) {
		snprintf(buf, len, "only native %s syscalls pass: kill (%s)",
		         arch_name(AUDIT_ARCH_X86_64, 0), s->policy->name);
	} else {
		rule = pb_policy_match(s->policy, w->violation_nr, w->violation_args, w->proc.pid);
		if (!rule)
			snprintf(buf, len, "not named by the %s: kill", s->policy->name);
		else if (rule->verdict == PB_ALLOW)
			snprintf(buf, len, "32-bit argument with garbage in its upper half: kill (%s)",
			         s->policy->name);
		else
			snprintf(buf, len, "'%s' (%s)", rule->text, s->policy->name);
	}
	if (rule_out)
		*rule_out = rule;
}
