/* serve.c - `plugbox serve`: a daemon that runs plugin calls for any program
 * that can talk to a unix socket, over the public library (plugbox.h) and
 * the one framing module (frame.h). One thread, one epoll loop: the
 * listening socket, the clients, a signalfd, and the supervisor's own
 * descriptor (pb_supervisor_get_fd), dispatched when it is readable. This
 * file holds the socket, the signals and the loop; serve_conn.c the
 * connections; serve_client.c is `plugbox call --socket`.
 *
 * CONTROL PROTOCOL (docs/protocol.md says it all, for client authors)
 *
 * Frames are the workers' frames: a 4-byte little-endian length, then one
 * serialized plugbox.Envelope, at most 16 MiB (PB_FRAME_MAX_DEFAULT). The
 * daemon greets with Hello{protocol_version 1} and nothing else; a client
 * may ask for version 2 with a Hello as its first message. Requests (Call;
 * List and Describe from version 2) carry non-zero ids, unique among the
 * connection's in flight, and are answered as they end. Messages are
 * decoded leniently (unknown fields skipped, PB_DECODE_LENIENT); a bad one
 * is answered with Error{BAD_REQUEST} under its own id and the connection
 * goes on. Only broken framing (a frame over the limit, an end inside a
 * frame) gets Error{id 0, BAD_REQUEST} and a close. Flow control: 64
 * requests in flight and 8 MiB of answers waiting per connection, then the
 * daemon stops reading it; 64 MiB waiting drops it. Only the daemon's user
 * (and root) may connect (mode 0600, SO_PEERCRED). SIGTERM/SIGINT: the
 * socket goes, calls in flight get --grace seconds, late requests get
 * UNAVAILABLE, answers are written out (2 s at most), exit 0.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/plugbox_cli.h"
#include "cli/serve.h"

#define FLUSH_WAIT 2.0 /* seconds answers get to leave once every call ended */

/* ---- the listening socket ---------------------------------------------------- */

/* Remove the socket file if it is still the one this daemon made. */
static void remove_socket(struct pb_serve *srv)
{
	if (srv->path)
		pb_serve_unlink(srv->path, srv->sock_dev, srv->sock_ino);
	srv->sock_ino = 0;
}

/* systemd's socket activation (sd_listen_fds(3)), without libsystemd: the
 * protocol is two variables and descriptor 3. The variables are removed
 * either way, so that nothing started later takes them for its own.
 * Returns the listening descriptor, -1 when none was passed to this
 * process, or -2 after saying what is wrong with the one passed. */
#define LISTEN_FDS_START 3
static int activated_socket(void)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	int fd = LISTEN_FDS_START, type = 0, domain = 0, listening = 0, r = -1;
	socklen_t len = sizeof(int);
	char *end;
	long pid, n;

	if (!pid_s || !fds_s)
		goto out;
	errno = 0;
	pid = strtol(pid_s, &end, 10);
	if (errno || *end || pid != (long)getpid())
		goto out; /* meant for another process */
	n = strtol(fds_s, &end, 10);
	if (errno || *end || n < 0) {
		fprintf(stderr, "plugbox: serve: LISTEN_FDS='%s' is not a number of descriptors\n", fds_s);
		r = -2;
		goto out;
	}
	if (n == 0)
		goto out;
	if (n != 1) {
		fprintf(stderr, "plugbox: serve: systemd passed %ld sockets (LISTEN_FDS); plugbox serve takes one\n", n);
		r = -2;
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || type != SOCK_STREAM ||
	    domain != AF_UNIX || !listening) {
		fprintf(stderr, "plugbox: serve: descriptor 3 from systemd (LISTEN_FDS) is not a listening unix "
		                "stream socket\n");
		r = -2;
		goto out;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		fprintf(stderr, "plugbox: serve: descriptor 3 from systemd: %s\n", strerror(errno));
		r = -2;
		goto out;
	}
	r = fd;
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return r;
}

static int open_listener(struct pb_serve *srv)
{
	int fd = activated_socket();

	if (fd == -2)
		return -EINVAL;
	if (fd >= 0) {
		/* systemd made the file and its mode; it is not ours to remove. */
		srv->listen_fd = fd;
		srv->activated = true;
		return 0;
	}
	if (!srv->path) {
		fprintf(stderr, "plugbox: serve needs --socket PATH (or a socket from systemd: LISTEN_FDS)\n");
		return -EINVAL;
	}
	return pb_serve_listen(srv->path, &srv->listen_fd, &srv->sock_dev, &srv->sock_ino);
}

