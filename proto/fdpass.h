/* fdpass.h - one message with descriptors attached (SCM_RIGHTS), both
 * ways: the fork-server's and the zygotes' control sockets, the
 * supervisor's side (jail/forkserver.c, jail/zygote.c) and the worker's
 * (worker/forkserver.c, worker/zygote.c), and the report socket
 * (toolkit/report.c).
 */
#ifndef PLUGBOX_FDPASS_H
#define PLUGBOX_FDPASS_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The most descriptors one message carries here. */
#define PB_FDPASS_MAX 12

/* sendmsg of buf with nfds descriptors (none when nfds is 0), retried on
 * EINTR; flags as for sendmsg (MSG_NOSIGNAL is added). Returns what
 * sendmsg returns. */
ssize_t pb_fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds, int flags);

/* recvmsg of at most len bytes into buf, descriptors close-on-exec,
 * retried on EINTR. The first `max` descriptors go to fds (*nfds: how
 * many came, which may be more than max: those are closed); *msg_flags:
 * the message's flags (MSG_TRUNC, MSG_CTRUNC: it or its descriptors did
 * not fit). Returns what recvmsg returns (on failure no descriptor is
 * kept). */
ssize_t pb_fdpass_recv(int sock, void *buf, size_t len, int flags, int *fds, size_t max, size_t *nfds,
                       int *msg_flags);

#endif
