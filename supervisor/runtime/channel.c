/* channel.c - the trust boundary: a worker's channel, read and judged.
 *
 * Every byte a worker sends arrives here, when the loop (loop.c) sees one of
 * its descriptors ready: read_replies() (frames on the reply pipe),
 * read_report() (violation reports, and once the seccomp listener, on the
 * report socket) or read_output() (its stdout/stderr), and each is bounded
 * before it is used: frames by the frame reader and pb_envelope_decode,
 * reports by a fixed buffer, output by a line buffer, and each wake-up by a
 * fixed number of reads, so one flooding worker cannot starve the others.
 * read_notifications() answers the kernel's notifications for `log`
 * verdicts: those come from the kernel, not the worker. What a worker may
 * send depends on its state, and the table `legal` below is the whole of
 * that: anything else ends the worker with a protocol error, never the
 * supervisor. Frames to a worker are queued and written as its pipe takes
 * them (outbox.c), so a worker that stops reading blocks nobody.
 *
 * Replies are read in bulk: one read(2) takes whatever the worker has
 * written (a batch of answers to pipelined calls), and every whole frame in
 * it is judged in turn. Before the first of them, one poll(2) says whether
 * the report socket or the output pipes have something, which is then read
 * first: what the worker wrote there before answering comes before the
 * answer.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sys/epoll.h>
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

#include "runtime/channel.h"
#include "runtime/error.h"
#include "runtime/hostcall.h"
#include "runtime/inflight.h"
#include "runtime/loop.h"
#include "runtime/outbox.h"
#include "runtime/process.h"
#include "runtime/runtime.h"
#include "runtime/violation.h"
#include "runtime/watch.h"
#include "proto/value.h"
#include "toolkit/meter.h"
#include "toolkit/sanitize.h"

static const char *const state_names[] = {
	[P_STARTING] = "starting",
	[P_IDLE] = "idle",
	[P_RUNNING] = "running a call",
	[P_HOST_WAIT] = "waiting for a host function",
	[P_STOPPING] = "stopping",
	[P_DEAD] = "dead",
};

/* ---- what a worker produces, on its way to the host ---------------------- */

static const char *const stream_names[] = {
	[PB_STREAM_STDOUT] = "stdout",
	[PB_STREAM_STDERR] = "stderr",
	[PB_STREAM_SUPERVISOR] = "notes",
	[PB_STREAM_LOG] = "log lines",
};

/* Says what a stream's meter turned away: at most once a second per
 * stream (the note itself is not metered), and at once when `now_anyway`
 * (the worker ended: nothing will come after). A note that must wait is
 * due on the plugin's timer, so it comes even if the plugin goes quiet. */
static void note_drops(pb_supervisor *s, struct process *w, pb_stream stream, bool now_anyway)
{
	struct pb_meter *m = &w->meters[stream];
	uint64_t lines, bytes;
	char line[256];
	double now = pb_now();

	if (!m->dropped_lines && !m->dropped_bytes)
		return;
	if (!now_anyway && now - w->drops_noted_at[stream] < 1.0) {
		double due = w->drops_noted_at[stream] + 1.0;
		if (w->drops_due == 0 || due < w->drops_due) {
			w->drops_due = due;
			pb_runtime_timer(s, w->plugin, due);
		}
		return;
	}
	if (!pb_meter_dropped(m, &lines, &bytes))
		return;
	w->drops_noted_at[stream] = now;
	snprintf(line, sizeof(line), "dropped %llu lines / %llu bytes of %s (more than %d lines or %d bytes a second)",
	         (unsigned long long)lines, (unsigned long long)bytes, stream_names[stream],
	         PB_OUTPUT_LINES_PER_SECOND, PB_OUTPUT_BYTES_PER_SECOND);
	s->output(s->output_data, w->name, PB_STREAM_SUPERVISOR, line);
}

