/* serve_conn.c - the connections of `plugbox serve`: accepting them (only
 * the daemon's own user), reading frames with the frame module's bounds and
 * handing each to serve_requests.c, queueing each answer until the client
 * takes it, with the flow control of the protocol (serve.c): a client that
 * does not read is paused, then dropped. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cli/plugbox_cli.h"
#include "cli/serve.h"
#include "proto/protocol.h"
#include "toolkit/sanitize.h"
#include "toolkit/sink.h"

#define FRAMES_PER_WAKE 64 /* frames read from one connection per wake-up */
#define ACCEPTS_PER_WAKE 64
#define QUEUE_PAUSE (8u << 20) /* answers waiting: stop reading that client */
#define QUEUE_DROP (64u << 20) /* answers waiting: drop that client */
#define IOV_BATCH 64           /* frames per sendmsg */
#define CLOSE_WAIT 2.0         /* seconds an error gets to reach a client being closed */
#define ACCEPT_PAUSE 0.25      /* out of descriptors: seconds before accepting again */

double pb_serve_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- connections ----------------------------------------------------------- */

static bool may_read(const struct pb_serve_client *c)
{
	return c->fd >= 0 && !c->eof && !c->closing && c->inflight < PB_SERVE_MAX_INFLIGHT &&
	       c->out_bytes < QUEUE_PAUSE;
}

