/* supervisor_internal.h - what the supervisor's files share and nobody
 * else sees: plugins, their worker processes, calls, and the loop.
 *
 *   supervisor.c  public API: settings, the plugins directory, describe, pb_call
 *   runtime.c     calls and lifecycle: queues, starting, crashes and backoff,
 *                 failed plugins, idle stops, shutdown
 *   lifecycle.c   the host's controls over that: start, stop, reset, state,
 *                 waiting for Hello, shutting down
 *   inflight.c    calls inside a worker: the running call and those nested
 *                 in its host calls, and the calls pipelined behind it
 *   loop.c        the event loop: epoll over every worker's descriptors, one
 *                 timer for every deadline, callbacks run at safe points,
 *                 a short adaptive spin before sleeping
 *   channel.c     the trust boundary: every byte a worker sends is read and
 *                 judged there, by the state its channel is in
 *   outbox.c      frames to a worker: buffered, written in batches
 *   hostcall.c    host functions: registry, grants, pb_host_call
 *   death.c       why a worker is gone, as an error for its calls
 *   violation.c   naming a trapped syscall and the rule that decided
 *   error.c       pb_error, what a failed call tells the host
 *   value_api.c   the public face of values
 *
 * Ownership: a plugin lives as long as the supervisor; a process (one
 * incarnation of a plugin's worker) is freed only by the loop between event
 * batches, so a pointer taken while handling events stays valid to the end of
 * the batch; user callbacks run after the batch, from the `ready` list.
 */
#ifndef PLUGBOX_SUPERVISOR_INTERNAL_H
#define PLUGBOX_SUPERVISOR_INTERNAL_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "plugbox.h"
#include "frame.h"
#include "policy.h"
#include "protocol.h"
#include "spawn.h"

#define LINE_MAX_BYTES 4096
#define REPORT_MAX_BYTES 4096
/* Descriptors a report message may carry (the listener is one). */
#define PB_REPORT_MAX_FDS 4
#define SHUTDOWN_GRACE_MS 2000
/* Calls nested in host calls, per worker (the worker allows 32). */
#define PB_MAX_NESTING 16
/* No more calls are written ahead to a worker (PB_PIPELINE_MAX, protocol.h)
 * once this much waits unwritten for its pipe. */
#define PB_PIPELINE_MAX_BYTES ((size_t)64 * 1024)
/* How much of a worker's replies one read(2) takes. */
#define PB_READ_BUFFER ((size_t)16 * 1024)
/* The spin before sleeping (loop.c), and the poll a worker is asked for
 * after answering (Envelope.poll_us): tens of microseconds. */
#define PB_SPIN_US 50

struct pb_error {
	pb_error_kind kind;
	char *plugin, *type, *message, *traceback;
	char *syscall, *rule;   /* a violation's syscall name and deciding rule, else "" */
};

/* What a worker may send depends on this (channel.c's table). */
enum proc_state {
	P_STARTING,     /* spawned; Hello not yet come */
	P_IDLE,         /* ready, no call */
	P_RUNNING,      /* runs the innermost call of its stack */
	P_HOST_WAIT,    /* the innermost call waits for a host function */
	P_STOPPING,     /* sent Shutdown; waiting for the exit */
	P_DEAD,         /* reaped and drained */
};

struct line_buffer {
	char data[LINE_MAX_BYTES];
	size_t len;
};

enum source_kind { SRC_PIDFD, SRC_REPLIES, SRC_STDOUT, SRC_STDERR, SRC_REPORT, SRC_NOTIFY, SRC_CALLS, SRC_COUNT,
                   SRC_CACHE /* not a worker's: the bytecode cache builds (cache.c) */ };

struct process;
struct source {
	enum source_kind kind;
	struct process *proc;           /* NULL: the supervisor's own (timer, wake) */
};

/* Calls that ended and host functions to run wait on the loop's ready
 * list, in order; both start with this link. */
struct ready_link {
	struct ready_link *next;
	bool is_host;
};

