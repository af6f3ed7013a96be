/* policy_syntax.c - the pieces of one policy line: words, actions,
 * errno names, conditions with their values and argument widths, and the
 * spelling suggestions for unknown names. policy_parse.c puts lines
 * together; see policy_syntax.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_syntax.h"

unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned row[64];

	if (la >= 63 || lb >= 63)
		return UINT_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The native syscall closest in spelling to name, or "" if none is near. */
void nearest_syscall(const char *name, char *out, size_t len)
{
	unsigned best = 4;

	*out = '\0';
	for (int nr = 0; nr < SYSCALL_NR_LIMIT; nr++) {
		char *cand = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		if (!cand)
			continue;
		unsigned d = edit_distance(name, cand);
		if (d < best) {
			best = d;
			snprintf(out, len, "%s", cand);
		}
		free(cand);
	}
}

void nearest_group(const char *name, char *out, size_t len)
{
	unsigned best = 4;

	*out = '\0';
	for (const struct pb_syscall_group *g = pb_syscall_groups; g->name; g++) {
		unsigned d = edit_distance(name, g->name);
		if (d < best) {
			best = d;
			snprintf(out, len, "%s", g->name);
		}
	}
}

void cursor_skip_ws(struct cursor *c)
{
	while (c->s[c->pos] == ' ' || c->s[c->pos] == '\t')
		c->pos++;
}

bool cursor_at_end(struct cursor *c)
{
	cursor_skip_ws(c);
	return c->s[c->pos] == '\0';
}

bool cursor_accept(struct cursor *c, const char *tok)
{
	size_t n = strlen(tok);
	cursor_skip_ws(c);
	if (strncmp(c->s + c->pos, tok, n) != 0)
		return false;
	c->pos += n;
	return true;
}

/* A word of [A-Za-z0-9_-]; returns its length (0 if none). */
size_t cursor_word(struct cursor *c, char *buf, size_t len)
{
	size_t n = 0;
	cursor_skip_ws(c);
	while (isalnum((unsigned char)c->s[c->pos + n]) || c->s[c->pos + n] == '_' ||
	       c->s[c->pos + n] == '-')
		n++;
	if (n == 0 || n >= len)
		return n >= len ? n : 0;
	memcpy(buf, c->s + c->pos, n);
	buf[n] = '\0';
	return n;
}

/* ---- actions ------------------------------------------------------------- */

int parse_errno(struct parser *ps, struct cursor *c, int *err)
{
	char w[64];
	size_t col;
	size_t n;

	cursor_skip_ws(c);
	col = c->pos;
	n = cursor_word(c, w, sizeof(w));
	if (n == 0 || n >= sizeof(w)) {
		ERR_AT(ps, c, col, "expected an errno name (EPERM, EACCES...) or number");
		return -1;
	}
	c->pos += n;
	if (isdigit((unsigned char)w[0])) {
		char *end;
		unsigned long v = strtoul(w, &end, 0);
		if (*end || v < 1 || v > 4095) {
			ERR_AT(ps, c, col, "errno '%s' is not a number from 1 to 4095", w);
			return -1;
		}
		*err = (int)v;
		return 0;
	}
	*err = pb_errno_lookup(w);
	if (*err < 0) {
		ERR_AT(ps, c, col, "unknown errno '%s'", w);
		return -1;
	}
	return 0;
}

bool is_action_word(const char *w)
{
	return !strcmp(w, "1") || !strcmp(w, "allow") || !strcmp(w, "kill") || !strcmp(w, "log") ||
	       !strcmp(w, "trap") || !strcmp(w, "return");
}

/* ACTION in a rule: 1 | allow | kill | log | trap [ERRNO] | return ERRNO */
int parse_action(struct parser *ps, struct cursor *c, struct pb_action *a)
{
	char w[32];
	size_t col, n;

	cursor_skip_ws(c);
	col = c->pos;
	n = cursor_word(c, w, sizeof(w));
	if (n == 0 || n >= sizeof(w) || !is_action_word(w)) {
		ERR_AT(ps, c, col, "expected an action: 1, allow, kill, log, trap [ERRNO] or return ERRNO");
		return -1;
	}
	c->pos += n;
	memset(a, 0, sizeof(*a));
	if (!strcmp(w, "1") || !strcmp(w, "allow")) {
		a->kind = PB_ACT_ALLOW;
	} else if (!strcmp(w, "kill")) {
		a->kind = PB_ACT_KILL;
	} else if (!strcmp(w, "log")) {
		a->kind = PB_ACT_LOG;
	} else if (!strcmp(w, "trap")) {
		a->kind = PB_ACT_TRAP;
		a->err = ENOSYS;
		if (!cursor_at_end(c) && c->s[c->pos] != ';')
			return parse_errno(ps, c, &a->err);
	} else {
		a->kind = PB_ACT_ERRNO;
		return parse_errno(ps, c, &a->err);
	}
	return 0;
}

