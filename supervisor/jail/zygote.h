/* zygote.h - the supervisor's side of a plugin's zygote (--spawn zygote):
 * one worker per plugin that entered every layer, imported the plugin, and
 * forks that plugin's further workers (worker/zygote.c; the wire:
 * zygote_wire.h). It ran plugin code: what it says is hostile, and nothing
 * it says is believed for any other plugin.
 */
#ifndef PLUGBOX_ZYGOTE_H
#define PLUGBOX_ZYGOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "jail/jail.h"
#include "jail/spawn.h"

/* The longest a zygote's import is waited for: past it, the plugin's
 * workers are exec'd. The supervisor does not wait in its loop: it looks
 * (pb_zygote_ready, which never blocks) each time the plugin's timer
 * fires, and serves every other plugin meanwhile. */
#define PB_ZYGOTE_START_MS 10000
/* The longest a zygote may take to answer a fork request. This one is
 * waited for in the loop: a zygote that does not answer in time is ended
 * and the plugin's workers exec'd until it changes, so a plugin whose
 * import-time code disturbs its zygote can hold the others up for this
 * long, once. A healthy zygote answers in a millisecond or two. */
#define PB_ZYGOTE_REPLY_MS 2000

struct pb_zygote;

/* Start the zygote of plugin `name` (pb_spawn_zygote), without waiting for
 * its import: pb_zygote_ready says when it is done. timeout_ms is how long
 * the import may take. fs: clone it from the fork-server (forkserver.h),
 * whose interpreter its pages then share with every other plugin's zygote,
 * instead of exec'ing it; when the fork-server cannot, it is exec'd.
 * Returns 0, 1 when it was exec'd because the fork-server could not clone
 * it (why says why), or a negative errno with why. */
struct pb_forkserver;
int pb_zygote_start(struct pb_forkserver *fs, const char *worker_path, const char *name, const char *plugin_dir,
                    const char *cache, const struct pb_policy *policy, uid_t uid, gid_t gid, int timeout_ms,
                    struct pb_zygote **out, char *why, size_t why_len);

/* Has it said that its plugin is imported? 1 yes, 0 not yet, or a
 * negative errno with why: it broke the protocol, died, or let timeout_ms
 * pass (it is then killed). Never blocks; reads and drops what the import
 * printed meanwhile, so that a full pipe never stops it. */
int pb_zygote_ready(struct pb_zygote *z, char *why, size_t why_len);

/* Have a ready zygote fork a worker: the child takes fds[1..6] as its descriptors 1-6
 * and closes exec_fd once it is in place. *pid (in our pid namespace) and
 * *self_pid (in its own) come from the kernel through the pidfd, which
 * must be of a child of this zygote. The child is not ours to wait for:
 * pb_zygote_child_status tells how it ended. Returns 0 or a negative
 * errno with why; -EAGAIN when the zygote could not fork (a limit), -EPIPE
 * when it is gone or broke the protocol (it is then killed). */
int pb_zygote_fork(struct pb_zygote *z, const int fds[PB_CHILD_FDS], int exec_fd, pid_t *pid, int *pidfd,
                   int *self_pid, char *why, size_t why_len);

/* Is it still there to fork from? */
bool pb_zygote_alive(struct pb_zygote *z);

/* Its pid (for tests of the supervisor's view), or -1. */
pid_t pb_zygote_pid(const struct pb_zygote *z);

/* Kill and reap it, close its descriptors. */
void pb_zygote_stop(struct pb_zygote *z);

/* How a zygote's child ended (wait status) once its pidfd is readable:
 * the kernel keeps it with the pidfd (PIDFD_GET_INFO, Linux 6.15).
 * Returns 0, or -ENOSYS on an older kernel. */
int pb_zygote_child_status(int pidfd, int *wstatus);

/* SIGKILL a worker: through its pidfd when it is a zygote's child (its pid
 * may be reused once the kernel reaps it), else by pid. */
void pb_zygote_kill(int pidfd, pid_t pid);

#endif
