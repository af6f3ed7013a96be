/* policy.h - syscall policies: rule tables, their compilation to BPF, and
 * the lookup that turns a trapped syscall back into the rule that decided.
 *
 * A policy is data: a table of rules, each {syscall, conditions, verdict}.
 * Compilation produces a small stack of seccomp programs that the worker
 * loads before any plugin code runs (see policy_compile in policy_builtin.c):
 *
 *   guard     hand-written: kills foreign-architecture and x32 calls, and
 *             32-bit arguments whose upper half is not a plain sign
 *             extension (the kernel would truncate them; CVE-2019-10063)
 *   coverage  default ALLOW; traps (kills) every syscall the policy never names
 *   rules     default ERRNO(EPERM); the policy's rules. A named syscall whose
 *             conditions all fail gets EPERM, because libseccomp cannot
 *             express "otherwise" inside one filter.
 *
 * The kernel runs every filter and applies the most restrictive verdict.
 * Verdicts that must reach the supervisor (kill, and errno-with-report) use
 * SECCOMP_RET_TRAP: the worker's SIGSYS handler reports the call on its
 * report socket and then either dies or returns the errno. The trap's data
 * field carries that errno (0 = kill).
 */
#ifndef PLUGBOX_POLICY_H
#define PLUGBOX_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <seccomp.h>

enum pb_verdict {
	PB_ALLOW,
	PB_DENY_ERRNO,       /* fail with err, silently (e.g. EROFS on writes) */
	PB_DENY_REPORT,      /* fail with err and report it to the supervisor */
	PB_KILL,             /* report, then end the worker */
};

struct pb_syscall_rule {
	const char *syscall;
	enum pb_verdict verdict;
	int err;                      /* errno for PB_DENY_* */
	unsigned ncmp;                /* conditions, all of which must hold */
	struct scmp_arg_cmp cmp[3];
	const char *text;             /* the rule as the policy states it */
};

struct pb_policy {
	const char *name;             /* shown in reports: which policy decided */
	const struct pb_syscall_rule *rules;
	size_t nrules;
};

/* The built-in policy: what embedded CPython 3.11 needs after start-up
 * (measured with strace, see README), errno for harmless probes, kill for
 * what only an attack does. */
const struct pb_policy *pb_policy_builtin(void);

/* A compiled policy: the concatenated programs in the format the worker
 * reads on its policy descriptor: for each program a little-endian u32
 * instruction count followed by that many struct sock_filter. */
struct pb_bpf_blob {
	uint8_t *data;
	size_t len;
	unsigned nprograms;
};

/* Compile for a worker whose pid (as it sees itself) is self_pid: signals are
 * allowed to that pid only. Returns 0 or a negative errno; *why names the
 * syscall or rule that failed. */
int pb_policy_compile(const struct pb_policy *p, int32_t self_pid,
                      struct pb_bpf_blob *out, char *why, size_t why_len);
void pb_bpf_blob_free(struct pb_bpf_blob *b);

/* The rule that decides syscall nr with these arguments (as the kernel would
 * compare them), or NULL when the policy does not name the syscall. */
const struct pb_syscall_rule *pb_policy_match(const struct pb_policy *p, int nr,
                                              const uint64_t args[6], int32_t self_pid);

/* Seccomp trap data used for "kill": the handler reports and dies. */
#define PB_TRAP_KILL 0

#endif
