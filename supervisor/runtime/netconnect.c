/* netconnect.c - `@network connect`: the supervisor makes a worker's TCP
 * connections, to the policy's destinations only.
 *
 * The worker stays in its empty network namespace. Its filter sends every
 * connect(2) here as a seccomp user notification (policy_rules.c), and
 * this file answers it:
 *
 *   1. read the address ONCE from the worker's memory (process_vm_readv),
 *      then check the notification is still alive (SECCOMP_IOCTL_NOTIF_ID_VALID),
 *      so the pid read was the caller's and not a recycled one;
 *   2. look at the worker's descriptor through a copy (pidfd_getfd): it must
 *      be an unconnected IPv4/IPv6 TCP socket of the address's family;
 *   3. check the address against the destinations (policy_net.c; an
 *      IPv4-mapped IPv6 address is judged as the IPv4 address it maps);
 *   4. connect a socket of our own, in our own namespace, non-blocking, to
 *      the very bytes that were read and checked: a thread that rewrites
 *      the address meanwhile changes nothing (no time-of-check to
 *      time-of-use gap, unlike checking and then letting the call go on);
 *   5. when it is connected, put it in place of the worker's descriptor
 *      (SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SETFD, as dup2
 *      would) and answer the connect with 0.
 *
 * SECCOMP_ADDFD_FLAG_SEND is not used: it makes the installed descriptor's
 * number the syscall's return value, which is right for an open(2) and
 * wrong for a connect(2), which must return 0. The worker's thread waits in
 * connect until the answer, so nothing of it sees the descriptor between
 * the two ioctls but its other threads, which see a connected socket.
 *
 * What the worker gets: a connected TCP socket (close-on-exec, its
 * O_NONBLOCK as the worker's socket had it, TCP_NODELAY and SO_KEEPALIVE
 * copied; other options set before connect are not). A non-blocking
 * connect returns 0 at once connected, not EINPROGRESS: a caller that
 * handles EINPROGRESS handles 0 too (asyncio, urllib3, the socket module).
 *
 * Refused, the connect fails with ECONNREFUSED and a note names the plugin,
 * the address and the @network line: metered as the other notes are.
 * Bounded: at most PB_NET_PENDING_MAX connects of one worker wait for the
 * network at once (the rest fail with EAGAIN, said in a note), and each
 * has PB_NET_CONNECT_TIMEOUT_MS (TCP_USER_TIMEOUT bounds SYN retries, so
 * the kernel ends it). A connect in progress is one more descriptor in the
 * event loop (SRC_CONNECT): nothing here blocks the loop.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/channel.h"
#include "runtime/loop.h"
#include "runtime/netconnect.h"
#include "runtime/netresolve.h"
#include "runtime/output.h"
#include "runtime/process.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd for a thread, not only a leader */
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

struct pb_net_pending {
	struct source src; /* SRC_CONNECT: first, the loop hands us this */
	struct pb_net_pending *next;
	struct process *w;
	int sock;    /* ours, connecting; -1 once over */
	uint64_t id; /* the worker's notification */
	int target;  /* the worker's descriptor number */
	bool nonblock;
	struct pb_net_addr addr;
};

