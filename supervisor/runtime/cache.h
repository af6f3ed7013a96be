/* cache.h - the supervisor's side of the bytecode caches (cache.c): which
 * cache a worker gets, and the builds it runs in the background on its loop.
 * The on-disk layout and the builds themselves are helpers/cache_build.h. */
#ifndef PLUGBOX_RUNTIME_CACHE_H
#define PLUGBOX_RUNTIME_CACHE_H

#include <stdbool.h>

#include "plugbox.h"

struct source;

/* Before plugin `name`'s worker starts from plugin_dir: the host path of
 * its cache tree to bind (malloc'd), or NULL to run uncached; queues a
 * build in the background when the cache is missing or stale. */
char *pb_cache_for_worker(pb_supervisor *s, const char *name, const char *plugin_dir);
/* A build's descriptor or timer is ready (loop.c). */
void pb_cache_event(pb_supervisor *s, const struct source *src);
/* Queue a build of `name` now (force: even when fresh or failed before). */
int pb_cache_request(pb_supervisor *s, const char *name, bool force);
/* Run the loop until no build is running or queued (one-shot commands, so
 * the cache they started is there for the next run). */
void pb_cache_settle(pb_supervisor *s);
/* What became of the builds of `name` in this supervisor: 1 built, 0 none
 * (fresh or skipped), -1 failed with why. */
int pb_cache_outcome(pb_supervisor *s, const char *name, unsigned *compiled, unsigned *skipped,
                     char *why, size_t why_len);
/* Kill the builds that still run and forget everything (pb_supervisor_free). */
void pb_cache_free(pb_supervisor *s);

#endif
