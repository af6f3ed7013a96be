/* filter_check.c - are a worker's @after-start rules really in force?
 *
 * The worker loads its @after-start programs after the plugin's import-time
 * code has run, and that code can do anything the process can: load a
 * filter of its own that answers every later seccomp() with success, or
 * rewrite the programs before they are loaded. No filter can tell the
 * worker's seccomp() from the plugin's, so the check is made from outside,
 * when the worker says Hello: as root, PTRACE_SECCOMP_GET_FILTER reads the
 * filter chain of every thread, which must begin (newest first) with
 * exactly the programs the policy compiles to: the @after-start ones, then
 * the start-up ones. Anything older (a container runtime's filter) may
 * follow. Every thread is stopped before any is read, and new threads are
 * looked for until none appears, so none is left out.
 *
 * Without CAP_SYS_ADMIN (an unprivileged supervisor), or on a kernel
 * without the request, the chain cannot be read: the worker's layers say
 * that its @after-start rules were not verified (plugbox.policy(5)).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/protocol.h"
#include "runtime/filter_check.h"

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif

/* How long all the worker's threads together may take to stop for the
 * check before the worker is refused (a thread that cannot be stopped
 * cannot be checked). One budget for the whole check, not one per thread:
 * the check runs in the supervisor's loop, so 64 slow threads must not
 * hold every other plugin up for 64 times as long. */
#define STOP_WAIT_MS 2000
/* More filters than a chain can hold (32768 instructions in all). */
#define MAX_FILTERS 8192

struct program {
	const struct sock_filter *insns;
	uint32_t count;
};

struct stopped {
	pid_t *tids;
	size_t n, cap;
};

/* The blob's programs in the order they were loaded, oldest first as the
 * kernel numbers them: the start-up ones, then the @after-start ones. */
static int expected_chain(const uint8_t *blob, size_t len, struct program **out, size_t *n)
{
	struct program *all = calloc(len / (4 + sizeof(struct sock_filter)) + 1, sizeof(*all));
	struct program *chain;
	bool *after;
	size_t count = 0, k = 0;

	if (!all)
		return -ENOMEM;
	after = calloc(len / (4 + sizeof(struct sock_filter)) + 1, sizeof(*after));
	chain = calloc(len / (4 + sizeof(struct sock_filter)) + 1, sizeof(*chain));
	if (!after || !chain) {
		free(all);
		free(after);
		free(chain);
		return -ENOMEM;
	}
	for (size_t off = 0; off + 4 <= len;) {
		uint32_t header = (uint32_t)blob[off] | (uint32_t)blob[off + 1] << 8 | (uint32_t)blob[off + 2] << 16 |
		                  (uint32_t)blob[off + 3] << 24;
		all[count].count = header & PB_PROG_COUNT_MASK;
		all[count].insns = (const struct sock_filter *)(blob + off + 4);
		after[count++] = (header & PB_PROG_AFTER_START) != 0;
		off += 4 + all[count - 1].count * sizeof(struct sock_filter);
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < count; i++)
			if (after[i] == (pass == 1))
				chain[k++] = all[i];
	free(all);
	free(after);
	*out = chain;
	*n = k;
	return 0;
}

static bool is_stopped(const struct stopped *st, pid_t tid)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->tids[i] == tid)
			return true;
	return false;
}

/* Seize tid and wait until it stops, taking from *budget_ms. 0, 1 when it
 * is gone already, or a negative errno. */
static int stop_thread(pid_t tid, int *budget_ms)
{
	int status;

	if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) < 0)
		return errno == ESRCH ? 1 : -errno;
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0)
		return errno == ESRCH ? 1 : -errno;
	for (; *budget_ms > 0; --*budget_ms) {
		pid_t r = waitpid(tid, &status, __WALL | WNOHANG);
		if (r == tid)
			return WIFSTOPPED(status) ? 0 : 1;
		if (r < 0 && errno != EINTR)
			return -errno;
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	return -ETIMEDOUT;
}

