/* policy_parse.c - the policy language: minijail's syscall lines, read into
 * the rule lists of policy.h.
 *
 *   # comment
 *   read: 1                                   allow
 *   ioctl: arg1 == FIONREAD || arg1 == TCGETS allow when the condition holds
 *   socket: arg0 == AF_UNIX; return EACCES    ... and otherwise this action
 *   openat: arg2 & O_WRONLY|O_RDWR => return EROFS     this action when it holds
 *   ptrace: kill                              actions: 1 allow kill log
 *                                             trap [ERRNO] return ERRNO
 *   @basic-io: 1                              every member of a group
 *   @include NAME                             NAME.policy, same directory
 *   @default ACTION                           kill trap log enosys errno NAME
 *   @after-start                              what follows is added once the
 *                                             plugin is imported
 *   @limit @layer @network @scratch @proc     the other layers, and the host
 *   @host-call NAME...                        functions granted: policy_sandbox.c
 *
 * The directives are a table (`directives` below) of {name, handler,
 * flags}; DIR_ONCE refuses a second use in one file at its FILE:LINE:COL.
 *
 * This file reads files, includes, directives and rules; the pieces of a
 * line (actions, conditions, suggestions) are policy_syntax.c's; loading
 * a policy by name or path, its checks as a whole and its freeing are
 * policy_load.c's. Every
 * error is reported as FILE:LINE:COL and parsing goes on to find the
 * rest. Policy files come from the operator, but are still read with bounds:
 * size, line length, include depth, number of rules.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy_syntax.h"
#include "proto/names.h"

void policy_report(struct parser *ps, bool is_error, const char *file, unsigned line, unsigned col,
                   const char *fmt, ...)
{
	char msg[768], out[1024];
	va_list ap;

	if (is_error && ++ps->errors > POLICY_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line)
		snprintf(out, sizeof(out), "%s:%u:%u: %s%s", file, line, col,
		         is_error ? "" : "warning: ", msg);
	else
		snprintf(out, sizeof(out), "%s: %s%s", file, is_error ? "" : "warning: ", msg);
	if (ps->diag)
		ps->diag(ps->diag_data, is_error, out);
}

void policy_nomem(struct parser *ps, const struct cursor *c)
{
	ps->nomem = true;
	if (c && c->file && c->line)
		ERR_AT(ps, c, c->pos, "out of memory");
	else
		policy_report(ps, true, ps->p->path, 0, 0, "out of memory");
}

/* ---- small helpers ------------------------------------------------------- */

static int list_push(struct pb_entry_list *l, const struct pb_entry *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		struct pb_entry *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *e;
	return 0;
}

void policy_cond_free(struct pb_cond *c)
{
	if (!c)
		return;
	free(c->atoms);
	free(c->clause_end);
	free(c);
}