static void answer(struct process *w, uint64_t id, int err)
{
	struct seccomp_notif_resp resp;

	if (w->notify_fd < 0)
		return;
	memset(&resp, 0, sizeof(resp));
	resp.id = id;
	resp.error = -err;
	/* ENOENT: the caller is gone (killed, or a signal interrupted it) */
	if (ioctl(w->notify_fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0) {
	}
}

static void where_of(const struct process *w, const struct pb_dest *d, char *buf, size_t len)
{
	pb_where_format(d ? &d->where : &w->policy->sandbox.network_where, buf, len);
}

/* Refused: ECONNREFUSED (or err) in the plugin, a note for the host. */
static void refuse(pb_supervisor *s, struct process *w, uint64_t id, int err, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
static void refuse(pb_supervisor *s, struct process *w, uint64_t id, int err, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	answer(w, id, err);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pb_output_note(s, w, "%s", line);
}

/* Ours is connected (or failed): in place of the worker's descriptor. */
static void finish(pb_supervisor *s, struct process *w, uint64_t id, int target, int sock, bool nonblock,
                   const struct pb_net_addr *addr)
{
	int soerr = 0, zero = 0;
	socklen_t l = sizeof(soerr);
	char text[PB_NET_ADDR_TEXT];

	if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0)
		soerr = errno;
	if (soerr) {
		answer(w, id, soerr);
		if (soerr == ETIMEDOUT)
			pb_output_note(s, w, "connect to %s timed out after %d ms", pb_net_addr_format(addr, text, sizeof(text)),
			               PB_NET_CONNECT_TIMEOUT_MS);
		return;
	}
	setsockopt(sock, IPPROTO_TCP, TCP_USER_TIMEOUT, &zero, sizeof(zero));
	if (!nonblock) {
		int fl = fcntl(sock, F_GETFL);
		if (fl >= 0)
			fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
	}
	struct seccomp_notif_addfd add;
	memset(&add, 0, sizeof(add));
	add.id = id;
	add.flags = SECCOMP_ADDFD_FLAG_SETFD;
	add.srcfd = (uint32_t)sock;
	add.newfd = (uint32_t)target;
	add.newfd_flags = O_CLOEXEC;
	if (ioctl(w->notify_fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
		int e = errno;
		if (e != ENOENT) /* ENOENT: the caller is gone */
			answer(w, id, e == EBADF ? EMFILE : e);
		return;
	}
	answer(w, id, 0);
}

static void pending_end(pb_supervisor *s, struct pb_net_pending *p)
{
	if (p->sock >= 0) {
		pb_loop_unwatch(s, p->sock);
		close(p->sock);
		p->sock = -1;
	}
}

void pb_netconnect_event(pb_supervisor *s, struct source *src)
{
	struct pb_net_pending *p = (struct pb_net_pending *)src, **link;
	struct process *w = p->w;

	if (p->sock < 0)
		return; /* its worker ended in this round */
	if (w->notify_fd >= 0)
		finish(s, w, p->id, p->target, p->sock, p->nonblock, &p->addr);
	pending_end(s, p);
	for (link = &w->net_pending; *link; link = &(*link)->next)
		if (*link == p) {
			*link = p->next;
			break;
		}
	w->net_npending--;
	free(p);
}

/* The worker's descriptor `fd` as a TCP socket we may replace: 0, or the
 * errno its connect gets. *family: the socket's. */
static int inspect_socket(pid_t pid, uint64_t id, int notify_fd, int fd, int *family, bool *nonblock,
                          int *nodelay, int *keepalive)
{
	int pidfd, copy, type = 0, proto = 0, fl;
	socklen_t l = sizeof(int);
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);

	pidfd = (int)syscall(SYS_pidfd_open, pid, PIDFD_THREAD);
	if (pidfd < 0)
		return errno == ESRCH ? ESRCH : EACCES;
	/* The pid was the caller's when the notification came; still? */
	if (ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) < 0) {
		close(pidfd);
		return ESRCH;
	}
	copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	if (copy < 0)
		return errno == EBADF ? EBADF : EACCES;
	fcntl(copy, F_SETFD, FD_CLOEXEC);
	int r = 0;
	if (getsockopt(copy, SOL_SOCKET, SO_DOMAIN, family, &l) < 0)
		r = errno == ENOTSOCK ? ENOTSOCK : EACCES;
	else if ((l = sizeof(int), getsockopt(copy, SOL_SOCKET, SO_TYPE, &type, &l)) < 0 ||
	         (l = sizeof(int), getsockopt(copy, SOL_SOCKET, SO_PROTOCOL, &proto, &l)) < 0)
		r = EACCES;
	else if ((*family != AF_INET && *family != AF_INET6) || type != SOCK_STREAM || proto != IPPROTO_TCP)
		r = EPROTOTYPE; /* said as "not a TCP socket" by the caller */
	else if (getpeername(copy, (struct sockaddr *)&peer, &pl) == 0)
		r = EISCONN;
	if (r == 0) {
		fl = fcntl(copy, F_GETFL);
		*nonblock = fl >= 0 && (fl & O_NONBLOCK);
		l = sizeof(int);
		if (getsockopt(copy, IPPROTO_TCP, TCP_NODELAY, nodelay, &l) < 0)
			*nodelay = 0;
		l = sizeof(int);
		if (getsockopt(copy, SOL_SOCKET, SO_KEEPALIVE, keepalive, &l) < 0)
			*keepalive = 0;
	}
	close(copy);
	return r;
}

