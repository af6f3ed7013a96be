/* pingpong.c - the floor plugbox is measured against: two C processes
 * echoing 64-byte messages over two pipes, with blocking reads or with a
 * short busy-poll before blocking, one message at a time or pipelined.
 * Also linked into bench-filter, whose echo side loads plugbox's filter.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define ECHO_BUF (64 * 1024)

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One read: with w->spin_us > 0 (fd non-blocking) poll with read() until
 * something arrives or spin_us has passed (yielding the CPU between polls
 * when w->yield), then block in poll(). */
static ssize_t spin_read(int fd, void *buf, size_t len, const struct pp_wait *w)
{
	uint64_t until = 0;

	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -1;
		if (until == 0)
			until = mono_ns() + (uint64_t)w->spin_us * 1000u;
		else if (mono_ns() > until) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			poll(&p, 1, -1);
		} else if (w->yield) {
			sched_yield();
		}
	}
}

static int read_full(int fd, void *buf, size_t len, const struct pp_wait *w)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = spin_read(fd, (char *)buf + got, len - got, w);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static void pin_to(int cpu)
{
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	sched_setaffinity(0, sizeof(one), &one);
}

static void echo_loop(int in, int out, const struct pp_wait *w, bool batched)
{
	static char buf[ECHO_BUF];

	for (;;) {
		ssize_t n;
		if (batched)
			n = spin_read(in, buf, sizeof(buf), w);
		else
			n = read_full(in, buf, PP_MSG, w) == 0 ? PP_MSG : 0;
		if (n <= 0 || write_full(out, buf, (size_t)n) < 0)
			_exit(0);
	}
}

int echo_start(struct echo *e, struct pp_wait w, int cpu, bool batched, void (*setup)(void *), void *arg)
{
	int down[2], up[2];
	pid_t parent = getpid();

	if (pipe2(down, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(up, O_CLOEXEC) < 0) {
		close(down[0]);
		close(down[1]);
		return -errno;
	}
	e->pid = fork();
	if (e->pid < 0)
		return -errno;
	if (e->pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(down[1]);
		close(up[0]);
		if (cpu >= 0)
			pin_to(cpu);
		if (w.spin_us > 0)
			fcntl(down[0], F_SETFL, O_NONBLOCK);
		if (setup)
			setup(arg);
		echo_loop(down[0], up[1], &w, batched);
		_exit(0);
	}
	close(down[0]);
	close(up[1]);
	e->to_child = down[1];
	e->from_child = up[0];
	e->wait = w;
	if (w.spin_us > 0)
		fcntl(e->from_child, F_SETFL, O_NONBLOCK);
	return 0;
}

int echo_roundtrips(struct echo *e, size_t n, double *samples)
{
	char msg[PP_MSG], reply[PP_MSG];

	memset(msg, 'x', sizeof(msg));
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = mono_ns();
		if (write_full(e->to_child, msg, sizeof(msg)) < 0 ||
		    read_full(e->from_child, reply, sizeof(reply), &e->wait) < 0)
			return -EIO;
		if (samples)
			samples[i] = (double)(mono_ns() - t0);
	}
	return 0;
}

double echo_pipelined(struct echo *e, size_t frames, unsigned depth, bool batched)
{
	size_t len = (size_t)depth * PP_MSG;
	char *out = malloc(len), *in = malloc(len);
	size_t done = 0;
	uint64_t t0;

	if (!out || !in || depth == 0) {
		free(out);
		free(in);
		return -1;
	}
	memset(out, 'y', len);
	t0 = mono_ns();
	while (done < frames) {
		if (batched) {
			if (write_full(e->to_child, out, len) < 0 || read_full(e->from_child, in, len, &e->wait) < 0)
				break;
		} else {
			unsigned i;
			for (i = 0; i < depth; i++)
				if (write_full(e->to_child, out + (size_t)i * PP_MSG, PP_MSG) < 0)
					break;
			for (i = 0; i < depth; i++)
				if (read_full(e->from_child, in + (size_t)i * PP_MSG, PP_MSG, &e->wait) < 0)
					break;
			if (i < depth)
				break;
		}
		done += depth;
	}
	double secs = (double)(mono_ns() - t0) / 1e9;
	free(out);
	free(in);
	return done < frames || secs <= 0 ? -1 : (double)done / secs;
}

void echo_stop(struct echo *e)
{
	int status;

	if (e->pid <= 0)
		return;
	close(e->to_child);
	close(e->from_child);
	/* An echo child forked later holds copies of this one's pipe ends. */
	kill(e->pid, SIGKILL);
	while (waitpid(e->pid, &status, 0) < 0 && errno == EINTR)
		;
	e->pid = 0;
}

int pingpong(size_t n, size_t warmup, struct pp_wait w, int parent_cpu, int child_cpu, struct pp_result *out)
{
	struct echo e;
	cpu_set_t saved;
	double *s = malloc((n ? n : 1) * sizeof(double)), sum = 0;
	struct usage before;
	int r;

	if (!s)
		return -ENOMEM;
	sched_getaffinity(0, sizeof(saved), &saved);
	if (parent_cpu >= 0)
		pin_to(parent_cpu);
	r = echo_start(&e, w, child_cpu, false, NULL, NULL);
	if (r == 0) {
		r = echo_roundtrips(&e, warmup, NULL);
		usage_now(&before);
		if (r == 0)
			r = echo_roundtrips(&e, n, s);
		usage_since(&out->parent, &before);
		echo_stop(&e);
	}
	sched_setaffinity(0, sizeof(saved), &saved);
	if (r == 0) {
		for (size_t i = 0; i < n; i++)
			sum += s[i];
		out->n = n;
		out->mean_us = sum / (double)n / 1e3;
		out->median_us = median(s, n) / 1e3;
		out->p99_us = percentile(s, n, 0.99) / 1e3;
	}
	free(s);
	return r;
}
