/* fuzz_serve.c - libFuzzer target for the control protocol of `plugbox
 * serve` (supervisor/serve_conn.c, the protocol is described in serve.c).
 *
 * Each input is one client connection, as the daemon runs it: a
 * struct pb_serve with its epoll set and a supervisor over an empty plugins
 * directory (so every call ends at once, "no plugin", without a worker),
 * and a client made with pb_serve_add_client on one end of a socketpair.
 * The input is the byte stream the client sends: byte 0 says in what
 * pieces it is written, the rest is sent, then the client shuts down its
 * writing side. Between writes the loop of serve.c's run() does one round:
 * epoll_wait, client events and supervisor dispatch, deadlines, freeing the
 * dead connections. The answers are read and checked: each is a frame that
 * decodes (leniently, and strictly too), the first a Hello of protocol
 * version 1, then at most one Hello answering the client's, empty plugin
 * lists and hook answers (version 2 only), Result{null} for the host
 * functions it offers, and Errors (no call or describe can succeed here;
 * no worker runs, so no Output and no HostCall either). A bad message is answered and the conversation goes on. The daemon must end the connection (it owes no
 * more answers once the client has shut down and every call has ended),
 * and the teardown of serve.c leaves no memory and no descriptor behind.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "plugbox.h"
#include "cli/serve.h"

#define MAX_IDLE_ROUNDS 1000 /* rounds with nothing happening: the daemon is stuck */

static const char *plugins;

static void cleanup(void)
{
	rmdir(plugins);
}

static void quiet(void *userdata, const char *plugin, pb_stream stream, const char *line)
{
	(void)userdata;
	(void)plugin;
	(void)stream;
	(void)line;
}

/* The client's side: what the daemon said. */
struct peer {
	int fd;
	struct pb_frame_reader rd;
	unsigned answers;
	bool upgraded; /* the daemon answered a Hello of the client's */
	bool eof;
};

static void check_answer(struct peer *k, const uint8_t *payload, uint32_t len)
{
	Plugbox__Envelope *env;
	char why[256];
	/* What plugbox's own client does with a daemon's answer. */
	int rc = pb_envelope_decode_opts(payload, len, PB_DECODE_LENIENT, &env, why, sizeof(why));

	if (rc < 0)
		fprintf(stderr, "the daemon sent a frame that does not decode: %s\n", why);
	FUZZ_ASSERT(rc == 0);
	/* And what a strict one would: the daemon says nothing a schema-true
	 * client could refuse. */
	{
		Plugbox__Envelope *strict;
		FUZZ_ASSERT(pb_envelope_decode(payload, len, &strict, why, sizeof(why)) == 0);
		pb_envelope_free(strict);
	}
	if (k->answers++ == 0) {
		/* Exactly version 1's first Hello, whatever comes later. */
		FUZZ_ASSERT(env->body_case == PLUGBOX__ENVELOPE__BODY_HELLO && env->id == 0);
		FUZZ_ASSERT(env->hello->protocol_version == 1 && env->hello->max_protocol_version == 0);
	} else if (env->body_case == PLUGBOX__ENVELOPE__BODY_HELLO) {
		/* The answer to the client's Hello, at most once. */
		FUZZ_ASSERT(!k->upgraded);
		k->upgraded = true;
		FUZZ_ASSERT(env->hello->protocol_version >= 1 && env->hello->protocol_version <= 2);
		FUZZ_ASSERT(env->hello->max_protocol_version == 2);
	} else if (env->body_case == PLUGBOX__ENVELOPE__BODY_PLUGINS) {
		/* Asked for after version 2; the plugins directory is empty. */
		FUZZ_ASSERT(k->upgraded && env->id != 0 && env->plugins->n_plugins == 0);
	} else if (env->body_case == PLUGBOX__ENVELOPE__BODY_HOOK_RESULTS) {
		/* allow_unknown over no plugins: nothing to answer. */
		FUZZ_ASSERT(k->upgraded && env->id != 0 && env->hook_results->n_answers == 0);
	} else if (env->body_case == PLUGBOX__ENVELOPE__BODY_RESULT) {
		/* Only host_functions succeeds here: Result{null}. */
		FUZZ_ASSERT(k->upgraded && env->id != 0 && env->result->value &&
		            env->result->value->kind_case == PLUGBOX__VALUE__KIND_NULL_VALUE);
	} else {
		/* No call or describe can succeed without plugins. */
		FUZZ_ASSERT(env->body_case == PLUGBOX__ENVELOPE__BODY_ERROR);
		FUZZ_ASSERT(env->error->message[0] != '\0');
		/* id 0: a protocol error (BAD_REQUEST) */
		FUZZ_ASSERT(env->id != 0 || env->error->kind == PLUGBOX__ERROR_KIND__ERROR_KIND_BAD_REQUEST);
	}
	pb_envelope_free(env);
}

