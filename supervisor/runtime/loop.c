/* loop.c - the supervisor's one event loop: no thread per worker.
 *
 * An epoll set holds every worker's descriptors (channel, output, report
 * socket, seccomp listener, pidfd for its exit), one timerfd armed at the
 * earliest deadline of any plugin, and an eventfd that stays readable while
 * user callbacks wait to run. The epoll descriptor itself is what a host's
 * own loop watches (pb_supervisor_get_fd).
 *
 * A dispatch round writes the frames waiting in outboxes (outbox.c), waits,
 * handles one batch of events (channel.c judges the bytes), then the timers
 * if one is due (runtime.c), then frees the processes that died during the
 * batch, and only then runs user callbacks, one at a time from the `ready`
 * FIFO, and writes what they queued. A callback may call back into the
 * supervisor (pb_call from a host function runs a nested round); nothing in
 * a round holds a pointer across a callback.
 *
 * The per-call system calls are few: the eventfd is only touched when work
 * appears outside a round (a round runs its callbacks anyway), and the
 * timerfd is re-armed only when a deadline comes earlier than the one it is
 * armed for (every call has a later one).
 *
 * Before sleeping while calls are outstanding, a round spins for up to
 * PB_SPIN_US, polling without blocking: on another CPU a worker answers
 * in microseconds, and waking us from sleep would cost tens. Spinning is
 * only tried when the worker may run on another CPU than we do (on the same
 * one, it only delays the worker), and backs off when it keeps finding
 * nothing.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "helpers/cache_build.h"
#include "runtime/cache.h"
#include "runtime/cache.h"
#include "runtime/channel.h"
#include "runtime/hostcall.h"
#include "runtime/loop.h"
#include "runtime/netconnect.h"
#include "runtime/netresolve.h"
#include "runtime/outbox.h"
#include "runtime/process.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"
#include "runtime/watch.h"

#define EVENTS_PER_ROUND 64

int pb_loop_init(pb_supervisor *s)
{
	struct epoll_event ev = { .events = EPOLLIN };

	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->epoll_fd < 0 || s->timer_fd < 0 || s->wake_fd < 0)
		return -errno;
	s->timer_source.proc = NULL;
	s->wake_source.proc = NULL;
	ev.data.ptr = &s->timer_source;
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->timer_fd, &ev) < 0)
		return -errno;
	ev.data.ptr = &s->wake_source;
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->wake_fd, &ev) < 0)
		return -errno;
	return 0;
}

void pb_loop_free(pb_supervisor *s)
{
	while (s->graveyard) {
		struct process *p = s->graveyard;
		s->graveyard = p->next_dead;
		pb_channel_free(s, p);
	}
	int *fds[] = { &s->epoll_fd, &s->timer_fd, &s->wake_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		int *fd = fds[i];
		if (*fd >= 0) {
			close(*fd);
			*fd = -1;
		}
	}
}

int pb_loop_watch(pb_supervisor *s, struct process *p, enum source_kind kind, int fd)
{
	struct epoll_event ev = { .events = kind == SRC_CALLS ? EPOLLOUT : EPOLLIN };

	p->sources[kind].kind = kind;
	p->sources[kind].proc = p;
	ev.data.ptr = &p->sources[kind];
	return epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

void pb_loop_unwatch(pb_supervisor *s, int fd)
{
	if (fd >= 0)
		epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

void pb_loop_want_write(pb_supervisor *s, struct process *p, bool want)
{
	if (p->want_write == want || p->proc.calls_fd < 0)
		return;
	if (want)
		pb_loop_watch(s, p, SRC_CALLS, p->proc.calls_fd);
	else
		pb_loop_unwatch(s, p->proc.calls_fd);
	p->want_write = want;
}

static void wake_set(pb_supervisor *s, bool on)
{
	uint64_t v = 1;

	if (on == s->wake_on)
		return;
	s->wake_on = on;
	if (on) {
		if (write(s->wake_fd, &v, sizeof(v)) < 0) {
			/* the counter is already non-zero: still readable */
		}
	} else if (read(s->wake_fd, &v, sizeof(v)) < 0) {
		/* already clear */
	}
}

