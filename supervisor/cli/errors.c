/* errors.c - how every plugbox command reports a failure: one line naming
 * the argument or the plugin (with a "did you mean" where one helps), the
 * remote traceback, and the exit code DESIGN.md fixes for each kind.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plugbox_cli.h"
#include "toolkit/sanitize.h"

int pb_usage_error(const char *fmt, const char *arg)
{
	fputs("plugbox: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see plugbox --help)\n", stderr);
	return PB_EXIT_USAGE;
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
	case PB_ERROR_EXCEPTION: return PB_EXIT_RAISED;
	case PB_ERROR_NOT_FOUND:
	case PB_ERROR_CONFIG:
	case PB_ERROR_BAD_REQUEST: return PB_EXIT_USAGE;
	case PB_ERROR_VIOLATION: return PB_EXIT_VIOLATION;
	default: return PB_EXIT_WORKER;
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
