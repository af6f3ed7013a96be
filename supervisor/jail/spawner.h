/* spawner.h - start processes from one long-lived thread of the
 * supervisor process (spawner.c), so that their parent-death signal
 * follows the process, not the thread that happened to ask. */
#ifndef PLUGBOX_SPAWNER_H
#define PLUGBOX_SPAWNER_H

/* Something that clones or forks: it returns the new pid or -errno in the
 * parent, and never returns in the child. */
typedef long pb_spawner_fn(void *arg);

/* Run fn(arg) on the spawner thread, started at the first call (again in a
 * forked copy of the process), and return what it returned. Calls from
 * several threads take turns. If the thread cannot be started, fn runs on
 * the calling thread, as before there was one. */
long pb_spawner_run(pb_spawner_fn *fn, void *arg);

#endif
