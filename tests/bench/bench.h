/* bench.h - shared pieces of plugbox's benchmark (tests/bench/): the run's
 * settings, the figures it records, and the helpers every section uses.
 *
 *   bench.c      main: options, placements (pinned / unpinned), the janitor
 *   report.c     figures, the targets table, tables, checks, bench.json
 *   util.c       clocks, statistics, child processes, files, PSS
 *   pingpong.c   the C pipe baselines (also linked into bench-filter)
 *   baselines.c  the Python baselines: multiprocessing.Pipe, bare starts,
 *                idle interpreters, the syscall loop unfiltered
 *   measure.c    plugbox calls: round trip, pipelined, CPU, syscall loop
 *   startup.c    plugbox starts: spawn, bytecode cache, idle PSS, 1000 alive
 *   serve.c      plugbox serve as a socket client sees it
 *   filter.c     bench-filter: the seccomp filter's own cost, in C
 */
#ifndef PB_BENCH_H
#define PB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <plugbox.h>

/* ---- the run ------------------------------------------------------------- */

enum placement { PL_PINNED,
	         PL_UNPINNED,
	         PL_COUNT };

enum section {
	S_ROUNDTRIP = 1u << 0,
	S_PIPELINED = 1u << 1,
	S_SPAWN = 1u << 2,
	S_PSS = 1u << 3,
	S_CPU = 1u << 4,
	S_SECCOMP = 1u << 5,
	S_ALIVE = 1u << 6,
	S_CONNECT = 1u << 7,
	S_SERVE = 1u << 8,
	S_ALL = (1u << 9) - 1,
};

struct bench_cfg {
	bool smoke;
	bool verbose;
	unsigned sections;         /* enum section bits */
	unsigned placements;       /* 1u << enum placement */
	int pin_cpu;               /* the CPU of the pinned placement */
	const char *worker;        /* plugbox-worker */
	const char *policies;      /* the shipped policies */
	const char *plugins_src;   /* tests/bench/plugins */
	const char *filter_helper; /* bench-filter */
	const char *mp_script;     /* mp_pingpong.py */
	const char *python3;       /* Debian's /usr/bin/python3 */
	const char *python311;     /* /usr/bin/python3.11 */
	const char *dist_packages; /* where requests and yaml come from */
	const char *json_path;
	char tmp[256]; /* this run's temporary directory */

	/* sample counts, set from smoke */
	size_t rt_samples, rt_warmup;
	size_t pipe_calls;
	size_t cpu_calls;
	size_t spawn_samples;    /* trivial plugin, bare python3.11 */
	size_t vendored_samples; /* the vendored plugin: 0.3-1 s each */
	bool vendored_unpinned;  /* also in the unpinned placement */
	size_t pss_workers;      /* fork-server workers (and alive in smoke) */
	size_t pss_exec_workers; /* exec workers, and idle python3.11 */
	size_t alive_plugins;
	size_t sys_n, sys_reps; /* syscalls per loop, loops */
};
extern struct bench_cfg cfg;
extern enum placement cur_placement;

/* ---- figures (report.c) -------------------------------------------------- */

/* Record a figure of the current placement. key is "section.name"; label is
 * what the table prints; unit is "us", "ms", "MB", "x", "/s", "s", "ns"... */
void fig(const char *key, const char *label, const char *unit, double value);
/* A ratio a / b as a figure (NAN when either is missing or b is 0). */
double fig_ratio(const char *key, const char *label, const char *a_key, const char *b_key);
/* A figure of a placement, NAN when it was not measured. */
double fig_get(enum placement pl, const char *key);
/* A note printed under the placement's table. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void report_table(enum placement pl);
/* Prints the checks; returns how many failed (only counted in smoke). */
int report_checks(bool enforce);
int report_json(const char *path, double elapsed_s);

/* ---- helpers (util.c) ---------------------------------------------------- */

uint64_t now_ns(void);
/* What this process has used: CPU, context switches (voluntary: it
 * blocked), and read-like and write-like syscalls (/proc/self/io). */
struct usage {
	double user_s, sys_s, vcsw, ivcsw, syscr, syscw;
};
void usage_now(struct usage *u);
/* *u = now - before. */
void usage_since(struct usage *u, const struct usage *before);
int cmp_double(const void *a, const void *b);
double median(double *v, size_t n);               /* sorts v */
double percentile(double *v, size_t n, double p); /* sorts v; p in [0,1] */
void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void *xcalloc(size_t n, size_t size);

/* fork + exec argv with stdin from /dev/null, stdout into out (NUL-ended,
 * at most cap - 1 bytes; NULL: /dev/null), stderr inherited unless quiet;
 * the child dies with this process. Returns the exit status (waitpid's
 * decoded: 0..255, or 128 + signal) or -1; *ms the wall time when not NULL. */