void pb_channel_drops_due(pb_supervisor *s, struct process *w, double now)
{
	if (w->drops_due == 0 || now < w->drops_due)
		return;
	w->drops_due = 0;
	for (pb_stream st = PB_STREAM_STDOUT; st <= PB_STREAM_LOG; st++)
		note_drops(s, w, st, false);
}

/* Every line a worker's streams produce reaches the host through here:
 * metered per stream in lines and bytes a second, then sanitised
 * (toolkit/sanitize.c) as one line. False when the meter refused it. */
static bool put_line(pb_supervisor *s, struct process *w, pb_stream stream, const char *text, size_t len)
{
	char line[LINE_MAX_BYTES * 2];

	if (!pb_meter_take(&w->meters[stream], PB_OUTPUT_LINES_PER_SECOND, PB_OUTPUT_BYTES_PER_SECOND,
	                   pb_now(), len + 1)) {
		note_drops(s, w, stream, false);
		return false;
	}
	note_drops(s, w, stream, false);
	pb_sanitize(line, sizeof(line), text, len, 0);
	s->output(s->output_data, w->name, stream, line);
	return true;
}

static void vemit(pb_supervisor *s, struct process *w, pb_stream stream, const char *fmt, va_list ap)
{
	char line[1024];
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	put_line(s, w, stream, line, n < 0 ? 0 : (size_t)n < sizeof(line) ? (size_t)n
	                                                                  : sizeof(line) - 1);
}

__attribute__((format(printf, 4, 5))) static void emit(pb_supervisor *s, struct process *w, pb_stream stream, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vemit(s, w, stream, fmt, ap);
	va_end(ap);
}

void pb_channel_note(pb_supervisor *s, struct process *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vemit(s, w, PB_STREAM_SUPERVISOR, fmt, ap);
	va_end(ap);
}

void pb_note(pb_supervisor *s, const char *plugin, const char *fmt, ...)
{
	char line[1024], shown[sizeof(line) * 2];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* The reasons in it may quote what a worker said. */
	pb_sanitize(shown, sizeof(shown), line, strlen(line), 0);
	s->output(s->output_data, plugin, PB_STREAM_SUPERVISOR, shown);
}

/* ---- ending a worker ---------------------------------------------------- */

void pb_channel_end(struct process *w, pb_error_kind kind, const char *fmt, ...)
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

/* Every descriptor of the process: out of the loop, closed. */
static void close_all(pb_supervisor *s, struct process *w)
{
	int *fds[] = { &w->proc.pidfd, &w->proc.calls_fd, &w->proc.replies_fd, &w->proc.stdout_fd,
		       &w->proc.stderr_fd, &w->proc.report_fd, &w->notify_fd, &w->calls_keep_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		int *fd = fds[i];
		if (*fd >= 0) {
			pb_loop_unwatch(s, *fd);
			close(*fd);
			*fd = -1;
		}
	}
	w->want_write = false;
}

static void close_fd(pb_supervisor *s, int *fd)
{
	pb_loop_unwatch(s, *fd);
	close(*fd);
	*fd = -1;
}

/* ---- stalls: a frame half sent, a channel not read ------------------------ */

/* After bytes moved (or did not) one way: a side that is inside a frame, or
 * has frames waiting, gets PB_CHANNEL_STALL_SECONDS from its last progress. */
void pb_channel_stall_clock(pb_supervisor *s, struct process *w, double *at, bool pending, bool progressed)
{
	if (!pending) {
		*at = 0;
		return;
	}
	if (progressed || *at == 0) {
		*at = pb_now() + PB_CHANNEL_STALL_SECONDS;
		pb_runtime_timer(s, w->plugin, *at);
	}
}

