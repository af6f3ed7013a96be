/* supervisor.c - libplugbox's core: workers, their channels, and calls.
 *
 * This is the trust boundary. Every byte a worker sends arrives through
 * read_replies() (frames on the reply pipe), read_report() (violation
 * reports on the report socket) or read_output() (its stdout/stderr), and
 * each is bounded before it is used: frames by the frame reader and
 * pb_envelope_decode, reports by a fixed buffer, output by a line buffer.
 * What a worker may send depends on its state, and the table `legal` below
 * is the whole of that: anything else ends the worker with a protocol error,
 * never the supervisor.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <linux/audit.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plugbox.h"
#include "frame.h"
#include "policy.h"
#include "spawn.h"
#include "value.h"

#define PB_PROTOCOL_VERSION 1
#define LINE_MAX_BYTES 4096
#define REPORT_MAX_BYTES 4096
#define SHUTDOWN_GRACE_MS 2000

struct pb_error {
	pb_error_kind kind;
	char *plugin, *type, *message, *traceback;
};

enum worker_state { W_STARTING, W_READY, W_IN_CALL, W_DEAD };

static const char *const state_names[] = {
	[W_STARTING] = "starting", [W_READY] = "ready", [W_IN_CALL] = "in a call", [W_DEAD] = "dead",
};

struct line_buffer {
	char data[LINE_MAX_BYTES];
	size_t len;
};

struct worker {
	char *name;
	struct pb_spawned proc;
	enum worker_state state;
	struct pb_frame_reader reader;
	struct line_buffer out, err;
	uint8_t *send_buf;
	size_t send_len, send_off;
	uint64_t call_id;
	Plugbox__Envelope *hello;
	Plugbox__Envelope *reply;
	bool have_violation;
	int32_t violation_nr;
	uint32_t violation_arch;
	uint64_t violation_args[6];
	pb_error_kind end_kind;         /* set when we decided to end it */
	char end_message[512];
	bool reaped;
	int wstatus;
};

struct pb_supervisor {
	char *plugins_dir;
	char *worker_path;
	double timeout;
	pb_output_fn output;
	void *output_data;
	char message[512];
	struct worker **workers;
	size_t nworkers;
	uint64_t next_id;
	const struct pb_policy *policy;
};

/* ---- small helpers -------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_message(pb_supervisor *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->message, sizeof(s->message), fmt, ap);
	va_end(ap);
}

static void default_output(void *data, const char *plugin, pb_stream stream, const char *line)
{
	(void)data;
	if (stream == PB_STREAM_SUPERVISOR)
		fprintf(stderr, "plugbox: plugin '%s': %s\n", plugin, line);
	else
		fprintf(stderr, "[%s] %s\n", plugin, line);
}

static void emit(pb_supervisor *s, struct worker *w, pb_stream stream, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->output(s->output_data, w->name, stream, line);
}

static pb_error *error_new(pb_error_kind kind, const char *plugin, const char *type,
                           const char *message, const char *traceback)
{
	pb_error *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->kind = kind;
	e->plugin = strdup(plugin ? plugin : "");
	e->type = strdup(type ? type : "");
	e->message = strdup(message ? message : "");
	e->traceback = strdup(traceback ? traceback : "");
	if (!e->plugin || !e->type || !e->message || !e->traceback) {
		pb_error_free(e);
		return NULL;
	}
	return e;
}

static bool valid_plugin_name(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > 128)
		return false;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
		      (*n >= '0' && *n <= '9') || *n == '_' || *n == '-'))
			return false;
	return true;
}

/* Write without raising SIGPIPE in the host: the library must not change
 * the process's signal dispositions, so block it for this thread and
 * swallow the one our write raised. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	ssize_t n;
	int saved;
	bool was_pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, buf, len);
	saved = errno;
	if (n < 0 && saved == EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return n;
}

/* ---- ending a worker ---------------------------------------------------- */

static void end_worker(struct worker *w, pb_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (w->end_kind == 0) {
		w->end_kind = kind;
		va_start(ap, fmt);
		vsnprintf(w->end_message, sizeof(w->end_message), fmt, ap);
		va_end(ap);
	}
	if (!w->reaped && w->proc.pid > 0)
		kill(w->proc.pid, SIGKILL);
}

static void reap(struct worker *w)
{
	if (w->reaped || w->proc.pid <= 0)
		return;
	while (waitpid(w->proc.pid, &w->wstatus, 0) < 0 && errno == EINTR)
		;
	w->reaped = true;
}

static void worker_free(struct worker *w)
{
	if (!w)
		return;
	if (!w->reaped && w->proc.pid > 0) {
		kill(w->proc.pid, SIGKILL);
		reap(w);
	}
	pb_spawned_release(&w->proc);
	pb_frame_reader_free(&w->reader);
	if (w->hello)
		pb_envelope_free(w->hello);
	if (w->reply)
		pb_envelope_free(w->reply);
	free(w->send_buf);
	free(w->name);
	free(w);
}

/* ---- what a worker may send, by state ------------------------------------ */

typedef void (*body_handler)(pb_supervisor *s, struct worker *w, Plugbox__Envelope *env, bool *keep);

