/* fuzz_policy.c - libFuzzer target for the policy language
 * (supervisor/policy_parse.c, policy_syntax.c, policy_sandbox.c) and the
 * compiler behind it (policy_compile.c).
 *
 * The parser reads files, so the input is written to files in a scratch
 * directory of this process: up to three policies, fuzz.policy, a.policy and
 * b.policy, separated by NUL bytes, then controls (see struct controls). The
 * shipped policies (PB_FUZZ_POLICIES) are copied next to them, so
 * `@include default` and friends resolve as they do for operators.
 * fuzz.policy is loaded with pb_policy_load_file, and for a quarter of the
 * inputs also with pb_policy_load: same verdict, same diagnostics. Every
 * diagnostic is one line naming a file of the policy; errors exactly when
 * the load fails.
 *
 * A policy that loads is compiled for enforcement and for learning, the
 * blob must be well formed (what the worker parses), and its programs run
 * through the classic-BPF interpreter of supervisor/policy/bpf_run.c (the
 * one check_bpf.c and `plugbox policy test` use) must give pb_policy_match's
 * verdict for calls aimed at each rule's conditions (as
 * tests/unit/check_bpf.c does for generated policies).
 *
 * Running out of memory is fuzzed too (fuzz_nomem.c): the controls can
 * make one allocation of plugbox's code fail (or every one from there on)
 * while the policy is loaded and compiled again. The load must then fail,
 * or give exactly the policy of the clean load (host function grants may
 * only go missing: a lost grant refuses, it never allows); the compiler must
 * fail or give exactly the same programs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "policy/policy.h"
#include "tests/lib/bpf_interp.h"

#ifndef PB_FUZZ_POLICIES
#error "PB_FUZZ_POLICIES: the directory of the shipped policies"
#endif

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

#define SELF_PID 1
#define MAX_COMPARISONS 256 /* per input: keeps the fuzzer fast */

/* ---- the files ---------------------------------------------------------------- */

static const char *const shipped[] = { "default", "python", "network-client", "strict" };
static const char *const ours[] = { "fuzz", "a", "b" };
static const char *dir;

static void cleanup(void)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s.policy", dir, shipped[i]);
		unlink(path);
	}
	for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s.policy", dir, ours[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void write_file(const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s.policy", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(len == 0 || write(fd, data, len) == (ssize_t)len);
	close(fd);
}

static void setup(void)
{
	char path[PATH_MAX];
	static char buf[1 << 20];
	size_t i, n;

	dir = fuzz_scratch_dir("pbfuzz-policy");
	atexit(cleanup);
	for (i = 0; i < sizeof(shipped) / sizeof(shipped[0]); i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s.policy", PB_FUZZ_POLICIES, shipped[i]);
		f = fopen(path, "r");
		if (!f) {
			perror(path);
			abort();
		}
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		write_file(shipped[i], buf, n);
	}
}

/* ---- diagnostics ---------------------------------------------------------------- */

struct diag {
	char text[1 << 16];
	size_t len;
	int errors, warnings;
};

static void collect(void *data, bool is_error, const char *line)
{
	struct diag *d = data;
	size_t n = strlen(line);

	/* One line each, naming a file of the policy. */
	FUZZ_ASSERT(n > 0 && !strchr(line, '\n'));
	FUZZ_ASSERT(strncmp(line, dir, strlen(dir)) == 0);
	FUZZ_ASSERT(is_error || strstr(line, ": warning: "));
	if (is_error)
		d->errors++;
	else
		d->warnings++;
	if (n + 2 < sizeof(d->text) - d->len) {
		memcpy(d->text + d->len, line, n);
		d->len += n;
		d->text[d->len++] = '\n';
		d->text[d->len] = '\0';
	}
}

/* ---- compiled programs --------------------------------------------------------------- */

/* What the worker reads: [u32 header, instructions]..., nothing else
 * (pb_bpf_blob_split checks the headers and the lengths). */
static unsigned split_blob(const struct pb_bpf_blob *b, struct pb_bpf_prog *progs, unsigned max)
{
	int n = pb_bpf_blob_split(b, progs, max);

	FUZZ_ASSERT(n > 0 && (unsigned)n == b->nprograms);
	return (unsigned)n;
}

static __attribute__((noreturn)) void bpf_fail(const char *what, size_t pc)
{
	fprintf(stderr, "broken BPF program: %s at instruction %zu\n", what, pc);
	abort();
}

static uint32_t run_filters(const struct pb_bpf_prog *progs, unsigned n, bool with_after,
                            const struct seccomp_data *d)
{
	return bpf_run_chain(progs, n, with_after, d, bpf_fail);
}

