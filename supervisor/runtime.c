/* runtime.c - calls and the lifecycle of workers.
 *
 * Each plugin has a queue of calls and at most one worker process. A call
 * waits in the queue until the worker is idle, then runs; calls made by a
 * host function to the plugin that is waiting for it are nested and go
 * straight in. Workers start on a plugin's first call (or when asked),
 * restart after a crash once a backoff has passed (doubling per crash), and
 * a plugin whose workers crash max_crashes times within the window is
 * marked failed: its calls end at once until the window has passed. Every
 * call ends exactly once, through pb_call_finish, which hands it to the
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
#include <sys/stat.h>

#include "cache.h"
#include "supervisor_internal.h"
#include "value.h"

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

static struct call *dequeue(struct plugin *p)
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

/* End every queued call with (a copy of) err. */
static void fail_queue(pb_supervisor *s, struct plugin *p, const pb_error *err)
{
	struct call *c;
	while ((c = dequeue(p)))
		pb_call_finish(s, c, NULL, pb_error_copy(err));
}

/* Put the call into the worker: its deadline now also counts the
 * policy's call-time. */
static void send_call(pb_supervisor *s, struct process *w, struct call *c)
{
	uint64_t call_ms = w->policy->sandbox.limit[PB_LIMIT_CALL_TIME];
	double now = pb_now();

	if (call_ms != PB_LIMIT_UNLIMITED && (c->deadline == 0 || now + (double)call_ms / 1000.0 < c->deadline)) {
		c->deadline = now + (double)call_ms / 1000.0;
		c->limit = (double)call_ms / 1000.0;
		c->limit_is_policy = true;
	}
	c->running = true;
	w->stack[w->depth++] = c;
	w->state = P_RUNNING;
	pb_runtime_timer(s, w->plugin, c->deadline);
	uint8_t *frame = c->frame;
	c->frame = NULL;
	if (pb_channel_send(s, w, frame, c->frame_len) < 0)
		pb_process_end(w, PB_ERROR_UNAVAILABLE, "out of memory sending a call to plugin '%s'", w->name);
}

/* ---- starting workers --------------------------------------------------------- */

/* The identity a plugin's workers run as when the supervisor is root: one
 * uid (and the same gid) per plugin, from a hash of its directory so it is
 * stable across restarts, moved on when another plugin of this supervisor
 * has it already. */
static uid_t plugin_uid(pb_supervisor *s, const char *name)
{
	uint32_t h = 2166136261u;
	const char *parts[] = { s->plugins_dir, "/", name };

	for (size_t p = 0; p < 3; p++)
		for (const char *c = parts[p]; *c; c++)
			h = (h ^ (uint8_t)*c) * 16777619u;
	uid_t uid = PB_PLUGIN_UID_BASE + h % PB_PLUGIN_UID_RANGE;
	for (bool taken = true; taken;) {
		taken = false;
		for (size_t i = 0; i < s->nplugins; i++)
			if (s->plugins[i]->uid == uid) {
				uid = PB_PLUGIN_UID_BASE + (uid - PB_PLUGIN_UID_BASE + 1) % PB_PLUGIN_UID_RANGE;
				taken = true;
			}
	}
	return uid;
}

/* The plugin called `name`, known from now on; NULL with *err when there
 * is no such plugin. */
static struct plugin *get_plugin(pb_supervisor *s, const char *name, pb_error **err)
{
	char dir[4096];
	struct stat st;

	for (size_t i = 0; i < s->nplugins; i++)
		if (!strcmp(s->plugins[i]->name, name))
			return s->plugins[i];
	if (!pb_valid_plugin_name(name)) {
		*err = pb_error_newf(PB_ERROR_NOT_FOUND, name, "'%s' is not a plugin name ([A-Za-z0-9_-]+)", name);
		return NULL;
	}
	if (snprintf(dir, sizeof(dir), "%s/%s", s->plugins_dir, name) >= (int)sizeof(dir) ||
	    stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*err = pb_error_newf(PB_ERROR_NOT_FOUND, name, "no plugin '%s' in %s", name, s->plugins_dir);
		return NULL;
	}
	struct plugin **grown = realloc(s->plugins, (s->nplugins + 1) * sizeof(*grown));
	struct plugin *p = calloc(1, sizeof(*p));
	if (grown)
		s->plugins = grown;
	if (!grown || !p || !(p->name = strdup(name))) {
		free(p);
		*err = pb_error_new(PB_ERROR_UNAVAILABLE, name, "", "out of memory", "");
		return NULL;
	}
	p->uid = plugin_uid(s, name);
	s->plugins[s->nplugins++] = p;
	return p;
}

