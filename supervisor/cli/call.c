/* call.c - `plugbox call`: one function of one plugin, its arguments as
 * JSON words, the result as one line of JSON and the exit code of its
 * outcome. `call --socket` is serve_client.c's.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plugbox_cli.h"
#include "runtime/supervisor.h"

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

int pb_cli_parse_json_args(char **argv, int nargs, pb_value ***out)
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
	if (pb_cli_parse_json_args(argv + optind + 2, c->nargs, &c->args) < 0)
		return PB_EXIT_USAGE;
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
		return PB_EXIT_USAGE;
	}
	return -1;
}

int pb_cli_call_run(struct pb_cli_call *c, pb_value **result)
{
	pb_error *err = NULL;
	int code;

	if (pb_call(c->sup, c->plugin, c->function, c->args, (size_t)c->nargs, result, &err) == 0)
		return PB_EXIT_OK;
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
		return PB_EXIT_WORKER;
	}
	putchar('\n');
	return fflush(stdout) == 0 ? PB_EXIT_OK : PB_EXIT_WORKER;
}

int pb_cmd_call(int argc, char **argv)
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
		return PB_EXIT_USAGE;
	}
	code = pb_cli_call_run(&c, &result);
	if (code == PB_EXIT_OK) {
		code = pb_cli_print_result(c.plugin, result);
		pb_value_destroy(result);
	}
	pb_cli_call_release(&c);
	return code;
}
