/* plugbox_policy.c - the policy commands of `plugbox`: check, show and
 * groups (test and explain are in plugbox_policy_test.c), and learn (run a
 * call with syscalls logged, print the policy it needs beyond default).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include "cli/plugbox_cli.h"
#include "runtime/violation.h"

static void print_diag(void *data, bool is_error, const char *line)
{
	(void)data;
	(void)is_error;
	fprintf(stderr, "%s\n", line);
}

static const char *policies_dir(const char *given)
{
	const char *env = getenv("PLUGBOX_POLICIES");
	if (given)
		return given;
	return env && *env ? env : PB_POLICIES_DIR;
}

/* A NAME in the policies directory, or a path to a file. */
static int load_named(const char *dir, const char *arg, struct pb_policy **p)
{
	size_t len = strlen(arg);
	if (strchr(arg, '/') || (len > 7 && !strcmp(arg + len - 7, ".policy")))
		return pb_policy_load_file(arg, print_diag, NULL, p);
	return pb_policy_load(dir, arg, print_diag, NULL, p);
}

static int policy_check(int argc, char **argv)
{
	int code = PB_EXIT_OK;

	if (argc < 1)
		return pb_usage_error("policy check needs FILE...%s", "");
	for (int i = 0; i < argc; i++) {
		struct pb_policy *p;
		struct pb_bpf_blob blob;
		char why[256] = "";

		if (pb_policy_load_file(argv[i], print_diag, NULL, &p) < 0) {
			code = PB_EXIT_USAGE;
			continue;
		}
		if (pb_policy_compile(p, 1, PB_COMPILE_ENFORCE, &blob, why, sizeof(why)) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], why);
			code = PB_EXIT_USAGE;
		} else {
			printf("%s: ok\n", argv[i]);
			pb_bpf_blob_free(&blob);
			/* runtime/filter_check.c reads them back only as root. */
			if (p->after.n > 0 && geteuid() != 0)
				fprintf(stderr, "%s: note: @after-start rules are verified only when plugbox runs as "
				                "root; here a plugin's import-time code can undo them (plugbox.policy(5))\n",
				        argv[i]);
		}
		pb_policy_free(p);
	}
	return code;
}

static void show_entries(const struct pb_entry_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct pb_entry *e = &l->v[i];
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, e->nr);
		char where[300];
		/* `COND; ACTION` is two entries from one line: show the second
		 * as what happens otherwise. */
		bool otherwise = i > 0 && l->v[i - 1].nr == e->nr && l->v[i - 1].where.file == e->where.file &&
		                 l->v[i - 1].where.line == e->where.line && !e->cond && l->v[i - 1].cond;
		char act[64];
		pb_where_format(&e->where, where, sizeof(where));
		if (otherwise)
			printf("  %-22s %-18s   otherwise: %s\n", name ? name : "?", where,
			       pb_action_name(&e->action, act, sizeof(act)));
		else
			printf("  %-22s %-18s %s\n", name ? name : "?", where, e->text);
		free(name);
	}
}

/* The layers beside seccomp, each with where it was set; then the host
 * functions the plugin may call. */
static void show_sandbox(const struct pb_sandbox *sb)
{
	char where[300], value[32];

#define WHERE(w) ((w).file ? (pb_where_format(&(w), where, sizeof(where)), where) : "built in")
	printf("layers:\n");
	for (int i = 0; i < PB_LAYER_COUNT; i++)
		printf("  @layer %s %s (%s)\n", pb_layer_names[i], pb_layer_mode_names[sb->layer[i]],
		       WHERE(sb->layer_where[i]));
	if (sb->network == PB_NETWORK_CONNECT) {
		/* Each destination with its own line: they add up across files. */
		for (size_t i = 0; i < sb->ndests; i++)
			printf(strchr(sb->dests[i].host, ':') ? "  @network connect [%s]:%u (%s)\n" : "  @network connect %s:%u (%s)\n",
			       sb->dests[i].host, (unsigned)sb->dests[i].port, WHERE(sb->dests[i].where));
		printf("  @network refresh %us (%s)\n", pb_net_refresh_seconds(sb), WHERE(sb->net_refresh_where));
	} else {
		printf("  @network %s (%s)\n", sb->network == PB_NETWORK_HOST ? "host" : "none", WHERE(sb->network_where));
	}
	if (sb->scratch)
		printf("  @scratch %s inodes=%llu (%s)\n", pb_limit_format(PB_LIMIT_MEMORY, sb->scratch, value, sizeof(value)),
		       (unsigned long long)sb->scratch_inodes, WHERE(sb->scratch_where));
	else
		printf("  @scratch none (%s)\n", WHERE(sb->scratch_where));
	printf("  @scratch-exec %s (%s)\n", sb->scratch_exec ? "on" : "off", WHERE(sb->scratch_exec_where));
	printf("  @proc %s (%s)\n", pb_proc_names[sb->proc], WHERE(sb->proc_where));
	if (sb->fresh_per_call)
		printf("  @fresh-per-call (%s)\n", WHERE(sb->fresh_where));
	if (sb->replicas_where.file)
		printf("  @replicas %u (%s)\n", sb->replicas, WHERE(sb->replicas_where));
	for (int i = 0; i < PB_LIMIT_COUNT; i++)
		printf("  @limit %s %s (%s)\n", pb_limit_names[i],
		       pb_limit_format((enum pb_limit)i, sb->limit[i], value, sizeof(value)), WHERE(sb->limit_where[i]));
	printf("host calls:%s", sb->ngrants ? "" : " none");
	for (size_t i = 0; i < sb->ngrants; i++)
		printf("%s %s (%s)", i ? "," : "", sb->grants[i].name, WHERE(sb->grants[i].where));
	putchar('\n');
#undef WHERE
}

