/* policy_expect.c - expectation files (policy_expect.h): rows read with the
 * policy language's own pieces (policy_syntax.c: values, constants, errno
 * names, spelling hints), and each row run through the compiled filter by
 * the shared interpreter (bpf_run.c). The compiled filter, not the
 * matcher, is what the kernel enforces: that is what a row checks.
 */
#include "config.h"

#include <errno.h>
#include <linux/audit.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_expect.h"
#include "policy/policy_syntax.h"

#define EXPECT_ROWS_MAX 100000

/* The ABIs a row may name: the native one first. */
struct abi {
	const char *name;
	uint32_t token; /* for libseccomp's name lookup */
	uint32_t arch;  /* what seccomp_data.arch says */
};
static const struct abi abis[] = {
#if defined(__x86_64__)
	{ "x86_64", SCMP_ARCH_X86_64, AUDIT_ARCH_X86_64 },
	{ "x32", SCMP_ARCH_X32, AUDIT_ARCH_X86_64 }, /* the number carries the x32 bit */
	{ "i386", SCMP_ARCH_X86, AUDIT_ARCH_I386 },
#elif defined(__aarch64__)
	{ "aarch64", SCMP_ARCH_AARCH64, AUDIT_ARCH_AARCH64 },
	{ "arm", SCMP_ARCH_ARM, AUDIT_ARCH_ARM },
#endif
};
#define NABIS (sizeof(abis) / sizeof(abis[0]))

static const char *abi_list(void)
{
#if defined(__x86_64__)
	return "x86_64, x32 or i386";
#else
	return "aarch64 or arm";
#endif
}

/* What one row names before its outcome: a call, or a group of them. */
struct named {
	const struct abi *abi;
	char name[64]; /* syscall or group (without '@') */
	bool group;
	struct pb_expect_call call; /* args, self_pid_args; arch and nr for a syscall */
};

/* [ABI:]SYSCALL[(ARG, ...)] or @GROUP. */
static int parse_named(struct parser *ps, struct cursor *c, bool allow_group, struct named *out)
{
	size_t col, n;
	char w[64];

	memset(out, 0, sizeof(*out));
	out->abi = &abis[0];
	cursor_skip_ws(c);
	col = c->pos;
	if (c->s[c->pos] == '@') {
		c->pos++;
		n = cursor_word(c, w, sizeof(w));
		if (!allow_group) {
			ERR_AT(ps, c, col, "name one syscall here, not a group");
			return -1;
		}
		if (n == 0 || n >= sizeof(w) || !pb_syscall_group_find(w)) {
			char near[64];
			if (n == 0 || n >= sizeof(w))
				w[0] = '\0';
			nearest_group(w, near, sizeof(near));
			if (*near)
				ERR_AT(ps, c, col, "unknown group '@%s'; did you mean '@%s'?", w, near);
			else
				ERR_AT(ps, c, col, "unknown group '@%s' (`plugbox policy groups` lists them)", w);
			return -1;
		}
		c->pos += n;
		snprintf(out->name, sizeof(out->name), "%s", w);
		out->group = true;
		if (c->s[c->pos] == '(') {
			ERR_AT(ps, c, c->pos, "a @group row takes no arguments: write one row per syscall");
			return -1;
		}
		return 0;
	}
	n = cursor_word(c, w, sizeof(w));
	if (n == 0 || n >= sizeof(w)) {
		ERR_AT(ps, c, col, "expected a syscall name, [ABI:]SYSCALL[(ARG, ...)], or a @group");
		return -1;
	}
	c->pos += n;
	if (c->s[c->pos] == ':') {
		out->abi = NULL;
		for (size_t i = 0; i < NABIS; i++)
			if (!strcmp(abis[i].name, w))
				out->abi = &abis[i];
		if (!out->abi) {
			ERR_AT(ps, c, col, "unknown ABI '%s'; this machine's are %s", w, abi_list());
			return -1;
		}
		c->pos++;
		col = c->pos;
		n = cursor_word(c, w, sizeof(w));
		if (n == 0 || n >= sizeof(w)) {
			ERR_AT(ps, c, col, "expected a syscall name after '%s:'", out->abi->name);
			return -1;
		}
		c->pos += n;
	}
	snprintf(out->name, sizeof(out->name), "%s", w);
	out->call.arch = out->abi->arch;
	out->call.nr = seccomp_syscall_resolve_name_arch(out->abi->token, w);
	if (out->call.nr < 0) {
		char near[64];
		nearest_syscall(w, near, sizeof(near));
		if (seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, w) >= 0)
			ERR_AT(ps, c, col, "the %s ABI has no syscall '%s'", out->abi->name, w);
		else if (*near)
			ERR_AT(ps, c, col, "unknown syscall '%s'; did you mean '%s'?", w, near);
		else
			ERR_AT(ps, c, col, "unknown syscall '%s'", w);
		return -1;
	}
	if (c->s[c->pos] != '(')
		return 0;
	c->pos++;
	cursor_skip_ws(c);
	if (c->s[c->pos] == ')') {
		c->pos++;
		return 0;
	}
	for (unsigned i = 0;; i++) {
		bool self = false;
		cursor_skip_ws(c);
		if (i == 6) {
			ERR_AT(ps, c, c->pos, "syscalls have six arguments at most");
			return -1;
		}
		if (parse_value(ps, c, false, &out->call.args[i], &self) < 0)
			return -1;
		if (self)
			out->call.self_pid_args |= 1u << i;
		cursor_skip_ws(c);
		if (c->s[c->pos] == ',') {
			c->pos++;
			continue;
		}
		if (c->s[c->pos] == ')') {
			c->pos++;
			return 0;
		}
		ERR_AT(ps, c, c->pos, "expected ',' or ')' after argument %u", i);
		return -1;
	}
}

