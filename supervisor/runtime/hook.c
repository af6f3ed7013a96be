/* hook.c - pb_hook_ex: call one entry-point group across the plugins, the
 * way frameworks run `for ep in entry_points(group=G): ep.load()(...)`.
 *
 * Who provides the group comes from the discovery scan (discover.c: one
 * sandboxed helper reads every plugin's metadata, cached until a plugin
 * changes), so only the providers' workers start. The answers come in the
 * caller's order: plugins by name, by priority or as listed, then entry
 * points by name. Without PB_HOOK_FIRST_RESULT every call starts at once;
 * with it the calls are made one after another and none is made after the
 * first non-null answer (PB_HOOK_CONCURRENT: all at once, as before).
 *
 * Concurrent first-result calls after the winner end later, inside some
 * dispatch the host makes, so their bookkeeping (struct hook_run) outlives
 * pb_hook and is freed by the last of them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/discover.h"
#include "runtime/error.h"
#include "runtime/process.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"
#include "toolkit/sanitize.h"
#include "toolkit/suggest.h"

struct hook_answer {
	char *plugin;
	int32_t priority;
	size_t rank;      /* the plugin's place in the caller's list (PB_HOOK_ORDER_GIVEN) */
	char *name;       /* the entry point's; "" when the plugin could not start */
	uint64_t call_id; /* its call, while pending */
	pb_value *value;
	pb_error *error;
	bool pending; /* its call has not ended yet */
};

struct hook_run {
	struct hook_answer *answers;
	size_t n;
	size_t pending; /* calls not yet ended */
	bool abandoned; /* the caller has its answers: those still to come are dropped */
	pb_supervisor *s;
	char *group;
	const pb_call_spec *spec; /* the caller's, borrowed until done runs */
	unsigned flags;
	bool in_turn; /* first result, one call after another */
	pb_hook_done_fn done;
	void *userdata;
	uint64_t id;           /* pb_hook_start_id's: the origin of its calls */
	bool cancelled;        /* pb_cancel(id): no more calls */
	bool listed;           /* on s->hook_runs until its caller has the answers */
	struct hook_run *next; /* on s->hook_runs */
};

struct pb_hook_results {
	struct hook_answer *answers;
	size_t n;
};

struct hook_call {
	struct hook_run *run;
	size_t index;
};

static void answers_free(struct hook_answer *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++) {
		free(a[i].plugin);
		free(a[i].name);
		pb_value_destroy(a[i].value);
		pb_error_free(a[i].error);
	}
	free(a);
}

static void call_done(void *userdata, uint64_t id, pb_value *result, pb_error *err);