static int policy_show(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "policies", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	struct pb_policy *p;
	struct pb_bpf_blob blob;
	char why[256] = "", where[300], act[64];
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		if (c == 'P')
			dir = optarg;
		else
			return pb_usage_error("policy show: unknown option '%s'", argv[optind - 1]);
	}
	if (argc - optind != 1)
		return pb_usage_error("policy show needs one policy NAME or FILE%s", "");
	if (load_named(policies_dir(dir), argv[optind], &p) < 0)
		return PB_EXIT_USAGE;
	printf("policy %s (%s)\n", p->name, p->path);
	if (p->nincludes) {
		printf("includes:");
		for (size_t i = 0; i < p->nincludes; i++)
			printf(" %s", p->includes[i]);
		putchar('\n');
	}
	pb_where_format(&p->dflt_where, where, sizeof(where));
	printf("@default %s (%s)\n", pb_action_name(&p->dflt, act, sizeof(act)), where);
	show_sandbox(&p->sandbox);
	printf("start-up rules, loaded before any plugin code; for each syscall the first that holds decides:\n");
	show_entries(&p->start);
	printf("after start-up rules, added once the plugin is imported:\n");
	if (p->after.n)
		show_entries(&p->after);
	else
		printf("  (none)\n");
	if (pb_policy_compile(p, 1, PB_COMPILE_ENFORCE, &blob, why, sizeof(why)) < 0) {
		fprintf(stderr, "plugbox: %s\n", why);
		pb_policy_free(p);
		return PB_EXIT_USAGE;
	}
	printf("compiled: %u programs, %zu bytes: guard %u, start-up %u, after start-up %u instructions%s\n",
	       blob.nprograms, blob.len, blob.ninsns[0], blob.ninsns[1],
	       blob.nprograms > 2 ? blob.ninsns[2] : 0,
	       blob.listener ? "; log rules use a seccomp listener" : "");
	pb_bpf_blob_free(&blob);
	pb_policy_free(p);
	return PB_EXIT_OK;
}

static void print_members(const struct pb_syscall_group *g)
{
	size_t col = 4;

	printf("    ");
	for (const char *const *m = g->members; *m; m++) {
		size_t len = strlen(*m) + 1;
		if (col + len > 78) {
			printf("\n    ");
			col = 4;
		}
		printf("%s ", *m);
		col += len;
	}
	putchar('\n');
}

static int policy_groups(int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return pb_usage_error("policy groups takes no arguments%s", "");
	for (const struct pb_syscall_group *g = pb_syscall_groups; g->name; g++) {
		printf("@%s: %s\n", g->name, g->description);
		print_members(g);
	}
	return PB_EXIT_OK;
}

int pb_cmd_policy(int argc, char **argv)
{
	if (argc < 2)
		return pb_usage_error("policy needs a command: check, show, groups, test or explain%s", "");
	if (!strcmp(argv[1], "check"))
		return policy_check(argc - 2, argv + 2);
	if (!strcmp(argv[1], "show"))
		return policy_show(argc - 1, argv + 1);
	if (!strcmp(argv[1], "groups"))
		return policy_groups(argc - 2, argv + 2);
	if (!strcmp(argv[1], "test"))
		return pb_cmd_policy_test(argc - 1, argv + 1);
	if (!strcmp(argv[1], "explain"))
		return pb_cmd_policy_explain(argc - 1, argv + 1);
	return pb_usage_error("unknown policy command '%s'", argv[1]);
}

/* ---- learn ---------------------------------------------------------------- */