/* allow | kill | log | trap [ERRNO] | errno ERRNO */
static int parse_outcome(struct parser *ps, struct cursor *c, struct pb_action *a, bool *any_err)
{
	static const char hint[] = "expected an outcome: allow, kill, log, trap [ERRNO] or errno ERRNO";
	char w[32];
	size_t col, n;

	cursor_skip_ws(c);
	col = c->pos;
	n = cursor_word(c, w, sizeof(w));
	memset(a, 0, sizeof(*a));
	*any_err = false;
	if (n == 0 || n >= sizeof(w)) {
		ERR_AT(ps, c, col, "%s", hint);
		return -1;
	}
	c->pos += n;
	if (!strcmp(w, "allow")) {
		a->kind = PB_ACT_ALLOW;
	} else if (!strcmp(w, "kill")) {
		a->kind = PB_ACT_KILL;
	} else if (!strcmp(w, "log")) {
		a->kind = PB_ACT_LOG;
	} else if (!strcmp(w, "trap")) {
		a->kind = PB_ACT_TRAP;
		if (cursor_at_end(c))
			*any_err = true;
		else
			return parse_errno(ps, c, &a->err);
	} else if (!strcmp(w, "errno") || !strcmp(w, "return")) {
		a->kind = PB_ACT_ERRNO;
		return parse_errno(ps, c, &a->err);
	} else {
		ERR_AT(ps, c, col, "unknown outcome '%s'; %s", w, hint);
		return -1;
	}
	return 0;
}

