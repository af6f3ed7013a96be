/* policy_load.c - a policy by name or path, read into one checked
 * struct pb_policy, and its life.
 *
 * policy_parse.c reads the files; here the whole is checked (fail closed:
 * no @default anywhere means kill; the worker's own floor of syscalls must
 * be allowed whatever the arguments), a policy is shared by reference
 * (the supervisor's cache, policy_cache.c) and freed, and its places and
 * verdicts are named for reports.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_syntax.h"
#include "proto/names.h"

/* The worker cannot answer, or say why it stops, without these. */
static void check_floor(struct parser *ps, const struct pb_policy *p)
{
	for (const char *const *s = pb_worker_floor; *s; s++) {
		int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, *s);
		struct pb_action verdict = p->dflt;
		bool sure = true;

		for (size_t i = 0; i < p->start.n; i++) {
			const struct pb_entry *e = &p->start.v[i];
			if (e->nr != nr)
				continue;
			if (e->cond && e->action.kind != PB_ACT_ALLOW)
				sure = false;
			if (!e->cond) {
				verdict = e->action;
				break;
			}
		}
		for (size_t i = 0; i < p->after.n; i++)
			if (p->after.v[i].nr == nr && p->after.v[i].action.kind != PB_ACT_ALLOW)
				sure = false;
		if (!sure || verdict.kind != PB_ACT_ALLOW)
			policy_report(ps, true, p->path, 0, 0, "the worker itself needs '%s' allowed whatever "
			                                       "its arguments (for its channel, its violation reports and its exit); "
			                                       "allow it or @include default",
			              *s);
	}
}

struct pb_policy *pb_policy_ref(struct pb_policy *p)
{
	p->refs++;
	return p;
}

void pb_policy_free(struct pb_policy *p)
{
	if (!p)
		return;
	if (p->refs > 1) {
		p->refs--;
		return;
	}
	for (size_t i = 0; i < p->nkept; i++)
		free(p->texts[i]);
	free(p->texts);
	free(p->text_lens);
	policy_list_free(&p->start);
	policy_list_free(&p->after);
	sandbox_free(&p->sandbox);
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->files);
	free(p->included_at);
	for (size_t i = 0; i < p->nincludes; i++)
		free(p->includes[i]);
	free(p->includes);
	free(p->name);
	free(p->path);
	pb_compiled_memo_free(p->compiled);
	free(p);
}

static int load(const char *dir, const char *name, const char *path, bool keep_texts, pb_policy_diag_fn diag,
                void *data, struct pb_policy **out)
{
	struct parser ps = { .dir = dir, .diag = diag, .diag_data = data, .keep_texts = keep_texts };
	struct chunk top = { 0 };
	int r;

	*out = NULL;
	ps.p = calloc(1, sizeof(*ps.p));
	if (ps.p) {
		ps.p->name = strdup(name);
		ps.p->path = strdup(path);
		ps.p->compiled = pb_compiled_memo_new();
		ps.p->refs = 1;
	}
	if (!ps.p || !ps.p->name || !ps.p->path || !ps.p->compiled) {
		pb_policy_free(ps.p);
		policy_report(&ps, true, path, 0, 0, "out of memory");
		return -ENOMEM;
	}
	r = policy_parse_file(&ps, ps.p->name, ps.p->path, &top);
	if (r == 0 && ps.nomem)
		r = -ENOMEM;
	ps.p->start = top.start;
	ps.p->after = top.after;
	/* Fail closed: with no @default anywhere, what is not named is killed. */
	ps.p->dflt = top.has_default ? top.dflt : (struct pb_action){ PB_ACT_KILL, 0 };
	if (top.has_default)
		ps.p->dflt_where = top.dflt_where;
	ps.p->sandbox = top.sandbox;
	sandbox_fill_defaults(&ps.p->sandbox);
	if (r == 0 && ps.errors == 0)
		check_floor(&ps, ps.p);
	if (r < 0 || ps.errors > 0) {
		if (ps.errors > POLICY_ERRORS_MAX)
			policy_report(&ps, false, path, 0, 0, "%d more errors not shown", ps.errors - POLICY_ERRORS_MAX);
		pb_policy_free(ps.p);
		return r < 0 ? r : -EINVAL;
	}
	*out = ps.p;
	return 0;
}

static int load_named(const char *dir, const char *name, bool keep_texts, pb_policy_diag_fn diag, void *data,
                      struct pb_policy **out)
{
	char path[PATH_MAX];

	*out = NULL;
	if (!pb_valid_plugin_name(name)) {
		char msg[300];
		snprintf(msg, sizeof(msg), "%s: policy name '%.64s' has characters outside [A-Za-z0-9_-]",
		         dir, name);
		if (diag)
			diag(data, true, msg);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/%s.policy", dir, name);
	return load(dir, name, path, keep_texts, diag, data, out);
}

int pb_policy_load(const char *dir, const char *name, pb_policy_diag_fn diag, void *data,
                   struct pb_policy **out)
{
	return load_named(dir, name, false, diag, data, out);
}

int policy_load_keeping_texts(const char *dir, const char *name, pb_policy_diag_fn diag, void *data,
                              struct pb_policy **out)
{
	return load_named(dir, name, true, diag, data, out);
}

int pb_policy_load_file(const char *path, pb_policy_diag_fn diag, void *data, struct pb_policy **out)
{
	char dir[PATH_MAX], name[256];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t blen = strlen(base);

	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		snprintf(dir, sizeof(dir), ".");
	if (!*dir)
		snprintf(dir, sizeof(dir), "/");
	snprintf(name, sizeof(name), "%s", base);
	if (blen > 7 && !strcmp(name + blen - 7, ".policy"))
		name[blen - 7] = '\0';
	return load(dir, name, path, false, diag, data, out);
}

const struct pb_where *pb_policy_included_at(const struct pb_policy *p, const struct pb_where *w)
{
	for (size_t i = 0; i < p->nfiles && w->file; i++)
		if (p->files[i] == w->file || !strcmp(p->files[i], w->file))
			return p->included_at[i].file ? &p->included_at[i] : NULL;
	return NULL;
}

void pb_where_format(const struct pb_where *w, char *buf, size_t len)
{
	const char *slash;

	if (!w->file) {
		snprintf(buf, len, "no @default: kill");
		return;
	}
	slash = strrchr(w->file, '/');
	snprintf(buf, len, "%s:%u", slash ? slash + 1 : w->file, w->line);
}

const char *pb_action_name(const struct pb_action *a, char *buf, size_t len)
{
	const char *e = a->err ? strerrorname_np(a->err) : NULL;

	switch (a->kind) {
	case PB_ACT_ALLOW: snprintf(buf, len, "allow"); break;
	case PB_ACT_ERRNO: snprintf(buf, len, "return %s", e ? e : "?"); break;
	case PB_ACT_LOG: snprintf(buf, len, "log"); break;
	case PB_ACT_TRAP: snprintf(buf, len, "trap %s", e ? e : "?"); break;
	case PB_ACT_KILL: snprintf(buf, len, "kill"); break;
	}
	return buf;
}
