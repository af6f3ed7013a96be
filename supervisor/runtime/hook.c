/* hook.c - pb_hook: call one entry-point group across every plugin, the
 * way frameworks run `for ep in entry_points(group=G): ep.load()()`.
 *
 * Which plugins provide a group is known only from their workers' Hello
 * (a plugin directory is parsed inside its sandbox, never here), so every
 * plugin's worker is started first, all together; then every entry point
 * of the group is called at once and the answers are gathered in a fixed
 * order: plugins by name, then entry points by name.
 *
 * With PB_HOOK_FIRST_RESULT the caller may get its answer while calls
 * after the winner still run. Those calls end later, inside some dispatch
 * the host makes, so their bookkeeping (struct hook_run) outlives pb_hook
 * and is freed by the last of them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/error.h"
#include "runtime/lifecycle.h"
#include "runtime/process.h"
#include "runtime/supervisor.h"

struct hook_answer {
	char *plugin;
	char *name; /* the entry point's; "" when the plugin could not start */
	pb_value *value;
	pb_error *error;
	bool pending; /* its call has not ended yet */
};

struct hook_run {
	struct hook_answer *answers;
	size_t n;
	size_t pending; /* calls not yet ended */
	bool abandoned; /* pb_hook returned: answers still to come are dropped */
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

static void call_done(void *userdata, uint64_t id, pb_value *result, pb_error *err)
{
	struct hook_call *hc = userdata;
	struct hook_run *run = hc->run;
	struct hook_answer *a = &run->answers[hc->index];

	(void)id;
	free(hc);
	a->value = result;
	a->error = err;
	a->pending = false;
	run->pending--;
	if (run->abandoned && run->pending == 0) {
		answers_free(run->answers, run->n);
		free(run);
	}
}

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

/* The group's entry points of one ready worker, from its Hello, sorted.
 * Sorting first makes duplicates neighbours: O(n log n) for the at most
 * PB_ENTRY_POINTS_MAX a Hello may list (runtime.c), never n squared. */
static int add_entry_points(struct hook_run *run, size_t *cap, const struct process *w, const char *group)
{
	const Plugbox__Hello *h = w->hello->hello;
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
			r = add_answer(run, cap, w->name, refs[i].name, NULL);
	free(refs);
	return r;
}

/* Who provides the group: every plugin's worker is started (together) and
 * asked by its Hello; a plugin that cannot start is an answer of its own. */
static int find_providers(pb_supervisor *s, const char *group, struct hook_run *run)
{
	char **names;
	size_t n, cap = 0;
	int r = pb_supervisor_plugins(s, &names, &n);
	const struct process **ready;
	pb_error **errs;

	if (r < 0)
		return r;
	ready = calloc(n ? n : 1, sizeof(*ready));
	errs = calloc(n ? n : 1, sizeof(*errs));
	if (!ready || !errs) {
		free(ready);
		free(errs);
		pb_strv_free(names, n);
		return -ENOMEM;
	}
	pb_runtime_wait_workers(s, names, n, ready, errs);
	for (size_t i = 0; i < n; i++) {
		if (r == 0 && errs[i]) {
			r = add_answer(run, &cap, names[i], "", errs[i]);
			errs[i] = NULL;
		} else if (r == 0 && ready[i]) {
			r = add_entry_points(run, &cap, ready[i], group);
		}
		pb_error_free(errs[i]);
	}
	free(ready);
	free(errs);
	pb_strv_free(names, n);
	return r;
}

static int start_calls(pb_supervisor *s, const char *group, const pb_call_spec *spec, struct hook_run *run)
{
	for (size_t i = 0; i < run->n; i++) {
		struct hook_answer *a = &run->answers[i];
		size_t len = strlen(group) + 1 + strlen(a->name) + 1;
		char *function;
		struct hook_call *hc;
		pb_call_spec one = *spec;
		int r;

		if (a->error)
			continue;
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
		r = pb_call_start(s, &one, call_done, hc, NULL);
		free(function);
		if (r < 0) {
			/* The callback never runs for a call that did not start. */
			a->pending = false;
			run->pending--;
			free(hc);
			a->error = pb_error_newf(PB_ERROR_BAD_REQUEST, a->plugin, "entry point %s:%s could not be "
			                                                          "called: %s",
			                         group, a->name, pb_supervisor_strerror(s));
			if (!a->error)
				return -ENOMEM;
		}
	}
	return 0;
}

/* How many answers the caller gets, or 0 while that is not known yet. */
static size_t decided(const struct hook_run *run, unsigned flags)
{
	for (size_t i = 0; i < run->n; i++) {
		const struct hook_answer *a = &run->answers[i];
		if (a->pending)
			return 0;
		if ((flags & PB_HOOK_FIRST_RESULT) && a->value && pb_value_get_kind(a->value) != PB_VALUE_NULL)
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
		free(run);
	} else {
		run->abandoned = true;
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

PB_API int pb_hook(pb_supervisor *s, const char *group, const pb_call_spec *spec, unsigned flags,
                   pb_hook_results **out)
{
	static const pb_call_spec no_arguments;
	struct hook_run *run;
	size_t count;
	int r;

	*out = NULL;
	if (!group || !valid_group(group)) {
		pb_set_message(s, "a hook needs an entry-point group name without ':' or control characters");
		return -EINVAL;
	}
	if (flags & ~PB_HOOK_FIRST_RESULT) {
		pb_set_message(s, "unknown hook flags %#x", flags);
		return -EINVAL;
	}
	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	if ((r = find_providers(s, group, run)) < 0 ||
	    (r = start_calls(s, group, spec ? spec : &no_arguments, run)) < 0) {
		abandon(run);
		return r;
	}
	while ((count = decided(run, flags)) == 0 && run->n > 0) {
		if (pb_supervisor_dispatch(s, -1) < 0 && errno != EINTR) {
			r = -errno;
			pb_set_message(s, "the supervisor's loop failed: %s", strerror(errno));
			abandon(run);
			return r;
		}
	}
	*out = take_answers(run, count);
	abandon(run);
	return *out ? 0 : -ENOMEM;
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
