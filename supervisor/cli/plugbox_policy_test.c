/* plugbox_policy_test.c - `plugbox policy test` and `plugbox policy
 * explain` (issue 24): a policy judged by its compiled filter, without any
 * plugin. Rows of expectation files (policy/policy_expect.h) run through
 * the same interpreter the unit tests and the fuzzer use
 * (policy/bpf_run.c); the rule that decided comes from the matcher
 * (pb_policy_match), which names the file and line.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plugbox_cli.h"
#include "cli/test_report.h"
#include "policy/policy_expect.h"

/* The pid the filter is compiled for; SELF_PID in a row stands for it. */
#define TEST_SELF_PID 2

static void print_diag(void *data, bool is_error, const char *line)
{
	(void)data;
	(void)is_error;
	fprintf(stderr, "%s\n", line);
}

/* A policy NAME in the policies directory, or a path to a file. */
static int load_policy(const char *dir, const char *arg, struct pb_policy **p)
{
	size_t len = strlen(arg);
	const char *env = getenv("PLUGBOX_POLICIES");

	if (strchr(arg, '/') || (len > 7 && !strcmp(arg + len - 7, ".policy")))
		return pb_policy_load_file(arg, print_diag, NULL, p);
	if (!dir)
		dir = env && *env ? env : PB_POLICIES_DIR;
	return pb_policy_load(dir, arg, print_diag, NULL, p);
}

/* The compiled programs of p, in *blob and progs: how many, or -1 after
 * saying why. */
static int compile(const struct pb_policy *p, struct pb_bpf_blob *blob, struct pb_bpf_prog *progs,
                   unsigned max)
{
	char why[256] = "";
	int n;

	if (pb_policy_compile(p, TEST_SELF_PID, PB_COMPILE_ENFORCE, blob, why, sizeof(why)) < 0) {
		fprintf(stderr, "plugbox: %s\n", why);
		return -1;
	}
	n = pb_bpf_blob_split(blob, progs, max);
	if (n <= 0) {
		fprintf(stderr, "plugbox: policy '%s' compiled to a malformed blob\n", p->name);
		pb_bpf_blob_free(blob);
		return -1;
	}
	return n;
}

/* What decided, as a reader finds it: "the built-in guard ...", or
 * "rule 'TEXT' at FILE:LINE", or "@default at FILE:LINE". */
static void decider(const struct pb_policy *p, const struct pb_expect_call *call, bool silent,
                    bool after_start, char *buf, size_t len)
{
	struct pb_action act;
	uint64_t args[6];
	char where[300];

	if (!pb_native_arch(call->arch, call->nr)) {
		snprintf(buf, len, "the built-in guard, which kills every call through the %s entry point",
		         pb_arch_name(call->arch, call->nr));
		return;
	}
	if (silent) {
		snprintf(buf, len, "the built-in guard, which ends a plugin that replaces its SIGSYS handler");
		return;
	}
	for (unsigned i = 0; i < 6; i++)
		args[i] = (call->self_pid_args & (1u << i)) ? TEST_SELF_PID : call->args[i];
	const struct pb_entry *e = pb_policy_match(p, call->nr, args, TEST_SELF_PID, after_start, &act);
	if (e && e->where.file) {
		pb_where_format(&e->where, where, sizeof(where));
		snprintf(buf, len, "rule '%s' at %s", e->text, where);
	} else if (e) {
		snprintf(buf, len, "%s", e->text);
	} else if (p->dflt_where.file) {
		pb_where_format(&p->dflt_where, where, sizeof(where));
		snprintf(buf, len, "@default at %s", where);
	} else {
		snprintf(buf, len, "the built-in @default (kill)");
	}
}

/* ---- policy test ---------------------------------------------------------- */

