/* policy_builtin.c - the built-in syscall policy and its compiler to BPF.
 *
 * The table below is the whole policy: every syscall embedded CPython 3.11
 * was measured to need after start-up (strace over imports, json/re/asyncio/
 * ssl/sqlite3/ctypes, threads, C extensions, requests: see README "Syscall
 * policy"), errnos for what libraries probe harmlessly, and kill for what
 * only an attack does. Syscalls the table does not name are killed.
 *
 * Compilation (see policy.h for why three programs) happens in the
 * supervisor; the worker only loads the result.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "policy.h"

/* Placeholder in a rule's condition for the worker's own pid, substituted at
 * compile and match time. */
#define SELF_PID ((scmp_datum_t)0x5e1f5e1f5e1f5e1fULL)

#define CMP(n, o, a, b) { .arg = (n), .op = (o), .datum_a = (a), .datum_b = (b) }
#define ALLOW(name) { #name, PB_ALLOW, 0, 0, { { 0 } }, #name ": 1" }
#define ALLOW_IF(name, text, ...) \
	{ #name, PB_ALLOW, 0, sizeof((struct scmp_arg_cmp[]){ __VA_ARGS__ }) / sizeof(struct scmp_arg_cmp), \
	  { __VA_ARGS__ }, #name ": " text }
#define ERRNO(name, e) { #name, PB_DENY_ERRNO, e, 0, { { 0 } }, #name ": return " #e }
#define ERRNO_IF(name, e, text, ...) \
	{ #name, PB_DENY_ERRNO, e, sizeof((struct scmp_arg_cmp[]){ __VA_ARGS__ }) / sizeof(struct scmp_arg_cmp), \
	  { __VA_ARGS__ }, #name ": " text "; return " #e }
#define REPORT(name, e) { #name, PB_DENY_REPORT, e, 0, { { 0 } }, #name ": return " #e " (reported)" }
#define REPORT_IF(name, e, text, ...) \
	{ #name, PB_DENY_REPORT, e, sizeof((struct scmp_arg_cmp[]){ __VA_ARGS__ }) / sizeof(struct scmp_arg_cmp), \
	  { __VA_ARGS__ }, #name ": " text "; return " #e " (reported)" }
#define KILL(name) { #name, PB_KILL, 0, 0, { { 0 } }, #name ": kill" }
#define KILL_IF(name, text, ...) \
	{ #name, PB_KILL, 0, sizeof((struct scmp_arg_cmp[]){ __VA_ARGS__ }) / sizeof(struct scmp_arg_cmp), \
	  { __VA_ARGS__ }, #name ": " text "; kill" }

/* The bit that makes O_TMPFILE; glibc's __O_TMPFILE also includes
 * O_DIRECTORY, which every directory listing uses. */
#define O_TMPFILE_BIT 020000000
#define OPEN_WRITE_FLAGS (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_TMPFILE_BIT)
#define CLONE_NS_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | \
                        CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)
#define OPEN_ALLOW(name, a) \
	ALLOW_IF(name, "read-only flags", CMP(a, SCMP_CMP_MASKED_EQ, OPEN_WRITE_FLAGS, 0)), \
	ERRNO_IF(name, EROFS, "O_WRONLY", CMP(a, SCMP_CMP_MASKED_EQ, O_WRONLY, O_WRONLY)), \
	ERRNO_IF(name, EROFS, "O_RDWR", CMP(a, SCMP_CMP_MASKED_EQ, O_RDWR, O_RDWR)), \
	ERRNO_IF(name, EROFS, "O_CREAT", CMP(a, SCMP_CMP_MASKED_EQ, O_CREAT, O_CREAT)), \
	ERRNO_IF(name, EROFS, "O_TRUNC", CMP(a, SCMP_CMP_MASKED_EQ, O_TRUNC, O_TRUNC)), \
	ERRNO_IF(name, EROFS, "O_APPEND", CMP(a, SCMP_CMP_MASKED_EQ, O_APPEND, O_APPEND)), \
	ERRNO_IF(name, EROFS, "O_TMPFILE", CMP(a, SCMP_CMP_MASKED_EQ, O_TMPFILE_BIT, O_TMPFILE_BIT))
#define CLONE_NS_KILL(flag) \
	KILL_IF(clone, "CLONE_THREAD|" #flag, \
		CMP(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD | flag, CLONE_THREAD | flag))

static const struct pb_syscall_rule builtin_rules[] = {
	/* I/O on descriptors the worker already holds, and file metadata. */
	ALLOW(read), ALLOW(write), ALLOW(readv), ALLOW(writev), ALLOW(pread64),
	ALLOW(preadv), ALLOW(preadv2), ALLOW(pwrite64), ALLOW(lseek), ALLOW(close),
	ALLOW(close_range), ALLOW(dup), ALLOW(dup2), ALLOW(dup3), ALLOW(pipe),
	ALLOW(pipe2), ALLOW(fstat), ALLOW(stat), ALLOW(lstat), ALLOW(newfstatat),
	ALLOW(statx), ALLOW(statfs), ALLOW(fstatfs), ALLOW(getdents64), ALLOW(getdents),
	ALLOW(readlink), ALLOW(readlinkat), ALLOW(access), ALLOW(faccessat),
	ALLOW(faccessat2), ALLOW(getcwd), ALLOW(chdir), ALLOW(fchdir), ALLOW(fadvise64),
	ALLOW(flock), ALLOW(fsync), ALLOW(fdatasync), ALLOW(getxattr), ALLOW(lgetxattr),
	ALLOW(fgetxattr), ALLOW(listxattr), ALLOW(llistxattr), ALLOW(flistxattr),
	ALLOW(umask),
	/* Opening files: read-only. Writes fail as on a read-only file system,
	 * which importlib and logging already cope with. */
	OPEN_ALLOW(openat, 2), OPEN_ALLOW(open, 1),
	ERRNO(openat2, ENOSYS), /* flags live in user memory: make libc fall back */
	ERRNO(creat, EROFS), ERRNO(mkdir, EROFS), ERRNO(mkdirat, EROFS),
	ERRNO(rmdir, EROFS), ERRNO(unlink, EROFS), ERRNO(unlinkat, EROFS),
	ERRNO(rename, EROFS), ERRNO(renameat, EROFS), ERRNO(renameat2, EROFS),
	ERRNO(link, EROFS), ERRNO(linkat, EROFS), ERRNO(symlink, EROFS),
	ERRNO(symlinkat, EROFS), ERRNO(chmod, EROFS), ERRNO(fchmod, EROFS),
	ERRNO(fchmodat, EROFS), ERRNO(chown, EROFS), ERRNO(fchown, EROFS),
	ERRNO(lchown, EROFS), ERRNO(fchownat, EROFS), ERRNO(truncate, EROFS),
	ERRNO(ftruncate, EROFS), ERRNO(utime, EROFS), ERRNO(utimes, EROFS),
	ERRNO(utimensat, EROFS), ERRNO(futimesat, EROFS), ERRNO(mknod, EROFS),
	ERRNO(mknodat, EROFS), ERRNO(setxattr, EROFS), ERRNO(lsetxattr, EROFS),
	ERRNO(fsetxattr, EROFS), ERRNO(removexattr, EROFS), ERRNO(lremovexattr, EROFS),
	ERRNO(fremovexattr, EROFS), ERRNO(fallocate, EROFS),
	/* Memory. Executable mappings only from files (C extensions), never
	 * writable and executable at once (W^X); ctypes callbacks then raise
	 * MemoryError instead of getting RWX memory. */
	ALLOW(brk), ALLOW(munmap), ALLOW(mremap), ALLOW(madvise), ALLOW(mincore),
	ALLOW(msync),
	ALLOW_IF(mmap, "not PROT_EXEC", CMP(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)),
	ALLOW_IF(mmap, "PROT_EXEC of a file without PROT_WRITE",
		CMP(2, SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_EXEC),
		CMP(3, SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, 0)),
	REPORT_IF(mmap, EPERM, "PROT_WRITE|PROT_EXEC",
		CMP(2, SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC)),
	REPORT_IF(mmap, EPERM, "anonymous PROT_EXEC",
		CMP(2, SCMP_CMP_MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_EXEC),
		CMP(3, SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS, MAP_ANONYMOUS)),
	ALLOW_IF(mprotect, "not PROT_EXEC", CMP(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)),
	REPORT_IF(mprotect, EPERM, "PROT_EXEC", CMP(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)),
	REPORT(pkey_mprotect, EPERM), REPORT(memfd_create, EPERM),
	/* Threads: clone only as a thread of this process. glibc tries clone3
	 * first, whose flags seccomp cannot read, so it must see ENOSYS. */
	ALLOW(futex), ALLOW(set_robust_list), ALLOW(get_robust_list), ALLOW(rseq),
	ALLOW(set_tid_address), ALLOW(sched_yield), ALLOW(sched_getaffinity),
	ALLOW(sched_getparam), ALLOW(sched_getscheduler), ALLOW(sched_get_priority_max),
	ALLOW(sched_get_priority_min), ALLOW(exit), ALLOW(exit_group),
	ALLOW_IF(clone, "CLONE_THREAD without namespace flags",
		CMP(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD | CLONE_NS_FLAGS, CLONE_THREAD)),
	/* Not reported: subprocess and posix_spawn block every signal around
	 * clone, and a trap while SIGSYS is blocked kills without a report. */
	ERRNO_IF(clone, EPERM, "new process (no CLONE_THREAD)",
		CMP(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0)),
	CLONE_NS_KILL(CLONE_NEWNS), CLONE_NS_KILL(CLONE_NEWCGROUP), CLONE_NS_KILL(CLONE_NEWUTS),
	CLONE_NS_KILL(CLONE_NEWIPC), CLONE_NS_KILL(CLONE_NEWUSER), CLONE_NS_KILL(CLONE_NEWPID),
	CLONE_NS_KILL(CLONE_NEWNET),
	ERRNO(clone3, ENOSYS),
	ERRNO(fork, EPERM), ERRNO(vfork, EPERM), ERRNO(execve, EPERM),
	ERRNO(execveat, EPERM),
	ALLOW(wait4), ALLOW(waitid),
	/* Identity and time: read only. */
	ALLOW(gettid), ALLOW(getpid), ALLOW(getppid), ALLOW(getpgrp), ALLOW(getpgid),
	ALLOW(getsid), ALLOW(getuid), ALLOW(geteuid), ALLOW(getgid), ALLOW(getegid),
	ALLOW(getgroups), ALLOW(getresuid), ALLOW(getresgid), ALLOW(capget), ALLOW(uname),
	ALLOW(sysinfo), ALLOW(getrandom), ALLOW(clock_gettime), ALLOW(clock_getres),
	ALLOW(gettimeofday), ALLOW(time), ALLOW(clock_nanosleep), ALLOW(nanosleep),
	ALLOW(getrusage), ALLOW(times), ALLOW(getpriority), ALLOW(getitimer),
	ALLOW(setitimer), ALLOW(alarm), ALLOW(timer_create), ALLOW(timer_settime),
	ALLOW(timer_gettime), ALLOW(timer_getoverrun), ALLOW(timer_delete),
	ALLOW(timerfd_create), ALLOW(timerfd_settime), ALLOW(timerfd_gettime),
	ALLOW(getrlimit),
	ALLOW_IF(prlimit64, "read own limits", CMP(0, SCMP_CMP_EQ, 0, 0), CMP(2, SCMP_CMP_EQ, 0, 0)),
	ALLOW_IF(prlimit64, "read own limits", CMP(0, SCMP_CMP_EQ, SELF_PID, 0), CMP(2, SCMP_CMP_EQ, 0, 0)),
	ERRNO(setrlimit, EPERM), ERRNO(setpriority, EPERM),
	/* Signals: only to itself. Replacing the SIGSYS handler that reports
	 * violations ends the worker (see the guard program). */
	ALLOW(rt_sigaction), ALLOW(rt_sigprocmask), ALLOW(rt_sigreturn), ALLOW(rt_sigpending),
	ALLOW(rt_sigtimedwait), ALLOW(rt_sigsuspend), ALLOW(sigaltstack), ALLOW(restart_syscall),
	ALLOW(pause),
	ALLOW_IF(kill, "own pid", CMP(0, SCMP_CMP_EQ, SELF_PID, 0)),
	REPORT_IF(kill, EPERM, "another process", CMP(0, SCMP_CMP_NE, SELF_PID, 0)),
	ALLOW_IF(tgkill, "own pid", CMP(0, SCMP_CMP_EQ, SELF_PID, 0)),
	REPORT_IF(tgkill, EPERM, "another process", CMP(0, SCMP_CMP_NE, SELF_PID, 0)),
	ALLOW_IF(rt_tgsigqueueinfo, "own pid", CMP(0, SCMP_CMP_EQ, SELF_PID, 0)),
	REPORT_IF(rt_tgsigqueueinfo, EPERM, "another process", CMP(0, SCMP_CMP_NE, SELF_PID, 0)),
	REPORT(tkill, EPERM), REPORT(rt_sigqueueinfo, EPERM),
	KILL(pidfd_open), KILL(pidfd_getfd), KILL(pidfd_send_signal),
	/* Event loops (asyncio, selectors probe epoll at import time). */
	ALLOW(epoll_create), ALLOW(epoll_create1), ALLOW(epoll_ctl), ALLOW(epoll_wait),
	ALLOW(epoll_pwait), ALLOW(epoll_pwait2), ALLOW(poll), ALLOW(ppoll), ALLOW(select),
	ALLOW(pselect6), ALLOW(eventfd), ALLOW(eventfd2),
	/* Descriptor control and terminal probes (isatty on every open file). */
	ALLOW_IF(fcntl, "F_DUPFD", CMP(1, SCMP_CMP_EQ, F_DUPFD, 0)),
	ALLOW_IF(fcntl, "F_DUPFD_CLOEXEC", CMP(1, SCMP_CMP_EQ, F_DUPFD_CLOEXEC, 0)),
	ALLOW_IF(fcntl, "F_GETFD", CMP(1, SCMP_CMP_EQ, F_GETFD, 0)),
	ALLOW_IF(fcntl, "F_SETFD", CMP(1, SCMP_CMP_EQ, F_SETFD, 0)),
	ALLOW_IF(fcntl, "F_GETFL", CMP(1, SCMP_CMP_EQ, F_GETFL, 0)),
	ALLOW_IF(fcntl, "F_SETFL", CMP(1, SCMP_CMP_EQ, F_SETFL, 0)),
	ALLOW_IF(fcntl, "F_GETLK", CMP(1, SCMP_CMP_EQ, F_GETLK, 0)),
	ALLOW_IF(fcntl, "F_SETLK", CMP(1, SCMP_CMP_EQ, F_SETLK, 0)),
	ALLOW_IF(fcntl, "F_SETLKW", CMP(1, SCMP_CMP_EQ, F_SETLKW, 0)),
	ALLOW_IF(fcntl, "F_OFD_GETLK", CMP(1, SCMP_CMP_EQ, F_OFD_GETLK, 0)),
	ALLOW_IF(fcntl, "F_OFD_SETLK", CMP(1, SCMP_CMP_EQ, F_OFD_SETLK, 0)),
	ALLOW_IF(fcntl, "F_OFD_SETLKW", CMP(1, SCMP_CMP_EQ, F_OFD_SETLKW, 0)),
	ALLOW_IF(fcntl, "F_GETPIPE_SZ", CMP(1, SCMP_CMP_EQ, F_GETPIPE_SZ, 0)),
	ALLOW_IF(ioctl, "TCGETS", CMP(1, SCMP_CMP_EQ, TCGETS, 0)),
	ALLOW_IF(ioctl, "TIOCGWINSZ", CMP(1, SCMP_CMP_EQ, TIOCGWINSZ, 0)),
	ALLOW_IF(ioctl, "FIONBIO", CMP(1, SCMP_CMP_EQ, FIONBIO, 0)),
	ALLOW_IF(ioctl, "FIONREAD", CMP(1, SCMP_CMP_EQ, FIONREAD, 0)),
	ALLOW_IF(ioctl, "FIOCLEX", CMP(1, SCMP_CMP_EQ, FIOCLEX, 0)),
	ALLOW_IF(ioctl, "FIONCLEX", CMP(1, SCMP_CMP_EQ, FIONCLEX, 0)),
	KILL_IF(ioctl, "TIOCSTI", CMP(1, SCMP_CMP_EQ, TIOCSTI, 0)),
	KILL_IF(ioctl, "TIOCLINUX", CMP(1, SCMP_CMP_EQ, TIOCLINUX, 0)),
	ALLOW_IF(prctl, "PR_SET_NAME", CMP(0, SCMP_CMP_EQ, PR_SET_NAME, 0)),
	ALLOW_IF(prctl, "PR_GET_NAME", CMP(0, SCMP_CMP_EQ, PR_GET_NAME, 0)),
	/* Networking: none. socket() fails the way urllib3's import-time IPv6
	 * probe expects; socketpair stays for asyncio's self-pipe. */
	REPORT(socket, EACCES),
	ALLOW_IF(socketpair, "AF_UNIX", CMP(0, SCMP_CMP_EQ, AF_UNIX, 0)),
	REPORT_IF(socketpair, EACCES, "not AF_UNIX", CMP(0, SCMP_CMP_NE, AF_UNIX, 0)),
	REPORT(connect, EACCES), REPORT(bind, EACCES), REPORT(listen, EACCES),
	REPORT(accept, EACCES), REPORT(accept4, EACCES),
	ALLOW(getsockname), ALLOW(getpeername), ALLOW(getsockopt), ALLOW(setsockopt),
	ALLOW(sendmsg), ALLOW(recvmsg), ALLOW(sendto), ALLOW(recvfrom), ALLOW(shutdown),
	/* Loosening the sandbox from inside: filters only stack and tighten, but
	 * there is nothing a plugin needs them for. */
	ERRNO(seccomp, EPERM), ERRNO(landlock_create_ruleset, ENOSYS),
	ERRNO(landlock_add_rule, ENOSYS), ERRNO(landlock_restrict_self, ENOSYS),
	ERRNO(arch_prctl, EPERM), ERRNO(mlock, EPERM), ERRNO(mlock2, EPERM),
	ERRNO(mlockall, EPERM), ERRNO(inotify_init, EPERM), ERRNO(inotify_init1, EPERM),
	/* Only an attack does these. */
	KILL(ptrace), KILL(process_vm_readv), KILL(process_vm_writev), KILL(bpf),
	KILL(io_uring_setup), KILL(io_uring_enter), KILL(io_uring_register),
	KILL(perf_event_open), KILL(userfaultfd), KILL(keyctl), KILL(add_key),
	KILL(request_key), KILL(mount), KILL(umount2), KILL(pivot_root), KILL(chroot),
	KILL(unshare), KILL(setns), KILL(move_mount), KILL(open_tree), KILL(fsopen),
	KILL(fsconfig), KILL(fsmount), KILL(fspick), KILL(mount_setattr),
	KILL(kexec_load), KILL(kexec_file_load), KILL(init_module), KILL(finit_module),
	KILL(delete_module), KILL(personality), KILL(reboot), KILL(swapon), KILL(swapoff),
	KILL(acct), KILL(syslog), KILL(quotactl), KILL(iopl), KILL(ioperm),
	KILL(modify_ldt), KILL(open_by_handle_at), KILL(name_to_handle_at), KILL(kcmp),
	KILL(setsid), KILL(setpgid), KILL(setuid), KILL(setgid), KILL(setreuid),
	KILL(setregid), KILL(setresuid), KILL(setresgid), KILL(setfsuid), KILL(setfsgid),
	KILL(setgroups), KILL(capset), KILL(vhangup), KILL(settimeofday),
	KILL(clock_settime), KILL(clock_adjtime), KILL(adjtimex), KILL(sethostname),
	KILL(setdomainname), KILL(fanotify_init), KILL(process_madvise),
};

static const struct pb_policy builtin_policy = {
	.name = "built-in policy",
	.rules = builtin_rules,
	.nrules = sizeof(builtin_rules) / sizeof(builtin_rules[0]),
};

const struct pb_policy *pb_policy_builtin(void)
{
	return &builtin_policy;
}

/* ---- the guard program ------------------------------------------------- */

#if defined(__x86_64__)
#define PB_AUDIT_ARCH AUDIT_ARCH_X86_64
#define PB_X32_BIT 0x40000000u
#elif defined(__aarch64__)
#define PB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* Syscall arguments the kernel reads as 32-bit ints but that the rules
 * compare as 64-bit values: their upper half must be zero or a sign
 * extension, or a filter could be told one number while the kernel acts on
 * another (CVE-2019-10063, TIOCSTI with high bits). */
static const struct { int nr; uint8_t args; } int_args[] = {
	{ __NR_ioctl, 1u << 1 },
	{ __NR_fcntl, 1u << 1 },
	{ __NR_kill, 1u << 0 },
	{ __NR_tgkill, 1u << 0 },
	{ __NR_rt_tgsigqueueinfo, 1u << 0 },
	{ __NR_rt_sigaction, 1u << 0 },
	{ __NR_socketpair, 1u << 0 },
	{ __NR_prctl, 1u << 0 },
	{ __NR_prlimit64, 1u << 0 },
	{ __NR_openat, 1u << 2 },
#ifdef __NR_open
	{ __NR_open, 1u << 1 },
#endif
};

#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8 * (i)))
#define ARG_HI(i) (ARG_LO(i) + 4)

struct insn_buf {
	struct sock_filter *insn;
	size_t len, cap;
};

static int emit(struct insn_buf *b, struct sock_filter f)
{
	if (b->len == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		struct sock_filter *n = realloc(b->insn, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		b->insn = n;
		b->cap = cap;
	}
	b->insn[b->len++] = f;
	return 0;
}

#define EMIT(b, f) do { int r_ = emit((b), (struct sock_filter)f); if (r_ < 0) return r_; } while (0)

static int build_guard(struct insn_buf *b)
{
	const uint32_t trap = SECCOMP_RET_TRAP | PB_TRAP_KILL;

	EMIT(b, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
	EMIT(b, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PB_AUDIT_ARCH, 1, 0));
	EMIT(b, BPF_STMT(BPF_RET | BPF_K, trap));
	EMIT(b, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
#ifdef PB_X32_BIT
	EMIT(b, BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PB_X32_BIT, 0, 1));
	EMIT(b, BPF_STMT(BPF_RET | BPF_K, trap));
#endif
	/* rt_sigaction(SIGSYS, act != NULL, ...): the plugin wants the reporter
	 * gone. End it without running the reporter it is trying to replace.
	 * Reading the handler (act == NULL) is what `import signal` does. */
	EMIT(b, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigaction, 0, 7));
	EMIT(b, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0)));
	EMIT(b, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SIGSYS, 0, 5));
	EMIT(b, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1)));
	EMIT(b, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2));
	EMIT(b, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(1)));
	EMIT(b, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0));
	EMIT(b, BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));

	for (size_t i = 0; i < sizeof(int_args) / sizeof(int_args[0]); i++) {
		unsigned nargs = (unsigned)__builtin_popcount(int_args[i].args);
		/* 6 instructions per argument, after the reload of nr. */
		EMIT(b, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
		EMIT(b, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)int_args[i].nr, 0, (uint8_t)(6 * nargs)));
		for (unsigned a = 0; a < 6; a++) {
			if (!(int_args[i].args & (1u << a)))
				continue;
			EMIT(b, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(a)));
			EMIT(b, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, 0));
			EMIT(b, BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 0, 2));
			EMIT(b, BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(a)));
			EMIT(b, BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80000000u, 1, 0));
			EMIT(b, BPF_STMT(BPF_RET | BPF_K, trap));
		}
	}
	EMIT(b, BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	return 0;
}

