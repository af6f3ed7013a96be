/* scan.h - the discovery scan: one sandboxed helper reads the metadata of
 * many plugins at once (plugbox-worker --install scan, under
 * compile.policy), so that listing plugins and their entry points starts
 * no plugin's worker.
 *
 * The helper answers on its fd 4 with one framed Envelope per plugin asked
 * about, in order, with id i+1: a Hello (what that plugin's worker would
 * say, without sys_path or layers) or an Error (its metadata is bad).
 * Those bytes come from a process that parsed untrusted files, so they are
 * read up to PB_SCAN_ANSWER_MAX and decoded by pb_scan_answer_decode, the
 * one decoder of them (fuzzed by tests/fuzz/fuzz_answer.c).
 */
#ifndef PLUGBOX_HELPERS_SCAN_H
#define PLUGBOX_HELPERS_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "helpers/helper_run.h"
#include "proto/plugbox.pb-c.h"

/* The whole answer, for every plugin together. */
#define PB_SCAN_ANSWER_MAX (8u << 20)
/* Plugins one scan asks about; a directory with more is scanned in turns. */
#define PB_SCAN_PLUGINS_MAX 256u
/* Exports a Hello from the scan may list. */
#define PB_SCAN_EXPORTS_MAX 4096u

/* Check `len` bytes of answer for the plugins names[0..n): exactly n
 * frames, the i-th an Envelope with id i+1 holding a Hello for names[i]
 * (layout "package" or "path", at most PB_ENTRY_POINTS_MAX entry points
 * and PB_SCAN_EXPORTS_MAX exports, every entry point's group and name
 * non-empty) or an Error. On success out[i] owns the i-th envelope (free
 * with pb_envelope_free) and 0 is returned; otherwise nothing is kept and
 * -EMSGSIZE or -EBADMSG comes back with why. */
int pb_scan_answer_decode(const uint8_t *buf, size_t len, char *const *names, size_t n,
                          Plugbox__Envelope **out, char *why, size_t why_len);

struct pb_policy;
struct pb_scan {
	struct pb_helper h;
	int uid_fd; /* the claim on the helper's uid, as root; -1 */
	size_t n;
	char **names; /* borrowed from the caller, valid while it runs */
};
/* Start the helper over plugins_dir/names[i] (names valid plugin names,
 * at most PB_SCAN_PLUGINS_MAX). 0, or -errno with why. */
int pb_scan_start(struct pb_scan *sc, const char *worker_path, const struct pb_policy *policy,
                  const char *plugins_dir, char **names, size_t n, char *why, size_t why_len);
/* Once pb_helper_step(&sc->h) is true: the decoded answer into out[0..n),
 * or -errno with why (the helper died, timed out, was killed by its
 * sandbox, or answered garbage). */
int pb_scan_finish(struct pb_scan *sc, Plugbox__Envelope **out, char *why, size_t why_len);
void pb_scan_free(struct pb_scan *sc);

#endif
