/* outbox.h - outbox.c: frames to a worker, buffered and written in batches. */
#ifndef PLUGBOX_RUNTIME_OUTBOX_H
#define PLUGBOX_RUNTIME_OUTBOX_H

#include "runtime/process.h"

/* Hold a read end of the worker's calls pipe (calls_keep_fd) if we can. */
void pb_outbox_keep_reader(struct process *w);
/* write(2) to its calls pipe without raising SIGPIPE. */
ssize_t pb_outbox_write(const struct process *w, const void *buf, size_t len);
/* Queue a whole frame (taken) to the worker and write what the pipe takes now. */
int pb_outbox_send(pb_supervisor *s, struct process *p, uint8_t *frame, size_t len);
/* Append a packed Call (copied) to the outbox with Envelope.poll_us added. */
int pb_outbox_append_call(struct process *w, const uint8_t *frame, size_t len, uint32_t poll_us);
/* Write the outbox as far as the pipe takes it now; EPOLLOUT for the rest. */
void pb_outbox_flush(pb_supervisor *s, struct process *w);
/* Have the loop flush it (and write pipelined calls) before it sleeps. */
void pb_outbox_flush_later(pb_supervisor *s, struct process *w);
void pb_outbox_flush_all(pb_supervisor *s);
/* Forget what waits for it (it is gone or being stopped). */
void pb_outbox_drop(pb_supervisor *s, struct process *w);

#endif