static void update_events(struct pb_serve_client *c)
{
	uint32_t want = (may_read(c) ? EPOLLIN : 0) | (c->out_head ? EPOLLOUT : 0);
	struct epoll_event ev = { .events = want, .data.ptr = &c->src };

	if (c->fd < 0 || want == c->events)
		return;
	if (epoll_ctl(c->srv->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
}

static void client_unref(struct pb_serve_client *c)
{
	if (--c->refs > 0)
		return;
	c->next_dead = c->srv->graveyard;
	c->srv->graveyard = c;
}

void pb_serve_client_drop(struct pb_serve_client *c)
{
	struct pb_serve *srv = c->srv;

	if (c->fd < 0)
		return;
	pb_serve_client_gone(c);
	close(c->fd);
	c->fd = -1;
	while (c->out_head) {
		struct pb_serve_out *f = c->out_head;
		c->out_head = f->next;
		free(f->buf);
		free(f);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
	pb_frame_reader_free(&c->rd);
	if (c->closing)
		srv->nclosing--;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	client_unref(c);
}

/* Nothing more will be said on this connection. */
static bool client_done(const struct pb_serve_client *c)
{
	return !c->out_head && (c->closing || (c->eof && c->inflight == 0));
}

/* Write what is queued, as far as the socket takes it. */
static void client_flush(struct pb_serve_client *c)
{
	while (c->fd >= 0 && c->out_head) {
		struct iovec iov[IOV_BATCH];
		struct msghdr msg = { .msg_iov = iov };
		struct pb_serve_out *f = c->out_head;
		ssize_t n;

		for (; f && msg.msg_iovlen < IOV_BATCH; f = f->next)
			iov[msg.msg_iovlen++] = (struct iovec){ f->buf + f->off, f->len - f->off };
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				pb_serve_client_drop(c);
			break;
		}
		c->out_bytes -= (size_t)n;
		/* The kernel took at most what was queued: out_head runs out no
		 * sooner than n does. */
		while (n > 0 && (f = c->out_head) != NULL) {
			size_t left = f->len - f->off;
			if ((size_t)n < left) {
				f->off += (size_t)n;
				break;
			}
			n -= (ssize_t)left;
			c->out_head = f->next;
			free(f->buf);
			free(f);
		}
		if (!c->out_head)
			c->out_tail = NULL;
	}
	if (c->fd < 0)
		return;
	if (client_done(c)) {
		pb_serve_client_drop(c);
		return;
	}
	update_events(c);
}

/* The messages that end a request: one too large for a frame becomes an
 * Error under the same id. */
static bool is_answer(Plugbox__Envelope__BodyCase body)
{
	return body == PLUGBOX__ENVELOPE__BODY_RESULT || body == PLUGBOX__ENVELOPE__BODY_ERROR ||
	       body == PLUGBOX__ENVELOPE__BODY_PLUGINS || body == PLUGBOX__ENVELOPE__BODY_PLUGIN_INFO ||
	       body == PLUGBOX__ENVELOPE__BODY_HOOK_RESULTS;
}

/* Queue one envelope for the client and try to write it at once. */
void pb_serve_send(struct pb_serve_client *c, const Plugbox__Envelope *env)
{
	struct pb_serve_out *f = NULL;
	uint8_t *buf;
	size_t len;
	int r;

	if (c->fd < 0)
		return;
	r = pb_envelope_pack(env, PB_FRAME_MAX_DEFAULT, &buf, &len);
	if (r == -EMSGSIZE && is_answer(env->body_case)) {
		/* An answer a few bytes past the limit (the worker's frame held
		 * it; the daemon adds ids and names): the request still gets an
		 * answer, and the connection stays. */
		Plugbox__Envelope e = PLUGBOX__ENVELOPE__INIT;
		Plugbox__Error er = PLUGBOX__ERROR__INIT;
		char message[128];
		snprintf(message, sizeof(message), "the %s is larger than a frame may be (16 MiB)",
		         env->body_case == PLUGBOX__ENVELOPE__BODY_RESULT ? "result" : "answer");
		er.kind = (Plugbox__ErrorKind)PB_ERROR_PROTOCOL;
		er.message = message;
		e.id = env->id;
		e.body_case = PLUGBOX__ENVELOPE__BODY_ERROR;
		e.error = &er;
		pb_serve_send(c, &e);
		return;
	}
	if (r < 0 || !(f = calloc(1, sizeof(*f)))) {
		/* Out of memory, or a message that is not an answer and does not
		 * fit: what the client waits for would be lost, so it goes. */
		free(buf);
		if (r == -EMSGSIZE)
			pb_serve_say("dropped a client (pid %d): a message to it is larger than a frame may be", (int)c->pid);
		else
			pb_serve_say("dropped a client (pid %d): out of memory for its answers", (int)c->pid);
		pb_serve_client_drop(c);
		return;
	}
	f->buf = buf;
	f->len = len;
	if (c->out_tail)
		c->out_tail->next = f;
	else
		c->out_head = f;
	c->out_tail = f;
	c->out_bytes += len;
	if (c->out_bytes > QUEUE_DROP) {
		pb_serve_say("dropped a client (pid %d): more than %u MiB of answers it does not read", (int)c->pid,
		             QUEUE_DROP >> 20);
		pb_serve_client_drop(c);
		return;
	}
	client_flush(c);
}

void pb_serve_send_error(struct pb_serve_client *c, uint64_t id, pb_error_kind kind, const char *fmt, ...)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Error err = PLUGBOX__ERROR__INIT;
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	pb_utf8_vformat(message, sizeof(message), fmt, ap); /* an Error's message is a protobuf string */
	va_end(ap);
	if (kind == PB_ERROR_BAD_REQUEST)
		pb_serve_client_error(c->srv, c->pid, message);
	err.kind = (Plugbox__ErrorKind)kind;
	err.message = message;
	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_ERROR;
	env.error = &err;
	pb_serve_send(c, &env);
}

/* The conversation cannot go on: say why, then close. */
__attribute__((format(printf, 2, 3))) static void client_fail(struct pb_serve_client *c, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	if (c->fd < 0 || c->closing)
		return;
	va_start(ap, fmt);
	pb_utf8_vformat(message, sizeof(message), fmt, ap); /* an Error's message is a protobuf string */
	va_end(ap);
	c->closing = true;
	c->close_by = pb_serve_now() + CLOSE_WAIT;
	c->srv->nclosing++;
	pb_serve_send_error(c, 0, PB_ERROR_BAD_REQUEST, "%s", message);
	if (c->fd >= 0 && client_done(c))
		pb_serve_client_drop(c);
	else if (c->fd >= 0)
		update_events(c);
}

void pb_serve_slot_release(struct pb_serve_slot *slot)
{
	struct pb_serve_client *c = slot->client;

	slot->used = false;
	slot->answered = false;
	slot->lib_id = 0;
	free(slot->plugin);
	slot->plugin = NULL;
	c->inflight--;
	if (c->fd >= 0) {
		if (client_done(c))
			pb_serve_client_drop(c);
		else
			update_events(c);
	}
	client_unref(c);
}

void pb_serve_slot_used(struct pb_serve_slot *slot)
{
	slot->used = true;
	slot->client->inflight++;
	slot->client->refs++;
}

/* Read up to FRAMES_PER_WAKE frames, while the client may send more. */
static void client_read(struct pb_serve_client *c)
{
	for (int frames = 0; frames < FRAMES_PER_WAKE && may_read(c);) {
		size_t header_got = c->rd.header_got;
		uint32_t payload_got = c->rd.payload_got;
		uint8_t *payload;
		uint32_t len;
		int rc = pb_frame_read_fd(&c->rd, c->fd);

		if (rc == 1 && pb_frame_take(&c->rd, &payload, &len) == 0) {
			pb_serve_handle_frame(c, payload, len);
			free(payload);
			frames++;
		} else if (rc == 0) {
			/* A partial read goes on; no progress means EAGAIN. */
			if (c->rd.header_got == header_got && c->rd.payload_got == payload_got)
				break;
		} else if (rc == -ENODATA) {
			c->eof = true;
			if (client_done(c))
				pb_serve_client_drop(c);
			else
				update_events(c);
		} else if (rc == -EPIPE) {
			client_fail(c, "the connection ended inside a frame");
		} else if (rc == -EMSGSIZE) {
			client_fail(c, "a frame of %lu bytes is larger than the limit of %u bytes",
			            (unsigned long)c->rd.payload_len, PB_FRAME_MAX_DEFAULT);
		} else if (rc == -ENOMEM) {
			client_fail(c, "the daemon has no memory for a frame of %lu bytes",
			            (unsigned long)c->rd.payload_len);
		} else {
			pb_serve_client_drop(c);
		}
	}
	update_events(c);
}

void pb_serve_client_event(struct pb_serve_client *c, uint32_t events)
{
	if (c->fd >= 0 && (events & EPOLLIN))
		client_read(c);
	if (c->fd >= 0 && (events & EPOLLOUT))
		client_flush(c);
	/* The peer closed both ways: nobody reads the answers. */
	if (c->fd >= 0 && (events & (EPOLLHUP | EPOLLERR)))
		pb_serve_client_drop(c);
}

static void send_hello(struct pb_serve_client *c)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Hello hello = PLUGBOX__HELLO__INIT;

	/* Exactly version 1's Hello: a version 1 client that refuses unknown
	 * fields (plugbox's own did) must not meet max_protocol_version. A
	 * client learns of version 2 by asking for it. */
	hello.protocol_version = PB_SERVE_PROTOCOL_VERSION;
	env.body_case = PLUGBOX__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	pb_serve_send(c, &env);
}

