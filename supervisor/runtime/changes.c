/* changes.c - tell a host that a plugin was installed, replaced (upgraded,
 * downgraded, reinstalled) or removed, so that a registry it built from the
 * plugin list does not go stale.
 *
 * Installers swap whole directories (watch.c), so a plugin's identity is
 * its directory's (device, inode) under PLUGINS/NAME. The supervisor keeps
 * the identities it knows; when inotify names a changed entry (or, without
 * inotify, when the host asks), it compares: a new name is an install, a
 * new inode a replacement, a vanished name a removal. Each change adds one
 * to the generation and is passed to the callback. Edits inside a plugin's
 * directory are not changes of this kind (nothing swapped the directory).
 * Only plugin names ([A-Za-z0-9_-]+) count: anything else is not a plugin.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/changes.h"
#include "runtime/watch.h"

struct known_dir {
	char name[PB_PLUGIN_NAME_MAX + 1];
	dev_t dev;
	ino_t ino;
};

static struct known_dir *find(pb_supervisor *s, const char *name)
{
	for (size_t i = 0; i < s->nknown; i++)
		if (!strcmp(s->known[i].name, name))
			return &s->known[i];
	return NULL;
}

/* Whether PLUGINS/name is a directory now, and which. */
static bool look(const pb_supervisor *s, const char *name, struct stat *st)
{
	char path[4096];

	return snprintf(path, sizeof(path), "%s/%s", s->plugins_dir, name) < (int)sizeof(path) &&
	       stat(path, st) == 0 && S_ISDIR(st->st_mode);
}

static void report(pb_supervisor *s, const char *name, pb_plugin_change change)
{
	s->generation++;
	if (s->change_fn)
		s->change_fn(s->change_data, name, change);
}

/* Compare name with what is known; report when `tell`. */
static void compare(pb_supervisor *s, const char *name, bool tell)
{
	struct known_dir *k = find(s, name);
	struct stat st;

	if (!pb_valid_plugin_name(name))
		return;
	if (!look(s, name, &st)) {
		if (k) {
			*k = s->known[--s->nknown];
			if (tell)
				report(s, name, PB_PLUGIN_REMOVED);
		}
		return;
	}
	if (k) {
		if (k->dev == st.st_dev && k->ino == st.st_ino)
			return;
		k->dev = st.st_dev;
		k->ino = st.st_ino;
		if (tell)
			report(s, name, PB_PLUGIN_REPLACED);
		return;
	}
	struct known_dir *grown = realloc(s->known, (s->nknown + 1) * sizeof(*grown));
	if (!grown)
		return; /* not tracked; a later change of it is reported as an install */
	s->known = grown;
	k = &s->known[s->nknown++];
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->dev = st.st_dev;
	k->ino = st.st_ino;
	if (tell)
		report(s, name, PB_PLUGIN_INSTALLED);
}

static int scan(pb_supervisor *s, bool tell)
{
	DIR *d = opendir(s->plugins_dir);
	struct dirent *e;
	char **gone = NULL;
	size_t ngone = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			compare(s, e->d_name, tell);
	closedir(d);
	/* The names known that are no longer there. */
	for (size_t i = 0; i < s->nknown; i++) {
		struct stat st;
		if (!look(s, s->known[i].name, &st)) {
			char **grown = realloc(gone, (ngone + 1) * sizeof(*grown));
			if (!grown)
				break; /* the rest at the next scan */
			gone = grown;
			if (!(gone[ngone] = strdup(s->known[i].name)))
				break;
			ngone++;
		}
	}
	for (size_t i = 0; i < ngone; i++) {
		compare(s, gone[i], tell);
		free(gone[i]);
	}
	free(gone);
	return 0;
}

int pb_changes_init(pb_supervisor *s)
{
	int r = scan(s, false);
	return r == -ENOMEM ? r : 0; /* an unreadable PLUGINS is reported by the calls */
}

void pb_changes_free(pb_supervisor *s)
{
	free(s->known);
	s->known = NULL;
	s->nknown = 0;
}

void pb_changes_note(pb_supervisor *s, const char *name)
{
	compare(s, name, true);
}

void pb_changes_rescan(pb_supervisor *s)
{
	scan(s, true);
}

PB_API void pb_supervisor_set_change_callback(pb_supervisor *s, pb_change_fn fn, void *userdata)
{
	s->change_fn = fn;
	s->change_data = userdata;
}

PB_API uint64_t pb_supervisor_generation(pb_supervisor *s)
{
	if (s->watch_fd >= 0)
		pb_watch_drain(s);
	else
		pb_changes_rescan(s);
	return s->generation;
}