struct call {
	struct ready_link link;
	uint64_t id;
	struct plugin *plugin;
	uint8_t *frame;                 /* the Call as a whole frame, until sent */
	size_t frame_len;
	pb_call_done_fn done;
	void *userdata;
	double deadline;                /* absolute; 0: none. Set from the host's timeout at start,
	                                   shortened by the policy's call-time when sent */
	double limit;                   /* seconds the deadline allows, for messages */
	bool limit_is_policy;
	bool running;                   /* sent to a worker */
	bool ghost;                     /* stands in for a call that ended (timed out) while written
	                                   ahead to a worker: its answer is dropped, nobody is told */
	struct pb_host_call *host;      /* the host call this call waits for, if any */
	pb_value *result;               /* once ended: one of these, until delivered */
	pb_error *err;
	struct call *next;              /* in the plugin's queue */
};

struct process {
	struct plugin *plugin;
	const char *name;               /* the plugin's */
	uint64_t generation;
	struct pb_spawned proc;
	enum proc_state state;
	struct source sources[SRC_COUNT];
	bool want_write;                /* calls_fd registered for EPOLLOUT */
	struct pb_frame_in in;          /* its replies, read in bulk */
	struct line_buffer out, err;
	struct pb_frame_out outbox;     /* frames for it not yet taken by its pipe */
	int calls_keep_fd;              /* a read end of its calls pipe that we hold, so writing
	                                   never raises SIGPIPE (-1: none, mask it instead) */
	struct process *next_flush;     /* on the supervisor's list of outboxes to write */
	bool flush_queued;
	Plugbox__Envelope *hello;
	struct pb_policy *policy;       /* the operator's policy for this plugin */
	bool after_start;               /* its @after-start rules are loaded (Hello came) */
	bool expect_listener;           /* its filter has log verdicts */
	int notify_fd;                  /* seccomp user notifications, or -1 */
	unsigned nreports;              /* reports and logged calls, for rate limiting */
	double log_window;              /* log records: when this second began, and how many */
	unsigned log_count;
	double read_stall_at;           /* inside a frame: its next byte is due by then (0: between frames) */
	double write_stall_at;          /* frames queued to it: its pipe must take a byte by then (0: none) */
	bool have_violation;
	int32_t violation_nr;
	uint32_t violation_arch;
	uint64_t violation_args[6];
	char *violation_traceback;      /* the worker's claim, sanitised */
	pb_error_kind end_kind;         /* set when we decided to end it */
	char end_message[512];
	bool stop_requested;            /* ended on purpose: not a crash */
	bool reaped;
	int wstatus;
	double cpu_used;                /* seconds of CPU it used, once reaped */
	double state_deadline;          /* P_STARTING: Hello by then; P_STOPPING: SIGKILL then */
	double idle_since;
	struct call *stack[PB_MAX_NESTING];   /* calls it runs, innermost last */
	size_t depth;
	/* Top-level calls written (or to be written) behind stack[0], oldest
	 * first: a ring. The last `unsent` are not in the outbox yet. */
	struct call *pipeline[PB_PIPELINE_MAX];
	unsigned pipe_head, pipe_count, unsent;
	bool poll_ok;                   /* its policy allows the poll(2) of Envelope.poll_us */
	bool cross_cpu;                 /* it may run on another CPU than we do (loop.c) */
	double cpus_checked_at;
	double replied_at;              /* when its last top-level answer came */
	unsigned quick_gaps;            /* next calls that came soon after an answer, in a row */
	struct process *next_dead;      /* in the loop's graveyard */
	int dir_fd;                     /* its plugin directory, flock'ed shared while it lives */
	int swap_fd;                    /* PLUGINS/.plugbox/swap.lock, shared while it starts */
	dev_t dir_dev;                  /* which directory that is */
	ino_t dir_ino;
	bool outdated;                  /* the directory was replaced: no more calls for it */
};

