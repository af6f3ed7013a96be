/* serve_ops.c - what an operator sees of `plugbox serve`: its socket files
 * (made private, removed only if still ours), the metrics socket (--metrics
 * PATH: every connection gets the Prometheus text exposition of what the
 * daemon counted, then a close) and the JSON log (--log-format json: plugin
 * output, worker events and the daemon's own notes, one JSON object a
 * line, through the same non-blocking stderr writer as the text log).
 *
 * Call counts, outcomes, latencies and calls in flight are the daemon's
 * own (serve_conn.c reports each call's end here); worker starts, crashes,
 * violations, dropped output, CPU time and peak memory come from the
 * library (pb_supervisor_plugin_stat).
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/plugbox_cli.h"
#include "cli/serve.h"
#include "proto/names.h"
#include "toolkit/sanitize.h"
#include "toolkit/sink.h"

#define MCONN_MAX 16      /* metrics connections being written at once */
#define MCONN_WAIT 5.0    /* seconds one gets to take its text */
#define TEXT_FIRST 16384u /* the text's first buffer; it grows */

const double pb_serve_bucket_bounds[PB_SERVE_BUCKETS] = {
	0.0005,
	0.001,
	0.0025,
	0.005,
	0.01,
	0.025,
	0.05,
	0.1,
	0.25,
	0.5,
	1,
	2.5,
	5,
	10,
};

static bool log_json; /* pb_serve_say runs without the daemon at hand */

/* ---- socket files ------------------------------------------------------------- */

void pb_serve_unlink(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (ino && lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
		unlink(path);
}

/* An existing PATH: a socket nobody listens on is left over and reused;
 * anything else is an error. */
static int clear_stale(const char *path, const struct sockaddr_un *addr)
{
	struct stat st;
	int probe, r, e;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, "plugbox: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "plugbox: %s: exists and is not a socket\n", path);
		return -EEXIST;
	}
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return -errno;
	r = connect(probe, (const struct sockaddr *)addr, sizeof(*addr));
	e = errno;
	close(probe);
	/* EAGAIN: a listener whose backlog is full - still a listener. */
	if (r == 0 || e == EAGAIN) {
		fprintf(stderr, "plugbox: %s: another daemon is listening there\n", path);
		return -EADDRINUSE;
	}
	if (e != ECONNREFUSED) {
		fprintf(stderr, "plugbox: %s: cannot tell whether a daemon listens there: %s\n", path, strerror(e));
		return -e;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		fprintf(stderr, "plugbox: %s: cannot remove the stale socket: %s\n", path, strerror(errno));
		return -errno;
	}
	return 0;
}

int pb_serve_listen(const char *path, int *fd_out, dev_t *dev, ino_t *ino)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, r;

	*ino = 0;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "plugbox: %s: a socket path has at most %zu bytes\n", path, sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path));
	if ((r = clear_stale(path, &addr)) < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Never a moment when others may connect: made 0600 (0700 by the
	 * umask, then chmod), and SO_PEERCRED is checked anyway. */
	old = umask(077);
	r = bind(fd, (const struct sockaddr *)&addr, sizeof(addr));
	umask(old);
	if (r < 0) {
		r = -errno;
		fprintf(stderr, "plugbox: %s: cannot listen there: %s\n", path, strerror(-r));
		close(fd);
		return r;
	}
	if (lstat(path, &st) == 0) {
		*dev = st.st_dev;
		*ino = st.st_ino;
	}
	if (fchmod(fd, 0600) < 0 || chmod(path, 0600) < 0 || listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		fprintf(stderr, "plugbox: %s: %s\n", path, strerror(-r));
		pb_serve_unlink(path, *dev, *ino);
		*ino = 0;
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

/* ---- what is counted ------------------------------------------------------------ */

struct pb_serve_metric *pb_serve_metric_for(struct pb_serve *srv, const char *plugin)
{
	struct pb_serve_metric *m;

	/* Only names the supervisor has taken as plugins: a client cannot
	 * grow this table, or the text, with names of its own. */
	if (!pb_supervisor_plugin_state(srv->sup, plugin))
		return NULL;
	for (m = srv->metrics; m; m = m->next)
		if (!strcmp(m->plugin, plugin))
			return m;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->plugin = strdup(plugin))) {
		free(m);
		return NULL;
	}
	m->next = srv->metrics;
	srv->metrics = m;
	return m;
}

void pb_serve_metric_done(struct pb_serve_metric *m, int kind, double seconds)
{
	size_t b = 0;

	if (kind < 0 || kind > PB_ERROR_BAD_REQUEST)
		kind = PB_ERROR_PROTOCOL;
	m->outcomes[kind]++;
	while (b < PB_SERVE_BUCKETS && seconds > pb_serve_bucket_bounds[b])
		b++;
	m->buckets[b]++;
	m->count++;
	m->sum += seconds;
	if (m->inflight)
		m->inflight--;
}

