/* process.h - the runtime's data: plugins, their worker processes, calls,
 * host calls and the supervisor itself, with the fields grouped by the file
 * that owns them. Each file's functions are in its own header (NAME.h).
 *
 *   supervisor.c  public API: settings, the plugins directory, describe, pb_call
 *   runtime.c     calls and lifecycle: queues, starting, crashes and backoff,
 *                 failed plugins, idle stops, shutdown
 *   lifecycle.c   the host's controls over that: start, stop, reset, state,
 *                 waiting for Hello, shutting down
 *   inflight.c    calls inside a worker: the running call and those nested
 *                 in its host calls, and the calls pipelined behind it
 *   cancel.c      pb_cancel: a call out of the queue, or cancelled in its worker
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
#ifndef PLUGBOX_RUNTIME_PROCESS_H
#define PLUGBOX_RUNTIME_PROCESS_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "plugbox.h"
#include "proto/frame.h"
#include "policy/policy.h"
#include "proto/protocol.h"
#include "jail/spawn.h"
#include "toolkit/clock.h"
#include "proto/names.h"
#include "toolkit/meter.h"
#include "toolkit/report.h"

#define LINE_MAX_BYTES 4096
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
/* A supervisor's cap on @replicas unless pb_supervisor_set_max_replicas
 * says otherwise: a policy asking for more gets this many, with a note. */
#define PB_REPLICAS_DEFAULT_CAP 8u

struct pb_error {
	pb_error_kind kind;
	char *plugin, *type, *message, *traceback;
	char *syscall, *rule; /* a violation's syscall name and deciding rule, else "" */
	/* A violation reported by the worker: its arguments, and where the
	 * rule is written (policy_file "" when built in). */
	bool have_args;
	uint64_t args[6];
	char *policy_file;
	unsigned policy_line;
};

/* What a worker may send depends on this (channel.c's table). */
enum proc_state {
	P_STARTING,  /* spawned; Hello not yet come */
	P_IDLE,      /* ready, no call */
	P_RUNNING,   /* runs the innermost call of its stack */
	P_HOST_WAIT, /* the innermost call waits for a host function */
	P_STOPPING,  /* sent Shutdown; waiting for the exit */
	P_DEAD,      /* reaped and drained */
};

struct line_buffer {
	char data[LINE_MAX_BYTES];
	size_t len;
	bool skipping; /* inside a line the meter dropped: up to its newline */
};

/* What each stream of a worker (stdout, stderr, the supervisor's notes
 * about it, its log lines) may send to the output function, per second;
 * the rest is dropped and counted, and a note says how much. */
#define PB_OUTPUT_LINES_PER_SECOND 1000
#define PB_OUTPUT_BYTES_PER_SECOND (256 * 1024)

enum source_kind { SRC_PIDFD,
	           SRC_REPLIES,
	           SRC_STDOUT,
	           SRC_STDERR,
	           SRC_REPORT,
	           SRC_NOTIFY,
	           SRC_CALLS,
	           SRC_COUNT,
	           SRC_CACHE /* not a worker's: the bytecode cache builds (cache.c) */,
	           SRC_SINK /* not a worker's: the supervisor's stderr taking bytes again (supervisor.c) */,
	           SRC_CONNECT /* not a slot: one of the connects made for a worker (netconnect.c) */,
	           SRC_RESOLVE /* not a slot: its names' refresh interval, or a resolution done (netresolve.c) */ };

struct process;
struct source {
	enum source_kind kind;
	struct process *proc; /* NULL: the supervisor's own (timer, wake) */
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
	uint8_t *frame; /* the Call as a whole frame, until sent */
	size_t frame_len;
	pb_call_done_fn done;
	void *userdata;
	double deadline; /* absolute; 0: none. Set from the host's timeout at start,
	                                   shortened by the policy's call-time when sent */
	double limit;    /* seconds the deadline allows, for messages */
	bool limit_is_policy;
	bool running;              /* sent to a worker */
	bool ghost;                /* stands in for a call that ended (timed out) while written
	                                   ahead to a worker: its answer is dropped, nobody is told */
	bool cancelled;            /* a ghost for a call the host cancelled (cancel.c): its
	                                   deadline is the grace the worker has to stop it */
	struct pb_host_call *host; /* the host call this call waits for, if any */
	pb_value *result;          /* once ended: one of these, until delivered */
	pb_error *err;
	struct call *next; /* in the plugin's queue */
	/* The id the host knows this call by when it is not `id`: a hook's
	 * (pb_hook_start_id) for the calls the hook makes; 0: `id` itself. */
	uint64_t origin;
	bool alone; /* PB_CALL_ALONE: nothing written ahead with it in the worker */
};

struct process {
	/* runtime.c: which plugin, which incarnation, what it runs under */
	struct plugin *plugin;
	const char *name; /* the plugin's */
	uint64_t generation;
	struct pb_spawned proc;
	enum proc_state state;
	struct pb_policy *policy; /* the operator's policy for this plugin */
	bool poll_ok;             /* its policy allows the poll(2) of Envelope.poll_us */
	bool learning;            /* compiled for `plugbox learn` (policy_rules.c) */
	bool stop_requested;      /* ended on purpose: not a crash */
	double state_deadline;    /* P_STARTING: Hello by then; P_STOPPING: SIGKILL then */
	double idle_since;