void pb_netconnect_notified(pb_supervisor *s, struct process *w, const struct seccomp_notif *req)
{
	const struct pb_sandbox *sb = &w->policy->sandbox;
	int fd = (int)req->data.args[0];
	uint32_t alen = (uint32_t)req->data.args[2];
	uint8_t buf[sizeof(struct sockaddr_storage)];
	struct pb_net_addr addr;
	char text[PB_NET_ADDR_TEXT], where[256];
	int family = 0, nodelay = 0, keepalive = 0, r;
	bool nonblock = false;
	sa_family_t wrote;

	where_of(w, NULL, where, sizeof(where));
	if (w->net_npending >= PB_NET_PENDING_MAX) {
		refuse(s, w, req->id, EAGAIN, "refused a connect: %d connects of this plugin are already waiting "
		                              "for the network",
		       PB_NET_PENDING_MAX);
		return;
	}
	if (alen > sizeof(buf)) {           /* a negative int too, as the kernel reads it */
		answer(w, req->id, EINVAL); /* as the kernel would */
		return;
	}
	/* The one read of the address: what is checked below is what we connect. */
	struct iovec local = { buf, alen }, remote = { NULL, alen };
	/* an address in the worker, never dereferenced here: copied bytewise */
	memcpy(&remote.iov_base, &req->data.args[1], sizeof(remote.iov_base));
	ssize_t n = alen ? process_vm_readv((pid_t)req->pid, &local, 1, &remote, 1, 0) : 0;
	if (n < 0 && errno != EFAULT) {
		refuse(s, w, req->id, EACCES, "refused a connect: cannot read its address from the worker: %s",
		       strerror(errno));
		return;
	}
	if (ioctl(w->notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0)
		return; /* gone: what we read may be another process's */
	if (n != (ssize_t)alen) {
		answer(w, req->id, EFAULT);
		return;
	}
	r = pb_net_addr_parse(buf, alen, &addr);
	if (r == -EAFNOSUPPORT) {
		memcpy(&wrote, buf, sizeof(wrote));
		refuse(s, w, req->id, EACCES, "denied connect to an address of family %u: @network connect (%s) "
		                              "reaches TCP destinations only",
		       (unsigned)wrote, where);
		return;
	}
	if (r < 0) {
		answer(w, req->id, EINVAL);
		return;
	}
	memcpy(&wrote, buf, sizeof(wrote));
	pb_net_addr_format(&addr, text, sizeof(text));
	r = inspect_socket((pid_t)req->pid, req->id, w->notify_fd, fd, &family, &nonblock, &nodelay, &keepalive);
	if (r == ESRCH)
		return;
	if (r == EPROTOTYPE) {
		refuse(s, w, req->id, EACCES, "denied connect to %s on a socket that is not TCP: @network connect "
		                              "(%s) reaches TCP destinations only",
		       text, where);
		return;
	}
	if (r == EACCES) {
		refuse(s, w, req->id, EACCES, "refused connect to %s: cannot look at the worker's socket", text);
		return;
	}
	if (r) {
		answer(w, req->id, r); /* EBADF, ENOTSOCK, EISCONN: as the kernel would */
		return;
	}
	if (family != wrote) {
		answer(w, req->id, EAFNOSUPPORT);
		return;
	}
	const struct pb_dest *d = pb_net_allowed(sb, &addr);
	if (!d) {
		refuse(s, w, req->id, ECONNREFUSED, "refused connect to %s: not a destination of @network connect (%s)",
		       text, where);
		return;
	}

	int sock = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (sock < 0) {
		int e = errno;
		refuse(s, w, req->id, e, "could not connect to %s for the plugin: socket: %s", text, strerror(e));
		return;
	}
	int timeout = PB_NET_CONNECT_TIMEOUT_MS;
	setsockopt(sock, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof(timeout));
	if (nodelay)
		setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay));
	if (keepalive)
		setsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, &keepalive, sizeof(keepalive));
	if (connect(sock, (const struct sockaddr *)buf, alen) == 0) {
		finish(s, w, req->id, fd, sock, nonblock, &addr);
		close(sock);
		return;
	}
	if (errno != EINPROGRESS) {
		answer(w, req->id, errno);
		close(sock);
		return;
	}
	struct pb_net_pending *p = calloc(1, sizeof(*p));
	struct epoll_event ev = { .events = EPOLLOUT };
	if (p) {
		p->src.kind = SRC_CONNECT;
		p->src.proc = w;
		p->w = w;
		p->sock = sock;
		p->id = req->id;
		p->target = fd;
		p->nonblock = nonblock;
		p->addr = addr;
		ev.data.ptr = &p->src;
	}
	if (!p || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, sock, &ev) < 0) {
		answer(w, req->id, ENOBUFS);
		close(sock);
		free(p);
		return;
	}
	p->next = w->net_pending;
	w->net_pending = p;
	w->net_npending++;
}

