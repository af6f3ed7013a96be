/* channel.c - the trust boundary: a worker's channel, read and judged.
 *
 * Every byte a worker sends arrives here, when the loop (loop.c) sees one of
 * its descriptors ready, and is handed on by kind: frames on the reply pipe
 * are read here (read_replies), reports and the seccomp listener on the
 * report socket in reports.c, its stdout/stderr in output.c. Each is bounded
 * before it is used: frames by the frame reader and pb_envelope_decode,
 * reports by a fixed buffer, output by a line buffer, and each wake-up by a
 * fixed number of reads, so one flooding worker cannot starve the others.
 * What a worker may send depends on its state, and the table `legal` below
 * is the whole of that: anything else ends the worker with a protocol
 * error, never the supervisor. Frames to a worker are queued and written as
 * its pipe takes them (outbox.c), so a worker that stops reading blocks
 * nobody.
 *
 * Replies are read in bulk: one read(2) takes whatever the worker has
 * written (a batch of answers to pipelined calls), and every whole frame in
 * it is judged in turn. Before the first of them, one poll(2) says whether
 * the report socket or the output pipes have something, which is then read
 * first: what the worker wrote there before answering comes before the
 * answer. That poll is skipped when the loop's harvest already says there
 * is nothing (catch_up below): the answer to a lone call then costs one
 * read(2) after the epoll_wait.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
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

#include "jail/zygote.h"
#include "runtime/channel.h"
#include "runtime/error.h"
#include "runtime/hostcall.h"
#include "runtime/inflight.h"
#include "runtime/loop.h"
#include "runtime/netconnect.h"
#include "runtime/outbox.h"
#include "runtime/output.h"
#include "runtime/process.h"
#include "runtime/reports.h"
#include "runtime/runtime.h"
#include "runtime/workers.h"
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
		pb_channel_kill(w);
}

void pb_channel_kill(struct process *w)
{
	/* A zygote's child is not ours: its pid may be reused once the kernel
	 * reaps it, its pidfd names it for good. */
	if (w->proc.from_zygote)
		pb_zygote_kill(w->proc.pidfd, -1);
	else if (w->proc.pid > 0)
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
	pb_netconnect_release(s, w);
}

void pb_channel_close_fd(pb_supervisor *s, int *fd)
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
		pb_channel_kill(w);
		while (!w->proc.from_zygote && waitpid(w->proc.pid, NULL, 0) < 0 && errno == EINTR)
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
	pb_netconnect_free(w);
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
	/* The worker flushed what the plugin printed before it answered: read
	 * it now, while the call is still the one it runs, so that a host
	 * that attributes lines to calls gets this call's before its end.
	 * Only a call made alone (PB_CALL_ALONE) has the pipe to itself: for
	 * the others the two reads would buy nothing. */
	if (s->call_output && w->stack[0]->alone) {
		if (w->proc.stdout_fd >= 0)
			pb_output_read(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
		if (w->proc.stderr_fd >= 0)
			pb_output_read(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
	}
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

static void on_log(pb_supervisor *s, struct process *w, Plugbox__Envelope *env, bool *keep)
{
	(void)keep;
	pb_output_log(s, w, env->log);
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
			pb_reports_read(s, w);
		else if (which[j] == 1 && w->proc.stdout_fd >= 0)
			pb_output_read(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
		else if (which[j] == 2 && w->proc.stderr_fd >= 0)
			pb_output_read(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
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
static void read_frames(pb_supervisor *s, struct process *w, bool quiet, bool *progressed)
{
	size_t before = pb_frame_in_pending(&w->in);
	ssize_t got = pb_frame_in_fill(&w->in, w->proc.replies_fd);
	bool caught_up = false;

	if (got > 0)
		*progressed = true;
	if (got == -ENODATA || got == -EPIPE) {
		/* Closed channel: either it is dying (the pidfd will say) or
		 * it closed its end on purpose, which ends it too. */
		if (got == -EPIPE)
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' closed its channel mid-frame", w->name);
		pb_channel_close_fd(s, &w->proc.replies_fd);
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
			/* The poll can only find what the worker wrote before
			 * this frame if the frame was in the pipe when the
			 * loop's harvest found nothing else of it ready: so
			 * the read took this one frame and nothing more (a
			 * pipe takes a write of up to PIPE_BUF whole), and
			 * nothing of it was read before. */
			if (!(quiet && before == 0 && (size_t)got == (size_t)len + 4 && got <= PIPE_BUF))
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

/* quiet: the loop's harvest that said the replies are readable found the
 * worker's report socket and output pipes empty (loop.c). */
static void read_replies(pb_supervisor *s, struct process *w, bool quiet)
{
	bool progressed = false;

	read_frames(s, w, quiet, &progressed);
	pb_channel_stall_clock(s, w, &w->read_stall_at, w->end_kind == 0 && w->proc.replies_fd >= 0 && pb_frame_in_pending(&w->in) > 0, progressed);
}

/* Everything left in the pipes once the worker has exited. */
static void drain(pb_supervisor *s, struct process *w)
{
	if (w->proc.report_fd >= 0)
		pb_reports_read(s, w);
	if (w->notify_fd >= 0)
		pb_reports_notifications(s, w);
	for (int i = 0; i < 64 && w->proc.replies_fd >= 0 && w->end_kind == 0; i++)
		read_replies(s, w, false);
	for (int i = 0; i < 64 && w->proc.stdout_fd >= 0; i++)
		pb_output_read(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
	for (int i = 0; i < 64 && w->proc.stderr_fd >= 0; i++)
		pb_output_read(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
}

void pb_channel_reap(pb_supervisor *s, struct process *w)
{
	struct rusage ru;

	if (w->state == P_DEAD)
		return;
	memset(&ru, 0, sizeof(ru));
	if (!w->reaped && w->proc.from_zygote) {
		/* The zygote's child: the kernel keeps its status with the pidfd. */
		if (pb_zygote_child_status(w->proc.pidfd, &w->wstatus) < 0)
			pb_channel_end(w, PB_ERROR_CRASHED, "worker for plugin '%s' died (forked by its zygote: "
			                                    "the kernel does not say how before Linux 6.15)",
			               w->name);
		w->reaped = true;
	} else if (!w->reaped && w->proc.pid > 0) {
		while (wait4(w->proc.pid, &w->wstatus, 0, &ru) < 0 && errno == EINTR)
			;
		w->cpu_used = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
		              ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
		w->max_rss_kib = ru.ru_maxrss > 0 ? (uint64_t)ru.ru_maxrss : 0;
		w->reaped = true;
	}
	/* What it wrote before exiting is still judged in its state. */
	drain(s, w);
	pb_reports_final(s, w);
	pb_output_final(s, w);
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
			pb_reports_read(s, w);
		break;
	case SRC_NOTIFY:
		if (w->notify_fd >= 0)
			pb_reports_notifications(s, w);
		break;
	case SRC_STDOUT:
		if (w->proc.stdout_fd >= 0)
			pb_output_read(s, w, &w->proc.stdout_fd, &w->out, PB_STREAM_STDOUT);
		break;
	case SRC_STDERR:
		if (w->proc.stderr_fd >= 0)
			pb_output_read(s, w, &w->proc.stderr_fd, &w->err, PB_STREAM_STDERR);
		break;
	case SRC_REPLIES:
		if (w->proc.replies_fd >= 0 && w->end_kind == 0)
			read_replies(s, w, s->harvest != 0 && w->side_round != s->harvest);
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
	pb_channel_close_fd(s, &w->proc.calls_fd);
	w->want_write = false;
}
