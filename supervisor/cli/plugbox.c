/* plugbox.c - the `plugbox` command: list and call, over libplugbox.
 *
 * It parses the command line of DESIGN.md, maps call outcomes to the exit
 * codes users script against, and prints the result as one line of JSON.
 * Everything that touches a worker lives in the library; the policy
 * commands and learn are in plugbox_policy.c, the daemon (`serve`) in
 * serve.c and `call --socket` in serve_client.c.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/cache_build.h"
#include "toolkit/suggest.h"
#include "runtime/cache.h"
#include "cli/plugbox_cli.h"
#include "runtime/supervisor.h"
#include "toolkit/sanitize.h"

#define EXIT_OK PB_EXIT_OK
#define EXIT_RAISED PB_EXIT_RAISED
#define EXIT_USAGE PB_EXIT_USAGE
#define EXIT_VIOLATION PB_EXIT_VIOLATION
#define EXIT_WORKER PB_EXIT_WORKER

/* The option groups several commands share, explained once after the usages. */
static const char usage_notes[] =
        "CACHE: --cache DIR (the bytecode caches' root; default PLUGINS/.plugbox/cache) or --no-cache\n"
        "SPAWN: --spawn exec (the default: every worker exec'd), --spawn fork-server (cloned from a warm one)\n"
        "       or --spawn zygote (forked from the plugin's own zygote, the plugin already imported)\n";

int pb_usage_error(const char *fmt, const char *arg)
{
	fputs("plugbox: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see plugbox --help)\n", stderr);
	return EXIT_USAGE;
}

/* A worker adds " (did you mean 'NAME'?)" to a function it does not know,
 * from the names the plugin exports. The worker runs the plugin's code, so
 * the name is checked here again: the length of the message to print,
 * without the suggestion when it holds anything but [A-Za-z0-9_.:-]. */
static size_t without_bad_suggestion(const char *message)
{
	static const char lead[] = " (did you mean '", tail[] = "'?)";
	const char *hint = strstr(message, lead);
	size_t len = strlen(message);

	while (hint && strstr(hint + 1, lead))
		hint = strstr(hint + 1, lead);
	if (!hint)
		return len;
	const char *name = hint + strlen(lead);
	size_t n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-");
	if (n > 0 && !strcmp(name + n, tail))
		return len;
	return (size_t)(hint - message);
}

static int exit_code_for(pb_error_kind kind)
{
	switch (kind) {
	case PB_ERROR_EXCEPTION: return EXIT_RAISED;
	case PB_ERROR_NOT_FOUND:
	case PB_ERROR_CONFIG:
	case PB_ERROR_BAD_REQUEST: return EXIT_USAGE;
	case PB_ERROR_VIOLATION: return EXIT_VIOLATION;
	default: return EXIT_WORKER;
	}
}

int pb_report_error(const pb_error *e)
{
	return pb_report_failure(pb_error_get_kind(e), pb_error_get_plugin(e), pb_error_get_type(e),
	                         pb_error_get_message(e), pb_error_get_traceback(e));
}

/* A plugin's traceback as Python prints it, except that a line of it
 * that starts as plugbox's own lines do ("plugbox" or "[") is indented:
 * a multi-line exception message cannot pass for the supervisor's words. */