void pb_channel_check_stall(struct process *w, double now)
{
	const struct pb_frame_in *in = &w->in;
	size_t got = pb_frame_in_pending(in);

	if (w->end_kind != 0)
		return;
	if (w->read_stall_at > 0 && now >= w->read_stall_at) {
		if (got < 4) {
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent %zu of the 4 bytes of a "
			                                     "frame header, then nothing for %g s",
			               w->name, got, PB_CHANNEL_STALL_SECONDS);
		} else {
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent %lu of the %lu bytes of "
			                                     "a frame, then nothing for %g s",
			               w->name, (unsigned long)(got - 4),
			               (unsigned long)pb_frame_in_announced(in), PB_CHANNEL_STALL_SECONDS);
		}
	} else if (w->write_stall_at > 0 && now >= w->write_stall_at) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' stopped reading its channel: "
		                                     "%zu bytes for it waited %g s",
		               w->name, pb_frame_out_pending(&w->outbox),
		               PB_CHANNEL_STALL_SECONDS);
	}
}

void pb_channel_free(pb_supervisor *s, struct process *w)
{
	if (!w)
		return;
	if (!w->reaped && w->proc.pid > 0) {
		kill(w->proc.pid, SIGKILL);
		while (waitpid(w->proc.pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	close_all(s, w);
	pb_watch_unpin(w);
	pb_spawned_release(&w->proc);
	pb_frame_in_free(&w->in);
	pb_policy_free(w->policy);
	free(w->violation_traceback);
	if (w->hello)
		pb_envelope_free(w->hello);
	pb_outbox_drop(s, w);
	free(w);
}

/* ---- what a worker may send, by state ------------------------------------ */

typedef void (*body_handler)(pb_supervisor *s, struct process *w, Plugbox__Envelope *env, bool *keep);

static void on_hello(pb_supervisor *s, struct process *w, Plugbox__Envelope *env, bool *keep)
{
	const Plugbox__Hello *h = env->hello;
	if (env->id != 0 || h->protocol_version != PB_PROTOCOL_VERSION || strcmp(h->plugin, w->name) != 0) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a bad hello", w->name);
		return;
	}
	w->hello = env;
	*keep = true;
	w->after_start = true; /* the worker loads them just before Hello */
	if (w->expect_listener && w->notify_fd < 0) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' did not pass its seccomp "
		                                     "listener, which its policy's log rules need",
		               w->name);
		return;
	}
	pb_runtime_hello(s, w);
}

/* An error instead of Hello: the plugin could not be set up (bad layout,
 * escaping deps dir) or a sandbox layer failed. The worker is done. */
static void on_start_error(pb_supervisor *s, struct process *w, Plugbox__Envelope *env, bool *keep)
{
	const Plugbox__Error *e = env->error;
	pb_error_kind kind = pb_error_kind_from_wire(e->kind);
	(void)s;
	(void)keep;
	if (env->id != 0 || kind == PB_ERROR_PROTOCOL || kind == PB_ERROR_BAD_REQUEST) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a bad start-up error", w->name);
		return;
	}
	if (kind == PB_ERROR_EXCEPTION)
		kind = PB_ERROR_UNAVAILABLE; /* the worker's own glue failed */
	pb_channel_end(w, kind, "%s", e->message);
}

/* The answer to the innermost call: only that one may be answered. */
static void on_reply(pb_supervisor *s, struct process *w, Plugbox__Envelope *env, bool *keep)
{
	uint64_t pending = w->stack[w->depth - 1]->id;
	if (env->id != pending) {
		pb_channel_end(w, PB_ERROR_PROTOCOL,
		               "worker for plugin '%s' answered call %llu while call %llu was pending",
		               w->name, (unsigned long long)env->id, (unsigned long long)pending);
		return;
	}
	if (env->body_case == PLUGBOX__ENVELOPE__BODY_ERROR &&
	    pb_error_kind_from_wire(env->error->kind) == PB_ERROR_PROTOCOL) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent an error of unknown kind", w->name);
		return;
	}
	*keep = true;
	pb_inflight_reply(s, w, env);
}

/* The running call asks for a host function. The name is checked here;
 * whether it is granted is hostcall.c's business. */
static void on_host_call(pb_supervisor *s, struct process *w, Plugbox__Envelope *env, bool *keep)
{
	if (env->id == 0 || !pb_host_name_valid(env->host_call->name)) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' asked for a host function "
		                                     "without a valid name or id",
		               w->name);
		return;
	}
	*keep = true;
	pb_host_call_received(s, w, env);
}