void pb_serve_add_client(struct pb_serve *srv, int fd, pid_t pid)
{
	struct pb_serve_client *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!c) {
		close(fd);
		return;
	}
	c->src.kind = PB_SERVE_CLIENT;
	c->srv = srv;
	c->fd = fd;
	c->pid = pid;
	c->refs = 1;
	c->version = PB_SERVE_PROTOCOL_VERSION;
	c->events = EPOLLIN;
	pb_frame_reader_init(&c->rd, PB_FRAME_MAX_DEFAULT);
	ev.data.ptr = &c->src;
	if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		pb_serve_say("cannot watch a client: %s", strerror(errno));
		close(fd);
		free(c);
		return;
	}
	c->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = c;
	srv->clients = c;
	srv->connections++;
	send_hello(c);
}

static void set_accepting(struct pb_serve *srv, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.ptr = &srv->listen_src };

	if (srv->listen_fd >= 0)
		epoll_ctl(srv->ep, EPOLL_CTL_MOD, srv->listen_fd, &ev);
	srv->accept_paused_until = on ? 0 : pb_serve_now() + ACCEPT_PAUSE;
}

bool pb_serve_peer_ok(const struct pb_serve *srv, int fd, pid_t *pid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		pb_serve_say("refused a client: its credentials are unknown: %s", strerror(errno));
		return false;
	}
	if (cred.uid != srv->euid && cred.uid != 0) {
		pb_serve_say("refused a client: pid %d uid %u is not the daemon's user", (int)cred.pid, (unsigned)cred.uid);
		return false;
	}
	*pid = cred.pid;
	return true;
}

void pb_serve_accept(struct pb_serve *srv)
{
	for (int i = 0; i < ACCEPTS_PER_WAKE && srv->listen_fd >= 0; i++) {
		pid_t pid;
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* Level-triggered: retrying at once would spin. */
				pb_serve_say("cannot accept a client: %s; pausing for %g s", strerror(errno), ACCEPT_PAUSE);
				set_accepting(srv, false);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				pb_serve_say("cannot accept a client: %s", strerror(errno));
			}
			return;
		}
		if (!pb_serve_peer_ok(srv, fd, &pid)) {
			close(fd);
			continue;
		}
		pb_serve_add_client(srv, fd, pid);
	}
}

void pb_serve_expire(struct pb_serve *srv, double t)
{
	if (srv->accept_paused_until > 0 && t >= srv->accept_paused_until)
		set_accepting(srv, true);
	if (!srv->nclosing)
		return;
	for (struct pb_serve_client *c = srv->clients, *next; c; c = next) {
		next = c->next;
		if (c->closing && t >= c->close_by)
			pb_serve_client_drop(c);
	}
}

void pb_serve_bury(struct pb_serve *srv)
{
	while (srv->graveyard) {
		struct pb_serve_client *c = srv->graveyard;
		srv->graveyard = c->next_dead;
		free(c);
	}
}
