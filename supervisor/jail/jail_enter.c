/* jail_enter.c - what a new worker process does to itself between clone
 * and exec: its descriptors, session and signals (pb_child_enter), then
 * the jail planned by jail.c (pb_jail_enter: the namespaces' maps, the
 * mount tree, capabilities, limits, identity). System calls only, so it is
 * safe after clone in a threaded host.
 *
 * Compiled into the supervisor and into plugbox-worker: the fork-server
 * (worker/forkserver.c) runs the same steps in the processes it clones.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail/jail.h"

#ifndef SECBIT_NOROOT
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NOROOT_LOCKED (1 << 1)
#define SECBIT_KEEP_CAPS_LOCKED (1 << 5)
#define SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#define SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)
#endif

void pb_jail_free(struct pb_jail *j)
{
	for (size_t i = 0; i < j->nops; i++) {
		free(j->ops[i].path);
		free(j->ops[i].target);
		free(j->ops[i].arg);
	}
	free(j->ops);
	for (size_t i = 0; i < j->nread; i++)
		free(j->read_paths[i]);
	for (size_t i = 0; i < j->nwrite; i++)
		free(j->write_paths[i]);
	free(j->read_paths);
	free(j->write_paths);
	for (size_t i = 0; i < j->nlayers; i++)
		free(j->layers[i]);
	free(j->import_root);
	free(j->cache_view);
	free(j->scratch);
	free(j->newroot);
	memset(j, 0, sizeof(*j));
}

/* ---- entering (in the child: system calls only) ---------------------------- */

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -(n < 0 ? e : EIO);
}

/* "ID ID 1\n" without stdio. */
static void id_map(char *buf, unsigned id)
{
	char digits[12];
	int n = 0;

	do
		digits[n++] = (char)('0' + id % 10);
	while ((id /= 10) && n < 11);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = n - 1; i >= 0; i--)
			*buf++ = digits[i];
		*buf++ = ' ';
	}
	*buf++ = '1';
	*buf++ = '\n';
	*buf = '\0';
}

#define FAIL(what)              \
	do {                    \
		*step = (what); \
		return -errno;  \
	} while (0)

/* The type of a mount call that makes no new file system (propagation,
 * bind, remount): the kernel ignores it, and mount(8) passes "none" too.
 * Not NULL, which valgrind reports as an unaddressable string. */
#define NO_FSTYPE "none"

/* mount_setattr(2), Linux 5.12: raw, as glibc 2.36 and the kernel headers
 * disagree on who defines struct mount_attr. Its argument is that struct:
 * four u64s, attr_set, attr_clr, propagation, userns_fd. */
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#define PB_MOUNT_ATTR_RDONLY 0x1ULL
#define PB_MOUNT_ATTR_NOSUID 0x2ULL
#define PB_MOUNT_ATTR_NODEV 0x4ULL

/* A read-only bind, by itself: bind, then remount read-only (a bind mount
 * takes no flags of its own), keeping the flags the source's mount has
 * locked. */
static int remount_ro(const struct pb_jail_op *op)
{
	unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | op->locked;

	if (op->kind == JAIL_BIND)
		flags |= MS_NODEV;
	return mount(NULL, op->target, NO_FSTYPE, flags, NULL);
}

/* One op of the plan. batched: a JAIL_BIND is only bound here, and made
 * read-only with the others by mount_setattr (enter_mount_tree). */
