/* uids.h - which uid a plugin's workers run as when the supervisor is
 * root (uids.c): one per plugin of a supervisor, never shared with a
 * plugin of another supervisor on the same machine. */
#ifndef PLUGBOX_UIDS_H
#define PLUGBOX_UIDS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The range: [BASE, BASE + RANGE), above any distribution's ranges and
 * below the 32-bit user-namespace ranges that subuid files hand out. */
#define PB_PLUGIN_UID_BASE 1900000000u
#define PB_PLUGIN_UID_RANGE 1000000u
/* The claims of every supervisor on the machine: one byte-range lock per
 * uid in this file, held by the supervisor that uses it. */
#define PB_UID_LOCK_DIR "/run/plugbox"
#define PB_UID_LOCK_FILE PB_UID_LOCK_DIR "/uids.lock"

/* Is uid already this supervisor's (another of its plugins)? */
typedef bool pb_uid_taken_fn(uid_t uid, void *arg);

/* Claim a uid for the plugin `key` (its directory): the one its hash
 * names, or the next one free in the range, skipping those `taken` says
 * are ours and those another supervisor holds. *lock_fd: the lock file,
 * opened at the first claim (-1 before); closing it releases every claim.
 * Returns 0, or -errno with why. */
int pb_uid_claim(int *lock_fd, const char *key, pb_uid_taken_fn *taken, void *arg, uid_t *out,
                 char *why, size_t why_len);

/* A uid for one helper worker (an install unpacker, a bytecode compiler),
 * claimed in the same range on a lock description of its own: while
 * *lock_fd stays open it is no plugin's and no other helper's, of any
 * supervisor. What the helper wrote is re-owned (pb_tree_check) before
 * the claim is released with pb_uid_release, once the helper is reaped.
 * Returns 0, or -errno with why. */
int pb_uid_claim_helper(int *lock_fd, uid_t *out, char *why, size_t why_len);
void pb_uid_release(int *lock_fd);

#endif