void pb_loop_ready(pb_supervisor *s, struct ready_link *link)
{
	link->next = NULL;
	if (s->ready_tail)
		s->ready_tail->next = link;
	else
		s->ready_head = link;
	s->ready_tail = link;
	/* inside a round, the round runs it before it returns */
	if (s->dispatch_depth == 0)
		wake_set(s, true);
}

void pb_loop_bury(pb_supervisor *s, struct process *p)
{
	p->next_dead = s->graveyard;
	s->graveyard = p;
}

/* Arm timerfd `fd` to fire at `at` (monotonic seconds; 0: disarm). */
void pb_timerfd_at(int fd, double at)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (at > 0) {
		double left = at - pb_now();
		if (left < 1e-6)
			left = 1e-6;
		its.it_value.tv_sec = (time_t)left;
		its.it_value.tv_nsec = (long)((left - (double)(time_t)left) * 1e9);
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1000;
	}
	timerfd_settime(fd, 0, &its, NULL);
}

/* Have the timer fire by `at`, the earliest deadline (0: none). A timer
 * armed to fire earlier stays: the tick it causes finds nothing due and
 * arms it again. So a stream of calls, each with a deadline later than the
 * last, costs no timerfd_settime. */
static void arm_timer(pb_supervisor *s, double at, double now)
{
	if (s->timer_at > now && (at == 0 || s->timer_at <= at))
		return;
	if (at == 0) {
		s->timer_at = 0; /* it fired (one-shot): nothing is armed */
		return;
	}
	s->timer_at = at;
	pb_timerfd_at(s->timer_fd, at);
}

void pb_loop_timer_hint(pb_supervisor *s, double at)
{
	if (at > 0 && (s->timer_at == 0 || at < s->timer_at))
		arm_timer(s, at, pb_now());
}