struct plugin {
	char *name;
	uid_t uid;                      /* its workers' identity when we are root */
	struct process *proc;           /* the current worker, or NULL */
	uint64_t generations;
	struct call *queue_head, *queue_tail;
	size_t queued;
	bool keep_running;              /* started eagerly: restart even without calls */
	unsigned waiters;               /* pb_describe calls waiting for its Hello */
	bool stop_requested;
	double crashes[32];             /* when its workers crashed, oldest first */
	unsigned ncrashes;
	double not_before;              /* backoff: no start before this */
	double failed_until;            /* 0: not failed */
	char failed_reason[600];
	pb_error *start_error;          /* why the last start failed (for describe) */
	double next_timer;              /* earliest deadline of its own; 0: none */
};

struct host_function {
	char *name;
	pb_host_fn fn;
	void *userdata;
};

struct pb_host_call {
	struct ready_link link;
	pb_supervisor *sup;
	struct call *call;              /* the call waiting for it; NULL once that ended */
	char *plugin;
	uint64_t wire_id;
	Plugbox__Envelope *env;         /* the HostCall, which owns the arguments */
	struct host_function fn;
	bool invoking;                  /* its function is on the stack now */
	bool answered;
	bool answering;                 /* inside pb_host_call_return/fail */
	uint8_t *answer;                /* the HostResult frame, until its call is innermost */
	size_t answer_len;
};

/* When the supervisor runs as root, each plugin's workers run as their own
 * uid and gid in [BASE, BASE + RANGE): above any distribution's ranges and
 * below the 32-bit user-namespace ranges that subuid files hand out. */
#define PB_PLUGIN_UID_BASE 1900000000u
#define PB_PLUGIN_UID_RANGE 1000000u

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
	char *policies_dir;
	enum pb_compile_mode mode;
	struct pb_learned_call *learned;   /* learn mode: distinct calls logged */
	size_t nlearned;

	struct plugin **plugins;
	size_t nplugins;
	struct plugin **plugin_index;   /* by name (runtime.c), at most half full */
	size_t plugin_index_cap;
	uint64_t next_id;
	size_t calls_pending;
	struct host_function *functions;
	size_t nfunctions;

	/* start-up settings */
	pb_spawn_mode spawn_mode;
	struct pb_forkserver *forkserver;   /* started on the first spawn that wants it */
	bool forkserver_refused;            /* it could not start: workers are exec'd */
	char *cache_dir;                /* root of the bytecode caches, or NULL: none */
	bool cache_chosen;              /* set by pb_supervisor_set_bytecode_cache (else the default) */
	struct pb_cache_state *cache;   /* the caches in use and their builds (cache.c), made lazily */

	/* lifecycle settings */
	double idle_timeout;
	unsigned max_crashes;
	double crash_window, backoff, backoff_max;
	bool shutting_down;
	double shutdown_deadline;

	/* the loop (loop.c) */
	int epoll_fd;
	int timer_fd;
	double timer_at;                /* when it is armed for; 0: not */
	int wake_fd;                    /* eventfd: readable while `ready` has items */
	bool wake_on;                   /* wake_fd is readable */
	struct source timer_source, wake_source;
	int watch_fd;                   /* inotify on plugins_dir, or -1 (watch.c) */
	struct source watch_source;
	struct ready_link *ready_head, *ready_tail;   /* callbacks to run, in order */
	struct process *graveyard;
	unsigned dispatch_depth;
	struct process *flush_head;     /* workers whose outboxes wait to be written */
	/* the spin before sleeping (loop.c) */
	unsigned spin_misses;           /* spins in a row that found nothing */
	unsigned spin_skip;             /* waits left before spinning is tried again */
	cpu_set_t cpus;                 /* our affinity mask, as of cpus_checked_at */
	double cpus_checked_at;
	bool spin_cross;                /* the worker last written to may run on another CPU */
};