static int add_answer(struct hook_run *run, size_t *cap, const char *plugin, const char *name, pb_error *error)
{
	if (run->n == *cap) {
		size_t grown_cap = *cap ? *cap * 2 : 16;
		struct hook_answer *grown = realloc(run->answers, grown_cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		run->answers = grown;
		*cap = grown_cap;
	}
	struct hook_answer *a = &run->answers[run->n];
	memset(a, 0, sizeof(*a));
	a->plugin = strdup(plugin);
	a->name = strdup(name);
	a->error = error;
	run->n++;
	return a->plugin && a->name ? 0 : -ENOMEM;
}

/* One of a plugin's entry points in the group, and where it was declared. */
struct ep_ref {
	const char *name;
	size_t order;
};

static int by_name_then_order(const void *a, const void *b)
{
	const struct ep_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : x->order < y->order ? -1
	                                   : x->order > y->order;
}

/* The group's entry points of one plugin, from its scanned Hello, sorted.
 * Sorting first makes duplicates neighbours: O(n log n) for the at most
 * PB_ENTRY_POINTS_MAX a Hello may list (helpers/scan.c), never n squared. */
static int add_entry_points(struct hook_run *run, size_t *cap, const struct pb_discovered *d, const char *group)
{
	const Plugbox__Hello *h = d->hello;
	struct ep_ref *refs = malloc((h->n_entry_points ? h->n_entry_points : 1) * sizeof(*refs));
	size_t n = 0;
	int r = 0;

	if (!refs)
		return -ENOMEM;
	for (size_t i = 0; i < h->n_entry_points; i++)
		if (!strcmp(h->entry_points[i]->group, group))
			refs[n++] = (struct ep_ref){ h->entry_points[i]->name, i };
	qsort(refs, n, sizeof(*refs), by_name_then_order);
	/* Two entry points of one name: the first, as importlib.metadata's
	 * EntryPoints[name] picks it. */
	for (size_t i = 0; i < n && r == 0; i++)
		if (i == 0 || strcmp(refs[i].name, refs[i - 1].name) != 0)
			r = add_answer(run, cap, d->name, refs[i].name, NULL);
	free(refs);
	return r;
}

static bool declares(const struct pb_discovered *d, const char *group)
{
	for (size_t i = 0; d->hello && i < d->hello->n_entry_points; i++)
		if (!strcmp(d->hello->entry_points[i]->group, group))
			return true;
	return false;
}

/* "no plugin declares entry-point group 'G'", with the closest group some
 * plugin does declare (sanitised: it is a plugin's text). */
static void unknown_group(pb_supervisor *s, const char *group, const struct pb_discovered *items, size_t n)
{
	const char **groups = NULL;
	size_t ng = 0, cap = 0;
	char *shown = NULL;

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; items[i].hello && j < items[i].hello->n_entry_points; j++) {
			if (ng == cap) {
				size_t grown_cap = cap ? cap * 2 : 32;
				const char **grown = realloc(groups, grown_cap * sizeof(*grown));
				if (!grown)
					goto out;
				groups = grown;
				cap = grown_cap;
			}
			groups[ng++] = items[i].hello->entry_points[j]->group;
		}
	const char *near = pb_closest_name(group, groups, ng);
	shown = near ? pb_sanitize_dup(near, 0) : NULL;
out:
	pb_set_message(s, "no plugin declares entry-point group '%s'%s%s%s", group, shown ? " (did you mean '" : "",
	               shown ? shown : "", shown ? "'?)" : "");
	free(shown);
	free(groups);
}

/* Where plugin `name` stands in the caller's list; n when absent. */
static size_t rank_of(const pb_hook_options *o, const char *name)
{
	for (size_t i = 0; o->plugins && i < o->nplugins; i++)
		if (!strcmp(o->plugins[i], name))
			return i;
	return o->nplugins;
}