int pb_cmd_policy_test(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "policies", required_argument, NULL, 'P' },
		{ "junit", required_argument, NULL, 'j' },
		{ "tap", no_argument, NULL, 't' },
		{ "start-up", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *junit = NULL;
	bool tap = false, after_start = true;
	struct pb_policy *p = NULL;
	struct pb_expect_set set = { 0 };
	struct pb_bpf_blob blob;
	struct pb_bpf_prog progs[8];
	struct pb_test_report *rep;
	size_t failed = 0;
	int c, n, code = PB_EXIT_OK;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'P': dir = optarg; break;
		case 'j': junit = optarg; break;
		case 't': tap = true; break;
		case 's': after_start = false; break;
		default: return pb_usage_error("policy test: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind < 2)
		return pb_usage_error("policy test needs a policy NAME or FILE and EXPECT_FILE...%s", "");
	if (load_policy(dir, argv[optind], &p) < 0)
		return PB_EXIT_USAGE;
	for (int i = optind + 1; i < argc; i++)
		if (pb_expect_load(argv[i], print_diag, NULL, &set) < 0)
			code = PB_EXIT_USAGE;
	if (code != PB_EXIT_OK || (n = compile(p, &blob, progs, 8)) < 0) {
		pb_expect_free(&set);
		pb_policy_free(p);
		return PB_EXIT_USAGE;
	}
	rep = pb_test_report_new("plugbox policy test", p->name);
	for (size_t i = 0; i < set.n && rep; i++) {
		const struct pb_expect_row *row = &set.v[i];
		struct pb_action got;
		struct pb_bpf_fault fault;
		char want_s[64], got_s[64], who[600], call_s[300], name[400], msg[1400];
		bool silent;

		snprintf(name, sizeof(name), "%s:%u: %s", row->file, row->line, row->label);
		if (pb_expect_run(progs, (unsigned)n, &row->call, TEST_SELF_PID, after_start, &got, &silent,
		                  &fault) < 0) {
			snprintf(msg, sizeof(msg), "%s:%u: %s: the compiled filter is broken: %s at instruction %zu",
			         row->file, row->line, row->label, fault.what, fault.pc);
			if (!tap)
				printf("%s\n", msg);
			pb_test_report_add(rep, name, PB_CASE_FAILED, msg, row->text);
			failed++;
			continue;
		}
		pb_expect_outcome(&row->want, row->any_err, want_s, sizeof(want_s));
		pb_expect_outcome(&got, false, got_s, sizeof(got_s));
		pb_expect_call_format(&row->call, call_s, sizeof(call_s));
		decider(p, &row->call, silent, after_start, who, sizeof(who));
		if (pb_expect_met(row, &got)) {
			snprintf(msg, sizeof(msg), "%s: %s, decided by %s", call_s, got_s, who);
			pb_test_report_add(rep, name, PB_CASE_PASSED, NULL, msg);
			continue;
		}
		failed++;
		snprintf(msg, sizeof(msg), "%s:%u: %s: expected %s, the compiled filter says %s for %s, decided by %s",
		         row->file, row->line, row->label, want_s, got_s, call_s, who);
		if (!tap)
			printf("%s\n", msg);
		pb_test_report_add(rep, name, PB_CASE_FAILED, msg, row->text);
	}
	if (!rep) {
		fprintf(stderr, "plugbox: out of memory\n");
		code = PB_EXIT_USAGE;
	} else {
		if (tap)
			pb_test_report_tap(rep, stdout);
		else
			printf("policy %s: %zu expectations, %zu met, %zu not\n", p->name, set.n, set.n - failed,
			       failed);
		if (junit && pb_test_report_junit(rep, junit) < 0)
			code = PB_EXIT_USAGE;
		pb_test_report_free(rep);
		if (code == PB_EXIT_OK && failed)
			code = 1;
	}
	pb_bpf_blob_free(&blob);
	pb_expect_free(&set);
	pb_policy_free(p);
	return code;
}

/* ---- policy explain ------------------------------------------------------- */

/* "  PATH:LINE  (@include NAME line)" for every include between the file of
 * w and the policy: which includes the rule came through. */
static void print_includes(const struct pb_policy *p, const struct pb_where *w)
{
	char where[300];

	for (int depth = 0; depth < 32 && (w = pb_policy_included_at(p, w)) != NULL; depth++) {
		pb_where_format(w, where, sizeof(where));
		printf("    through the @include at %s\n", where);
	}
}

/* One phase's verdict, what decided it, and from where. */
static int explain_phase(const struct pb_policy *p, const struct pb_bpf_prog *progs, unsigned n,
                         const struct pb_expect_call *call, bool after_start, const char *label)
{
	struct pb_action got, matched;
	struct pb_bpf_fault fault;
	uint64_t args[6];
	char got_s[64], where[300];
	bool silent;

	if (pb_expect_run(progs, n, call, TEST_SELF_PID, after_start, &got, &silent, &fault) < 0) {
		fprintf(stderr, "plugbox: the compiled filter is broken: %s at instruction %zu\n", fault.what, fault.pc);
		return -1;
	}
	printf("%s: %s\n", label, pb_expect_outcome(&got, false, got_s, sizeof(got_s)));
	if (!pb_native_arch(call->arch, call->nr) || silent) {
		decider(p, call, silent, after_start, where, sizeof(where));
		printf("  decided by %s\n", where);
		return 0;
	}
	for (unsigned i = 0; i < 6; i++)
		args[i] = (call->self_pid_args & (1u << i)) ? TEST_SELF_PID : call->args[i];
	const struct pb_entry *e = pb_policy_match(p, call->nr, args, TEST_SELF_PID, after_start, &matched);
	if (matched.kind != got.kind || matched.err != got.err) {
		/* The compiler's own rules (the after-start filter's seccomp call,
		 * the listener hand-over) are not in the policy's lists. */
		printf("  decided by a rule plugbox adds to every filter of this policy (plugbox.policy(5))\n");
		return 0;
	}
	const struct pb_where *w = e ? &e->where : &p->dflt_where;
	if (!w->file) {
		printf("  decided by %s\n", e ? e->text : "the built-in @default (kill)");
		return 0;
	}
	pb_where_format(w, where, sizeof(where));
	if (e)
		printf("  decided by rule '%s'\n    at %s\n", e->text, where);
	else
		printf("  decided by the @default (no rule names this call with these arguments)\n    at %s\n",
		       where);
	print_includes(p, w);
	return 0;
}

int pb_cmd_policy_explain(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "policies", required_argument, NULL, 'P' },
		{ "start-up", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	bool start_only = false;
	struct pb_policy *p;
	struct pb_expect_call call;
	struct pb_bpf_blob blob;
	struct pb_bpf_prog progs[8];
	char text[2048], shown[400];
	int c, n, code = PB_EXIT_OK;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		if (c == 'P')
			dir = optarg;
		else if (c == 's')
			start_only = true;
		else
			return pb_usage_error("policy explain: unknown option '%s'", argv[optind - 1]);
	}
	if (argc - optind < 2)
		return pb_usage_error("policy explain needs a policy NAME or FILE and a SYSCALL [ARG...]%s", "");
	/* SYSCALL ARG ARG... is SYSCALL(ARG, ARG...) */
	snprintf(text, sizeof(text), "%s", argv[optind + 1]);
	for (int i = optind + 2; i < argc; i++) {
		size_t len = strlen(text);
		snprintf(text + len, sizeof(text) - len, "%s%s%s", i == optind + 2 ? "(" : ", ", argv[i],
		         i == argc - 1 ? ")" : "");
	}
	if (pb_expect_parse_call(text, "command line", print_diag, NULL, &call) < 0)
		return PB_EXIT_USAGE;
	if (load_policy(dir, argv[optind], &p) < 0)
		return PB_EXIT_USAGE;
	if ((n = compile(p, &blob, progs, 8)) < 0) {
		pb_policy_free(p);
		return PB_EXIT_USAGE;
	}
	pb_expect_call_format(&call, shown, sizeof(shown));
	printf("policy %s (%s), syscall %s\n", p->name, p->path, shown);
	/* A policy with @after-start rules has two verdicts: while the
	 * plugin's imports run, and once it is started. */
	if (explain_phase(p, progs, (unsigned)n, &call, false,
	                  p->after.n ? "while the plugin is imported" : "verdict") < 0 ||
	    (!start_only && p->after.n &&
	     explain_phase(p, progs, (unsigned)n, &call, true, "once the plugin is started") < 0))
		code = PB_EXIT_USAGE;
	pb_bpf_blob_free(&blob);
	pb_policy_free(p);
	return code;
}
