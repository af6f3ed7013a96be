/* cancel.h - cancel.c: pb_cancel, and the signal that tells a worker. */
#ifndef PLUGBOX_RUNTIME_CANCEL_H
#define PLUGBOX_RUNTIME_CANCEL_H

#include "runtime/process.h"

/* Queue PB_CANCEL_SIGNAL with call id to w's main thread (protocol.h). A
 * worker that cannot be signalled is ended: nothing may run on. */
void pb_cancel_signal(pb_supervisor *s, struct process *w, uint64_t id);
/* The error a cancelled call ends with. */
pb_error *pb_cancelled_error(const struct plugin *p, const struct call *c, bool running);
/* A cancelled call's worker did not stop it within the grace: end it. */
void pb_cancel_overdue(pb_supervisor *s, struct process *w);

#endif