static void on_hello(pb_supervisor *s, struct worker *w, Plugbox__Envelope *env, bool *keep)
{
	const Plugbox__Hello *h = env->hello;
	(void)s;
	if (env->id != 0 || h->protocol_version != PB_PROTOCOL_VERSION || strcmp(h->plugin, w->name) != 0) {
		end_worker(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a bad hello", w->name);
		return;
	}
	w->hello = env;
	*keep = true;
	w->state = W_READY;
}

static pb_error_kind kind_from_wire(Plugbox__ErrorKind k)
{
	switch (k) {
	case PLUGBOX__ERROR_KIND__ERROR_KIND_EXCEPTION: return PB_ERROR_EXCEPTION;
	case PLUGBOX__ERROR_KIND__ERROR_KIND_NOT_FOUND: return PB_ERROR_NOT_FOUND;
	case PLUGBOX__ERROR_KIND__ERROR_KIND_CONFIG: return PB_ERROR_CONFIG;
	case PLUGBOX__ERROR_KIND__ERROR_KIND_BAD_REQUEST: return PB_ERROR_BAD_REQUEST;
	case PLUGBOX__ERROR_KIND__ERROR_KIND_UNAVAILABLE: return PB_ERROR_UNAVAILABLE;
	default: return PB_ERROR_PROTOCOL;   /* a worker cannot claim the others */
	}
}

/* An error instead of Hello: the plugin could not be set up (bad layout,
 * escaping deps dir) or a sandbox layer failed. The worker is done. */
static void on_start_error(pb_supervisor *s, struct worker *w, Plugbox__Envelope *env, bool *keep)
{
	const Plugbox__Error *e = env->error;
	pb_error_kind kind = kind_from_wire(e->kind);
	(void)s;
	(void)keep;
	if (env->id != 0 || kind == PB_ERROR_PROTOCOL || kind == PB_ERROR_BAD_REQUEST) {
		end_worker(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a bad start-up error", w->name);
		return;
	}
	if (kind == PB_ERROR_EXCEPTION)
		kind = PB_ERROR_UNAVAILABLE;   /* the worker's own glue failed */
	end_worker(w, kind, "%s", e->message);
}

static void on_reply(pb_supervisor *s, struct worker *w, Plugbox__Envelope *env, bool *keep)
{
	(void)s;
	if (env->id != w->call_id) {
		end_worker(w, PB_ERROR_PROTOCOL,
		           "worker for plugin '%s' answered call %llu while call %llu was pending",
		           w->name, (unsigned long long)env->id, (unsigned long long)w->call_id);
		return;
	}
	if (env->body_case == PLUGBOX__ENVELOPE__BODY_ERROR &&
	    kind_from_wire(env->error->kind) == PB_ERROR_PROTOCOL) {
		end_worker(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent an error of unknown kind", w->name);
		return;
	}
	w->reply = env;
	*keep = true;
	w->state = W_READY;
}

static void on_log(pb_supervisor *s, struct worker *w, Plugbox__Envelope *env, bool *keep)
{
	(void)keep;
	emit(s, w, PB_STREAM_STDERR, "%s: %s", env->log->logger, env->log->message);
}

static const struct {
	enum worker_state state;
	Plugbox__Envelope__BodyCase body;
	body_handler handle;
} legal[] = {
	{ W_STARTING, PLUGBOX__ENVELOPE__BODY_HELLO, on_hello },
	{ W_STARTING, PLUGBOX__ENVELOPE__BODY_ERROR, on_start_error },
	{ W_STARTING, PLUGBOX__ENVELOPE__BODY_LOG, on_log },
	{ W_READY, PLUGBOX__ENVELOPE__BODY_LOG, on_log },
	{ W_IN_CALL, PLUGBOX__ENVELOPE__BODY_RESULT, on_reply },
	{ W_IN_CALL, PLUGBOX__ENVELOPE__BODY_ERROR, on_reply },
	{ W_IN_CALL, PLUGBOX__ENVELOPE__BODY_LOG, on_log },
};

static const char *body_name(Plugbox__Envelope__BodyCase b)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(&plugbox__envelope__descriptor, (unsigned)b);
	return f ? f->name : "an empty envelope";
}

static void dispatch(pb_supervisor *s, struct worker *w, Plugbox__Envelope *env)
{
	bool keep = false;

	for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++) {
		if (legal[i].state == w->state && legal[i].body == env->body_case) {
			legal[i].handle(s, w, env, &keep);
			if (!keep)
				pb_envelope_free(env);
			return;
		}
	}
	end_worker(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent %s while %s",
	           w->name, body_name(env->body_case), state_names[w->state]);
	pb_envelope_free(env);
}

/* ---- reading from a worker ---------------------------------------------- */

static void read_replies(pb_supervisor *s, struct worker *w)
{
	for (int frames = 0; frames < 64 && w->end_kind == 0; frames++) {
		int r = pb_frame_read_fd(&w->reader, w->proc.replies_fd);
		uint8_t *payload;
		uint32_t len;
		Plugbox__Envelope *env;
		char why[160];

		if (r == 0)
			return;
		if (r == -ENODATA || r == -EPIPE) {
			/* Closed channel: either it is dying (the pidfd will say) or
			 * it closed its end on purpose, which ends it too. */
			if (r == -EPIPE)
				end_worker(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' closed its channel mid-frame", w->name);
			close(w->proc.replies_fd);
			w->proc.replies_fd = -1;
			return;
		}
		if (r < 0) {
			end_worker(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a bad frame: %s", w->name,
			           r == -EMSGSIZE ? "length over the limit" : strerror(-r));
			return;
		}
		if (pb_frame_take(&w->reader, &payload, &len) < 0)
			return;
		r = pb_envelope_decode(payload, len, &env, why, sizeof(why));
		free(payload);
		if (r < 0) {
			end_worker(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent an undecodable envelope: %s",
			           w->name, why);
			return;
		}
		dispatch(s, w, env);
	}
}

static const char *arch_name(uint32_t arch, int nr)
{
	switch (arch) {
	case AUDIT_ARCH_X86_64: return (nr & 0x40000000) ? "x32" : "x86_64";
	case AUDIT_ARCH_I386: return "i386";
	case AUDIT_ARCH_AARCH64: return "aarch64";
	case AUDIT_ARCH_ARM: return "arm";
	default: return "unknown architecture";
	}
}

static bool native_arch(uint32_t arch, int nr)
{
#if defined(__x86_64__)
	return arch == AUDIT_ARCH_X86_64 && !(nr & 0x40000000);
#else
	(void)nr;
	return arch == AUDIT_ARCH_AARCH64;
#endif
}

/* "ptrace(0x10, 0x1, ...)" for the syscall of a report. */
static void describe_syscall(const struct worker *w, char *buf, size_t len)
{
	uint32_t token = w->violation_arch;
	char *name;

	if (w->violation_arch == AUDIT_ARCH_X86_64 && (w->violation_nr & 0x40000000))
		token = SCMP_ARCH_X32;
	name = seccomp_syscall_resolve_num_arch(token, w->violation_nr);
	snprintf(buf, len, "%s(%#llx, %#llx, %#llx, %#llx, %#llx, %#llx)%s%s",
	         name ? name : "syscall-unknown",
	         (unsigned long long)w->violation_args[0], (unsigned long long)w->violation_args[1],
	         (unsigned long long)w->violation_args[2], (unsigned long long)w->violation_args[3],
	         (unsigned long long)w->violation_args[4], (unsigned long long)w->violation_args[5],
	         native_arch(w->violation_arch, w->violation_nr) ? "" : " via the ",
	         native_arch(w->violation_arch, w->violation_nr) ? "" : arch_name(w->violation_arch, w->violation_nr));
	if (!name) {
		char *p = strchr(buf, '(');
		char num[40];
		snprintf(num, sizeof(num), "syscall %d", w->violation_nr);
		if (p && strlen(num) + strlen(p) < len)
			memmove(buf + strlen(num), p, strlen(p) + 1), memcpy(buf, num, strlen(num));
	}
	free(name);
}

/* Which rule decided a reported syscall, as a user reads it. */
static void describe_rule(const pb_supervisor *s, const struct worker *w,
                          const struct pb_syscall_rule **rule_out, char *buf, size_t len)
{
	const struct pb_syscall_rule *rule = NULL;

	if (!native_arch(w->violation_arch, w->violation_nr)) {
		snprintf(buf, len, "only native %s syscalls pass: kill (%s)",
		         arch_name(AUDIT_ARCH_X86_64, 0), s->policy->name);
	} else {
		rule = pb_policy_match(s->policy, w->violation_nr, w->violation_args, w->proc.pid);
		if (!rule)
			snprintf(buf, len, "not named by the %s: kill", s->policy->name);
		else if (rule->verdict == PB_ALLOW)
			snprintf(buf, len, "32-bit argument with garbage in its upper half: kill (%s)",
			         s->policy->name);
		else
			snprintf(buf, len, "'%s' (%s)", rule->text, s->policy->name);
	}
	if (rule_out)
		*rule_out = rule;
}

static void read_report(pb_supervisor *s, struct worker *w)
{
	for (int msgs = 0; msgs < 64 && w->end_kind == 0; msgs++) {
		uint8_t buf[REPORT_MAX_BYTES];
		ssize_t n = recv(w->proc.report_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		Plugbox__Envelope *env;
		const struct pb_syscall_rule *rule;
		char why[160], call[256], rule_text[256];

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			close(w->proc.report_fd);
			w->proc.report_fd = -1;
			return;
		}
		if ((size_t)n > sizeof(buf) ||
		    pb_envelope_decode(buf, (size_t)n, &env, why, sizeof(why)) < 0) {
			end_worker(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' wrote garbage on its report socket",
			           w->name);
			return;
		}
		if (env->body_case != PLUGBOX__ENVELOPE__BODY_VIOLATION || env->violation->n_args != 6) {
			pb_envelope_free(env);
			end_worker(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' wrote a non-report on its report socket",
			           w->name);
			return;
		}
		w->violation_nr = env->violation->syscall_nr;
		w->violation_arch = env->violation->arch;
		memcpy(w->violation_args, env->violation->args, sizeof(w->violation_args));
		pb_envelope_free(env);
		describe_syscall(w, call, sizeof(call));
		describe_rule(s, w, &rule, rule_text, sizeof(rule_text));
		if (rule && rule->verdict == PB_DENY_REPORT && native_arch(w->violation_arch, w->violation_nr)) {
			emit(s, w, PB_STREAM_SUPERVISOR, "denied %s: %s by rule %s", call,
			     strerror(rule->err), rule_text);
		} else {
			w->have_violation = true;   /* it is dying by SIGSYS now */
		}
	}
}

static void flush_line(pb_supervisor *s, struct worker *w, struct line_buffer *b, pb_stream stream)
{
	/* A plugin must not reach the host's terminal with escape sequences. */
	for (size_t i = 0; i < b->len; i++)
		if ((unsigned char)b->data[i] < 0x20 ? b->data[i] != '\t' : b->data[i] == 0x7f)
			b->data[i] = '?';
	b->data[b->len] = '\0';
	s->output(s->output_data, w->name, stream, b->data);
	b->len = 0;
}

static void read_output(pb_supervisor *s, struct worker *w, int *fd, struct line_buffer *b, pb_stream stream)
{
	char chunk[4096];

	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(*fd, chunk, sizeof(chunk));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			if (b->len)
				flush_line(s, w, b, stream);
			close(*fd);
			*fd = -1;
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (chunk[i] == '\n') {
				flush_line(s, w, b, stream);
				continue;
			}
			b->data[b->len++] = chunk[i];
			if (b->len == sizeof(b->data) - 1)
				flush_line(s, w, b, stream);
		}
	}
}