void policy_list_free(struct pb_entry_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		policy_cond_free(l->v[i].cond);
		free(l->v[i].text);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Move every entry of src to the end of dst: all of them, or none on
 * -ENOMEM (src then still owns them all, so no entry has two owners). */
static int list_append(struct pb_entry_list *dst, struct pb_entry_list *src)
{
	if (src->n > dst->cap - dst->n) {
		size_t cap = dst->n + src->n;
		struct pb_entry *v;

		if (cap < 2 * dst->cap)
			cap = 2 * dst->cap;
		v = realloc(dst->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		dst->v = v;
		dst->cap = cap;
	}
	if (src->n > 0)
		memcpy(dst->v + dst->n, src->v, src->n * sizeof(*src->v));
	dst->n += src->n;
	free(src->v);
	memset(src, 0, sizeof(*src));
	return 0;
}

/* ---- lines --------------------------------------------------------------- */

struct file_ctx {
	struct parser *ps;
	struct cursor *c;
	struct chunk own;
	bool after_start;
	/* first unconditional entry per syscall in this file, per section */
	unsigned decided_line[2][SYSCALL_NR_LIMIT];
	/* first entry of any kind, for lint */
	unsigned named_line[2][SYSCALL_NR_LIMIT];
	unsigned once_line[16]; /* per directive (DIR_ONCE): where it first came */
};

static int add_entry(struct file_ctx *f, int nr, struct pb_cond *cond, const struct pb_action *a,
                     size_t col, const char *text)
{
	struct pb_entry e = { .nr = nr, .cond = cond, .action = *a };
	struct pb_entry_list *l = f->after_start ? &f->own.after : &f->own.start;

	if (++f->ps->nentries > POLICY_ENTRIES_MAX) {
		ERR_AT(f->ps, f->c, col, "more than %d rules", POLICY_ENTRIES_MAX);
		policy_cond_free(cond);
		return -1;
	}
	e.where = (struct pb_where){ f->c->file, f->c->line, (unsigned)col + 1 };
	e.text = strdup(text);
	if (!e.text || list_push(l, &e) < 0) {
		free(e.text);
		policy_cond_free(cond);
		policy_nomem(f->ps, f->c);
		return -ENOMEM;
	}
	if (!cond && nr >= 0 && nr < SYSCALL_NR_LIMIT && !f->decided_line[f->after_start][nr])
		f->decided_line[f->after_start][nr] = f->c->line;
	if (nr >= 0 && nr < SYSCALL_NR_LIMIT && !f->named_line[f->after_start][nr])
		f->named_line[f->after_start][nr] = f->c->line;
	return 0;
}

/* Lint: say so when a rule allows what only an attack needs. */
static void lint(struct file_ctx *f, int nr, const char *syscall, const struct pb_cond *cond,
                 const struct pb_action *a, size_t col)
{
	const char *why = pb_syscall_danger(syscall);

	if (!why || cond || (a->kind != PB_ACT_ALLOW && a->kind != PB_ACT_LOG))
		return;
	/* An earlier rule of this file already ruled on its arguments. */
	if (nr >= 0 && nr < SYSCALL_NR_LIMIT && f->named_line[f->after_start][nr])
		return;
	WARN_AT(f->ps, f->c, col, "'%s' is allowed without conditions: it %s", syscall, why);
}

/* The syscall number for a rule's name; -1 (reported) if unknown, -2 if it
 * is a syscall of another architecture only (warned, rule skipped). */
static int syscall_number(struct file_ctx *f, const char *name, size_t col)
{
	int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, name);
	char near[64];

	if (nr >= 0 && nr < SYSCALL_NR_LIMIT)
		return nr;
	if (nr == __NR_SCMP_ERROR || nr >= SYSCALL_NR_LIMIT) {
		nearest_syscall(name, near, sizeof(near));
		if (*near)
			ERR_AT(f->ps, f->c, col, "unknown syscall '%s'; did you mean '%s'?", name, near);
		else
			ERR_AT(f->ps, f->c, col, "unknown syscall '%s'", name);
		return -1;
	}
	WARN_AT(f->ps, f->c, col, "'%s' is not a syscall on this architecture; rule skipped", name);
	return -2;
}

static bool decided_here(struct file_ctx *f, int nr, size_t col, const char *name)
{
	unsigned line = f->decided_line[f->after_start][nr];
	if (!line)
		return false;
	ERR_AT(f->ps, f->c, col, "'%s' is already decided without conditions at line %u; "
	                         "this rule would never be reached",
	       name, line);
	return true;
}

static int add_group_members(struct file_ctx *f, const struct pb_syscall_group *g,
                             const struct pb_action *a, size_t col, const char *text, int depth)
{
	for (const char *const *m = g->members; *m; m++) {
		if (**m == '@') {
			const struct pb_syscall_group *sub = pb_syscall_group_find(*m + 1);
			if (sub && depth < 4 && add_group_members(f, sub, a, col, text, depth + 1) < 0)
				return -1;
			continue;
		}
		int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, *m);
		if (nr < 0 || nr >= SYSCALL_NR_LIMIT)
			continue; /* not on this architecture */
		/* A member this file already decided keeps its own rule. */
		if (f->decided_line[f->after_start][nr])
			continue;
		lint(f, nr, *m, NULL, a, col);
		if (add_entry(f, nr, NULL, a, col, text) < 0)
			return -1;
	}
	return 0;
}


