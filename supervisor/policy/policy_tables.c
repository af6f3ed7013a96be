/* policy_tables.c - what the policy language knows, as data: the syscall
 * groups, the named constants a condition may use, which arguments the
 * kernel reads as 32-bit values, which allowances are dangerous, and which
 * syscalls the worker itself cannot do without.
 *
 * Nothing here is derived at run time from a plugin or a worker.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "policy/policy.h"

/* ---- groups: systemd's @system-service idea, for plugin workers ---------- */

#define MEMBERS(...)              \
	(const char *const[])     \
	{                         \
		__VA_ARGS__, NULL \
	}

const struct pb_syscall_group pb_syscall_groups[] = {
	{ "basic-io", "I/O on descriptors already open, pipes, duplicating and closing",
	  MEMBERS("read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "preadv2",
	          "pwritev", "pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3",
	          "pipe", "pipe2") },
	{ "file-read", "looking at files and directories (opening is ruled by its flags, apart)",
	  MEMBERS("fstat", "stat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "getdents",
	          "getdents64", "readlink", "readlinkat", "access", "faccessat", "faccessat2",
	          "getcwd", "chdir", "fchdir", "fadvise64", "getxattr", "lgetxattr", "fgetxattr",
	          "listxattr", "llistxattr", "flistxattr", "flock", "fsync", "fdatasync", "umask") },
	{ "file-write", "creating, changing and removing files",
	  MEMBERS("creat", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat",
	          "renameat2", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat",
	          "chown", "fchown", "lchown", "fchownat", "truncate", "ftruncate", "utime", "utimes",
	          "utimensat", "futimesat", "mknod", "mknodat", "setxattr", "lsetxattr", "fsetxattr",
	          "removexattr", "lremovexattr", "fremovexattr", "fallocate") },
	{ "memory", "the heap and mappings that never become executable (mmap and mprotect are ruled apart)",
	  MEMBERS("brk", "munmap", "mremap", "madvise", "mincore", "msync") },
	{ "threads", "threads of this process and their synchronisation",
	  MEMBERS("futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address",
	          "sched_yield", "sched_getaffinity", "sched_getparam", "sched_getscheduler",
	          "sched_get_priority_max", "sched_get_priority_min", "exit", "exit_group") },
	{ "time", "reading clocks, sleeping, timers",
	  MEMBERS("clock_gettime", "clock_getres", "gettimeofday", "time", "clock_nanosleep",
	          "nanosleep", "getitimer", "setitimer", "alarm", "timer_create", "timer_settime",
	          "timer_gettime", "timer_getoverrun", "timer_delete", "timerfd_create",
	          "timerfd_settime", "timerfd_gettime") },
	{ "identity", "reading who and where this process is",
	  MEMBERS("gettid", "getpid", "getppid", "getpgrp", "getpgid", "getsid", "getuid", "geteuid",
	          "getgid", "getegid", "getgroups", "getresuid", "getresgid", "capget", "uname",
	          "sysinfo", "getrandom", "getrusage", "times", "getpriority", "getrlimit") },
	{ "signals", "handling signals (sending them is @process)",
	  MEMBERS("rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
	          "rt_sigtimedwait", "rt_sigsuspend", "sigaltstack", "restart_syscall", "pause") },
	{ "event-loop", "waiting on descriptors (selectors, asyncio)",
	  MEMBERS("epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	          "epoll_pwait2", "poll", "ppoll", "select", "pselect6", "eventfd", "eventfd2") },
	{ "python-runtime", "what embedded CPython needs at run time without conditions: "
	                    "@basic-io @file-read @memory @threads @time @identity @signals @event-loop",
	  MEMBERS("@basic-io", "@file-read", "@memory", "@threads", "@time", "@identity",
	          "@signals", "@event-loop") },
	{ "network-client", "using sockets once made: connecting, sending, receiving "
	                    "(socket itself is best ruled by family)",
	  MEMBERS("socket", "connect", "getsockname", "getpeername", "getsockopt", "setsockopt",
	          "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown") },
	{ "network-server", "accepting connections",
	  MEMBERS("bind", "listen", "accept", "accept4") },
	{ "process", "process control: new processes, programs, signals to others",
	  MEMBERS("fork", "vfork", "clone", "clone3", "execve", "execveat", "wait4", "waitid",
	          "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open",
	          "pidfd_send_signal", "pidfd_getfd", "setsid", "setpgid", "prlimit64", "setrlimit",
	          "setpriority") },
	{ "debug", "reading and changing other processes",
	  MEMBERS("ptrace", "process_vm_readv", "process_vm_writev", "perf_event_open", "kcmp",
	          "process_madvise") },
	{ "mount", "mounting and changing the root",
	  MEMBERS("mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
	          "fsconfig", "fsmount", "fspick", "mount_setattr") },
	{ "namespaces", "entering and making namespaces", MEMBERS("unshare", "setns") },
	{ "setuid", "changing identity and capabilities",
	  MEMBERS("setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
	          "setfsgid", "setgroups", "capset") },
	{ "keyring", "kernel keyrings", MEMBERS("keyctl", "add_key", "request_key") },
	{ "io-uring", "io_uring, which runs syscalls seccomp never sees",
	  MEMBERS("io_uring_setup", "io_uring_enter", "io_uring_register") },
	{ "module", "loading kernels and kernel modules",
	  MEMBERS("init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load") },
	{ "system-admin", "changing the machine: clocks, names, swap, accounting, reboot",
	  MEMBERS("reboot", "swapon", "swapoff", "acct", "syslog", "quotactl", "vhangup",
	          "sethostname", "setdomainname", "settimeofday", "clock_settime", "clock_adjtime",
	          "adjtimex", "fanotify_init", "open_by_handle_at", "name_to_handle_at") },
	{ "raw-io", "hardware ports, descriptor tables and execution domains",
	  MEMBERS("iopl", "ioperm", "modify_ldt", "personality") },
	{ "kernel-attack-surface", "interfaces a sandboxed plugin has no use for and exploits love",
	  MEMBERS("bpf", "userfaultfd") },
	/* The danger table: what only an attack does. The shipped policies
	 * kill it (python.policy: `@attack: kill`), `plugbox learn` never lets
	 * it through (policy_compile.c), and tests/integration/test_kill_list.py
	 * makes each call for real. Beside it, the built-in guard program kills
	 * the x32 and i386 entry points and any change of the SIGSYS handler,
	 * and python.policy kills clone with namespace flags. */
	{ "attack", "what only an attack does: other processes' memory, namespaces and mounts, "
	            "kernel keyrings, modules and kexec, io_uring, eBPF, userfaultfd, perf events, "
	            "execution domains, hardware ports, reboot",
	  MEMBERS("@debug", "@mount", "@namespaces", "@keyring", "@io-uring", "@module", "@raw-io",
	          "@kernel-attack-surface", "open_by_handle_at", "pidfd_getfd", "reboot", "swapon",
	          "swapoff", "acct") },
	{ "sandbox", "seccomp and Landlock from inside the worker",
	  MEMBERS("seccomp", "landlock_create_ruleset", "landlock_add_rule",
	          "landlock_restrict_self") },
	{ NULL, NULL, NULL },
};

const struct pb_syscall_group *pb_syscall_group_find(const char *name)
{
	for (const struct pb_syscall_group *g = pb_syscall_groups; g->name; g++)
		if (strcmp(g->name, name) == 0)
			return g;
	return NULL;
}

static size_t group_numbers(const struct pb_syscall_group *g, int *nrs, size_t n, size_t max,
                            int depth)
{
	for (const char *const *m = g->members; *m && n < max; m++) {
		if (**m == '@') {
			const struct pb_syscall_group *sub = pb_syscall_group_find(*m + 1);
			if (sub && depth < 4)
				n = group_numbers(sub, nrs, n, max, depth + 1);
			continue;
		}
		int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, *m);
		if (nr >= 0)
			nrs[n++] = nr;
	}
	return n;
}

size_t pb_syscall_group_numbers(const char *name, int *nrs, size_t max)
{
	const struct pb_syscall_group *g = pb_syscall_group_find(name);
	return g ? group_numbers(g, nrs, 0, max, 0) : 0;
}

/* ---- named constants ----------------------------------------------------- */

struct named_constant {
	const char *name;
	uint64_t value;
};

#define K(x)                      \
	{                         \
#x, (uint64_t)(x) \
	}
/* glibc's O_TMPFILE includes O_DIRECTORY; the bit alone is what a filter on
 * "creates a file" needs. */
#define PB_O_TMPFILE_BIT 020000000

static const struct named_constant constants[] = {
	/* open(2) */
	K(O_RDONLY),
	K(O_WRONLY),
	K(O_RDWR),
	K(O_ACCMODE),
	K(O_CREAT),
	K(O_EXCL),
	K(O_NOCTTY),
	K(O_TRUNC),
	K(O_APPEND),
	K(O_NONBLOCK),
	K(O_DSYNC),
	K(O_SYNC),
	K(O_DIRECTORY),
	K(O_NOFOLLOW),
	K(O_CLOEXEC),
	K(O_PATH),
	K(O_TMPFILE),
	K(O_NOATIME),
	K(O_DIRECT),
	K(O_LARGEFILE),
	K(O_ASYNC),
	{ "O_TMPFILE_BIT", PB_O_TMPFILE_BIT },
	K(AT_FDCWD),
	K(AT_EMPTY_PATH),
	K(AT_SYMLINK_NOFOLLOW),
	K(AT_REMOVEDIR),
	/* fcntl(2) */
	K(F_DUPFD),
	K(F_DUPFD_CLOEXEC),
	K(F_GETFD),
	K(F_SETFD),
	K(F_GETFL),
	K(F_SETFL),
	K(F_GETLK),
	K(F_SETLK),
	K(F_SETLKW),
	K(F_OFD_GETLK),
	K(F_OFD_SETLK),
	K(F_OFD_SETLKW),
	K(F_GETPIPE_SZ),
	K(F_SETPIPE_SZ),
	K(F_GETOWN),
	K(F_SETOWN),
	K(F_GETSIG),
	K(F_SETSIG),
	K(F_ADD_SEALS),
	K(F_GET_SEALS),
	K(FD_CLOEXEC),
	/* ioctl(2) */
	K(TCGETS),
	K(TCSETS),
	K(TCSETSW),
	K(TCSETSF),
	K(TIOCGWINSZ),
	K(TIOCSWINSZ),
	K(TIOCSTI),
	K(TIOCLINUX),
	K(TIOCGPGRP),
	K(TIOCSPGRP),
	K(TIOCSCTTY),
	K(TIOCNOTTY),
	K(TIOCGPTN),
	K(TIOCOUTQ),
	K(FIONREAD),
	K(FIONBIO),
	K(FIOCLEX),
	K(FIONCLEX),
	K(FIOASYNC),
	/* mmap(2), mprotect(2), madvise(2) */
	K(PROT_NONE),
	K(PROT_READ),
	K(PROT_WRITE),
	K(PROT_EXEC),
	K(PROT_GROWSDOWN),
	K(MAP_SHARED),
	K(MAP_PRIVATE),
	K(MAP_FIXED),
	K(MAP_ANONYMOUS),
	K(MAP_NORESERVE),
	K(MAP_POPULATE),
	K(MAP_STACK),
	K(MAP_GROWSDOWN),
	K(MAP_FIXED_NOREPLACE),
	K(MADV_DONTNEED),
	K(MADV_FREE),
	K(MADV_WILLNEED),
	K(MADV_HUGEPAGE),
	K(MADV_NOHUGEPAGE),
	/* clone(2), unshare(2) */
	K(CLONE_VM),
	K(CLONE_FS),
	K(CLONE_FILES),
	K(CLONE_SIGHAND),
	K(CLONE_PIDFD),
	K(CLONE_PTRACE),
	K(CLONE_VFORK),
	K(CLONE_PARENT),
	K(CLONE_THREAD),
	K(CLONE_NEWNS),
	K(CLONE_SYSVSEM),
	K(CLONE_SETTLS),
	K(CLONE_PARENT_SETTID),
	K(CLONE_CHILD_CLEARTID),
	K(CLONE_DETACHED),
	K(CLONE_UNTRACED),
	K(CLONE_CHILD_SETTID),
	K(CLONE_NEWCGROUP),
	K(CLONE_NEWUTS),
	K(CLONE_NEWIPC),
	K(CLONE_NEWUSER),
	K(CLONE_NEWPID),
	K(CLONE_NEWNET),
	K(CLONE_IO),
	/* socket(2) */
	K(AF_UNSPEC),
	K(AF_UNIX),
	K(AF_LOCAL),
	K(AF_INET),
	K(AF_INET6),
	K(AF_NETLINK),
	K(AF_PACKET),
	K(AF_VSOCK),
	K(AF_ALG),
	K(AF_BLUETOOTH),
	K(AF_KEY),
	K(SOCK_STREAM),
	K(SOCK_DGRAM),
	K(SOCK_RAW),
	K(SOCK_SEQPACKET),
	K(SOCK_NONBLOCK),
	K(SOCK_CLOEXEC),
	K(IPPROTO_IP),
	K(IPPROTO_TCP),
	K(IPPROTO_UDP),
	K(IPPROTO_IPV6),
	K(IPPROTO_ICMP),
	K(IPPROTO_ICMPV6),
	K(IPPROTO_RAW),
	K(SOL_SOCKET),
	K(SO_REUSEADDR),
	K(SO_KEEPALIVE),
	K(SO_ERROR),
	K(SO_RCVBUF),
	K(SO_SNDBUF),
	K(SO_BINDTODEVICE),
	K(NETLINK_ROUTE),
	K(MSG_DONTWAIT),
	K(MSG_NOSIGNAL),
	K(MSG_PEEK),
	/* prctl(2) */
	K(PR_SET_NAME),
	K(PR_GET_NAME),
	K(PR_SET_PDEATHSIG),
	K(PR_GET_PDEATHSIG),
	K(PR_SET_DUMPABLE),
	K(PR_GET_DUMPABLE),
	K(PR_SET_NO_NEW_PRIVS),
	K(PR_GET_NO_NEW_PRIVS),
	K(PR_SET_SECCOMP),
	K(PR_GET_SECCOMP),
	K(PR_CAPBSET_READ),
	K(PR_CAPBSET_DROP),
	K(PR_SET_PTRACER),
	K(PR_SET_MM),
	K(PR_SET_VMA),
	K(PR_GET_TIMERSLACK),
	K(PR_SET_TIMERSLACK),
	K(PR_CAP_AMBIENT),
	K(PR_SET_KEEPCAPS),
	K(PR_GET_KEEPCAPS),
	/* signals */
	K(SIGHUP),
	K(SIGINT),
	K(SIGQUIT),
	K(SIGILL),
	K(SIGTRAP),
	K(SIGABRT),
	K(SIGBUS),
	K(SIGFPE),
	K(SIGKILL),
	K(SIGUSR1),
	K(SIGSEGV),
	K(SIGUSR2),
	K(SIGPIPE),
	K(SIGALRM),
	K(SIGTERM),
	K(SIGCHLD),
	K(SIGCONT),
	K(SIGSTOP),
	K(SIGTSTP),
	K(SIGTTIN),
	K(SIGTTOU),
	K(SIGURG),
	K(SIGXCPU),
	K(SIGXFSZ),
	K(SIGVTALRM),
	K(SIGPROF),
	K(SIGWINCH),
	K(SIGIO),
	K(SIGSYS),
	K(SIG_BLOCK),
	K(SIG_UNBLOCK),
	K(SIG_SETMASK),
	/* futex(2) */
	K(FUTEX_WAIT),
	K(FUTEX_WAKE),
	K(FUTEX_PRIVATE_FLAG),
	K(FUTEX_WAIT_PRIVATE),
	K(FUTEX_WAKE_PRIVATE),
	K(FUTEX_WAIT_BITSET),
	K(FUTEX_WAKE_BITSET),
	/* resources, wait */
	K(RLIMIT_AS),
	K(RLIMIT_CORE),
	K(RLIMIT_CPU),
	K(RLIMIT_DATA),
	K(RLIMIT_FSIZE),
	K(RLIMIT_NOFILE),
	K(RLIMIT_NPROC),
	K(RLIMIT_STACK),
	K(RLIMIT_MEMLOCK),
	K(WNOHANG),
	K(WUNTRACED),
	K(WEXITED),
	K(WNOWAIT),
	K(P_PID),
	K(P_ALL),
	K(P_PIDFD),
	K(EPOLL_CTL_ADD),
	K(EPOLL_CTL_DEL),
	K(EPOLL_CTL_MOD),
	K(EPOLL_CLOEXEC),
	K(GRND_NONBLOCK),
	K(GRND_RANDOM),
};

bool pb_constant_lookup(const char *name, uint64_t *value)
{
	for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++)
		if (strcmp(constants[i].name, name) == 0) {
			*value = constants[i].value;
			return true;
		}
	return false;
}

