/* stats.h - stats.c: what a host can count and watch of each plugin's
 * workers (pb_supervisor_plugin_stat, pb_supervisor_set_event_callback). */
#ifndef PLUGBOX_RUNTIME_STATS_H
#define PLUGBOX_RUNTIME_STATS_H

#include "runtime/process.h"

/* A worker of p was spawned (pid known). */
void pb_stats_spawned(pb_supervisor *s, struct plugin *p, const struct process *w);
/* A worker of p is gone: crashed means nobody asked it to end; err is how
 * its calls end (kind VIOLATION, PROTOCOL... tell the event apart). */
void pb_stats_exited(pb_supervisor *s, struct plugin *p, const struct process *w, bool crashed,
                     const pb_error *err);
/* Lines of output or log records the meters turned away. */
void pb_stats_dropped(struct plugin *p, uint64_t lines);
/* A host call the policy does not grant. */
void pb_stats_host_denied(pb_supervisor *s, const struct process *w, const char *name, const char *message);

#endif