/* Stop every thread of pid, including those started while we looked. */
static int stop_all(pid_t pid, struct stopped *st)
{
	char dir[64];
	bool found = true;
	int budget_ms = STOP_WAIT_MS;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	while (found) {
		DIR *d = opendir(dir);
		struct dirent *e;

		if (!d)
			return -errno;
		found = false;
		while ((e = readdir(d))) {
			char *end;
			long id = strtol(e->d_name, &end, 10);
			pid_t tid = *end ? 0 : (pid_t)id;
			if (tid <= 0 || is_stopped(st, tid))
				continue;
			if (st->n == st->cap) {
				size_t cap = st->cap ? st->cap * 2 : 16;
				pid_t *grown = realloc(st->tids, cap * sizeof(*grown));
				if (!grown) {
					closedir(d);
					return -ENOMEM;
				}
				st->tids = grown;
				st->cap = cap;
			}
			int r = stop_thread(tid, &budget_ms);
			if (r < 0) {
				closedir(d);
				return r;
			}
			if (r == 0) {
				st->tids[st->n++] = tid;
				found = true;
			}
		}
		closedir(d);
	}
	return 0;
}

/* Filter `index` of tid (0: the oldest) into buf, or with buf NULL only
 * its length; -1 with errno ENOENT past the newest. The raw call takes the
 * index as a number, where glibc's wrapper wants a pointer. */
static long get_filter(pid_t tid, size_t index, struct sock_filter *buf)
{
	return syscall(SYS_ptrace, (long)PTRACE_SECCOMP_GET_FILTER, (long)tid, (unsigned long)index, buf);
}

/* 0 when tid's newest filters are `chain` (oldest first); -EBADMSG when
 * they are not; another negative errno when they cannot be read. The
 * kernel numbers a thread's filters from the oldest, 0. */
static int check_thread(pid_t tid, const struct program *chain, size_t n, char *why, size_t why_len)
{
	/* Zeroed: memcheck cannot see the kernel fill it through ptrace. */
	struct sock_filter *buf = calloc(BPF_MAXINSNS, sizeof(*buf));
	size_t total = 0;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	/* How many: ENOENT past the newest (the kernel allows at most 32768
	 * instructions in a chain, so the count is bounded). */
	while (total < MAX_FILTERS && get_filter(tid, total, NULL) >= 0)
		total++;
	if (total == 0 && errno != ENOENT)
		r = -errno;
	for (size_t i = 0; r == 0 && i < n; i++) {
		long got = total >= n ? get_filter(tid, total - n + i, buf) : -1;
		if (got < 0 || (uint32_t)got != chain[i].count ||
		    memcmp(buf, chain[i].insns, chain[i].count * sizeof(*buf)) != 0) {
			snprintf(why, why_len, "the %zu seccomp filters of thread %d do not end with the policy's %zu "
			                       "programs: something in the worker loaded a filter of its own, or altered the "
			                       "policy's, before its @after-start rules were loaded",
			         total, (int)tid, n);
			r = -EBADMSG;
		}
	}
	free(buf);
	return r;
}

int pb_filter_check(pid_t pid, const uint8_t *blob, size_t len, char *why, size_t why_len)
{
	struct stopped st = { 0 };
	struct program *chain = NULL;
	size_t n = 0;
	int r;

	*why = '\0';
	if (geteuid() != 0) {
		snprintf(why, why_len, "reading a worker's seccomp filters needs root");
		return -EPERM;
	}
	if ((r = expected_chain(blob, len, &chain, &n)) < 0) {
		snprintf(why, why_len, "out of memory");
		return r;
	}
	r = stop_all(pid, &st);
	if (r == -ETIMEDOUT)
		snprintf(why, why_len, "a thread of the worker did not stop to have its seccomp filters checked");
	else if (r < 0)
		snprintf(why, why_len, "cannot stop the worker to read its seccomp filters: %s", strerror(-r));
	for (size_t i = 0; r == 0 && i < st.n; i++)
		r = check_thread(st.tids[i], chain, n, why, why_len);
	if (r < 0 && r != -EBADMSG && r != -ETIMEDOUT && !*why)
		snprintf(why, why_len, "cannot read the worker's seccomp filters: %s", strerror(-r));
	for (size_t i = 0; i < st.n; i++)
		ptrace(PTRACE_DETACH, st.tids[i], NULL, NULL);
	free(st.tids);
	free(chain);
	return r;
}
