/* plugins.c - the supervisor's table of plugins: found by name, made known
 * on first use (a directory under the plugins directory, a valid name, a
 * uid of its own when we are root), with a "did you mean" for a misspelt
 * name. Nothing here starts a worker: runtime.c and workers.c do.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail/uids.h"
#include "proto/names.h"
#include "runtime/error.h"
#include "runtime/plugins.h"
#include "runtime/process.h"
#include "runtime/supervisor.h"
#include "toolkit/suggest.h"

/* Plugins by name: an open-addressed table at most half full, so a call
 * finds its plugin among a thousand without comparing every name. */
static size_t name_slot(const char *name, size_t cap)
{
	uint32_t h = 2166136261u;

	for (const char *c = name; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	return h & (cap - 1);
}

struct plugin *pb_runtime_known(pb_supervisor *s, const char *name)
{
	size_t cap = s->plugin_index_cap;

	for (size_t i = cap ? name_slot(name, cap) : 0; cap && s->plugin_index[i]; i = (i + 1) & (cap - 1))
		if (!strcmp(s->plugin_index[i]->name, name))
			return s->plugin_index[i];
	return NULL;
}

static void index_put(struct plugin **index, size_t cap, struct plugin *p)
{
	size_t j = name_slot(p->name, cap);

	while (index[j])
		j = (j + 1) & (cap - 1);
	index[j] = p;
}

/* Room in the index for one more plugin. */
static int index_reserve(pb_supervisor *s)
{
	size_t cap = s->plugin_index_cap ? s->plugin_index_cap : 16;
	struct plugin **index;

	while ((s->nplugins + 1) * 2 > cap)
		cap *= 2;
	if (cap == s->plugin_index_cap)
		return 0;
	index = calloc(cap, sizeof(*index));
	if (!index)
		return -ENOMEM;
	for (size_t i = 0; i < s->nplugins; i++)
		index_put(index, cap, s->plugins[i]);
	free(s->plugin_index);
	s->plugin_index = index;
	s->plugin_index_cap = cap;
	return 0;
}

static bool uid_is_ours(uid_t uid, void *arg)
{
	const pb_supervisor *s = arg;

	for (size_t i = 0; i < s->nplugins; i++)
		if (s->plugins[i]->uid == uid)
			return true;
	return false;
}

/* The identity a plugin's workers run as when the supervisor is root: one
 * uid (and the same gid) per plugin, from a hash of its directory so it is
 * stable across restarts, claimed so that no other plugin of this or
 * another supervisor runs as it (jail/uids.c). */
static int plugin_uid(pb_supervisor *s, const char *name, uid_t *uid, char *why, size_t why_len)
{
	char key[4096];

	*uid = 0;
	if (geteuid() != 0)
		return 0; /* the jail keeps our own uid */
	snprintf(key, sizeof(key), "%s/%s", s->plugins_dir, name);
	return pb_uid_claim(&s->uid_lock_fd, key, uid_is_ours, s, uid, why, why_len);
}

/* " (did you mean 'NAME'?)" for the directory of PLUGINS nearest to a
 * misspelt plugin name, or "". Entries that are not plugin names are never
 * candidates: a suggestion is printed as it is. */
static void suggest_plugin(const pb_supervisor *s, const char *name, char *out, size_t len)
{
	DIR *d = opendir(s->plugins_dir);
	struct dirent *e;
	char best[PB_PLUGIN_NAME_MAX + 1] = "";
	size_t best_distance = (size_t)-1;

	*out = '\0';
	if (!d)
		return;
	while ((e = readdir(d))) {
		const char *candidate = e->d_name;
		struct stat st;
		size_t distance;
		if (!pb_valid_plugin_name(candidate) || !pb_closest_name(name, &candidate, 1) ||
		    fstatat(dirfd(d), candidate, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		distance = pb_edit_distance(name, candidate);
		if (distance < best_distance || (distance == best_distance && strcmp(candidate, best) < 0)) {
			best_distance = distance;
			snprintf(best, sizeof(best), "%s", candidate);
		}
	}
	closedir(d);
	if (*best)
		snprintf(out, len, " (did you mean '%s'?)", best);
}

/* The plugin called `name`, known from now on; NULL with *err when there
 * is no such plugin. */
struct plugin *pb_runtime_plugin(pb_supervisor *s, const char *name, pb_error **err)
{
	char dir[4096];
	struct stat st;
	struct plugin *known = pb_runtime_known(s, name);

	if (known)
		return known;
	if (!pb_valid_plugin_name(name)) {
		*err = pb_error_newf(PB_ERROR_NOT_FOUND, name, "'%s' is not a plugin name ([A-Za-z0-9_-]+)", name);
		return NULL;
	}
	if (snprintf(dir, sizeof(dir), "%s/%s", s->plugins_dir, name) >= (int)sizeof(dir) ||
	    stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		char hint[PB_PLUGIN_NAME_MAX + 32];
		suggest_plugin(s, name, hint, sizeof(hint));
		*err = pb_error_newf(PB_ERROR_NOT_FOUND, name, "no plugin '%s' in %s%s", name, s->plugins_dir, hint);
		return NULL;
	}
	struct plugin **grown = realloc(s->plugins, (s->nplugins + 1) * sizeof(*grown));
	struct plugin *p = calloc(1, sizeof(*p));
	if (grown)
		s->plugins = grown;
	if (!grown || !p || !(p->name = strdup(name)) || index_reserve(s) < 0) {
		if (p)
			free(p->name);
		free(p);
		*err = pb_error_new(PB_ERROR_UNAVAILABLE, name, "", "out of memory", "");
		return NULL;
	}
	char why[256];
	if (plugin_uid(s, name, &p->uid, why, sizeof(why)) < 0) {
		*err = pb_error_newf(PB_ERROR_UNAVAILABLE, name, "plugin '%s': %s", name, why);
		free(p->name);
		free(p);
		return NULL;
	}
	s->plugins[s->nplugins++] = p;
	index_put(s->plugin_index, s->plugin_index_cap, p);
	return p;
}