static void write_pending(struct worker *w)
{
	while (w->send_off < w->send_len) {
		ssize_t n = write_nosigpipe(w->proc.calls_fd, w->send_buf + w->send_off, w->send_len - w->send_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* The worker is gone; its pidfd will tell how. */
			w->send_off = w->send_len;
			return;
		}
		w->send_off += (size_t)n;
	}
}

/* Everything left in the pipes once the worker has exited. */
static void drain(pb_supervisor *s, struct worker *w)
{
	if (w->proc.report_fd >= 0)
		read_report(s, w);
	if (w->proc.replies_fd >= 0)
		read_replies(s, w);
	for (int i = 0; i < 64 && w->proc.stdout_fd >= 0; i++)
		read_output(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
	for (int i = 0; i < 64 && w->proc.stderr_fd >= 0; i++)
		read_output(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
}

/* Run the worker's channel until it leaves `waiting` (a reply or Hello came),
 * it dies, or the deadline passes (0 = none). */
static void run_worker(pb_supervisor *s, struct worker *w, enum worker_state waiting, double deadline)
{
	while (w->state == waiting && !w->reaped) {
		struct pollfd p[6];
		int n = 0, timeout_ms = -1;
		int i_replies = -1, i_out = -1, i_err = -1, i_report = -1, i_calls = -1, i_pid;

		if (w->end_kind != 0) {
			/* We killed it: wait for it, keep what it said. */
			reap(w);
			drain(s, w);
			w->state = W_DEAD;
			break;
		}
		if (deadline > 0) {
			double left = deadline - now_s();
			if (left <= 0) {
				end_worker(w, PB_ERROR_TIMEOUT, "plugin '%s' timed out after %g s", w->name, s->timeout);
				continue;
			}
			timeout_ms = (int)ceil(left * 1000.0);
		}
		i_pid = n;
		p[n++] = (struct pollfd){ .fd = w->proc.pidfd, .events = POLLIN };
		if (w->proc.replies_fd >= 0)
			i_replies = n, p[n++] = (struct pollfd){ .fd = w->proc.replies_fd, .events = POLLIN };
		if (w->proc.stdout_fd >= 0)
			i_out = n, p[n++] = (struct pollfd){ .fd = w->proc.stdout_fd, .events = POLLIN };
		if (w->proc.stderr_fd >= 0)
			i_err = n, p[n++] = (struct pollfd){ .fd = w->proc.stderr_fd, .events = POLLIN };
		if (w->proc.report_fd >= 0)
			i_report = n, p[n++] = (struct pollfd){ .fd = w->proc.report_fd, .events = POLLIN };
		if (w->send_off < w->send_len && w->proc.calls_fd >= 0)
			i_calls = n, p[n++] = (struct pollfd){ .fd = w->proc.calls_fd, .events = POLLOUT };

		int r = poll(p, (nfds_t)n, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			end_worker(w, PB_ERROR_CRASHED, "poll: %s", strerror(errno));
			continue;
		}
		/* Reports first: they explain a death that follows. */
		if (i_report >= 0 && p[i_report].revents)
			read_report(s, w);
		if (i_out >= 0 && p[i_out].revents)
			read_output(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
		if (i_err >= 0 && p[i_err].revents)
			read_output(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
		if (i_replies >= 0 && p[i_replies].revents)
			read_replies(s, w);
		if (i_calls >= 0 && p[i_calls].revents)
			write_pending(w);
		if (p[i_pid].revents) {
			/* What it wrote before exiting is still judged in its state. */
			reap(w);
			drain(s, w);
			if (w->state == waiting)
				w->state = W_DEAD;
		}
	}
}

/* Why a worker is gone, as an error for the caller. */
static pb_error *death_error(const pb_supervisor *s, struct worker *w)
{
	char msg[768], call[256], rule[256];
	int st = w->wstatus;

	if (w->reaped && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) {
		if (w->have_violation) {
			describe_syscall(w, call, sizeof(call));
			describe_rule(s, w, NULL, rule, sizeof(rule));
			snprintf(msg, sizeof(msg), "plugin '%s' stopped by the sandbox: %s is not allowed by rule %s",
			         w->name, call, rule);
		} else {
			snprintf(msg, sizeof(msg), "plugin '%s' stopped by the sandbox: killed by the seccomp filter "
			         "without a report (it tried to replace or block the SIGSYS reporter)", w->name);
		}
		return error_new(PB_ERROR_VIOLATION, w->name, "", msg, "");
	}
	if (w->end_kind != 0)
		return error_new(w->end_kind, w->name, "", w->end_message, "");
	if (w->reaped && WIFSIGNALED(st))
		snprintf(msg, sizeof(msg), "worker for plugin '%s' died: killed by signal %d (%s)",
		         w->name, WTERMSIG(st), strsignal(WTERMSIG(st)));
	else if (w->reaped)
		snprintf(msg, sizeof(msg), "worker for plugin '%s' died: exit status %d", w->name, WEXITSTATUS(st));
	else
		snprintf(msg, sizeof(msg), "worker for plugin '%s' stopped answering", w->name);
	return error_new(PB_ERROR_CRASHED, w->name, "", msg, "");
}

/* ---- workers ---------------------------------------------------------------- */

static struct worker *find_worker(pb_supervisor *s, const char *name)
{
	for (size_t i = 0; i < s->nworkers; i++)
		if (strcmp(s->workers[i]->name, name) == 0)
			return s->workers[i];
	return NULL;
}

static void drop_worker(pb_supervisor *s, struct worker *w)
{
	for (size_t i = 0; i < s->nworkers; i++) {
		if (s->workers[i] == w) {
			s->workers[i] = s->workers[--s->nworkers];
			break;
		}
	}
	worker_free(w);
}

/* A ready worker for plugin `name`, started if need be. */
static struct worker *get_worker(pb_supervisor *s, const char *name, pb_error **err)
{
	struct worker *w = find_worker(s, name);
	char dir[4096], why[512];
	struct stat st;
	double deadline;

	if (w && w->state == W_READY)
		return w;
	if (w)
		drop_worker(s, w);

	if (!valid_plugin_name(name)) {
		snprintf(why, sizeof(why), "'%s' is not a plugin name ([A-Za-z0-9_-]+)", name);
		*err = error_new(PB_ERROR_NOT_FOUND, name, "", why, "");
		return NULL;
	}
	if (snprintf(dir, sizeof(dir), "%s/%s", s->plugins_dir, name) >= (int)sizeof(dir) ||
	    stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, sizeof(why), "no plugin '%s' in %s", name, s->plugins_dir);
		*err = error_new(PB_ERROR_NOT_FOUND, name, "", why, "");
		return NULL;
	}
	struct worker **grown = realloc(s->workers, (s->nworkers + 1) * sizeof(*grown));
	w = calloc(1, sizeof(*w));
	if (grown)
		s->workers = grown;
	if (!grown || !w || !(w->name = strdup(name))) {
		free(w);
		*err = error_new(PB_ERROR_UNAVAILABLE, name, "", "out of memory", "");
		return NULL;
	}
	pb_frame_reader_init(&w->reader, PB_FRAME_MAX_DEFAULT);
	w->proc.pid = -1;
	if (pb_spawn_worker(s->worker_path, name, dir, s->policy, &w->proc, why, sizeof(why)) < 0) {
		char msg[640];
		snprintf(msg, sizeof(msg), "plugin '%s' could not be started: %s", name, why);
		*err = error_new(PB_ERROR_UNAVAILABLE, name, "", msg, "");
		worker_free(w);
		return NULL;
	}
	s->workers[s->nworkers++] = w;
	w->state = W_STARTING;
	deadline = s->timeout > 0 ? now_s() + s->timeout : 0;
	run_worker(s, w, W_STARTING, deadline);
	if (w->state != W_READY) {
		if (w->end_kind == PB_ERROR_CONFIG || w->end_kind == PB_ERROR_UNAVAILABLE) {
			char *msg = NULL;
			if (asprintf(&msg, "plugin '%s': %s", name, w->end_message) > 0) {
				snprintf(w->end_message, sizeof(w->end_message), "%.*s",
				         (int)sizeof(w->end_message) - 1, msg);
				free(msg);
			}
		}
		*err = death_error(s, w);
		drop_worker(s, w);
		return NULL;
	}
	return w;
}

static void shutdown_worker(pb_supervisor *s, struct worker *w)
{
	if (!w->reaped && w->state == W_READY) {
		Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
		Plugbox__Shutdown bye = PLUGBOX__SHUTDOWN__INIT;
		uint8_t buf[16];
		size_t n;

		env.body_case = PLUGBOX__ENVELOPE__BODY_SHUTDOWN;
		env.shutdown = &bye;
		n = protobuf_c_message_pack(&env.base, buf + 4);
		buf[0] = (uint8_t)n;
		buf[1] = buf[2] = buf[3] = 0;
		if (write_nosigpipe(w->proc.calls_fd, buf, n + 4) < 0) {
			/* it is already gone or not reading: the kill below handles it */
		}
		close(w->proc.calls_fd);
		w->proc.calls_fd = -1;
		w->state = W_IN_CALL;    /* wait for the exit, printing what it says */
		run_worker(s, w, W_IN_CALL, now_s() + SHUTDOWN_GRACE_MS / 1000.0);
	}
	if (!w->reaped) {
		kill(w->proc.pid, SIGKILL);
		reap(w);
		drain(s, w);
	}
	w->state = W_DEAD;
}

/* ---- public API --------------------------------------------------------- */

PB_API int pb_supervisor_new(const char *plugins_dir, pb_supervisor **out)
{
	pb_supervisor *s;
	const char *worker = getenv("PLUGBOX_WORKER");
	char *real;

	*out = NULL;
	real = realpath(plugins_dir, NULL);
	if (!real)
		return -errno;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->worker_path = strdup(worker && *worker ? worker : PB_WORKER_PATH))) {
		free(s);
		free(real);
		return -ENOMEM;
	}
	s->plugins_dir = real;
	s->timeout = 60;
	s->output = default_output;
	s->policy = pb_policy_builtin();
	*out = s;
	return 0;
}

PB_API void pb_supervisor_free(pb_supervisor *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nworkers; i++) {
		shutdown_worker(s, s->workers[i]);
		worker_free(s->workers[i]);
	}
	free(s->workers);
	free(s->plugins_dir);
	free(s->worker_path);
	free(s);
}

