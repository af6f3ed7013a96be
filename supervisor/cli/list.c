/* list.c - `plugbox list`: every plugin's name, layout, version and entry
 * points, from the sandboxed discovery scan (or, with --workers, from
 * each worker's Hello), as a table or JSON. Every field came from a
 * plugin directory: it is sanitised before it reaches the terminal.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "cli/plugbox_cli.h"
#include "runtime/supervisor.h"
#include "toolkit/sanitize.h"

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
	int code = PB_EXIT_OK;
	bool first = true;

	if (pb_supervisor_plugins(sup, &names, &n) < 0) {
		fprintf(stderr, "plugbox: %s\n", pb_supervisor_strerror(sup));
		return PB_EXIT_USAGE;
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
	int code = PB_EXIT_OK;

	if (pb_supervisor_discover(sup, &list) < 0) {
		fprintf(stderr, "plugbox: %s\n", pb_supervisor_strerror(sup));
		return PB_EXIT_USAGE;
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
			code = PB_EXIT_USAGE;
		} else if (!json) {
			print_row(name, info);
		}
	}
	if (json)
		putchar('\n');
	pb_value_destroy(list);
	return code;
}

int pb_cmd_list(int argc, char **argv)
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
		return PB_EXIT_USAGE;
	code = o.workers ? list_from_workers(sup, o.json) : list_from_discovery(sup, o.json);
	fflush(stdout);
	pb_close_supervisor(sup);
	return code;
}
