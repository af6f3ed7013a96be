/* spawn.h - start one plugbox-worker with its descriptors and policy. */
#ifndef PLUGBOX_SPAWN_H
#define PLUGBOX_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "policy/policy.h"

struct pb_spawned {
	pid_t pid;
	int pidfd;       /* readable when the worker has exited */
	int calls_fd;    /* supervisor writes frames (worker fd 3) */
	int replies_fd;  /* supervisor reads frames (worker fd 4) */
	int stdout_fd;   /* worker fd 1 */
	int stderr_fd;   /* worker fd 2 */
	int report_fd;   /* SOCK_SEQPACKET, worker fd 5 */
	char *view_dir;  /* import root holding only the plugin, or the mount tree's mount point */
	char *layers[8]; /* what the jail put in place (jail.h) */
	size_t nlayers;
	int self_pid;     /* its pid as it sees itself (what SELF_PID compiled to) */
	bool from_zygote; /* forked by its plugin's zygote: not our child (zygote.h) */
	char *hosts_file; /* @network connect: the host file bound on its /etc/hosts (jail.h), or NULL */
};

/* No process, no descriptors (all -1). */
void pb_spawned_init(struct pb_spawned *s);

/* Fork and exec worker_path for plugin `name` in plugin_dir (absolute), with
 * an empty environment but LANG, stdin on /dev/null, every other descriptor
 * closed, its own session (no controlling terminal), a parent-death signal,
 * the policy's jail (uid/gid: its identity when we are root), and the
 * policy compiled for its pid. Namespaces the policy marks optional are
 * dropped when the kernel refuses them. All returned descriptors are
 * non-blocking and close-on-exec. `cache`: the host path of the plugin's
 * bytecode cache to bind read-only (supervisor/cache.c), or NULL. fs: clone
 * the worker from this fork-server (forkserver.h) instead of exec'ing it.
 * Returns 0 or a negative errno with why. */
struct pb_forkserver;
struct pb_zygote;
int pb_spawn_worker(struct pb_forkserver *fs, struct pb_zygote *zygote, const char *worker_path, const char *name,
                    const char *plugin_dir, const char *cache, const struct pb_policy *policy,
                    enum pb_compile_mode mode, uid_t uid, gid_t gid, struct pb_spawned *out, bool *listener,
                    char *why, size_t why_len);

/* A plugin's zygote (zygote.h): started as pb_spawn_worker starts a
 * worker, with --zygote, a control socket for its descriptor 3, and its
 * policy compiled for a zygote (PB_COMPILE_ZYGOTE). Refused (-ENOTSUP)
 * without a pid namespace of its own. */
int pb_spawn_zygote(struct pb_forkserver *fs, const char *worker_path, const char *name, const char *plugin_dir,
                    const char *cache, const struct pb_policy *policy, uid_t uid, gid_t gid,
                    struct pb_spawned *out, char *why, size_t why_len);

/* An install worker (worker/install.c): plugbox-worker --install MODE,
 * unpacking or copying untrusted input into staging. Its descriptors: 0
 * /dev/null, 1 and 2 captured, 3 the input (a wheel opened read-only by the
 * caller, or /dev/null), 4 its result (a pipe: pb_spawned.replies_fd), 5
 * the report socket, 6 the policy. calls_fd is -1. */
struct pb_install_spec {
	const char *mode;      /* "wheel", "dir", "version" or "compile" */
	int input_fd;          /* the wheel, or -1 */
	const char *staging;   /* host path of the one tree it may write, or NULL */
	const char *source;    /* host path of a plugin directory to copy, or NULL */
	const char *old;       /* host path of the version being replaced, or NULL */
	const char *plugin;    /* compile: host path of the plugin directory, or NULL */
	const char *plugin_at; /* compile: where its workers see it (NULL: the same path) */
	char *const *args;     /* further worker arguments (limits, name), NULL-terminated */
};
int pb_spawn_install(const char *worker_path, const struct pb_policy *policy,
                     const struct pb_install_spec *spec, uid_t uid, gid_t gid,
                     struct pb_spawned *out, char *why, size_t why_len);

/* Close the supervisor's descriptors and remove the view directory. Does not
 * kill or reap. */
void pb_spawned_release(struct pb_spawned *s);

#endif