/* @default ACTION: kill | trap [ERRNO] | log | enosys | errno NAME | return NAME */
int parse_default_action(struct parser *ps, struct cursor *c, struct pb_action *a)
{
	char w[32];
	size_t col, n;

	cursor_skip_ws(c);
	col = c->pos;
	n = cursor_word(c, w, sizeof(w));
	memset(a, 0, sizeof(*a));
	if (n > 0 && n < sizeof(w)) {
		if (!strcmp(w, "enosys")) {
			c->pos += n;
			a->kind = PB_ACT_ERRNO;
			a->err = ENOSYS;
			return 0;
		}
		if (!strcmp(w, "errno")) {
			c->pos += n;
			a->kind = PB_ACT_ERRNO;
			return parse_errno(ps, c, &a->err);
		}
		if (!strcmp(w, "1") || !strcmp(w, "allow")) {
			ERR_AT(ps, c, col, "@default %s would let every syscall the policy does not name "
			                   "through; name what may pass",
			       w);
			return -1;
		}
	}
	if (n == 0 || n >= sizeof(w) || !is_action_word(w)) {
		ERR_AT(ps, c, col, "expected a default action: kill, trap, log, enosys or errno NAME");
		return -1;
	}
	return parse_action(ps, c, a);
}

/* ---- conditions ---------------------------------------------------------- */

struct cond_builder {
	struct pb_atom atoms[64];
	size_t natoms;
	size_t clause_end[64];
	size_t nclauses;
};

/* NUMBER | -NUMBER | CONSTANT, optionally preceded by ~ (which inverts the
 * 32 bits the kernel reads when the argument is narrow) */
static int parse_term(struct parser *ps, struct cursor *c, bool narrow, uint64_t *v, bool *self_pid)
{
	bool invert = cursor_accept(c, "~");
	bool negate = false;
	char w[64];
	size_t col, n;

	cursor_skip_ws(c);
	if (c->s[c->pos] == '-' && isdigit((unsigned char)c->s[c->pos + 1])) {
		negate = true;
		c->pos++;
	}
	col = c->pos;
	n = cursor_word(c, w, sizeof(w));
	if (n == 0 || n >= sizeof(w)) {
		ERR_AT(ps, c, col, "expected a number or a constant name");
		return -1;
	}
	c->pos += n;
	if (isdigit((unsigned char)w[0])) {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(w, &end, 0);
		if (*end || errno) {
			ERR_AT(ps, c, col, "'%s' is not a number", w);
			return -1;
		}
		*v = negate ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
	} else if (!strcmp(w, "SELF_PID")) {
		if (invert) {
			ERR_AT(ps, c, col, "SELF_PID cannot be inverted");
			return -1;
		}
		*self_pid = true;
		*v = 0;
	} else if (!pb_constant_lookup(w, v)) {
		ERR_AT(ps, c, col, "unknown constant '%s'", w);
		return -1;
	}
	if (invert)
		*v = narrow && *v <= UINT32_MAX ? ~*v & UINT32_MAX : ~*v;
	return 0;
}

int parse_value(struct parser *ps, struct cursor *c, bool narrow, uint64_t *v, bool *self_pid)
{
	uint64_t acc = 0;
	size_t nterms = 0, sp_col = 0;

	*self_pid = false;
	do {
		uint64_t t;
		bool sp = false;
		cursor_skip_ws(c);
		size_t col = c->pos;
		if (parse_term(ps, c, narrow, &t, &sp) < 0)
			return -1;
		if (sp)
			sp_col = col;
		*self_pid |= sp;
		acc |= t;
		nterms++;
		cursor_skip_ws(c);
	} while (c->s[c->pos] == '|' && c->s[c->pos + 1] != '|' && (c->pos++, true));
	if (*self_pid && nterms > 1) {
		ERR_AT(ps, c, sp_col, "SELF_PID cannot be combined with '|'");
		return -1;
	}
	*v = acc;
	return 0;
}