/* ---- libseccomp programs ------------------------------------------------ */

static int resolve(const char *name)
{
	int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, name);
	return nr == __NR_SCMP_ERROR ? -1 : nr;
}

#define PB_NR_LIMIT 1024   /* native syscall numbers considered for coverage */

/* Mark every syscall number the policy names (one name lookup per rule,
 * not one per rule and number: this runs for every worker spawned). */
static void named_syscalls(const struct pb_policy *p, uint8_t named[PB_NR_LIMIT / 8])
{
	memset(named, 0, PB_NR_LIMIT / 8);
	for (size_t i = 0; i < p->nrules; i++) {
		int nr = resolve(p->rules[i].syscall);
		if (nr >= 0 && nr < PB_NR_LIMIT)
			named[nr / 8] |= (uint8_t)(1u << (nr % 8));
	}
}

static scmp_datum_t subst(scmp_datum_t v, int32_t self_pid)
{
	return v == SELF_PID ? (scmp_datum_t)(uint32_t)self_pid : v;
}

static uint32_t rule_action(const struct pb_syscall_rule *r)
{
	switch (r->verdict) {
	case PB_ALLOW:
		return SCMP_ACT_ALLOW;
	case PB_DENY_ERRNO:
		return SCMP_ACT_ERRNO((uint32_t)r->err);
	case PB_DENY_REPORT:
		/* libseccomp will not put data in a TRAP; TRACE is never used
		 * otherwise, so it is rewritten to TRAP|errno after export. */
		return SCMP_ACT_TRACE((uint32_t)r->err);
	case PB_KILL:
		return SCMP_ACT_TRAP;
	}
	return SCMP_ACT_TRAP;
}

