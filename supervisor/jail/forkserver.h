/* forkserver.h - the supervisor's side of the fork-server: one long-lived
 * `plugbox-worker --fork-server` holding an interpreter started with the
 * standard library only, which clones each new worker from itself
 * (worker/forkserver.c). The child enters the same jail, in the same
 * order, as an exec'd worker; it only skips exec and interpreter start.
 */
#ifndef PLUGBOX_FORKSERVER_H
#define PLUGBOX_FORKSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "jail/jail.h"

struct pb_forkserver;

/* Start the fork-server: fork and exec worker_path --fork-server (then
 * --zygotes when it is to clone zygotes, and PB_FORKSERVER_TITLE_ROOM
 * spaces, forkserver_wire.h, where each child writes its plugin's name) with an empty environment but LANG,
 * stdin/stdout/stderr on /dev/null, and its control socket as descriptor
 * 3. Waits for it to say it is ready. Returns 0 or a negative errno with
 * why. */
int pb_forkserver_start(const char *worker_path, bool zygotes, struct pb_forkserver **out, char *why,
                        size_t why_len);

/* Have it clone a worker: the child takes fds[1..6] as its descriptors
 * 1-6 (0 is /dev/null), exec_fd as its exec channel, enters `jail`, and
 * runs plugbox-worker's main with argv. The child is our child
 * (CLONE_PARENT): *pid can be waited for and *pidfd polls readable when it
 * exits. Returns 0 or a negative errno with why; -EPIPE when the
 * fork-server is gone. */
int pb_forkserver_clone(struct pb_forkserver *fs, const struct pb_jail *jail, char *const *argv,
                        const int fds[PB_CHILD_FDS], int exec_fd, pid_t *pid, int *pidfd,
                        char *why, size_t why_len);

/* Is it still there to clone from? (Its exit is seen without waiting.) */
int pb_forkserver_alive(struct pb_forkserver *fs);

/* Close its control socket (it exits on EOF), kill it, reap it. */
void pb_forkserver_stop(struct pb_forkserver *fs);

#endif
