/* report.h - reading a worker's report socket: the SIGSYS reports, the
 * seccomp listener and the helpers' answers arrive there as one datagram
 * each, with descriptors attached. Hostile bytes: the caller decodes the
 * message with the envelope codec (proto/frame.h), never by hand. */
#ifndef PLUGBOX_REPORT_H
#define PLUGBOX_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/protocol.h"

/* Descriptors a report message may carry (the listener is one). */
#define PB_REPORT_MAX_FDS 4

/* One message from a worker's report socket, never blocking: its length
 * (over cap when truncated), up to PB_REPORT_MAX_FDS descriptors it carried
 * (more are closed) and whether the kernel dropped some. -1 with errno
 * (EAGAIN: nothing waiting), 0 at end of file. */
ssize_t pb_report_recv(int fd, uint8_t *buf, size_t cap, int fds[PB_REPORT_MAX_FDS], int *nfds,
                       bool *ctrunc);

#endif
