/* inflight.c - calls inside a worker: the one it runs, the calls nested in
 * that one's host calls, and the calls pipelined behind it.
 *
 * A worker runs one top-level call at a time (stack[0]); calls nested in its
 * host calls sit above it on the stack, and the worker answers the innermost
 * first. So that a worker never waits for the supervisor between calls,
 * queued top-level calls are written ahead (up to PB_PIPELINE_MAX, and
 * while less than PB_PIPELINE_MAX_BYTES wait for its pipe): the worker runs
 * them in order, so the answer after stack[0]'s is always the oldest
 * pipelined call's, and that call has started when the answer before it
 * arrives. Its time limits count from then: the policy's `@limit call-time`
 * from its start, the host's timeout from when it was made, as for any call.
 *
 * A pipelined call has not started, so it is no one's fault when its worker
 * dies: it goes back to the front of the queue for the next worker. One
 * whose deadline passes while it waits ends like a queued call (timed out
 * waiting for the worker); if it was written already, a ghost takes its
 * place, whose answer is dropped. The Call carries that deadline
 * (Call.start_by) and the worker does not start it once past, so the ghost
 * is answered at once when the worker reaches it.
 *
 * Only a plugin's only worker is written ahead: a plugin with @replicas
 * keeps one queue for all its workers (runtime.c), so that a call goes to
 * the first worker that is free and calls start in the order they came;
 * a call written ahead to a busy replica could start after a later one.
 *
 * Pipelined calls go into the outbox only when the loop flushes it, after
 * one check that the plugin's directory was not replaced (watch.c): calls
 * made after an install never reach the old worker, and calls started
 * together leave in one write.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/channel.h"
#include "runtime/error.h"
#include "runtime/hostcall.h"
#include "runtime/inflight.h"
#include "runtime/loop.h"
#include "runtime/outbox.h"
#include "runtime/process.h"
#include "runtime/runtime.h"
#include "runtime/watch.h"
#include "runtime/cancel.h"
#include "proto/value.h"

/* The call has just started in the worker: its deadline now also counts
 * the policy's call-time. A ghost gets the time its call had, from now:
 * an honest worker answers it at once. */
static void call_started(pb_supervisor *s, struct process *w, struct call *c, double now)
{
	uint64_t call_ms = w->policy->sandbox.limit[PB_LIMIT_CALL_TIME];

	if (c->ghost)
		c->deadline = c->limit > 0 ? now + c->limit : 0;
	if (call_ms != PB_LIMIT_UNLIMITED && (c->deadline == 0 || now + (double)call_ms / 1000.0 < c->deadline)) {
		c->deadline = now + (double)call_ms / 1000.0;
		c->limit = (double)call_ms / 1000.0;
		c->limit_is_policy = true;
	}
	pb_runtime_timer(s, w->plugin, c->deadline);
}

/* Envelope.poll_us for a call written to w now. Worth asking for when the
 * worker's policy lets it poll, we may run on another CPU than it, and the
 * host's recent calls came within the spin window of the answer before. */
static uint32_t poll_hint(pb_supervisor *s, struct process *w)
{
	/* we wait for this worker now: spin if it may answer from another CPU */
	s->spin_cross = pb_loop_cross_cpu(s, w);
	return w->poll_ok && w->quick_gaps >= 2 && s->spin_cross ? PB_SPIN_US : 0;
}

/* Append c to the outbox as written now. */
static bool append_call(pb_supervisor *s, struct process *w, const struct call *c)
{
	if (pb_outbox_append_call(w, c->frame, c->frame_len, poll_hint(s, w)) == 0)
		return true;
	pb_channel_end(w, PB_ERROR_UNAVAILABLE, "out of memory sending a call to plugin '%s'", w->name);
	return false;
}

void pb_inflight_send(pb_supervisor *s, struct process *w, struct call *c)
{
	double now = pb_now();

	if (w->depth == 0) {
		/* How soon after an answer the next call came decides whether
		 * the worker should poll for the next one. */
		if (w->replied_at > 0 && now - w->replied_at < PB_SPIN_US / 1e6)
			w->quick_gaps += w->quick_gaps < 8;
		else
			w->quick_gaps = 0;
	}
	c->running = true;
	w->stack[w->depth++] = c;
	w->state = P_RUNNING;
	call_started(s, w, c, now);
	if (append_call(s, w, c))
		pb_outbox_flush(s, w);
}

static struct call **slot(struct process *w, unsigned i)
{
	return &w->pipeline[(w->pipe_head + i) % PB_PIPELINE_MAX];
}