static void print_traceback(const char *tb)
{
	for (const char *p = tb; *p;) {
		size_t n = strcspn(p, "\n");
		fprintf(stderr, "%s%.*s\n", !strncmp(p, "plugbox", 7) || *p == '[' ? "  " : "", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

/* Everything in an error may be the plugin's words (its exception, its
 * start-up failure, a worker's claim): sanitised before the terminal sees
 * it; one-line fields stay one line. */
int pb_report_failure(pb_error_kind kind, const char *plugin_raw, const char *type_raw,
                      const char *message_raw, const char *tb_raw)
{
	/* The same checks for a local call's error and a daemon's. */
	char *cut = strndup(message_raw, without_bad_suggestion(message_raw));
	char *plugin = pb_sanitize_dup(plugin_raw, 0), *type = pb_sanitize_dup(type_raw, 0);
	char *message = pb_sanitize_dup(cut ? cut : message_raw, 0), *tb = pb_sanitize_dup(tb_raw, PB_SAN_MULTILINE);

	free(cut);

	if (!plugin || !type || !message || !tb)
		fputs("plugbox: out of memory reporting an error\n", stderr);
	else if (kind == PB_ERROR_EXCEPTION) {
		print_traceback(tb);
		fprintf(stderr, "plugbox: plugin '%s' raised %s: %s\n", plugin, type, message);
	} else {
		fprintf(stderr, "plugbox: %s\n", message);
		if (kind == PB_ERROR_VIOLATION && *tb) {
			/* The worker's own account of where the plugin was. */
			fprintf(stderr, "plugbox: plugin '%s' made that call here:\n", plugin);
			for (const char *p = tb; *p;) {
				size_t n = strcspn(p, "\n");
				if (n)
					fprintf(stderr, "  %.*s\n", (int)n, p);
				p += n + (p[n] == '\n');
			}
		}
	}
	free(plugin);
	free(type);
	free(message);
	free(tb);
	return exit_code_for(kind);
}


/* A number of seconds in (0, 86400], or [0, 86400] when zero_ok. */
static int parse_seconds(const char *option, const char *arg, bool zero_ok, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (errno || end == arg || *end || !(*out >= 0) || (!zero_ok && *out == 0) || *out > 86400) {
		fprintf(stderr, "plugbox: %s: '%s' is not a number of seconds in %s, 86400] (see plugbox --help)\n",
		        option, arg, zero_ok ? "[0" : "(0");
		return EXIT_USAGE;
	}
	return -1;
}

/* Options stop at the first operand (getopt's leading '+'), so an argument
 * such as the JSON "-5" is never taken for an option. `allowed` is the
 * PB_OPT_* set the command takes; --plugins is required when allowed,
 * except by commands that also take --socket (they check for themselves). */
int pb_parse_options(int argc, char **argv, unsigned allowed, struct pb_cli_options *o)
{
	static const struct option longopts[] = {
		{ "plugins", required_argument, NULL, 'p' },
		{ "policies", required_argument, NULL, 'P' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "socket", required_argument, NULL, 's' },
		{ "grace", required_argument, NULL, 'g' },
		{ "eager", no_argument, NULL, 'e' },
		{ "idle-stop", required_argument, NULL, 'i' },
		{ "group", required_argument, NULL, 'G' },
		{ "first", no_argument, NULL, 'f' },
		{ "spawn", required_argument, NULL, 'S' },
		{ "cache", required_argument, NULL, 'c' },
		{ "no-cache", no_argument, NULL, 'n' },
		{ "workers", no_argument, NULL, 'w' },
		{ "only", required_argument, NULL, 'o' },
		{ "order", required_argument, NULL, 'O' },
		{ "allow-unknown-group", no_argument, NULL, 'u' },
		{ "concurrent", no_argument, NULL, 'C' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "log-format", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, code = -1;

	opterr = 0;
	optind = 1;
	memset(o, 0, sizeof(*o));
	o->timeout = 60;
	o->grace = 10;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		static const struct {
			int c;
			unsigned bit;
			const char *name;
		} bits[] = {
			{ 'p', PB_OPT_PLUGINS, "--plugins" },
			{ 'P', PB_OPT_POLICIES, "--policies" },
			{ 't', PB_OPT_TIMEOUT, "--timeout" },
			{ 'j', PB_OPT_JSON, "--json" },
			{ 's', PB_OPT_SOCKET, "--socket" },
			{ 'g', PB_OPT_GRACE, "--grace" },
			{ 'e', PB_OPT_EAGER, "--eager" },
			{ 'i', PB_OPT_IDLE_STOP, "--idle-stop" },
			{ 'G', PB_OPT_GROUP, "--group" },
			{ 'f', PB_OPT_FIRST, "--first" },
			{ 'c', PB_OPT_CACHE, "--cache" },
			{ 'n', PB_OPT_CACHE, "--no-cache" },
			{ 'S', PB_OPT_SPAWN, "--spawn" },
			{ 'w', PB_OPT_WORKERS, "--workers" },
			{ 'o', PB_OPT_HOOK, "--only" },
			{ 'O', PB_OPT_HOOK, "--order" },
			{ 'u', PB_OPT_HOOK, "--allow-unknown-group" },
			{ 'C', PB_OPT_HOOK, "--concurrent" },
			{ 'm', PB_OPT_METRICS, "--metrics" },
			{ 'L', PB_OPT_LOG_FORMAT, "--log-format" },
		};
		for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
			if (bits[i].c == c && !(allowed & bits[i].bit)) {
				fprintf(stderr, "plugbox: option %s is not for '%s' (see plugbox --help)\n",
				        bits[i].name, argv[0]);
				return EXIT_USAGE;
			}
		switch (c) {
		case 'p':
			o->plugins = optarg;
			break;
		case 'P':
			o->policies = optarg;
			break;
		case 't':
			o->timeout_given = true;
			code = parse_seconds("--timeout", optarg, false, &o->timeout);
			break;
		case 'j':
			o->json = true;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'g':
			code = parse_seconds("--grace", optarg, true, &o->grace);
			break;
		case 'e':
			o->eager = true;
			break;
		case 'i':
			code = parse_seconds("--idle-stop", optarg, false, &o->idle_stop);
			break;
		case 'G':
			o->group = optarg;
			break;
		case 'f':
			o->first = true;
			break;
		case 'S':
			if (!strcmp(optarg, "exec"))
				o->spawn = PB_SPAWN_EXEC;
			else if (!strcmp(optarg, "fork-server"))
				o->spawn = PB_SPAWN_FORK_SERVER;
			else if (!strcmp(optarg, "zygote"))
				o->spawn = PB_SPAWN_ZYGOTE;
			else
				return pb_usage_error("--spawn must be exec, fork-server or zygote, not '%s'", optarg);
			break;
		case 'c':
			o->cache = optarg;
			break;
		case 'n':
			o->no_cache = true;
			break;
		case 'w':
			o->workers = true;
			break;
		case 'o':
			o->only = optarg;
			break;
		case 'O':
			o->order_given = true;
			if (!strcmp(optarg, "name"))
				o->order = PB_HOOK_ORDER_NAME;
			else if (!strcmp(optarg, "priority"))
				o->order = PB_HOOK_ORDER_PRIORITY;
			else if (!strcmp(optarg, "given"))
				o->order = PB_HOOK_ORDER_GIVEN;
			else
				return pb_usage_error("--order must be name, priority or given, not '%s'", optarg);
			break;
		case 'u':
			o->allow_unknown = true;
			break;
		case 'C':
			o->concurrent = true;
			break;
		case 'm':
			o->metrics = optarg;
			break;
		case 'L':
			if (!strcmp(optarg, "json") || !strcmp(optarg, "text"))
				o->log_json = !strcmp(optarg, "json");
			else
				return pb_usage_error("--log-format must be text or json, not '%s'", optarg);
			break;
		case 'h':
			return pb_cli_command_help(argv[0]);
		case ':':
			return pb_usage_error("option %s needs a value", argv[optind - 1]);
		default:
			return pb_usage_error("unknown option '%s'", argv[optind - 1]);
		}
		if (code >= 0)
			return code;
	}
	if ((allowed & PB_OPT_PLUGINS) && !(allowed & PB_OPT_SOCKET) && !o->plugins)
		return pb_usage_error("%s needs --plugins DIR", argv[0]);
	if (o->cache && o->no_cache)
		return pb_usage_error("%s: --cache and --no-cache contradict each other", argv[0]);
	return -1;
}

char *pb_cli_cache_path(const char *given)
{
	char *abs = NULL, cwd[4096];

	if (given[0] == '/')
		return strdup(given);
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&abs, "%s/%s", cwd, given) < 0)
		return NULL;
	return abs;
}

void pb_close_supervisor(pb_supervisor *sup)
{
	if (sup)
		pb_cache_settle(sup);
	pb_supervisor_free(sup);
}

pb_supervisor *pb_open_supervisor(const struct pb_cli_options *o)
{
	pb_supervisor *sup;
	int r = pb_supervisor_new(o->plugins, &sup);

	if (r < 0) {
		fprintf(stderr, "plugbox: --plugins %s: %s\n", o->plugins, strerror(-r));
		return NULL;
	}
	if (o->policies && pb_supervisor_set_policies(sup, o->policies) < 0) {
		fprintf(stderr, "plugbox: --%s\n", pb_supervisor_strerror(sup));
		pb_supervisor_free(sup);
		return NULL;
	}
	pb_supervisor_set_timeout(sup, o->timeout);
	pb_supervisor_set_spawn_mode(sup, (pb_spawn_mode)o->spawn);
	if (o->no_cache) {
		pb_supervisor_set_bytecode_cache(sup, NULL);
	} else if (o->cache) {
		char *abs = pb_cli_cache_path(o->cache);
		if (!abs || pb_supervisor_set_bytecode_cache(sup, abs) < 0) {
			fprintf(stderr, "plugbox: --cache %s: %s\n", o->cache, abs ? pb_supervisor_strerror(sup) : strerror(errno));
			free(abs);
			pb_supervisor_free(sup);
			return NULL;
		}
		free(abs);
	}
	return sup;
}

/* Whether arg is one of our long options (or --option=VALUE). */
static bool is_our_option(const char *arg)
{
	static const char *const names[] = {
		"plugins",
		"policies",
		"timeout",
		"json",
		"socket",
		"grace",
		"eager",
		"idle-stop",
		"group",
		"first",
		"spawn",
		"cache",
		"no-cache",
		"workers",
		"only",
		"order",
		"allow-unknown-group",
		"concurrent",
		"help",
		NULL,
	};

	if (strncmp(arg, "--", 2) != 0)
		return false;
	for (size_t i = 0; names[i]; i++) {
		size_t n = strlen(names[i]);
		if (!strncmp(arg + 2, names[i], n) && (arg[2 + n] == '\0' || arg[2 + n] == '='))
			return true;
	}
	return false;
}

/* A word the shell passed without the quotes JSON needs: printable ASCII
 * that is not a try at JSON's own syntax and needs no escaping inside
 * '"..."'. Only such a word is echoed back in the hint. */
static bool is_bare_word(const char *arg)
{
	if (!*arg || strchr("{[\"-", arg[0]))
		return false;
	for (const char *c = arg; *c; c++)
		if (*c < 0x20 || *c > 0x7e || *c == '\'' || *c == '"' || *c == '\\')
			return false;
	return true;
}

/* An operand that does not parse: say why, and the likely slip. */
static void report_bad_argument(int i, const char *arg, const char *why)
{
	if (is_our_option(arg))
		fprintf(stderr, "plugbox: argument %d: '%s' is an option, but options go before PLUGIN "
		                "and the other operands (all that follows is taken as FUNCTION or ARG_JSON)\n",
		        i + 1, arg);
	else if (is_bare_word(arg))
		fprintf(stderr, "plugbox: argument %d: invalid JSON: %s; to pass the string %s, write '\"%s\"'\n",
		        i + 1, why, arg, arg);
	else
		fprintf(stderr, "plugbox: argument %d: invalid JSON: %s\n", i + 1, why);
}

static int parse_json_args(char **argv, int nargs, pb_value ***out)
{
	pb_value **args = calloc((size_t)nargs + 1, sizeof(*args));

	*out = NULL;
	if (!args)
		return -1;
	for (int i = 0; i < nargs; i++) {
		char *why = NULL;
		args[i] = pb_value_parse_json(argv[i], &why);
		if (!args[i]) {
			report_bad_argument(i, argv[i], why ? why : "out of memory");
			free(why);
			while (i-- > 0)
				pb_value_destroy(args[i]);
			free(args);
			return -1;
		}
	}
	*out = args;
	return 0;
}

/* Options and operands of a call; with PB_OPT_SOCKET allowed, either
 * --plugins or --socket (the daemon has its own plugins and policies). */
static int call_parse(int argc, char **argv, unsigned allowed, struct pb_cli_call *c)
{
	int code;

	memset(c, 0, sizeof(*c));
	code = pb_parse_options(argc, argv, allowed, &c->o);
	if (code >= 0)
		return code;
	if (c->o.socket && c->o.plugins)
		return pb_usage_error("%s --socket asks a daemon, which has its own --plugins", argv[0]);
	if (c->o.socket && c->o.policies)
		return pb_usage_error("%s --socket asks a daemon, which has its own --policies", argv[0]);
	if (c->o.socket && c->o.spawn != PB_SPAWN_EXEC)
		return pb_usage_error("%s --socket asks a daemon, which starts its own workers (serve --spawn)", argv[0]);
	if (c->o.socket && (c->o.cache || c->o.no_cache))
		return pb_usage_error("%s --socket asks a daemon, which has its own bytecode caches", argv[0]);
	if (!c->o.socket && !c->o.plugins)
		return pb_usage_error("%s needs --plugins DIR (or --socket PATH)", argv[0]);
	if (argc - optind < 2)
		return pb_usage_error("%s needs PLUGIN and FUNCTION", argv[0]);
	c->plugin = argv[optind];
	c->function = argv[optind + 1];
	if (is_our_option(c->function))
		return pb_usage_error("'%s' after PLUGIN: options go before PLUGIN (PLUGIN FUNCTION [ARG_JSON ...] come last)",
		                      c->function);
	c->nargs = argc - optind - 2;
	if (parse_json_args(argv + optind + 2, c->nargs, &c->args) < 0)
		return EXIT_USAGE;
	return -1;
}

int pb_cli_call_prepare(int argc, char **argv, struct pb_cli_call *c)
{
	int code = call_parse(argc, argv, PB_OPT_PLUGINS | PB_OPT_POLICIES | PB_OPT_TIMEOUT | PB_OPT_SPAWN | PB_OPT_CACHE, c);

	if (code >= 0)
		return code;
	c->sup = pb_open_supervisor(&c->o);
	if (!c->sup) {
		pb_cli_call_release(c);
		return EXIT_USAGE;
	}
	return -1;
}

int pb_cli_call_run(struct pb_cli_call *c, pb_value **result)
{
	pb_error *err = NULL;
	int code;

	if (pb_call(c->sup, c->plugin, c->function, c->args, (size_t)c->nargs, result, &err) == 0)
		return EXIT_OK;
	pb_supervisor_flush_output(c->sup, 1.0); /* the plugin's output before our words */
	code = pb_report_error(err);
	pb_error_free(err);
	return code;
}

void pb_cli_call_release(struct pb_cli_call *c)
{
	for (int i = 0; i < c->nargs && c->args; i++)
		pb_value_destroy(c->args[i]);
	free(c->args);
	pb_close_supervisor(c->sup);
	c->args = NULL;
	c->sup = NULL;
}

int pb_cli_print_result(const char *plugin, const pb_value *result)
{
	if (pb_value_print_json(result, stdout) < 0) {
		fprintf(stderr, "plugbox: plugin '%s' returned a value that cannot be printed as JSON\n", plugin);
		return EXIT_WORKER;
	}
	putchar('\n');
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_WORKER;
}

static int cmd_call(int argc, char **argv)
{
	struct pb_cli_call c;
	pb_value *result = NULL;
	int code = call_parse(argc, argv, PB_OPT_PLUGINS | PB_OPT_POLICIES | PB_OPT_TIMEOUT | PB_OPT_SOCKET | PB_OPT_SPAWN | PB_OPT_CACHE, &c);

	if (code >= 0)
		return code;
	if (c.o.socket) {
		code = pb_serve_call(&c);
		pb_cli_call_release(&c);
		return code;
	}
	c.sup = pb_open_supervisor(&c.o);
	if (!c.sup) {
		pb_cli_call_release(&c);
		return EXIT_USAGE;
	}
	code = pb_cli_call_run(&c, &result);
	if (code == EXIT_OK) {
		code = pb_cli_print_result(c.plugin, result);
		pb_value_destroy(result);
	}
	pb_cli_call_release(&c);
	return code;
}

/* One field of `plugbox list`'s table, after `sep`: a tab, which
 * separates the columns, is escaped too. */
static void print_field(const char *sep, const char *text)
{
	char *shown = pb_sanitize_dup(text, 0);
	fputs(sep, stdout);
	for (const char *c = shown ? shown : "?"; *c; c++) {
		if (*c == '\t')
			fputs("\\t", stdout);
		else
			putchar(*c);
	}
	free(shown);
}

/* One row of `plugbox list`'s table: name, layout, version, entry points;
 * tab-separated, and every field the plugin wrote sanitised (a tab or
 * newline in its version cannot add a column or a line). */
static void print_row(const char *name, const pb_value *info)
{
	const pb_value *eps = pb_value_map_get(info, "entry_points");

	print_field("", name);
	print_field("\t", pb_value_get_string(pb_value_map_get(info, "layout")));
	print_field("\t", pb_value_get_string(pb_value_map_get(info, "version")));
	putchar('\t');
	for (size_t j = 0; j < pb_value_list_length(eps); j++) {
		const pb_value *ep = pb_value_list_get(eps, j);
		print_field(j ? "," : "", pb_value_get_string(pb_value_map_get(ep, "group")));
		print_field(":", pb_value_get_string(pb_value_map_get(ep, "name")));
	}
	putchar('\n');
}

/* One plugin of `plugbox list`, here or from a daemon (serve_client.c):
 * a JSON element (after a comma unless *first) or a table row. */
void pb_cli_list_entry(const char *name, const pb_value *info, bool json, bool *first)
{
	if (json) {
		if (!*first)
			putchar(',');
		pb_value_print_json(info, stdout);
	} else {
		print_row(name, info);
	}
	*first = false;
}

/* --workers: each plugin's worker describes it (sys_path and layers too). */
static int list_from_workers(pb_supervisor *sup, bool json)
{
	char **names;
	size_t n;
	int code = EXIT_OK;
	bool first = true;

	if (pb_supervisor_plugins(sup, &names, &n) < 0) {
		fprintf(stderr, "plugbox: %s\n", pb_supervisor_strerror(sup));
		return EXIT_USAGE;
	}
	if (json)
		putchar('[');
	for (size_t i = 0; i < n; i++) {
		pb_value *info;
		pb_error *err;
		if (pb_describe(sup, names[i], &info, &err) < 0) {
			int c;
			pb_supervisor_flush_output(sup, 1.0);
			c = pb_report_error(err);
			pb_error_free(err);
			if (c > code)
				code = c;
			continue;
		}
		pb_cli_list_entry(names[i], info, json, &first);
		pb_value_destroy(info);
	}
	if (json)
		puts("]");
	pb_strv_free(names, n);
	return code;
}

/* The default: one sandboxed scan of every plugin's metadata, no worker. A
 * plugin whose metadata is invalid is named on stderr (exit 2); with
 * --json it is also listed, with its "error". */
static int list_from_discovery(pb_supervisor *sup, bool json)
{
	pb_value *list;
	int code = EXIT_OK;

	if (pb_supervisor_discover(sup, &list) < 0) {
		fprintf(stderr, "plugbox: %s\n", pb_supervisor_strerror(sup));
		return EXIT_USAGE;
	}
	if (json)
		pb_value_print_json(list, stdout);
	for (size_t i = 0; i < pb_value_list_length(list); i++) {
		const pb_value *info = pb_value_list_get(list, i);
		const char *name = pb_value_get_string(pb_value_map_get(info, "name"));
		const char *error = pb_value_get_string(pb_value_map_get(info, "error"));
		if (error) {
			char *shown = pb_sanitize_dup(error, 0);
			fprintf(stderr, "plugbox: plugin '%s': %s\n", name, shown ? shown : "?");
			free(shown);
			code = EXIT_USAGE;
		} else if (!json) {
			print_row(name, info);
		}
	}
	if (json)
		putchar('\n');
	pb_value_destroy(list);
	return code;
}

static int cmd_list(int argc, char **argv)
{
	struct pb_cli_options o;
	pb_supervisor *sup;
	int code = pb_parse_options(argc, argv,
	                            PB_OPT_PLUGINS | PB_OPT_POLICIES | PB_OPT_JSON | PB_OPT_SPAWN | PB_OPT_CACHE |
	                                    PB_OPT_WORKERS | PB_OPT_SOCKET,
	                            &o);

	if (code >= 0)
		return code;
	if (optind != argc)
		return pb_usage_error("unexpected argument '%s'", argv[optind]);
	if (o.socket && (o.plugins || o.policies || o.workers || o.spawn != PB_SPAWN_EXEC || o.cache || o.no_cache))
		return pb_usage_error("%s --socket asks a daemon, which has its own --plugins, policies, workers and caches",
		                      argv[0]);
	if (o.socket)
		return pb_serve_list(&o);
	if (!o.plugins)
		return pb_usage_error("%s needs --plugins DIR (or --socket PATH)", argv[0]);
	sup = pb_open_supervisor(&o);
	if (!sup)
		return EXIT_USAGE;
	code = o.workers ? list_from_workers(sup, o.json) : list_from_discovery(sup, o.json);
	fflush(stdout);
	pb_close_supervisor(sup);
	return code;
}

/* One answer of call-all as a JSON object: plugin, entry-point name, and
 * either the result or the error (kind, Python type, message). */
static pb_value *hook_answer_value(const pb_hook_results *r, size_t i)
{
	const pb_error *e = pb_hook_result_error(r, i);
	pb_value *obj = pb_value_new_map(), *inner = NULL;
	struct {
		const char *key;
		pb_value *v;
	} fields[3];
	int ok = obj != NULL;

	fields[0].key = "plugin";
	fields[0].v = pb_value_new_string(pb_hook_result_plugin(r, i));
	fields[1].key = "name";
	fields[1].v = pb_value_new_string(pb_hook_result_name(r, i));
	if (e) {
		inner = pb_value_new_map();
		const char *keys[] = { "kind", "type", "message" };
		const char *vals[] = { pb_error_kind_name(pb_error_get_kind(e)), pb_error_get_type(e),
			               pb_error_get_message(e) };
		for (size_t k = 0; k < 3 && inner; k++) {
			pb_value *key = pb_value_new_string(keys[k]), *val = pb_value_new_string(vals[k]);
			if (!key || !val || pb_value_map_set(inner, key, val) < 0) {
				pb_value_destroy(key);
				pb_value_destroy(val);
				ok = 0;
			}
		}
		fields[2].key = "error";
		fields[2].v = inner;
	} else {
		char *json = pb_value_to_json(pb_hook_result_value(r, i));
		fields[2].key = "result";
		fields[2].v = json ? pb_value_parse_json(json, NULL) : NULL;
		free(json);
	}
	for (size_t k = 0; k < 3; k++) {
		pb_value *key = pb_value_new_string(fields[k].key);
		if (!ok || !obj || !key || !fields[k].v || pb_value_map_set(obj, key, fields[k].v) < 0) {
			pb_value_destroy(key);
			pb_value_destroy(fields[k].v);
			ok = 0;
		}
	}
	if (!ok) {
		pb_value_destroy(obj);
		return NULL;
	}
	return obj;
}

static int cmd_call_all(int argc, char **argv)
{
	struct pb_cli_options o;
	pb_supervisor *sup;
	pb_value **args;
	pb_hook_results *results;
	pb_call_spec spec = { 0 };
	int code = pb_parse_options(argc, argv, PB_OPT_PLUGINS | PB_OPT_POLICIES | PB_OPT_TIMEOUT | PB_OPT_SPAWN | PB_OPT_GROUP | PB_OPT_FIRST | PB_OPT_CACHE | PB_OPT_HOOK, &o);
	int nargs = argc - optind;
	const char *only[256];
	pb_hook_options ho = { 0 };

	if (code >= 0)
		return code;
	if (!o.group)
		return pb_usage_error("%s needs --group GROUP", argv[0]);
	/* --only a,b,c: those plugins, in that order unless --order says. */
	for (char *save = NULL, *name = o.only ? strtok_r(o.only, ",", &save) : NULL; name;
	     name = strtok_r(NULL, ",", &save)) {
		if (ho.nplugins == sizeof(only) / sizeof(only[0]))
			return pb_usage_error("--only names more than 256 plugins%s", "");
		only[ho.nplugins++] = name;
	}
	if (o.only) {
		if (ho.nplugins == 0)
			return pb_usage_error("--only needs plugin names%s", "");
		ho.plugins = only;
	}
	ho.order = o.order_given ? (pb_hook_order)o.order : o.only ? PB_HOOK_ORDER_GIVEN
	                                                           : PB_HOOK_ORDER_NAME;
	if (ho.order == PB_HOOK_ORDER_GIVEN && !o.only)
		return pb_usage_error("--order given needs --only PLUGIN[,PLUGIN...]%s", "");
	ho.flags = (o.first ? PB_HOOK_FIRST_RESULT : 0) | (o.concurrent ? PB_HOOK_CONCURRENT : 0) |
	           (o.allow_unknown ? PB_HOOK_ALLOW_UNKNOWN : 0);
	if (parse_json_args(argv + optind, nargs, &args) < 0)
		return EXIT_USAGE;
	sup = pb_open_supervisor(&o);
	if (!sup)
		code = EXIT_USAGE;
	spec.args = args;
	spec.nargs = (size_t)nargs;
	if (sup && pb_hook_ex(sup, o.group, &spec, &ho, &results) < 0) {
		char *shown = pb_sanitize_dup(o.group, 0);
		fprintf(stderr, "plugbox: --group %s: %s\n", shown ? shown : "?", pb_supervisor_strerror(sup));
		free(shown);
		code = EXIT_USAGE;
	} else if (sup) {
		/* The array on stdout, an answer a line; each error also on stderr
		 * as `plugbox call` reports it. The exit code is the worst. */
		size_t n = pb_hook_results_count(results);
		code = EXIT_OK;
		pb_supervisor_flush_output(sup, 1.0); /* the plugins' output before our words */
		if (n == 0)
			fprintf(stderr, "plugbox: no plugin in %s provides entry-point group '%s'\n", o.plugins, o.group);
		fputs("[", stdout);
		for (size_t i = 0; i < n; i++) {
			const pb_error *e = pb_hook_result_error(results, i);
			pb_value *line = hook_answer_value(results, i);
			fputs(i ? ",\n " : "\n ", stdout);
			if (!line || pb_value_print_json(line, stdout) < 0) {
				fprintf(stderr, "plugbox: plugin '%s' returned a value that cannot be printed as JSON\n",
				        pb_hook_result_plugin(results, i));
				fputs("null", stdout);
				code = code > EXIT_WORKER ? code : EXIT_WORKER;
			}
			pb_value_destroy(line);
			if (e) {
				int c = pb_report_error(e);
				code = code > c ? code : c;
			}
		}
		fputs(n ? "\n]\n" : "]\n", stdout);
		pb_hook_results_free(results);
	}
	for (int i = 0; i < nargs; i++)
		pb_value_destroy(args[i]);
	free(args);
	if (fflush(stdout) != 0)
		code = EXIT_WORKER;
	pb_close_supervisor(sup);
	return code;
}

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
	{ "list", cmd_list, "describe every plugin: name, layout, version, entry points",
	  "--plugins DIR [--json] [--workers [--policies DIR] [CACHE] [SPAWN]]\n"
	  "--socket PATH [--json]" },
	{ "call", cmd_call, "call one function of one plugin; the result as JSON on stdout",
	  "--plugins DIR [--policies DIR] [CACHE] [SPAWN] [--timeout SECONDS]\n"
	  "      PLUGIN FUNCTION [ARG_JSON ...]\n"
	  "--socket PATH [--timeout SECONDS] PLUGIN FUNCTION [ARG_JSON ...]" },
	{ "call-all", cmd_call_all, "call every plugin's entry points of one group",
	  "--plugins DIR [--policies DIR] [CACHE] [SPAWN] [--timeout SECONDS] [--first [--concurrent]]\n"
	  "      [--only PLUGIN[,PLUGIN...]] [--order name|priority|given] [--allow-unknown-group]\n"
	  "      --group GROUP [ARG_JSON ...]" },
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
	return EXIT_OK;
}

static int command_help(const struct command *c)
{
	printf("plugbox %s: %s\n", c->name, c->summary);
	print_usage(stdout, c, "usage: ");
	if (strstr(c->usage, "CACHE") || strstr(c->usage, "SPAWN"))
		fputs(usage_notes, stdout);
	return EXIT_OK;
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
		return EXIT_USAGE;
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
		return EXIT_OK;
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
