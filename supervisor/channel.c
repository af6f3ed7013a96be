/* channel.c - the trust boundary: a worker's channel, read and judged.
 *
 * Every byte a worker sends arrives here, through read_replies() (frames on
 * the reply pipe), read_report() (violation reports, and once the seccomp
 * listener, on the report socket) or read_output() (its stdout/stderr), and
 * each is bounded before it is used: frames by the frame reader and
 * pb_envelope_decode, reports by a fixed buffer, output by a line buffer.
 * read_notifications() answers the kernel's notifications for `log`
 * verdicts: those come from the kernel, not the worker. What a worker may send depends on
 * its state, and the table `legal` below is the whole of that: anything else
 * ends the worker with a protocol error, never the supervisor.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor_internal.h"
#include "value.h"

static const char *const state_names[] = {
	[W_STARTING] = "starting", [W_READY] = "ready", [W_IN_CALL] = "in a call", [W_DEAD] = "dead",
};

double pb_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

void pb_worker_end(struct worker *w, pb_error_kind kind, const char *fmt, ...)
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

void pb_worker_reap(struct worker *w)
{
	if (w->reaped || w->proc.pid <= 0)
		return;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	while (wait4(w->proc.pid, &w->wstatus, 0, &ru) < 0 && errno == EINTR)
		;
	w->cpu_used = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
		((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
	w->reaped = true;
}

void pb_worker_free(struct worker *w)
{
	if (!w)
		return;
	if (!w->reaped && w->proc.pid > 0) {
		kill(w->proc.pid, SIGKILL);
		pb_worker_reap(w);
	}
	pb_spawned_release(&w->proc);
	pb_frame_reader_free(&w->reader);
	if (w->notify_fd >= 0)
		close(w->notify_fd);
	pb_policy_free(w->policy);
	free(w->violation_traceback);
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
		pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a bad hello", w->name);
		return;
	}
	w->hello = env;
	*keep = true;
	w->state = W_READY;
	w->after_start = true;   /* the worker loads them just before Hello */
	if (w->expect_listener && w->notify_fd < 0)
		pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' did not pass its seccomp "
		              "listener, which its policy's log rules need", w->name);
}

/* An error instead of Hello: the plugin could not be set up (bad layout,
 * escaping deps dir) or a sandbox layer failed. The worker is done. */
static void on_start_error(pb_supervisor *s, struct worker *w, Plugbox__Envelope *env, bool *keep)
{
	const Plugbox__Error *e = env->error;
	pb_error_kind kind = pb_error_kind_from_wire(e->kind);
	(void)s;
	(void)keep;
	if (env->id != 0 || kind == PB_ERROR_PROTOCOL || kind == PB_ERROR_BAD_REQUEST) {
		pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a bad start-up error", w->name);
		return;
	}
	if (kind == PB_ERROR_EXCEPTION)
		kind = PB_ERROR_UNAVAILABLE;   /* the worker's own glue failed */
	pb_worker_end(w, kind, "%s", e->message);
}

static void on_reply(pb_supervisor *s, struct worker *w, Plugbox__Envelope *env, bool *keep)
{
	(void)s;
	if (env->id != w->call_id) {
		pb_worker_end(w, PB_ERROR_PROTOCOL,
		           "worker for plugin '%s' answered call %llu while call %llu was pending",
		           w->name, (unsigned long long)env->id, (unsigned long long)w->call_id);
		return;
	}
	if (env->body_case == PLUGBOX__ENVELOPE__BODY_ERROR &&
	    pb_error_kind_from_wire(env->error->kind) == PB_ERROR_PROTOCOL) {
		pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent an error of unknown kind", w->name);
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
	pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent %s while %s",
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
				pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' closed its channel mid-frame", w->name);
			close(w->proc.replies_fd);
			w->proc.replies_fd = -1;
			return;
		}
		if (r < 0) {
			pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a bad frame: %s", w->name,
			           r == -EMSGSIZE ? "length over the limit" : strerror(-r));
			return;
		}
		if (pb_frame_take(&w->reader, &payload, &len) < 0)
			return;
		r = pb_envelope_decode(payload, len, &env, why, sizeof(why));
		free(payload);
		if (r < 0) {
			pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent an undecodable envelope: %s",
			           w->name, why);
			return;
		}
		dispatch(s, w, env);
	}
}