	/* channel.c: what it sent, read and judged */
	struct pb_frame_in in; /* its replies, read in bulk */
	struct line_buffer out, err;
	Plugbox__Envelope *hello;
	bool after_start;                          /* its @after-start rules are loaded (Hello came) */
	bool expect_listener;                      /* its filter has log verdicts */
	int notify_fd;                             /* seccomp user notifications, or -1 */
	unsigned nreports;                         /* reports and logged calls, for rate limiting */
	struct pb_meter meters[PB_STREAM_LOG + 1]; /* per pb_stream: lines and bytes a second */
	double drops_noted_at[PB_STREAM_LOG + 1];  /* when a stream's drops were last told */
	double drops_due;                          /* a drop note waits for its second until then (0: none) */
	double log_window;                         /* log records: when this second began, and how many */
	unsigned log_count;
	double read_stall_at; /* inside a frame: its next byte is due by then (0: between frames) */
	bool have_violation;
	int32_t violation_nr;
	uint32_t violation_arch;
	uint64_t violation_args[6];
	char *violation_traceback; /* the worker's claim, sanitised */
	pb_error_kind end_kind;    /* set when we decided to end it */
	char end_message[512];
	bool reaped;
	int wstatus;
	double cpu_used;      /* seconds of CPU it used, once reaped */
	uint64_t max_rss_kib; /* its peak resident memory, once reaped */

	/* outbox.c: what we write to it */
	struct pb_frame_out outbox; /* frames for it not yet taken by its pipe */
	int calls_keep_fd;          /* a read end of its calls pipe that we hold, so writing
	                                   never raises SIGPIPE (-1: none, mask it instead) */
	struct process *next_flush; /* on the supervisor's list of outboxes to write */
	bool flush_queued;
	double write_stall_at; /* frames queued to it: its pipe must take a byte by then (0: none) */

	/* inflight.c: the calls inside it */
	struct call *stack[PB_MAX_NESTING]; /* calls it runs, innermost last */
	size_t depth;
	/* Top-level calls written (or to be written) behind stack[0], oldest
	 * first: a ring. The last `unsent` are not in the outbox yet. */
	struct call *pipeline[PB_PIPELINE_MAX];
	unsigned pipe_head, pipe_count, unsent;
	double replied_at;   /* when its last top-level answer came */
	unsigned quick_gaps; /* next calls that came soon after an answer, in a row */

	/* loop.c: its descriptors in the epoll set, and the spin */
	struct source sources[SRC_COUNT];
	bool want_write; /* calls_fd registered for EPOLLOUT */
	bool cross_cpu;  /* it may run on another CPU than we do */
	double cpus_checked_at;
	struct process *next_dead; /* in the loop's graveyard */
	uint64_t side_round;       /* the last whole harvest that found its report socket,
	                              stdout or stderr readable (pb_supervisor.harvest) */

	/* netconnect.c: connects made for it under @network connect */
	struct pb_net_pending *net_pending;
	unsigned net_npending;
	struct pb_net_refresh *net_refresh; /* netresolve.c: its names resolved again */

	/* watch.c: the plugin directory it runs from */
	int dir_fd;    /* its plugin directory, flock'ed shared while it lives */
	int swap_fd;   /* PLUGINS/.plugbox/swap.lock, shared while it starts */
	dev_t dir_dev; /* which directory that is */
	ino_t dir_ino;
	bool outdated; /* the directory was replaced: no more calls for it */
	bool answered; /* it answered a top-level call (@fresh-per-call ends it then) */
};

struct plugin {
	char *name;
	uid_t uid; /* its workers' identity when we are root */
	/* Its workers, oldest first: at most its @replicas (capped by the
	 * supervisor's max_replicas), stopping ones included. They share the
	 * queue; each runs one top-level call at a time (runtime.c). */
	struct process *workers[PB_REPLICAS_MAX];
	unsigned nworkers;
	unsigned replicas;         /* @replicas of the policy its last worker started with (0: none yet) */
	bool replicas_noted;       /* the cap on its @replicas was said once */
	bool fresh_shared_scratch; /* @fresh-per-call workers that share a scratch: one at a time */
	uint64_t generations;
	struct call *queue_head, *queue_tail;
	size_t queued;
	bool keep_running; /* started eagerly: restart even without calls */
	unsigned waiters;  /* pb_describe calls waiting for its Hello */
	bool stop_requested;
	double crashes[32]; /* when its workers crashed, oldest first */
	unsigned ncrashes;
	double not_before;   /* backoff: no start before this */
	double failed_until; /* 0: not failed */
	char failed_reason[600];
	pb_error *start_error; /* why the last start failed (for describe) */
	double next_timer;     /* earliest deadline of its own; 0: none */
	/* Counted since the supervisor was made (stats.c). */
	uint64_t st_starts, st_restarts, st_crashes, st_violations, st_dropped, st_host_denied;
	double st_cpu_ended;      /* CPU seconds of its workers that have ended */
	uint64_t st_peak_rss_kib; /* the largest of theirs */
	bool st_last_crashed;     /* so the next start is a restart */
	struct pb_zygote *zygote; /* --spawn zygote: forks its workers (jail/zygote.h) */
	bool zygote_refused;      /* its zygote could not start: its workers are exec'd */
	bool zygote_full;         /* its zygote could not fork (said once) */
};

