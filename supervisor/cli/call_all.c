/* call_all.c - `plugbox call-all`: the entry points of one group, in
 * every plugin (or those named), through pb_hook_ex; one JSON object per
 * answer, errors included.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plugbox_cli.h"
#include "runtime/supervisor.h"
#include "toolkit/sanitize.h"

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

int pb_cmd_call_all(int argc, char **argv)
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
	if (pb_cli_parse_json_args(argv + optind, nargs, &args) < 0)
		return PB_EXIT_USAGE;
	sup = pb_open_supervisor(&o);
	if (!sup)
		code = PB_EXIT_USAGE;
	spec.args = args;
	spec.nargs = (size_t)nargs;
	if (sup && pb_hook_ex(sup, o.group, &spec, &ho, &results) < 0) {
		char *shown = pb_sanitize_dup(o.group, 0);
		fprintf(stderr, "plugbox: --group %s: %s\n", shown ? shown : "?", pb_supervisor_strerror(sup));
		free(shown);
		code = PB_EXIT_USAGE;
	} else if (sup) {
		/* The array on stdout, an answer a line; each error also on stderr
		 * as `plugbox call` reports it. The exit code is the worst. */
		size_t n = pb_hook_results_count(results);
		code = PB_EXIT_OK;
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
				code = code > PB_EXIT_WORKER ? code : PB_EXIT_WORKER;
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
		code = PB_EXIT_WORKER;
	pb_close_supervisor(sup);
	return code;
}