/* Control characters in a worker's traceback could reach the host's
 * terminal; keep newlines, replace the rest. */
static char *sanitised(const char *text)
{
	char *t = strdup(text);
	if (!t)
		return NULL;
	for (char *c = t; *c; c++)
		if (((unsigned char)*c < 0x20 && *c != '\n') || *c == 0x7f)
			*c = '?';
	return t;
}

/* The traceback as indented lines under a report. */
static void emit_traceback(pb_supervisor *s, struct worker *w, const char *tb)
{
	char line[LINE_MAX_BYTES];
	const char *p = tb;

	while (p && *p) {
		size_t n = strcspn(p, "\n");
		if (n > 0) {
			snprintf(line, sizeof(line), "  %.*s", (int)(n < sizeof(line) - 3 ? n : sizeof(line) - 3), p);
			s->output(s->output_data, w->name, PB_STREAM_SUPERVISOR, line);
		}
		p += n;
		if (*p == '\n')
			p++;
	}
}

#define REPORTS_SHOWN 50

/* Accept the worker's seccomp listener: once, while it starts, if its
 * policy has log verdicts, and only a real seccomp notification fd. */
static bool take_listener(struct worker *w, int fd)
{
	char link[64], target[64];
	ssize_t n;

	if (w->state != W_STARTING || !w->expect_listener || w->notify_fd >= 0)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	if (strcmp(target, "anon_inode:seccomp notify") != 0)
		return false;
	w->notify_fd = fd;
	return true;
}

static void read_report(pb_supervisor *s, struct worker *w)
{
	for (int msgs = 0; msgs < 64 && w->end_kind == 0; msgs++) {
		uint8_t buf[REPORT_MAX_BYTES];
		union {
			struct cmsghdr align;
			char space[CMSG_SPACE(4 * sizeof(int))];
		} control;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
		                      .msg_control = control.space, .msg_controllen = sizeof(control.space) };
		int fds[4], nfds = 0;
		Plugbox__Envelope *env;
		struct pb_action action;
		char why[160], call[256], rule_text[512];

		ssize_t n = recvmsg(w->proc.report_fd, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			close(w->proc.report_fd);
			w->proc.report_fd = -1;
			return;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
				if (nfds < 4)
					fds[nfds++] = fd;
				else
					close(fd);
			}
		}
		if (msg.msg_flags & MSG_CTRUNC) {
			/* the kernel closed what did not fit; close what did */
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' attached more descriptors "
			              "to its report socket than a message may carry", w->name);
			return;
		}
		if ((size_t)n > sizeof(buf) ||
		    pb_envelope_decode(buf, (size_t)n, &env, why, sizeof(why)) < 0) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' wrote garbage on its report socket",
			           w->name);
			return;
		}
		if (env->body_case == PLUGBOX__ENVELOPE__BODY_LISTENER) {
			pb_envelope_free(env);
			if (nfds != 1 || !take_listener(w, fds[0])) {
				for (int i = 0; i < nfds; i++)
					close(fds[i]);
				pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' passed a descriptor "
				              "it had no business passing", w->name);
				return;
			}
			continue;
		}
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		if (nfds > 0 || env->body_case != PLUGBOX__ENVELOPE__BODY_VIOLATION ||
		    env->violation->n_args != 6) {
			pb_envelope_free(env);
			pb_worker_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' wrote a non-report on its report socket",
			           w->name);
			return;
		}
		w->violation_nr = env->violation->syscall_nr;
		w->violation_arch = env->violation->arch;
		memcpy(w->violation_args, env->violation->args, sizeof(w->violation_args));
		free(w->violation_traceback);
		w->violation_traceback = sanitised(env->violation->traceback ? env->violation->traceback : "");
		pb_envelope_free(env);
		pb_violation_syscall(w, call, sizeof(call));
		pb_describe_rule(w, w->violation_nr, w->violation_arch, w->violation_args, &action,
		                 rule_text, sizeof(rule_text));
		if (action.kind == PB_ACT_TRAP && pb_native_arch(w->violation_arch, w->violation_nr)) {
			/* Denied with an errno; the plugin goes on. */
			if (++w->nreports <= REPORTS_SHOWN) {
				emit(s, w, PB_STREAM_SUPERVISOR, "denied %s: %s by rule %s", call,
				     strerrorname_np(action.err) ? strerrorname_np(action.err) : "error", rule_text);
				emit_traceback(s, w, w->violation_traceback);
			}
			if (w->nreports == REPORTS_SHOWN)
				emit(s, w, PB_STREAM_SUPERVISOR, "further denials are not shown");
		} else {
			w->have_violation = true;   /* it is dying by SIGSYS now */
		}
	}
}