static void start_failed(pb_supervisor *s, struct plugin *p, pb_error *err)
{
	fail_queue(s, p, err);
	pb_error_free(p->start_error);
	p->start_error = err;
}

static void start_process(pb_supervisor *s, struct plugin *p)
{
	char dir[4096], why[512];
	struct process *w;
	int r;

	snprintf(dir, sizeof(dir), "%s/%s", s->plugins_dir, p->name);
	w = calloc(1, sizeof(*w));
	if (!w) {
		start_failed(s, p, pb_error_new(PB_ERROR_UNAVAILABLE, p->name, "", "out of memory", ""));
		return;
	}
	w->plugin = p;
	w->name = p->name;
	w->generation = ++p->generations;
	w->notify_fd = -1;
	w->dir_fd = -1;
	w->swap_fd = -1;
	pb_spawned_init(&w->proc);
	pb_frame_reader_init(&w->reader, PB_FRAME_MAX_DEFAULT);
	r = pb_watch_pin(s, w, why, sizeof(why));
	if (r == -ENOENT || r == -ENOTDIR) {
		/* removed since it became known */
		start_failed(s, p, pb_error_newf(PB_ERROR_NOT_FOUND, p->name, "no plugin '%s' in %s", p->name,
		                                 s->plugins_dir));
		pb_process_free(s, w);
		return;
	} else if (r < 0) {
		start_failed(s, p, pb_error_newf(PB_ERROR_UNAVAILABLE, p->name, "plugin '%s' could not be started: %s",
		                                 p->name, why));
		pb_process_free(s, w);
		return;
	}
	if (pb_load_plugin_policy(s, p->name, &w->policy, why, sizeof(why)) < 0) {
		start_failed(s, p, pb_error_newf(PB_ERROR_CONFIG, p->name, "plugin '%s': policy error: %s", p->name, why));
		pb_process_free(s, w);
		return;
	}
	char *cache = pb_cache_for_worker(s, p->name, dir);
	r = pb_spawn_worker(pb_supervisor_forkserver(s, p->name), s->worker_path, p->name, dir, cache, w->policy,
	                    s->mode, p->uid, (gid_t)p->uid, &w->proc,
	                    &w->expect_listener, why, sizeof(why));
	free(cache);
	pb_watch_started(w);
	if (r < 0) {
		start_failed(s, p, pb_error_newf(PB_ERROR_UNAVAILABLE, p->name, "plugin '%s' could not be started: %s",
		                                 p->name, why));
		pb_process_free(s, w);
		return;
	}
	const struct { enum source_kind kind; int fd; } watch[] = {
		{ SRC_PIDFD, w->proc.pidfd }, { SRC_REPLIES, w->proc.replies_fd }, { SRC_STDOUT, w->proc.stdout_fd },
		{ SRC_STDERR, w->proc.stderr_fd }, { SRC_REPORT, w->proc.report_fd },
	};
	for (size_t i = 0; i < sizeof(watch) / sizeof(watch[0]); i++) {
		if (pb_loop_watch(s, w, watch[i].kind, watch[i].fd) < 0) {
			start_failed(s, p, pb_error_newf(PB_ERROR_UNAVAILABLE, p->name, "plugin '%s' could not be "
			                                 "watched: %s", p->name, strerror(errno)));
			pb_process_free(s, w);
			return;
		}
	}
	p->proc = w;
	w->state = P_STARTING;
	w->state_deadline = s->timeout > 0 ? pb_now() + s->timeout : 0;
	pb_runtime_timer(s, p, w->state_deadline);
}

/* Does anyone need a worker for it: calls, an eager start, pb_describe? */
static bool wants_worker(const struct plugin *p)
{
	return p->queued || p->keep_running || p->waiters;
}

