/* serve.c - `plugbox serve` as a client on its socket sees it (issue 21):
 * one call at a time against an in-process pb_call measured in the same
 * run (what the daemon adds), calls/s pipelined across two plugins, and
 * `plugbox call --socket` as a command, exec and all.
 *
 * The client is a few lines of hand-made protobuf: a call frame differs
 * from the next only in its id, and an answer is checked by its id, its
 * body (a Result) and its value, so what is timed is the daemon, not a
 * protobuf library.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define PLUGBOX_BIN BENCH_TOP_BUILDDIR "/plugbox"
#define FRAME_MAX (1u << 20)

/* ---- a client of a few lines ------------------------------------------------- */

struct client {
	int fd;
	uint8_t *buf; /* what was read and not yet taken */
	size_t have, off;
};

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			p[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

/* A Call frame: Envelope{id, call: Call{function "echo", args [x], plugin}}. */
static size_t call_frame(uint8_t *out, uint64_t id, const char *plugin, int64_t x)
{
	uint8_t value[16], call[128], env[160];
	size_t nv = 0, nc = 0, ne = 0, plen = strlen(plugin);

	value[nv++] = 0x18; /* Value.int_value (sint64) */
	nv += put_varint(value + nv, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63));
	call[nc++] = 0x0a; /* Call.function */
	call[nc++] = 4;
	memcpy(call + nc, "echo", 4);
	nc += 4;
	call[nc++] = 0x12; /* Call.args */
	call[nc++] = (uint8_t)nv;
	memcpy(call + nc, value, nv);
	nc += nv;
	call[nc++] = 0x22; /* Call.plugin */
	call[nc++] = (uint8_t)plen;
	memcpy(call + nc, plugin, plen);
	nc += plen;
	env[ne++] = 0x08; /* Envelope.id */
	ne += put_varint(env + ne, id);
	env[ne++] = 0x1a; /* Envelope.call */
	ne += put_varint(env + ne, nc);
	memcpy(env + ne, call, nc);
	ne += nc;
	out[0] = (uint8_t)ne;
	out[1] = (uint8_t)(ne >> 8);
	out[2] = out[3] = 0;
	memcpy(out + 4, env, ne);
	return 4 + ne;
}

/* The next frame's payload (*len bytes, valid until the next call), or NULL. */
static const uint8_t *next_frame(struct client *c, size_t *len)
{
	for (;;) {
		if (c->have - c->off >= 4) {
			const uint8_t *h = c->buf + c->off;
			size_t n = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 | (size_t)h[3] << 24;
			if (n > FRAME_MAX - 4)
				return NULL;
			if (c->have - c->off >= 4 + n) {
				c->off += 4 + n;
				*len = n;
				return h + 4;
			}
		}
		if (c->off > 0) {
			memmove(c->buf, c->buf + c->off, c->have - c->off);
			c->have -= c->off;
			c->off = 0;
		}
		ssize_t r = read(c->fd, c->buf + c->have, FRAME_MAX - c->have);
		if (r <= 0)
			return NULL;
		c->have += (size_t)r;
	}
}

static uint64_t get_varint(const uint8_t *p, size_t len, size_t *i)
{
	uint64_t v = 0;

	for (unsigned shift = 0; *i < len && shift < 64; shift += 7) {
		uint8_t b = p[(*i)++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	return UINT64_MAX;
}

/* The id of an answer that is a Result holding exactly x; 0 otherwise. */
static uint64_t answer_id(const uint8_t *p, size_t len, int64_t x)
{
	size_t i = 0;
	uint64_t id = 0;
	uint8_t want[16];
	size_t nw = 0;

	if (len < 2 || p[i++] != 0x08)
		return 0;
	id = get_varint(p, len, &i);
	if (i >= len || p[i++] != 0x22) /* Envelope.result */
		return 0;
	size_t rlen = (size_t)get_varint(p, len, &i);
	want[nw++] = 0x0a; /* Result.value */
	want[nw++] = 0;
	want[nw++] = 0x18;
	nw += put_varint(want + nw, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63));
	want[1] = (uint8_t)(nw - 2);
	if (rlen != len - i || rlen != nw || memcmp(p + i, want, nw) != 0)
		return 0;
	return id;
}

static int client_open(struct client *c, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t len;

	memset(c, 0, sizeof(*c));
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	c->buf = xcalloc(FRAME_MAX, 1);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || !next_frame(c, &len)) {
		if (c->fd >= 0)
			close(c->fd);
		free(c->buf);
		return -1; /* no daemon, or no Hello */
	}
	return 0;
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c->buf);
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- the daemon ------------------------------------------------------------------ */

