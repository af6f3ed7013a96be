/* policy_syntax.h - what the two halves of the policy parser share:
 * policy_parse.c reads files, lines, includes and directives; policy_syntax.c
 * reads the pieces of one line (words, actions, conditions) and spells
 * suggestions. Internal to the supervisor. */
#ifndef PLUGBOX_POLICY_SYNTAX_H
#define PLUGBOX_POLICY_SYNTAX_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#define POLICY_FILE_MAX 1048576 /* 1 MiB */
#define POLICY_LINE_MAX 4096
#define POLICY_INCLUDE_DEPTH 16
#define POLICY_ENTRIES_MAX 20000
#define POLICY_ERRORS_MAX 50
#define POLICY_GRANTS_MAX 1024 /* @host-call names in one file */
#define SYSCALL_NR_LIMIT 1024

/* One file's contribution: its own rules, then what it includes. */
struct chunk {
	struct pb_entry_list start, after;
	bool has_default;
	struct pb_action dflt;
	struct pb_where dflt_where;
	struct pb_sandbox sandbox; /* only the settings with a where.file are set */
};

struct parser {
	const char *dir;
	pb_policy_diag_fn diag;
	void *diag_data;
	struct pb_policy *p;
	int errors;
	const char *stack[POLICY_INCLUDE_DEPTH]; /* names being read, for cycles */
	size_t depth;
	size_t nentries;
	bool nomem;                   /* memory ran out: the load fails with -ENOMEM */
	struct pb_where include_line; /* the @include of the file read next (file NULL: none) */
	bool keep_texts;              /* keep every file's bytes in p->texts (policy_cache.c) */
};

/* The line being parsed. */
struct cursor {
	const char *file;
	const char *s;
	size_t pos;
	unsigned line;
};

/* Read the policy file at path, and what it includes, into out
 * (policy_parse.c); errors go to ps's diag. */
int policy_parse_file(struct parser *ps, const char *name, const char *path, struct chunk *out);
/* fopen(path, "r") for a regular file only, never waiting: a FIFO or a
 * device named as a policy would hold the supervisor in open(2) until a
 * writer came, or in read(2) for ever. NULL with errno set and *why the
 * reason ("not a regular file" for the rest). */
FILE *policy_fopen(const char *path, const char **why);
/* Free l's entries and their conditions. */
void policy_list_free(struct pb_entry_list *l);

/* pb_policy_load, keeping every file's bytes in p->texts (policy_cache.c). */
int policy_load_keeping_texts(const char *dir, const char *name, pb_policy_diag_fn diag, void *data,
                              struct pb_policy **out);

void policy_report(struct parser *ps, bool is_error, const char *file, unsigned line, unsigned col,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define ERR_AT(ps, c, col, ...) policy_report((ps), true, (c)->file, (c)->line, (unsigned)(col) + 1, __VA_ARGS__)
#define WARN_AT(ps, c, col, ...) policy_report((ps), false, (c)->file, (c)->line, (unsigned)(col) + 1, __VA_ARGS__)

void policy_cond_free(struct pb_cond *c);
/* Memory ran out while reading: reported (at c's position, or on the
 * policy when c is NULL) and remembered, so that a policy never loads with
 * a rule or an include silently missing. */
void policy_nomem(struct parser *ps, const struct cursor *c);

/* The cursor: blanks, the end of the line, a literal token, a word of
 * [A-Za-z0-9_-] (its length; 0 if none). */
void cursor_skip_ws(struct cursor *c);
bool cursor_at_end(struct cursor *c);
bool cursor_accept(struct cursor *c, const char *tok);
size_t cursor_word(struct cursor *c, char *buf, size_t len);

/* Spelling help for unknown names: "" when nothing is near. */
unsigned edit_distance(const char *a, const char *b);
void nearest_syscall(const char *name, char *out, size_t len);
void nearest_group(const char *name, char *out, size_t len);

/* The pieces of a rule. Each returns 0, or -1 after reporting. */
int parse_errno(struct parser *ps, struct cursor *c, int *err);
bool is_action_word(const char *w);
int parse_action(struct parser *ps, struct cursor *c, struct pb_action *a);
int parse_default_action(struct parser *ps, struct cursor *c, struct pb_action *a);
/* A value: TERM ('|' TERM)*, a term being NUMBER, -NUMBER, CONSTANT or
 * SELF_PID (*self_pid, alone), optionally preceded by ~. Also the
 * arguments of an expectation row (policy_expect.c). */
int parse_value(struct parser *ps, struct cursor *c, bool narrow, uint64_t *v, bool *self_pid);
/* A condition for `syscall` (its argument widths decide the comparisons);
 * NULL after reporting. */
struct pb_cond *parse_cond(struct parser *ps, struct cursor *c, const char *syscall);

/* policy_sandbox.c: the rest of the line after @limit, @layer, @network,
 * @scratch, @proc and @host-call (col: where the '@' is, 1-based), into
 * `own`. Each reports its own errors; whether the directive may come
 * twice is the directive table's business (policy_parse.c), except for
 * @limit and @layer, which may come once per name. */
typedef void sandbox_directive_fn(struct parser *ps, struct cursor *c, size_t col, struct pb_sandbox *own);
sandbox_directive_fn sandbox_limit, sandbox_layer, sandbox_network, sandbox_scratch, sandbox_scratch_exec, sandbox_proc,
        sandbox_host_call, sandbox_fresh_per_call, sandbox_replicas;
/* Fill what `dst` does not set from `src`, and add src's grants that dst
 * lacks after dst's own; src's grants are used up either way. */
void sandbox_merge(struct pb_sandbox *dst, struct pb_sandbox *src);
/* Free the grants and destinations. */
void sandbox_free(struct pb_sandbox *s);
/* policy_net.c: the @network setting and its destinations, merged as
 * sandbox_merge says (src's destinations are used up either way), freed. */
void net_merge(struct pb_sandbox *dst, struct pb_sandbox *src);
void net_free(struct pb_sandbox *s);
/* Built-in values for what no file set. */
void sandbox_fill_defaults(struct pb_sandbox *s);

#endif