/* Read whatever the daemon has written; true if anything came. */
static bool peer_read(struct peer *k)
{
	bool progress = false;

	while (!k->eof) {
		size_t before = k->rd.header_got + k->rd.payload_got;
		int rc = pb_frame_read_fd(&k->rd, k->fd);
		uint8_t *payload;
		uint32_t len;

		if (rc == 1) {
			FUZZ_ASSERT(pb_frame_take(&k->rd, &payload, &len) == 0);
			check_answer(k, payload, len);
			free(payload);
			progress = true;
		} else if (rc == -ENODATA || rc == -ECONNRESET) {
			/* ECONNRESET: the daemon closed a connection it had
			 * refused with our bytes still unread, after its error. */
			FUZZ_ASSERT(k->rd.header_got == 0);
			k->eof = true;
			progress = true;
		} else {
			/* The daemon writes whole frames of at most 16 MiB. */
			FUZZ_ASSERT(rc == 0);
			if (k->rd.header_got + k->rd.payload_got == before)
				break;
			progress = true;
		}
	}
	return progress;
}

/* One round of serve.c's run(), without waiting; true if anything came. */
static bool round_once(struct pb_serve *srv)
{
	struct epoll_event events[64];
	int n = epoll_wait(srv->ep, events, 64, 0), i;

	FUZZ_ASSERT(n >= 0 || errno == EINTR);
	for (i = 0; i < n; i++) {
		struct pb_serve_source *src = events[i].data.ptr;

		switch (src->kind) {
		case PB_SERVE_SUPERVISOR:
			FUZZ_ASSERT(pb_supervisor_dispatch(srv->sup, 0) >= 0);
			break;
		case PB_SERVE_CLIENT:
			pb_serve_client_event((struct pb_serve_client *)src, events[i].events);
			break;
		default:
			FUZZ_ASSERT(!"no listener or signals here");
		}
	}
	pb_serve_expire(srv, pb_serve_now());
	pb_serve_bury(srv);
	return n > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int free_fd = fuzz_lowest_free_fd();
	struct pb_serve srv = { .ep = -1, .listen_fd = -1, .sig_fd = -1 };
	struct epoll_event ev = { .events = EPOLLIN };
	struct peer k = { .fd = -1 };
	size_t off = 0, piece;
	bool shut = false;
	unsigned idle = 0;
	int sv[2];

	if (!plugins) {
		plugins = fuzz_scratch_dir("pbfuzz-plugins");
		atexit(cleanup);
	}
	if (size < 1)
		return 0;
	/* 1..256 bytes per write, or (0) all at once. */
	piece = data[0] ? data[0] : size;
	data++;
	size--;

	srv.ep = epoll_create1(EPOLL_CLOEXEC);
	FUZZ_ASSERT(srv.ep >= 0);
	srv.euid = geteuid();
	FUZZ_ASSERT(pb_supervisor_new(plugins, &srv.sup) == 0);
	pb_supervisor_set_output(srv.sup, quiet, NULL);
	pb_serve_route_setup(&srv);
	srv.sup_src.kind = PB_SERVE_SUPERVISOR;
	ev.data.ptr = &srv.sup_src;
	FUZZ_ASSERT(epoll_ctl(srv.ep, EPOLL_CTL_ADD, pb_supervisor_get_fd(srv.sup), &ev) == 0);
	FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	pb_serve_add_client(&srv, sv[0], getpid());
	FUZZ_ASSERT(srv.clients != NULL);
	k.fd = sv[1];
	pb_frame_reader_init(&k.rd, PB_FRAME_MAX_DEFAULT);

	for (;;) {
		bool progress = false;

		if (off < size) {
			size_t want = size - off < piece ? size - off : piece;
			ssize_t w = send(k.fd, data + off, want, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (w > 0) {
				off += (size_t)w;
				progress = true;
			} else if (w < 0 && errno == EPIPE) {
				off = size; /* the daemon closed: the rest goes nowhere */
			} else {
				FUZZ_ASSERT(w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
				                      errno == ECONNRESET));
				if (errno == ECONNRESET)
					off = size;
			}
		} else if (!shut) {
			FUZZ_ASSERT(shutdown(k.fd, SHUT_WR) == 0 || errno == ENOTCONN);
			shut = true;
			progress = true;
		}
		progress |= round_once(&srv);
		progress |= peer_read(&k);
		if (shut && k.eof && !srv.clients && pb_supervisor_calls_pending(srv.sup) == 0)
			break;
		idle = progress ? 0 : idle + 1;
		if (idle > MAX_IDLE_ROUNDS)
			fprintf(stderr, "stuck: %zu of %zu bytes sent, connection %s, %zu calls pending\n",
			        off, size, srv.clients ? "open" : "closed",
			        pb_supervisor_calls_pending(srv.sup));
		FUZZ_ASSERT(idle <= MAX_IDLE_ROUNDS);
	}
	FUZZ_ASSERT(k.answers >= 1);

	/* serve.c's teardown. */
	while (srv.clients)
		pb_serve_client_drop(srv.clients);
	pb_supervisor_free(srv.sup);
	pb_serve_bury(&srv);
	pb_serve_route_free(&srv);
	close(srv.ep);
	pb_frame_reader_free(&k.rd);
	close(k.fd);
	FUZZ_ASSERT(fuzz_lowest_free_fd() == free_fd);
	return 0;
}
