/* inflight.h - inflight.c: calls inside a worker: the running one, nested, pipelined. */
#ifndef PLUGBOX_RUNTIME_INFLIGHT_H
#define PLUGBOX_RUNTIME_INFLIGHT_H

#include "runtime/process.h"

/* Run c in w now: nested in the innermost call's host call, or as the
 * first call of an idle worker. Written at once. */
void pb_inflight_send(pb_supervisor *s, struct process *w, struct call *c);
/* Write queued calls ahead to a worker that runs one, while the window
 * allows (they go out when the loop flushes). */
void pb_inflight_fill(pb_supervisor *s, struct process *w);
/* Before the outbox is written: pipelined calls not yet in it go in, or
 * back to the queue if the worker became outdated. */
void pb_inflight_materialize(pb_supervisor *s, struct process *w);
/* The innermost call ended with a reply (an envelope with a result or error, taken). */
void pb_inflight_reply(pb_supervisor *s, struct process *p, Plugbox__Envelope *reply);
/* The worker is gone: calls pipelined behind the running one never started
 * and go back to the front of the queue. */
void pb_inflight_requeue(pb_supervisor *s, struct process *w);
/* Pipelined calls whose deadline passed end (timed out waiting). */
void pb_inflight_expire(pb_supervisor *s, struct process *w, double now);
/* Cancel call id if it is in w (cancel.c): 0, -ENOENT (not in w) or
 * -ENOMEM. */
int pb_inflight_cancel(pb_supervisor *s, struct process *w, uint64_t id);
/* The id the host knows the innermost call w runs now by (its origin or
 * its id; 0 when it runs none, or only a ghost). */
uint64_t pb_inflight_running(const struct process *w);
/* Earliest deadline of its pipelined calls (0: none). */
double pb_inflight_next_deadline(const struct process *w);

#endif
