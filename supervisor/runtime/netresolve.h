/* netresolve.h - netresolve.c: a living worker's @network connect names,
 * resolved again every `@network refresh`, off the event loop. */
#ifndef PLUGBOX_RUNTIME_NETRESOLVE_H
#define PLUGBOX_RUNTIME_NETRESOLVE_H

#include "runtime/process.h"

/* Start the interval for a worker under @network connect (no-op otherwise). */
int pb_netresolve_start(pb_supervisor *s, struct process *w);
/* Its interval is over, or a resolution is done (SRC_RESOLVE). */
void pb_netresolve_event(pb_supervisor *s, struct source *src);
/* Rewrite the worker's /etc/hosts (a file of ours, jail.h) from its list. */
void pb_netresolve_write_hosts(pb_supervisor *s, struct process *w);
/* The worker ends: out of the loop (a resolution in flight is left to its
 * thread)... */
void pb_netresolve_release(pb_supervisor *s, struct process *w);
/* ...and freed once no event of this round can point at it. */
void pb_netresolve_free(struct process *w);

#endif
