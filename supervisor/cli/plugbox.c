/* plugbox.c - the `plugbox` command's entry: the table of subcommands,
 * help, and the dispatch.
 *
 * One file per subcommand or concern: call.c, list.c, call_all.c; the
 * shared options in options.c and the exit codes and error lines of
 * DESIGN.md in errors.c; the policy commands and learn in plugbox_policy.c
 * and plugbox_policy_test.c, the daemon (`serve`) in serve*.c and
 * `call --socket` in serve_client.c. Everything that touches a worker
 * lives in the library.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "toolkit/suggest.h"
#include "cli/plugbox_cli.h"


/* The option groups several commands share, explained once after the usages. */
static const char usage_notes[] =
        "CACHE: --cache DIR (the bytecode caches' root; default PLUGINS/.plugbox/cache) or --no-cache\n"
        "SPAWN: --spawn exec (the default: every worker exec'd), --spawn fork-server (cloned from a warm one)\n"
        "       or --spawn zygote (forked from the plugin's own zygote, the plugin already imported)\n"
        "       or --spawn shared-zygote (the same, each zygote cloned from the fork-server: less memory)\n";

/* Each live worker holds about eight of our descriptors, and the loop is
 * epoll (no FD_SETSIZE): take the hard limit, as systemd advises, so that
 * a daemon hosting a thousand plugins does not run out at 1024. */
static void raise_descriptor_limit(void)
{
	struct rlimit nofile;

	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
}

/* The subcommands: plugbox --help, plugbox COMMAND --help and the
 * dispatch are all made from this table (plugbox(1) has the details). A
 * usage holds one form per line; a line that starts with spaces goes on
 * the form above it. */
struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
	const char *usage;
};

