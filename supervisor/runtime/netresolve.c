/* netresolve.c - `@network connect`: a living worker's destination names
 * are resolved again every `@network refresh` (300 s unless the policy
 * says), so that a name that moves to another address is followed.
 *
 * getaddrinfo blocks, for as long as the resolver's timeouts allow (DNS:
 * seconds per server and attempt), and the event loop must not. So each
 * refresh runs in a thread of its own, on copies of the names: the thread
 * touches nothing but its job, and says it is done on an eventfd the loop
 * watches. A worker has at most one refresh in flight; the next interval
 * starts when it ends, so a resolver that hangs costs one sleeping thread
 * per worker, never a call. Threads rather than getaddrinfo_a: the same
 * threads, with the end seen on a descriptor of the loop's.
 *
 * When the answer comes (in the loop), each name that resolved takes its
 * new addresses, in the list the worker's connects are checked against
 * (w->policy) and in its /etc/hosts, a file of ours bound read-only there
 * (jail.h), rewritten in place: glibc reads /etc/hosts at every lookup, so
 * the worker's next lookup sees them. A name that no longer resolves
 * keeps the addresses it had (a resolver outage does not cut a worker
 * off), said in a note; a changed address is said in a note too. A
 * connect the supervisor is making meanwhile goes on to the address it
 * checked. A lookup in the worker racing the rewrite may read a mix of the
 * two texts once; what a connect may reach is decided by the list, never
 * by that file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "runtime/loop.h"
#include "runtime/netresolve.h"
#include "runtime/output.h"
#include "runtime/process.h"

/* One resolution: copies of the destinations, filled by the thread. */
struct job {
	atomic_int refs; /* the thread's and the loop's */
	int done_fd;     /* eventfd: written once, by the thread, when it is done */
	struct pb_dest *dests;
	size_t ndests;
	int result; /* pb_net_resolve_dests */
};

struct pb_net_refresh {
	struct source timer_src; /* SRC_RESOLVE: the interval is over */
	struct source done_src;  /* SRC_RESOLVE: a job is done */
	struct process *w;
	int timer_fd;
	struct job *job; /* in flight, or NULL */
	unsigned seconds;
};

static void job_unref(struct job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	for (size_t i = 0; i < j->ndests; i++) {
		free(j->dests[i].host);
		free(j->dests[i].addrs);
	}
	free(j->dests);
	if (j->done_fd >= 0)
		close(j->done_fd);
	free(j);
}

static void *job_run(void *arg)
{
	struct job *j = arg;
	uint64_t one = 1;

	j->result = pb_net_resolve_dests(j->dests, j->ndests);
	if (write(j->done_fd, &one, sizeof(one)) < 0) {
		/* an eventfd takes one write of 8 bytes: cannot fail here */
	}
	job_unref(j);
	return NULL;
}

static void arm(struct pb_net_refresh *r)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = r->seconds;
	timerfd_settime(r->timer_fd, 0, &its, NULL);
}

/* Copies of the names (literals need no resolving and are left out). */
static struct job *job_new(const struct pb_sandbox *sb)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	atomic_init(&j->refs, 1);
	j->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	j->dests = calloc(sb->ndests ? sb->ndests : 1, sizeof(*j->dests));
	if (j->done_fd < 0 || !j->dests) {
		job_unref(j);
		return NULL;
	}
	for (size_t i = 0; i < sb->ndests; i++) {
		struct pb_dest *d = &j->dests[j->ndests];
		if (pb_net_host_is_literal(sb->dests[i].host))
			continue;
		if (!(d->host = strdup(sb->dests[i].host))) {
			job_unref(j);
			return NULL;
		}
		d->port = sb->dests[i].port;
		d->where = sb->dests[i].where;
		j->ndests++;
	}
	return j;
}

static void start(pb_supervisor *s, struct pb_net_refresh *r)
{
	struct job *j = job_new(&r->w->policy->sandbox);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &r->done_src };
	pthread_attr_t attr;
	pthread_t t;
	int e = ENOMEM;

	if (!j)
		goto fail;
	if (j->ndests == 0) { /* nothing but literals */
		job_unref(j);
		return;
	}
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, j->done_fd, &ev) < 0) {
		e = errno;
		goto fail;
	}
	atomic_fetch_add(&j->refs, 1); /* the thread's */
	if ((e = pthread_attr_init(&attr)) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		/* getaddrinfo with NSS modules wants more than a minimum stack */
		pthread_attr_setstacksize(&attr, (size_t)256 * 1024);
		e = pthread_create(&t, &attr, job_run, j);
		pthread_attr_destroy(&attr);
	}
	if (e) {
		atomic_fetch_sub(&j->refs, 1);
		pb_loop_unwatch(s, j->done_fd);
		goto fail;
	}
	r->job = j;
	return;
fail:
	if (j)
		job_unref(j);
	pb_output_note(s, r->w, "@network connect: cannot resolve the names again now (%s); trying again in %us",
	               strerror(e), r->seconds);
	arm(r);
}

static bool has_addr(const struct pb_dest *d, const struct pb_net_addr *a)
{
	for (size_t i = 0; i < d->naddrs; i++)
		if (d->addrs[i].family == a->family && d->addrs[i].port == a->port &&
		    !memcmp(d->addrs[i].addr, a->addr, sizeof(a->addr)))
			return true;
	return false;
}

/* Every address of a is one of b's. */
static bool same_addrs(const struct pb_dest *a, const struct pb_dest *b)
{
	for (size_t i = 0; i < a->naddrs; i++)
		if (!has_addr(b, &a->addrs[i]))
			return false;
	return true;
}