/* The syscalls the compiler adds rules of its own for (the guard, the
 * after-start hand-over, the listener hand-over): the matcher does not
 * know those rules, so they are no basis for comparing. */
static bool compiler_owned(int nr)
{
	return nr == __NR_rt_sigaction || nr == __NR_seccomp || nr == __NR_sendmsg;
}

struct differ {
	const struct pb_policy *p;
	struct pb_bpf_prog enforce[8], learn[8];
	unsigned nenforce, nlearn;
	unsigned compared;
};

static void compare_call(struct differ *df, int nr, const uint64_t args[6])
{
	struct seccomp_data d = { .nr = nr, .arch = NATIVE_ARCH };
	const struct pb_entry *decided;
	struct pb_action a;
	uint32_t want, got;
	char where[64], act[64];

	if (compiler_owned(nr) || df->compared >= MAX_COMPARISONS)
		return;
	df->compared++;
	memcpy(d.args, args, sizeof(d.args));
	decided = pb_policy_match(df->p, nr, args, SELF_PID, false, &a);
	if (decided) {
		FUZZ_ASSERT(decided->nr == nr);
		pb_where_format(&decided->where, where, sizeof(where));
	}
	pb_action_name(&a, act, sizeof(act));
	want = bpf_action_value(&a);
	got = run_filters(df->enforce, df->nenforce, false, &d);
	if (got != want)
		fprintf(stderr, "start-up: nr %d: program %#x, matcher %#x\n", nr, got, want);
	FUZZ_ASSERT(got == want);
	want = bpf_learn_expect(&a, decided != NULL, nr, args);
	got = run_filters(df->learn, df->nlearn, true, &d);
	if (got != want)
		fprintf(stderr, "learn: nr %d: program %#x, expected %#x\n", nr, got, want);
	FUZZ_ASSERT(got == want);
	decided = pb_policy_match(df->p, nr, args, SELF_PID, true, &a);
	FUZZ_ASSERT(!decided || decided->nr == nr);
	want = bpf_action_value(&a);
	got = run_filters(df->enforce, df->nenforce, true, &d);
	if (got != want)
		fprintf(stderr, "after start: nr %d: programs %#x, matcher %#x\n", nr, got, want);
	FUZZ_ASSERT(got == want);
}

/* Calls aimed at a rule: its syscall, each argument its conditions name at
 * the compared value, next to it, and with the high half set. */
static void compare_entry(struct differ *df, const struct pb_entry *e)
{
	uint64_t args[6] = { 0 };
	size_t i;
	int k;

	compare_call(df, e->nr, args);
	if (!e->cond)
		return;
	for (k = 0; k < 4; k++) {
		for (i = 0; i < e->cond->natoms && i < 6; i++) {
			const struct pb_atom *at = &e->cond->atoms[i];
			uint64_t v = at->self_pid ? (uint64_t)SELF_PID : at->value;
			const uint64_t pick[] = { v, v - 1, v + 1, v | 0xffffffff00000000ull, ~v, 0 };

			if (at->arg < 6)
				args[at->arg] = pick[(k + i) % 6];
		}
		compare_call(df, e->nr, args);
	}
}

static void check_compiled(const struct pb_policy *p)
{
	struct pb_bpf_blob enforce, learn;
	struct differ df = { .p = p };
	uint64_t ones[6];
	char why[256];
	int rc, rl;
	size_t i, step;

	rc = pb_policy_compile(p, SELF_PID, PB_COMPILE_ENFORCE, &enforce, why, sizeof(why));
	FUZZ_ASSERT(rc == 0 || rc == -E2BIG || rc == -ENOMEM);
	FUZZ_ASSERT((rc == 0) == (why[0] == '\0'));
	rl = pb_policy_compile(p, SELF_PID, PB_COMPILE_LEARN, &learn, why, sizeof(why));
	FUZZ_ASSERT(rl == 0 || rl == -E2BIG || rl == -ENOMEM);
	if (rc == 0 && rl == 0) {
		df.nenforce = split_blob(&enforce, df.enforce, 8);
		df.nlearn = split_blob(&learn, df.learn, 8);
		FUZZ_ASSERT(df.nenforce >= 2 && df.nlearn >= 2);
		/* Rules spread over the policy, then calls no rule names. */
		step = p->start.n / (MAX_COMPARISONS / 10) + 1;
		for (i = 0; i < p->start.n; i += step)
			compare_entry(&df, &p->start.v[i]);
		step = p->after.n / (MAX_COMPARISONS / 20) + 1;
		for (i = 0; i < p->after.n; i += step)
			compare_entry(&df, &p->after.v[i]);
		memset(ones, 0xff, sizeof(ones));
		compare_call(&df, __NR_getppid, ones);
		compare_call(&df, __NR_ptrace, ones);
	}
	if (rc == 0)
		pb_bpf_blob_free(&enforce);
	if (rl == 0)
		pb_bpf_blob_free(&learn);
}

