/* workers.c - one worker's life as the runtime sees it: started for a
 * plugin (its policy loaded, @network connect names resolved, spawned from
 * the plugin's zygote, the fork-server or exec, in that order of
 * preference, with the zygote's fallbacks), its Hello accepted once its
 * @after-start rules are read back, and its exit turned into errors for
 * the calls it held, a crash count and a backoff before the next start.
 *
 * What it is asked to do (calls, queues, timers) is runtime.c's.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>

#include "helpers/cache_build.h"
#include "jail/zygote.h"
#include "runtime/cache.h"
#include "runtime/channel.h"
#include "runtime/output.h"
#include "runtime/death.h"
#include "runtime/error.h"
#include "runtime/filter_check.h"
#include "runtime/inflight.h"
#include "runtime/loop.h"
#include "runtime/netconnect.h"
#include "runtime/outbox.h"
#include "runtime/process.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"
#include "runtime/watch.h"
#include "runtime/stats.h"

#include "runtime/workers.h"

/* ---- starting a worker ------------------------------------------------------------ */

static void start_failed(pb_supervisor *s, struct plugin *p, pb_error *err)
{
	if (p->nworkers > 0) {
		/* Another replica answers the calls; the next try waits a
		 * backoff, so that a plugin at its process limit is not asked
		 * for a worker at every call. */
		pb_note(s, p->name, "another worker could not be started: %s", err->message);
		p->not_before = pb_now() + s->backoff;
		pb_error_free(err);
		return;
	}
	pb_runtime_fail_queue(s, p, err);
	pb_error_free(p->start_error);
	p->start_error = err;
}

/* How often a plugin whose zygote imports looks again: the loop serves
 * everyone else meanwhile, and each look is one poll(2). */
#define ZYGOTE_LOOK_S 0.005

static void zygote_wait(pb_supervisor *s, struct plugin *p)
{
	p->not_before = pb_now() + ZYGOTE_LOOK_S;
	pb_runtime_timer(s, p, p->not_before);
}

/* The plugin's replicas, from the policy this worker starts with. Under
 * --spawn zygote (or shared-zygote) with @fresh-per-call and a scratch directory, every child
 * of the zygote shares its scratch tmpfs and each empties it before its
 * call: two at once would empty each other's, so one runs at a time. */
static void take_replicas(pb_supervisor *s, struct plugin *p, const struct pb_policy *policy)
{
	const struct pb_sandbox *sb = &policy->sandbox;
	unsigned n = sb->replicas ? sb->replicas : 1;

	p->fresh_shared_scratch = sb->fresh_per_call && sb->scratch && pb_supervisor_zygote_mode(s);
	if (n > 1 && p->fresh_shared_scratch) {
		if (!p->replicas_noted)
			pb_note(s, p->name, "@replicas %u: one worker at a time, since under a zygote its "
			                    "@fresh-per-call workers share one scratch directory",
			        n);
		p->replicas_noted = true;
		n = 1;
	} else if (n > s->max_replicas) {
		if (!p->replicas_noted)
			pb_note(s, p->name, "@replicas %u: this supervisor allows at most %u (--max-replicas)", n,
			        s->max_replicas);
		p->replicas_noted = true;
	}
	p->replicas = n;
}

void pb_runtime_start(pb_supervisor *s, struct plugin *p)
{
	char dir[4096], why[512];
	struct process *w;
	int r;

	if (pb_supervisor_zygote_importing(s, p)) {
		zygote_wait(s, p);
		return;
	}
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
	take_replicas(s, p, w->policy);
	/* @network connect: can the kernel do it; the names (netconnect.c) */
	if (!w->learning && pb_netconnect_prepare(s, w, why, sizeof(why)) < 0) {
		start_failed(s, p, pb_error_newf(PB_ERROR_UNAVAILABLE, p->name, "plugin '%s' cannot start: %s", p->name, why));
		pb_channel_free(s, w);
		return;
	}
	char *cache = pb_cache_for_worker(s, p->name, dir);
	struct pb_zygote *zygote;
	if (pb_supervisor_zygote(s, p, dir, cache, w->policy, &zygote) == -EINPROGRESS) {
		/* Its zygote was started now and imports the plugin: this worker
		 * is forked once it is ready (looked at from the timer). */
		free(cache);
		pb_watch_started(w);
		pb_channel_free(s, w);
		zygote_wait(s, p);
		return;
	}
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
	pb_runtime_add_worker(p, w);
	w->state = P_STARTING;
	w->state_deadline = s->timeout > 0 ? pb_now() + s->timeout : 0;
	pb_runtime_timer(s, p, w->state_deadline);
	pb_stats_spawned(s, p, w);
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
	pb_runtime_remove_worker(p, w);
	pb_loop_bury(s, w);
	if (s->shutting_down && p->nworkers == 0) {
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
		/* It never said Hello: the calls waiting for it would get the same
		 * (unless another replica answers them). */
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