PB_API int pb_supervisor_set_worker(pb_supervisor *s, const char *path)
{
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	free(s->worker_path);
	s->worker_path = p;
	return 0;
}

PB_API int pb_supervisor_set_timeout(pb_supervisor *s, double seconds)
{
	if (!(seconds >= 0) || seconds > 86400.0 * 365) {
		set_message(s, "timeout must be between 0 and one year, not %g", seconds);
		return -EINVAL;
	}
	s->timeout = seconds;
	return 0;
}

PB_API void pb_supervisor_set_output(pb_supervisor *s, pb_output_fn fn, void *userdata)
{
	s->output = fn ? fn : default_output;
	s->output_data = fn ? userdata : NULL;
}

PB_API const char *pb_supervisor_strerror(const pb_supervisor *s)
{
	return s->message;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

PB_API void pb_strv_free(char **v, size_t count)
{
	for (size_t i = 0; v && i < count; i++)
		free(v[i]);
	free(v);
}

PB_API int pb_supervisor_plugins(pb_supervisor *s, char ***names, size_t *count)
{
	DIR *d = opendir(s->plugins_dir);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;

	*names = NULL;
	*count = 0;
	if (!d) {
		int r = -errno;
		set_message(s, "cannot read %s: %s", s->plugins_dir, strerror(errno));
		return r;
	}
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (!valid_plugin_name(e->d_name)) {
			char line[600];
			snprintf(line, sizeof(line), "skipping '%s' in %s: not a plugin name ([A-Za-z0-9_-]+)",
			         e->d_name, s->plugins_dir);
			/* not a plugin: report with the directory name sanitised by the callback */
			s->output(s->output_data, "-", PB_STREAM_SUPERVISOR, line);
			continue;
		}
		char **grown = realloc(v, (n + 1) * sizeof(*v));
		if (!grown || !(grown[n] = strdup(e->d_name))) {
			if (grown)
				v = grown;
			closedir(d);
			pb_strv_free(v, n);
			return -ENOMEM;
		}
		v = grown;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_str);
	*names = v;
	*count = n;
	return 0;
}

