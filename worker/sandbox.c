/* sandbox.c - the layers the worker puts in place before any plugin code.
 *
 * The supervisor compiles the seccomp programs (supervisor/policy_builtin.c)
 * and hands them over on PB_FD_POLICY; this file only loads them, after
 * setting no_new_privs and installing the SIGSYS reporter. Everything is
 * fail-closed: any error here ends the worker before the plugin is touched.
 */
#include "config.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1   /* si_code of a seccomp trap (asm-generic/siginfo.h) */
#endif
#include <unistd.h>

#include "worker.h"

const char *const pb_sandbox_layers[] = {
	"no_new_privs", "seccomp", "descriptors", "environment", NULL,
};

int pb_sandbox_read_policy(int fd, uint8_t **blob, size_t *len, char *why, size_t why_len)
{
	uint8_t *buf = malloc(PB_POLICY_BLOB_MAX);
	size_t got = 0;

	if (!buf) {
		snprintf(why, why_len, "seccomp: out of memory");
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, PB_POLICY_BLOB_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(why, why_len, "seccomp: cannot read the policy: %s", strerror(errno));
			free(buf);
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == PB_POLICY_BLOB_MAX) {
			snprintf(why, why_len, "seccomp: policy larger than %u bytes", PB_POLICY_BLOB_MAX);
			free(buf);
			return -EMSGSIZE;
		}
	}
	*blob = buf;
	*len = got;
	return 0;
}

/* The SIGSYS reporter. It runs for SECCOMP_RET_TRAP verdicts, whose data
 * (si_errno) is the errno to fake, or 0 for "kill". It must stay
 * async-signal-safe: stack buffers, one write, no malloc, no Python. The
 * report is a claim by this process, not proof: the supervisor also checks
 * how the worker died. */
static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	uint64_t args[6];
	Plugbox__Violation v = PLUGBOX__VIOLATION__INIT;
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	uint8_t buf[512];
	int saved_errno = errno;

	(void)sig;
	if (si->si_code != SYS_SECCOMP)
		return;
#if defined(__x86_64__)
	args[0] = (uint64_t)uc->uc_mcontext.gregs[REG_RDI];
	args[1] = (uint64_t)uc->uc_mcontext.gregs[REG_RSI];
	args[2] = (uint64_t)uc->uc_mcontext.gregs[REG_RDX];
	args[3] = (uint64_t)uc->uc_mcontext.gregs[REG_R10];
	args[4] = (uint64_t)uc->uc_mcontext.gregs[REG_R8];
	args[5] = (uint64_t)uc->uc_mcontext.gregs[REG_R9];
#elif defined(__aarch64__)
	for (int i = 0; i < 6; i++)
		args[i] = uc->uc_mcontext.regs[i];
#endif
	v.syscall_nr = si->si_syscall;
	v.arch = si->si_arch;
	v.n_args = 6;
	v.args = args;
	env.body_case = PLUGBOX__ENVELOPE__BODY_VIOLATION;
	env.violation = &v;
	if (protobuf_c_message_get_packed_size(&env.base) <= sizeof(buf)) {
		size_t n = protobuf_c_message_pack(&env.base, buf);
		ssize_t w = write(PB_FD_REPORT, buf, n);
		(void)w;
	}

	if (si->si_errno != 0) {
		/* Denied with an errno: make the trapped call return it. */
#if defined(__x86_64__)
		uc->uc_mcontext.gregs[REG_RAX] = -(greg_t)si->si_errno;
#elif defined(__aarch64__)
		uc->uc_mcontext.regs[0] = (uint64_t)-(int64_t)si->si_errno;
#endif
		errno = saved_errno;
		return;
	}
	/* Kill: the guard program ends any process that touches the SIGSYS
	 * handler, so this dies by SIGSYS, which the supervisor checks for. */
	static const struct sigaction dfl;   /* any non-NULL act: the guard kills first */
	syscall(SYS_rt_sigaction, SIGSYS, &dfl, NULL, 8);
	_exit(128 + SIGSYS);
}

static int load_program(const struct sock_filter *insns, uint32_t count, char *why, size_t why_len)
{
	struct sock_fprog prog = { .len = (unsigned short)count, .filter = (struct sock_filter *)insns };
	long r;

	if (count == 0 || count > BPF_MAXINSNS) {
		snprintf(why, why_len, "seccomp: program of %u instructions", count);
		return -EINVAL;
	}
	/* TSYNC: a thread started before this point would otherwise escape. */
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
	if (r != 0) {
		int e = r < 0 ? errno : EBUSY;
		snprintf(why, why_len, "seccomp: cannot load the filter: %s", strerror(e));
		return -e;
	}
	return 0;
}

int pb_sandbox_apply(const uint8_t *blob, size_t len, char *why, size_t why_len)
{
	struct sigaction sa;
	size_t off = 0;
	unsigned programs = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(why, why_len, "seccomp: cannot install the SIGSYS reporter: %s", strerror(errno));
		return -errno;
	}
	/* A write to a closed channel should fail, not kill the worker silently. */
	signal(SIGPIPE, SIG_IGN);

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(why, why_len, "no_new_privs: %s", strerror(errno));
		return -errno;
	}
	while (off < len) {
		uint32_t count;
		if (len - off < 4) {
			snprintf(why, why_len, "seccomp: truncated policy");
			return -EINVAL;
		}
		count = (uint32_t)blob[off] | (uint32_t)blob[off + 1] << 8 |
		        (uint32_t)blob[off + 2] << 16 | (uint32_t)blob[off + 3] << 24;
		off += 4;
		if (count > BPF_MAXINSNS || (len - off) / sizeof(struct sock_filter) < count) {
			snprintf(why, why_len, "seccomp: truncated policy");
			return -EINVAL;
		}
		struct sock_filter *insns = malloc(count * sizeof(*insns));
		if (!insns) {
			snprintf(why, why_len, "seccomp: out of memory");
			return -ENOMEM;
		}
		memcpy(insns, blob + off, count * sizeof(*insns));
		int r = load_program(insns, count, why, why_len);
		free(insns);
		if (r < 0)
			return r;
		off += count * sizeof(struct sock_filter);
		programs++;
	}
	if (programs == 0) {
		snprintf(why, why_len, "seccomp: the supervisor sent no filter");
		return -EINVAL;
	}
	return 0;
}