/* ---- the loop ---------------------------------------------------------------------- */

static void begin_stop(struct pb_serve *srv, const char *why)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	pb_serve_say("%s: stopping; calls in flight have %g s to finish", why, srv->grace);
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		srv->listen_fd = -1;
	}
	remove_socket(srv);
	pb_supervisor_shutdown(srv->sup, srv->grace);
}

static void read_signals(struct pb_serve *srv)
{
	struct signalfd_siginfo si;

	while (read(srv->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		begin_stop(srv, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
}

static bool all_flushed(const struct pb_serve *srv)
{
	for (const struct pb_serve_client *c = srv->clients; c; c = c->next)
		if (c->out_head)
			return false;
	return true;
}

/* Milliseconds until the next deadline of our own (-1: none), at most cap. */
static int next_timeout(const struct pb_serve *srv, double t, double cap)
{
	double at = cap;

	if (srv->accept_paused_until > 0 && (at == 0 || srv->accept_paused_until < at))
		at = srv->accept_paused_until;
	if (srv->nclosing)
		for (const struct pb_serve_client *c = srv->clients; c; c = c->next)
			if (c->closing && (at == 0 || c->close_by < at))
				at = c->close_by;
	for (const struct pb_serve_mconn *m = srv->mconns; m; m = m->next)
		if (at == 0 || m->close_by < at)
			at = m->close_by;
	if (at == 0)
		return -1;
	return at <= t ? 0 : (int)ceil((at - t) * 1000);
}

static void run(struct pb_serve *srv)
{
	double finished_at = 0;

	for (;;) {
		struct epoll_event events[64];
		double t = pb_serve_now(), cap = 0;
		bool may_end = false;
		int n;

		if (srv->stopping && pb_supervisor_finished(srv->sup)) {
			if (finished_at == 0)
				finished_at = t;
			if (t >= finished_at + FLUSH_WAIT)
				return;
			may_end = all_flushed(srv);
			cap = finished_at + FLUSH_WAIT;
		}
		/* Ending: one last look for calls still arriving (answered
		 * "unavailable") before leaving. */
		n = epoll_wait(srv->ep, events, 64, may_end ? 0 : next_timeout(srv, t, cap));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			pb_serve_say("epoll_wait: %s", strerror(errno));
			srv->failed = true;
			return;
		}
		if (may_end && n == 0)
			return;
		for (int i = 0; i < n; i++) {
			struct pb_serve_source *src = events[i].data.ptr;

			switch (src->kind) {
			case PB_SERVE_LISTEN:
				pb_serve_accept(srv);
				break;
			case PB_SERVE_SIGNAL:
				read_signals(srv);
				break;
			case PB_SERVE_SUPERVISOR: {
				int r = pb_supervisor_dispatch(srv->sup, 0);
				if (r < 0 && r != -EINTR) {
					pb_serve_say("the supervisor's loop failed: %s", strerror(-r));
					srv->failed = true;
					return;
				}
				break;
			}
			case PB_SERVE_CLIENT:
				pb_serve_client_event((struct pb_serve_client *)src, events[i].events);
				break;
			case PB_SERVE_METRICS_LISTEN:
				pb_serve_metrics_accept(srv);
				break;
			case PB_SERVE_METRICS_CONN:
				pb_serve_mconn_event(srv, (struct pb_serve_mconn *)src, events[i].events);
				break;
			}
		}
		pb_serve_expire(srv, pb_serve_now());
		pb_serve_metrics_expire(srv, pb_serve_now());
		pb_serve_bury(srv);
	}
}

static int watch(struct pb_serve *srv, int fd, struct pb_serve_source *src, enum pb_serve_source_kind kind)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };

	src->kind = kind;
	return epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void teardown(struct pb_serve *srv)
{
	while (srv->clients)
		pb_serve_client_drop(srv->clients);
	/* Answers to calls still open (after a failure) go nowhere; the
	 * callbacks only release their connections. */
	pb_supervisor_free(srv->sup);
	pb_serve_bury(srv);
	pb_serve_metrics_close(srv); /* after the calls' callbacks, which count */
	pb_serve_route_free(srv);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	remove_socket(srv);
	if (srv->sig_fd >= 0)
		close(srv->sig_fd);
	if (srv->ep >= 0)
		close(srv->ep);
}

static int setup(struct pb_serve *srv, const struct pb_cli_options *o)
{
	sigset_t sigs;
	char **names;
	size_t nplugins;
	int r;

	/* Blocked for the signalfd; spawn.c empties the mask of workers. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0 ||
	    (srv->sig_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
	    (srv->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		fprintf(stderr, "plugbox: serve: %s\n", strerror(errno));
		return PB_EXIT_WORKER;
	}
	signal(SIGPIPE, SIG_IGN);
	srv->sup = pb_open_supervisor(o);
	if (!srv->sup)
		return PB_EXIT_USAGE;
	pb_serve_log_setup(srv);
	pb_serve_route_setup(srv);
	if (o->idle_stop > 0 && pb_supervisor_set_idle_timeout(srv->sup, o->idle_stop) < 0) {
		fprintf(stderr, "plugbox: --idle-stop: %s\n", pb_supervisor_strerror(srv->sup));
		return PB_EXIT_USAGE;
	}
	if (pb_supervisor_plugins(srv->sup, &names, &nplugins) < 0) {
		fprintf(stderr, "plugbox: %s\n", pb_supervisor_strerror(srv->sup));
		return PB_EXIT_USAGE;
	}
	pb_strv_free(names, nplugins);
	if (open_listener(srv) < 0 || pb_serve_metrics_open(srv) < 0)
		return PB_EXIT_USAGE;
	if ((r = watch(srv, srv->listen_fd, &srv->listen_src, PB_SERVE_LISTEN)) < 0 ||
	    (r = watch(srv, srv->sig_fd, &srv->sig_src, PB_SERVE_SIGNAL)) < 0 ||
	    (r = watch(srv, pb_supervisor_get_fd(srv->sup), &srv->sup_src, PB_SERVE_SUPERVISOR)) < 0) {
		fprintf(stderr, "plugbox: serve: epoll: %s\n", strerror(-r));
		return PB_EXIT_WORKER;
	}
	if (o->eager && pb_supervisor_start(srv->sup, NULL) < 0) {
		fprintf(stderr, "plugbox: --eager: %s\n", pb_supervisor_strerror(srv->sup));
		return PB_EXIT_USAGE;
	}
	if (srv->activated)
		pb_serve_say("listening on %s from systemd (%zu plugins)", srv->path ? srv->path : "the socket",
		             nplugins);
	else
		pb_serve_say("listening on %s (%zu plugins)", srv->path, nplugins);
	if (srv->metrics_path)
		pb_serve_say("metrics on %s", srv->metrics_path);
	return PB_EXIT_OK;
}

int pb_cmd_serve(int argc, char **argv)
{
	struct pb_cli_options o;
	struct pb_serve srv = { .ep = -1, .listen_fd = -1, .sig_fd = -1, .metrics_fd = -1 };
	int code = pb_parse_options(argc, argv, PB_OPT_PLUGINS | PB_OPT_POLICIES | PB_OPT_TIMEOUT | PB_OPT_SOCKET | PB_OPT_GRACE | PB_OPT_EAGER | PB_OPT_IDLE_STOP | PB_OPT_CACHE | PB_OPT_SPAWN | PB_OPT_METRICS | PB_OPT_LOG_FORMAT, &o);

	if (code >= 0)
		return code;
	if (optind != argc)
		return pb_usage_error("unexpected argument '%s'", argv[optind]);
	if (!o.plugins)
		return pb_usage_error("%s needs --plugins DIR", argv[0]);
	if (!o.socket && !getenv("LISTEN_FDS"))
		return pb_usage_error("%s needs --socket PATH", argv[0]);
	srv.path = o.socket;
	srv.metrics_path = o.metrics;
	srv.log_json = o.log_json;
	srv.grace = o.grace;
	srv.euid = geteuid();
	code = setup(&srv, &o);
	if (code == PB_EXIT_OK) {
		fflush(stderr);
		run(&srv);
		code = srv.failed ? PB_EXIT_WORKER : PB_EXIT_OK;
	}
	teardown(&srv);
	return code;
}