static Plugbox__Value *string_list(char **items, size_t n)
{
	Plugbox__Value *l = pb_value_new_list();
	for (size_t i = 0; l && i < n; i++) {
		Plugbox__Value *v = pb_value_new_string(items[i], strlen(items[i]));
		if (!v || pb_value_list_append(l, v) < 0) {
			pb_value_free(v);
			pb_value_free(l);
			return NULL;
		}
	}
	return l;
}

static int put(Plugbox__Value *map, const char *key, Plugbox__Value *v)
{
	Plugbox__Value *k = pb_value_new_string(key, strlen(key));
	if (!k || !v || pb_value_map_put(map, k, v) < 0) {
		pb_value_free(k);
		pb_value_free(v);
		return -ENOMEM;
	}
	return 0;
}

PB_API int pb_describe(pb_supervisor *s, const char *plugin, pb_value **info, pb_error **err)
{
	struct worker *w;
	const Plugbox__Hello *h;
	Plugbox__Value *m, *eps;
	int r = 0;

	*info = NULL;
	*err = NULL;
	w = get_worker(s, plugin, err);
	if (!w)
		return -ENOENT;
	h = w->hello->hello;
	m = pb_value_new_map();
	eps = pb_value_new_list();
	for (size_t i = 0; eps && i < h->n_entry_points; i++) {
		Plugbox__Value *ep = pb_value_new_map();
		if (!ep || put(ep, "group", pb_value_new_string(h->entry_points[i]->group, strlen(h->entry_points[i]->group))) ||
		    put(ep, "name", pb_value_new_string(h->entry_points[i]->name, strlen(h->entry_points[i]->name))) ||
		    put(ep, "value", pb_value_new_string(h->entry_points[i]->value, strlen(h->entry_points[i]->value))) ||
		    pb_value_list_append(eps, ep) < 0) {
			pb_value_free(ep);
			r = -ENOMEM;
			break;
		}
	}
	if (!m || !eps || r < 0 ||
	    put(m, "name", pb_value_new_string(plugin, strlen(plugin))) ||
	    put(m, "layout", pb_value_new_string(h->layout, strlen(h->layout))) ||
	    put(m, "version", pb_value_new_string(h->version, strlen(h->version))) ||
	    put(m, "exports", string_list(h->exports, h->n_exports)) ||
	    (r = put(m, "entry_points", eps), eps = NULL, r) ||
	    put(m, "sys_path", string_list(h->sys_path, h->n_sys_path)) ||
	    put(m, "layers", string_list(h->layers, h->n_layers))) {
		pb_value_free(m);
		pb_value_free(eps);
		*err = error_new(PB_ERROR_UNAVAILABLE, plugin, "", "out of memory", "");
		return -ENOMEM;
	}
	*info = (pb_value *)m;
	return 0;
}

