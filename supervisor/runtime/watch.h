/* watch.h - watch.c: noticing that a plugin's directory was replaced. */
#ifndef PLUGBOX_RUNTIME_WATCH_H
#define PLUGBOX_RUNTIME_WATCH_H

#include "runtime/process.h"

int pb_watch_init(pb_supervisor *s);
void pb_watch_free(pb_supervisor *s);
/* Read what inotify says and act on it. */
void pb_watch_drain(pb_supervisor *s);
/* Before a new call to plugin `name`: make sure a replaced directory is known. */
void pb_watch_check(pb_supervisor *s, const char *name);
/* Open and share-lock the worker's plugin directory and note which it is. */
int pb_watch_pin(pb_supervisor *s, struct process *w, char *why, size_t why_len);
/* The worker's binds are made: installers may rename again. */
void pb_watch_started(struct process *w);
void pb_watch_unpin(struct process *w);
/* Is the worker's directory no longer the one at its plugin's name? */
bool pb_watch_outdated(const pb_supervisor *s, const struct process *w);

#endif
