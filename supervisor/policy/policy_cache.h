/* policy_cache.h - a supervisor's parsed policies, kept from one worker
 * start to the next (policy_cache.c). */
#ifndef PB_POLICY_CACHE_H
#define PB_POLICY_CACHE_H

#include <stdint.h>

#include "policy/policy.h"

struct pb_policy_cache;

/* The most policies one cache keeps; beyond, each start parses its own. */
#define PB_POLICY_CACHE_MAX 4096u

struct pb_policy_cache *pb_policy_cache_new(void);
void pb_policy_cache_free(struct pb_policy_cache *c);

/* pb_policy_load(DIR, NAME), or the policy kept from the last load of it
 * when every file that load read (the policy and what it @includes) still
 * holds the same bytes. *out is the caller's to pb_policy_free either way.
 * A policy kept is shared by the workers started from it and is never
 * changed: a policy a worker changes (@network connect resolves its names
 * for each worker) is loaded afresh every time. A load that fails is not
 * kept, and its errors reach DIAG each time; a hit reports nothing (the
 * warnings were reported at its load). One thread per cache. */
int pb_policy_cache_load(struct pb_policy_cache *c, const char *dir, const char *name, pb_policy_diag_fn diag,
                         void *data, struct pb_policy **out);

/* For tests and the bench: loads that parsed, loads answered from the cache. */
void pb_policy_cache_counts(const struct pb_policy_cache *c, uint64_t *parsed, uint64_t *kept);

#endif
