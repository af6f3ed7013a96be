/* discover.c - discovery without a worker per plugin (discover.h).
 *
 * A plugin directory is untrusted and is parsed only inside a sandbox: here
 * the supervisor only lists PLUGINS and stats what the scan of a plugin
 * depends on (make_stamp) without reading a byte of it. A
 * plugin whose stamp differs from the one its cached answer was read at is
 * scanned again, with every other such plugin, in one helper
 * (helpers/scan.c); `plugbox install` replaces a directory (new inode),
 * pip --target rewrites its entries (new mtime) and an edited manifest has
 * a new mtime and ctime, so each of them is noticed. Entries are never
 * followed (AT_SYMLINK_NOFOLLOW): a link names what it is, a link. While the helper
 * runs the supervisor's loop keeps serving the workers.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/cache_build.h"
#include "helpers/scan.h"
#include "policy/policy.h"
#include "proto/frame.h"
#include "proto/value.h"
#include "runtime/discover.h"
#include "runtime/supervisor.h"
#include "toolkit/clock.h"

struct pb_discovery {
	struct pb_discovered *items;
	size_t n;
	unsigned long scans;
	struct pb_policy *policy;
};

static void item_clear(struct pb_discovered *d)
{
	free(d->name);
	free(d->stamp);
	pb_envelope_free(d->env);
	memset(d, 0, sizeof(*d));
}

void pb_discover_free(pb_supervisor *s)
{
	struct pb_discovery *dc = s->discovery;

	if (!dc)
		return;
	for (size_t i = 0; i < dc->n; i++)
		item_clear(&dc->items[i]);
	free(dc->items);
	if (dc->policy)
		pb_policy_free(dc->policy);
	free(dc);
	s->discovery = NULL;
}

unsigned long pb_discover_scans(const pb_supervisor *s)
{
	return s->discovery ? s->discovery->scans : 0;
}

#define STAMP_MAX 8192
/* Entries of a plugin directory looked at for *.dist-info; past them the
 * plugin is scanned every time (a directory that large is not a plugin
 * anyone lists often, and the supervisor's time stays bounded). */
#define STAMP_ENTRIES_MAX 4096

struct stamp {
	char buf[STAMP_MAX];
	size_t at;
	bool full;
};

/* "dev:ino:mtime:ctime:size " of dir_fd/path (not followed), "- " when
 * it is not there. */