int run_cmd(char *const argv[], char *out, size_t cap, bool quiet, double *ms);
/* fork a child that dies with this process (PR_SET_PDEATHSIG); 0 in it. */
pid_t fork_child(void);
int rm_rf(const char *path);
/* Copy a file tree; __pycache__ directories are left out when skip_pycache. */
int copy_tree(const char *src, const char *dst, bool skip_pycache);
int write_file(const char *path, const char *text);
/* Pss of a process in kB (from /proc/PID/smaps_rollup), or -1; its Rss
 * and anonymous Pss into the others when not NULL. */
long pss_kb(pid_t pid, long *rss_kb, long *anon_kb);
/* A JSON number field of a one-line object: {"name": 1.5, ...}. NAN. */
double json_field(const char *json, const char *name);
/* Pin this process to one CPU, or restore the mask it started with. */
int set_placement(enum placement pl, int cpu);
int cpu_count_allowed(void);
int nth_allowed_cpu(int n);

/* ---- C pipe baselines (pingpong.c) --------------------------------------- */

#define PP_MSG 64

/* How both sides wait for a message: block at once (spin_us 0), or first
 * poll with non-blocking reads for spin_us, calling sched_yield() between
 * polls when yield (a peer on the same CPU then gets to run). */
struct pp_wait {
	int spin_us;
	bool yield;
};
#define PP_BLOCK ((struct pp_wait){ 0, false })

struct echo {
	pid_t pid;
	int to_child, from_child; /* the parent's ends */
	struct pp_wait wait;
};
/* The echo side: reads messages and writes them back. Batched: whatever
 * one read returns (up to 64 KiB) goes back in one write; otherwise one
 * PP_MSG-byte message per read and per write. setup runs in the child
 * first (loads a seccomp filter); cpu pins the child when >= 0. */
int echo_start(struct echo *e, struct pp_wait w, int cpu, bool batched, void (*setup)(void *), void *arg);
/* n timed round trips into samples (ns each); samples may be NULL. */
int echo_roundtrips(struct echo *e, size_t n, double *samples);
/* depth frames per batch, batched: one write and one read per batch;
 * otherwise one syscall per frame. Returns frames per second or -1. */
double echo_pipelined(struct echo *e, size_t frames, unsigned depth, bool batched);
void echo_stop(struct echo *e);

struct pp_result {
	double median_us, p99_us, mean_us;
	struct usage parent; /* the parent's, over the timed round trips */
	size_t n;
};
/* A whole ping-pong run: start, warm up, n timed round trips, stop. */
int pingpong(size_t n, size_t warmup, struct pp_wait w, int parent_cpu, int child_cpu, struct pp_result *out);

/* ---- sections ------------------------------------------------------------- */

void bench_baselines_roundtrip(void); /* baselines.c */
void bench_baselines_spawn(const char *deps_nopyc, const char *deps_pyc);
void bench_baselines_pss(size_t count);
void bench_baselines_sysloop(const char *loops_dir);

void bench_roundtrip(void); /* measure.c */
void bench_pipelined(void);
void bench_cpu(void);
void bench_seccomp(void);
void bench_connect(void); /* connect.c */
void bench_serve(void);   /* serve.c */

void bench_spawn(void); /* startup.c */
void bench_pss(void);
void bench_alive(void);

/* plugbox helpers shared by measure.c and startup.c (measure.c) */
pb_supervisor *sup_new(const char *plugins, pb_spawn_mode mode, const char *cache);
/* pb_call(plugin, "echo", x); 0 when it answered x. */
int call_echo(pb_supervisor *s, const char *plugin, int64_t x);
/* Counts the calls that ended and those that answered an int. */
struct tally {
	size_t done, ok;
};
void tally_done(void *userdata, uint64_t id, pb_value *result, pb_error *err);
/* Dispatch until every listed plugin is in state want (or failed); returns
 * how many got there; gives up after timeout_s. */
size_t wait_state(pb_supervisor *s, char **names, size_t n, const char *want, double timeout_s);
/* The plugins dir with COUNT copies of the echo plugin ("echo" when count
 * is 0, else echo0000...), made once per run under cfg.tmp. */
const char *echo_plugins(size_t count);
/* The plugins dir with the vendored plugin (deps without bytecode). */
const char *vendored_plugins(void);
const char *sysheavy_plugins(void);
/* The deps copied for the vendored plugin, and a second copy with
 * bytecode compiled by python3.11 (for the baselines). */
const char *vendored_deps(bool with_pyc);

#endif
