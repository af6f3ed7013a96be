/* jail.h - the walls built around a worker between fork and exec:
 * namespaces, a minimal mount tree, its identity, the capability bounding
 * set and resource limits. What the worker adds itself after exec (Landlock,
 * no_new_privs, seccomp, the last capability checks) is worker/layers.c's.
 *
 * pb_jail_prepare runs in the supervisor and may allocate; it turns a
 * policy's settings into a plan. pb_jail_enter runs in the child between
 * clone and exec and only makes system calls, so it is safe after fork in a
 * threaded host.
 */
#ifndef PLUGBOX_JAIL_H
#define PLUGBOX_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "policy/policy.h"

enum pb_jail_op_kind {
	JAIL_DIR,      /* a directory of the skeleton */
	JAIL_FILE,     /* a file to bind onto, or (arg) a file with that text */
	JAIL_SYMLINK,  /* the same link the host has at that path */
	JAIL_BIND,     /* read-only, nosuid, nodev */
	JAIL_BIND_DEV, /* read-only, nosuid: a device node */
	JAIL_TMPFS,    /* the scratch directory */
	JAIL_BIND_RW,  /* writable, nosuid, nodev, noexec, not recursive: an install's staging directory */
	JAIL_BIND_OPT, /* as JAIL_BIND, skipped when the source is gone: a plugin's bytecode cache */
	JAIL_PROC,     /* a read-only procfs of the worker's pid namespace (arg: its options) */
};
#define JAIL_OP_LAST JAIL_PROC

/* @network connect: the worker's /etc/hosts is a read-only bind of this
 * host file beside its view directory (made by spawn.c), which the
 * supervisor rewrites in place when the names are resolved again
 * (runtime/netresolve.c): the worker reads the new addresses with no
 * restart. Writes the path into buf (PATH_MAX); -ENAMETOOLONG. */
int pb_jail_hosts_file(const char *view_dir, char *buf, size_t len);
/* The new root's tmpfs: every directory, file and link of a plan (at most
 * jail_wire.c's 4096 operations) and nothing more; it is read-only once
 * the worker is in it. */
#define PB_JAIL_ROOT_INODES "8192"

struct pb_jail_op {
	enum pb_jail_op_kind kind;
	char *path;           /* the host's path: the same inside the worker */
	char *target;         /* under the new root, as the child makes it */
	char *arg;            /* BIND: source; SYMLINK: link text; TMPFS: options; FILE: text */
	unsigned long locked; /* BIND: the source mount's flags a remount must keep; TMPFS: MS_NOEXEC or 0 */
};

#define PB_JAIL_RLIMITS 7

struct pb_jail {
	int clone_flags; /* CLONE_NEW* */
	bool userns;     /* unprivileged: a user namespace maps our uid to itself */
	bool mount_tree; /* pivot_root into a tmpfs holding only the binds */
	bool as_root;    /* started as root: change to uid/gid below */
	/* The read-only binds made read-only together, by one recursive
	 * mount_setattr after the last of them (jail_enter.c), rather than one
	 * remount each: only where no later op needs a mount made before it
	 * (pb_jail_batch_ro), and not under PLUGBOX_MOUNT_SETATTR=off. */
	bool ro_batch;
	uid_t uid; /* the worker's identity */
	gid_t gid;
	int last_cap;  /* highest capability this kernel knows */
	char *newroot; /* the host directory the new root's tmpfs is mounted on */
	struct pb_jail_op *ops;
	size_t nops;
	int rlimit_resource[PB_JAIL_RLIMITS];
	struct rlimit rlimits[PB_JAIL_RLIMITS];
	/* For the worker's Landlock rules, as paths it sees. */
	char **read_paths, **write_paths;
	size_t nread, nwrite;
	char *import_root; /* holds only NAME -> the plugin directory */
	char *cache_view;  /* the plugin's bytecode cache as the worker sees it, or NULL */
	char *scratch;     /* private /tmp or /var/tmp, or NULL */
	bool proc;         /* the worker's own /proc is planned */
	char *layers[8];   /* what was put in place, for `plugbox list` */
	size_t nlayers;
};

/* Ops that the batched path (ro_batch) makes after the read-only binds
 * and the mount_setattr: mounts that are not read-only binds of the tree. */
static inline bool pb_jail_op_late(enum pb_jail_op_kind k)
{
	return k == JAIL_BIND_DEV || k == JAIL_TMPFS || k == JAIL_BIND_RW || k == JAIL_BIND_OPT || k == JAIL_PROC;
}

/* Plan the jail for plugin `name`: `view_dir` is the supervisor's empty
 * directory for this worker (the new root's mount point, or the import root
 * when there is no mount tree); use_namespaces says whether to try them
 * (an optional layer the kernel refused is planned again without). uid/gid:
 * the per-plugin identity when running as root. `cache`: the host path of
 * the plugin's bytecode cache (readable only, and only this plugin's), or
 * NULL. */
