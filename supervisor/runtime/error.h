/* error.h - error.c: pb_error, what a failed call tells the host. */
#ifndef PLUGBOX_RUNTIME_ERROR_H
#define PLUGBOX_RUNTIME_ERROR_H

#include "runtime/process.h"

pb_error *pb_error_new(pb_error_kind kind, const char *plugin, const char *type,
                       const char *message, const char *traceback);
__attribute__((format(printf, 3, 4)))
pb_error *
pb_error_newf(pb_error_kind kind, const char *plugin, const char *fmt, ...);
pb_error *pb_error_copy(const pb_error *e);
/* Name the syscall and rule of a violation; frees e and returns NULL when out of memory. */
pb_error *pb_error_set_violation(pb_error *e, const char *syscall, const char *rule);
/* And the raw arguments and where the rule is written (file NULL: built
 * in); frees e and returns NULL when out of memory. */
pb_error *pb_error_set_violation_detail(pb_error *e, const uint64_t args[6], const char *policy_file,
                                        unsigned policy_line);
pb_error_kind pb_error_kind_from_wire(Plugbox__ErrorKind k);

#endif