static int cmp_learned(const void *a, const void *b)
{
	const struct pb_learned_call *x = a, *y = b;
	if (x->nr != y->nr)
		return (x->nr > y->nr) - (x->nr < y->nr);
	return memcmp(x->args, y->args, sizeof(x->args));
}

static void print_arg(const char *name, unsigned arg, uint64_t v)
{
	static const char *const ioctl_names[] = { "TC", "TIOC", "FIO", NULL };
	static const char *const family[] = { "AF_", NULL };
	static const char *const type[] = { "SOCK_", NULL };
	static const char *const proto[] = { "IPPROTO_", NULL };
	static const char *const prctl_names[] = { "PR_", NULL };
	const char *const *prefixes = NULL;
	const char *c;

	if (!strcmp(name, "ioctl"))
		prefixes = ioctl_names;
	else if (!strcmp(name, "prctl"))
		prefixes = prctl_names;
	else if (!strcmp(name, "socket"))
		prefixes = arg == 0 ? family : arg == 1 ? type
		                                        : proto;
	c = prefixes ? pb_constant_name(v, prefixes) : NULL;
	if (!c && prefixes == type) {
		/* socket(2)'s type carries flags: SOCK_STREAM|SOCK_CLOEXEC */
		const uint64_t flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
		const char *base = pb_constant_name(v & ~flags, type);
		if (base && (v & flags)) {
			printf("arg%u == %s%s%s", arg, base, (v & SOCK_NONBLOCK) ? "|SOCK_NONBLOCK" : "",
			       (v & SOCK_CLOEXEC) ? "|SOCK_CLOEXEC" : "");
			return;
		}
	}
	if (c)
		printf("arg%u == %s", arg, c);
	else
		printf("arg%u == %#llx", arg, (unsigned long long)v);
}

/* The learned calls as policy lines: one per syscall, with conditions on
 * the arguments learn mode keeps (pb_learn_record). */
static void print_learned(pb_supervisor *s, const char *plugin, const char *function)
{
	size_t n;
	struct pb_learned_call *calls = pb_learned(s, &n);

	if (n > 1) /* nothing learned: calls is NULL, which qsort may not get */
		qsort(calls, n, sizeof(*calls), cmp_learned);
	printf("# %s.policy: learned by `plugbox learn` from %s %s.\n", plugin, plugin, function);
	printf("# The call needed what default allows plus the lines below. Review them\n"
	       "# before saving: each one widens what the plugin may do.\n");
	for (size_t i = 0; i < n;) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, calls[i].nr);
		size_t j = i;
		bool with_args = name && (!strcmp(name, "ioctl") || !strcmp(name, "socket") ||
		                          !strcmp(name, "prctl"));
		printf("%s: ", name ? name : "?");
		for (; j < n && calls[j].nr == calls[i].nr; j++) {
			if (!with_args)
				continue;
			if (j > i)
				printf(" || ");
			if (!strcmp(name, "ioctl")) {
				print_arg(name, 1, calls[j].args[1]);
			} else if (!strcmp(name, "prctl")) {
				print_arg(name, 0, calls[j].args[0]);
			} else {
				print_arg(name, 0, calls[j].args[0]);
				printf(" && ");
				print_arg(name, 1, calls[j].args[1]);
				printf(" && ");
				print_arg(name, 2, calls[j].args[2]);
			}
		}
		printf("%s\n", with_args ? "" : "1");
		free(name);
		i = j;
	}
	/* Learn runs with the host network (spawn.c), so that what a call
	 * needs shows up as syscalls; a policy that opens IP sockets needs it. */
	bool ip = false;
	int socket_nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, "socket");
	for (size_t i = 0; i < n; i++)
		if (calls[i].nr == socket_nr && (calls[i].args[0] == AF_INET || calls[i].args[0] == AF_INET6))
			ip = true;
	if (ip)
		printf("@network host\n");
	printf("@include default\n");
}

int pb_cmd_learn(int argc, char **argv)
{
	struct pb_cli_call c;
	pb_value *result = NULL;
	int code = pb_cli_call_prepare(argc, argv, &c);

	if (code >= 0)
		return code;
	/* Learn from default: what the call needs beyond it is the answer. */
	pb_learn_start(c.sup);
	code = pb_cli_call_run(&c, &result);
	if (code == PB_EXIT_OK) {
		fprintf(stderr, "plugbox: learn: %s %s returned: ", c.plugin, c.function);
		pb_value_print_json(result, stderr);
		fputc('\n', stderr);
		pb_value_destroy(result);
	}
	print_learned(c.sup, c.plugin, c.function);
	pb_cli_call_release(&c);
	return code;
}