static const char *level_name(int level)
{
	static const char *const names[] = { "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL" };
	return level >= 10 && level <= 50 && level % 10 == 0 ? names[level / 10 - 1] : "LEVEL";
}

/* A plugin logging in a loop must not flood the host's log: at most
 * PB_LOG_RECORDS_PER_SECOND records a second reach it, and it is told once
 * when the rest are dropped. The glue already keeps to that rate; a worker
 * sending ten times as many writes its channel itself, and is ended. */
static bool log_allowed(pb_supervisor *s, struct process *w)
{
	double now = pb_now();
	if (now - w->log_window >= 1.0) {
		if (w->log_count > PB_LOG_RECORDS_PER_SECOND)
			emit(s, w, PB_STREAM_SUPERVISOR, "dropped %u log records (more than %d a second)",
			     w->log_count - PB_LOG_RECORDS_PER_SECOND, PB_LOG_RECORDS_PER_SECOND);
		w->log_window = now;
		w->log_count = 0;
	}
	if (++w->log_count > PB_LOG_FLOOD_PER_SECOND) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' flooded its channel: more than "
		                                     "%d log records in a second",
		               w->name, PB_LOG_FLOOD_PER_SECOND);
		return false;
	}
	return w->log_count <= PB_LOG_RECORDS_PER_SECOND;
}

/* A record of the plugin's `logging`, one output line per line of text
 * (a logged exception has its traceback under it). Each line is metered
 * like any output; once one is refused, the rest of the record is counted
 * and dropped without being looked at again (a record of 16 MiB of
 * newlines costs one pass over its bytes). */
static void on_log(pb_supervisor *s, struct process *w, Plugbox__Envelope *env, bool *keep)
{
	const Plugbox__Log *log = env->log;
	char line[LINE_MAX_BYTES];
	const char *p = log->message;
	bool first = true;

	(void)keep;
	if (!log_allowed(s, w))
		return;
	do {
		size_t n = strcspn(p, "\n");
		int len;
		if (first)
			len = snprintf(line, sizeof(line), "%s %.128s: %.*s", level_name(log->level), log->logger,
			               (int)(n < sizeof(line) ? n : sizeof(line)), p);
		else
			len = snprintf(line, sizeof(line), "  %.*s", (int)(n < sizeof(line) ? n : sizeof(line)), p);
		p += n;
		if (*p == '\n')
			p++;
		if (!put_line(s, w, PB_STREAM_LOG, line, len < 0 ? 0 : (size_t)len < sizeof(line) ? (size_t)len
		                                                                                  : sizeof(line) - 1)) {
			size_t rest = strlen(p);
			if (rest)
				pb_meter_drop(&w->meters[PB_STREAM_LOG], pb_count_lines(p, rest) + (p[rest - 1] != '\n'), rest);
			return;
		}
		first = false;
	} while (*p);
}

static const struct {
	enum proc_state state;
	Plugbox__Envelope__BodyCase body;
	body_handler handle;
} legal[] = {
	{ P_STARTING, PLUGBOX__ENVELOPE__BODY_HELLO, on_hello },
	{ P_STARTING, PLUGBOX__ENVELOPE__BODY_ERROR, on_start_error },
	{ P_STARTING, PLUGBOX__ENVELOPE__BODY_LOG, on_log },
	{ P_IDLE, PLUGBOX__ENVELOPE__BODY_LOG, on_log },
	{ P_RUNNING, PLUGBOX__ENVELOPE__BODY_RESULT, on_reply },
	{ P_RUNNING, PLUGBOX__ENVELOPE__BODY_ERROR, on_reply },
	{ P_RUNNING, PLUGBOX__ENVELOPE__BODY_HOST_CALL, on_host_call },
	{ P_RUNNING, PLUGBOX__ENVELOPE__BODY_LOG, on_log },
	{ P_HOST_WAIT, PLUGBOX__ENVELOPE__BODY_LOG, on_log },
	{ P_STOPPING, PLUGBOX__ENVELOPE__BODY_LOG, on_log },
};