static int parse_atom(struct parser *ps, struct cursor *c, const char *syscall,
                      struct pb_atom *a)
{
	static const struct {
		const char *tok;
		enum pb_cmp_op op;
	} ops[] = {
		{ "==", PB_OP_EQ },
		{ "!=", PB_OP_NE },
		{ "<=", PB_OP_LE },
		{ ">=", PB_OP_GE },
		{ "<", PB_OP_LT },
		{ ">", PB_OP_GT },
	};
	size_t col, vcol;
	bool found = false;
	int narrow;

	cursor_skip_ws(c);
	col = c->pos;
	if (strncmp(c->s + c->pos, "arg", 3) != 0 || !isdigit((unsigned char)c->s[c->pos + 3]) ||
	    isalnum((unsigned char)c->s[c->pos + 4])) {
		ERR_AT(ps, c, col, "expected an argument (arg0 to arg5) or an action");
		return -1;
	}
	a->arg = (uint8_t)(c->s[c->pos + 3] - '0');
	if (a->arg > 5) {
		ERR_AT(ps, c, col, "syscalls have six arguments, arg0 to arg5");
		return -1;
	}
	c->pos += 4;
	cursor_skip_ws(c);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && !found; i++)
		if (cursor_accept(c, ops[i].tok)) {
			a->op = (uint8_t)ops[i].op;
			found = true;
		}
	if (!found) {
		if (c->s[c->pos] == '&' && c->s[c->pos + 1] != '&') {
			c->pos++;
			a->op = PB_OP_ANY_BITS;
		} else if (!strncmp(c->s + c->pos, "in", 2) && !isalnum((unsigned char)c->s[c->pos + 2])) {
			c->pos += 2;
			a->op = PB_OP_ONLY_BITS;
		} else {
			ERR_AT(ps, c, c->pos, "expected a comparison: == != < <= > >= & in");
			return -1;
		}
	}
	cursor_skip_ws(c);
	vcol = c->pos;
	narrow = pb_syscall_arg_is_32bit(syscall, a->arg);
	if (parse_value(ps, c, narrow > 0, &a->value, &a->self_pid) < 0)
		return -1;
	if (narrow < 0) {
		WARN_AT(ps, c, col, "plugbox does not know how the kernel reads the arguments of '%s'; "
		                    "arg%u is compared as a 64-bit value",
		        syscall, a->arg);
		narrow = 0;
	}
	a->wide = !narrow;
	if (narrow && !a->self_pid) {
		/* The kernel reads the low 32 bits; a value that does not fit
		 * could never match what the kernel acts on. */
		int64_t sv = (int64_t)a->value;
		if (a->value > UINT32_MAX && !(sv < 0 && sv >= INT32_MIN)) {
			ERR_AT(ps, c, vcol, "value %#llx does not fit arg%u of '%s', which the kernel "
			                    "reads as 32 bits",
			       (unsigned long long)a->value, a->arg, syscall);
			return -1;
		}
		a->value &= UINT32_MAX;
	}
	return 0;
}

/* EXPR := CLAUSE ('||' CLAUSE)* ; CLAUSE := ATOM ('&&' ATOM)* */
struct pb_cond *parse_cond(struct parser *ps, struct cursor *c, const char *syscall)
{
	struct cond_builder b = { .natoms = 0 };
	struct pb_cond *cond;

	for (;;) {
		for (;;) {
			if (b.natoms == sizeof(b.atoms) / sizeof(b.atoms[0])) {
				cursor_skip_ws(c);
				ERR_AT(ps, c, c->pos, "more than 64 comparisons in one rule");
				return NULL;
			}
			if (parse_atom(ps, c, syscall, &b.atoms[b.natoms]) < 0)
				return NULL;
			b.natoms++;
			if (!cursor_accept(c, "&&"))
				break;
		}
		b.clause_end[b.nclauses++] = b.natoms;
		if (!cursor_accept(c, "||"))
			break;
	}
	cond = calloc(1, sizeof(*cond));
	if (!cond) {
		policy_nomem(ps, c);
		return NULL;
	}
	cond->atoms = malloc(b.natoms * sizeof(*cond->atoms));
	cond->clause_end = malloc(b.nclauses * sizeof(*cond->clause_end));
	if (!cond->atoms || !cond->clause_end) {
		policy_cond_free(cond);
		policy_nomem(ps, c);
		return NULL;
	}
	memcpy(cond->atoms, b.atoms, b.natoms * sizeof(*cond->atoms));
	memcpy(cond->clause_end, b.clause_end, b.nclauses * sizeof(*cond->clause_end));
	cond->natoms = b.natoms;
	cond->nclauses = b.nclauses;
	return cond;
}