static int export_program(scmp_filter_ctx ctx, struct insn_buf *b)
{
	int r;
	int fd = memfd_create("plugbox-bpf", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	off_t size = lseek(fd, 0, SEEK_END);
	if (size < 0 || size % sizeof(struct sock_filter) != 0) {
		close(fd);
		return -EIO;
	}
	size_t n = (size_t)size / sizeof(struct sock_filter);
	for (size_t i = 0; i < n; i++) {
		struct sock_filter insn;
		if (pread(fd, &insn, sizeof(insn), (off_t)(i * sizeof(insn))) != (ssize_t)sizeof(insn)) {
			close(fd);
			return -EIO;
		}
		if (insn.code == (BPF_RET | BPF_K) &&
		    (insn.k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_TRACE)
			insn.k = SECCOMP_RET_TRAP | (insn.k & SECCOMP_RET_DATA);
		r = emit(b, insn);
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	close(fd);
	return 0;
}

static int build_coverage(const struct pb_policy *p, struct insn_buf *b, char *why, size_t why_len)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	uint8_t named[PB_NR_LIMIT / 8];
	int r = 0;

	if (!ctx)
		return -ENOMEM;
	seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
	named_syscalls(p, named);
	for (int nr = 0; nr < PB_NR_LIMIT; nr++) {
		if (named[nr / 8] & (1u << (nr % 8)))
			continue;
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		if (!name)
			continue;
		free(name);
		r = seccomp_rule_add(ctx, SCMP_ACT_TRAP, nr, 0);
		if (r < 0) {
			snprintf(why, why_len, "cannot trap syscall %d: %s", nr, strerror(-r));
			goto out;
		}
	}
	r = export_program(ctx, b);
out:
	seccomp_release(ctx);
	return r;
}

static int build_rules(const struct pb_policy *p, int32_t self_pid, struct insn_buf *b,
                       char *why, size_t why_len)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	int r = 0;

	if (!ctx)
		return -ENOMEM;
	seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
	for (size_t i = 0; i < p->nrules; i++) {
		const struct pb_syscall_rule *rule = &p->rules[i];
		struct scmp_arg_cmp cmp[3];
		int nr = resolve(rule->syscall);

		if (nr < 0)
			continue;       /* not a syscall on this architecture */
		if (rule->verdict == PB_DENY_ERRNO && rule->err == EPERM)
			continue;       /* the program's default already says so */
		for (unsigned c = 0; c < rule->ncmp; c++) {
			cmp[c] = rule->cmp[c];
			cmp[c].datum_a = subst(cmp[c].datum_a, self_pid);
			cmp[c].datum_b = subst(cmp[c].datum_b, self_pid);
		}
		r = seccomp_rule_add_array(ctx, rule_action(rule), nr, rule->ncmp, cmp);
		if (r < 0) {
			snprintf(why, why_len, "rule '%s': %s", rule->text, strerror(-r));
			goto out;
		}
	}
	r = export_program(ctx, b);
out:
	seccomp_release(ctx);
	return r;
}

static int append_program(struct pb_bpf_blob *out, const struct insn_buf *b)
{
	size_t add = 4 + b->len * sizeof(struct sock_filter);
	uint8_t *n = realloc(out->data, out->len + add);
	uint32_t count = (uint32_t)b->len;

	if (!n)
		return -ENOMEM;
	out->data = n;
	n += out->len;
	n[0] = (uint8_t)count;
	n[1] = (uint8_t)(count >> 8);
	n[2] = (uint8_t)(count >> 16);
	n[3] = (uint8_t)(count >> 24);
	memcpy(n + 4, b->insn, b->len * sizeof(struct sock_filter));
	out->len += add;
	out->nprograms++;
	return 0;
}

int pb_policy_compile(const struct pb_policy *p, int32_t self_pid,
                      struct pb_bpf_blob *out, char *why, size_t why_len)
{
	struct insn_buf guard = { 0 }, coverage = { 0 }, rules = { 0 };
	int r;

	memset(out, 0, sizeof(*out));
	snprintf(why, why_len, "out of memory");
	r = build_guard(&guard);
	if (r == 0)
		r = build_coverage(p, &coverage, why, why_len);
	if (r == 0)
		r = build_rules(p, self_pid, &rules, why, why_len);
	/* Load order: the rules program denies seccomp() itself, so it goes last. */
	if (r == 0)
		r = append_program(out, &guard);
	if (r == 0)
		r = append_program(out, &coverage);
	if (r == 0)
		r = append_program(out, &rules);
	free(guard.insn);
	free(coverage.insn);
	free(rules.insn);
	if (r < 0)
		pb_bpf_blob_free(out);
	return r;
}

void pb_bpf_blob_free(struct pb_bpf_blob *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool cmp_holds(const struct scmp_arg_cmp *c, const uint64_t args[6], int32_t self_pid)
{
	uint64_t v = args[c->arg];
	uint64_t a = subst(c->datum_a, self_pid), b = subst(c->datum_b, self_pid);

	switch (c->op) {
	case SCMP_CMP_NE: return v != a;
	case SCMP_CMP_LT: return v < a;
	case SCMP_CMP_LE: return v <= a;
	case SCMP_CMP_EQ: return v == a;
	case SCMP_CMP_GE: return v >= a;
	case SCMP_CMP_GT: return v > a;
	case SCMP_CMP_MASKED_EQ: return (v & a) == b;
	default: return false;
	}
}

const struct pb_syscall_rule *pb_policy_match(const struct pb_policy *p, int nr,
                                              const uint64_t args[6], int32_t self_pid)
{
	for (size_t i = 0; i < p->nrules; i++) {
		const struct pb_syscall_rule *r = &p->rules[i];
		bool all = true;

		if (resolve(r->syscall) != nr)
			continue;
		for (unsigned c = 0; c < r->ncmp && all; c++)
			all = cmp_holds(&r->cmp[c], args, self_pid);
		if (all)
			return r;
	}
	return NULL;
}
