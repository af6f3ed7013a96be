/* protocol.h - the numbers the supervisor and the worker must agree on,
 * beside the wire format itself (proto/plugbox.proto, frame.h). One place,
 * so the two sides cannot drift apart. */
#ifndef PLUGBOX_PROTOCOL_H
#define PLUGBOX_PROTOCOL_H

/* Hello.protocol_version. */
#define PB_PROTOCOL_VERSION 1

/* Log records a worker forwards in one second; it drops the rest itself and
 * says how many (worker/log.c). The supervisor shows at most as many, and
 * ends a worker that sends ten times as many: only a worker that writes its
 * channel behind the glue's back can (supervisor/channel.c). */
#define PB_LOG_RECORDS_PER_SECOND 200
#define PB_LOG_FLOOD_PER_SECOND (10 * PB_LOG_RECORDS_PER_SECOND)

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

#endif
