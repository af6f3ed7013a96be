/* runtime.c - calls: the plugins' queues, pumping calls into workers,
 * timers and deadlines.
 *
 * Each plugin has a queue of calls and at most one worker process. A call
 * waits in the queue until the worker is idle, or is written ahead to it
 * while it runs another (pipelined, inflight.c); calls made by a host
 * function to the plugin that is waiting for it are nested and go straight
 * in. Workers start on a plugin's first call (or when asked),
 * restart after a crash once a backoff has passed (doubling per crash), and
 * a plugin whose workers crash max_crashes times within the window is
 * marked failed: its calls end at once until the window has passed (a
 * worker's start, Hello and exit are workers.c's; the plugin table is
 * plugins.c's). Every call ends exactly once, through pb_call_finish, which hands it to the
 * loop's ready list.
 *
 * Deadlines: a call's timeout counts from when it was made, queue included;
 * the policy's `@limit call-time` bounds the time it runs in the worker.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jail/zygote.h"
#include "runtime/channel.h"
#include "runtime/output.h"
#include "runtime/error.h"
#include "runtime/hostcall.h"
#include "runtime/cancel.h"
#include "runtime/inflight.h"
#include "runtime/loop.h"
#include "runtime/outbox.h"
#include "runtime/process.h"
#include "runtime/plugins.h"
#include "runtime/runtime.h"
#include "runtime/workers.h"
#include "runtime/supervisor.h"
#include "runtime/watch.h"
#include "runtime/stats.h"
#include "proto/value.h"

/* ---- calls -------------------------------------------------------------------- */

void pb_call_free(struct call *c)
{
	if (!c)
		return;
	free(c->frame);
	pb_value_destroy(c->result);
	pb_error_free(c->err);
	free(c);
}

void pb_call_finish(pb_supervisor *s, struct call *c, pb_value *result, pb_error *err)
{
	if (!result && !err)
		err = pb_error_new(PB_ERROR_UNAVAILABLE, c->plugin ? c->plugin->name : "", "", "out of memory", "");
	c->result = result;
	c->err = err;
	c->running = false;
	if (c->host) {
		pb_host_call_orphan(c->host);
		c->host = NULL;
	}
	pb_loop_ready(s, &c->link);
}

void pb_runtime_timer(pb_supervisor *s, struct plugin *p, double at)
{
	if (at > 0 && (p->next_timer == 0 || at < p->next_timer))
		p->next_timer = at;
	pb_loop_timer_hint(s, at);
}

struct call *pb_runtime_dequeue(struct plugin *p)
{
	struct call *c = p->queue_head;
	if (c) {
		p->queue_head = c->next;
		if (!p->queue_head)
			p->queue_tail = NULL;
		c->next = NULL;
		p->queued--;
	}
	return c;
}

void pb_runtime_requeue(struct plugin *p, struct call *c)
{
	c->next = p->queue_head;
	p->queue_head = c;
	if (!p->queue_tail)
		p->queue_tail = c;
	p->queued++;
}

pb_error *pb_queue_timeout_error(const struct plugin *p, const struct call *c)
{
	return pb_error_newf(PB_ERROR_TIMEOUT, p->name, "call to plugin '%s' timed out after %g s waiting "
	                                                "for the worker, which was busy or starting",
	                     p->name, c->limit);
}

/* End every queued call with (a copy of) err. */
void pb_runtime_fail_queue(pb_supervisor *s, struct plugin *p, const pb_error *err)
{
	struct call *c;
	while ((c = pb_runtime_dequeue(p)))
		pb_call_finish(s, c, NULL, pb_error_copy(err));
}

/* ---- moving a plugin along ------------------------------------------------------ */

/* Does anyone need a worker for it: calls, an eager start, pb_describe? */
bool pb_runtime_wants_worker(const struct plugin *p)
{
	return p->queued || p->keep_running || p->waiters;
}

void pb_runtime_pump(pb_supervisor *s, struct plugin *p)
{
	struct process *w = p->proc;

	if (!w) {
		if (pb_runtime_wants_worker(p) && !s->shutting_down && p->failed_until == 0) {
			if (pb_now() >= p->not_before)
				pb_runtime_start(s, p);
			else
				pb_runtime_timer(s, p, p->not_before);
		}
		return;
	}
	if (w->state == P_IDLE && p->queued && !w->outdated) {
		/* A call made after an install never reaches the old worker:
		 * look (this may mark it outdated, and pump again). */
		pb_watch_check(s, p->name);
		if (p->proc != w || w->state != P_IDLE)
			return;
	}
	if (w->state == P_RUNNING || w->state == P_HOST_WAIT)
		pb_inflight_fill(s, w);
	if (w->state != P_IDLE)
		return;
	if (w->outdated || (w->answered && w->policy->sandbox.fresh_per_call)) {
		/* Replaced under it, or @fresh-per-call and its call answered: the
		 * next calls go to a new worker. */
		pb_channel_stop(s, w);
		pb_runtime_timer(s, p, w->state_deadline);
	} else if (p->queued) {
		pb_inflight_send(s, w, pb_runtime_dequeue(p));
		pb_inflight_fill(s, w);
	} else if (p->stop_requested || s->shutting_down) {
		p->stop_requested = false;
		pb_channel_stop(s, w);
		pb_runtime_timer(s, p, w->state_deadline);
	} else if (s->idle_timeout > 0 && !p->keep_running) {
		pb_runtime_timer(s, p, w->idle_since + s->idle_timeout);
	}
}

