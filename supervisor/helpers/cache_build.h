/* cache_build.h - per-plugin bytecode caches: what the supervisor
 * (runtime/cache.c), the builds (cache_build.c) and the `plugbox` command share.
 *
 * On disk, below a cache root (pb_supervisor_set_bytecode_cache; default
 * PLUGINS/.plugbox/cache):
 *   NAME/tree/           plugin NAME's pycs, in sys.pycache_prefix's layout;
 *                        bound read-only into NAME's workers, and only theirs
 *   NAME/stamp           which plugin directory the tree was built from
 *   .build/NAME.lock     flock(LOCK_EX) while NAME's cache is built or removed
 *   .build/NAME.failed   the stamp of a build that failed: not tried again
 *                        until the plugin changes (or `plugbox cache`)
 *   .build/NAME.tmp-XXXXXX  a build in progress; or the tree the last build
 *                        replaced, kept for the workers that still have it
 *                        bound, until the next build of NAME
 * The tree is written only by the sandboxed compiler (plugbox-worker
 * --install compile, under compile.policy), into a fresh directory that is
 * then checked without following links, stamped and renamed into place
 * (renameat2 RENAME_EXCHANGE): old and new pycs never mix, and a worker
 * never sees a half-built tree.
 *
 * A stamp is one line: the format, the plugin directory's device, inode
 * and modification time, and its path. A directory replaced by `plugbox
 * install` (a new inode) or whose entries changed (its mtime) no longer
 * matches; files edited in place deeper down are caught by the worker's
 * own check of each pyc against its source's hash, and `plugbox cache`
 * rebuilds on demand.
 */
#ifndef PLUGBOX_CACHE_H
#define PLUGBOX_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "plugbox.h"

struct pb_policy;

#define PB_CACHE_STAMP_MAX 4200
/* Builds one supervisor runs at once; the others wait their turn. */
#define PB_CACHE_BUILDS_MAX 2

/* ---- cache_build.c: one plugin's build, with or without a supervisor ---- */

/* Open (making it when `create`) a cache root: a directory of ours that
 * nobody else may write. Returns a descriptor or -errno with why. */
int pb_cache_root_open(const char *root, bool create, char *why, size_t why_len);
/* The stamp of plugin directory `plugin_dir` as it is now ("" when it is
 * not a directory). */
void pb_cache_stamp(const char *plugin_dir, char *out, size_t len);
/* Does NAME's cache (or its failed marker) carry this stamp? */
bool pb_cache_fresh(int root_fd, const char *name, const char *stamp);
bool pb_cache_failed(int root_fd, const char *name, const char *stamp);
/* Remove NAME's cache, waiting for a build of it to end. 0 or -errno. */
int pb_cache_remove(int root_fd, const char *name);

struct pb_cache_spec {
	int root_fd;      /* pb_cache_root_open; the build keeps its own copy */
	const char *root; /* its path, for the compiler's bind */
	const char *name;
	const char *plugin_dir; /* where workers see the plugin: PLUGINS/NAME */
	const char *source;     /* the tree to compile, bound at plugin_dir; NULL: plugin_dir itself */
	const char *worker_path;
	const struct pb_policy *policy; /* compile.policy; must outlive the build */
	bool wait_lock;                 /* wait for a build of NAME elsewhere, rather than give up */
	bool force;                     /* build even when fresh or failed with this stamp */
};
struct pb_cache_build;
/* Lock NAME, decide and start the compiler. Returns 1 with *out (running),
 * 0 when there is nothing to do (fresh, failed before, built elsewhere right
 * now), or -errno with why. */
int pb_cache_build_start(const struct pb_cache_spec *spec, struct pb_cache_build **out,
                         char *why, size_t why_len);
/* Its descriptors to wait on (readable), at most 6; and its deadline
 * (monotonic seconds, 0: none). */
size_t pb_cache_build_fds(const struct pb_cache_build *b, int fds[6]);
double pb_cache_build_deadline(const struct pb_cache_build *b);
/* Read what is there without blocking, kill at the deadline, reap. True
 * once the compiler has ended and its answer is judged. */
bool pb_cache_build_step(struct pb_cache_build *b);
/* Wait (poll) until the compiler has ended. */
void pb_cache_build_wait(struct pb_cache_build *b);
/* Once ended: check the tree, stamp it with the plugin directory as it is
 * now (still `expect` when that is not NULL, else the build is dropped:
 * -ESTALE) and rename it into place. 0 with what it compiled, or -errno
 * with why; a failed build is marked so (pb_cache_failed), unless it was
 * dropped or the compiler was killed from outside (-EAGAIN). */
int pb_cache_build_commit(struct pb_cache_build *b, const char *expect, unsigned *compiled,
                          unsigned *skipped, char *why, size_t why_len);
const char *pb_cache_build_name(const struct pb_cache_build *b);
const char *pb_cache_build_stamp(const struct pb_cache_build *b);
/* Kill and reap the compiler if it still runs, delete what it left,
 * unlock, free. */
void pb_cache_build_free(struct pb_cache_build *b);
/* Start, wait, commit: 1 built, 0 nothing to do, -errno with why. */
int pb_cache_build_run(const struct pb_cache_spec *spec, unsigned *compiled, unsigned *skipped,
                       char *why, size_t why_len);
/* Load POLICIES/compile.policy (errors to why). */
int pb_cache_policy_load(const char *policies_dir, struct pb_policy **out, char *why, size_t why_len);

#endif
