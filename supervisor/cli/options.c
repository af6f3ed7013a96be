/* options.c - the options the subcommands share (--plugins, --policies,
 * --timeout, CACHE, SPAWN, ...), parsed once into pb_cli_options, and the
 * supervisor they describe.
 */
#include "config.h"

#include <stdio.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cache.h"
#include "cli/plugbox_cli.h"
#include "runtime/supervisor.h"

/* A number of seconds in (0, 86400], or [0, 86400] when zero_ok. */
static int parse_seconds(const char *option, const char *arg, bool zero_ok, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (errno || end == arg || *end || !(*out >= 0) || (!zero_ok && *out == 0) || *out > 86400) {
		fprintf(stderr, "plugbox: %s: '%s' is not a number of seconds in %s, 86400] (see plugbox --help)\n",
		        option, arg, zero_ok ? "[0" : "(0");
		return PB_EXIT_USAGE;
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
		{ "max-replicas", required_argument, NULL, 'R' },
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
			{ 'R', PB_OPT_SPAWN, "--max-replicas" },
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
				return PB_EXIT_USAGE;
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
			else if (!strcmp(optarg, "shared-zygote"))
				o->spawn = PB_SPAWN_SHARED_ZYGOTE;
			else
				return pb_usage_error("--spawn must be exec, fork-server, zygote or shared-zygote, not '%s'",
				                      optarg);
			break;
		case 'R': {
			char *end;
			unsigned long n;
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || n < 1 || n > PB_REPLICAS_MAX)
				return pb_usage_error("--max-replicas must be a number from 1 to 64, not '%s'", optarg);
			o->max_replicas = (unsigned)n;
			break;
		}
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
	if (o->max_replicas)
		pb_supervisor_set_max_replicas(sup, o->max_replicas);
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