PB_API int pb_call(pb_supervisor *s, const char *plugin, const char *function,
                   pb_value *const *args, size_t nargs, pb_value **result, pb_error **err)
{
	return pb_call_kw(s, plugin, function, args, nargs, NULL, NULL, 0, result, err);
}

PB_API int pb_call_kw(pb_supervisor *s, const char *plugin, const char *function,
                      pb_value *const *args, size_t nargs,
                      const char *const *kwnames, pb_value *const *kwvalues, size_t nkwargs,
                      pb_value **result, pb_error **err)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Call call = PLUGBOX__CALL__INIT;
	Plugbox__KeywordArgument *kw_store = NULL, **kw_ptrs = NULL;
	struct worker *w;
	size_t len;
	double deadline;

	*result = NULL;
	*err = NULL;
	if (!pb_utf8_valid(function, strlen(function))) {
		*err = error_new(PB_ERROR_BAD_REQUEST, plugin, "", "the function name is not UTF-8", "");
		return -EINVAL;
	}
	for (size_t i = 0; i < nkwargs; i++) {
		if (!kwnames[i] || !*kwnames[i] || !pb_utf8_valid(kwnames[i], strlen(kwnames[i])) ||
		    pb_value_depth((const Plugbox__Value *)kwvalues[i]) > PB_VALUE_MAX_DEPTH - 1) {
			char msg[160];
			snprintf(msg, sizeof(msg), "keyword argument %zu has no valid name or is nested too deeply", i + 1);
			*err = error_new(PB_ERROR_BAD_REQUEST, plugin, "", msg, "");
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < nargs; i++) {
		if (pb_value_depth((const Plugbox__Value *)args[i]) > PB_VALUE_MAX_DEPTH - 1) {
			char msg[128];
			snprintf(msg, sizeof(msg), "argument %zu is nested deeper than %d levels", i + 1,
			         PB_VALUE_MAX_DEPTH - 1);
			*err = error_new(PB_ERROR_BAD_REQUEST, plugin, "", msg, "");
			return -EINVAL;
		}
	}
	deadline = s->timeout > 0 ? now_s() + s->timeout : 0;
	w = get_worker(s, plugin, err);
	if (!w)
		return -ENOENT;

	call.function = (char *)function;
	call.n_args = nargs;
	call.args = (Plugbox__Value **)args;
	if (nkwargs) {
		kw_store = calloc(nkwargs, sizeof(*kw_store));
		kw_ptrs = calloc(nkwargs, sizeof(*kw_ptrs));
		if (!kw_store || !kw_ptrs) {
			free(kw_store);
			free(kw_ptrs);
			*err = error_new(PB_ERROR_UNAVAILABLE, plugin, "", "out of memory", "");
			return -ENOMEM;
		}
		for (size_t i = 0; i < nkwargs; i++) {
			plugbox__keyword_argument__init(&kw_store[i]);
			kw_store[i].name = (char *)kwnames[i];
			kw_store[i].value = (Plugbox__Value *)kwvalues[i];
			kw_ptrs[i] = &kw_store[i];
		}
		call.n_kwargs = nkwargs;
		call.kwargs = kw_ptrs;
	}
	env.id = ++s->next_id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_CALL;
	env.call = &call;
	len = protobuf_c_message_get_packed_size(&env.base);
	free(w->send_buf);
	w->send_buf = len <= PB_FRAME_MAX_DEFAULT ? malloc(len + 4) : NULL;
	if (!w->send_buf) {
		free(kw_store);
		free(kw_ptrs);
		*err = len > PB_FRAME_MAX_DEFAULT
			? error_new(PB_ERROR_BAD_REQUEST, plugin, "", "the call is larger than a frame may be", "")
			: error_new(PB_ERROR_UNAVAILABLE, plugin, "", "out of memory", "");
		return len > PB_FRAME_MAX_DEFAULT ? -EMSGSIZE : -ENOMEM;
	}
	w->send_buf[0] = (uint8_t)len;
	w->send_buf[1] = (uint8_t)(len >> 8);
	w->send_buf[2] = (uint8_t)(len >> 16);
	w->send_buf[3] = (uint8_t)(len >> 24);
	protobuf_c_message_pack(&env.base, w->send_buf + 4);
	free(kw_store);
	free(kw_ptrs);
	w->send_len = len + 4;
	w->send_off = 0;
	w->call_id = env.id;
	w->state = W_IN_CALL;
	write_pending(w);
	run_worker(s, w, W_IN_CALL, deadline);

	if (w->state == W_READY && w->reply) {
		Plugbox__Envelope *reply = w->reply;
		w->reply = NULL;
		if (reply->body_case == PLUGBOX__ENVELOPE__BODY_RESULT) {
			Plugbox__Value *v = reply->result->value;
			reply->result->value = NULL;
			pb_envelope_free(reply);
			if (!v)
				v = pb_value_new_null();
			*result = (pb_value *)v;
			return v ? 0 : -ENOMEM;
		}
		const Plugbox__Error *e = reply->error;
		*err = error_new(kind_from_wire(e->kind), plugin, e->type, e->message, e->traceback);
		pb_envelope_free(reply);
		return -EREMOTEIO;
	}
	*err = death_error(s, w);
	drop_worker(s, w);
	return -ECHILD;
}