static pid_t daemon_start(const char *plugins, const char *sock)
{
	pid_t pid = fork_child();

	if (pid == 0) {
		char *argv[] = { PLUGBOX_BIN, "serve", "--plugins", (char *)plugins, "--policies", (char *)cfg.policies,
			         "--socket", (char *)sock, "--eager", NULL };
		setenv("PLUGBOX_WORKER", cfg.worker, 1);
		if (!cfg.verbose && !freopen("/dev/null", "w", stderr))
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 1500; i++) { /* 15 s */
		struct client c;
		if (client_open(&c, sock) == 0) {
			client_close(&c);
			return pid;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return -1;
}

static void daemon_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* ---- the figures ----------------------------------------------------------------- */

/* Median µs of n calls of echo, one at a time: in-process, then through
 * the daemon. */
static double inproc_rt(const char *plugins, size_t n)
{
	pb_supervisor *s = sup_new(plugins, PB_SPAWN_EXEC, NULL);
	pb_value *arg = pb_value_new_int(12345);
	double *v = xcalloc(n, sizeof(double)), med = NAN;
	size_t done = 0;

	if (call_echo(s, "echo0000", 1) == 0) {
		for (size_t i = 0; i < cfg.rt_warmup + n; i++) {
			pb_value *res = NULL;
			pb_error *err = NULL;
			uint64_t t0 = now_ns();
			int r = pb_call(s, "echo0000", "echo", &arg, 1, &res, &err);
			uint64_t t1 = now_ns();
			pb_value_destroy(res);
			pb_error_free(err);
			if (r < 0)
				break;
			if (i >= cfg.rt_warmup)
				v[done++] = (double)(t1 - t0) / 1e3;
		}
	}
	if (done == n)
		med = median(v, n);
	pb_value_destroy(arg);
	free(v);
	pb_supervisor_free(s);
	return med;
}

static double socket_rt(const char *sock, size_t n)
{
	struct client c;
	uint8_t frame[256];
	double *v = xcalloc(n, sizeof(double)), med = NAN;
	size_t done = 0;

	if (client_open(&c, sock) < 0) {
		free(v);
		return NAN;
	}
	for (size_t i = 0; i < cfg.rt_warmup + n; i++) {
		size_t flen = call_frame(frame, i + 1, "echo0000", 12345), len;
		uint64_t t0 = now_ns();
		const uint8_t *p;
		if (send_all(c.fd, frame, flen) < 0 || !(p = next_frame(&c, &len)) ||
		    answer_id(p, len, 12345) != i + 1)
			break;
		uint64_t t1 = now_ns();
		if (i >= cfg.rt_warmup)
			v[done++] = (double)(t1 - t0) / 1e3;
	}
	if (done == n)
		med = median(v, n);
	else
		note("serve round trip: %zu of %zu calls answered right", done, n);
	client_close(&c);
	free(v);
	return med;
}

/* Calls/s with up to `window` calls in flight, alternating two plugins. */
static double socket_pipelined(const char *sock, size_t total, size_t window)
{
	static const char *const plugins[2] = { "echo0000", "echo0001" };
	struct client c;
	uint8_t *out = xcalloc(window, 64);
	size_t sent = 0, got = 0;
	bool wrong = false;

	if (client_open(&c, sock) < 0) {
		free(out);
		return NAN;
	}
	uint64_t t0 = now_ns();
	while (got < total && !wrong) {
		size_t n = 0;
		while (sent < total && sent - got < window) {
			n += call_frame(out + n, sent + 1, plugins[sent % 2], (int64_t)(sent % 1000));
			sent++;
		}
		if (n && send_all(c.fd, out, n) < 0)
			break;
		/* take what has come, at least one answer; the two plugins'
		 * answers interleave, so each is checked against its own id */
		do {
			size_t len, i = 1;
			const uint8_t *p = next_frame(&c, &len);
			uint64_t id = p && len > 1 ? get_varint(p, len, &i) : 0;
			if (!id || id > sent || answer_id(p, len, (int64_t)((id - 1) % 1000)) != id) {
				wrong = true;
				break;
			}
			got++;
		} while (c.have - c.off >= 4 && got < sent);
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	client_close(&c);
	free(out);
	if (got != total) {
		note("serve pipelined: %zu of %zu calls answered right", got, total);
		return NAN;
	}
	return (double)total / secs;
}

void bench_serve(void)
{
	char sock[512];
	const char *plugins = echo_plugins(2);
	size_t n = cfg.rt_samples / 4 ? cfg.rt_samples / 4 : 1;
	pid_t pid;

	bench_log("%s: serve", cur_placement == PL_PINNED ? "pinned" : "unpinned");
	fig("serve.inproc_us", "in-process pb_call, one at a time (median)", "us", inproc_rt(plugins, n));
	snprintf(sock, sizeof(sock), "%s/serve-%d.sock", cfg.tmp, (int)cur_placement);
	if ((pid = daemon_start(plugins, sock)) < 0) {
		note("serve: the daemon did not start");
		return;
	}
	fig("serve.socket_us", "through plugbox serve, one at a time (median)", "us", socket_rt(sock, n));
	fig("serve.added_us", "what the daemon adds per call (median)", "us",
	    fig_get(cur_placement, "serve.socket_us") - fig_get(cur_placement, "serve.inproc_us"));
	socket_pipelined(sock, cfg.pipe_calls / 10, 256); /* warm-up */
	fig("serve.pipelined_calls_s", "through plugbox serve, 256 in flight over 2 plugins", "/s",
	    socket_pipelined(sock, cfg.pipe_calls, 256));

	/* The command, exec and dynamic linking included, against a bare
	 * exec of /bin/true timed the same way in the same run. */
	size_t runs = cfg.smoke ? 5 : 30;
	double *ms = xcalloc(runs, sizeof(double)), *bare = xcalloc(runs, sizeof(double));
	size_t ok = 0, nbare = 0;
	char *argv[] = { PLUGBOX_BIN, "call", "--socket", sock, "echo0000", "echo", "7", NULL };
	char *true_argv[] = { "/bin/true", NULL };
	for (size_t i = 0; i < runs; i++) {
		char out[64];
		if (run_cmd(argv, out, sizeof(out), true, &ms[ok]) == 0 && !strcmp(out, "7\n"))
			ok++;
		if (run_cmd(true_argv, NULL, 0, true, &bare[nbare]) == 0)
			nbare++;
	}
	fig("serve.call_socket_ms", "plugbox call --socket, trivial (median, exec included)", "ms",
	    ok == runs ? median(ms, ok) : NAN);
	fig("serve.exec_true_ms", "baseline: fork + exec of /bin/true (median)", "ms",
	    nbare == runs ? median(bare, nbare) : NAN);
	fig("serve.call_socket_over_exec_ms", "plugbox call --socket beyond a bare exec", "ms",
	    fig_get(cur_placement, "serve.call_socket_ms") - fig_get(cur_placement, "serve.exec_true_ms"));
	if (ok != runs)
		note("serve: plugbox call --socket answered right %zu of %zu times", ok, runs);
	free(ms);
	free(bare);
	daemon_stop(pid);
}