void pb_netconnect_release(pb_supervisor *s, struct process *w)
{
	pb_netresolve_release(s, w);
	for (struct pb_net_pending *p = w->net_pending; p; p = p->next)
		pending_end(s, p);
}

void pb_netconnect_free(struct process *w)
{
	pb_netresolve_free(w);
	while (w->net_pending) {
		struct pb_net_pending *p = w->net_pending;
		w->net_pending = p->next;
		if (p->sock >= 0)
			close(p->sock);
		free(p);
	}
	w->net_npending = 0;
}

/* ---- can the supervisor do its part? ------------------------------------- */

enum kernel_step { STEP_OK,
	           STEP_NNP,
	           STEP_LISTENER,
	           STEP_ADDFD,
	           STEP_GETFD };

/* The layer and the reason, for a step that failed with errno e (0: a
 * probe the kernel accepted when it should have refused it). */
static void say(enum kernel_step step, int e, const char *where, char *why, size_t why_len)
{
	const char *reason = e ? strerror(e) : "accepted a probe it should have refused";

	switch (step) {
	case STEP_NNP:
		snprintf(why, why_len, "network (@network connect at %s): cannot probe the kernel (no_new_privs): %s",
		         where, reason);
		break;
	case STEP_LISTENER:
		snprintf(why, why_len, "network (@network connect at %s): the kernel has no seccomp user "
		                       "notification (SECCOMP_FILTER_FLAG_NEW_LISTENER, Linux 5.0): %s",
		         where, reason);
		break;
	case STEP_ADDFD:
		snprintf(why, why_len, "network (@network connect at %s): the kernel cannot put a socket in a "
		                       "worker (SECCOMP_IOCTL_NOTIF_ADDFD with SETFD, Linux 5.9): %s",
		         where, reason);
		break;
	case STEP_GETFD:
		snprintf(why, why_len, "network (@network connect at %s): cannot look at the worker's "
		                       "descriptors (pidfd_getfd, Linux 5.6): %s",
		         where, reason);
		break;
	case STEP_OK:
		break;
	}
}

/* ADDFD on a listener that has received nothing: a kernel with it says
 * ENOENT (no such notification); 0 when it answers so, else the errno. */
static int addfd_probe(int listener, int srcfd)
{
	struct seccomp_notif_addfd add;
	int e;

	memset(&add, 0, sizeof(add));
	add.id = 0;
	add.flags = SECCOMP_ADDFD_FLAG_SETFD;
	add.srcfd = (uint32_t)srcfd;
	add.newfd = 0;
	e = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0 ? errno : 0;
	return e == ENOENT || e == EINPROGRESS ? 0 : e ? e
	                                               : -1;
}

/* In a child of ours (system calls only: the host may have threads), what
 * a worker's filter and our answers need: a listener, ADDFD, pidfd_getfd.
 * The child's filter allows everything and dies with it. */