void pb_runtime_dir_changed(pb_supervisor *s, const char *name)
{
	for (size_t i = 0; i < s->nplugins; i++) {
		struct plugin *p = s->plugins[i];
		struct process *w = p->proc;
		if (name && strcmp(p->name, name) != 0)
			continue;
		if (p->zygote) {
			/* It holds the old import: the next worker needs a new one. */
			pb_zygote_stop(p->zygote);
			p->zygote = NULL;
		}
		p->zygote_refused = false;
		if (!w || w->outdated || !pb_watch_outdated(s, w))
			continue;
		w->outdated = true;
		pb_runtime_pump(s, p);
	}
}

/* ---- timers ---------------------------------------------------------------------- */

/* Queued calls whose time is up end here; the worker is not touched. */
static void expire_queue(pb_supervisor *s, struct plugin *p, double now)
{
	struct call **link = &p->queue_head, *c;

	p->queue_tail = NULL;
	while ((c = *link)) {
		if (c->deadline > 0 && c->deadline <= now) {
			*link = c->next;
			c->next = NULL;
			p->queued--;
			pb_call_finish(s, c, NULL, pb_queue_timeout_error(p, c));
			continue;
		}
		p->queue_tail = c;
		link = &c->next;
	}
}

static void tick_plugin(pb_supervisor *s, struct plugin *p, double now)
{
	struct process *w = p->proc;

	if (p->failed_until > 0 && now >= p->failed_until) {
		p->failed_until = 0;
		p->ncrashes = 0;
		pb_note(s, p->name, "plugin '%s' is no longer marked failed", p->name);
	}
	expire_queue(s, p, now);
	if (w) {
		pb_inflight_expire(s, w, now);
		pb_channel_check_stall(w, now);
		pb_output_drops_due(s, w, now);
	}
	if (w && (w->state == P_STARTING || w->state == P_STOPPING) && w->state_deadline > 0 &&
	    now >= w->state_deadline) {
		if (w->state == P_STARTING)
			pb_channel_end(w, PB_ERROR_TIMEOUT, "plugin '%s' did not start within %g s", p->name, s->timeout);
		else
			pb_channel_kill(w);
	}
	for (size_t i = 0; w && i < w->depth; i++) {
		struct call *c = w->stack[i];
		if (c->deadline > 0 && now >= c->deadline && c->cancelled) {
			pb_cancel_overdue(s, w);
			break;
		}
		if (c->deadline > 0 && now >= c->deadline) {
			pb_channel_end(w, PB_ERROR_TIMEOUT, "plugin '%s' timed out after %g s%s", p->name, c->limit,
			               c->limit_is_policy ? " (its policy's @limit call-time)" : "");
			break;
		}
	}
	if (w && w->state == P_IDLE && s->idle_timeout > 0 && !p->keep_running && !p->queued &&
	    now - w->idle_since >= s->idle_timeout) {
		pb_note(s, p->name, "stopping the worker after %g s without a call", s->idle_timeout);
		p->stop_requested = true;
	}
	pb_runtime_pump(s, p);
}

/* The earliest time the plugin needs looking at again. */
static double plugin_next_timer(const pb_supervisor *s, const struct plugin *p)
{
	const struct process *w = p->proc;
	double t = 0;
#define CONSIDER(x)                               \
	do {                                      \
		double x_ = (x);                  \
		if (x_ > 0 && (t == 0 || x_ < t)) \
			t = x_;                   \
	} while (0)
	for (const struct call *c = p->queue_head; c; c = c->next)
		CONSIDER(c->deadline);
	if (p->failed_until > 0)
		CONSIDER(p->failed_until);
	if (!w && pb_runtime_wants_worker(p) && p->failed_until == 0)
		CONSIDER(p->not_before);
	if (w && (w->state == P_STARTING || w->state == P_STOPPING))
		CONSIDER(w->state_deadline);
	for (size_t i = 0; w && i < w->depth; i++)
		CONSIDER(w->stack[i]->deadline);
	if (w)
		CONSIDER(pb_inflight_next_deadline(w));
	if (w && w->end_kind == 0) {
		CONSIDER(w->read_stall_at);
		CONSIDER(w->write_stall_at);
	}
	if (w)
		CONSIDER(w->drops_due);
	if (w && w->state == P_IDLE && s->idle_timeout > 0 && !p->keep_running)
		CONSIDER(w->idle_since + s->idle_timeout);
#undef CONSIDER
	return t;
}