/* ---- the text exposition ------------------------------------------------------------ */

struct text {
	char *buf;
	size_t len, cap;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 + (size_t)n;
		char *grown = realloc(t->buf, cap);
		if (!grown) {
			t->failed = true;
			return;
		}
		t->buf = grown;
		t->cap = cap;
	}
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const struct pb_serve_metric *metric_of(const struct pb_serve *srv, const char *plugin)
{
	for (const struct pb_serve_metric *m = srv->metrics; m; m = m->next)
		if (!strcmp(m->plugin, plugin))
			return m;
	return NULL;
}

/* The library's counters, one family each. */
static const struct {
	pb_stat stat;
	const char *name, *type, *help;
} worker_families[] = {
	{ PB_STAT_STARTS, "plugbox_worker_starts_total", "counter", "Workers started." },
	{ PB_STAT_RESTARTS, "plugbox_worker_restarts_total", "counter", "Workers started after the one before crashed." },
	{ PB_STAT_CRASHES, "plugbox_worker_crashes_total", "counter",
	  "Workers that ended unasked (violations, limits, timeouts, protocol errors)." },
	{ PB_STAT_VIOLATIONS, "plugbox_violations_total", "counter", "Workers the sandbox stopped." },
	{ PB_STAT_OUTPUT_DROPPED, "plugbox_output_dropped_lines_total", "counter",
	  "Lines of output and log records the meters turned away." },
	{ PB_STAT_HOST_DENIED, "plugbox_host_calls_denied_total", "counter",
	  "Host calls the plugin's policy does not grant." },
	{ PB_STAT_CPU_SECONDS, "plugbox_worker_cpu_seconds_total", "counter",
	  "CPU time of the plugin's workers, the live one's included." },
	{ PB_STAT_PEAK_RSS_BYTES, "plugbox_worker_peak_rss_bytes", "gauge",
	  "The largest peak resident memory of any of the plugin's workers." },
};

char *pb_serve_metrics_text(struct pb_serve *srv, size_t *len)
{
	struct text t = { .buf = malloc(TEXT_FIRST), .cap = TEXT_FIRST };
	static const struct pb_serve_metric zero;
	char **names = NULL;
	size_t n = 0;

	if (!t.buf)
		return NULL;
	t.buf[0] = '\0';
	/* The plugins directory as it is now: a removed plugin's numbers go
	 * with it. */
	if (pb_supervisor_plugins(srv->sup, &names, &n) < 0)
		n = 0;
	family(&t, "plugbox_calls_total", "counter", "Calls made through the daemon that ended, by outcome.");
	for (size_t i = 0; i < n; i++) {
		const struct pb_serve_metric *m = metric_of(srv, names[i]);
		for (int k = 0; k <= PB_ERROR_BAD_REQUEST; k++) {
			if (k == 0 || (m && m->outcomes[k]))
				put(&t, "plugbox_calls_total{plugin=\"%s\",outcome=\"%s\"} %llu\n", names[i],
				    k ? pb_error_kind_name((pb_error_kind)k) : "ok",
				    (unsigned long long)(m ? m->outcomes[k] : 0));
		}
	}
	family(&t, "plugbox_call_duration_seconds", "histogram",
	       "Time from the daemon reading a call to its answer being queued.");
	for (size_t i = 0; i < n; i++) {
		const struct pb_serve_metric *m = metric_of(srv, names[i]);
		uint64_t cum = 0;
		if (!m)
			m = &zero;
		for (size_t b = 0; b < PB_SERVE_BUCKETS; b++) {
			cum += m->buckets[b];
			put(&t, "plugbox_call_duration_seconds_bucket{plugin=\"%s\",le=\"%g\"} %llu\n", names[i],
			    pb_serve_bucket_bounds[b], (unsigned long long)cum);
		}
		put(&t, "plugbox_call_duration_seconds_bucket{plugin=\"%s\",le=\"+Inf\"} %llu\n", names[i],
		    (unsigned long long)m->count);
		put(&t, "plugbox_call_duration_seconds_sum{plugin=\"%s\"} %.9g\n", names[i], m->sum);
		put(&t, "plugbox_call_duration_seconds_count{plugin=\"%s\"} %llu\n", names[i],
		    (unsigned long long)m->count);
	}
	family(&t, "plugbox_calls_in_flight", "gauge", "Calls made through the daemon and not yet ended.");
	for (size_t i = 0; i < n; i++) {
		const struct pb_serve_metric *m = metric_of(srv, names[i]);
		put(&t, "plugbox_calls_in_flight{plugin=\"%s\"} %u\n", names[i], m ? m->inflight : 0);
	}
	for (size_t f = 0; f < sizeof(worker_families) / sizeof(worker_families[0]); f++) {
		family(&t, worker_families[f].name, worker_families[f].type, worker_families[f].help);
		for (size_t i = 0; i < n; i++) {
			double v = 0;
			pb_supervisor_plugin_stat(srv->sup, names[i], worker_families[f].stat, &v);
			put(&t, "%s{plugin=\"%s\"} %.17g\n", worker_families[f].name, names[i], v);
		}
	}
	family(&t, "plugbox_clients", "gauge", "Client connections open.");
	{
		unsigned clients = 0;
		for (const struct pb_serve_client *c = srv->clients; c; c = c->next)
			clients++;
		put(&t, "plugbox_clients %u\n", clients);
	}
	family(&t, "plugbox_client_connections_total", "counter", "Client connections accepted.");
	put(&t, "plugbox_client_connections_total %llu\n", (unsigned long long)srv->connections);
	family(&t, "plugbox_client_errors_total", "counter",
	       "Client messages refused (bad messages, broken framing).");
	put(&t, "plugbox_client_errors_total %llu\n", (unsigned long long)srv->client_errors);
	pb_strv_free(names, n);
	if (t.failed) {
		free(t.buf);
		return NULL;
	}
	*len = t.len;
	return t.buf;
}

