/* plugbox_cache.c - `plugbox cache`: (re)build plugins' bytecode caches
 * now, whatever their stamps say.
 *
 * The builds are the ones a supervisor starts in the background when a
 * worker starts on a missing or stale cache (cache.c), forced, and waited
 * for: the way to refresh a cache after editing a plugin's files in place
 * (which the stamp, the plugin directory's inode and mtime, does not see;
 * the workers meanwhile compile the edited files from source, as their
 * hashes no longer match), or to retry a build that failed.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "helpers/cache_build.h"
#include "runtime/cache.h"
#include "proto/names.h"
#include "cli/plugbox_cli.h"
#include "runtime/cache.h"
#include "proto/names.h"

int pb_cmd_cache(int argc, char **argv)
{
	struct pb_cli_options o;
	pb_supervisor *sup;
	char **names = NULL;
	size_t n = 0;
	int code = pb_parse_options(argc, argv, PB_OPT_PLUGINS | PB_OPT_POLICIES | PB_OPT_CACHE, &o);

	if (code >= 0)
		return code;
	if (o.no_cache)
		return pb_usage_error("%s builds caches: --no-cache makes no sense here", argv[0]);
	for (int i = optind; i < argc; i++)
		if (!pb_valid_plugin_name(argv[i]))
			return pb_usage_error("'%s' is not a plugin name ([A-Za-z0-9_-]+)", argv[i]);
	sup = pb_open_supervisor(&o);
	if (!sup)
		return PB_EXIT_USAGE;
	if (optind == argc && pb_supervisor_plugins(sup, &names, &n) < 0) {
		fprintf(stderr, "plugbox: %s\n", pb_supervisor_strerror(sup));
		pb_supervisor_free(sup);
		return PB_EXIT_USAGE;
	}
	char *const *list = optind == argc ? names : argv + optind;
	size_t count = optind == argc ? n : (size_t)(argc - optind);
	code = PB_EXIT_OK;
	for (size_t i = 0; i < count; i++) {
		char dir[4096];
		struct stat st;
		snprintf(dir, sizeof(dir), "%s/%s", o.plugins, list[i]);
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "plugbox: no plugin '%s' in %s\n", list[i], o.plugins);
			code = PB_EXIT_USAGE;
			count = i;
			break;
		}
		if (pb_cache_request(sup, list[i], true) < 0) {
			fprintf(stderr, "plugbox: %s\n", pb_supervisor_strerror(sup));
			code = PB_EXIT_USAGE;
			count = i;
			break;
		}
	}
	pb_cache_settle(sup);
	for (size_t i = 0; i < count; i++) {
		unsigned compiled, skipped;
		char why[512];
		int r = pb_cache_outcome(sup, list[i], &compiled, &skipped, why, sizeof(why));
		if (r > 0) {
			printf("%s: cached %u modules (%u files skipped)\n", list[i], compiled, skipped);
		} else {
			/* A failed build was reported as it ended (pb_note). */
			if (r == 0)
				fprintf(stderr, "plugbox: plugin '%s': bytecode cache not built: %s\n", list[i],
				        *why ? why : "nothing to do");
			printf("%s: not cached\n", list[i]);
			code = PB_EXIT_WORKER;
		}
	}
	pb_strv_free(names, n);
	pb_supervisor_free(sup);
	if (fflush(stdout) != 0)
		code = PB_EXIT_WORKER;
	return code;
}