/* supervisor.c */
__attribute__((format(printf, 2, 3)))
void pb_set_message(pb_supervisor *s, const char *fmt, ...);
bool pb_valid_plugin_name(const char *n);
/* supervisor.c: the policy for plugin `name` (POLICIES/NAME.policy, else
 * POLICIES/default.policy); errors go to *why as FILE:LINE:COL lines. */
int pb_load_plugin_policy(pb_supervisor *s, const char *name, struct pb_policy **out,
                          char *why, size_t why_len);

/* supervisor.c: the fork-server to clone plugin's worker from, started
 * when first needed; NULL in exec mode, or when it cannot start (the
 * worker is then exec'd, the safe way, and the plugin's output says why). */
struct pb_forkserver *pb_supervisor_forkserver(pb_supervisor *s, const char *plugin);

/* watch.c */
int pb_watch_init(pb_supervisor *s);
void pb_watch_free(pb_supervisor *s);
/* Read what inotify says and act on it. */
void pb_watch_drain(pb_supervisor *s);
/* Before a new call to plugin `name`: make sure a replaced directory is known. */
void pb_watch_check(pb_supervisor *s, const char *name);
/* Open and share-lock the worker's plugin directory and note which it is. */
int pb_watch_pin(pb_supervisor *s, struct process *w, char *why, size_t why_len);
/* The worker's binds are made: installers may rename again. */
void pb_watch_started(struct process *w);
void pb_watch_unpin(struct process *w);
/* Is the worker's directory no longer the one at its plugin's name? */
bool pb_watch_outdated(const pb_supervisor *s, const struct process *w);

/* channel.c: one message from a worker's report socket, never blocking:
 * its length (over cap when truncated), up to PB_REPORT_MAX_FDS descriptors
 * it carried (more are closed) and whether the kernel dropped some. -1
 * with errno (EAGAIN: nothing waiting), 0 at end of file. */
ssize_t pb_report_recv(int fd, uint8_t *buf, size_t cap, int fds[PB_REPORT_MAX_FDS], int *nfds,
                       bool *ctrunc);

/* loop.c */
double pb_now(void);
/* Arm timerfd `fd` to fire at `at` (pb_now's clock; at once when past; 0 disarms). */
void pb_timerfd_at(int fd, double at);
int pb_loop_init(pb_supervisor *s);
void pb_loop_free(pb_supervisor *s);
int pb_loop_watch(pb_supervisor *s, struct process *p, enum source_kind kind, int fd);
void pb_loop_unwatch(pb_supervisor *s, int fd);
/* Register or drop interest in the calls descriptor becoming writable. */
void pb_loop_want_write(pb_supervisor *s, struct process *p, bool want);
/* Queue a user callback (an ended call, a host function) for the end of
 * the current batch. */
void pb_loop_ready(pb_supervisor *s, struct ready_link *link);
/* A deadline at `at`: make sure the timer fires by then, even if the
 * change came from outside a dispatch round. */
void pb_loop_timer_hint(pb_supervisor *s, double at);
/* Make the next dispatch round run at once. */
void pb_loop_wake(pb_supervisor *s);
/* May the worker run on another CPU than we do (its affinity mask and
 * ours, looked at again every 100 ms)? */
bool pb_loop_cross_cpu(pb_supervisor *s, struct process *w);
/* Free the process once the current batch is over. */
void pb_loop_bury(pb_supervisor *s, struct process *p);

/* channel.c */
void pb_channel_event(pb_supervisor *s, struct process *p, enum source_kind kind, uint32_t events);
/* After bytes moved (or did not) one way: a side with something pending
 * gets PB_CHANNEL_STALL_SECONDS from its last progress (*at; 0: none). */
void pb_channel_stall_clock(pb_supervisor *s, struct process *w, double *at, bool pending, bool progressed);