struct host_function {
	char *name;
	pb_host_fn fn;
	void *userdata;
};

struct pb_host_call {
	struct ready_link link;
	pb_supervisor *sup;
	struct call *call; /* the call waiting for it; NULL once that ended */
	char *plugin;
	uint64_t wire_id;
	Plugbox__Envelope *env; /* the HostCall, which owns the arguments */
	struct host_function fn;
	bool invoking; /* its function is on the stack now */
	bool answered;
	bool answering;  /* inside pb_host_call_return/fail */
	uint8_t *answer; /* the HostResult frame, until its call is innermost */
	size_t answer_len;
};

/* The per-plugin uids when the supervisor runs as root: jail/uids.h. */

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
	pb_log_fn log; /* records whole (output.c), or NULL: as lines to `output` */
	void *log_data;
	/* Lines with the call that produced them (pb_supervisor_set_call_output),
	 * or NULL: to `output`. */
	pb_call_output_fn call_output;
	void *call_output_data;
	/* hook.c: the origin the calls it starts now carry, and its live runs. */
	uint64_t call_origin;
	struct hook_run *hook_runs;
	/* The default output goes to the process's stderr writer
	 * (toolkit/sink.c), registered for EPOLLOUT while lines wait. */
	struct source sink_source;
	bool sink_watched;
	char message[512];
	char *policies_dir;
	struct pb_policy_cache *policy_cache; /* its plugins' policies, kept between starts */
	enum pb_compile_mode mode;
	struct pb_learned_call *learned; /* learn mode: distinct calls logged */
	size_t nlearned;

	struct plugin **plugins;
	size_t nplugins;
	int uid_lock_fd;              /* the plugin uids this supervisor holds (jail/uids.c), or -1 */
	struct plugin **plugin_index; /* by name (runtime.c), at most half full */
	size_t plugin_index_cap;
	uint64_t next_id;
	size_t calls_pending;
	struct host_function *functions;
	size_t nfunctions;

	/* start-up settings */
	pb_spawn_mode spawn_mode;
	struct pb_forkserver *forkserver; /* started on the first spawn that wants it */
	bool forkserver_refused;          /* it could not start: workers are exec'd */
	char *cache_dir;                  /* root of the bytecode caches, or NULL: none */
	bool cache_chosen;                /* set by pb_supervisor_set_bytecode_cache (else the default) */
	struct pb_cache_state *cache;     /* the caches in use and their builds (cache.c), made lazily */
	struct pb_discovery *discovery;   /* what the discovery scans read (discover.c), made lazily */

	/* lifecycle settings */
	double idle_timeout;
	unsigned max_replicas; /* caps every plugin's @replicas (PB_REPLICAS_DEFAULT_CAP) */
	unsigned max_crashes;
	double crash_window, backoff, backoff_max;
	bool shutting_down;
	double shutdown_deadline;

	/* the loop (loop.c) */
	int epoll_fd;
	int timer_fd;
	double timer_at; /* when it is armed for; 0: not */
	int wake_fd;     /* eventfd: readable while `ready` has items */
	bool wake_on;    /* wake_fd is readable */
	struct source timer_source, wake_source;
	int watch_fd; /* inotify on plugins_dir, or -1 (watch.c) */
	struct source watch_source;
	/* plugins installed, replaced, removed (changes.c) */
	struct known_dir *known; /* the plugin directories, by name, with their identity */
	size_t nknown;
	uint64_t generation; /* changes seen so far */
	pb_change_fn change_fn;
	void *change_data;
	pb_event_fn event_fn; /* stats.c */
	void *event_data;
	struct ready_link *ready_head, *ready_tail; /* callbacks to run, in order */
	struct process *graveyard;
	unsigned dispatch_depth;
	struct process *flush_head; /* workers whose outboxes wait to be written */
	/* the spin before sleeping (loop.c) */
	unsigned spin_misses; /* spins in a row that found nothing */
	unsigned spin_skip;   /* waits left before spinning is tried again */
	cpu_set_t cpus;       /* our affinity mask, as of cpus_checked_at */
	double cpus_checked_at;
	bool spin_cross; /* the worker last written to may run on another CPU */
	/* The batch of events being handled, numbered, when epoll_wait had
	 * room to spare (it then returned every descriptor ready at that
	 * moment); 0 outside a batch or after a full one. channel.c skips its
	 * catch-up poll(2) for a worker this harvest found nothing else on. */
	uint64_t harvest;
	uint64_t harvests;
};

#endif
