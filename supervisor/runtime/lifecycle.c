/* lifecycle.c - the host's say over workers: start them ahead of calls,
 * wait until they have said Hello (pb_describe and friends), stop, reset a
 * failed plugin, ask how a plugin stands, stop idle workers, shut down.
 *
 * Calls and what moves workers along (starting, crashes, backoff, timers)
 * are runtime.c's; these only set what the plugin wants and let
 * pb_runtime_pump act on it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/lifecycle.h"
#include "runtime/loop.h"
#include "runtime/process.h"
#include "runtime/plugins.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"

static void warmed(void *userdata, uint64_t call_id, pb_value *result, pb_error *err)
{
	(void)userdata;
	(void)call_id;
	pb_value_destroy(result);
	pb_error_free(err);
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
	struct plugin *p = pb_runtime_plugin(s, plugin, &err);
	if (!p) {
		pb_set_message(s, "%s", err ? err->message : "out of memory");
		pb_error_free(err);
		return -ENOENT;
	}
	p->keep_running = true;
	p->stop_requested = false;
	pb_runtime_pump(s, p);
	/* The import as the worker's first call; its answer matters to nobody
	 * (an import error raises again at the call that needs the module). */
	const pb_call_spec warm = { .plugin = plugin, .function = PB_WARM_FUNCTION };
	uint64_t id;
	pb_call_start(s, &warm, warmed, NULL, &id);
	return 0;
}

PB_API int pb_supervisor_warm(pb_supervisor *s, const char *plugin, pb_error **err)
{
	pb_value *result = NULL;
	int r = pb_call(s, plugin, PB_WARM_FUNCTION, NULL, 0, &result, err);

	pb_value_destroy(result);
	return r;
}

/* Where a waited-for plugin stands: its worker is ready (said Hello, not
 * stopping), or it cannot have one (its start failed, it is marked failed,
 * the supervisor is shutting down), or neither yet. */
enum settled { NOT_YET,
	       READY,
	       CANNOT };

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
	return pb_error_new(PB_ERROR_UNAVAILABLE, p->name, "", s->shutting_down ? "the supervisor is shutting down" : p->failed_reason, "");
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
		ps[i] = pb_runtime_plugin(s, names[i], &errs[i]);
		if (!ps[i])
			continue;
		pb_error_free(ps[i]->start_error);
		ps[i]->start_error = NULL;
		ps[i]->waiters++;
		pb_runtime_pump(s, ps[i]);
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

PB_API int pb_supervisor_stop(pb_supervisor *s, const char *plugin)
{
	struct plugin *p = pb_runtime_known(s, plugin);
	if (!p)
		return -ENOENT;
	p->keep_running = false;
	if (p->proc) {
		p->stop_requested = true;
		pb_runtime_pump(s, p);
	}
	return 0;
}

PB_API int pb_supervisor_reset(pb_supervisor *s, const char *plugin)
{
	struct plugin *p = pb_runtime_known(s, plugin);
	if (!p)
		return -ENOENT;
	p->failed_until = 0;
	p->ncrashes = 0;
	p->not_before = 0;
	pb_runtime_pump(s, p);
	return 0;
}

PB_API const char *pb_supervisor_plugin_state(pb_supervisor *s, const char *plugin)
{
	struct plugin *p = pb_runtime_known(s, plugin);
	if (!p)
		return NULL;
	if (p->failed_until > 0)
		return "failed";
	if (!p->proc)
		return p->not_before > pb_now() && pb_runtime_wants_worker(p) ? "backoff" : "stopped";
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
		pb_runtime_pump(s, s->plugins[i]);
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
			pb_runtime_fail_queue(s, p, gone);
		pb_runtime_pump(s, p);
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
