/* protocol.h - the numbers the supervisor and the worker must agree on,
 * beside the wire format itself (proto/plugbox.proto, frame.h). One place,
 * so the two sides cannot drift apart. */
#ifndef PLUGBOX_PROTOCOL_H
#define PLUGBOX_PROTOCOL_H

#include <signal.h>

/* Hello.protocol_version. */
#define PB_PROTOCOL_VERSION 1

/* Log records a worker forwards in one second; it drops the rest itself and
 * says how many (worker/log.c). The supervisor shows at most as many, and
 * ends a worker that sends ten times as many: only a worker that writes its
 * channel behind the glue's back can (supervisor/channel.c). */
#define PB_LOG_RECORDS_PER_SECOND 200
#define PB_LOG_FLOOD_PER_SECOND (10 * PB_LOG_RECORDS_PER_SECOND)

/* Entry points a plugin may declare (all groups together). The worker
 * refuses to start a plugin that declares more (a configuration error
 * naming the count); the supervisor ends a worker whose Hello lists more. */
#define PB_ENTRY_POINTS_MAX 1024

/* A frame begun must go on arriving, and a frame sent to a worker must go
 * on being read: a side that makes no progress for this long is stalled.
 * Honest workers read their channel whenever the supervisor writes to it
 * (between calls, and while they wait for a host function), and write each
 * frame in one go. */
#define PB_CHANNEL_STALL_SECONDS 5.0

/* Top-level calls the supervisor writes ahead to a worker, at most (the
 * pipelining window). A worker writes its answers at least every half
 * window, so the supervisor refills the window while it works on the rest. */
#define PB_PIPELINE_MAX 64

/* Cancelling a call (supervisor/runtime/cancel.c, worker/cancel.c): the
 * supervisor queues this real-time signal to the worker's main thread with
 * the call's Envelope id in si_value. The worker interrupts that call if it
 * is running it (plugbox.Cancelled is raised in it) and otherwise answers
 * it, once it comes to it, without running it. It remembers the ids of at
 * most PB_CANCEL_REMEMBERED calls not yet started (the pipelining window and
 * as much again). A worker that has not answered a cancelled running call
 * within PB_CANCEL_GRACE (plugbox.h) is killed and replaced. */
#define PB_CANCEL_SIGNAL (SIGRTMIN + 3)
#define PB_CANCEL_REMEMBERED 128 /* twice PB_PIPELINE_MAX */

/* A worker's descriptors after exec (set up by supervisor/jail/spawn.c,
 * used by worker/): 0 /dev/null, 1 and 2 its output pipes, then these. */
enum {
	PB_FD_CALLS = 3,   /* frames to the worker */
	PB_FD_REPLIES = 4, /* frames from the worker */
	PB_FD_REPORT = 5,  /* SIGSYS reports, the seccomp listener, helpers' answers */
	PB_FD_POLICY = 6,  /* the compiled policy, read once before any plugin code */
	PB_FD_FIRST_UNUSED = 7,
};

/* The policy blob on PB_FD_POLICY is a sequence of programs, each a
 * little-endian u32 header followed by (header & PB_PROG_COUNT_MASK) struct
 * sock_filter. Header bits other than these are reserved and refused, so a
 * supervisor newer than the worker cannot have a flag silently ignored. */
#define PB_PROG_COUNT_MASK 0x0000ffffu  /* instructions: 1..BPF_MAXINSNS */
#define PB_PROG_AFTER_START 0x80000000u /* load just before Hello, not before the glue runs */
#define PB_PROG_LISTENER 0x40000000u    /* load with a user-notification listener (at most one) */
/* Largest policy blob accepted on PB_FD_POLICY (BPF_MAXINSNS per program). */
#define PB_POLICY_BLOB_MAX 65536u

/* Seccomp trap data (si_errno in the worker's SIGSYS handler) for "kill":
 * the handler reports and dies. Any other value is the errno to fake. */
#define PB_TRAP_KILL 0

/* Largest message on PB_FD_REPORT (a Violation, a helper's answer). */
#define PB_REPORT_MAX 4096u
/* Python stack kept in a Violation; the rest of the envelope is < 100 bytes. */
#define PB_VIOLATION_TRACEBACK_MAX 3000u

#endif