/* Move the plugin on: start its worker, feed it the next call, or stop it. */
static void pump(pb_supervisor *s, struct plugin *p)
{
	struct process *w = p->proc;

	if (!w) {
		if (wants_worker(p) && !s->shutting_down && p->failed_until == 0) {
			if (pb_now() >= p->not_before)
				start_process(s, p);
			else
				pb_runtime_timer(s, p, p->not_before);
		}
		return;
	}
	if (w->state != P_IDLE)
		return;
	if (w->outdated) {
		/* Replaced under it: the calls go to a worker on the new directory. */
		pb_process_stop(s, w);
		pb_runtime_timer(s, p, w->state_deadline);
	} else if (p->queued) {
		send_call(s, w, dequeue(p));
	} else if (p->stop_requested || s->shutting_down) {
		p->stop_requested = false;
		pb_process_stop(s, w);
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
		if ((name && strcmp(p->name, name) != 0) || !w || w->outdated || !pb_watch_outdated(s, w))
			continue;
		w->outdated = true;
		pump(s, p);
	}
}

/* ---- what the channel reports --------------------------------------------------- */

void pb_runtime_hello(pb_supervisor *s, struct process *w)
{
	w->state = P_IDLE;
	w->idle_since = pb_now();
	pb_error_free(w->plugin->start_error);
	w->plugin->start_error = NULL;
	pump(s, w->plugin);
}

