/* policy_names.c - a syscall as a user reads it: "ptrace(0x10, 0x1, ...)",
 * with " via the i386 ABI" when it did not come through the native entry
 * point. The numbers come from a worker's report or the kernel's
 * notification; the names from libseccomp, never from the worker. */
#include "config.h"

#include <linux/audit.h>
#include <stdio.h>
#include <stdlib.h>
#include <seccomp.h>

#include "policy/policy.h"

const char *pb_arch_name(uint32_t arch, int nr)
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
void pb_syscall_name(int nr, uint32_t arch, char *buf, size_t len)
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

	pb_syscall_name(nr, arch, name, sizeof(name));
	snprintf(buf, len, "%s(%#llx, %#llx, %#llx, %#llx, %#llx, %#llx)%s%s%s", name,
	         (unsigned long long)args[0], (unsigned long long)args[1],
	         (unsigned long long)args[2], (unsigned long long)args[3],
	         (unsigned long long)args[4], (unsigned long long)args[5],
	         native ? "" : " via the ", native ? "" : pb_arch_name(arch, nr), native ? "" : " ABI");
}