/* ---- argument widths ----------------------------------------------------- */

/* Bit i set: the kernel declares argument i as int, unsigned int, pid_t,
 * uid_t, umode_t... (SYSCALL_DEFINE in the kernel sources, x86_64 and
 * aarch64 alike) and reads only its low 32 bits. A filter that compared all
 * 64 bits could be shown one value while the kernel acts on another
 * (CVE-2019-10063: TIOCSTI with high bits set). */
static const struct {
	const char *name;
	uint8_t narrow;
} arg_widths[] = {
	{ "read", 0x01 },
	{ "write", 0x01 },
	{ "close", 0x01 },
	{ "lseek", 0x05 },
	{ "ioctl", 0x03 },
	{ "fcntl", 0x03 },
	{ "flock", 0x03 },
	{ "dup", 0x01 },
	{ "dup2", 0x03 },
	{ "dup3", 0x07 },
	{ "pipe2", 0x02 },
	{ "open", 0x06 },
	{ "openat", 0x0d },
	{ "openat2", 0x01 },
	{ "creat", 0x02 },
	{ "mkdirat", 0x05 },
	{ "unlinkat", 0x05 },
	{ "fchmod", 0x03 },
	{ "fchmodat", 0x05 },
	{ "faccessat", 0x05 },
	{ "faccessat2", 0x0d },
	{ "newfstatat", 0x09 },
	{ "statx", 0x0d },
	{ "fadvise64", 0x09 },
	{ "memfd_create", 0x02 },
	{ "socket", 0x07 },
	{ "socketpair", 0x07 },
	{ "connect", 0x05 },
	{ "bind", 0x05 },
	{ "listen", 0x03 },
	{ "accept", 0x01 },
	{ "accept4", 0x09 },
	{ "sendto", 0x29 },
	{ "recvfrom", 0x09 },
	{ "sendmsg", 0x05 },
	{ "recvmsg", 0x05 },
	{ "sendmmsg", 0x0d },
	{ "recvmmsg", 0x0d },
	{ "setsockopt", 0x17 },
	{ "getsockopt", 0x07 },
	{ "shutdown", 0x03 },
	{ "getsockname", 0x01 },
	{ "getpeername", 0x01 },
	{ "prctl", 0x01 },
	{ "arch_prctl", 0x01 },
	{ "personality", 0x01 },
	{ "kill", 0x03 },
	{ "tkill", 0x03 },
	{ "tgkill", 0x07 },
	{ "rt_sigqueueinfo", 0x03 },
	{ "rt_tgsigqueueinfo", 0x07 },
	{ "rt_sigaction", 0x01 },
	{ "rt_sigprocmask", 0x01 },
	{ "pidfd_open", 0x03 },
	{ "pidfd_send_signal", 0x0b },
	{ "pidfd_getfd", 0x07 },
	{ "clone", 0x00 },
	{ "clone3", 0x00 },
	{ "unshare", 0x00 },
	{ "setns", 0x03 },
	{ "execveat", 0x11 },
	{ "wait4", 0x05 },
	{ "waitid", 0x0b },
	{ "mmap", 0x00 },
	{ "mprotect", 0x00 },
	{ "pkey_mprotect", 0x08 },
	{ "madvise", 0x04 },
	{ "mlock2", 0x04 },
	{ "munmap", 0x00 },
	{ "mremap", 0x00 },
	{ "prlimit64", 0x03 },
	{ "setrlimit", 0x01 },
	{ "getrlimit", 0x01 },
	{ "getpriority", 0x03 },
	{ "setpriority", 0x07 },
	{ "sched_getaffinity", 0x03 },
	{ "sched_setaffinity", 0x03 },
	{ "sched_setscheduler", 0x03 },
	{ "sched_setparam", 0x01 },
	{ "futex", 0x26 },
	{ "getrandom", 0x04 },
	{ "clock_gettime", 0x01 },
	{ "clock_nanosleep", 0x03 },
	{ "timerfd_create", 0x03 },
	{ "eventfd2", 0x03 },
	{ "epoll_create1", 0x01 },
	{ "epoll_ctl", 0x07 },
	{ "inotify_init1", 0x01 },
	{ "setuid", 0x01 },
	{ "setgid", 0x01 },
	{ "setreuid", 0x03 },
	{ "setregid", 0x03 },
	{ "setresuid", 0x07 },
	{ "setresgid", 0x07 },
	{ "setfsuid", 0x01 },
	{ "setfsgid", 0x01 },
	{ "ptrace", 0x00 },
	{ "process_vm_readv", 0x01 },
	{ "process_vm_writev", 0x01 },
	{ "bpf", 0x05 },
	{ "seccomp", 0x03 },
	{ "perf_event_open", 0x0e },
	{ "keyctl", 0x01 },
	{ "mount", 0x00 },
	{ "umount2", 0x02 },
	{ "io_uring_setup", 0x01 },
	{ "userfaultfd", 0x01 },
	{ "landlock_create_ruleset", 0x04 },
};