static void list_addrs(const struct pb_dest *d, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t k = 0; k < d->naddrs && used < len; k++) {
		char text[PB_NET_ADDR_TEXT];
		int n = snprintf(buf + used, len - used, "%s%s", k ? " " : "",
		                 pb_net_addr_format(&d->addrs[k], text, sizeof(text)));
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* The job's addresses into the worker's list, then into its /etc/hosts. */
static void take(pb_supervisor *s, struct pb_net_refresh *r, struct job *j)
{
	struct pb_sandbox *sb = &r->w->policy->sandbox;
	bool changed = false;

	if (j->result < 0) {
		pb_output_note(s, r->w, "@network connect: resolving the names again ran out of memory; the "
		                        "addresses stay as they were");
		return;
	}
	for (size_t k = 0; k < j->ndests; k++) {
		struct pb_dest *nd = &j->dests[k], *d = NULL;
		char where[256], was[512], now[512];
		for (size_t i = 0; i < sb->ndests && !d; i++)
			if (sb->dests[i].port == nd->port && !strcmp(sb->dests[i].host, nd->host))
				d = &sb->dests[i];
		if (!d)
			continue;
		pb_where_format(&d->where, where, sizeof(where));
		if (nd->naddrs == 0) {
			pb_output_note(s, r->w, "@network connect %s:%u (%s): the name does not resolve now (%s); "
			                        "its addresses stay as they were",
			               d->host, (unsigned)d->port, where, nd->resolve_error ? nd->resolve_error : "?");
			continue;
		}
		if (same_addrs(d, nd) && same_addrs(nd, d))
			continue;
		list_addrs(d, was, sizeof(was));
		list_addrs(nd, now, sizeof(now));
		pb_output_note(s, r->w, "@network connect %s:%u (%s): the name now resolves to %s (was %s)", d->host,
		               (unsigned)d->port, where, now, *was ? was : "nothing");
		/* Swapped: the old addresses go with the job. */
		struct pb_net_addr *addrs = d->addrs;
		size_t naddrs = d->naddrs;
		d->addrs = nd->addrs;
		d->naddrs = nd->naddrs;
		d->resolve_error = NULL;
		nd->addrs = addrs;
		nd->naddrs = naddrs;
		changed = true;
	}
	if (changed)
		pb_netresolve_write_hosts(s, r->w);
}

void pb_netresolve_write_hosts(pb_supervisor *s, struct process *w)
{
	const char *path = w->proc.hosts_file;
	char *text;
	int fd, e = 0;

	if (!path)
		return; /* no mount tree: the worker sees no hosts file of ours */
	if (!(text = pb_net_hosts_text(&w->policy->sandbox))) {
		e = ENOMEM;
	} else if ((fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		e = errno;
	} else {
		/* In place: the worker's bind mount holds this inode. */
		size_t len = strlen(text);
		if (pwrite(fd, text, len, 0) != (ssize_t)len || ftruncate(fd, (off_t)len) < 0)
			e = errno ? errno : EIO;
		close(fd);
	}
	free(text);
	if (e)
		pb_output_note(s, w, "@network connect: cannot rewrite the worker's /etc/hosts (%s): %s; its "
		                     "lookups keep the old addresses, its connects are checked against the new",
		               path, strerror(e));
}

void pb_netresolve_event(pb_supervisor *s, struct source *src)
{
	struct pb_net_refresh *r;
	uint64_t v;

	if (src->proc == NULL)
		return;
	r = src->proc->net_refresh;
	if (!r || r->timer_fd < 0)
		return; /* its worker ended in this round */
	if (src == &r->timer_src) {
		if (read(r->timer_fd, &v, sizeof(v)) < 0) {
			/* spurious: nothing due */
		}
		if (!r->job)
			start(s, r);
		return;
	}
	struct job *j = r->job;
	if (!j || read(j->done_fd, &v, sizeof(v)) < 0)
		return; /* not yet */
	pb_loop_unwatch(s, j->done_fd);
	r->job = NULL;
	take(s, r, j);
	job_unref(j);
	arm(r);
}

int pb_netresolve_start(pb_supervisor *s, struct process *w)
{
	struct pb_net_refresh *r;
	struct epoll_event ev = { .events = EPOLLIN };

	if (w->policy->sandbox.network != PB_NETWORK_CONNECT || w->net_refresh)
		return 0;
	if (!(r = calloc(1, sizeof(*r))))
		return -ENOMEM;
	r->w = w;
	r->seconds = pb_net_refresh_seconds(&w->policy->sandbox);
	r->timer_src = (struct source){ .kind = SRC_RESOLVE, .proc = w };
	r->done_src = (struct source){ .kind = SRC_RESOLVE, .proc = w };
	r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ev.data.ptr = &r->timer_src;
	if (r->timer_fd < 0 || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, r->timer_fd, &ev) < 0) {
		int e = errno;
		if (r->timer_fd >= 0)
			close(r->timer_fd);
		free(r);
		return -e;
	}
	w->net_refresh = r;
	arm(r);
	return 0;
}

void pb_netresolve_release(pb_supervisor *s, struct process *w)
{
	struct pb_net_refresh *r = w->net_refresh;

	if (!r || r->timer_fd < 0)
		return;
	pb_loop_unwatch(s, r->timer_fd);
	close(r->timer_fd);
	r->timer_fd = -1;
	if (r->job) {
		/* The thread may still resolve: it frees the job if it is last. */
		pb_loop_unwatch(s, r->job->done_fd);
		job_unref(r->job);
		r->job = NULL;
	}
}

void pb_netresolve_free(struct process *w)
{
	struct pb_net_refresh *r = w->net_refresh;

	if (!r)
		return;
	if (r->timer_fd >= 0)
		close(r->timer_fd);
	if (r->job)
		job_unref(r->job);
	free(r);
	w->net_refresh = NULL;
}