static const struct command commands[] = {
	{ "list", pb_cmd_list, "describe every plugin: name, layout, version, entry points",
	  "--plugins DIR [--json] [--workers [--policies DIR] [CACHE] [SPAWN]]\n"
	  "--socket PATH [--json]" },
	{ "call", pb_cmd_call, "call one function of one plugin; the result as JSON on stdout",
	  "--plugins DIR [--policies DIR] [CACHE] [SPAWN] [--timeout SECONDS]\n"
	  "      PLUGIN FUNCTION [ARG_JSON ...]\n"
	  "--socket PATH [--timeout SECONDS] PLUGIN FUNCTION [ARG_JSON ...]" },
	{ "call-all", pb_cmd_call_all, "call every plugin's entry points of one group",
	  "--plugins DIR [--policies DIR] [CACHE] [SPAWN] [--timeout SECONDS] [--first [--concurrent]]\n"
	  "      [--only PLUGIN[,PLUGIN...]] [--order name|priority|given] [--allow-unknown-group]\n"
	  "      --group GROUP [ARG_JSON ...]\n"
	  "--socket PATH [--timeout SECONDS] [--first [--concurrent]] [--only PLUGIN[,PLUGIN...]]\n"
	  "      [--order name|priority|given] [--allow-unknown-group] --group GROUP [ARG_JSON ...]" },
	{ "serve", pb_cmd_serve, "a daemon: workers kept warm, calls over a unix socket",
	  "--plugins DIR [--policies DIR] [CACHE] [SPAWN] --socket PATH [--timeout SECONDS]\n"
	  "      [--grace SECONDS] [--eager] [--idle-stop SECONDS] [--metrics PATH]\n"
	  "      [--log-format text|json]" },
	{ "stats", pb_cmd_stats, "a daemon's metrics (serve --metrics), in Prometheus text format",
	  "--socket PATH" },
	{ "install", pb_cmd_install, "unpack a wheel or copy a directory into PLUGINS, in a sandbox",
	  "--plugins DIR [--policies DIR] [CACHE] [--name NAME] WHEEL_OR_DIR" },
	{ "remove", pb_cmd_remove, "delete an installed plugin", "--plugins DIR [CACHE] NAME" },
	{ "cache", pb_cmd_cache, "build the plugins' bytecode caches now",
	  "--plugins DIR [--policies DIR] [--cache DIR] [PLUGIN ...]" },
	{ "learn", pb_cmd_learn, "make a call and print the policy rules it needed beyond default",
	  "--plugins DIR [--policies DIR] [CACHE] [SPAWN] [--timeout SECONDS]\n"
	  "      PLUGIN FUNCTION [ARG_JSON ...]" },
	{ "policy", pb_cmd_policy, "check, show, test and explain policies",
	  "check FILE...\n"
	  "show [--policies DIR] NAME|FILE\n"
	  "groups\n"
	  "test [--policies DIR] [--start-up] [--junit FILE] [--tap] NAME|FILE EXPECT_FILE...\n"
	  "explain [--policies DIR] [--start-up] NAME|FILE [ABI:]SYSCALL[(ARG, ...)]" },
	{ "selftest", pb_cmd_selftest, "attack this machine's sandbox and say what held",
	  "[--policies DIR] [--timeout SECONDS] [--json | --tap] [--junit FILE]\n"
	  "      [--probes DIR [--only-probes]]" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* "usage: plugbox NAME FORM" for each form of c, the first line after
 * `lead`, the others under it. */
static void print_usage(FILE *out, const struct command *c, const char *lead)
{
	const char *line = c->usage;

	while (*line) {
		size_t n = strcspn(line, "\n");
		size_t indent = strspn(line, " ");
		if (indent)
			fprintf(out, "%*s%.*s\n", (int)(strlen("usage: plugbox  ") + strlen(c->name)), "",
			        (int)(n - indent), line + indent);
		else
			fprintf(out, "%splugbox %s %.*s\n", lead, c->name, (int)n, line);
		lead = "       ";
		line += n + (line[n] == '\n');
	}
}

static int help(void)
{
	int width = 0;

	printf("usage: plugbox COMMAND [OPTIONS] [ARGUMENTS]   (plugbox COMMAND --help: one command)\n\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		if ((int)strlen(commands[i].name) > width)
			width = (int)strlen(commands[i].name);
	for (size_t i = 0; i < NCOMMANDS; i++)
		printf("  %-*s  %s\n", width, commands[i].name, commands[i].summary);
	putchar('\n');
	for (size_t i = 0; i < NCOMMANDS; i++)
		print_usage(stdout, &commands[i], i == 0 ? "usage: " : "       ");
	fputs(usage_notes, stdout);
	return PB_EXIT_OK;
}

static int command_help(const struct command *c)
{
	printf("plugbox %s: %s\n", c->name, c->summary);
	print_usage(stdout, c, "usage: ");
	if (strstr(c->usage, "CACHE") || strstr(c->usage, "SPAWN"))
		fputs(usage_notes, stdout);
	return PB_EXIT_OK;
}

int pb_cli_command_help(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return command_help(&commands[i]);
	return pb_usage_error("unknown command '%s'", name);
}

/* Whether word starts a line of c's usage: a sub-command (policy check). */
static bool is_subcommand(const struct command *c, const char *word)
{
	size_t n = strlen(word);

	for (const char *line = c->usage; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] == '\n'))
		if (n && !strncmp(line, word, n) && (line[n] == ' ' || line[n] == '\n' || line[n] == '\0'))
			return true;
	return false;
}

static bool is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

static int unknown_command(const char *name)
{
	const char *names[NCOMMANDS], *closest;

	for (size_t i = 0; i < NCOMMANDS; i++)
		names[i] = commands[i].name;
	closest = pb_closest_name(name, names, NCOMMANDS);
	if (closest) {
		fprintf(stderr, "plugbox: unknown command '%s'; did you mean '%s'? (see plugbox --help)\n", name, closest);
		return PB_EXIT_USAGE;
	}
	return pb_usage_error("unknown command '%s'", name);
}

static int missing_command(void)
{
	char names[256];
	size_t n = 0;

	for (size_t i = 0; i < NCOMMANDS; i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", commands[i].name,
		                      i + 2 < NCOMMANDS ? ", " : i + 2 == NCOMMANDS ? " or "
		                                                                    : "");
	return pb_usage_error("missing command: %s", names);
}

int main(int argc, char **argv)
{
	raise_descriptor_limit();
	if (argc < 2)
		return missing_command();
	if (is_help(argv[1]))
		return help();
	if (!strcmp(argv[1], "--version")) {
		printf("plugbox %s\n", PACKAGE_VERSION);
		return PB_EXIT_OK;
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		/* Right after the command or its sub-command (policy check --help);
		 * the option parsers answer it among the other options. After an
		 * operand it is an operand. */
		if ((argc > 2 && is_help(argv[2])) || (argc > 3 && is_help(argv[3]) && is_subcommand(&commands[i], argv[2])))
			return command_help(&commands[i]);
		return commands[i].run(argc - 1, argv + 1);
	}
	return unknown_command(argv[1]);
}