/* outbox.c */
/* Hold a read end of the worker's calls pipe (calls_keep_fd) if we can. */
void pb_channel_keep_reader(struct process *w);
/* write(2) to its calls pipe without raising SIGPIPE. */
ssize_t pb_channel_write(const struct process *w, const void *buf, size_t len);
/* Queue a whole frame (taken) to the worker and write what the pipe takes now. */
int pb_channel_send(pb_supervisor *s, struct process *p, uint8_t *frame, size_t len);
/* Append a packed Call (copied) to the outbox with Envelope.poll_us added. */
int pb_channel_append_call(struct process *w, const uint8_t *frame, size_t len, uint32_t poll_us);
/* Write the outbox as far as the pipe takes it now; EPOLLOUT for the rest. */
void pb_channel_flush(pb_supervisor *s, struct process *w);
/* Have the loop flush it (and write pipelined calls) before it sleeps. */
void pb_channel_flush_later(pb_supervisor *s, struct process *w);
void pb_channel_flush_all(pb_supervisor *s);
/* Forget what waits for it (it is gone or being stopped). */
void pb_channel_drop_outbox(pb_supervisor *s, struct process *w);
/* Decide to end a worker (the first reason given is kept) and SIGKILL it. */
__attribute__((format(printf, 3, 4)))
void pb_process_end(struct process *p, pb_error_kind kind, const char *fmt, ...);
/* Send Shutdown and give it SHUTDOWN_GRACE_MS to exit. */
void pb_process_stop(pb_supervisor *s, struct process *p);
/* After the pidfd said so: reap, read what is left, leave P_DEAD. */
void pb_process_reap(pb_supervisor *s, struct process *p);
void pb_process_free(pb_supervisor *s, struct process *p);
/* End the worker if its channel stalled (PB_CHANNEL_STALL_SECONDS) by now. */
void pb_channel_check_stall(struct process *p, double now);
/* Write a note about the plugin to the output function. */
__attribute__((format(printf, 3, 4)))
void pb_note(pb_supervisor *s, const char *plugin, const char *fmt, ...);

/* runtime.c: what channel.c reports back */
void pb_runtime_hello(pb_supervisor *s, struct process *p);
void pb_runtime_exited(pb_supervisor *s, struct process *p);
/* Move the plugin on: start its worker, feed it calls, or stop it. */
void pb_runtime_pump(pb_supervisor *s, struct plugin *p);
/* The plugin called `name`, known from now on (NULL and *err: no such
 * plugin); the plugin if it is known already (else NULL). */
struct plugin *pb_runtime_plugin(pb_supervisor *s, const char *name, pb_error **err);
struct plugin *pb_runtime_known(pb_supervisor *s, const char *name);
/* Does anyone need a worker for it: calls, an eager start, pb_describe? */
bool pb_runtime_wants_worker(const struct plugin *p);
/* End every queued call with (a copy of) err. */
void pb_runtime_fail_queue(pb_supervisor *s, struct plugin *p, const pb_error *err);
/* The plugin's queue: take the oldest call; put calls back at the front. */
struct call *pb_runtime_dequeue(struct plugin *p);
void pb_runtime_requeue(struct plugin *p, struct call *c);
/* The error of a call whose deadline passed before it started. */
pb_error *pb_queue_timeout_error(const struct plugin *p, const struct call *c);

/* inflight.c: calls inside a worker */
/* Run c in w now: nested in the innermost call's host call, or as the
 * first call of an idle worker. Written at once. */
void pb_inflight_send(pb_supervisor *s, struct process *w, struct call *c);
/* Write queued calls ahead to a worker that runs one, while the window
 * allows (they go out when the loop flushes). */
void pb_inflight_fill(pb_supervisor *s, struct process *w);
/* Before the outbox is written: pipelined calls not yet in it go in, or
 * back to the queue if the worker became outdated. */
void pb_inflight_materialize(pb_supervisor *s, struct process *w);
/* The innermost call ended with a reply (an envelope with a result or error, taken). */
void pb_runtime_reply(pb_supervisor *s, struct process *p, Plugbox__Envelope *reply);
/* The worker is gone: calls pipelined behind the running one never started
 * and go back to the front of the queue. */