/* ---- the metrics socket --------------------------------------------------------- */

int pb_serve_metrics_open(struct pb_serve *srv)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &srv->metrics_src };
	int r;

	if (!srv->metrics_path)
		return 0;
	r = pb_serve_listen(srv->metrics_path, &srv->metrics_fd, &srv->metrics_dev, &srv->metrics_ino);
	if (r < 0)
		return r;
	srv->metrics_src.kind = PB_SERVE_METRICS_LISTEN;
	if (epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->metrics_fd, &ev) < 0)
		return -errno;
	return 0;
}

static void mconn_close(struct pb_serve *srv, struct pb_serve_mconn *m)
{
	for (struct pb_serve_mconn **link = &srv->mconns; *link; link = &(*link)->next)
		if (*link == m) {
			*link = m->next;
			break;
		}
	close(m->fd);
	free(m->buf);
	free(m);
	srv->nmconns--;
}

void pb_serve_mconn_event(struct pb_serve *srv, struct pb_serve_mconn *m, uint32_t events)
{
	while (m->off < m->len) {
		ssize_t n = send(m->fd, m->buf + m->off, m->len - m->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !(events & (EPOLLHUP | EPOLLERR)))
			return; /* EPOLLOUT brings us back */
		if (n < 0)
			break;
		m->off += (size_t)n;
	}
	mconn_close(srv, m);
}

void pb_serve_metrics_accept(struct pb_serve *srv)
{
	for (int i = 0; i < 16; i++) {
		struct epoll_event ev = { .events = EPOLLOUT };
		struct pb_serve_mconn *m;
		pid_t pid;
		int fd = accept4(srv->metrics_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (!pb_serve_peer_ok(srv, fd, &pid)) {
			close(fd);
			continue;
		}
		/* A scraper that never reads holds one of a few places. */
		if (srv->nmconns >= MCONN_MAX || !(m = calloc(1, sizeof(*m)))) {
			close(fd);
			continue;
		}
		m->src.kind = PB_SERVE_METRICS_CONN;
		m->fd = fd;
		m->close_by = pb_serve_now() + MCONN_WAIT;
		m->buf = pb_serve_metrics_text(srv, &m->len);
		m->next = srv->mconns;
		srv->mconns = m;
		srv->nmconns++;
		ev.data.ptr = &m->src;
		if (!m->buf || epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			mconn_close(srv, m);
			continue;
		}
		pb_serve_mconn_event(srv, m, 0);
	}
}

void pb_serve_metrics_expire(struct pb_serve *srv, double t)
{
	for (struct pb_serve_mconn *m = srv->mconns, *next; m; m = next) {
		next = m->next;
		if (t >= m->close_by)
			mconn_close(srv, m);
	}
}

void pb_serve_metrics_close(struct pb_serve *srv)
{
	while (srv->mconns)
		mconn_close(srv, srv->mconns);
	if (srv->metrics_fd >= 0) {
		close(srv->metrics_fd);
		srv->metrics_fd = -1;
	}
	if (srv->metrics_path)
		pb_serve_unlink(srv->metrics_path, srv->metrics_dev, srv->metrics_ino);
	srv->metrics_ino = 0;
	while (srv->metrics) {
		struct pb_serve_metric *m = srv->metrics;
		srv->metrics = m->next;
		free(m->plugin);
		free(m);
	}
}

/* ---- the JSON log ------------------------------------------------------------------ */

/* Wall-clock time, as log collectors want it. */
static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Text that may be the plugin's: sanitised (valid UTF-8, no control
 * character) before jansson, which refuses invalid UTF-8. */
