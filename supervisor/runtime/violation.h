/* violation.h - violation.c: the rule that decided a trapped or logged syscall, and learn mode's record. */
#ifndef PLUGBOX_RUNTIME_VIOLATION_H
#define PLUGBOX_RUNTIME_VIOLATION_H

#include "runtime/process.h"

/* The rule that decides nr(args) for this worker, as a user reads it:
 * "'ptrace: kill' at python.policy:210"; the verdict goes to *action. */
void pb_describe_rule(const struct process *p, int nr, uint32_t arch, const uint64_t args[6],
                      struct pb_action *action, char *buf, size_t len);
/* The bare name of the violating syscall ("ptrace"). */
void pb_violation_syscall_name(const struct process *p, char *buf, size_t len);
void pb_violation_syscall(const struct process *p, char *buf, size_t len);
/* The rule, and where it is written (file NULL: built in); at->file
 * belongs to the worker's policy. */
void pb_violation_rule(const struct process *p, char *buf, size_t len, struct pb_where *at);
/* Record a call for learn mode (distinct calls only, bounded). */
void pb_learn_record(pb_supervisor *s, int nr, const uint64_t args[6]);
/* Learn mode (`plugbox learn`): from now on every verdict other than allow
 * becomes log, and each distinct call logged is recorded. */
void pb_learn_start(pb_supervisor *s);
/* The calls recorded so far (the supervisor owns them; sorting in place is allowed). */
struct pb_learned_call *pb_learned(pb_supervisor *s, size_t *n);

#endif