static void shutdown_expired(pb_supervisor *s)
{
	pb_error *late = pb_error_new(PB_ERROR_UNAVAILABLE, "", "",
	                              "the supervisor shut down before the call finished", "");
	for (size_t i = 0; i < s->nplugins; i++) {
		struct plugin *p = s->plugins[i];
		pb_runtime_fail_queue(s, p, late);
		if (p->proc && p->proc->state != P_STOPPING && p->proc->state != P_DEAD) {
			pb_channel_end(p->proc, PB_ERROR_UNAVAILABLE, "the supervisor shut down before the call to "
			                                              "plugin '%s' finished",
			               p->name);
			p->proc->stop_requested = true;
			p->proc->state = P_STOPPING;
			p->proc->state_deadline = pb_now() + SHUTDOWN_GRACE_MS / 1000.0;
		}
	}
	pb_error_free(late);
}

double pb_runtime_tick(pb_supervisor *s, double now)
{
	double next = 0;

	if (s->shutting_down && s->shutdown_deadline > 0 && now >= s->shutdown_deadline) {
		s->shutdown_deadline = 0;
		shutdown_expired(s);
	}
	for (size_t i = 0; i < s->nplugins; i++) {
		struct plugin *p = s->plugins[i];
		if (p->next_timer > 0 && now >= p->next_timer) {
			p->next_timer = 0;
			tick_plugin(s, p, now);
			p->next_timer = plugin_next_timer(s, p);
		}
		if (p->next_timer > 0 && (next == 0 || p->next_timer < next))
			next = p->next_timer;
	}
	if (s->shutdown_deadline > 0 && (next == 0 || s->shutdown_deadline < next))
		next = s->shutdown_deadline;
	return next;
}

void pb_runtime_free(pb_supervisor *s)
{
	for (size_t i = 0; i < s->nplugins; i++) {
		struct plugin *p = s->plugins[i];
		struct call *c;
		if (p->proc)
			pb_inflight_requeue(s, p->proc); /* only if the loop failed */
		while ((c = pb_runtime_dequeue(p)))
			pb_call_free(c);
		if (p->proc)
			pb_channel_free(s, p->proc);
		pb_zygote_stop(p->zygote);
		pb_error_free(p->start_error);
		free(p->name);
		free(p);
	}
	free(s->plugins);
	s->plugins = NULL;
	s->nplugins = 0;
	free(s->plugin_index);
	s->plugin_index = NULL;
	s->plugin_index_cap = 0;
}

/* ---- the public API ------------------------------------------------------------------ */

