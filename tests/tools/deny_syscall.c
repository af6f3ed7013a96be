/* deny_syscall.c - run a command on a kernel that seems to lack something.
 *
 *   deny_syscall [--clone-ns] [--no-proc] [--no-notify] [--no-addfd] [NAME=ERRNO]... -- COMMAND [ARG]...
 *
 * Installs a seccomp filter that allows everything except: syscall NAME
 * fails with ERRNO (a name such as ENOSYS, or a number); with --clone-ns,
 * clone and unshare fail with EPERM when their flags ask for a new mount,
 * user or pid namespace (as in a container that forbids them), and clone3,
 * whose flags a filter cannot read, fails with ENOSYS so that callers fall
 * back to clone. With --no-proc, a new mount made read-only from the start
 * (flags with MS_RDONLY but neither MS_REMOUNT nor MS_BIND: the worker's
 * procfs, and no other mount of the jail) fails with EPERM, as an
 * unprivileged procfs does in a container that masks parts of its /proc.
 * With --no-notify, a seccomp filter asking for a user-notification
 * listener fails with EINVAL, as before Linux 5.0; with --no-addfd, the
 * listener's SECCOMP_IOCTL_NOTIF_ADDFD fails with EINVAL, as before 5.9
 * (pidfd_getfd=ENOSYS is a kernel before 5.6).
 * Then it sets no_new_privs and execs COMMAND, which
 * inherits the filter, and so do its children: the integration tests run
 * plugbox under it to see what a missing layer does to a worker.
 *
 * A test tool, never installed.
 */
#include <errno.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: deny_syscall [--clone-ns] [--no-proc] [--no-notify] [--no-addfd] [NAME=ERRNO]... -- "
	                "COMMAND [ARG]...\n");
	exit(2);
}

/* "ENOSYS" or "38": the errno, or -1. */
static int errno_of(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*s && !*end)
		return n >= 1 && n <= 4095 ? (int)n : -1;
	for (int e = 1; e < 4096; e++) {
		const char *name = strerrorname_np(e);
		if (name && !strcmp(name, s))
			return e;
	}
	return -1;
}

static void check(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "deny_syscall: %s: %s\n", what, strerror(-r));
		exit(2);
	}
}

int main(int argc, char **argv)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int i;

	if (!ctx) {
		fprintf(stderr, "deny_syscall: seccomp_init failed\n");
		return 2;
	}
	/* Other architectures' calls pass as well: only the named ones change. */
	check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW), "seccomp_attr_set");
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--clone-ns")) {
			static const unsigned long ns[] = { CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID };
			for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
				check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				                       SCMP_A0(SCMP_CMP_MASKED_EQ, ns[k], ns[k])),
				      "clone rule");
				check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
				                       SCMP_A0(SCMP_CMP_MASKED_EQ, ns[k], ns[k])),
				      "unshare rule");
			}
			check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3 rule");
			continue;
		}
		if (!strcmp(argv[i], "--no-proc")) {
			check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mount), 1,
			                       SCMP_A3(SCMP_CMP_MASKED_EQ, MS_RDONLY | MS_REMOUNT | MS_BIND, MS_RDONLY)),
			      "mount rule");
			continue;
		}
		if (!strcmp(argv[i], "--no-notify")) {
			check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(seccomp), 1,
			                       SCMP_A1(SCMP_CMP_MASKED_EQ, SECCOMP_FILTER_FLAG_NEW_LISTENER,
			                               SECCOMP_FILTER_FLAG_NEW_LISTENER)),
			      "seccomp rule");
			continue;
		}
		if (!strcmp(argv[i], "--no-addfd")) {
			check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(ioctl), 1,
			                       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, SECCOMP_IOCTL_NOTIF_ADDFD)),
			      "ioctl rule");
			continue;
		}
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i])
			usage();
		*eq = '\0';
		int nr = seccomp_syscall_resolve_name(argv[i]);
		int err = errno_of(eq + 1);
		if (nr == __NR_SCMP_ERROR) {
			fprintf(stderr, "deny_syscall: unknown syscall '%s'\n", argv[i]);
			return 2;
		}
		if (err < 0) {
			fprintf(stderr, "deny_syscall: '%s' is not an errno\n", eq + 1);
			return 2;
		}
		check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO((unsigned)err), nr, 0), argv[i]);
	}
	if (i + 1 >= argc)
		usage();
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		perror("deny_syscall: no_new_privs");
		return 2;
	}
	check(seccomp_load(ctx), "seccomp_load");
	seccomp_release(ctx);
	execvp(argv[i + 1], argv + i + 1);
	fprintf(stderr, "deny_syscall: %s: %s\n", argv[i + 1], strerror(errno));
	return 127;
}