static int apply_op(const struct pb_jail_op *op, bool batched, const char **step)
{
	int fd;

	switch (op->kind) {
	case JAIL_DIR:
		if (mkdir(op->target, 0755) < 0 && errno != EEXIST)
			FAIL("filesystem: making a directory of the mount tree");
		break;
	case JAIL_FILE:
		fd = open(op->target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			FAIL("filesystem: making a file of the mount tree");
		if (op->arg && write(fd, op->arg, strlen(op->arg)) != (ssize_t)strlen(op->arg)) {
			close(fd);
			FAIL("filesystem: writing a file of the mount tree");
		}
		close(fd);
		break;
	case JAIL_SYMLINK:
		if (symlink(op->arg, op->target) < 0 && errno != EEXIST)
			FAIL("filesystem: making a symlink of the mount tree");
		break;
	case JAIL_BIND:
	case JAIL_BIND_DEV:
		if (mount(op->arg, op->target, NO_FSTYPE, MS_BIND | MS_REC, NULL) < 0)
			FAIL("filesystem: bind-mounting a path into the mount tree");
		if (!(batched && op->kind == JAIL_BIND) && remount_ro(op) < 0)
			FAIL("filesystem: making a bind mount read-only");
		break;
	case JAIL_TMPFS:
		/* locked: MS_NOEXEC unless the policy says @scratch-exec on */
		if (mount("tmpfs", op->target, "tmpfs", MS_NOSUID | MS_NODEV | op->locked, op->arg) < 0)
			FAIL("scratch: mounting the scratch tmpfs");
		break;
	case JAIL_BIND_OPT:
		/* Read-only or not at all: a bind left writable is undone. */
		if (mount(op->arg, op->target, NO_FSTYPE, MS_BIND, NULL) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				break;
			FAIL("filesystem: bind-mounting the bytecode cache");
		}
		if (mount(NULL, op->target, NO_FSTYPE, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | op->locked, NULL) < 0 && umount2(op->target, MNT_DETACH) < 0)
			FAIL("filesystem: making the bytecode cache read-only");
		break;
	case JAIL_PROC:
		/* Here, before pivot_root: a user namespace may mount a procfs
		 * only while a full one is visible in its mount namespace. */
		if (mount("proc", op->target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, op->arg) < 0)
			FAIL("proc: mounting the worker's own /proc (subset=pid); `@proc off` goes without");
		break;
	case JAIL_BIND_RW:
		/* Not MS_REC: staging is a fresh, empty directory, and nothing
		 * mounted beneath it may come along writable. */
		if (mount(op->arg, op->target, NO_FSTYPE, MS_BIND, NULL) < 0)
			FAIL("filesystem: bind-mounting the staging directory");
		if (mount(NULL, op->target, NO_FSTYPE, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC | op->locked, NULL) < 0)
			FAIL("filesystem: remounting the staging directory nosuid, nodev, noexec");
		break;
	}
	return 0;
}

/* The tree's skeleton and binds. One remount per read-only bind was two
 * mount calls per bind (13 binds for a plugin); batched (j->ro_batch), the
 * skeleton and every read-only bind come first, then one recursive
 * mount_setattr makes the new root and everything bound beneath it
 * read-only, nosuid, nodev (submounts of a bound directory too, which a
 * remount of the bind alone left as they were), and then the mounts that
 * must differ: device nodes (dev allowed), the scratch tmpfs and a staging
 * directory (writable), the cache (noexec), /proc. A kernel without
 * mount_setattr (before 5.12), or any refusal of it, takes the remounts
 * one by one, as before: every bind read-only or the worker does not
 * start. */
static int enter_mount_tree(const struct pb_jail *j, const char **step)
{
	/* The tree's directories and files get the modes written below,
	 * whatever umask the supervisor was started with: under 077 they were
	 * 0700 and the plugin's uid could not reach its own worker. */
	mode_t saved_umask = umask(022);
	bool batched = j->ro_batch, root_ro = false;
	int r;

	if (mount(NULL, "/", NO_FSTYPE, MS_REC | MS_PRIVATE, NULL) < 0)
		FAIL("namespaces: making the mount tree private");
	if (mount("tmpfs", j->newroot, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=" PB_JAIL_ROOT_INODES) < 0)
		FAIL("filesystem: mounting the new root");
	for (size_t i = 0; i < j->nops; i++)
		if (!(batched && pb_jail_op_late(j->ops[i].kind)) && (r = apply_op(&j->ops[i], batched, step)) < 0)
			return r;
	if (batched) {
		const uint64_t attr[4] = { PB_MOUNT_ATTR_RDONLY | PB_MOUNT_ATTR_NOSUID | PB_MOUNT_ATTR_NODEV, 0, 0, 0 };
		if (syscall(SYS_mount_setattr, AT_FDCWD, j->newroot, AT_RECURSIVE, attr, sizeof(attr)) == 0) {
			root_ro = true;
		} else {
			for (size_t i = 0; i < j->nops; i++)
				if (j->ops[i].kind == JAIL_BIND && remount_ro(&j->ops[i]) < 0)
					FAIL("filesystem: making a bind mount read-only");
		}
		for (size_t i = 0; i < j->nops; i++)
			if (pb_jail_op_late(j->ops[i].kind) && (r = apply_op(&j->ops[i], batched, step)) < 0)
				return r;
	}
	if (chdir(j->newroot) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		FAIL("filesystem: pivot_root");
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		FAIL("filesystem: detaching the old root");
	if (!root_ro && mount(NULL, "/", NO_FSTYPE, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		FAIL("filesystem: making the new root read-only");
	umask(saved_umask);
	return 0;
}

int pb_jail_enter(const struct pb_jail *j, pb_jail_ask_limit_fn *ask_limit, void *arg, const char **step)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct none[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
	char map[32];
	int r;

	if (j->userns) {
		/* Our own uid and gid, mapped to themselves; no setgroups, as an
		 * unprivileged map requires. */
		if (write_file("/proc/self/setgroups", "deny") < 0)
			FAIL("namespaces: denying setgroups in the user namespace");
		id_map(map, (unsigned)j->uid);
		if ((r = write_file("/proc/self/uid_map", map)) < 0) {
			errno = -r;
			FAIL("namespaces: writing the uid map");
		}
		id_map(map, (unsigned)j->gid);
		if ((r = write_file("/proc/self/gid_map", map)) < 0) {
			errno = -r;
			FAIL("namespaces: writing the gid map");
		}
	}
	if (j->mount_tree && (r = enter_mount_tree(j, step)) < 0)
		return r;
	if ((j->clone_flags & CLONE_NEWUTS) && sethostname("plugbox", 7) < 0)
		FAIL("namespaces: setting the host name");

	/* Capabilities: with a user namespace or as root we hold CAP_SETPCAP
	 * here and can empty the bounding set for good; uid 0 never regains
	 * capabilities on exec (NOROOT), and nothing may raise ambient ones. */
	if (j->userns || j->as_root) {
		if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0) < 0)
			FAIL("capabilities: locking the securebits");
		for (int c = 0; c <= j->last_cap; c++)
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
				FAIL("capabilities: emptying the bounding set");
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		FAIL("capabilities: clearing the ambient set");

	/* Limits before the identity change: RLIMIT_NPROC then counts the
	 * plugin's own uid, and root may still set any value. A limit we may
	 * not set ourselves the supervisor sets on us with prlimit(2), which
	 * grants nothing more: it has the credentials this process was cloned
	 * with. That happens under valgrind, whose emulated setrlimit refuses
	 * an RLIMIT_NOFILE below the descriptors it keeps for itself (it
	 * passes a prlimit on another process to the kernel). */
	for (int i = 0; i < PB_JAIL_RLIMITS; i++) {
		if (setrlimit(j->rlimit_resource[i], &j->rlimits[i]) == 0)
			continue;
		if (errno != EPERM || !ask_limit)
			FAIL("rlimits: setting a resource limit");
		if ((r = ask_limit(i, arg)) < 0) {
			errno = -r;
			FAIL("rlimits: setting a resource limit");
		}
	}
	if (j->as_root) {
		/* The system calls themselves, not glibc's wrappers: in a threaded
		 * host those broadcast the change to every thread the parent had
		 * and wait for them, which in this child (cloned without glibc
		 * knowing) never answer: it hung for good. */
		if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, j->gid, j->gid, j->gid) < 0)
			FAIL("identity: changing to the plugin's gid");
		if (syscall(SYS_setresuid, j->uid, j->uid, j->uid) < 0)
			FAIL("identity: changing to the plugin's uid");
		/* The kernel clears the parent-death signal on a credential
		 * change: without this, a worker busy in a call outlives a
		 * killed supervisor. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			FAIL("identity: re-arming the parent-death signal");
	}
	if (syscall(SYS_capset, &hdr, none) < 0)
		FAIL("capabilities: emptying the effective, permitted and inheritable sets");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		FAIL("no_new_privs");
	return 0;
}

/* ---- the new process ------------------------------------------------------- */

/* Ask the supervisor to set a limit setrlimit refused. */
static int ask_parent_limit(int index, void *arg)
{
	struct pb_child_msg req;
	int answer;

	(void)arg;
	memset(&req, 0, sizeof(req));
	req.limit = index;
	if (write(PB_CHILD_EXEC_FD, &req, sizeof(req)) != (ssize_t)sizeof(req))
		return -EPIPE;
	if (read(PB_CHILD_EXEC_FD, &answer, sizeof(answer)) != (ssize_t)sizeof(answer))
		return -EPIPE;
	return -answer;
}

int pb_child_enter(const int fds[PB_CHILD_FDS], int exec_fd, pid_t parent, const struct pb_jail *j,
                   const char **step)
{
	int src[PB_CHILD_FDS];
	sigset_t all;

	*step = "terminal: leaving the session";
	if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -errno;
	/* The supervisor died before PDEATHSIG was armed. In a new pid
	 * namespace the parent is invisible (getppid() is 0); the worker then
	 * ends on its own when it reads EOF on its channel. */
	if (!(j->clone_flags & CLONE_NEWPID) && getppid() != parent)
		_exit(127);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	*step = "descriptors";
	/* Move every source above the target range first, so no dup2 below
	 * overwrites a source that is still needed. */
	for (int i = 0; i < PB_CHILD_FDS; i++) {
		/* /dev/null too: opened on the lowest free number, it could be
		 * PB_CHILD_EXEC_FD itself, and stdin would become the channel. */
		int fd = fds[i] >= 0 ? fds[i] : open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		src[i] = fcntl(fd, F_DUPFD_CLOEXEC, 64);
		if (fds[i] < 0)
			close(fd);
		if (src[i] < 0)
			return -errno;
	}
	/* The exec channel may sit on a number about to be reused; the copies above are all >= 64. */
	if (exec_fd != PB_CHILD_EXEC_FD && dup3(exec_fd, PB_CHILD_EXEC_FD, O_CLOEXEC) < 0)
		return -errno;
	for (int i = 0; i < PB_CHILD_FDS; i++)
		if (dup2(src[i], i) < 0)
			return -errno;
	if (syscall(SYS_close_range, PB_CHILD_FDS, PB_CHILD_EXEC_FD - 1, 0) < 0 ||
	    syscall(SYS_close_range, PB_CHILD_EXEC_FD + 1, ~0U, 0) < 0)
		return -errno;
	if (chdir("/") < 0)
		return -errno;
	return pb_jail_enter(j, ask_parent_limit, NULL, step);
}

_Noreturn void pb_child_fail(int err, const char *step)
{
	struct pb_child_msg failure;
	size_t n = strlen(step);

	memset(&failure, 0, sizeof(failure));
	failure.err = err;
	if (n >= sizeof(failure.step))
		n = sizeof(failure.step) - 1;
	memcpy(failure.step, step, n);
	if (write(PB_CHILD_EXEC_FD, &failure, sizeof(failure)) < 0)
		_exit(127);
	_exit(127);
}