/* ---- directives ---------------------------------------------------------- */

/* What a directive's handler gets: the line after its name (c->pos), the
 * column of its name (the '@' is at col - 1), the whole rule text, and the
 * file's chunk of included rules. */
struct directive_call {
	struct file_ctx *f;
	size_t col;
	const char *text;
	struct chunk *includes;
};

/* Check and record one @include NAME: its name, cycles, depth, and that it
 * is there. The policy's include list learns it; false when it must not be
 * read (an error, reported, or already included). */
static bool include_allowed(struct file_ctx *f, const char *inc, size_t icol, char *incpath, size_t len)
{
	struct parser *ps = f->ps;
	struct cursor *c = f->c;

	if (!pb_valid_plugin_name(inc)) {
		ERR_AT(ps, c, icol, "@include names a policy in the same directory, "
		                    "[A-Za-z0-9_-]+ with no path: '%s'",
		       inc);
		return false;
	}
	if (!cursor_at_end(c)) {
		ERR_AT(ps, c, c->pos, "unexpected text after @include %s", inc);
		return false;
	}
	for (size_t i = 0; i < ps->depth; i++)
		if (!strcmp(ps->stack[i], inc)) {
			char chain[512] = "";
			for (size_t j = i; j < ps->depth; j++) {
				strncat(chain, ps->stack[j], sizeof(chain) - strlen(chain) - 1);
				strncat(chain, " -> ", sizeof(chain) - strlen(chain) - 1);
			}
			strncat(chain, inc, sizeof(chain) - strlen(chain) - 1);
			ERR_AT(ps, c, icol, "include cycle: %s", chain);
			return false;
		}
	if (ps->depth >= POLICY_INCLUDE_DEPTH) {
		ERR_AT(ps, c, icol, "includes nested more than %d deep", POLICY_INCLUDE_DEPTH);
		return false;
	}
	for (size_t i = 0; i < ps->p->nincludes; i++)
		if (!strcmp(ps->p->includes[i], inc))
			return false; /* already in the policy: once is enough */
	snprintf(incpath, len, "%s/%s.policy", ps->dir, inc);
	const char *why;
	FILE *probe = policy_fopen(incpath, &why);
	if (!probe) {
		ERR_AT(ps, c, icol, "cannot include '%s': %s: %s", inc, incpath, why);
		return false;
	}
	fclose(probe);
	char **grown = realloc(ps->p->includes, (ps->p->nincludes + 1) * sizeof(char *));
	if (!grown || !(grown[ps->p->nincludes] = strdup(inc))) {
		if (grown)
			ps->p->includes = grown;
		policy_nomem(ps, c);
		return false;
	}
	ps->p->includes = grown;
	ps->p->nincludes++;
	return true;
}

/* Read an included file and add what it says to the includes' chunk. */
static void include_read(struct file_ctx *f, const char *inc, const char *incpath, struct chunk *includes)
{
	struct chunk sub = { 0 };

	/* Its errors (and running out of memory) are reported inside. The
	 * @include line is where the file comes from (policy explain). */
	f->ps->include_line = (struct pb_where){ f->c->file, f->c->line, 1 };
	policy_parse_file(f->ps, inc, incpath, &sub);
	if (list_append(&includes->start, &sub.start) < 0 || list_append(&includes->after, &sub.after) < 0) {
		policy_nomem(f->ps, f->c);
		policy_list_free(&sub.start);
		policy_list_free(&sub.after);
	}
	sandbox_merge(&includes->sandbox, &sub.sandbox);
	if (sub.has_default && !includes->has_default) {
		includes->has_default = true;
		includes->dflt = sub.dflt;
		includes->dflt_where = sub.dflt_where;
	}
}

static void do_include(const struct directive_call *d)
{
	struct cursor *c = d->f->c;
	char inc[128], incpath[PATH_MAX];

	cursor_skip_ws(c);
	size_t icol = c->pos, len = strcspn(c->s + c->pos, " \t");
	if (len == 0 || len >= sizeof(inc)) {
		ERR_AT(d->f->ps, c, icol, "@include needs a policy name");
		return;
	}
	memcpy(inc, c->s + c->pos, len);
	inc[len] = '\0';
	c->pos += len;
	if (len > 7 && !strcmp(inc + len - 7, ".policy"))
		inc[len - 7] = '\0';
	if (include_allowed(d->f, inc, icol, incpath, sizeof(incpath)))
		include_read(d->f, inc, incpath, d->includes);
}