int pb_syscall_arg_is_32bit(const char *name, unsigned arg)
{
	if (arg > 5)
		return -1;
	for (size_t i = 0; i < sizeof(arg_widths) / sizeof(arg_widths[0]); i++)
		if (strcmp(arg_widths[i].name, name) == 0)
			return (arg_widths[i].narrow >> arg) & 1;
	return -1;
}

/* ---- load-time lint: allowances minijail's linter would question ---------- *
 * Not mprotect: executable memory is no danger from a plugin that already
 * runs native code through ctypes (DESIGN.md invariant 3); strict.policy
 * still refuses it. */

static const struct {
	const char *name;
	const char *why;
} dangers[] = {
	{ "ptrace", "reads and writes other processes" },
	{ "process_vm_readv", "reads other processes' memory" },
	{ "process_vm_writev", "writes other processes' memory" },
	{ "perf_event_open", "a large kernel attack surface and a side channel" },
	{ "bpf", "loads programs into the kernel" },
	{ "userfaultfd", "a favourite of kernel exploits (stalls the kernel on a page fault)" },
	{ "io_uring_setup", "runs syscalls that seccomp never sees" },
	{ "io_uring_enter", "runs syscalls that seccomp never sees" },
	{ "io_uring_register", "runs syscalls that seccomp never sees" },
	{ "mount", "changes the file system view" },
	{ "umount2", "changes the file system view" },
	{ "pivot_root", "changes the root" },
	{ "chroot", "changes the root" },
	{ "unshare", "makes namespaces, where a process gains capabilities" },
	{ "setns", "enters namespaces" },
	{ "execve", "runs another program, outside the interpreter's control" },
	{ "execveat", "runs another program, outside the interpreter's control" },
	{ "clone", "makes processes and namespaces (allow CLONE_THREAD only)" },
	{ "clone3", "its flags are in memory, where the filter cannot see them" },
	{ "fork", "makes processes" },
	{ "vfork", "makes processes" },
	{ "ioctl", "reaches every driver (TIOCSTI types into the terminal)" },
	{ "prctl", "changes the process's security state" },
	{ "socket", "opens any family: netlink, packet, raw" },
	{ "keyctl", "reaches the kernel keyrings" },
	{ "add_key", "reaches the kernel keyrings" },
	{ "request_key", "reaches the kernel keyrings" },
	{ "kexec_load", "replaces the kernel" },
	{ "kexec_file_load", "replaces the kernel" },
	{ "init_module", "loads kernel modules" },
	{ "finit_module", "loads kernel modules" },
	{ "delete_module", "unloads kernel modules" },
	{ "personality", "changes the execution domain (READ_IMPLIES_EXEC)" },
	{ "open_by_handle_at", "opens files past the file system view (shocker)" },
	{ "setuid", "changes identity" },
	{ "setresuid", "changes identity" },
	{ "capset", "changes capabilities" },
	{ "kill", "signals other processes" },
	{ "pidfd_getfd", "steals descriptors from other processes" },
	{ "modify_ldt", "a long history of kernel bugs" },
	{ "iopl", "reaches hardware ports" },
	{ "ioperm", "reaches hardware ports" },
	{ "reboot", "reboots the machine" },
};

const char *pb_syscall_danger(const char *name)
{
	for (size_t i = 0; i < sizeof(dangers) / sizeof(dangers[0]); i++)
		if (strcmp(dangers[i].name, name) == 0)
			return dangers[i].why;
	return NULL;
}

/* The worker reads and writes its channel and report socket, returns from
 * the SIGSYS reporter and exits; a policy that denies these leaves it unable
 * to answer or to say why. */
const char *const pb_worker_floor[] = {
	"read",
	"write",
	"rt_sigreturn",
	"exit_group",
	NULL,
};

int pb_errno_lookup(const char *name)
{
	for (int e = 1; e < 4096; e++) {
		const char *n = strerrorname_np(e);
		if (n && strcmp(n, name) == 0)
			return e;
	}
	return -1;
}

/* The constant named `value` among those whose names start with one of the
 * prefixes (for printing learned rules), or NULL. */
const char *pb_constant_name(uint64_t value, const char *const *prefixes)
{
	for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++)
		for (const char *const *p = prefixes; *p; p++)
			if (constants[i].value == value &&
			    strncmp(constants[i].name, *p, strlen(*p)) == 0)
				return constants[i].name;
	return NULL;
}