static int compare_answers(const struct hook_answer *x, const struct hook_answer *y, pb_hook_order order)
{
	if (order == PB_HOOK_ORDER_GIVEN && x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (order == PB_HOOK_ORDER_PRIORITY && x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	int c = strcmp(x->plugin, y->plugin);
	return c ? c : strcmp(x->name, y->name);
}

/* Stable and small: a plugin's answers stay together, in name order. */
static void sort_answers(struct hook_run *run, pb_hook_order order)
{
	for (size_t i = 1; i < run->n; i++) {
		struct hook_answer a = run->answers[i];
		size_t j = i;
		for (; j > 0 && compare_answers(&run->answers[j - 1], &a, order) > 0; j--)
			run->answers[j] = run->answers[j - 1];
		run->answers[j] = a;
	}
}

/* Who provides the group, from the discovery scan: its entry points, and
 * for a plugin whose metadata is invalid an answer with its error. */
static int find_providers(pb_supervisor *s, const char *group, const pb_hook_options *o, struct hook_run *run)
{
	const struct pb_discovered *items;
	size_t n, cap = 0;
	bool known = false;
	int r = pb_discover_refresh(s, &items, &n);

	if (r < 0)
		return r;
	for (size_t i = 0; o->plugins && i < o->nplugins; i++) {
		bool found = false;
		for (size_t j = 0; j < n && !found; j++)
			found = !strcmp(items[j].name, o->plugins[i]);
		if (!found) {
			pb_set_message(s, "no plugin '%s' in %s", o->plugins[i], s->plugins_dir);
			return -ENOENT;
		}
	}
	/* A plugin whose metadata could not be read might declare it: its
	 * error is the answer then, not "unknown". */
	for (size_t i = 0; i < n; i++)
		known = known || declares(&items[i], group) || items[i].error;
	if (!known && !(o->flags & PB_HOOK_ALLOW_UNKNOWN)) {
		unknown_group(s, group, items, n);
		return -ENOENT;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct pb_discovered *d = &items[i];
		size_t first = run->n;
		if (o->plugins && rank_of(o, d->name) == o->nplugins)
			continue;
		if (d->error) {
			pb_error *e = pb_error_new(PB_ERROR_CONFIG, d->name, "", d->error, "");
			r = e ? add_answer(run, &cap, d->name, "", e) : -ENOMEM;
		} else {
			r = add_entry_points(run, &cap, d, group);
		}
		for (size_t k = first; k < run->n; k++) {
			run->answers[k].priority = d->hello ? d->hello->priority : 0;
			run->answers[k].rank = o->plugins ? rank_of(o, d->name) : 0;
		}
	}
	if (r == 0)
		sort_answers(run, o->order);
	return r;
}

/* Start the call of answer i (a no-op for an answer that is an error). */
static int start_call(pb_supervisor *s, const char *group, const pb_call_spec *spec, unsigned flags,
                      struct hook_run *run, size_t i)
{
	struct hook_answer *a = &run->answers[i];
	size_t len = strlen(group) + 1 + strlen(a->name) + 1;
	char *function;
	struct hook_call *hc;
	pb_call_spec one = *spec;
	int r;

	if (a->error)
		return 0;
	function = malloc(len);
	hc = malloc(sizeof(*hc));
	if (!function || !hc) {
		free(function);
		free(hc);
		return -ENOMEM;
	}
	snprintf(function, len, "%s:%s", group, a->name);
	one.plugin = a->plugin;
	one.function = function;
	hc->run = run;
	hc->index = i;
	a->pending = true;
	run->pending++;
	s->call_origin = run->id;
	r = pb_runtime_call_start(s, &one,
	                          ((flags & PB_HOOK_PRUNE_KWARGS) ? PB_RUNTIME_CALL_PRUNE : 0) |
	                                  ((flags & PB_HOOK_ALONE) ? PB_RUNTIME_CALL_ALONE : 0),
	                          call_done, hc, &a->call_id);
	s->call_origin = 0;
	free(function);
	if (r < 0) {
		/* The callback never runs for a call that did not start. */
		a->pending = false;
		run->pending--;
		free(hc);
		a->error = pb_error_newf(PB_ERROR_BAD_REQUEST, a->plugin, "entry point %s:%s could not be called: %s",
		                         group, a->name, pb_supervisor_strerror(s));
		if (!a->error)
			return -ENOMEM;
	}
	return 0;
}

static bool has_value(const struct hook_answer *a)
{
	return a->value && pb_value_get_kind(a->value) != PB_VALUE_NULL;
}

/* How many answers the caller gets, or 0 while that is not known yet. */
static size_t decided(const struct hook_run *run, unsigned flags)
{
	for (size_t i = 0; i < run->n; i++) {
		const struct hook_answer *a = &run->answers[i];
		if (a->pending)
			return 0;
		if ((flags & PB_HOOK_FIRST_RESULT) && has_value(a))
			return i + 1;
	}
	return run->n;
}

/* Hand the first `count` answers to the caller; the rest stay with the run
 * until their calls end. */
static pb_hook_results *take_answers(struct hook_run *run, size_t count)
{
	pb_hook_results *res = calloc(1, sizeof(*res));

	if (!res || !(res->answers = calloc(count ? count : 1, sizeof(*res->answers)))) {
		free(res);
		return NULL;
	}
	if (count > 0) {
		memcpy(res->answers, run->answers, count * sizeof(*res->answers));
		memset(run->answers, 0, count * sizeof(*run->answers));
	}
	res->n = count;
	return res;
}

/* Give up on the run: freed now if nothing is pending, else by the last
 * call to end. */
static void abandon(struct hook_run *run)
{
	if (run->pending == 0) {
		answers_free(run->answers, run->n);
		free(run->group);
		free(run);
	} else {
		run->abandoned = true;
	}
}

/* The caller's answer: the first `count`, through done; the run lives on
 * only for calls still pending. */
static void unlist(struct hook_run *run)
{
	if (!run->listed)
		return;
	for (struct hook_run **link = &run->s->hook_runs; *link; link = &(*link)->next)
		if (*link == run) {
			*link = run->next;
			break;
		}
	run->listed = false;
}

static void finish(struct hook_run *run, size_t count)
{
	pb_hook_results *res;

	unlist(run);
	res = take_answers(run, count);

	run->done(run->userdata, res, res ? 0 : -ENOMEM);
	abandon(run);
}

/* In turn: start the calls from i on until one is pending; none left (or
 * memory gone) finishes the run. */
static void advance(struct hook_run *run, size_t i)
{
	if (run->cancelled) {
		finish(run, i);
		return;
	}
	for (; i < run->n; i++) {
		if (start_call(run->s, run->group, run->spec, run->flags, run, i) < 0) {
			finish(run, i);
			return;
		}
		if (run->answers[i].pending)
			return;
	}
	finish(run, run->n);
}

static void call_done(void *userdata, uint64_t id, pb_value *result, pb_error *err)
{
	struct hook_call *hc = userdata;
	struct hook_run *run = hc->run;
	size_t i = hc->index;
	struct hook_answer *a = &run->answers[i];
	size_t count;

	(void)id;
	free(hc);
	a->value = result;
	a->error = err;
	a->pending = false;
	run->pending--;
	if (run->abandoned) {
		if (run->pending == 0)
			abandon(run);
		return;
	}
	if (run->in_turn) {
		if (has_value(a))
			finish(run, i + 1);
		else
			advance(run, i + 1);
	} else if ((count = decided(run, run->flags)) > 0) {
		finish(run, count);
	}
}

static bool valid_group(const char *group)
{
	/* "group:name" is how a call names an entry point: the group cannot
	 * hold the separator. */
	if (!*group || strlen(group) > 256 || strchr(group, ':'))
		return false;
	for (const char *c = group; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

int pb_hook_cancel(pb_supervisor *s, uint64_t id)
{
	struct hook_run *run = s->hook_runs;

	while (run && run->id != id)
		run = run->next;
	if (!run)
		return -ENOENT;
	run->cancelled = true;
	/* Each cancelled call ends from a later dispatch, through call_done:
	 * the run stays listed until then, and makes no more calls. */
	for (size_t i = 0; i < run->n; i++)
		if (run->answers[i].pending && run->answers[i].call_id)
			pb_cancel(s, run->answers[i].call_id);
	return 0;
}

PB_API int pb_hook_start(pb_supervisor *s, const char *group, const pb_call_spec *spec,
                         const pb_hook_options *opts, pb_hook_done_fn done, void *userdata)
{
	return pb_hook_start_id(s, group, spec, opts, done, userdata, NULL);
}

PB_API int pb_hook_start_id(pb_supervisor *s, const char *group, const pb_call_spec *spec,
                            const pb_hook_options *opts, pb_hook_done_fn done, void *userdata,
                            uint64_t *hook_id)
{
	static const pb_call_spec no_arguments;
	static const pb_hook_options defaults;
	const pb_hook_options *o = opts ? opts : &defaults;
	const unsigned known_flags = PB_HOOK_FIRST_RESULT | PB_HOOK_CONCURRENT | PB_HOOK_ALLOW_UNKNOWN |
	                             PB_HOOK_PRUNE_KWARGS | PB_HOOK_ALONE;
	struct hook_run *run;
	size_t count;
	int r = 0;

	if (!done) {
		pb_set_message(s, "a hook needs a completion callback");
		return -EINVAL;
	}
	if (!group || !valid_group(group)) {
		pb_set_message(s, "a hook needs an entry-point group name without ':' or control characters");
		return -EINVAL;
	}
	if (o->flags & ~known_flags) {
		pb_set_message(s, "unknown hook flags %#x", o->flags & ~known_flags);
		return -EINVAL;
	}
	if (o->order != PB_HOOK_ORDER_NAME && o->order != PB_HOOK_ORDER_PRIORITY && o->order != PB_HOOK_ORDER_GIVEN) {
		pb_set_message(s, "unknown hook order %d", (int)o->order);
		return -EINVAL;
	}
	if ((o->order == PB_HOOK_ORDER_GIVEN && !o->plugins) || (o->nplugins && !o->plugins)) {
		pb_set_message(s, "the hook's order is the caller's list of plugins, and there is none");
		return -EINVAL;
	}
	for (size_t i = 0; o->plugins && i < o->nplugins; i++)
		if (!o->plugins[i]) {
			pb_set_message(s, "plugin %zu of the hook's list is NULL", i);
			return -EINVAL;
		}
	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	run->s = s;
	run->spec = spec ? spec : &no_arguments;
	run->flags = o->flags;
	run->in_turn = (o->flags & PB_HOOK_FIRST_RESULT) && !(o->flags & PB_HOOK_CONCURRENT);
	run->done = done;
	run->userdata = userdata;
	if (!(run->group = strdup(group))) {
		free(run);
		return -ENOMEM;
	}
	if ((r = find_providers(s, group, o, run)) < 0) {
		abandon(run);
		return r;
	}
	run->id = ++s->next_id;
	if (hook_id)
		*hook_id = run->id;
	run->next = s->hook_runs;
	s->hook_runs = run;
	run->listed = true;
	/* From here on done runs exactly once: now, when nothing is to be
	 * called, or from a later dispatch. */
	if (run->in_turn) {
		advance(run, 0);
		return 0;
	}
	for (size_t i = 0; i < run->n; i++)
		if (start_call(s, group, run->spec, run->flags, run, i) < 0) {
			/* Out of memory: what started ends unobserved. */
			finish(run, i);
			return 0;
		}
	/* Every answer may already be in (none to call, or only errors). */
	if ((count = decided(run, run->flags)) > 0 || run->pending == 0)
		finish(run, count > 0 ? count : run->n);
	return 0;
}

/* pb_hook_ex's wait: on the heap, so that should the loop fail the answer
 * that comes later has somewhere to go. */
struct hook_sync {
	bool done, abandoned;
	int status;
	pb_hook_results *res;
};

static void sync_done(void *userdata, pb_hook_results *res, int status)
{
	struct hook_sync *w = userdata;

	if (w->abandoned) {
		pb_hook_results_free(res);
		free(w);
		return;
	}
	w->done = true;
	w->res = res;
	w->status = status;
}

PB_API int pb_hook_ex(pb_supervisor *s, const char *group, const pb_call_spec *spec,
                      const pb_hook_options *opts, pb_hook_results **out)
{
	struct hook_sync *w = calloc(1, sizeof(*w));
	int r;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	if ((r = pb_hook_start(s, group, spec, opts, sync_done, w)) < 0) {
		free(w);
		return r;
	}
	while (!w->done) {
		if (pb_supervisor_dispatch(s, -1) < 0 && errno != EINTR) {
			r = -errno;
			pb_set_message(s, "the supervisor's loop failed: %s", strerror(errno));
			w->abandoned = true;
			return r;
		}
	}
	*out = w->res;
	r = w->status;
	free(w);
	return r;
}

PB_API int pb_hook(pb_supervisor *s, const char *group, const pb_call_spec *spec, unsigned flags,
                   pb_hook_results **out)
{
	const pb_hook_options o = { .flags = flags };
	return pb_hook_ex(s, group, spec, &o, out);
}

PB_API size_t pb_hook_results_count(const pb_hook_results *r)
{
	return r ? r->n : 0;
}

static const struct hook_answer *answer(const pb_hook_results *r, size_t i)
{
	return r && i < r->n ? &r->answers[i] : NULL;
}

PB_API const char *pb_hook_result_plugin(const pb_hook_results *r, size_t i)
{
	const struct hook_answer *a = answer(r, i);
	return a ? a->plugin : NULL;
}

PB_API const char *pb_hook_result_name(const pb_hook_results *r, size_t i)
{
	const struct hook_answer *a = answer(r, i);
	return a ? a->name : NULL;
}

PB_API const pb_value *pb_hook_result_value(const pb_hook_results *r, size_t i)
{
	const struct hook_answer *a = answer(r, i);
	return a ? a->value : NULL;
}

PB_API const pb_error *pb_hook_result_error(const pb_hook_results *r, size_t i)
{
	const struct hook_answer *a = answer(r, i);
	return a ? a->error : NULL;
}

PB_API void pb_hook_results_free(pb_hook_results *r)
{
	if (!r)
		return;
	answers_free(r->answers, r->n);
	free(r);
}