bool pb_loop_cross_cpu(pb_supervisor *s, struct process *w)
{
	double now = pb_now();

	if (s->cpus_checked_at == 0 || now - s->cpus_checked_at > 0.1) {
		if (sched_getaffinity(0, sizeof(s->cpus), &s->cpus) < 0)
			CPU_ZERO(&s->cpus);
		s->cpus_checked_at = now;
	}
	if (w->cpus_checked_at == 0 || now - w->cpus_checked_at > 0.1) {
		cpu_set_t theirs;

		/* It started with our mask; the host may have moved either since. */
		if (sched_getaffinity(w->proc.pid, sizeof(theirs), &theirs) < 0)
			theirs = s->cpus;
		w->cross_cpu = CPU_COUNT(&s->cpus) != 1 || !CPU_EQUAL(&s->cpus, &theirs);
		w->cpus_checked_at = now;
	}
	return w->cross_cpu;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Spin before sleeping? Only with calls outstanding, when the worker last
 * written to may run on another CPU than ours, and not while recent spins
 * found nothing (then skip a doubling number of waits, up to 1024, before
 * trying again). */
static bool spin_worthwhile(pb_supervisor *s)
{
	if (s->calls_pending == 0 || !s->spin_cross)
		return false;
	if (s->spin_skip > 0) {
		s->spin_skip--;
		return false;
	}
	return true;
}

static int wait_events(pb_supervisor *s, struct epoll_event *events, int timeout_ms)
{
	if (timeout_ms != 0 && spin_worthwhile(s)) {
		double until = pb_now() + PB_SPIN_US / 1e6;

		do {
			int n = epoll_wait(s->epoll_fd, events, EVENTS_PER_ROUND, 0);
			if (n != 0) {
				if (n > 0)
					s->spin_misses = 0;
				return n;
			}
			for (int i = 0; i < 16; i++)
				cpu_relax();
		} while (pb_now() < until);
		if (++s->spin_misses >= 4) {
			unsigned shift = s->spin_misses - 4;
			s->spin_skip = 1u << (shift < 10 ? shift : 10);
		}
	}
	return epoll_wait(s->epoll_fd, events, EVENTS_PER_ROUND, timeout_ms);
}

void pb_loop_wake(pb_supervisor *s)
{
	wake_set(s, true);
}

/* Run the callbacks that are waiting; returns how many calls ended. */
static int run_ready(pb_supervisor *s)
{
	int ended = 0;

	while (s->ready_head) {
		struct ready_link *link = s->ready_head;
		s->ready_head = link->next;
		if (!s->ready_head)
			s->ready_tail = NULL;
		if (link->is_host) {
			pb_host_call_invoke(s, (struct pb_host_call *)link);
			continue;
		}
		struct call *c = (struct call *)link;
		if (c->ghost) {
			/* its call ended long ago; this is the worker's late answer */
			pb_call_free(c);
			continue;
		}
		pb_value *result = c->result;
		pb_error *err = c->err;
		pb_call_done_fn done = c->done;
		void *userdata = c->userdata;
		uint64_t id = c->id;
		c->result = NULL;
		c->err = NULL;
		pb_call_free(c);
		s->calls_pending--;
		ended++;
		done(userdata, id, result, err);
	}
	return ended;
}

PB_API int pb_supervisor_dispatch(pb_supervisor *s, int timeout_ms)
{
	struct epoll_event events[EVENTS_PER_ROUND];
	int n, ended = 0;
	double now;

	s->dispatch_depth++;
	pb_outbox_flush_all(s);
	/* Callbacks left from a round that a callback interrupted come first. */
	if (s->ready_head)
		timeout_ms = 0;
	n = wait_events(s, events, timeout_ms);
	if (n < 0 && errno != EINTR) {
		s->dispatch_depth--;
		return -errno;
	}
	/* Which workers have reports or output waiting, as of this harvest:
	 * with level-triggered epoll and room to spare, a descriptor that
	 * became readable before the answer did is in the same batch
	 * (channel.c's catch_up). The kernel's one gap: a write made while
	 * epoll_wait scans its ready list waits for the next call, so output
	 * and an answer both written inside that scan (well under a
	 * microsecond; the worker runs its Python return, packs and writes
	 * between the two) could be seen answer first. It would cost only
	 * that worker the order of its own lines against its answer. */
	uint64_t outer = s->harvest;
	s->harvest = n > 0 && n < EVENTS_PER_ROUND ? ++s->harvests : 0;
	for (int i = 0; s->harvest && i < n; i++) {
		const struct source *src = events[i].data.ptr;
		if (src->proc && (src->kind == SRC_REPORT || src->kind == SRC_STDOUT || src->kind == SRC_STDERR))
			src->proc->side_round = s->harvest;
	}
	for (int i = 0; i < n; i++) {
		struct source *src = events[i].data.ptr;
		if (src == &s->timer_source) {
			uint64_t expirations;
			if (read(s->timer_fd, &expirations, sizeof(expirations)) < 0) {
				/* spurious: the tick below looks at the clock anyway */
			}
			continue;
		}
		if (src == &s->watch_source) {
			pb_watch_drain(s);
			continue;
		}
		if (src == &s->wake_source)
			continue; /* cleared below, once the round has done the work */
		if (src == &s->sink_source) {
			pb_supervisor_sink_event(s);
			continue;
		}
		if (src->kind == SRC_CACHE) {
			pb_cache_event(s, src);
			continue;
		}
		if (src->kind == SRC_CONNECT) {
			pb_netconnect_event(s, src);
			continue;
		}
		if (src->kind == SRC_RESOLVE) {
			pb_netresolve_event(s, src);
			continue;
		}
		pb_channel_event(s, src->proc, src->kind, events[i].events);
	}
	s->harvest = outer;
	/* The timer is armed at or before every plugin's next deadline. */
	now = pb_now();
	if (s->timer_at > 0 && now >= s->timer_at)
		arm_timer(s, pb_runtime_tick(s, now), pb_now());
	/* Nothing in this round points at the dead any more. */
	while (s->graveyard) {
		struct process *p = s->graveyard;
		s->graveyard = p->next_dead;
		pb_channel_free(s, p);
	}
	/* Writing may end calls (a plugin found replaced cannot start): their
	 * callbacks run in this round too. */
	do {
		ended += run_ready(s);
		pb_outbox_flush_all(s);
	} while (s->ready_head);
	wake_set(s, false);
	s->dispatch_depth--;
	return ended;
}

PB_API int pb_supervisor_get_fd(const pb_supervisor *s)
{
	return s->epoll_fd;
}

PB_API size_t pb_supervisor_calls_pending(const pb_supervisor *s)
{
	return s->calls_pending;
}