static void stamp_add(struct stamp *st, int dir_fd, const char *path)
{
	struct stat sb;
	int n;

	if (st->full)
		return;
	if (fstatat(dir_fd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		n = snprintf(st->buf + st->at, sizeof(st->buf) - st->at, "- ");
	else
		n = snprintf(st->buf + st->at, sizeof(st->buf) - st->at, "%llu:%llu:%lld.%09ld:%lld.%09ld:%lld ",
		             (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino, (long long)sb.st_mtim.tv_sec,
		             sb.st_mtim.tv_nsec, (long long)sb.st_ctim.tv_sec, sb.st_ctim.tv_nsec, (long long)sb.st_size);
	if (n < 0 || (size_t)n >= sizeof(st->buf) - st->at)
		st->full = true;
	else
		st->at += (size_t)n;
}

/* What the scan of a plugin depends on, as stat sees it: the directory,
 * plugin.toml, __init__.py, and each *.dist-info's METADATA and
 * entry_points.txt (an in-place edit changes their mtime and ctime; a
 * reinstall, the directory's). Only names are read here, never contents.
 * NULL when the plugin must be scanned every time. */
static char *make_stamp(const char *plugins_dir, const char *name)
{
	static const char *const fixed[] = { ".", "plugin.toml", "__init__.py" };
	static const char *const info_files[] = { "METADATA", "entry_points.txt" };
	struct stamp *st = calloc(1, sizeof(*st));
	char path[4200], *out = NULL;
	unsigned entries = 0;
	int fd;
	DIR *d;

	if (!st)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", plugins_dir, name);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		free(st);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		stamp_add(st, fd, fixed[i]);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		free(st);
		return NULL;
	}
	for (struct dirent *e; !st->full && (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		if (++entries > STAMP_ENTRIES_MAX) {
			st->full = true;
			break;
		}
		if (len <= 10 || strcmp(e->d_name + len - 10, ".dist-info") != 0)
			continue;
		for (size_t i = 0; i < sizeof(info_files) / sizeof(info_files[0]); i++) {
			if (snprintf(path, sizeof(path), "%s/%s", e->d_name, info_files[i]) >= (int)sizeof(path))
				st->full = true;
			else
				stamp_add(st, dirfd(d), path);
		}
	}
	closedir(d);
	if (!st->full)
		out = strdup(st->buf);
	free(st);
	return out;
}

/* POLICIES/compile.policy; when the operator's directory has none (it
 * holds the plugins' policies), the shipped one: $PLUGBOX_POLICIES, else
 * the installed policies. A compile.policy with errors is never skipped. */
static int load_policy(pb_supervisor *s, struct pb_policy **out, char *why, size_t why_len)
{
	const char *env = getenv("PLUGBOX_POLICIES");
	const char *shipped = env && *env ? env : PB_POLICIES_DIR;
	int r = pb_cache_policy_load(s->policies_dir, out, why, why_len);

	if (r == -ENOENT && strcmp(shipped, s->policies_dir) != 0)
		r = pb_cache_policy_load(shipped, out, why, why_len);
	return r;
}

/* Run one helper over names[0..n) and wait for it, serving the loop. */
static int scan_batch(pb_supervisor *s, struct pb_discovery *dc, char **names, size_t n, Plugbox__Envelope **out)
{
	struct pb_scan sc;
	char why[600];
	int r;

	if (!dc->policy && (r = load_policy(s, &dc->policy, why, sizeof(why))) < 0) {
		pb_set_message(s, "the discovery scan's policy: %s", why);
		return r;
	}
	r = pb_scan_start(&sc, s->worker_path, dc->policy, s->plugins_dir, names, n, why, sizeof(why));
	if (r < 0) {
		pb_scan_free(&sc);
		pb_set_message(s, "cannot start the discovery scan: %s", why);
		return r;
	}
	dc->scans++;
	while (!pb_helper_step(&sc.h)) {
		struct pollfd p[PB_HELPER_FDS_MAX + 1];
		int fds[PB_HELPER_FDS_MAX], wait_ms = -1;
		size_t k = pb_helper_fds(&sc.h, fds);
		double deadline = pb_helper_deadline(&sc.h);

		for (size_t i = 0; i < k; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		p[k] = (struct pollfd){ .fd = pb_supervisor_get_fd(s), .events = POLLIN };
		if (deadline > 0) {
			double left = deadline - pb_now();
			wait_ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
		}
		if (poll(p, k + 1, wait_ms) > 0 && (p[k].revents & POLLIN))
			pb_supervisor_dispatch(s, 0);
	}
	r = pb_scan_finish(&sc, out, why, sizeof(why));
	if (r < 0)
		pb_set_message(s, "%s", why);
	pb_scan_free(&sc);
	return r;
}

/* Scan the items whose env is NULL, in batches. */
static int scan_missing(pb_supervisor *s, struct pb_discovery *dc, struct pb_discovered *items, size_t n)
{
	char **names = calloc(PB_SCAN_PLUGINS_MAX, sizeof(*names));
	Plugbox__Envelope **envs = calloc(PB_SCAN_PLUGINS_MAX, sizeof(*envs));
	size_t *at = calloc(PB_SCAN_PLUGINS_MAX, sizeof(*at));
	int r = names && envs && at ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && r == 0;) {
		size_t k = 0;
		for (; i < n && k < PB_SCAN_PLUGINS_MAX; i++) {
			if (items[i].env)
				continue;
			names[k] = items[i].name;
			at[k++] = i;
		}
		if (k == 0)
			break;
		if ((r = scan_batch(s, dc, names, k, envs)) < 0)
			break;
		for (size_t j = 0; j < k; j++) {
			struct pb_discovered *d = &items[at[j]];
			d->env = envs[j];
			if (d->env->body_case == PLUGBOX__ENVELOPE__BODY_HELLO)
				d->hello = d->env->hello;
			else
				d->error = d->env->error->message ? d->env->error->message : "";
		}
	}
	free(names);
	free(envs);
	free(at);
	return r;
}

int pb_discover_refresh(pb_supervisor *s, const struct pb_discovered **out, size_t *count)
{
	struct pb_discovery *dc = s->discovery;
	struct pb_discovered *items;
	char **names;
	size_t n;
	int r;

	*out = NULL;
	*count = 0;
	if (!dc && !(dc = s->discovery = calloc(1, sizeof(*dc))))
		return -ENOMEM;
	/* Notice installs and removals (changes.c) before the directory is read. */
	pb_supervisor_generation(s);
	if ((r = pb_supervisor_plugins(s, &names, &n)) < 0)
		return r;
	items = calloc(n ? n : 1, sizeof(*items));
	if (!items) {
		pb_strv_free(names, n);
		return -ENOMEM;
	}
	/* Keep what is still fresh (both lists are sorted by name). */
	for (size_t i = 0, j = 0; i < n; i++) {
		items[i].name = names[i];
		names[i] = NULL;
		items[i].stamp = make_stamp(s->plugins_dir, items[i].name);
		while (j < dc->n && strcmp(dc->items[j].name, items[i].name) < 0)
			j++;
		if (j < dc->n && !strcmp(dc->items[j].name, items[i].name) && items[i].stamp &&
		    dc->items[j].stamp && !strcmp(dc->items[j].stamp, items[i].stamp)) {
			items[i].env = dc->items[j].env;
			items[i].hello = dc->items[j].hello;
			items[i].error = dc->items[j].error;
			dc->items[j].env = NULL;
		}
	}
	pb_strv_free(names, n);
	r = scan_missing(s, dc, items, n);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			item_clear(&items[i]);
		free(items);
		return r;
	}
	for (size_t i = 0; i < dc->n; i++)
		item_clear(&dc->items[i]);
	free(dc->items);
	dc->items = items;
	dc->n = n;
	*out = items;
	*count = n;
	return 0;
}

/* ---- the public view ----------------------------------------------------- */

int pb_map_put(Plugbox__Value *map, const char *key, Plugbox__Value *v)
{
	Plugbox__Value *k = pbv_new_string(key, strlen(key));
	if (!k || !v || pbv_map_put(map, k, v) < 0) {
		pbv_free(k);
		pbv_free(v);
		return -ENOMEM;
	}
	return 0;
}

static Plugbox__Value *str(const char *s)
{
	return pbv_new_string(s ? s : "", s ? strlen(s) : 0);
}

static Plugbox__Value *entry_points_value(const Plugbox__Hello *h)
{
	Plugbox__Value *eps = pbv_new_list();

	for (size_t i = 0; eps && h && i < h->n_entry_points; i++) {
		Plugbox__Value *ep = pbv_new_map();
		if (!ep || pb_map_put(ep, "group", str(h->entry_points[i]->group)) ||
		    pb_map_put(ep, "name", str(h->entry_points[i]->name)) || pb_map_put(ep, "value", str(h->entry_points[i]->value)) ||
		    pbv_list_append(eps, ep) < 0) {
			pbv_free(ep);
			pbv_free(eps);
			return NULL;
		}
	}
	return eps;
}

static Plugbox__Value *exports_value(const Plugbox__Hello *h)
{
	Plugbox__Value *l = pbv_new_list();

	for (size_t i = 0; l && h && i < h->n_exports; i++) {
		Plugbox__Value *v = str(h->exports[i]);
		if (!v || pbv_list_append(l, v) < 0) {
			pbv_free(v);
			pbv_free(l);
			return NULL;
		}
	}
	return l;
}

Plugbox__Value *pb_hello_map(const char *plugin, const Plugbox__Hello *h)
{
	Plugbox__Value *m = pbv_new_map();

	if (!m || pb_map_put(m, "name", str(plugin)) || pb_map_put(m, "layout", str(h ? h->layout : "")) ||
	    pb_map_put(m, "version", str(h ? h->version : "")) || pb_map_put(m, "exports", exports_value(h)) ||
	    pb_map_put(m, "entry_points", entry_points_value(h)) ||
	    pb_map_put(m, "priority", pbv_new_int(h ? h->priority : 0))) {
		pbv_free(m);
		return NULL;
	}
	return m;
}

static Plugbox__Value *item_value(const struct pb_discovered *d)
{
	Plugbox__Value *m = pb_hello_map(d->name, d->hello);

	if (m && pb_map_put(m, "error", d->error ? str(d->error) : pbv_new_null()) < 0) {
		pbv_free(m);
		return NULL;
	}
	return m;
}

PB_API int pb_supervisor_discover(pb_supervisor *s, pb_value **out)
{
	const struct pb_discovered *items;
	size_t n;
	Plugbox__Value *list;
	int r;

	*out = NULL;
	if ((r = pb_discover_refresh(s, &items, &n)) < 0)
		return r;
	if (!(list = pbv_new_list()))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		Plugbox__Value *m = item_value(&items[i]);
		if (!m || pbv_list_append(list, m) < 0) {
			pbv_free(m);
			pbv_free(list);
			return -ENOMEM;
		}
	}
	*out = (pb_value *)list;
	return 0;
}