/* The kernel asks about a syscall the policy logs: write it down (learn
 * mode) or say it, then let it go on. The numbers are the kernel's. */
static void read_notifications(pb_supervisor *s, struct worker *w)
{
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;

	if (seccomp_notify_alloc(&req, &resp) < 0)
		return;
	for (int rounds = 0; rounds < 64 && w->notify_fd >= 0; rounds++) {
		struct pollfd p = { .fd = w->notify_fd, .events = POLLIN };
		if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) {
			if (p.revents & (POLLHUP | POLLERR)) {
				close(w->notify_fd);
				w->notify_fd = -1;
			}
			break;
		}
		memset(req, 0, sizeof(*req));
		if (seccomp_notify_receive(w->notify_fd, req) < 0)
			continue;   /* the caller went away (ENOENT) or a signal came */
		uint64_t args[6];
		memcpy(args, req->data.args, sizeof(args));
		if (s->mode == PB_COMPILE_LEARN) {
			pb_learn_record(s, req->data.nr, args);
		} else if (++w->nreports <= REPORTS_SHOWN) {
			char call[256], rule_text[512];
			struct pb_action action;
			pb_format_syscall(req->data.nr, req->data.arch, args, call, sizeof(call));
			pb_describe_rule(w, req->data.nr, req->data.arch, args, &action, rule_text, sizeof(rule_text));
			emit(s, w, PB_STREAM_SUPERVISOR, "logged %s by rule %s", call, rule_text);
			if (w->nreports == REPORTS_SHOWN)
				emit(s, w, PB_STREAM_SUPERVISOR, "further logged calls are not shown");
		}
		memset(resp, 0, sizeof(*resp));
		resp->id = req->id;
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		seccomp_notify_respond(w->notify_fd, resp);   /* ENOENT: it is gone */
	}
	seccomp_notify_free(req, resp);
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