static const char *body_name(Plugbox__Envelope__BodyCase b)
{
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field(&plugbox__envelope__descriptor, (unsigned)b);
	return f ? f->name : "an empty envelope";
}

static void dispatch(pb_supervisor *s, struct process *w, Plugbox__Envelope *env)
{
	bool keep = false;

	if (env->poll_us != 0) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a poll hint, which only the "
		                                     "supervisor sends",
		               w->name);
		pb_envelope_free(env);
		return;
	}
	for (size_t i = 0; i < sizeof(legal) / sizeof(legal[0]); i++) {
		if (legal[i].state == w->state && legal[i].body == env->body_case) {
			legal[i].handle(s, w, env, &keep);
			if (!keep)
				pb_envelope_free(env);
			return;
		}
	}
	pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent %s (id %llu) while %s",
	               w->name, body_name(env->body_case), (unsigned long long)env->id, state_names[w->state]);
	pb_envelope_free(env);
}

/* ---- reading from a worker ---------------------------------------------- */

static void read_report(pb_supervisor *s, struct process *w);
static void read_output(pb_supervisor *s, struct process *w, int *fd, struct line_buffer *b, pb_stream stream);

/* Before frames are judged: the reports the worker wrote before them
 * explain them (a denial) or end the worker (a forgery), and the output the
 * plugin flushed before answering belongs before the answer. The pipes are
 * separate, so their order is only kept by reading them first; one poll(2)
 * says which have anything. */
static void catch_up(pb_supervisor *s, struct process *w)
{
	int *fds[] = { &w->proc.report_fd, &w->proc.stdout_fd, &w->proc.stderr_fd };
	struct pollfd p[3];
	int which[3], n = 0;

	for (int i = 0; i < 3; i++) {
		if (*fds[i] >= 0) {
			p[n] = (struct pollfd){ .fd = *fds[i], .events = POLLIN };
			which[n++] = i;
		}
	}
	if (n == 0 || poll(p, (nfds_t)n, 0) <= 0)
		return;
	for (int j = 0; j < n; j++) {
		if (!p[j].revents)
			continue;
		if (which[j] == 0 && w->proc.report_fd >= 0)
			read_report(s, w);
		else if (which[j] == 1 && w->proc.stdout_fd >= 0)
			read_output(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
		else if (which[j] == 2 && w->proc.stderr_fd >= 0)
			read_output(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
	}
}

static void frame_too_large(struct process *w)
{
	pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' announced a frame of %lu bytes, "
	                                     "over the limit of %lu",
	               w->name, (unsigned long)pb_frame_in_announced(&w->in),
	               (unsigned long)w->in.max_len);
}

/* One read(2) of whatever the worker has written, then every whole frame in
 * it, judged in order. A read takes at most PB_READ_BUFFER bytes (more only
 * for one frame larger than that), which bounds the work one wake-up does
 * for a chatty worker. */
static void read_frames(pb_supervisor *s, struct process *w, bool *progressed)
{
	ssize_t got = pb_frame_in_fill(&w->in, w->proc.replies_fd);
	bool caught_up = false;

	if (got > 0)
		*progressed = true;
	if (got == -ENODATA || got == -EPIPE) {
		/* Closed channel: either it is dying (the pidfd will say) or
		 * it closed its end on purpose, which ends it too. */
		if (got == -EPIPE)
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' closed its channel mid-frame", w->name);
		close_fd(s, &w->proc.replies_fd);
		return;
	}
	if (got == -EMSGSIZE) {
		frame_too_large(w);
		return;
	}
	if (got < 0) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a frame that could not "
		                                     "be read: %s",
		               w->name, strerror((int)-got));
		return;
	}
	while (w->end_kind == 0) {
		const uint8_t *payload;
		uint32_t len;
		Plugbox__Envelope *env;
		char why[160];
		int r = pb_frame_in_next(&w->in, &payload, &len);

		if (r == 0)
			return;
		if (r < 0) {
			frame_too_large(w);
			return;
		}
		if (!caught_up) {
			caught_up = true;
			catch_up(s, w);
			if (w->end_kind != 0)
				return;
		}
		if (pb_envelope_decode(payload, len, &env, why, sizeof(why)) < 0) {
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent an undecodable envelope: %s",
			               w->name, why);
			return;
		}
		dispatch(s, w, env);
	}
}

