/* reports.h - reports.c: the report socket (denials, kills, the seccomp listener) and the seccomp notifications of `log` rules. */
#ifndef PLUGBOX_RUNTIME_REPORTS_H
#define PLUGBOX_RUNTIME_REPORTS_H

#include "runtime/process.h"

/* Read the worker's report socket: Violations, and its listener once. */
void pb_reports_read(pb_supervisor *s, struct process *w);
/* Answer the kernel's notifications for `log` verdicts (learn mode records them). */
void pb_reports_notifications(pb_supervisor *s, struct process *w);
/* The worker ended: say how many reports were not shown. */
void pb_reports_final(pb_supervisor *s, struct process *w);

#endif
