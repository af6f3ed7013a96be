/* supervisor_internal.h - what the supervisor's files share and nobody
 * else sees: a worker as the supervisor tracks it, and the supervisor.
 *
 *   supervisor.c  public API: plugins, workers by name, calls
 *   channel.c     the trust boundary: every byte a worker sends is read and
 *                 judged there, by the state its channel is in
 *   violation.c   naming a trapped syscall and the rule that decided
 *   error.c       pb_error, what a failed call tells the host
 *   value_api.c   the public face of values
 */
#ifndef PLUGBOX_SUPERVISOR_INTERNAL_H
#define PLUGBOX_SUPERVISOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "plugbox.h"
#include "frame.h"
#include "policy.h"
#include "spawn.h"

#define PB_PROTOCOL_VERSION 1
#define LINE_MAX_BYTES 4096
#define REPORT_MAX_BYTES 4096
#define SHUTDOWN_GRACE_MS 2000

struct pb_error {
	pb_error_kind kind;
	char *plugin, *type, *message, *traceback;
};

enum worker_state { W_STARTING, W_READY, W_IN_CALL, W_DEAD };

struct line_buffer {
	char data[LINE_MAX_BYTES];
	size_t len;
};

struct worker {
	char *name;
	struct pb_spawned proc;
	enum worker_state state;
	struct pb_frame_reader reader;
	struct line_buffer out, err;
	uint8_t *send_buf;
	size_t send_len, send_off;
	uint64_t call_id;
	Plugbox__Envelope *hello;
	Plugbox__Envelope *reply;
	struct pb_policy *policy;       /* the operator's policy for this plugin */
	bool after_start;               /* its @after-start rules are loaded (Hello came) */
	bool expect_listener;           /* its filter has log verdicts */
	int notify_fd;                  /* seccomp user notifications, or -1 */
	unsigned nreports;              /* reports and logged calls, for rate limiting */
	bool have_violation;
	int32_t violation_nr;
	uint32_t violation_arch;
	uint64_t violation_args[6];
	char *violation_traceback;      /* the worker's claim, sanitised */
	pb_error_kind end_kind;         /* set when we decided to end it */
	char end_message[512];
	bool reaped;
	int wstatus;
	double cpu_used;                /* seconds of CPU it used, once reaped */
	double wait_limit;              /* seconds the current wait may take (for messages) */
	bool wait_limit_is_policy;      /* ... set by the policy's @limit call-time */
};

/* When the supervisor runs as root, each plugin's workers run as their own
 * uid and gid in [BASE, BASE + RANGE): above any distribution's ranges and
 * below the 32-bit user-namespace ranges that subuid files hand out. */
#define PB_PLUGIN_UID_BASE 1900000000u
#define PB_PLUGIN_UID_RANGE 1000000u

struct pb_plugin_uid {
	char *name;
	uid_t uid;
};

/* A syscall seen by learn mode (from the kernel's notification). */
struct pb_learned_call {
	int nr;
	uint64_t args[6];
};

struct pb_supervisor {
	char *plugins_dir;
	char *worker_path;
	double timeout;
	pb_output_fn output;
	void *output_data;
	char message[512];
	struct worker **workers;
	size_t nworkers;
	uint64_t next_id;
	char *policies_dir;
	enum pb_compile_mode mode;
	struct pb_plugin_uid *uids;        /* identities handed out (as root) */
	size_t nuids;
	struct pb_learned_call *learned;   /* learn mode: distinct calls logged */
	size_t nlearned;
};

/* supervisor.c */
__attribute__((format(printf, 2, 3)))
void pb_set_message(pb_supervisor *s, const char *fmt, ...);

/* channel.c */
double pb_now(void);
/* Run the worker's channel until it leaves `waiting` (a reply or Hello
 * came), it dies, or the deadline passes (0 = none). */
void pb_worker_run(pb_supervisor *s, struct worker *w, enum worker_state waiting, double deadline);
/* Write what is queued in send_buf as far as the pipe takes it now. */
void pb_worker_send_pending(struct worker *w);
/* Decide to end a worker (the first reason given is kept) and SIGKILL it. */
__attribute__((format(printf, 3, 4)))
void pb_worker_end(struct worker *w, pb_error_kind kind, const char *fmt, ...);
void pb_worker_reap(struct worker *w);
/* Why a worker is gone, as an error for the caller. */
pb_error *pb_worker_death_error(const pb_supervisor *s, struct worker *w);
/* Shutdown, a grace period, then SIGKILL; reaps. */
void pb_worker_shutdown(pb_supervisor *s, struct worker *w);
void pb_worker_free(struct worker *w);

/* violation.c */
bool pb_native_arch(uint32_t arch, int nr);
void pb_format_syscall(int nr, uint32_t arch, const uint64_t args[6], char *buf, size_t len);
/* The rule that decides nr(args) for this worker, as a user reads it:
 * "'ptrace: kill' at python.policy:210"; the verdict goes to *action. */
void pb_describe_rule(const struct worker *w, int nr, uint32_t arch, const uint64_t args[6],
                      struct pb_action *action, char *buf, size_t len);
void pb_violation_syscall(const struct worker *w, char *buf, size_t len);
void pb_violation_rule(const struct worker *w, char *buf, size_t len);
/* Record a call for learn mode (distinct calls only, bounded). */
void pb_learn_record(pb_supervisor *s, int nr, const uint64_t args[6]);

/* supervisor.c: the policy for plugin `name` (POLICIES/NAME.policy, else
 * POLICIES/default.policy); errors go to *why as FILE:LINE:COL lines. */
int pb_load_plugin_policy(pb_supervisor *s, const char *name, struct pb_policy **out,
                          char *why, size_t why_len);

/* error.c */
pb_error *pb_error_new(pb_error_kind kind, const char *plugin, const char *type,
                       const char *message, const char *traceback);
pb_error_kind pb_error_kind_from_wire(Plugbox__ErrorKind k);

#endif