static void read_replies(pb_supervisor *s, struct process *w)
{
	bool progressed = false;

	read_frames(s, w, &progressed);
	pb_channel_stall_clock(s, w, &w->read_stall_at, w->end_kind == 0 && w->proc.replies_fd >= 0 && pb_frame_in_pending(&w->in) > 0, progressed);
}

/* The traceback as indented lines under a report. */
static void emit_traceback(pb_supervisor *s, struct process *w, const char *tb)
{
	char line[LINE_MAX_BYTES];
	const char *p = tb;

	while (p && *p) {
		size_t n = strcspn(p, "\n");
		if (n > 0) {
			snprintf(line, sizeof(line), "  %.*s", (int)(n < sizeof(line) - 3 ? n : sizeof(line) - 3), p);
			if (!put_line(s, w, PB_STREAM_SUPERVISOR, line, strlen(line)))
				return;
		}
		p += n;
		if (*p == '\n')
			p++;
	}
}

#define REPORTS_SHOWN 50

/* Accept the worker's seccomp listener: once, while it starts, if its
 * policy has log verdicts, and only a real seccomp notification fd. */
static bool take_listener(pb_supervisor *s, struct process *w, int fd)
{
	char link[64], target[64];
	ssize_t n;

	if (w->state != P_STARTING || !w->expect_listener || w->notify_fd >= 0)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	if (strcmp(target, "anon_inode:seccomp notify") != 0)
		return false;
	if (pb_loop_watch(s, w, SRC_NOTIFY, fd) < 0)
		return false;
	w->notify_fd = fd;
	return true;
}

static void read_report(pb_supervisor *s, struct process *w)
{
	for (int msgs = 0; msgs < 64 && w->end_kind == 0; msgs++) {
		uint8_t buf[PB_REPORT_MAX];
		int fds[PB_REPORT_MAX_FDS], nfds;
		bool ctrunc;
		Plugbox__Envelope *env;
		struct pb_action action;
		char why[160], call[256], rule_text[512];

		ssize_t n = pb_report_recv(w->proc.report_fd, buf, sizeof(buf), fds, &nfds, &ctrunc);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			close_fd(s, &w->proc.report_fd);
			return;
		}
		if (ctrunc) {
			/* the kernel closed what did not fit; close what did */
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' attached more descriptors "
			                                     "to its report socket than a message may carry",
			               w->name);
			return;
		}
		if ((size_t)n > sizeof(buf) ||
		    pb_envelope_decode(buf, (size_t)n, &env, why, sizeof(why)) < 0) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' wrote garbage on its report socket",
			               w->name);
			return;
		}
		if (env->body_case == PLUGBOX__ENVELOPE__BODY_LISTENER) {
			pb_envelope_free(env);
			if (nfds != 1 || !take_listener(s, w, fds[0])) {
				for (int i = 0; i < nfds; i++)
					close(fds[i]);
				pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' passed a descriptor "
				                                     "it had no business passing",
				               w->name);
				return;
			}
			continue;
		}
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		if (nfds > 0 || env->body_case != PLUGBOX__ENVELOPE__BODY_VIOLATION ||
		    env->violation->n_args != 6) {
			pb_envelope_free(env);
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' wrote a non-report on its report socket",
			               w->name);
			return;
		}
		w->violation_nr = env->violation->syscall_nr;
		w->violation_arch = env->violation->arch;
		memcpy(w->violation_args, env->violation->args, sizeof(w->violation_args));
		free(w->violation_traceback);
		w->violation_traceback = pb_sanitize_dup(env->violation->traceback, PB_SAN_MULTILINE);
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
			w->have_violation = true; /* it is dying by SIGSYS now */
		}
	}
}

