/* runtime.h - runtime.c: calls, the plugins' queues, pumping, timers and idle stops.
 * The plugin table is plugins.h's; a worker's start, Hello and exit workers.h's. */
#ifndef PLUGBOX_RUNTIME_RUNTIME_H
#define PLUGBOX_RUNTIME_RUNTIME_H

#include "runtime/process.h"

/* Move the plugin on: start its worker, feed it calls, or stop it. */
void pb_runtime_pump(pb_supervisor *s, struct plugin *p);
/* Does anyone need a worker for it: calls, an eager start, pb_describe? */
bool pb_runtime_wants_worker(const struct plugin *p);
/* End every queued call with (a copy of) err. */
void pb_runtime_fail_queue(pb_supervisor *s, struct plugin *p, const pb_error *err);
/* The plugin's queue: take the oldest call; put calls back at the front. */
struct call *pb_runtime_dequeue(struct plugin *p);
void pb_runtime_requeue(struct plugin *p, struct call *c);
/* The error of a call whose deadline passed before it started. */
pb_error *pb_queue_timeout_error(const struct plugin *p, const struct call *c);

/* Deadlines, backoff restarts, idle stops; returns the next time to look. */
double pb_runtime_tick(pb_supervisor *s, double now);
/* Have pb_runtime_tick look at plugin p again no later than `at`. */
void pb_runtime_timer(pb_supervisor *s, struct plugin *p, double at);
/* Put an ended call on the ready list (takes result or err). */
/* pb_call_start with options the public call does not have:
 * PB_RUNTIME_CALL_PRUNE asks the worker to pass the function only the
 * keyword arguments its signature accepts (Call.prune_kwargs; pb_hook). */
#define PB_RUNTIME_CALL_PRUNE 1u
int pb_runtime_call_start(pb_supervisor *s, const pb_call_spec *spec, unsigned flags, pb_call_done_fn done,
                          void *userdata, uint64_t *call_id);
void pb_call_finish(pb_supervisor *s, struct call *c, pb_value *result, pb_error *err);
void pb_call_free(struct call *c);
void pb_runtime_free(pb_supervisor *s);
/* Plugin `name`'s directory may have been replaced (NULL: any plugin's):
 * a worker on the old one takes no new call and is replaced once idle. */
void pb_runtime_dir_changed(pb_supervisor *s, const char *name);

#endif
