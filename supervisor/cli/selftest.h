/* selftest.h - the parts of `plugbox selftest` (plugbox_selftest.c): the
 * probes' manifest (selftest_manifest.c) and the targets they attack
 * (selftest_fixtures.c). */
#ifndef PLUGBOX_CLI_SELFTEST_H
#define PLUGBOX_CLI_SELFTEST_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/un.h>

enum { MAX_PROBES = 256,
       HOW_MAX = 1024,
       DEFAULT_TIMEOUT = 3 };
enum { EXIT_NOT_CONTAINED = 1 };

/* The outcomes probes.txt may accept. */
enum {
	EXPECT_RESULT = 1,   /* attack() returned, saying contained */
	EXPECT_KILLED = 2,   /* the sandbox stopped the worker */
	EXPECT_DEADLINE = 4, /* the call was ended at its deadline */
	EXPECT_LIMIT = 8,    /* a resource limit held (a result, or the worker died of it) */
	EXPECT_OUTPUT = 16,  /* attack() returned, and its output reached us bounded and clean */
};

/* What the runner lets an "output" probe's plugin send to the output
 * function: the supervisor's 1000 lines a second per stream (stdout,
 * stderr, notes, log lines) for each second the call took, plus one
 * second's burst, with room for the drop notes. */
#define OUTPUT_LINES_PER_SECOND_PER_STREAM 1000ul
#define OUTPUT_STREAMS 4ul

struct probe {
	const char *dir; /* the plugins directory that holds it */
	bool operator;   /* from --probes DIR */
	char name[64];
	char layer[16];
	unsigned expect;
	char attempt[200];
	/* the verdict */
	bool contained, sibling_ok, unavailable;
	char how[HOW_MAX];
};

/* The targets the probes attack, made fresh in a mkdtemp directory. */
struct fixtures {
	char dir[PATH_MAX / 2];
	char secret[PATH_MAX], write_dir[PATH_MAX];
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char abstract_name[64];
	char token[64]; /* the secret's content */
	int tcp, udp, unix_fd, abstract_fd, leaked;
	int tcp_port, udp_port;
	bool made; /* dir exists: remove it at the end */
	/* The connect_* probes run under `@network connect` to this listener
	 * only (net_policies: the operator's policies, default.policy
	 * including theirs and adding the line); tcp stays forbidden. */
	int tcp_ok, tcp_ok_port;
	char net_policies[PATH_MAX];
	bool net_made;
};

/* probes.txt: NAME LAYER EXPECT ATTEMPT..., '#' comments, appended to
 * probes[n..]. Errors name the line; returns the new number of probes, or
 * -1. An operator's probe must be a directory of DIR. */
int pb_selftest_load_manifest(const char *dir, struct probe *probes, int n, bool operator);

/* Make the targets (step: what failed), look at them after a probe, and
 * remove them. */
int pb_selftest_fixtures_open(struct fixtures *f, const char **step);
void pb_selftest_fixtures_check(const struct fixtures *f, sig_atomic_t urgent_before, char *why, size_t len);
void pb_selftest_fixtures_close(struct fixtures *f);
/* f->net_policies: a copy of the operator's policies (from `from`) in
 * which default.policy is renamed operator-default.policy and a new
 * default.policy includes it and adds `@network connect` to tcp_ok. */
int pb_selftest_net_policies(struct fixtures *f, const char *from);
/* The token's copy in this process's memory, and the SIGURGs counted. */
const char *pb_selftest_marker(void);
sig_atomic_t pb_selftest_urgent(void);
/* Count SIGURG from now on (kill_supervisor's signal). */
int pb_selftest_count_sigurg(void);
/* The pid of this process's worker for plugin NAME, or -1. */
pid_t pb_selftest_find_worker_pid(const char *name);

#endif