static void do_default(const struct directive_call *d)
{
	struct file_ctx *f = d->f;
	struct pb_action a;

	if (parse_default_action(f->ps, f->c, &a) < 0)
		return;
	if (!cursor_at_end(f->c)) {
		ERR_AT(f->ps, f->c, f->c->pos, "unexpected text after the default action");
		return;
	}
	f->own.has_default = true;
	f->own.dflt = a;
	f->own.dflt_where = (struct pb_where){ f->c->file, f->c->line, (unsigned)d->col };
}

static void do_after_start(const struct directive_call *d)
{
	if (!cursor_at_end(d->f->c))
		ERR_AT(d->f->ps, d->f->c, d->f->c->pos, "@after-start stands alone on its line");
	d->f->after_start = true;
}

/* @GROUP: ACTION, for a group `g` (the name is already read). */
static void do_group(const struct directive_call *d, const struct pb_syscall_group *g, const char *w)
{
	struct parser *ps = d->f->ps;
	struct cursor *c = d->f->c;
	struct pb_action a;
	char aw[32];

	if (!cursor_accept(c, ":")) {
		ERR_AT(ps, c, c->pos, "expected ':' after @%s", w);
		return;
	}
	cursor_skip_ws(c);
	size_t acol = c->pos, an = cursor_word(c, aw, sizeof(aw));
	if (!(an > 0 && an < sizeof(aw) && is_action_word(aw))) {
		ERR_AT(ps, c, acol, "a group takes an action only, no conditions "
		                    "(rule its syscalls one by one, before the group line)");
		return;
	}
	if (parse_action(ps, c, &a) < 0)
		return;
	if (!cursor_at_end(c)) {
		ERR_AT(ps, c, c->pos, "unexpected text after the action");
		return;
	}
	if (a.kind == PB_ACT_LOG && d->f->after_start) {
		ERR_AT(ps, c, acol, "log is not available after @after-start");
		return;
	}
	add_group_members(d->f, g, &a, d->col - 1, d->text, 0);
}

enum directive_flag {
	DIR_ONCE = 1 << 0, /* at most once per file (OpenSSH's MON_ONCE) */
	DIR_BEFORE_AFTER_START = 1 << 1,
};

/* Every @directive; an @NAME that is none of them is a syscall group.
 * Exactly one of handler (the file's state) and sandbox (a setting of the
 * layers beside seccomp, policy_sandbox.c). `again`, for DIR_ONCE: what
 * follows "a second @NAME" in the error ("" or " in this file"), NULL for
 * nothing more, not even where the first one is. */
static const struct directive {
	const char *name;
	void (*handler)(const struct directive_call *d);
	sandbox_directive_fn *sandbox;
	unsigned flags;
	const char *again;
} directives[] = {
	{ "include", do_include, NULL, DIR_BEFORE_AFTER_START, NULL },
	{ "default", do_default, NULL, DIR_ONCE, "" },
	{ "after-start", do_after_start, NULL, DIR_ONCE, NULL },
	{ "limit", NULL, sandbox_limit, 0, NULL },
	{ "layer", NULL, sandbox_layer, 0, NULL },
	{ "network", NULL, sandbox_network, 0, NULL }, /* once, but for its connect lines (policy_net.c) */
	{ "scratch", NULL, sandbox_scratch, DIR_ONCE, " in this file" },
	{ "scratch-exec", NULL, sandbox_scratch_exec, DIR_ONCE, " in this file" },
	{ "proc", NULL, sandbox_proc, DIR_ONCE, " in this file" },
	{ "fresh-per-call", NULL, sandbox_fresh_per_call, DIR_ONCE, " in this file" },
	{ "replicas", NULL, sandbox_replicas, DIR_ONCE, " in this file" },
	{ "host-call", NULL, sandbox_host_call, 0, NULL },
};
#define NDIRECTIVES (sizeof(directives) / sizeof(directives[0]))
_Static_assert(NDIRECTIVES <= sizeof(((struct file_ctx *)0)->once_line) / sizeof(unsigned),
               "file_ctx.once_line has a slot per directive");