PB_API pb_error_kind pb_error_get_kind(const pb_error *e) { return e->kind; }
PB_API const char *pb_error_get_plugin(const pb_error *e) { return e->plugin; }
PB_API const char *pb_error_get_type(const pb_error *e) { return e->type; }
PB_API const char *pb_error_get_message(const pb_error *e) { return e->message; }
PB_API const char *pb_error_get_traceback(const pb_error *e) { return e->traceback; }

PB_API const char *pb_error_kind_name(pb_error_kind kind)
{
	static const char *const names[] = {
		[PB_ERROR_EXCEPTION] = "exception", [PB_ERROR_NOT_FOUND] = "not_found",
		[PB_ERROR_CONFIG] = "config", [PB_ERROR_VIOLATION] = "violation",
		[PB_ERROR_TIMEOUT] = "timeout", [PB_ERROR_CRASHED] = "crashed",
		[PB_ERROR_PROTOCOL] = "protocol", [PB_ERROR_UNAVAILABLE] = "unavailable",
		[PB_ERROR_BAD_REQUEST] = "bad_request",
	};
	return (unsigned)kind < sizeof(names) / sizeof(names[0]) && names[kind] ? names[kind] : "unknown";
}

PB_API void pb_error_free(pb_error *e)
{
	if (!e)
		return;
	free(e->plugin);
	free(e->type);
	free(e->message);
	free(e->traceback);
	free(e);
}