static int check_spec(pb_supervisor *s, const pb_call_spec *spec)
{
	if (!spec || !spec->plugin || !spec->function || (spec->nargs && !spec->args) ||
	    (spec->nkwargs && (!spec->kwnames || !spec->kwvalues))) {
		pb_set_message(s, "a call needs a plugin, a function and its arguments");
		return -EINVAL;
	}
	if (!(spec->timeout >= 0) || spec->timeout > 86400.0 * 365) {
		pb_set_message(s, "a call's timeout must be between 0 (the supervisor's) and one year, not %g",
		               spec->timeout);
		return -EINVAL;
	}
	if (!pb_utf8_valid(spec->function, strlen(spec->function)) || !pb_utf8_valid(spec->plugin, strlen(spec->plugin))) {
		pb_set_message(s, "the function or plugin name is not UTF-8");
		return -EINVAL;
	}
	for (size_t i = 0; i < spec->nkwargs; i++) {
		if (!spec->kwnames[i] || !*spec->kwnames[i] || !spec->kwvalues[i] ||
		    !pb_utf8_valid(spec->kwnames[i], strlen(spec->kwnames[i])) ||
		    pbv_depth((const Plugbox__Value *)spec->kwvalues[i]) > PB_VALUE_MAX_DEPTH - 1) {
			pb_set_message(s, "keyword argument %zu has no valid name or is nested too deeply", i + 1);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < spec->nargs; i++) {
		if (!spec->args[i] || pbv_depth((const Plugbox__Value *)spec->args[i]) > PB_VALUE_MAX_DEPTH - 1) {
			pb_set_message(s, "argument %zu is missing or nested deeper than %d levels", i + 1,
			               PB_VALUE_MAX_DEPTH - 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* The Call as a whole frame. A nested call names its host call (parent);
 * start_by is its deadline, past which the worker must not start it. */
static int pack_call(pb_supervisor *s, const pb_call_spec *spec, uint64_t id, uint64_t parent, bool prune,
                     struct call *c)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Call call = PLUGBOX__CALL__INIT;
	Plugbox__KeywordArgument *kw_store = NULL, **kw_ptrs = NULL;
	int r;

	call.function = (char *)spec->function;
	call.n_args = spec->nargs;
	call.args = (Plugbox__Value **)spec->args;
	if (spec->nkwargs) {
		kw_store = calloc(spec->nkwargs, sizeof(*kw_store));
		kw_ptrs = calloc(spec->nkwargs, sizeof(*kw_ptrs));
		if (!kw_store || !kw_ptrs) {
			free(kw_store);
			free(kw_ptrs);
			return -ENOMEM;
		}
		for (size_t i = 0; i < spec->nkwargs; i++) {
			plugbox__keyword_argument__init(&kw_store[i]);
			kw_store[i].name = (char *)spec->kwnames[i];
			kw_store[i].value = (Plugbox__Value *)spec->kwvalues[i];
			kw_ptrs[i] = &kw_store[i];
		}
		call.n_kwargs = spec->nkwargs;
		call.kwargs = kw_ptrs;
	}
	call.parent = parent;
	call.start_by = parent ? 0 : c->deadline;
	call.prune_kwargs = prune;
	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_CALL;
	env.call = &call;
	/* room for the poll hint the outbox may append */
	r = pb_envelope_pack(&env, PB_FRAME_MAX_DEFAULT - 16, &c->frame, &c->frame_len);
	free(kw_store);
	free(kw_ptrs);
	if (r == -EMSGSIZE)
		pb_set_message(s, "the call is larger than a frame may be (%u bytes)", PB_FRAME_MAX_DEFAULT);
	return r;
}

PB_API int pb_call_start(pb_supervisor *s, const pb_call_spec *spec, pb_call_done_fn done,
                         void *userdata, uint64_t *call_id)
{
	return pb_runtime_call_start(s, spec, 0, done, userdata, call_id);
}

int pb_runtime_call_start(pb_supervisor *s, const pb_call_spec *spec, unsigned flags, pb_call_done_fn done,
                          void *userdata, uint64_t *call_id)
{
	struct call *c;
	struct plugin *p;
	pb_error *err = NULL;
	int r;

	if (!done) {
		pb_set_message(s, "a call needs a completion callback");
		return -EINVAL;
	}
	if ((r = check_spec(s, spec)) < 0)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->id = ++s->next_id;
	c->limit = spec->timeout > 0 ? spec->timeout : s->timeout;
	c->deadline = c->limit > 0 ? pb_now() + c->limit : 0;
	p = pb_runtime_known(s, spec->plugin);
	if ((r = pack_call(s, spec, c->id, p && p->proc && pb_host_call_nesting(p->proc) ? p->proc->stack[p->proc->depth - 1]->host->wire_id : 0,
	                   (flags & PB_RUNTIME_CALL_PRUNE) != 0, c)) < 0) {
		free(c);
		return r;
	}
	c->done = done;
	c->userdata = userdata;
	s->calls_pending++;
	if (call_id)
		*call_id = c->id;

	p = pb_runtime_plugin(s, spec->plugin, &err);
	c->plugin = p;
	if (!p) {
		pb_call_finish(s, c, NULL, err);
		return 0;
	}
	if (s->shutting_down) {
		pb_call_finish(s, c, NULL, pb_error_newf(PB_ERROR_UNAVAILABLE, p->name, "the supervisor is shutting down and takes no more calls"));
		return 0;
	}
	if (p->failed_until > 0) {
		pb_call_finish(s, c, NULL, pb_error_new(PB_ERROR_UNAVAILABLE, p->name, "", p->failed_reason, ""));
		return 0;
	}
	if (p->proc && pb_host_call_nesting(p->proc)) {
		if (p->proc->depth == PB_MAX_NESTING) {
			pb_call_finish(s, c, NULL, pb_error_newf(PB_ERROR_BAD_REQUEST, p->name, "calls to plugin '%s' nested deeper than %d", p->name, PB_MAX_NESTING));
			return 0;
		}
		pb_inflight_send(s, p->proc, c);
		return 0;
	}
	c->next = NULL;
	if (p->queue_tail)
		p->queue_tail->next = c;
	else
		p->queue_head = c;
	p->queue_tail = c;
	p->queued++;
	pb_runtime_timer(s, p, c->deadline);
	pb_runtime_pump(s, p);
	return 0;
}
