/* helper_run.h - one runner for the sandboxed helper workers
 * (plugbox-worker --install unpack, version or compile): spawn, drain,
 * deadline, reap, and the two judgements every helper's end needs.
 *
 * A helper handles untrusted bytes (a wheel, a plugin's sources), so what
 * it says is as hostile as a plugin's channel: its answer is read up to
 * PB_INSTALL_RESULT_MAX bytes and decoded by pb_helper_answer_decode (the
 * one decoder of helper answers, fuzzed by tests/fuzz/fuzz_answer.c); its
 * stdout is drained and dropped, the tail of its stderr kept for a death
 * it does not explain; its report socket carries at most one Violation
 * worth keeping; and its time is its policy's @limit call-time. How it
 * ended (timed out, killed by seccomp, a limit, a signal) is the kernel's
 * verdict from wait4, never the helper's claim. Nothing here blocks
 * except pb_helper_wait: the runtime polls pb_helper_fds from its loop.
 */
#ifndef PLUGBOX_HELPER_RUN_H
#define PLUGBOX_HELPER_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "jail/spawn.h"
#include "proto/install.h"

#define PB_HELPER_TAIL_MAX 512
/* Descriptors pb_helper_fds gives at most. */
#define PB_HELPER_FDS_MAX 5

struct pb_helper {
	struct pb_spawned w;
	const char *who;         /* "the unpacker", "the compiler": for messages */
	const char *policy_file; /* "install.policy": for messages */
	bool exited, finished, timed_out;
	int status;
	struct rusage ru;
	double deadline; /* monotonic seconds; 0: none */
	uint64_t call_ms, cpu_limit;
	char *answer;      /* small, or pb_helper_set_answer_max's */
	size_t answer_max; /* bytes it may answer; one more kills it */
	size_t answer_len;
	char small[PB_INSTALL_RESULT_MAX + 1];
	bool answer_too_long;
	char tail[PB_HELPER_TAIL_MAX + 1]; /* the end of its stderr */
	size_t tail_len;
	/* Its report socket: the first Violation (the SIGSYS handler's), and
	 * whether anything else came (a descriptor, another body, garbage). */
	bool have_violation, bad_report;
	int nr;
	uint32_t arch;
	uint64_t args[6];
};

/* No process yet: pb_helper_free is safe on it. */
void pb_helper_init(struct pb_helper *h, const char *who, const char *policy_file);
/* A helper whose answer may be longer than PB_INSTALL_RESULT_MAX (the
 * discovery scan's): before pb_helper_spawn. 0 or -ENOMEM. */
int pb_helper_set_answer_max(struct pb_helper *h, size_t max);
/* Start plugbox-worker --install under `policy` (pb_spawn_install), its
 * deadline the policy's call-time from now. 0, or -errno with why. */
int pb_helper_spawn(struct pb_helper *h, const char *worker_path, const struct pb_policy *policy,
                    const struct pb_install_spec *spec, uid_t uid, gid_t gid, char *why, size_t why_len);
/* Its descriptors to wait on (readable) and its deadline (0: none). */
size_t pb_helper_fds(const struct pb_helper *h, int fds[PB_HELPER_FDS_MAX]);
double pb_helper_deadline(const struct pb_helper *h);
/* Read what is there without blocking, kill it at the deadline or when it
 * says too much, reap. True once it has ended and what it left buffered
 * has been read. */
bool pb_helper_step(struct pb_helper *h);
/* Poll until pb_helper_step is true. */
void pb_helper_wait(struct pb_helper *h);
/* Kill and reap it if it still runs; close its descriptors. */
void pb_helper_free(struct pb_helper *h);

/* How it ended, the part every helper judges the same way. */
enum pb_helper_end {
	PB_HELPER_EXITED,     /* it exited: judge its answer (exit status in *exit_status) */
	PB_HELPER_TIMED_OUT,  /* killed at its deadline */
	PB_HELPER_SECCOMP,    /* died of SIGSYS: the sandbox killed it */
	PB_HELPER_LIMIT,      /* a CPU or file-size limit ended it */
	PB_HELPER_SIGNAL,     /* another signal (SIGKILL from outside, the OOM killer) */
	PB_HELPER_TOO_LONG,   /* more than PB_INSTALL_RESULT_MAX bytes of answer */
	PB_HELPER_BAD_REPORT, /* garbage on its report socket */
};
/* The verdict and, but for EXITED and SECCOMP (whose message needs the
 * policy's rule: the caller's), one printable line saying it. */
enum pb_helper_end pb_helper_end(const struct pb_helper *h, int *exit_status, char *why, size_t why_len);
/* "WHO ended without an answer (exit status N); its last words: ..." */
void pb_helper_no_answer(const struct pb_helper *h, int exit_status, char *why, size_t why_len);

/* ---- the answer: lines of tab-separated fields (install.h), decoded ---- */

#define PB_HELPER_FIELDS_MAX 4
struct pb_helper_line {
	const char *field[PB_HELPER_FIELDS_MAX];
	unsigned nfields;
};
struct pb_helper_answer {
	char text[PB_INSTALL_RESULT_MAX + 1];               /* the bytes, split in place */
	struct pb_helper_line probe[PB_INSTALL_MAX_PROBES]; /* "probe" lines, when allowed */
	unsigned nprobes;
	struct pb_helper_line last; /* the deciding line; nfields 0: none */
};
/* Split `len` bytes into lines and fields. Every line ends with '\n'; no
 * byte is NUL; only "probe" lines (with allow_probes, at most
 * PB_INSTALL_MAX_PROBES) may come before the deciding one; a line has at
 * most PB_HELPER_FIELDS_MAX fields. 0 (an empty answer has no deciding
 * line), -EMSGSIZE past PB_INSTALL_RESULT_MAX, -EBADMSG otherwise. */
int pb_helper_answer_decode(const char *buf, size_t len, bool allow_probes, struct pb_helper_answer *a);
/* Is the line `verb` followed by exactly nargs fields? */
bool pb_helper_line_is(const struct pb_helper_line *l, const char *verb, unsigned nargs);
/* A count: 1 to 9 decimal digits. */
bool pb_helper_count(const char *s, unsigned long *out);

/* install_run.c: the unpacker's deciding line (a->last, present) for
 * `job`, after an exit with exit_status, into res; what fuzz_answer.c
 * checks besides the decoder. */
struct pb_install_job;
struct pb_install_result;
void pb_install_judge(const struct pb_helper_answer *a, const struct pb_install_job *job, int exit_status,
                      struct pb_install_result *res);

#endif