/* The kernel asks about a syscall the policy logs: write it down (learn
 * mode) or say it, then let it go on. The numbers are the kernel's. */
static void read_notifications(pb_supervisor *s, struct process *w)
{
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;

	if (seccomp_notify_alloc(&req, &resp) < 0) {
		/* Its logged calls would wait for an answer that never comes. */
		pb_channel_end(w, PB_ERROR_UNAVAILABLE, "cannot answer the seccomp notifications of the worker "
		                                        "for plugin '%s' (its policy's log rules)",
		               w->name);
		return;
	}
	for (int rounds = 0; rounds < 64 && w->notify_fd >= 0; rounds++) {
		struct pollfd p = { .fd = w->notify_fd, .events = POLLIN };
		if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) {
			if (p.revents & (POLLHUP | POLLERR)) {
				close_fd(s, &w->notify_fd);
			}
			break;
		}
		memset(req, 0, sizeof(*req));
		if (seccomp_notify_receive(w->notify_fd, req) < 0)
			continue; /* the caller went away (ENOENT) or a signal came */
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
		seccomp_notify_respond(w->notify_fd, resp); /* ENOENT: it is gone */
	}
	seccomp_notify_free(req, resp);
}

static bool flush_line(pb_supervisor *s, struct process *w, struct line_buffer *b, pb_stream stream)
{
	bool shown = put_line(s, w, stream, b->data, b->len);
	b->len = 0;
	return shown;
}

/* Bytes from a worker's stdout or stderr, cut into lines of at most
 * LINE_MAX_BYTES. Once one line is refused, the rest of what this wake-up
 * reads is counted and dropped in bulk (the meter will not refill within
 * it), and so is the rest of the line it ends inside. */
static void take_output(pb_supervisor *s, struct process *w, struct line_buffer *b, pb_stream stream,
                        const char *p, size_t n, bool *dropping)
{
	while (n > 0) {
		const char *nl;
		size_t k;

		if (*dropping) {
			pb_meter_drop(&w->meters[stream], pb_count_lines(p, n) + (p[n - 1] != '\n'), n + b->len);
			b->skipping = p[n - 1] != '\n';
			b->len = 0;
			return;
		}
		nl = memchr(p, '\n', n);
		k = nl ? (size_t)(nl - p) : n;
		if (b->skipping) {
			pb_meter_drop(&w->meters[stream], 0, k + (nl != NULL));
			b->skipping = nl == NULL;
			p += k + (nl != NULL);
			n -= k + (nl != NULL);
			continue;
		}
		if (k >= sizeof(b->data) - 1 - b->len) {
			/* a line too long for the buffer goes out in pieces */
			k = sizeof(b->data) - 1 - b->len;
			nl = NULL;
		}
		memcpy(b->data + b->len, p, k);
		b->len += k;
		p += k + (nl != NULL);
		n -= k + (nl != NULL);
		if ((nl || b->len == sizeof(b->data) - 1) && !flush_line(s, w, b, stream))
			*dropping = true;
	}
}

static void read_output(pb_supervisor *s, struct process *w, int *fd, struct line_buffer *b, pb_stream stream)
{
	char chunk[16384];
	bool dropping = false;

	/* At most 64 KiB a wake-up (a pipe's worth), in few system calls: a
	 * flood is mostly read to be dropped. */
	for (int rounds = 0; rounds < 4; rounds++) {
		ssize_t n = read(*fd, chunk, sizeof(chunk));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			if (b->len && !dropping)
				flush_line(s, w, b, stream);
			close_fd(s, fd);
			break;
		}
		take_output(s, w, b, stream, chunk, (size_t)n, &dropping);
	}
	if (dropping)
		note_drops(s, w, stream, false);
}