int pb_jail_prepare(struct pb_jail *j, const struct pb_sandbox *sb, bool use_namespaces,
                    const char *name, const char *plugin_dir, const char *view_dir,
                    const char *worker_path, const char *cache, uid_t uid, gid_t gid,
                    char *why, size_t why_len);
/* The import root inside the mount tree: it holds only NAME -> the plugin. */
#define PB_JAIL_IMPORT_ROOT "/plugbox/import"
/* Where the worker's own procfs is mounted; /proc holds links into it
 * (jail.c says why). */
#define PB_JAIL_PROC "/plugbox/proc"
/* Where a worker sees its bytecode cache inside the mount tree. */
#define PB_JAIL_CACHE "/plugbox/cache"
/* Where an install worker (worker/install.c) sees its trees inside the
 * mount tree. Without namespaces it sees them at their host paths. */
#define PB_JAIL_STAGING "/plugbox/staging"
#define PB_JAIL_SOURCE "/plugbox/source"
#define PB_JAIL_OLD "/plugbox/old"

/* What an install worker may touch, as host paths: staging is the only
 * tree it may write (NULL: none), source the plugin directory it copies,
 * old the version an upgrade replaces (both read-only, NULL when absent).
 * plugin (the compiler of a bytecode cache): a plugin directory, read-only
 * at plugin_at, the path its workers see it at (NULL: its own path; another
 * path needs the mount tree). */
struct pb_jail_install {
	const char *staging;
	const char *source;
	const char *old;
	const char *plugin;
	const char *plugin_at;
};

/* Plan the jail of an install worker: the same walls as a plugin's (the
 * policy's namespaces, limits and identity), a mount tree with the standard
 * library, the worker and the trees above but no plugin, no import root and
 * no scratch directory. */
int pb_jail_prepare_install(struct pb_jail *j, const struct pb_sandbox *sb, bool use_namespaces,
                            const struct pb_jail_install *in, const char *view_dir,
                            const char *worker_path, uid_t uid, gid_t gid, char *why, size_t why_len);
/* Asked by the child for resource limit `index` of the plan that setrlimit
 * refused with EPERM: the supervisor sets it with pb_jail_set_limit. Returns
 * 0 or -errno. */
typedef int pb_jail_ask_limit_fn(int index, void *arg);
/* In the child, just after clone(j->clone_flags): everything but Landlock
 * and seccomp. Returns 0, or -errno with *step naming what failed. */
int pb_jail_enter(const struct pb_jail *j, pb_jail_ask_limit_fn *ask_limit, void *arg, const char **step);

/* ---- the new process, between clone and exec (jail_enter.c) ---- */

/* What the child says on its exec channel (a SOCK_SEQPACKET pair) before
 * exec: what failed (step set), or (step empty) a request to set resource
 * limit `limit` of the jail on it, which the supervisor answers with an
 * int, 0 or an errno. Text, not a pointer: a child of the fork-server runs
 * another program's image. A successful start closes the child's end. */
struct pb_child_msg {
	int err;
	int limit;
	char step[120];
};
/* Where the exec channel sits in the child, away from 0-6 and the rest. */
#define PB_CHILD_EXEC_FD 63
/* Descriptors 0-6 of a worker (worker/worker.h); fds[0] -1: /dev/null. */
#define PB_CHILD_FDS PB_FD_FIRST_UNUSED
/* In the new process: its own session, the parent-death signal (and an
 * exit if `parent` is already gone), default signals, fds[i] as descriptor
 * i, the exec channel at PB_CHILD_EXEC_FD and every other descriptor
 * closed, cwd /, then the jail. System calls only. Returns 0, or -errno
 * with *step naming what failed. */
int pb_child_enter(const int fds[PB_CHILD_FDS], int exec_fd, pid_t parent, const struct pb_jail *j,
                   const char **step);
/* Say on the exec channel that `step` failed with errno err, and exit. */
_Noreturn void pb_child_fail(int err, const char *step);

/* ---- the plan on its way to the fork-server (jail_wire.c) ---- */

/* What pb_jail_enter reads of *j, and the worker's argv, as bytes: *out
 * (malloc'd, *len bytes). Returns 0 or -ENOMEM / -E2BIG. */
int pb_jail_pack(const struct pb_jail *j, char *const *argv, uint8_t **out, size_t *len);
/* The reverse, with every length checked against the buffer: fills *j
 * (free with pb_jail_free) and *argv (NULL-terminated, free with
 * pb_jail_argv_free). Returns 0 or -EBADMSG / -ENOMEM. */
int pb_jail_unpack(const uint8_t *buf, size_t len, struct pb_jail *j, char ***argv);
void pb_jail_argv_free(char **argv);
/* In the supervisor: set resource limit `index` of the plan on the child
 * `pid` (prlimit). Returns 0 or -errno. */
int pb_jail_set_limit(const struct pb_jail *j, pid_t pid, int index);
void pb_jail_free(struct pb_jail *j);

#endif
