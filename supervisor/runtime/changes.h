/* changes.h - changes.c: which plugins were installed, replaced or removed
 * since the supervisor started, for pb_supervisor_generation and the
 * change callback. */
#ifndef PLUGBOX_RUNTIME_CHANGES_H
#define PLUGBOX_RUNTIME_CHANGES_H

#include "runtime/process.h"

/* Note the plugin directories there are now (no callback). */
int pb_changes_init(pb_supervisor *s);
void pb_changes_free(pb_supervisor *s);
/* The name PLUGINS/name changed (inotify said so): compare it with what
 * was known, and count and report a change. */
void pb_changes_note(pb_supervisor *s, const char *name);
/* Compare every name (no inotify, or its queue overflowed). */
void pb_changes_rescan(pb_supervisor *s);

#endif