/* The line of a DIR_ONCE directive's first use in the file being read. */
static unsigned *once_line(struct file_ctx *f, const struct directive *d)
{
	return &f->once_line[d - directives];
}

/* May directive d stand here? Reports why not. */
static bool directive_allowed(struct file_ctx *f, const struct directive *d, size_t col)
{
	if ((d->flags & DIR_BEFORE_AFTER_START) && f->after_start) {
		ERR_AT(f->ps, f->c, col - 1, "@%s must come before @after-start", d->name);
		return false;
	}
	if (!(d->flags & DIR_ONCE))
		return true;
	unsigned *first = once_line(f, d);
	if (*first && d->again)
		ERR_AT(f->ps, f->c, col - 1, "a second @%s%s (the first is at line %u)", d->name, d->again, *first);
	else if (*first)
		ERR_AT(f->ps, f->c, col - 1, "a second @%s", d->name);
	if (*first)
		return false;
	*first = f->c->line;
	return true;
}

/* An @WORD that is neither a directive nor a group: say what is near. */
static void unknown_directive(struct file_ctx *f, const char *w, size_t col)
{
	char near[64];

	nearest_group(w, near, sizeof(near));
	for (size_t i = 0; i < NDIRECTIVES; i++)
		if (edit_distance(w, directives[i].name) <= 2) {
			ERR_AT(f->ps, f->c, col - 1, "unknown directive '@%s'; did you mean '@%s'?", w,
			       directives[i].name);
			return;
		}
	if (*near)
		ERR_AT(f->ps, f->c, col - 1, "unknown group '@%s'; did you mean '@%s'?", w, near);
	else
		ERR_AT(f->ps, f->c, col - 1, "unknown directive or group '@%s' (see `plugbox policy groups`)", w);
}

static void parse_directive(struct file_ctx *f, const char *text, struct chunk *includes)
{
	struct cursor *c = f->c;
	char w[128];
	size_t n;

	c->pos++; /* '@' */
	const struct directive_call call = { f, c->pos, text, includes };
	n = cursor_word(c, w, sizeof(w));
	if (n == 0 || n >= sizeof(w)) {
		char list[256] = "";
		for (size_t i = 0; i < NDIRECTIVES; i++) {
			strncat(list, "@", sizeof(list) - strlen(list) - 1);
			strncat(list, directives[i].name, sizeof(list) - strlen(list) - 1);
			strncat(list, ", ", sizeof(list) - strlen(list) - 1);
		}
		ERR_AT(f->ps, c, call.col - 1, "expected %sor @GROUP: ACTION", list);
		return;
	}
	c->pos += n;
	for (size_t i = 0; i < NDIRECTIVES; i++) {
		const struct directive *d = &directives[i];
		if (strcmp(w, d->name) != 0)
			continue;
		if (!directive_allowed(f, d, call.col))
			return;
		if (d->handler)
			d->handler(&call);
		else
			d->sandbox(f->ps, c, call.col, &f->own.sandbox);
		return;
	}
	const struct pb_syscall_group *g = pb_syscall_group_find(w);
	if (g)
		do_group(&call, g, w);
	else
		unknown_directive(f, w, call.col);
}