void pb_worker_send_pending(struct worker *w)
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
	if (w->notify_fd >= 0)
		read_notifications(s, w);
	if (w->proc.replies_fd >= 0)
		read_replies(s, w);
	for (int i = 0; i < 64 && w->proc.stdout_fd >= 0; i++)
		read_output(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
	for (int i = 0; i < 64 && w->proc.stderr_fd >= 0; i++)
		read_output(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
}

/* Run the worker's channel until it leaves `waiting` (a reply or Hello came),
 * it dies, or the deadline passes (0 = none). */
void pb_worker_run(pb_supervisor *s, struct worker *w, enum worker_state waiting, double deadline)
{
	while (w->state == waiting && !w->reaped) {
		struct pollfd p[7];
		int n = 0, timeout_ms = -1;
		int i_replies = -1, i_out = -1, i_err = -1, i_report = -1, i_calls = -1, i_notify = -1, i_pid;

		if (w->end_kind != 0) {
			/* We killed it: wait for it, keep what it said. */
			pb_worker_reap(w);
			drain(s, w);
			w->state = W_DEAD;
			break;
		}
		if (deadline > 0) {
			double left = deadline - pb_now();
			if (left <= 0) {
				pb_worker_end(w, PB_ERROR_TIMEOUT, "plugin '%s' timed out after %g s%s", w->name,
				              w->wait_limit, w->wait_limit_is_policy
				              ? " (its policy's @limit call-time)" : "");
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
		if (w->notify_fd >= 0)
			i_notify = n, p[n++] = (struct pollfd){ .fd = w->notify_fd, .events = POLLIN };
		if (w->send_off < w->send_len && w->proc.calls_fd >= 0)
			i_calls = n, p[n++] = (struct pollfd){ .fd = w->proc.calls_fd, .events = POLLOUT };

		int r = poll(p, (nfds_t)n, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			pb_worker_end(w, PB_ERROR_CRASHED, "poll: %s", strerror(errno));
			continue;
		}
		/* Reports first: they explain a death that follows. */
		if (i_report >= 0 && p[i_report].revents)
			read_report(s, w);
		if (i_notify >= 0 && p[i_notify].revents)
			read_notifications(s, w);
		if (i_out >= 0 && p[i_out].revents)
			read_output(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
		if (i_err >= 0 && p[i_err].revents)
			read_output(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
		if (i_replies >= 0 && p[i_replies].revents)
			read_replies(s, w);
		if (i_calls >= 0 && p[i_calls].revents)
			pb_worker_send_pending(w);
		if (p[i_pid].revents) {
			/* What it wrote before exiting is still judged in its state. */
			pb_worker_reap(w);
			drain(s, w);
			if (w->state == waiting)
				w->state = W_DEAD;
		}
	}
}

/* Why a worker is gone, as an error for the caller. */
pb_error *pb_worker_death_error(const pb_supervisor *s, struct worker *w)
{
	char msg[1024], call[256], rule[512];
	int st = w->wstatus;

	(void)s;
	if (w->reaped && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) {
		if (w->have_violation) {
			pb_violation_syscall(w, call, sizeof(call));
			pb_violation_rule(w, rule, sizeof(rule));
			snprintf(msg, sizeof(msg), "plugin '%s' stopped by the sandbox: %s is not allowed by rule %s",
			         w->name, call, rule);
			return pb_error_new(PB_ERROR_VIOLATION, w->name, "", msg,
			                    w->violation_traceback ? w->violation_traceback : "");
		} else {
			snprintf(msg, sizeof(msg), "plugin '%s' stopped by the sandbox: killed by the seccomp filter "
			         "without a report (it tried to replace or block the SIGSYS reporter)", w->name);
		}
		return pb_error_new(PB_ERROR_VIOLATION, w->name, "", msg, "");
	}
	if (w->end_kind != 0)
		return pb_error_new(w->end_kind, w->name, "", w->end_message, "");
	/* The worker is pid 1 of its pid namespace, and the kernel does not
	 * deliver SIGXCPU or SIGXFSZ to an init that has no handler: the CPU
	 * limit then ends it with the SIGKILL at the hard limit (a second
	 * later), which the CPU time it used tells apart from other kills. */
	uint64_t cpu_limit = w->policy ? w->policy->sandbox.limit[PB_LIMIT_CPU] : PB_LIMIT_UNLIMITED;
	bool cpu_kill = w->reaped && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL &&
		cpu_limit != PB_LIMIT_UNLIMITED && w->cpu_used >= (double)cpu_limit;
	if (w->reaped && WIFSIGNALED(st) && (WTERMSIG(st) == SIGXCPU || WTERMSIG(st) == SIGXFSZ || cpu_kill)) {
		bool cpu = WTERMSIG(st) != SIGXFSZ;
		char limit[32];
		enum pb_limit l = cpu ? PB_LIMIT_CPU : PB_LIMIT_FILE_SIZE;
		snprintf(msg, sizeof(msg), "worker for plugin '%s' hit a resource limit: %s (@limit %s %s)",
		         w->name, cpu ? "CPU time" : "file size", pb_limit_names[l],
		         pb_limit_format(l, w->policy->sandbox.limit[l], limit, sizeof(limit)));
		return pb_error_new(PB_ERROR_CRASHED, w->name, "", msg, "");
	}
	if (w->reaped && WIFSIGNALED(st))
		snprintf(msg, sizeof(msg), "worker for plugin '%s' died: killed by signal %d (%s)",
		         w->name, WTERMSIG(st), strsignal(WTERMSIG(st)));
	else if (w->reaped)
		snprintf(msg, sizeof(msg), "worker for plugin '%s' died: exit status %d", w->name, WEXITSTATUS(st));
	else
		snprintf(msg, sizeof(msg), "worker for plugin '%s' stopped answering", w->name);
	return pb_error_new(PB_ERROR_CRASHED, w->name, "", msg, "");
}

void pb_worker_shutdown(pb_supervisor *s, struct worker *w)
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
		pb_worker_run(s, w, W_IN_CALL, pb_now() + SHUTDOWN_GRACE_MS / 1000.0);
	}
	if (!w->reaped) {
		kill(w->proc.pid, SIGKILL);
		pb_worker_reap(w);
		drain(s, w);
	}
	w->state = W_DEAD;
}
