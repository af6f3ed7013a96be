/* filter_check.h - reading a worker's seccomp filters back from outside
 * (filter_check.c), to know that its @after-start rules are in force. */
#ifndef PLUGBOX_FILTER_CHECK_H
#define PLUGBOX_FILTER_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Check that every thread of worker pid runs under exactly the programs of
 * `blob` (pb_policy_compile's format) on top of its older filters. 0: they
 * are; -EBADMSG (a filter differs, is missing or was added) or -ETIMEDOUT
 * (a thread would not stop): refuse the worker, *why says what; any other
 * negative errno: the filters cannot be read here (not root, the
 * supervisor itself under seccomp, the kernel lacks the request). */
int pb_filter_check(pid_t pid, const uint8_t *blob, size_t len, char *why, size_t why_len);

#endif