static void parse_rule(struct file_ctx *f, const char *text)
{
	struct parser *ps = f->ps;
	struct cursor *c = f->c;
	char name[64], aw[32];
	size_t col, n, an;
	struct pb_cond *cond = NULL;
	struct pb_action then = { PB_ACT_ALLOW, 0 }, otherwise;
	bool has_else = false;
	int nr;

	cursor_skip_ws(c);
	col = c->pos;
	n = cursor_word(c, name, sizeof(name));
	if (n == 0 || n >= sizeof(name)) {
		ERR_AT(ps, c, col, "expected a syscall name, @include, @default or @GROUP");
		return;
	}
	c->pos += n;
	if (!cursor_accept(c, ":")) {
		ERR_AT(ps, c, c->pos, "expected ':' after '%s'", name);
		return;
	}
	nr = syscall_number(f, name, col);
	if (nr == -1)
		return;
	cursor_skip_ws(c);
	size_t acol = c->pos, ecol = 0;
	an = cursor_word(c, aw, sizeof(aw));
	if (c->s[c->pos] == '\0') {
		ERR_AT(ps, c, c->pos, "expected an action or a condition after '%s:'", name);
		return;
	}
	if (an > 0 && an < sizeof(aw) && is_action_word(aw)) {
		if (parse_action(ps, c, &then) < 0)
			return;
	} else {
		cond = parse_cond(ps, c, name);
		if (!cond)
			return;
		if (cursor_accept(c, "=>")) {
			cursor_skip_ws(c);
			acol = c->pos;
			if (parse_action(ps, c, &then) < 0)
				goto fail;
		}
		if (cursor_accept(c, ";")) {
			cursor_skip_ws(c);
			ecol = c->pos;
			if (parse_action(ps, c, &otherwise) < 0)
				goto fail;
			has_else = true;
		}
	}
	if (!cursor_at_end(c)) {
		ERR_AT(ps, c, c->pos, "unexpected '%s'", c->s + c->pos);
		goto fail;
	}
	if (f->after_start && (then.kind == PB_ACT_LOG || (has_else && otherwise.kind == PB_ACT_LOG))) {
		ERR_AT(ps, c, then.kind == PB_ACT_LOG ? acol : ecol,
		       "log is not available after @after-start");
		goto fail;
	}
	if (nr == -2)
		goto fail;
	if (decided_here(f, nr, col, name))
		goto fail;
	lint(f, nr, name, cond, &then, col);
	if (add_entry(f, nr, cond, &then, col, text) < 0)
		return;
	if (has_else) {
		lint(f, nr, name, NULL, &otherwise, col);
		add_entry(f, nr, NULL, &otherwise, col, text);
	}
	return;
fail:
	policy_cond_free(cond);
}

/* Remove the comment and surrounding blanks; the result is the rule text. */
FILE *policy_fopen(const char *path, const char **why)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	FILE *fp;
	int e;

	if (fd < 0) {
		*why = strerror(errno);
		return NULL;
	}
	e = fstat(fd, &st) < 0 ? errno : !S_ISREG(st.st_mode) ? EINVAL
	                                                      : 0;
	if (e) {
		*why = e == EINVAL ? "not a regular file" : strerror(e);
		close(fd);
		errno = e;
		return NULL;
	}
	if (!(fp = fdopen(fd, "r"))) {
		e = errno;
		*why = strerror(e);
		close(fd);
		errno = e;
	}
	return fp;
}

static void strip_line(char *line)
{
	char *hash = strchr(line, '#');
	size_t len;

	if (hash)
		*hash = '\0';
	len = strlen(line);
	while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
		line[--len] = '\0';
}

/* The file's name for where-strings, and the @include line that read it
 * (ps->include_line, used up). */
static const char *intern_file(struct parser *ps, const char *path)
{
	struct pb_where at = ps->include_line;
	struct pb_where *where = realloc(ps->p->included_at, (ps->p->nfiles + 1) * sizeof(*where));
	char **grown;

	ps->include_line = (struct pb_where){ 0 };
	if (!where)
		return NULL;
	ps->p->included_at = where;
	where[ps->p->nfiles] = at;
	grown = realloc(ps->p->files, (ps->p->nfiles + 1) * sizeof(char *));
	if (!grown)
		return NULL;
	ps->p->files = grown;
	grown[ps->p->nfiles] = strdup(path);
	return grown[ps->p->nfiles] ? grown[ps->p->nfiles++] : NULL;
}

/* A copy of the file just interned (the last of p->files), before parsing
 * cuts it into lines: the policy cache compares it with the file later. */
