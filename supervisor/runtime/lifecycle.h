/* lifecycle.h - lifecycle.c: waiting for workers on behalf of the host. */
#ifndef PLUGBOX_RUNTIME_LIFECYCLE_H
#define PLUGBOX_RUNTIME_LIFECYCLE_H

#include "runtime/process.h"

/* Start plugin `name`'s worker if need be and run the loop until it has
 * said Hello (then return it) or could not start (NULL and *err). */
const struct process *pb_runtime_wait_worker(pb_supervisor *s, const char *name, pb_error **err);
/* The same for several plugins, started together: for each, the ready
 * worker (valid until the loop runs again) or the error. */
void pb_runtime_wait_workers(pb_supervisor *s, char *const *names, size_t n,
                             const struct process **ready, pb_error **errs);

#endif
