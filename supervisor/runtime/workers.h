/* workers.h - workers.c: starting a plugin's worker, its Hello, its exit. */
#ifndef PLUGBOX_RUNTIME_WORKERS_H
#define PLUGBOX_RUNTIME_WORKERS_H

#include "runtime/process.h"

/* Start a worker for p (pb_runtime_pump decides when); a failure ends the
 * plugin's queued calls with the reason and keeps it as p->start_error. */
void pb_runtime_start(pb_supervisor *s, struct plugin *p);
/* The worker said Hello: accept it (or end it) and pump its plugin. */
void pb_runtime_hello(pb_supervisor *s, struct process *p);
/* The worker is dead: fail what it held, count a crash, back off. */
void pb_runtime_exited(pb_supervisor *s, struct process *p);

#endif