static int add_row(struct pb_expect_set *set, const char *file, unsigned line, const char *label,
                   const char *text, const struct pb_expect_call *call, const struct pb_action *want,
                   bool any_err)
{
	struct pb_expect_row *r;

	if (set->n == set->cap) {
		size_t cap = set->cap ? 2 * set->cap : 64;
		struct pb_expect_row *v = realloc(set->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		set->v = v;
		set->cap = cap;
	}
	r = &set->v[set->n];
	*r = (struct pb_expect_row){ .file = file, .line = line, .call = *call, .want = *want, .any_err = any_err };
	r->label = strdup(label);
	r->text = strdup(text);
	if (!r->label || !r->text) {
		free(r->label);
		free(r->text);
		return -ENOMEM;
	}
	set->n++;
	return 0;
}

/* A group's members in one ABI, nested groups expanded; members the ABI
 * lacks are left out (as pb_syscall_group_numbers does). */
static int add_group(struct pb_expect_set *set, const char *file, unsigned line, const char *text,
                     const struct abi *abi, const struct pb_syscall_group *g, const char *top,
                     const struct pb_action *want, bool any_err, int depth)
{
	for (const char *const *m = g->members; *m; m++) {
		if (**m == '@') {
			const struct pb_syscall_group *sub = pb_syscall_group_find(*m + 1);
			if (sub && depth < 4) {
				int r = add_group(set, file, line, text, abi, sub, top, want, any_err, depth + 1);
				if (r < 0)
					return r;
			}
			continue;
		}
		struct pb_expect_call call = { .arch = abi->arch };
		char label[160];
		call.nr = seccomp_syscall_resolve_name_arch(abi->token, *m);
		if (call.nr < 0)
			continue;
		snprintf(label, sizeof(label), "@%s: %s", top, *m);
		if (set->n >= EXPECT_ROWS_MAX)
			return -E2BIG;
		int r = add_row(set, file, line, label, text, &call, want, any_err);
		if (r < 0)
			return r;
	}
	return 0;
}

static const char *intern(struct pb_expect_set *set, const char *path)
{
	char **grown = realloc(set->files, (set->nfiles + 1) * sizeof(char *));
	if (!grown)
		return NULL;
	set->files = grown;
	grown[set->nfiles] = strdup(path);
	return grown[set->nfiles] ? grown[set->nfiles++] : NULL;
}

int pb_expect_load(const char *path, pb_policy_diag_fn diag, void *data, struct pb_expect_set *set)
{
	struct parser ps = { .diag = diag, .diag_data = data };
	struct cursor c = { 0 };
	char *text;
	size_t len;
	FILE *fp;
	int r = 0;

	c.file = intern(set, path);
	if (!c.file)
		return -ENOMEM;
	const char *why;
	fp = policy_fopen(path, &why);
	if (!fp) {
		r = -errno;
		policy_report(&ps, true, path, 0, 0, "cannot read the expectations: %s", why);
		return r;
	}
	text = malloc(POLICY_FILE_MAX + 1);
	if (!text) {
		fclose(fp);
		return -ENOMEM;
	}
	len = fread(text, 1, POLICY_FILE_MAX + 1, fp);
	fclose(fp);
	if (len > POLICY_FILE_MAX) {
		policy_report(&ps, true, path, 0, 0, "larger than %d bytes", POLICY_FILE_MAX);
		free(text);
		return -EFBIG;
	}
	text[len] = '\0';
	if (memchr(text, '\0', len)) {
		policy_report(&ps, true, path, 0, 0, "contains a NUL byte: not an expectation file");
		free(text);
		return -EINVAL;
	}
	for (char *line = text, *next; line && *line && r != -ENOMEM; line = next) {
		char *nl = strchr(line, '\n'), *hash;
		struct named named;
		struct pb_action want;
		bool any_err;
		size_t end;

		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		c.line++;
		if (strlen(line) > POLICY_LINE_MAX) {
			policy_report(&ps, true, path, c.line, POLICY_LINE_MAX + 1, "line longer than %d bytes",
			              POLICY_LINE_MAX);
			continue;
		}
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		end = strlen(line);
		while (end && (line[end - 1] == ' ' || line[end - 1] == '\t' || line[end - 1] == '\r'))
			line[--end] = '\0';
		c.s = line;
		c.pos = 0;
		if (cursor_at_end(&c))
			continue;
		const char *row_text = line + c.pos;
		if (parse_named(&ps, &c, true, &named) < 0 || parse_outcome(&ps, &c, &want, &any_err) < 0)
			continue;
		if (!cursor_at_end(&c)) {
			ERR_AT(&ps, &c, c.pos, "unexpected text after the outcome (a comment starts with '#')");
			continue;
		}
		if (named.group) {
			r = add_group(set, c.file, c.line, row_text, named.abi, pb_syscall_group_find(named.name),
			              named.name, &want, any_err, 0);
		} else {
			char label[128];
			if (named.abi == &abis[0])
				snprintf(label, sizeof(label), "%s", named.name);
			else
				snprintf(label, sizeof(label), "%s:%s", named.abi->name, named.name);
			r = set->n >= EXPECT_ROWS_MAX ? -E2BIG
			                              : add_row(set, c.file, c.line, label, row_text, &named.call, &want, any_err);
		}
		if (r == -E2BIG) {
			ERR_AT(&ps, &c, 0, "more than %d expectations", EXPECT_ROWS_MAX);
			break;
		}
		if (r == -ENOMEM)
			ERR_AT(&ps, &c, 0, "out of memory");
	}
	free(text);
	if (r < 0)
		return r;
	return ps.errors ? -EINVAL : 0;
}

void pb_expect_free(struct pb_expect_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i].label);
		free(set->v[i].text);
	}
	for (size_t i = 0; i < set->nfiles; i++)
		free(set->files[i]);
	free(set->files);
	free(set->v);
	memset(set, 0, sizeof(*set));
}