void pb_inflight_fill(pb_supervisor *s, struct process *w)
{
	struct plugin *p = w->plugin;
	bool added = false;

	/* @fresh-per-call: nothing written ahead, the next call is the next
	 * worker's. */
	if (w->policy && w->policy->sandbox.fresh_per_call)
		return;
	/* Replicas: the queue stays shared (runtime.c's pump). */
	if (pb_runtime_replicas(s, p) > 1)
		return;
	while (p->queued && w->depth > 0 && (w->state == P_RUNNING || w->state == P_HOST_WAIT) &&
	       w->end_kind == 0 && !w->outdated && w->pipe_count < PB_PIPELINE_MAX &&
	       pb_frame_out_pending(&w->outbox) < PB_PIPELINE_MAX_BYTES && !w->stack[0]->alone &&
	       !(w->pipe_count && (*slot(w, w->pipe_count - 1))->alone) && !p->queue_head->alone) {
		struct call *c = pb_runtime_dequeue(p);

		c->running = true;
		*slot(w, w->pipe_count++) = c;
		w->unsent++;
		added = true;
	}
	if (added)
		pb_outbox_flush_later(s, w);
}

void pb_inflight_materialize(pb_supervisor *s, struct process *w)
{
	if (w->unsent == 0)
		return;
	/* An install since these calls were made: not to this worker. */
	if (!w->outdated)
		pb_watch_check(s, w->name);
	if (w->outdated) {
		while (w->unsent > 0) {
			struct call *c = *slot(w, w->pipe_count - 1);

			w->pipe_count--;
			w->unsent--;
			c->running = false;
			pb_runtime_requeue(w->plugin, c);
		}
		return;
	}
	while (w->unsent > 0 && w->end_kind == 0 && pb_frame_out_pending(&w->outbox) < PB_PIPELINE_MAX_BYTES) {
		if (!append_call(s, w, *slot(w, w->pipe_count - w->unsent)))
			return;
		w->unsent--;
	}
}

/* A ghost for c, which ends now with the timeout of a call that waited:
 * the ghost takes its place in the worker. NULL when out of memory (c then
 * stays: the worker skips it all the same, and its answer becomes the
 * timeout). */
static struct call *ghost_of(pb_supervisor *s, struct process *w, struct call *c)
{
	struct call *ghost = calloc(1, sizeof(*ghost));

	if (!ghost)
		return NULL;
	ghost->id = c->id;
	ghost->plugin = c->plugin;
	ghost->limit = c->limit;
	ghost->running = true;
	ghost->ghost = true;
	pb_call_finish(s, c, NULL, pb_queue_timeout_error(w->plugin, c));
	return ghost;
}

/* The answer before it came: the oldest pipelined call has started (or,
 * past its deadline, is skipped by the worker: a ghost waits for that). */
static void start_next(pb_supervisor *s, struct process *w, double now)
{
	struct call *c = *slot(w, 0);
	bool unsent = w->unsent == w->pipe_count;

	w->pipe_head = (w->pipe_head + 1) % PB_PIPELINE_MAX;
	w->pipe_count--;
	if (unsent)
		w->unsent--;
	if (!c->ghost && c->deadline > 0 && c->deadline <= now && !unsent) {
		struct call *ghost = ghost_of(s, w, c);
		if (ghost)
			c = ghost;
	}
	w->stack[w->depth++] = c;
	w->state = P_RUNNING;
	call_started(s, w, c, now);
	/* not flushed yet, and the worker waits for it */
	if (unsent && append_call(s, w, c))
		pb_outbox_flush(s, w);
}

void pb_inflight_reply(pb_supervisor *s, struct process *w, Plugbox__Envelope *reply)
{
	struct call *c = w->stack[--w->depth];
	pb_value *result = NULL;
	pb_error *err = NULL;
	double now;

	if (reply->body_case == PLUGBOX__ENVELOPE__BODY_RESULT) {
		Plugbox__Value *v = reply->result->value;
		reply->result->value = NULL;
		result = (pb_value *)(v ? v : pbv_new_null());
	} else if (!c->ghost && c->deadline > 0 && pb_now() >= c->deadline && w->depth == 0 &&
	           pb_error_kind_from_wire(reply->error->kind) == PB_ERROR_UNAVAILABLE) {
		/* The worker did not start it (Call.start_by): our deadline, our words. */
		err = pb_queue_timeout_error(w->plugin, c);
	} else {
		const Plugbox__Error *e = reply->error;
		err = pb_error_new(pb_error_kind_from_wire(e->kind), w->name, e->type, e->message, e->traceback);
	}
	pb_envelope_free(reply);
	pb_call_finish(s, c, result, err);
	if (w->depth > 0) {
		/* back in the host call the nested one came from */
		w->state = P_HOST_WAIT;
		pb_host_call_flush(s, w);
		return;
	}
	now = pb_now();
	w->replied_at = now;
	w->answered = true;
	if (w->pipe_count > 0) {
		start_next(s, w, now);
	} else {
		w->state = P_IDLE;
		w->idle_since = now;
	}
	pb_runtime_pump(s, w->plugin);
}

void pb_inflight_requeue(pb_supervisor *s, struct process *w)
{
	(void)s;
	/* from the newest, each to the front: the order is kept */
	while (w->pipe_count > 0) {
		struct call *c = *slot(w, w->pipe_count - 1);

		w->pipe_count--;
		if (c->ghost) {
			pb_call_free(c);
			continue;
		}
		c->running = false;
		pb_runtime_requeue(w->plugin, c);
	}
	w->unsent = 0;
}

