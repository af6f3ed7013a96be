/* runtime.c - calls and the lifecycle of workers.
 *
 * Each plugin has a queue of calls and at most one worker process. A call
 * waits in the queue until the worker is idle, or is written ahead to it
 * while it runs another (pipelined, inflight.c); calls made by a host
 * function to the plugin that is waiting for it are nested and go straight
 * in. Workers start on a plugin's first call (or when asked),
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

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>

#include "helpers/cache_build.h"
#include "jail/uids.h"
#include "jail/zygote.h"
#include "runtime/cache.h"
#include "runtime/channel.h"
#include "runtime/output.h"
#include "runtime/death.h"
#include "runtime/error.h"
#include "runtime/filter_check.h"
#include "runtime/hostcall.h"
#include "runtime/cancel.h"
#include "runtime/inflight.h"
#include "runtime/loop.h"
#include "runtime/netconnect.h"
#include "runtime/outbox.h"
#include "runtime/process.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"
#include "runtime/watch.h"
#include "runtime/stats.h"
#include "toolkit/suggest.h"
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

/* ---- starting workers --------------------------------------------------------- */

/* Plugins by name: an open-addressed table at most half full, so a call
 * finds its plugin among a thousand without comparing every name. */
static size_t name_slot(const char *name, size_t cap)
{
	uint32_t h = 2166136261u;

	for (const char *c = name; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	return h & (cap - 1);
}

struct plugin *pb_runtime_known(pb_supervisor *s, const char *name)
{
	size_t cap = s->plugin_index_cap;

	for (size_t i = cap ? name_slot(name, cap) : 0; cap && s->plugin_index[i]; i = (i + 1) & (cap - 1))
		if (!strcmp(s->plugin_index[i]->name, name))
			return s->plugin_index[i];
	return NULL;
}

static void index_put(struct plugin **index, size_t cap, struct plugin *p)
{
	size_t j = name_slot(p->name, cap);

	while (index[j])
		j = (j + 1) & (cap - 1);
	index[j] = p;
}

/* Room in the index for one more plugin. */
static int index_reserve(pb_supervisor *s)
{
	size_t cap = s->plugin_index_cap ? s->plugin_index_cap : 16;
	struct plugin **index;

	while ((s->nplugins + 1) * 2 > cap)
		cap *= 2;
	if (cap == s->plugin_index_cap)
		return 0;
	index = calloc(cap, sizeof(*index));
	if (!index)
		return -ENOMEM;
	for (size_t i = 0; i < s->nplugins; i++)
		index_put(index, cap, s->plugins[i]);
	free(s->plugin_index);
	s->plugin_index = index;
	s->plugin_index_cap = cap;
	return 0;
}

static bool uid_is_ours(uid_t uid, void *arg)
{
	const pb_supervisor *s = arg;

	for (size_t i = 0; i < s->nplugins; i++)
		if (s->plugins[i]->uid == uid)
			return true;
	return false;
}

/* The identity a plugin's workers run as when the supervisor is root: one
 * uid (and the same gid) per plugin, from a hash of its directory so it is
 * stable across restarts, claimed so that no other plugin of this or
 * another supervisor runs as it (jail/uids.c). */
static int plugin_uid(pb_supervisor *s, const char *name, uid_t *uid, char *why, size_t why_len)
{
	char key[4096];

	*uid = 0;
	if (geteuid() != 0)
		return 0; /* the jail keeps our own uid */
	snprintf(key, sizeof(key), "%s/%s", s->plugins_dir, name);
	return pb_uid_claim(&s->uid_lock_fd, key, uid_is_ours, s, uid, why, why_len);
}

/* " (did you mean 'NAME'?)" for the directory of PLUGINS nearest to a
 * misspelt plugin name, or "". Entries that are not plugin names are never
 * candidates: a suggestion is printed as it is. */
static void suggest_plugin(const pb_supervisor *s, const char *name, char *out, size_t len)
{
	DIR *d = opendir(s->plugins_dir);
	struct dirent *e;
	char best[PB_PLUGIN_NAME_MAX + 1] = "";
	size_t best_distance = (size_t)-1;

	*out = '\0';
	if (!d)
		return;
	while ((e = readdir(d))) {
		const char *candidate = e->d_name;
		struct stat st;
		size_t distance;
		if (!pb_valid_plugin_name(candidate) || !pb_closest_name(name, &candidate, 1) ||
		    fstatat(dirfd(d), candidate, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		distance = pb_edit_distance(name, candidate);
		if (distance < best_distance || (distance == best_distance && strcmp(candidate, best) < 0)) {
			best_distance = distance;
			snprintf(best, sizeof(best), "%s", candidate);
		}
	}
	closedir(d);
	if (*best)
		snprintf(out, len, " (did you mean '%s'?)", best);
}

/* The plugin called `name`, known from now on; NULL with *err when there
 * is no such plugin. */
struct plugin *pb_runtime_plugin(pb_supervisor *s, const char *name, pb_error **err)
{
	char dir[4096];
	struct stat st;
	struct plugin *known = pb_runtime_known(s, name);

	if (known)
		return known;
	if (!pb_valid_plugin_name(name)) {
		*err = pb_error_newf(PB_ERROR_NOT_FOUND, name, "'%s' is not a plugin name ([A-Za-z0-9_-]+)", name);
		return NULL;
	}
	if (snprintf(dir, sizeof(dir), "%s/%s", s->plugins_dir, name) >= (int)sizeof(dir) ||
	    stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		char hint[PB_PLUGIN_NAME_MAX + 32];
		suggest_plugin(s, name, hint, sizeof(hint));
		*err = pb_error_newf(PB_ERROR_NOT_FOUND, name, "no plugin '%s' in %s%s", name, s->plugins_dir, hint);
		return NULL;
	}
	struct plugin **grown = realloc(s->plugins, (s->nplugins + 1) * sizeof(*grown));
	struct plugin *p = calloc(1, sizeof(*p));
	if (grown)
		s->plugins = grown;
	if (!grown || !p || !(p->name = strdup(name)) || index_reserve(s) < 0) {
		if (p)
			free(p->name);
		free(p);
		*err = pb_error_new(PB_ERROR_UNAVAILABLE, name, "", "out of memory", "");
		return NULL;
	}
	char why[256];
	if (plugin_uid(s, name, &p->uid, why, sizeof(why)) < 0) {
		*err = pb_error_newf(PB_ERROR_UNAVAILABLE, name, "plugin '%s': %s", name, why);
		free(p->name);
		free(p);
		return NULL;
	}
	s->plugins[s->nplugins++] = p;
	index_put(s->plugin_index, s->plugin_index_cap, p);
	return p;
}

static void start_failed(pb_supervisor *s, struct plugin *p, pb_error *err)
{
	pb_runtime_fail_queue(s, p, err);
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
	w->calls_keep_fd = -1;
	pb_spawned_init(&w->proc);
	pb_frame_in_init(&w->in, PB_FRAME_MAX_DEFAULT, PB_READ_BUFFER);
	r = pb_watch_pin(s, w, why, sizeof(why));
	if (r == -ENOENT || r == -ENOTDIR) {
		/* removed since it became known */
		start_failed(s, p, pb_error_newf(PB_ERROR_NOT_FOUND, p->name, "no plugin '%s' in %s", p->name, s->plugins_dir));
		pb_channel_free(s, w);
		return;
	} else if (r < 0) {
		start_failed(s, p, pb_error_newf(PB_ERROR_UNAVAILABLE, p->name, "plugin '%s' could not be started: %s", p->name, why));
		pb_channel_free(s, w);
		return;
	}
	if (pb_load_plugin_policy(s, p->name, &w->policy, why, sizeof(why)) < 0) {
		start_failed(s, p, pb_error_newf(PB_ERROR_CONFIG, p->name, "plugin '%s': policy error: %s", p->name, why));
		pb_channel_free(s, w);
		return;
	}
	w->learning = s->mode == PB_COMPILE_LEARN;
	/* @network connect: can the kernel do it; the names (netconnect.c) */
	if (!w->learning && pb_netconnect_prepare(s, w, why, sizeof(why)) < 0) {
		start_failed(s, p, pb_error_newf(PB_ERROR_UNAVAILABLE, p->name, "plugin '%s' cannot start: %s", p->name, why));
		pb_channel_free(s, w);
		return;
	}
	char *cache = pb_cache_for_worker(s, p->name, dir);
	struct pb_zygote *zygote = pb_supervisor_zygote(s, p, dir, cache, w->policy);
	r = pb_spawn_worker(zygote ? NULL : pb_supervisor_forkserver(s, p->name), zygote, s->worker_path, p->name,
	                    dir, cache, w->policy, s->mode, p->uid, (gid_t)p->uid, &w->proc,
	                    &w->expect_listener, why, sizeof(why));
	if (r < 0 && zygote) {
		/* It could not fork (its process limit): this worker is exec'd, as
		 * are the next ones while it cannot, said once. Any other failure
		 * (no answer in time, a broken reply, a dead zygote) may be the
		 * plugin's import-time code disturbing its zygote, and each try
		 * waits in the loop: that zygote is ended and the plugin's
		 * workers are exec'd until the plugin changes. */
		char line[700];
		if (r != -EAGAIN) {
			snprintf(line, sizeof(line), "plugin '%s': %s; its zygote is ended, starting workers with exec from now on",
			         p->name, why);
			s->output(s->output_data, p->name, PB_STREAM_SUPERVISOR, line);
			pb_zygote_stop(p->zygote);
			p->zygote = NULL;
			p->zygote_refused = true;
		} else if (!p->zygote_full) {
			snprintf(line, sizeof(line), "plugin '%s': %s; starting workers with exec while it cannot fork", p->name, why);
			s->output(s->output_data, p->name, PB_STREAM_SUPERVISOR, line);
		}
		p->zygote_full = r == -EAGAIN;
		r = pb_spawn_worker(NULL, NULL, s->worker_path, p->name, dir, cache, w->policy, s->mode, p->uid,
		                    (gid_t)p->uid, &w->proc, &w->expect_listener, why, sizeof(why));
	} else if (r == 0 && zygote) {
		p->zygote_full = false;
	}
	free(cache);
	pb_watch_started(w);
	if (r < 0) {
		start_failed(s, p, pb_error_newf(PB_ERROR_UNAVAILABLE, p->name, "plugin '%s' could not be started: %s", p->name, why));
		pb_channel_free(s, w);
		return;
	}
	const struct {
		enum source_kind kind;
		int fd;
	} watch[] = {
		{ SRC_PIDFD, w->proc.pidfd },
		{ SRC_REPLIES, w->proc.replies_fd },
		{ SRC_STDOUT, w->proc.stdout_fd },
		{ SRC_STDERR, w->proc.stderr_fd },
		{ SRC_REPORT, w->proc.report_fd },
	};
	for (size_t i = 0; i < sizeof(watch) / sizeof(watch[0]); i++) {
		if (pb_loop_watch(s, w, watch[i].kind, watch[i].fd) < 0) {
			start_failed(s, p, pb_error_newf(PB_ERROR_UNAVAILABLE, p->name, "plugin '%s' could not be "
			                                                                "watched: %s",
			                                 p->name, strerror(errno)));
			pb_channel_free(s, w);
			return;
		}
	}
	pb_outbox_keep_reader(w);
	p->proc = w;
	w->state = P_STARTING;
	w->state_deadline = s->timeout > 0 ? pb_now() + s->timeout : 0;
	pb_runtime_timer(s, p, w->state_deadline);
	pb_stats_spawned(s, p, w);
}

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
				start_process(s, p);
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

/* ---- what the channel reports --------------------------------------------------- */

/* May the worker poll(2) its channel for the next call (Envelope.poll_us)?
 * Only if its policy allows poll outright, as loaded after start-up (learn
 * mode would log every one). glibc's poll() is ppoll where poll is gone. */
static bool policy_allows_poll(const pb_supervisor *s, const struct process *w)
{
#ifdef __NR_poll
	int nr = __NR_poll;
#else
	int nr = __NR_ppoll;
#endif
	uint64_t args[6] = { 0, 1, 0, 0, 0, 0 };
	struct pb_action action;

	if (s->mode != PB_COMPILE_ENFORCE)
		return false;
	pb_policy_match(w->policy, nr, args, w->proc.from_zygote ? w->proc.self_pid : w->proc.pid, true, &action);
	return action.kind == PB_ACT_ALLOW;
}

/* A Hello refused: the worker is being killed, and until its death is
 * seen nobody may take it for ready or read what it claimed (lifecycle.c's
 * settled(), pb_hook). */
static void drop_hello(struct process *w)
{
	pb_envelope_free(w->hello);
	w->hello = NULL;
}

/* The worker's @after-start rules, loaded after the plugin's import-time
 * code ran, checked from outside (filter_check.c). False when the worker
 * was ended for it; where they cannot be checked, its layers say so. */
static bool after_start_in_force(pb_supervisor *s, struct process *w)
{
	struct pb_bpf_blob blob = { 0 };
	char why[400] = "";
	bool own_pidns = true, after = false;
	int r;

	for (size_t i = 0; i < w->proc.nlayers; i++)
		if (!strncmp(w->proc.layers[i], "namespaces: none", 16))
			own_pidns = false;
	/* The same programs spawn.c compiled for it. */
	if (w->proc.from_zygote)
		r = pb_policy_compile(w->policy, w->proc.self_pid, PB_COMPILE_ZYGOTE_CHILD, &blob, why, sizeof(why));
	else
		r = pb_policy_compile(w->policy, own_pidns ? 1 : w->proc.pid, s->mode, &blob, why, sizeof(why));
	for (size_t off = 0; r == 0 && off + 4 <= blob.len;) {
		uint32_t header = (uint32_t)blob.data[off] | (uint32_t)blob.data[off + 1] << 8 |
		                  (uint32_t)blob.data[off + 2] << 16 | (uint32_t)blob.data[off + 3] << 24;
		after |= (header & PB_PROG_AFTER_START) != 0;
		off += 4 + (header & PB_PROG_COUNT_MASK) * sizeof(struct sock_filter);
	}
	if (r == 0 && after)
		r = pb_filter_check(w->proc.pid, blob.data, blob.len, why, sizeof(why));
	pb_bpf_blob_free(&blob);
	if (r == -EBADMSG || r == -ETIMEDOUT) {
		pb_channel_end(w, PB_ERROR_UNAVAILABLE, "the worker's @after-start rules are not in force: %s", why);
		drop_hello(w);
		return false;
	}
	if (after && w->proc.nlayers < sizeof(w->proc.layers) / sizeof(w->proc.layers[0]) &&
	    asprintf(&w->proc.layers[w->proc.nlayers],
	             r == 0 ? "seccomp: @after-start rules read back from every thread%s"
	                    : "seccomp: @after-start rules not verified (%s): hostile import-time code can undo them",
	             why) >= 0)
		w->proc.nlayers++;
	return true;
}

void pb_runtime_hello(pb_supervisor *s, struct process *w)
{
	size_t n_eps = w->hello->hello->n_entry_points;

	/* The glue refuses more itself; only a worker that writes its own
	 * Hello gets here, and what pb_hook does with them stays bounded. */
	if (n_eps > PB_ENTRY_POINTS_MAX) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' sent a hello with %zu entry points, "
		                                     "more than %d",
		               w->name, n_eps, PB_ENTRY_POINTS_MAX);
		drop_hello(w);
		return;
	}
	if (!after_start_in_force(s, w))
		return;
	w->poll_ok = policy_allows_poll(s, w);
	w->state = P_IDLE;
	w->idle_since = pb_now();
	pb_error_free(w->plugin->start_error);
	w->plugin->start_error = NULL;
	pb_runtime_pump(s, w->plugin);
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
	pb_error *err = pb_death_error(w);
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
	pb_stats_exited(s, p, w, crashed, err);
	/* The calls written ahead never started: the next worker runs them. */
	pb_inflight_requeue(s, w);
	while (w->depth > 0)
		pb_call_finish(s, w->stack[--w->depth], NULL, pb_error_copy(err));
	p->proc = NULL;
	pb_loop_bury(s, w);
	if (s->shutting_down) {
		pb_error *gone = pb_error_newf(PB_ERROR_UNAVAILABLE, p->name, "the supervisor shut down before "
		                                                              "the call to plugin '%s' could run",
		                               p->name);
		pb_runtime_fail_queue(s, p, gone);
		pb_error_free(gone);
	}
	if (!crashed) {
		pb_error_free(err);
		pb_runtime_pump(s, p);
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
		         "fail until %g s have passed or it is reset",
		         p->name, n, s->crash_window,
		         err ? err->message : "?", s->crash_window);
		pb_note(s, p->name, "%s", p->failed_reason);
		pb_error *failed = pb_error_new(PB_ERROR_UNAVAILABLE, p->name, "", p->failed_reason, "");
		pb_runtime_fail_queue(s, p, failed);
		pb_error_free(failed);
		pb_runtime_timer(s, p, p->failed_until);
	} else {
		p->not_before = now + backoff_delay(s, n);
		/* Its calls have the error; a note says what happens next. */
		if (pb_runtime_wants_worker(p))
			pb_note(s, p->name, "worker ended: %s; restarting in %.1f s", err ? err->message : "?",
			        p->not_before - now);
	}
	pb_error_free(err);
	pb_runtime_pump(s, p);
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