void pb_inflight_requeue(pb_supervisor *s, struct process *w);
/* Pipelined calls whose deadline passed end (timed out waiting). */
void pb_inflight_expire(pb_supervisor *s, struct process *w, double now);
/* Earliest deadline of its pipelined calls (0: none). */
double pb_inflight_next_deadline(const struct process *w);
/* Deadlines, backoff restarts, idle stops; returns the next time to look. */
double pb_runtime_tick(pb_supervisor *s, double now);
/* Have pb_runtime_tick look at plugin p again no later than `at`. */
void pb_runtime_timer(pb_supervisor *s, struct plugin *p, double at);
/* Put an ended call on the ready list (takes result or err). */
void pb_call_finish(pb_supervisor *s, struct call *c, pb_value *result, pb_error *err);
void pb_call_free(struct call *c);
void pb_runtime_free(pb_supervisor *s);
/* Start plugin `name`'s worker if need be and run the loop until it has
 * said Hello (then return it) or could not start (NULL and *err). */
const struct process *pb_runtime_wait_worker(pb_supervisor *s, const char *name, pb_error **err);
/* Plugin `name`'s directory may have been replaced (NULL: any plugin's):
 * a worker on the old one takes no new call and is replaced once idle. */
void pb_runtime_dir_changed(pb_supervisor *s, const char *name);
/* The same for several plugins, started together: for each, the ready
 * worker (valid until the loop runs again) or the error. */
void pb_runtime_wait_workers(pb_supervisor *s, char *const *names, size_t n,
                             const struct process **ready, pb_error **errs);

/* hostcall.c */
/* The worker asked for a host function (env taken): answer at once when it
 * is not granted or not registered, else queue the function. */
void pb_host_call_received(pb_supervisor *s, struct process *p, Plugbox__Envelope *env);
/* Run a queued host function (from the ready list). */
void pb_host_call_invoke(pb_supervisor *s, struct pb_host_call *hc);
/* The call waiting for it ended: the answer, when it comes, is dropped. */
void pb_host_call_orphan(struct pb_host_call *hc);
/* Is a host function of this process's innermost call running on the stack
 * (so a call to it now is nested in that host call)? */
bool pb_host_call_nesting(const struct process *p);
/* The innermost call's host call was answered while a nested call ran:
 * send the answer now. */
void pb_host_call_flush(pb_supervisor *s, struct process *p);
void pb_host_functions_free(pb_supervisor *s);

/* death.c */
pb_error *pb_process_death_error(const struct process *p);

/* violation.c */
bool pb_native_arch(uint32_t arch, int nr);
void pb_format_syscall(int nr, uint32_t arch, const uint64_t args[6], char *buf, size_t len);
/* The rule that decides nr(args) for this worker, as a user reads it:
 * "'ptrace: kill' at python.policy:210"; the verdict goes to *action. */
void pb_describe_rule(const struct process *p, int nr, uint32_t arch, const uint64_t args[6],
                      struct pb_action *action, char *buf, size_t len);
/* The bare name of the violating syscall ("ptrace"). */
void pb_violation_syscall_name(const struct process *p, char *buf, size_t len);
void pb_violation_syscall(const struct process *p, char *buf, size_t len);
void pb_violation_rule(const struct process *p, char *buf, size_t len);
/* Record a call for learn mode (distinct calls only, bounded). */
void pb_learn_record(pb_supervisor *s, int nr, const uint64_t args[6]);

/* error.c */
pb_error *pb_error_new(pb_error_kind kind, const char *plugin, const char *type,
                       const char *message, const char *traceback);
__attribute__((format(printf, 3, 4)))
pb_error *pb_error_newf(pb_error_kind kind, const char *plugin, const char *fmt, ...);
pb_error *pb_error_copy(const pb_error *e);
/* Name the syscall and rule of a violation; frees e and returns NULL when out of memory. */
pb_error *pb_error_set_violation(pb_error *e, const char *syscall, const char *rule);
pb_error_kind pb_error_kind_from_wire(Plugbox__ErrorKind k);

#endif