static int keep_text(struct parser *ps, const char *text, size_t len)
{
	struct pb_policy *p = ps->p;
	size_t i = p->nfiles - 1;
	char **texts = realloc(p->texts, p->nfiles * sizeof(char *));

	if (!texts)
		return -ENOMEM;
	p->texts = texts;
	size_t *lens = realloc(p->text_lens, p->nfiles * sizeof(size_t));
	if (!lens)
		return -ENOMEM;
	p->text_lens = lens;
	/* Files read before this one without a text (none today) stay NULL. */
	for (size_t k = p->nkept; k < i; k++) {
		texts[k] = NULL;
		lens[k] = 0;
	}
	if (!(texts[i] = malloc(len ? len : 1)))
		return -ENOMEM;
	memcpy(texts[i], text, len);
	lens[i] = len;
	p->nkept = p->nfiles;
	return 0;
}

int policy_parse_file(struct parser *ps, const char *name, const char *path, struct chunk *out)
{
	struct file_ctx *f;
	struct cursor c = { 0 };
	struct chunk includes = { 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *fp;
	int r = 0;

	c.file = intern_file(ps, path);
	if (!c.file) {
		policy_nomem(ps, NULL);
		return -ENOMEM;
	}
	const char *why;
	fp = policy_fopen(path, &why);
	if (!fp) {
		r = -errno;
		policy_report(ps, true, path, 0, 0, "cannot read the policy: %s", why);
		return r;
	}
	text = malloc(POLICY_FILE_MAX + 1);
	f = calloc(1, sizeof(*f));
	if (!text || !f) {
		fclose(fp);
		free(text);
		free(f);
		policy_nomem(ps, NULL);
		return -ENOMEM;
	}
	len = fread(text, 1, POLICY_FILE_MAX + 1, fp);
	fclose(fp);
	if (len > POLICY_FILE_MAX) {
		policy_report(ps, true, path, 0, 0, "larger than %d bytes", POLICY_FILE_MAX);
		r = -EFBIG;
		goto out;
	}
	text[len] = '\0';
	if (memchr(text, '\0', len)) {
		policy_report(ps, true, path, 0, 0, "contains a NUL byte: not a policy file");
		r = -EINVAL;
		goto out;
	}
	if (ps->keep_texts && keep_text(ps, text, len) < 0) {
		policy_nomem(ps, NULL);
		r = -ENOMEM;
		goto out;
	}
	ps->stack[ps->depth++] = name;
	f->ps = ps;
	f->c = &c;
	for (char *line = text, *next; line && *line; line = next) {
		char *nl = strchr(line, '\n');
		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		c.line++;
		if (strlen(line) > POLICY_LINE_MAX) {
			policy_report(ps, true, path, c.line, POLICY_LINE_MAX + 1, "line longer than %d bytes",
			              POLICY_LINE_MAX);
			continue;
		}
		strip_line(line);
		c.s = line;
		c.pos = 0;
		cursor_skip_ws(&c);
		if (line[c.pos] == '\0')
			continue;
		const char *rule_text = line + c.pos;
		if (line[c.pos] == '@')
			parse_directive(f, rule_text, &includes);
		else
			parse_rule(f, rule_text);
	}
	ps->depth--;
	/* This file's rules first, then what it includes: a policy refines
	 * what it includes by putting its own rules in front. */
	if (list_append(&out->start, &f->own.start) < 0 || list_append(&out->after, &f->own.after) < 0 ||
	    list_append(&out->start, &includes.start) < 0 || list_append(&out->after, &includes.after) < 0) {
		policy_nomem(ps, NULL);
		r = -ENOMEM;
	}
	out->sandbox = f->own.sandbox;
	sandbox_merge(&out->sandbox, &includes.sandbox);
	if (f->own.has_default) {
		out->has_default = true;
		out->dflt = f->own.dflt;
		out->dflt_where = f->own.dflt_where;
	} else if (includes.has_default) {
		out->has_default = true;
		out->dflt = includes.dflt;
		out->dflt_where = includes.dflt_where;
	}
out:
	/* Empty unless an append above failed. */
	policy_list_free(&f->own.start);
	policy_list_free(&f->own.after);
	policy_list_free(&includes.start);
	policy_list_free(&includes.after);
	free(f);
	free(text);
	return r;
}