void pb_runtime_reply(pb_supervisor *s, struct process *w, Plugbox__Envelope *reply)
{
	struct call *c = w->stack[--w->depth];
	pb_value *result = NULL;
	pb_error *err = NULL;

	if (reply->body_case == PLUGBOX__ENVELOPE__BODY_RESULT) {
		Plugbox__Value *v = reply->result->value;
		reply->result->value = NULL;
		result = (pb_value *)(v ? v : pbv_new_null());
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
	w->state = P_IDLE;
	w->idle_since = pb_now();
	pump(s, w->plugin);
}

static double backoff_delay(const pb_supervisor *s, unsigned crashes)
{
	double d = s->backoff;
	for (unsigned i = 1; i < crashes && d < s->backoff_max; i++)
		d *= 2;
	return d < s->backoff_max ? d : s->backoff_max;
}

/* Crashes in the window, the new one included. */
static unsigned record_crash(pb_supervisor *s, struct plugin *p, double now)
{
	unsigned kept = 0;
	for (unsigned i = 0; i < p->ncrashes; i++)
		if (now - p->crashes[i] < s->crash_window)
			p->crashes[kept++] = p->crashes[i];
	if (kept == sizeof(p->crashes) / sizeof(p->crashes[0])) {
		memmove(p->crashes, p->crashes + 1, (kept - 1) * sizeof(p->crashes[0]));
		kept--;
	}
	p->crashes[kept++] = now;
	p->ncrashes = kept;
	return kept;
}

void pb_runtime_exited(pb_supervisor *s, struct process *w)
{
	struct plugin *p = w->plugin;
	pb_error *err = pb_process_death_error(w);
	bool started = w->hello != NULL;
	bool crashed = !w->stop_requested;
	double now = pb_now();

	if (!err)
		err = pb_error_new(PB_ERROR_CRASHED, w->name, "", "worker died", "");
	if (!started && err && (err->kind == PB_ERROR_CONFIG || err->kind == PB_ERROR_UNAVAILABLE)) {
		/* the worker's own words do not name the plugin */
		pb_error *named = pb_error_newf(err->kind, w->name, "plugin '%s': %s", w->name, err->message);
		if (named) {
			pb_error_free(err);
			err = named;
		}
	}
	while (w->depth > 0)
		pb_call_finish(s, w->stack[--w->depth], NULL, pb_error_copy(err));
	p->proc = NULL;
	pb_loop_bury(s, w);
	if (!crashed) {
		pb_error_free(err);
		pump(s, p);
		return;
	}
	unsigned n = record_crash(s, p, now);
	if (!started) {
		/* It never said Hello: the calls waiting for it would get the same. */
		start_failed(s, p, pb_error_copy(err));
	}
	if (n >= s->max_crashes) {
		p->failed_until = now + s->crash_window;
		snprintf(p->failed_reason, sizeof(p->failed_reason),
		         "plugin '%s' failed: its worker ended %u times within %g s (last: %.400s); its calls "
		         "fail until %g s have passed or it is reset", p->name, n, s->crash_window,
		         err ? err->message : "?", s->crash_window);
		pb_note(s, p->name, "%s", p->failed_reason);
		pb_error *failed = pb_error_new(PB_ERROR_UNAVAILABLE, p->name, "", p->failed_reason, "");
		fail_queue(s, p, failed);
		pb_error_free(failed);
		pb_runtime_timer(s, p, p->failed_until);
	} else {
		p->not_before = now + backoff_delay(s, n);
		/* Its calls have the error; a note says what happens next. */
		if (wants_worker(p))
			pb_note(s, p->name, "worker ended: %s; restarting in %.1f s", err ? err->message : "?",
			        p->not_before - now);
	}
	pb_error_free(err);
	pump(s, p);
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
			pb_call_finish(s, c, NULL, pb_error_newf(PB_ERROR_TIMEOUT, p->name,
			               "call to plugin '%s' timed out after %g s waiting for the worker, "
			               "which was busy or starting", p->name, c->limit));
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
	if (w)
		pb_channel_check_stall(w, now);
	if (w && (w->state == P_STARTING || w->state == P_STOPPING) && w->state_deadline > 0 &&
	    now >= w->state_deadline) {
		if (w->state == P_STARTING)
			pb_process_end(w, PB_ERROR_TIMEOUT, "plugin '%s' did not start within %g s", p->name, s->timeout);
		else
			kill(w->proc.pid, SIGKILL);
	}
	for (size_t i = 0; w && i < w->depth; i++) {
		struct call *c = w->stack[i];
		if (c->deadline > 0 && now >= c->deadline) {
			pb_process_end(w, PB_ERROR_TIMEOUT, "plugin '%s' timed out after %g s%s", p->name, c->limit,
			               c->limit_is_policy ? " (its policy's @limit call-time)" : "");
			break;
		}
	}
	if (w && w->state == P_IDLE && s->idle_timeout > 0 && !p->keep_running && !p->queued &&
	    now - w->idle_since >= s->idle_timeout) {
		pb_note(s, p->name, "stopping the worker after %g s without a call", s->idle_timeout);
		p->stop_requested = true;
	}
	pump(s, p);
}

/* The earliest time the plugin needs looking at again. */
static double plugin_next_timer(const pb_supervisor *s, const struct plugin *p)
{
	const struct process *w = p->proc;
	double t = 0;
#define CONSIDER(x) do { double x_ = (x); if (x_ > 0 && (t == 0 || x_ < t)) t = x_; } while (0)
	for (const struct call *c = p->queue_head; c; c = c->next)
		CONSIDER(c->deadline);
	if (p->failed_until > 0)
		CONSIDER(p->failed_until);
	if (!w && wants_worker(p) && p->failed_until == 0)
		CONSIDER(p->not_before);
	if (w && (w->state == P_STARTING || w->state == P_STOPPING))
		CONSIDER(w->state_deadline);
	for (size_t i = 0; w && i < w->depth; i++)
		CONSIDER(w->stack[i]->deadline);
	if (w && w->end_kind == 0) {
		CONSIDER(w->read_stall_at);
		CONSIDER(w->write_stall_at);
	}
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
		fail_queue(s, p, late);
		if (p->proc && p->proc->state != P_STOPPING && p->proc->state != P_DEAD) {
			pb_process_end(p->proc, PB_ERROR_UNAVAILABLE, "the supervisor shut down before the call to "
			               "plugin '%s' finished", p->name);
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
		while ((c = dequeue(p)))
			pb_call_free(c);
		if (p->proc)
			pb_process_free(s, p->proc);
		pb_error_free(p->start_error);
		free(p->name);
		free(p);
	}
	free(s->plugins);
	s->plugins = NULL;
	s->nplugins = 0;
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

static int pack_call(pb_supervisor *s, const pb_call_spec *spec, uint64_t id, struct call *c)
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
	env.id = id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_CALL;
	env.call = &call;
	r = pb_envelope_pack(&env, PB_FRAME_MAX_DEFAULT, &c->frame, &c->frame_len);
	free(kw_store);
	free(kw_ptrs);
	if (r == -EMSGSIZE)
		pb_set_message(s, "the call is larger than a frame may be (%u bytes)", PB_FRAME_MAX_DEFAULT);
	return r;
}

PB_API int pb_call_start(pb_supervisor *s, const pb_call_spec *spec, pb_call_done_fn done,
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
	if ((r = pack_call(s, spec, c->id, c)) < 0) {
		free(c);
		return r;
	}
	c->done = done;
	c->userdata = userdata;
	c->limit = spec->timeout > 0 ? spec->timeout : s->timeout;
	c->deadline = c->limit > 0 ? pb_now() + c->limit : 0;
	s->calls_pending++;
	if (call_id)
		*call_id = c->id;

	p = get_plugin(s, spec->plugin, &err);
	c->plugin = p;
	if (!p) {
		pb_call_finish(s, c, NULL, err);
		return 0;
	}
	if (s->shutting_down) {
		pb_call_finish(s, c, NULL, pb_error_newf(PB_ERROR_UNAVAILABLE, p->name,
		               "the supervisor is shutting down and takes no more calls"));
		return 0;
	}
	if (p->proc)
		pb_watch_check(s, p->name);
	if (p->failed_until > 0) {
		pb_call_finish(s, c, NULL, pb_error_new(PB_ERROR_UNAVAILABLE, p->name, "", p->failed_reason, ""));
		return 0;
	}
	if (p->proc && pb_host_call_nesting(p->proc)) {
		if (p->proc->depth == PB_MAX_NESTING) {
			pb_call_finish(s, c, NULL, pb_error_newf(PB_ERROR_BAD_REQUEST, p->name,
			               "calls to plugin '%s' nested deeper than %d", p->name, PB_MAX_NESTING));
			return 0;
		}
		send_call(s, p->proc, c);
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
	pump(s, p);
	return 0;
}

PB_API int pb_supervisor_start(pb_supervisor *s, const char *plugin)
{
	pb_error *err = NULL;

	if (!plugin) {
		char **names;
		size_t n;
		int r = pb_supervisor_plugins(s, &names, &n);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			pb_supervisor_start(s, names[i]);
		pb_strv_free(names, n);
		return 0;
	}
	struct plugin *p = get_plugin(s, plugin, &err);
	if (!p) {
		pb_set_message(s, "%s", err ? err->message : "out of memory");
		pb_error_free(err);
		return -ENOENT;
	}
	p->keep_running = true;
	p->stop_requested = false;
	pump(s, p);
	return 0;
}

/* Where a waited-for plugin stands: its worker is ready (said Hello, not
 * stopping), or it cannot have one (its start failed, it is marked failed,
 * the supervisor is shutting down), or neither yet. */
enum settled { NOT_YET, READY, CANNOT };

static enum settled settled(const pb_supervisor *s, const struct plugin *p)
{
	const struct process *w = p->proc;

	if (w && w->hello && w->state != P_STOPPING && w->state != P_DEAD)
		return READY;
	if (!w && (p->start_error || p->failed_until > 0 || s->shutting_down))
		return CANNOT;
	return NOT_YET;
}

static pb_error *why_cannot(const pb_supervisor *s, const struct plugin *p)
{
	if (p->start_error)
		return pb_error_copy(p->start_error);
	return pb_error_new(PB_ERROR_UNAVAILABLE, p->name, "", s->shutting_down ? "the supervisor is shutting down"
	                    : p->failed_reason, "");
}

void pb_runtime_wait_workers(pb_supervisor *s, char *const *names, size_t n,
                             const struct process **ready, pb_error **errs)
{
	struct plugin **ps = calloc(n ? n : 1, sizeof(*ps));
	size_t i;

	for (i = 0; i < n; i++) {
		ready[i] = NULL;
		errs[i] = NULL;
	}
	if (!ps) {
		for (i = 0; i < n; i++)
			errs[i] = pb_error_new(PB_ERROR_UNAVAILABLE, names[i], "", "out of memory", "");
		return;
	}
	/* Every worker starts before the loop runs, so they start together. */
	for (i = 0; i < n; i++) {
		ps[i] = get_plugin(s, names[i], &errs[i]);
		if (!ps[i])
			continue;
		pb_error_free(ps[i]->start_error);
		ps[i]->start_error = NULL;
		ps[i]->waiters++;
		pump(s, ps[i]);
	}
	/* Judged anew after each round: a worker found ready may die while
	 * another is awaited, and is then awaited again (it restarts). */
	for (;;) {
		bool all = true;
		for (i = 0; i < n && all; i++)
			all = !ps[i] || settled(s, ps[i]) != NOT_YET;
		if (all)
			break;
		if (pb_supervisor_dispatch(s, -1) < 0 && errno != EINTR) {
			int e = errno;
			for (i = 0; i < n; i++)
				if (ps[i] && settled(s, ps[i]) == NOT_YET)
					errs[i] = pb_error_newf(PB_ERROR_UNAVAILABLE, ps[i]->name,
					                        "the supervisor's loop failed: %s", strerror(e));
			break;
		}
	}
	for (i = 0; i < n; i++) {
		if (!ps[i])
			continue;
		ps[i]->waiters--;
		if (errs[i])
			continue;
		if (settled(s, ps[i]) == READY)
			ready[i] = ps[i]->proc;
		else
			errs[i] = why_cannot(s, ps[i]);
	}
	free(ps);
}

const struct process *pb_runtime_wait_worker(pb_supervisor *s, const char *name, pb_error **err)
{
	char *names[] = { (char *)name };
	const struct process *ready;

	pb_runtime_wait_workers(s, names, 1, &ready, err);
	return ready;
}

static struct plugin *known_plugin(pb_supervisor *s, const char *name)
{
	for (size_t i = 0; i < s->nplugins; i++)
		if (!strcmp(s->plugins[i]->name, name))
			return s->plugins[i];
	return NULL;
}

PB_API int pb_supervisor_stop(pb_supervisor *s, const char *plugin)
{
	struct plugin *p = known_plugin(s, plugin);
	if (!p)
		return -ENOENT;
	p->keep_running = false;
	if (p->proc) {
		p->stop_requested = true;
		pump(s, p);
	}
	return 0;
}

PB_API int pb_supervisor_reset(pb_supervisor *s, const char *plugin)
{
	struct plugin *p = known_plugin(s, plugin);
	if (!p)
		return -ENOENT;
	p->failed_until = 0;
	p->ncrashes = 0;
	p->not_before = 0;
	pump(s, p);
	return 0;
}

PB_API const char *pb_supervisor_plugin_state(pb_supervisor *s, const char *plugin)
{
	struct plugin *p = known_plugin(s, plugin);
	if (!p)
		return NULL;
	if (p->failed_until > 0)
		return "failed";
	if (!p->proc)
		return p->not_before > pb_now() && wants_worker(p) ? "backoff" : "stopped";
	switch (p->proc->state) {
	case P_STARTING: return "starting";
	case P_IDLE: return "ready";
	case P_RUNNING:
	case P_HOST_WAIT: return "busy";
	default: return "stopping";
	}
}

PB_API int pb_supervisor_set_idle_timeout(pb_supervisor *s, double seconds)
{
	if (!(seconds >= 0)) {
		pb_set_message(s, "the idle timeout must be 0 or more seconds");
		return -EINVAL;
	}
	s->idle_timeout = seconds;
	for (size_t i = 0; i < s->nplugins; i++)
		pump(s, s->plugins[i]);
	return 0;
}

PB_API void pb_supervisor_shutdown(pb_supervisor *s, double grace)
{
	if (s->shutting_down)
		return;
	s->shutting_down = true;
	/* the monotonic clock is never 0 here, so 0 can keep meaning "passed" */
	s->shutdown_deadline = pb_now() + (grace > 0 ? grace : 0);
	pb_error *gone = pb_error_new(PB_ERROR_UNAVAILABLE, "", "",
	                              "the supervisor shut down before the plugin's worker started", "");
	for (size_t i = 0; i < s->nplugins; i++) {
		struct plugin *p = s->plugins[i];
		p->keep_running = false;
		if (!p->proc)
			fail_queue(s, p, gone);
		pump(s, p);
	}
	pb_error_free(gone);
	pb_loop_timer_hint(s, s->shutdown_deadline);
}

PB_API int pb_supervisor_finished(const pb_supervisor *s)
{
	if (!s->shutting_down || s->calls_pending > 0 || s->graveyard || s->ready_head)
		return 0;
	for (size_t i = 0; i < s->nplugins; i++)
		if (s->plugins[i]->proc)
			return 0;
	return 1;
}