/* Everything left in the pipes once the worker has exited. */
static void drain(pb_supervisor *s, struct process *w)
{
	if (w->proc.report_fd >= 0)
		read_report(s, w);
	if (w->notify_fd >= 0)
		read_notifications(s, w);
	for (int i = 0; i < 64 && w->proc.replies_fd >= 0 && w->end_kind == 0; i++)
		read_replies(s, w);
	for (int i = 0; i < 64 && w->proc.stdout_fd >= 0; i++)
		read_output(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
	for (int i = 0; i < 64 && w->proc.stderr_fd >= 0; i++)
		read_output(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
}

void pb_channel_reap(pb_supervisor *s, struct process *w)
{
	struct rusage ru;

	if (w->state == P_DEAD)
		return;
	memset(&ru, 0, sizeof(ru));
	if (!w->reaped && w->proc.pid > 0) {
		while (wait4(w->proc.pid, &w->wstatus, 0, &ru) < 0 && errno == EINTR)
			;
		w->cpu_used = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
		              ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
		w->reaped = true;
	}
	/* What it wrote before exiting is still judged in its state. */
	drain(s, w);
	/* The count of what the rate limit kept back (read_report). */
	if (w->nreports > REPORTS_SHOWN)
		emit(s, w, PB_STREAM_SUPERVISOR, "%u more denials or logged calls were not shown",
		     w->nreports - REPORTS_SHOWN);
	for (pb_stream st = PB_STREAM_STDOUT; st <= PB_STREAM_LOG; st++)
		note_drops(s, w, st, true);
	close_all(s, w);
	pb_outbox_drop(s, w);
	w->state = P_DEAD;
	pb_runtime_exited(s, w);
}

void pb_channel_event(pb_supervisor *s, struct process *w, enum source_kind kind, uint32_t events)
{
	if (w->state == P_DEAD)
		return;
	/* Reports first: they explain a death that follows. */
	switch (kind) {
	case SRC_REPORT:
		if (w->proc.report_fd >= 0)
			read_report(s, w);
		break;
	case SRC_NOTIFY:
		if (w->notify_fd >= 0)
			read_notifications(s, w);
		break;
	case SRC_STDOUT:
		if (w->proc.stdout_fd >= 0)
			read_output(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
		break;
	case SRC_STDERR:
		if (w->proc.stderr_fd >= 0)
			read_output(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
		break;
	case SRC_REPLIES:
		if (w->proc.replies_fd >= 0 && w->end_kind == 0)
			read_replies(s, w);
		break;
	case SRC_CALLS:
		if (events & (EPOLLERR | EPOLLHUP))
			pb_frame_out_free(&w->outbox);
		pb_outbox_flush(s, w);
		break;
	case SRC_PIDFD:
		pb_channel_reap(s, w);
		break;
	default:
		break;
	}
}

void pb_channel_stop(pb_supervisor *s, struct process *w)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Shutdown bye = PLUGBOX__SHUTDOWN__INIT;
	uint8_t *frame;
	size_t len;

	if (w->state == P_DEAD || w->state == P_STOPPING)
		return;
	w->stop_requested = true;
	w->state_deadline = pb_now() + SHUTDOWN_GRACE_MS / 1000.0;
	if (w->state != P_IDLE) {
		/* in a call or not started: nothing to wait for */
		pb_channel_end(w, PB_ERROR_UNAVAILABLE, "worker for plugin '%s' was stopped", w->name);
		w->state = P_STOPPING;
		return;
	}
	w->state = P_STOPPING;
	env.body_case = PLUGBOX__ENVELOPE__BODY_SHUTDOWN;
	env.shutdown = &bye;
	pb_outbox_drop(s, w);
	if (pb_envelope_pack(&env, PB_FRAME_MAX_DEFAULT, &frame, &len) == 0) {
		if (pb_outbox_write(w, frame, len) < 0) {
			/* gone or not reading: the deadline's SIGKILL ends it */
		}
		free(frame);
	}
	/* EOF tells it as much, should it not read the frame. */
	close_fd(s, &w->proc.calls_fd);
	w->want_write = false;
}
