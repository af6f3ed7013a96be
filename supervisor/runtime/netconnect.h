/* netconnect.h - netconnect.c: the connects the supervisor makes for a worker under `@network connect`. */
#ifndef PLUGBOX_RUNTIME_NETCONNECT_H
#define PLUGBOX_RUNTIME_NETCONNECT_H

#include <linux/seccomp.h>

#include "runtime/process.h"

/* Connects of one worker waiting for the network at once; more get EAGAIN. */
#define PB_NET_PENDING_MAX 8
/* How long one connect may take (TCP_USER_TIMEOUT on ours). */
#define PB_NET_CONNECT_TIMEOUT_MS 10000

/* The kernel asks about the worker's connect(2): answer it, now or once
 * our own connect is done (pb_netconnect_event). */
void pb_netconnect_notified(pb_supervisor *s, struct process *w, const struct seccomp_notif *req);
/* One of our connects is done (SRC_CONNECT). */
void pb_netconnect_event(pb_supervisor *s, struct source *src);
/* The worker ends: its connects stop (out of the loop, closed)... */
void pb_netconnect_release(pb_supervisor *s, struct process *w);
/* ...and are freed once no event of this round can point at them. */
void pb_netconnect_free(struct process *w);
/* Before a worker starts under @network connect: can this kernel do the
 * layer at all (a seccomp listener, ADDFD, pidfd_getfd; probed once a
 * process, in a child)? Then the names, resolved (policy_net.c). <0 with
 * the layer and the reason in why: the worker must not start. */
int pb_netconnect_prepare(pb_supervisor *s, struct process *w, char *why, size_t why_len);
/* Can the supervisor do its part for this worker (ADDFD on its listener,
 * pidfd_getfd on it)? Checked once, on its listener, before any plugin
 * code can connect. */
int pb_netconnect_check(struct process *w, int listener, char *why, size_t why_len);

#endif