static void check_loaded(const struct pb_policy *p)
{
	char buf[128];
	size_t i;
	int l;

	FUZZ_ASSERT(p->name && p->path && p->nfiles >= 1);
	for (i = 0; i < p->start.n + p->after.n; i++) {
		const struct pb_entry *e = i < p->start.n ? &p->start.v[i] : &p->after.v[i - p->start.n];

		FUZZ_ASSERT(e->nr >= 0 && e->text && e->where.file && e->where.line > 0);
		pb_where_format(&e->where, buf, sizeof(buf));
		pb_action_name(&e->action, buf, sizeof(buf));
		FUZZ_ASSERT(!e->cond || (e->cond->nclauses > 0 &&
		                         e->cond->clause_end[e->cond->nclauses - 1] == e->cond->natoms));
	}
	for (l = 0; l < PB_LIMIT_COUNT; l++)
		FUZZ_ASSERT(pb_limit_format((enum pb_limit)l, p->sandbox.limit[l], buf, sizeof(buf)) &&
		            buf[0] != '\0');
	for (i = 0; i < p->sandbox.ngrants; i++) {
		const struct pb_grant *g = pb_policy_host_grant(p, p->sandbox.grants[i].name);

		FUZZ_ASSERT(pb_host_name_valid(p->sandbox.grants[i].name));
		FUZZ_ASSERT(g && strcmp(g->name, p->sandbox.grants[i].name) == 0);
	}
	check_compiled(p);
}

/* What the bytes after the third NUL say. */
struct controls {
	unsigned long fail_at; /* byte 0: the allocation that fails (0: none) */
	bool sticky;           /* byte 1, bit 0: and every one after it */
};                             /* bytes 2...: appended to fuzz.policy after a NUL */

/* ---- the same policy? ----------------------------------------------------------- */

static bool same_cond(const struct pb_cond *a, const struct pb_cond *b)
{
	if (!a || !b)
		return a == b;
	if (a->natoms != b->natoms || a->nclauses != b->nclauses ||
	    memcmp(a->clause_end, b->clause_end, a->nclauses * sizeof(*a->clause_end)) != 0)
		return false;
	for (size_t i = 0; i < a->natoms; i++) {
		const struct pb_atom *x = &a->atoms[i], *y = &b->atoms[i];

		if (x->arg != y->arg || x->op != y->op || x->wide != y->wide ||
		    x->self_pid != y->self_pid || x->value != y->value)
			return false;
	}
	return true;
}

static bool same_where(const struct pb_where *a, const struct pb_where *b)
{
	if (!a->file || !b->file)
		return a->file == b->file;
	return strcmp(a->file, b->file) == 0 && a->line == b->line && a->col == b->col;
}

static bool same_list(const struct pb_entry_list *a, const struct pb_entry_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct pb_entry *x = &a->v[i], *y = &b->v[i];

		if (x->nr != y->nr || x->action.kind != y->action.kind || x->action.err != y->action.err ||
		    !same_where(&x->where, &y->where) || strcmp(x->text, y->text) != 0 ||
		    !same_cond(x->cond, y->cond))
			return false;
	}
	return true;
}

/* What a load under allocation failures may give: the clean load's policy,
 * with at most some host function grants missing. */
static void check_same_policy(const struct pb_policy *p, const struct pb_policy *q)
{
	const struct pb_sandbox *a = &p->sandbox, *b = &q->sandbox;
	size_t i;

	FUZZ_ASSERT(same_list(&p->start, &q->start) && same_list(&p->after, &q->after));
	FUZZ_ASSERT(p->dflt.kind == q->dflt.kind && p->dflt.err == q->dflt.err);
	FUZZ_ASSERT(same_where(&p->dflt_where, &q->dflt_where));
	FUZZ_ASSERT(p->nincludes == q->nincludes);
	for (i = 0; i < p->nincludes; i++)
		FUZZ_ASSERT(strcmp(p->includes[i], q->includes[i]) == 0);
	FUZZ_ASSERT(memcmp(a->limit, b->limit, sizeof(a->limit)) == 0);
	FUZZ_ASSERT(memcmp(a->layer, b->layer, sizeof(a->layer)) == 0);
	FUZZ_ASSERT(a->network == b->network && a->scratch == b->scratch);
	FUZZ_ASSERT(b->ngrants <= a->ngrants);
	for (i = 0; i < b->ngrants; i++)
		FUZZ_ASSERT(pb_policy_host_grant(p, b->grants[i].name) != NULL);
}