_Noreturn static void probe_child(int out)
{
	static struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { 1, &allow };
	int res[2] = { STEP_OK, 0 }, listener, pidfd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		res[0] = STEP_NNP, res[1] = errno;
	else if ((listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
	                                  &prog)) < 0)
		res[0] = STEP_LISTENER, res[1] = errno;
	else if ((res[1] = addfd_probe(listener, out)) != 0)
		res[0] = STEP_ADDFD, res[1] = res[1] < 0 ? 0 : res[1];
	else if ((pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0)) < 0 ||
	         syscall(SYS_pidfd_getfd, pidfd, out, 0) < 0) /* the copy dies with the child */
		res[0] = STEP_GETFD, res[1] = errno;
	if (write(out, res, sizeof(res)) != (ssize_t)sizeof(res))
		_exit(1);
	_exit(0);
}

static int kernel_step = -1, kernel_errno;

static void kernel_probe(void)
{
	int p[2], res[2] = { STEP_NNP, EIO }, st;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		kernel_step = STEP_NNP;
		kernel_errno = errno;
		return;
	}
	pid = fork();
	if (pid == 0)
		probe_child(p[1]);
	close(p[1]);
	if (pid > 0) {
		ssize_t n;
		do
			n = read(p[0], res, sizeof(res));
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof(res))
			res[0] = STEP_NNP, res[1] = EIO;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
		}
	} else {
		res[1] = errno;
	}
	close(p[0]);
	kernel_step = res[0];
	kernel_errno = res[1];
}

int pb_netconnect_prepare(pb_supervisor *s, struct process *w, char *why, size_t why_len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const struct pb_sandbox *sb = &w->policy->sandbox;
	char where[256];

	if (sb->network != PB_NETWORK_CONNECT)
		return 0;
	/* Invariant 2, before a worker exists: a kernel that cannot do this
	 * layer fails closed without running any plugin code. Once a process:
	 * the kernel does not change under us. */
	pthread_once(&once, kernel_probe);
	where_of(w, NULL, where, sizeof(where));
	if (kernel_step != STEP_OK) {
		say((enum kernel_step)kernel_step, kernel_errno, where, why, why_len);
		return kernel_errno ? -kernel_errno : -ENOSYS;
	}
	/* The names, resolved afresh for each worker; the worker's /etc/hosts
	 * and the list its connects are checked against are the same addresses. */
	if (pb_policy_resolve(w->policy) < 0) {
		snprintf(why, why_len, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < sb->ndests; i++) {
		const struct pb_dest *d = &sb->dests[i];
		if (d->resolve_error) {
			pb_where_format(&d->where, where, sizeof(where));
			pb_note(s, w->name, "@network connect %s:%u (%s): the name does not resolve (%s); "
			                    "connects to it are refused",
			        d->host, (unsigned)d->port, where, d->resolve_error);
		}
	}
	/* ...and again every @network refresh while it lives. */
	int r = pb_netresolve_start(s, w);
	if (r < 0) {
		where_of(w, NULL, where, sizeof(where));
		snprintf(why, why_len, "network (@network connect at %s): cannot start resolving its names again: %s",
		         where, strerror(-r));
		return r;
	}
	return 0;
}

int pb_netconnect_check(struct process *w, int listener, char *why, size_t why_len)
{
	char where[256];
	int probe = open("/dev/null", O_RDONLY | O_CLOEXEC), e;

	where_of(w, NULL, where, sizeof(where));
	if (probe < 0) {
		snprintf(why, why_len, "network (@network connect at %s): cannot open /dev/null: %s", where,
		         strerror(errno));
		return -EIO;
	}
	/* No notification has this id (and none has been received, so none
	 * could take a descriptor). */
	e = addfd_probe(listener, probe);
	close(probe);
	if (e != 0) {
		say(STEP_ADDFD, e < 0 ? 0 : e, where, why, why_len);
		return -ENOSYS;
	}
	/* pidfd_getfd on this worker: its uid, a security module may refuse it. */
	int copy = (int)syscall(SYS_pidfd_getfd, w->proc.pidfd, 0, 0);
	if (copy < 0) {
		e = errno;
		say(STEP_GETFD, e, where, why, why_len);
		return -e;
	}
	close(copy);
	return 0;
}