int pb_expect_parse_call(const char *text, const char *where, pb_policy_diag_fn diag, void *data,
                         struct pb_expect_call *call)
{
	struct parser ps = { .diag = diag, .diag_data = data };
	struct cursor c = { .file = where, .s = text, .line = 1 };
	struct named named;

	if (parse_named(&ps, &c, false, &named) < 0)
		return -EINVAL;
	if (!cursor_at_end(&c)) {
		ERR_AT(&ps, &c, c.pos, "unexpected text after the syscall");
		return -EINVAL;
	}
	*call = named.call;
	return 0;
}

int pb_expect_run(const struct pb_bpf_prog *progs, unsigned n, const struct pb_expect_call *call,
                  int32_t self_pid, bool after_start, struct pb_action *got, bool *silent,
                  struct pb_bpf_fault *fault)
{
	struct seccomp_data d = { .nr = call->nr, .arch = call->arch };
	uint32_t ret;
	int r;

	for (unsigned i = 0; i < 6; i++)
		d.args[i] = (call->self_pid_args & (1u << i)) ? (uint64_t)(int64_t)self_pid : call->args[i];
	r = pb_bpf_run_chain(progs, n, after_start, &d, &ret, fault);
	if (r < 0)
		return r;
	if (pb_bpf_verdict_action(ret, got, silent) < 0) {
		fault->what = "a return value the compiler does not emit";
		fault->pc = 0;
		return -EINVAL;
	}
	return 0;
}

bool pb_expect_met(const struct pb_expect_row *row, const struct pb_action *got)
{
	if (got->kind != row->want.kind)
		return false;
	if (got->kind == PB_ACT_ERRNO || (got->kind == PB_ACT_TRAP && !row->any_err))
		return got->err == row->want.err;
	return true;
}

const char *pb_expect_outcome(const struct pb_action *a, bool any_err, char *buf, size_t len)
{
	const char *e = a->err ? strerrorname_np(a->err) : NULL;
	char num[16];

	if (!e) {
		snprintf(num, sizeof(num), "%d", a->err);
		e = num;
	}
	switch (a->kind) {
	case PB_ACT_ALLOW: snprintf(buf, len, "allow"); break;
	case PB_ACT_ERRNO: snprintf(buf, len, "errno %s", e); break;
	case PB_ACT_LOG: snprintf(buf, len, "log"); break;
	case PB_ACT_TRAP: snprintf(buf, len, any_err ? "trap" : "trap %s", e); break;
	case PB_ACT_KILL: snprintf(buf, len, "kill"); break;
	}
	return buf;
}

void pb_expect_call_format(const struct pb_expect_call *call, char *buf, size_t len)
{
	pb_format_syscall(call->nr, call->arch, call->args, buf, len);
}