static int set_text(json_t *o, const char *key, const char *text)
{
	char *clean = pb_sanitize_dup(text ? text : "", 0);
	int r = json_object_set_new(o, key, json_string(clean ? clean : "?"));

	free(clean);
	return r;
}

static void write_json(json_t *o)
{
	char *line = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

	if (line)
		pb_stderr_line(line);
	free(line);
	json_decref(o);
}

static json_t *record(const char *event)
{
	json_t *o = json_object();

	if (o) {
		json_object_set_new(o, "time", json_real(wall_now()));
		json_object_set_new(o, "event", json_string(event));
	}
	return o;
}

static void json_output(void *userdata, const char *plugin, pb_stream stream, const char *line)
{
	static const char *const streams[] = { [PB_STREAM_STDOUT] = "stdout",
		                               [PB_STREAM_STDERR] = "stderr",
		                               [PB_STREAM_SUPERVISOR] = "supervisor",
		                               [PB_STREAM_LOG] = "log" };
	json_t *o = record("output");

	(void)userdata;
	if (!o)
		return;
	set_text(o, "plugin", plugin);
	json_object_set_new(o, "stream", json_string((unsigned)stream < 5 && streams[stream] ? streams[stream] : "?"));
	set_text(o, "message", line);
	write_json(o);
}

static void json_event(void *userdata, const char *plugin, pb_event_kind kind, int pid, const char *message,
                       const pb_error *err)
{
	static const char *const names[] = {
		[PB_EVENT_SPAWN] = "spawn",
		[PB_EVENT_EXIT] = "exit",
		[PB_EVENT_CRASH] = "crash",
		[PB_EVENT_VIOLATION] = "violation",
		[PB_EVENT_RESTART] = "restart",
		[PB_EVENT_HOST_DENIED] = "host_call_denied",
		[PB_EVENT_PROTOCOL] = "protocol_error",
	};
	json_t *o = record((unsigned)kind < sizeof(names) / sizeof(names[0]) && names[kind] ? names[kind] : "?");

	(void)userdata;
	if (!o)
		return;
	set_text(o, "plugin", plugin);
	json_object_set_new(o, "pid", json_integer(pid));
	set_text(o, "message", message);
	if (err) {
		json_object_set_new(o, "kind", json_string(pb_error_kind_name(pb_error_get_kind(err))));
		if (pb_error_get_kind(err) == PB_ERROR_VIOLATION) {
			uint64_t args[6];
			unsigned line = 0;
			const char *file = pb_error_get_policy_file(err, &line);
			json_t *a = json_array();
			set_text(o, "syscall", pb_error_get_syscall(err));
			set_text(o, "rule", pb_error_get_rule(err));
			set_text(o, "policy_file", file);
			json_object_set_new(o, "policy_line", json_integer(line));
			if (a && pb_error_get_syscall_args(err, args) == 6)
				for (int i = 0; i < 6; i++)
					json_array_append_new(a, json_integer((json_int_t)args[i]));
			json_object_set_new(o, "syscall_args", a);
		}
	}
	write_json(o);
}

void pb_serve_log_output(struct pb_serve *srv, const char *plugin, pb_stream stream, const char *line)
{
	char text[4096];

	if (srv->log_json) {
		json_output(srv, plugin, stream, line);
		return;
	}
	/* As the library's own stderr output says it. */
	/* A line may be up to 8 KiB (LINE_MAX_BYTES sanitised): cut between
	 * characters, as the text log is written as it is. */
	if (stream == PB_STREAM_SUPERVISOR)
		pb_utf8_format(text, sizeof(text), "plugbox: plugin '%s': %s", plugin, line);
	else
		pb_utf8_format(text, sizeof(text), "[%s] %s", plugin, line);
	pb_stderr_line(text);
}

void pb_serve_log_setup(struct pb_serve *srv)
{
	log_json = srv->log_json;
	if (!srv->log_json)
		return;
	pb_supervisor_set_output(srv->sup, json_output, srv);
	pb_supervisor_set_event_callback(srv->sup, json_event, srv);
}

void pb_serve_client_error(struct pb_serve *srv, pid_t pid, const char *message)
{
	json_t *o;

	srv->client_errors++;
	if (!log_json || !(o = record("client_protocol_error")))
		return;
	json_object_set_new(o, "client_pid", json_integer(pid));
	set_text(o, "message", message);
	write_json(o);
}

/* Through the process's stderr writer, never blocking: the daemon must
 * answer calls and SIGTERM while a log collector takes nothing. */
void pb_serve_say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n = log_json ? 0 : snprintf(line, sizeof(line), "plugbox serve: ");
	json_t *o;

	va_start(ap, fmt);
	pb_utf8_vformat(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (!log_json) {
		pb_stderr_line(line);
		return;
	}
	if ((o = record("daemon"))) {
		set_text(o, "message", line);
		write_json(o);
	}
}
