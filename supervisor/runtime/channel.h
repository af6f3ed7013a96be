/* channel.h - channel.c: the trust boundary, where a worker's bytes are read and judged, and the end of a worker. */
#ifndef PLUGBOX_RUNTIME_CHANNEL_H
#define PLUGBOX_RUNTIME_CHANNEL_H

#include "runtime/process.h"

void pb_channel_event(pb_supervisor *s, struct process *p, enum source_kind kind, uint32_t events);
/* After bytes moved (or did not) one way: a side with something pending
 * gets PB_CHANNEL_STALL_SECONDS from its last progress (*at; 0: none). */
void pb_channel_stall_clock(pb_supervisor *s, struct process *w, double *at, bool pending, bool progressed);
/* SIGKILL the worker (by pidfd when a zygote forked it). */
void pb_channel_kill(struct process *w);
/* Decide to end a worker (the first reason given is kept) and SIGKILL it. */
__attribute__((format(printf, 3, 4))) void pb_channel_end(struct process *p, pb_error_kind kind, const char *fmt, ...);
/* Send Shutdown and give it SHUTDOWN_GRACE_MS to exit. */
void pb_channel_stop(pb_supervisor *s, struct process *p);
/* After the pidfd said so: reap, read what is left, leave P_DEAD. */
void pb_channel_reap(pb_supervisor *s, struct process *p);
void pb_channel_free(pb_supervisor *s, struct process *p);
/* End the worker if its channel stalled (PB_CHANNEL_STALL_SECONDS) by now. */
void pb_channel_check_stall(struct process *p, double now);
/* Out of the loop and closed; *fd becomes -1. */
void pb_channel_close_fd(pb_supervisor *s, int *fd);

#endif
