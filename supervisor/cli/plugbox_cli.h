/* plugbox_cli.h - what the `plugbox` command's files share: exit codes,
 * options, and the helpers every subcommand uses. */
#ifndef PLUGBOX_CLI_H
#define PLUGBOX_CLI_H

#include <stdbool.h>

#include "plugbox.h"

enum {
	PB_EXIT_OK = 0,
	PB_EXIT_RAISED = 1,
	PB_EXIT_USAGE = 2,
	PB_EXIT_VIOLATION = 3,
	PB_EXIT_WORKER = 4,
};

struct pb_cli_options {
	const char *plugins;
	const char *policies;
	const char *socket; /* serve: where to listen; call: the daemon to ask */
	double timeout;
	bool timeout_given;
	bool json;
	bool eager;
	double grace;      /* serve: seconds calls get to finish on SIGTERM */
	double idle_stop;  /* serve: stop workers idle this long (0: never) */
	const char *group; /* call-all: the entry-point group */
	bool first;        /* call-all: stop at the first non-null result */
	int spawn;         /* pb_spawn_mode: exec (default) or fork-server */
	const char *cache; /* --cache DIR: root of the bytecode caches */
	bool no_cache;     /* --no-cache: no bytecode cache is used or written */
	bool workers;      /* list: start each worker and ask it (sys_path, layers) */
	/* call-all: pb_hook_options */
	char *only;       /* --only NAME[,NAME...], split in place by cmd_call_all */
	int order;        /* pb_hook_order */
	bool order_given; /* --order was given */
	bool allow_unknown;
	bool concurrent;
	const char *metrics; /* serve: the Prometheus socket */
	bool log_json;       /* serve: --log-format json */
};

/* The options a command takes, for pb_parse_options. */
enum {
	PB_OPT_PLUGINS = 1,
	PB_OPT_POLICIES = 2,
	PB_OPT_TIMEOUT = 4,
	PB_OPT_JSON = 8,
	PB_OPT_SOCKET = 16,
	PB_OPT_GRACE = 32,
	PB_OPT_EAGER = 64,
	PB_OPT_IDLE_STOP = 128,
	PB_OPT_GROUP = 256,
	PB_OPT_FIRST = 512,
	PB_OPT_SPAWN = 1024,
	PB_OPT_CACHE = 2048, /* --cache DIR and --no-cache */
	PB_OPT_WORKERS = 4096,
	PB_OPT_HOOK = 8192, /* --only, --order, --allow-unknown-group, --concurrent */
	PB_OPT_METRICS = 16384,
	PB_OPT_LOG_FORMAT = 32768,
};

/* The control protocol of `plugbox serve` (docs/protocol.md): the version
 * a connection starts in, and the highest one this plugbox speaks. */
#define PB_SERVE_PROTOCOL_VERSION 1
#define PB_SERVE_PROTOCOL_MAX 2

/* "plugbox: MESSAGE (see plugbox --help)" on stderr; returns PB_EXIT_USAGE. */
int pb_usage_error(const char *fmt, const char *arg);
/* `plugbox COMMAND --help`: the command's summary and usage on stdout;
 * returns PB_EXIT_OK (PB_EXIT_USAGE for a name not in the table). Every
 * option parser answers --help and -h with it. */
int pb_cli_command_help(const char *name);
/* Options up to the first operand, of those in `allowed` (PB_OPT_*); -1 when
 * parsing may go on, else the exit code. */
int pb_parse_options(int argc, char **argv, unsigned allowed, struct pb_cli_options *o);
pb_supervisor *pb_open_supervisor(const struct pb_cli_options *o);
/* --cache DIR as an absolute path (malloc'd), or NULL when it cannot be. */
char *pb_cli_cache_path(const char *given);
/* One-shot commands: let the cache builds their workers started end, so
 * the next run is warm; then free the supervisor. */
void pb_close_supervisor(pb_supervisor *sup);
/* Print a failed call's error; returns its exit code. */
int pb_report_error(const pb_error *e);
/* The same from its parts (an error that came over the control socket). */
int pb_report_failure(pb_error_kind kind, const char *plugin, const char *type, const char *message,
                      const char *traceback);
/* A call as `call` and `learn` take it: options, PLUGIN FUNCTION [ARG_JSON...]. */
struct pb_cli_call {
	struct pb_cli_options o;
	const char *plugin, *function;
	pb_value **args;
	int nargs;
	pb_supervisor *sup;
};
/* Parse the call and open its supervisor; -1 when it is ready, else the
 * exit code (and nothing to release). */
int pb_cli_call_prepare(int argc, char **argv, struct pb_cli_call *c);
/* Run it: 0 with *result, or the exit code after printing the error. */
int pb_cli_call_run(struct pb_cli_call *c, pb_value **result);
void pb_cli_call_release(struct pb_cli_call *c);
/* Print a call's result as one line of JSON; returns the exit code. */
int pb_cli_print_result(const char *plugin, const pb_value *result);

/* ARG_JSON words into values (*out, nargs of them); on bad JSON, one line
 * naming the argument (with a hint for a bare word) and -1. */
int pb_cli_parse_json_args(char **argv, int nargs, pb_value ***out);
/* call.c, list.c, call_all.c: the commands of the same names. */
int pb_cmd_call(int argc, char **argv);
int pb_cmd_list(int argc, char **argv);
int pb_cmd_call_all(int argc, char **argv);

/* serve.c: the daemon. */
int pb_cmd_serve(int argc, char **argv);
/* serve_client.c: `plugbox call --socket`, the call c parsed (c->sup unset). */
int pb_serve_call(const struct pb_cli_call *c);
/* `plugbox list --socket`: the same output through the daemon (protocol
 * version 2: List, then a Describe of each plugin). */
int pb_serve_list(const struct pb_cli_options *o);
/* `plugbox stats --socket PATH`: what the daemon's --metrics socket says. */
int pb_cmd_stats(int argc, char **argv);
/* One plugin of `plugbox list`: a JSON object (after a comma unless
 * *first), or a line of the table. */
void pb_cli_list_entry(const char *name, const pb_value *info, bool json, bool *first);

int pb_cmd_policy(int argc, char **argv);
/* plugbox_policy_test.c: `policy test` and `policy explain` (argv[0] is the
 * subcommand). */
int pb_cmd_policy_test(int argc, char **argv);
int pb_cmd_policy_explain(int argc, char **argv);
int pb_cmd_learn(int argc, char **argv);
/* plugbox_selftest.c */
int pb_cmd_selftest(int argc, char **argv);

/* plugbox_install.c: `plugbox install` and `plugbox remove`. */
int pb_cmd_install(int argc, char **argv);
int pb_cmd_remove(int argc, char **argv);
/* plugbox_cache.c: `plugbox cache`, (re)build caches explicitly. */
int pb_cmd_cache(int argc, char **argv);

#endif