/* The programs of p, compiled while allocations fail, are the clean ones or
 * nothing. */
static void check_compile_nomem(const struct pb_policy *p, const struct controls *ctl)
{
	static const enum pb_compile_mode modes[] = { PB_COMPILE_ENFORCE, PB_COMPILE_LEARN };

	for (size_t m = 0; m < 2; m++) {
		struct pb_bpf_blob clean, hurt;
		char why[256];
		int rc, rh;

		rc = pb_policy_compile(p, SELF_PID, modes[m], &clean, why, sizeof(why));
		fuzz_nomem_arm(ctl->fail_at, ctl->sticky);
		rh = pb_policy_compile(p, SELF_PID, modes[m], &hurt, why, sizeof(why));
		fuzz_nomem_disarm();
		if (rh == 0) {
			FUZZ_ASSERT(rc == 0 && hurt.len == clean.len && hurt.nprograms == clean.nprograms);
			FUZZ_ASSERT(memcmp(hurt.data, clean.data, clean.len) == 0);
			pb_bpf_blob_free(&hurt);
		} else {
			FUZZ_ASSERT(rh == -ENOMEM || rh == rc);
			FUZZ_ASSERT(why[0] != '\0');
		}
		if (rc == 0)
			pb_bpf_blob_free(&clean);
	}
}

/* Splits the input into the three files (an absent part is no file) and
 * the controls. */
static void write_input(const uint8_t *data, size_t size, struct controls *ctl)
{
	const uint8_t *end = data + size, *nul;
	char path[PATH_MAX];
	unsigned part;

	memset(ctl, 0, sizeof(*ctl));
	for (part = 0; part < 3; part++) {
		if (!data) {
			snprintf(path, sizeof(path), "%s/%s.policy", dir, ours[part]);
			unlink(path);
			continue;
		}
		nul = memchr(data, '\0', (size_t)(end - data));
		write_file(ours[part], data, (size_t)((nul ? nul : end) - data));
		data = nul ? nul + 1 : NULL;
	}
	if (!data || data == end)
		return;
	ctl->fail_at = data[0];
	if (end - data > 1)
		ctl->sticky = data[1] & 1;
	if (end - data > 2) {
		/* A NUL byte inside fuzz.policy, then the rest. */
		static const uint8_t nul_byte;
		int fd;

		snprintf(path, sizeof(path), "%s/fuzz.policy", dir);
		fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
		FUZZ_ASSERT(fd >= 0);
		FUZZ_ASSERT(write(fd, &nul_byte, 1) == 1);
		FUZZ_ASSERT(write(fd, data + 2, (size_t)(end - data - 2)) == end - data - 2);
		close(fd);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct diag d1, d2;
	struct pb_policy *p = NULL, *q = NULL;
	struct controls ctl;
	char path[PATH_MAX];
	unsigned long failed;
	int r1, r2;

	if (!dir)
		setup();
	write_input(data, size, &ctl);
	snprintf(path, sizeof(path), "%s/fuzz.policy", dir);

	memset(&d1, 0, sizeof(d1));
	r1 = pb_policy_load_file(path, collect, &d1, &p);
	FUZZ_ASSERT((r1 == 0) == (p != NULL));
	FUZZ_ASSERT(r1 == 0 ? d1.errors == 0 : d1.errors > 0);
	if (size % 4 == 0) {
		memset(&d2, 0, sizeof(d2));
		r2 = pb_policy_load(dir, "fuzz", collect, &d2, &q);
		FUZZ_ASSERT(r2 == r1 && (r2 == 0) == (q != NULL));
		FUZZ_ASSERT(d1.errors == d2.errors && d1.warnings == d2.warnings);
		FUZZ_ASSERT(strcmp(d1.text, d2.text) == 0);
		pb_policy_free(q);
		q = NULL;
	}
	if (p)
		check_loaded(p);

	if (ctl.fail_at > 0) {
		memset(&d2, 0, sizeof(d2));
		fuzz_nomem_arm(ctl.fail_at, ctl.sticky);
		r2 = pb_policy_load_file(path, collect, &d2, &q);
		failed = fuzz_nomem_disarm();
		FUZZ_ASSERT((r2 == 0) == (q != NULL));
		if (failed == 0) {
			FUZZ_ASSERT(r2 == r1);
		} else if (r2 == 0) {
			FUZZ_ASSERT(r1 == 0);
			check_same_policy(p, q);
		} else {
			/* Failed, and said why. */
			FUZZ_ASSERT(d2.errors > 0);
		}
		pb_policy_free(q);
		if (p)
			check_compile_nomem(p, &ctl);
	}
	pb_policy_free(p);
	return 0;
}