void pb_inflight_expire(pb_supervisor *s, struct process *w, double now)
{
	for (unsigned i = 0; i < w->pipe_count;) {
		struct call *c = *slot(w, i), *ghost;
		bool written = i < w->pipe_count - w->unsent;

		if (c->ghost || c->deadline == 0 || c->deadline > now) {
			i++;
			continue;
		}
		if (!written) {
			/* never reached the worker: out of the pipeline */
			for (unsigned j = i; j + 1 < w->pipe_count; j++)
				*slot(w, j) = *slot(w, j + 1);
			w->pipe_count--;
			w->unsent--;
			pb_call_finish(s, c, NULL, pb_queue_timeout_error(w->plugin, c));
		} else {
			ghost = ghost_of(s, w, c);
			if (ghost)
				*slot(w, i) = ghost;
			i++;
		}
	}
}

double pb_inflight_next_deadline(const struct process *w)
{
	double t = 0;

	for (unsigned i = 0; i < w->pipe_count; i++) {
		const struct call *c = w->pipeline[(w->pipe_head + i) % PB_PIPELINE_MAX];

		if (!c->ghost && c->deadline > 0 && (t == 0 || c->deadline < t))
			t = c->deadline;
	}
	return t;
}

/* A ghost for c, which the host cancelled: it takes c's place in the
 * worker and c ends now. A running one gets the grace to stop in. */
static struct call *cancel_ghost(pb_supervisor *s, struct process *w, struct call *c, bool running)
{
	struct call *ghost = calloc(1, sizeof(*ghost));

	if (!ghost)
		return NULL;
	ghost->id = c->id;
	ghost->plugin = c->plugin;
	ghost->running = true;
	ghost->ghost = true;
	if (running) {
		ghost->cancelled = true;
		ghost->limit = PB_CANCEL_GRACE;
		ghost->deadline = pb_now() + PB_CANCEL_GRACE;
		/* the host function it waits for still answers the worker, which
		 * then meets the cancel */
		ghost->host = c->host;
		c->host = NULL;
		if (ghost->host)
			pb_host_call_adopt(ghost->host, ghost);
		pb_runtime_timer(s, w->plugin, ghost->deadline);
	}
	pb_call_finish(s, c, NULL, pb_cancelled_error(w->plugin, c, running));
	return ghost;
}

int pb_inflight_cancel(pb_supervisor *s, struct process *w, uint64_t id)
{
	for (unsigned i = 0; i < w->pipe_count; i++) {
		struct call *c = *slot(w, i), *ghost;

		if (c->id != id || c->ghost)
			continue;
		if (i >= w->pipe_count - w->unsent) {
			/* never reached the worker: out of the pipeline */
			for (unsigned j = i; j + 1 < w->pipe_count; j++)
				*slot(w, j) = *slot(w, j + 1);
			w->pipe_count--;
			w->unsent--;
			pb_call_finish(s, c, NULL, pb_cancelled_error(w->plugin, c, false));
			return 0;
		}
		/* written ahead: the worker must skip it when it comes to it */
		if (!(ghost = cancel_ghost(s, w, c, false)))
			return -ENOMEM;
		*slot(w, i) = ghost;
		pb_cancel_signal(s, w, id);
		return 0;
	}
	for (size_t i = 0; i < w->depth; i++) {
		struct call *c = w->stack[i], *ghost;

		if (c->id != id || c->ghost)
			continue;
		if (i + 1 < w->depth) {
			/* Calls nested in its host call run in the worker now: it
			 * cannot be interrupted without them. They end with it. */
			pb_channel_end(w, PB_ERROR_CANCELLED, "call to plugin '%s' cancelled while calls nested in "
			                                      "its host call ran: the worker was ended",
			               w->name);
			return 0;
		}
		if (!(ghost = cancel_ghost(s, w, c, true)))
			return -ENOMEM;
		w->stack[i] = ghost;
		pb_cancel_signal(s, w, id);
		return 0;
	}
	return -ENOENT;
}

uint64_t pb_inflight_running(const struct process *w)
{
	const struct call *c = w->depth ? w->stack[w->depth - 1] : NULL;

	/* a ghost's output is nobody's: its host has given it up */
	if (!c || c->ghost)
		return 0;
	return c->origin ? c->origin : c->id;
}

PB_API uint64_t pb_call_origin(pb_supervisor *s, uint64_t call_id)
{
	for (size_t i = 0; call_id && i < s->nplugins; i++) {
		for (unsigned k = 0; k < s->plugins[i]->nworkers; k++) {
			const struct process *w = s->plugins[i]->workers[k];
			for (size_t j = 0; j < w->depth; j++)
				if (w->stack[j]->id == call_id && !w->stack[j]->ghost)
					return w->stack[j]->origin ? w->stack[j]->origin : call_id;
		}
	}
	return 0;
}