PB_API pb_value *pb_value_parse_json(const char *json, char **why)
{
	Plugbox__Value *v = NULL;
	char reason[256];

	if (why)
		*why = NULL;
	if (pb_value_from_json(json, strlen(json), &v, reason, sizeof(reason)) < 0) {
		if (why)
			*why = strdup(reason);
		return NULL;
	}
	return (pb_value *)v;
}

PB_API int pb_value_print_json(const pb_value *v, FILE *out)
{
	return pb_value_to_json((const Plugbox__Value *)v, out);
}

PB_API void pb_value_destroy(pb_value *v)
{
	pb_value_free((Plugbox__Value *)v);
}

PB_API const char *pb_value_get_string(const pb_value *pv)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	return v && v->kind_case == PLUGBOX__VALUE__KIND_STRING_VALUE ? v->string_value : NULL;
}

PB_API size_t pb_value_list_length(const pb_value *pv)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	return v && v->kind_case == PLUGBOX__VALUE__KIND_LIST_VALUE && v->list_value ? v->list_value->n_items : 0;
}

PB_API const pb_value *pb_value_list_get(const pb_value *pv, size_t i)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	return i < pb_value_list_length(pv) ? (const pb_value *)v->list_value->items[i] : NULL;
}

PB_API const pb_value *pb_value_map_get(const pb_value *pv, const char *key)
{
	const Plugbox__Value *v = (const Plugbox__Value *)pv;
	if (!v || v->kind_case != PLUGBOX__VALUE__KIND_MAP_VALUE || !v->map_value)
		return NULL;
	for (size_t i = 0; i < v->map_value->n_entries; i++) {
		const Plugbox__Value *k = v->map_value->entries[i]->key;
		if (k && k->kind_case == PLUGBOX__VALUE__KIND_STRING_VALUE && !strcmp(k->string_value, key))
			return (const pb_value *)v->map_value->entries[i]->value;
	}
	return NULL;
}
