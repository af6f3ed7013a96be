/* loop.h - loop.c: the one event loop, its timer, its ready list and its spin. */
#ifndef PLUGBOX_RUNTIME_LOOP_H
#define PLUGBOX_RUNTIME_LOOP_H

#include "runtime/process.h"

/* Arm timerfd `fd` to fire at `at` (pb_now's clock; at once when past; 0 disarms). */
void pb_timerfd_at(int fd, double at);
int pb_loop_init(pb_supervisor *s);
void pb_loop_free(pb_supervisor *s);
int pb_loop_watch(pb_supervisor *s, struct process *p, enum source_kind kind, int fd);
void pb_loop_unwatch(pb_supervisor *s, int fd);
/* Register or drop interest in the calls descriptor becoming writable. */
void pb_loop_want_write(pb_supervisor *s, struct process *p, bool want);
/* Queue a user callback (an ended call, a host function) for the end of
 * the current batch. */
void pb_loop_ready(pb_supervisor *s, struct ready_link *link);
/* A deadline at `at`: make sure the timer fires by then, even if the
 * change came from outside a dispatch round. */
void pb_loop_timer_hint(pb_supervisor *s, double at);
/* Make the next dispatch round run at once. */
void pb_loop_wake(pb_supervisor *s);
/* May the worker run on another CPU than we do (its affinity mask and
 * ours, looked at again every 100 ms)? */
bool pb_loop_cross_cpu(pb_supervisor *s, struct process *w);
/* Free the process once the current batch is over. */
void pb_loop_bury(pb_supervisor *s, struct process *p);

#endif
