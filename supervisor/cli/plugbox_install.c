/* plugbox_install.c - `plugbox install` and `plugbox remove`.
 *
 * A wheel or a plugin directory is untrusted input, so this command never
 * reads it: it only opens the wheel (read-only, handed to the worker as a
 * descriptor) or names the directory (bound read-only into the worker's
 * mount tree). An install worker (install_run.c) unpacks or copies it into
 * a fresh staging directory, the one tree it may write; this side then
 * checks that tree again (install_tree.c) and swaps it into place.
 *
 * The on-disk protocol, shared with a running supervisor (runtime.c):
 *   PLUGINS/.plugbox/lock        flock(LOCK_EX) serializes install and remove
 *   PLUGINS/.plugbox/staging/    NAME.XXXXXX: trees being unpacked; anything
 *                                found here by a later run is left over from
 *                                a dead one and is discarded
 *   PLUGINS/.plugbox/old/        NAME.XXXXXX: replaced or removed versions,
 *                                deleted once no worker holds them
 * A new plugin appears with renameat2(RENAME_NOREPLACE), an upgrade with
 * renameat2(RENAME_EXCHANGE), so PLUGINS/NAME is always a whole version and
 * never missing. A supervisor holds flock(LOCK_SH) on a plugin directory
 * while a worker runs from it; a version is deleted only when
 * flock(LOCK_EX|LOCK_NB) on it succeeds, else it waits in old/ for a later
 * install or remove. Killed at any point, an install leaves the previous
 * version in place, and what it left behind is cleaned by the next run.
 *
 * The plugin's bytecode cache (cache.h; default PLUGINS/.plugbox/cache) is
 * built from the staging tree before the swap, by the sandboxed compiler
 * that sees it at PLUGINS/NAME, and put in place right after the swap, so
 * the first start of the new version is warm; `remove` deletes it. A cache
 * that cannot be built never fails an install: the plugin runs uncached.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "helpers/cache_build.h"
#include "jail/uids.h"
#include "proto/install.h"
#include "cli/plugbox_cli.h"
#include "policy/policy.h"
#include "toolkit/sanitize.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#endif

struct plugins {
	const char *given; /* --plugins as written, for messages */
	char *path;        /* its real path, for the worker's binds */
	int fd, meta, staging, old, lock;
	int swap; /* .plugbox/swap.lock: held exclusively around a rename of PLUGINS/NAME */
	struct stat st;
};

static void close_plugins(struct plugins *p)
{
	int *slots[] = { &p->fd, &p->meta, &p->staging, &p->old, &p->lock, &p->swap };
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		int fd = *slots[i];
		if (fd >= 0)
			close(fd);
	}
	free(p->path);
}

static bool plugin_name_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= 128 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* A name for the command line's own messages: no control characters. */
static const char *shown(const char *s, char *buf, size_t len)
{
	pb_sanitize(buf, len, s, strlen(s), 0);
	return buf;
}

/* Tests only (install.h): stop here until killed. */
static void test_pause(const char *point)
{
	const char *at = getenv(PB_INSTALL_PAUSE_ENV);
	if (!at || strcmp(at, point) != 0)
		return;
	fprintf(stderr, "plugbox: install paused at %s\n", point);
	fflush(stderr);
	for (;;)
		pause();
}

/* mode: 0711 on the way to staging, where a worker without a mount tree
 * (namespaces off) must pass as PB_INSTALL_UID; nobody may list them. */
static int subdir(int parent, const char *name, mode_t mode)
{
	int fd;

	if (mkdirat(parent, name, mode) < 0 && errno != EEXIST)
		return -1;
	/* No symlink here may send our renames and deletions elsewhere. */
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		fchmod(fd, mode);
	return fd;
}

/* Open PLUGINS and its .plugbox, and take the lock: blocks while another
 * install or remove runs on the same PLUGINS. */
static int open_plugins(const char *dir, struct plugins *p)
{
	memset(p, 0, sizeof(*p));
	p->fd = p->meta = p->staging = p->old = p->lock = p->swap = -1;
	p->given = dir;
	p->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->fd < 0 || fstat(p->fd, &p->st) < 0 || !(p->path = realpath(dir, NULL))) {
		fprintf(stderr, "plugbox: --plugins %s: %s\n", dir, strerror(errno));
		return -1;
	}
	p->meta = subdir(p->fd, ".plugbox", 0711);
	if (p->meta >= 0)
		p->lock = openat(p->meta, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	/* Readable by supervisors running as other users: they share-lock it
	 * while they start a worker (watch.c). */
	if (p->lock >= 0)
		p->swap = openat(p->meta, "swap.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (p->meta < 0 || p->lock < 0 || p->swap < 0) {
		fprintf(stderr, "plugbox: %s/.plugbox: %s\n", dir, strerror(errno));
		return -1;
	}
	while (flock(p->lock, LOCK_EX) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "plugbox: %s/.plugbox/lock: %s\n", dir, strerror(errno));
			return -1;
		}
	}
	p->staging = subdir(p->meta, "staging", 0711);
	p->old = subdir(p->meta, "old", 0700);
	if (p->staging < 0 || p->old < 0) {
		fprintf(stderr, "plugbox: %s/.plugbox: %s\n", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Renaming PLUGINS/NAME waits for supervisors starting a worker: they
 * open the directory at that name and bind it into the worker by path, and
 * must find the same directory both times (watch.c). */
static void swap_lock(const struct plugins *p, int op)
{
	while (flock(p->swap, op) < 0 && errno == EINTR)
		;
}

/* Move dirfd/name into old/ as NAME.XXXXXX (the name is `plugin`). */
static int retire(struct plugins *p, int dirfd, const char *name, const char *plugin, char *out, size_t len)
{
	for (int tries = 0; tries < 100; tries++) {
		if (pb_unique_name(p->old, plugin, false, out, len) < 0)
			return -1;
		if (renameat2(dirfd, name, p->old, out, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* Delete dirfd/name unless a worker still runs from it (its supervisor
 * holds LOCK_SH). 1 deleted, 0 still in use, -1 error (errno). */
static int discard(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;

	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		if (errno != ENOTDIR && errno != ELOOP)
			return -1;
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -1 : 1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return e == EWOULDBLOCK ? 0 : -1;
	}
	/* Deleted while we hold the lock: a supervisor that opened it just
	 * before waits, then finds it gone. */
	r = pb_tree_remove(dirfd, name);
	close(fd);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 1;
}

/* Every run retries what earlier ones left: staging trees of dead installs
 * (kept in old/ if a worker uses one: an exchanged-out version whose move
 * to old/ was interrupted), and old versions no longer in use. `keep`, if
 * set, receives whether old/keep is still there. */
static void clean_up(struct plugins *p, const char *keep, bool *kept)
{
	const struct {
		int fd;
		const char *dir;
	} places[] = { { p->staging, "staging" }, { p->old, "old" } };

	if (kept)
		*kept = false;
	for (size_t i = 0; i < 2; i++) {
		int dup_fd = fcntl(places[i].fd, F_DUPFD_CLOEXEC, 0);
		DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
		struct dirent *e;
		char moved[300], name[300];

		if (!d) {
			if (dup_fd >= 0)
				close(dup_fd);
			continue;
		}
		rewinddir(d);
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			int r = discard(places[i].fd, e->d_name);
			if (r == 0 && places[i].fd == p->staging) {
				char plugin[256];
				snprintf(plugin, sizeof(plugin), "%.*s", (int)strcspn(e->d_name, "."), e->d_name);
				r = retire(p, p->staging, e->d_name, plugin, moved, sizeof(moved)) < 0 ? -1 : 0;
			}
			if (r == 0 && kept && keep && places[i].fd == p->old && !strcmp(e->d_name, keep))
				*kept = true;
			if (r < 0)
				fprintf(stderr, "plugbox: warning: cannot delete %s/.plugbox/%s/%s: %s (tried again "
				                "by the next install or remove)\n",
				        p->given, places[i].dir,
				        shown(e->d_name, name, sizeof(name)), strerror(errno));
		}
		closedir(d);
	}
}

static const char *policies_dir(const char *given)
{
	const char *env = getenv("PLUGBOX_POLICIES");
	return given ? given : env && *env ? env
	                                   : PB_POLICIES_DIR;
}

static void print_diag(void *data, bool is_error, const char *line)
{
	if (is_error)
		++*(int *)data;
	fprintf(stderr, "%s\n", line);
}

static int load_install_policy(const char *dir, struct pb_policy **pol)
{
	int errors = 0;

	/* Its errors are FILE:LINE:COL lines, as for any policy. */
	if (pb_policy_load(dir, "install", print_diag, &errors, pol) < 0) {
		if (!errors)
			fprintf(stderr, "plugbox: cannot load the unpacker's policy %s/install.policy\n", dir);
		return -1;
	}
	if (pb_policy_has_log(*pol)) {
		fprintf(stderr, "plugbox: %s/install.policy: `log` is not available to the unpacker\n", dir);
		pb_policy_free(*pol);
		return -1;
	}
	return 0;
}

/* pb_usage_error's line; the exit code, which the analyzers cannot see from here. */
static int usage(const char *fmt, const char *arg)
{
	pb_usage_error(fmt, arg);
	return PB_EXIT_USAGE;
}

/* --cache DIR / --no-cache: where the plugin's bytecode cache lives. */
struct cache_opt {
	const char *dir;
	bool off;
};

static int parse(int argc, char **argv, const char *what, const char **plugins, const char **policies,
                 const char **name, struct cache_opt *cache)
{
	static const struct option longopts[] = {
		{ "plugins", required_argument, NULL, 'p' },
		{ "policies", required_argument, NULL, 'P' },
		{ "name", required_argument, NULL, 'n' },
		{ "cache", required_argument, NULL, 'c' },
		{ "no-cache", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c == 'h')
			return pb_cli_command_help(argv[0]) == PB_EXIT_OK ? PB_EXIT_OK : PB_EXIT_USAGE;
		if (c == 'p')
			*plugins = optarg;
		else if (c == 'P' && policies)
			*policies = optarg;
		else if (c == 'n' && name)
			*name = optarg;
		else if (c == 'c')
			cache->dir = optarg;
		else if (c == 'N')
			cache->off = true;
		else if (c == ':')
			return usage("option %s needs a value", argv[optind - 1]);
		else
			return usage("unknown option '%s'", argv[optind - 1]);
	}
	if (!*plugins)
		return usage("%s needs --plugins DIR", argv[0]);
	if (cache->dir && cache->off)
		return usage("%s: --cache and --no-cache contradict each other", argv[0]);
	if (argc - optind != 1)
		return usage("%s", what);
	return -1;
}

struct source {
	const char *given;
	int wheel_fd; /* a wheel, or -1 */
	char *dir;    /* a plugin directory's path (no symlink in it when opened), or NULL */
	char id[48];  /* the directory's DEV:INO as opened: the worker copies only that one */
};

/* The fallback of open_no_symlinks: one component at a time, O_NOFOLLOW. */
static int walk_no_symlinks(const char *path, int flags)
{
	char part[NAME_MAX + 1];
	int dir = open(*path == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC), fd;
	struct stat st;

	for (const char *p = path; dir >= 0;) {
		p += strspn(p, "/");
		size_t n = strcspn(p, "/");
		if (n > NAME_MAX) {
			close(dir);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(part, n ? p : ".", n ? n : 1);
		part[n ? n : 1] = '\0';
		p += n;
		bool last = !p[strspn(p, "/")];
		fd = openat(dir, part, last ? flags | O_NOFOLLOW : O_PATH | O_NOFOLLOW | O_CLOEXEC);
		close(dir);
		if (fd < 0 || last)
			return fd;
		if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) {
			close(fd);
			errno = ELOOP;
			return -1;
		}
		dir = fd;
	}
	return -1;
}

/* Open path without following a symlink anywhere in it (ELOOP if one is
 * there): what is opened is what the path names, and stays so. */
static int open_no_symlinks(const char *path, int flags)
{
	struct open_how how = { .flags = (uint64_t)flags, .resolve = RESOLVE_NO_SYMLINKS };
	long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

	if (fd < 0 && (errno == ENOSYS || errno == EPERM))
		return walk_no_symlinks(path, flags);
	return (int)fd;
}

/* The absolute form of `path`, which has no symlink in it: ".." may then
 * be taken literally. */
static char *absolute(const char *path)
{
	char cwd[PATH_MAX], *out = malloc(2 * PATH_MAX + 2);
	size_t len = 0;

	if (!out || (*path != '/' && !getcwd(cwd, sizeof(cwd)))) {
		free(out);
		return NULL;
	}
	char *joined = malloc(2 * PATH_MAX + 2);
	if (!joined) {
		free(out);
		return NULL;
	}
	snprintf(joined, 2 * PATH_MAX + 2, "%s/%s", *path == '/' ? "" : cwd, path);
	for (char *save = NULL, *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			while (len > 0 && out[--len] != '/')
				;
			continue;
		}
		len += (size_t)sprintf(out + len, "/%s", c);
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	free(joined);
	return out;
}

/* A wheel is read through its descriptor, so a symlink to one is fine. A
 * directory is bound into the worker by path, so it must have none: the
 * worker then checks that what it sees is the directory opened here. */
static int open_source(const char *arg, struct source *s)
{
	const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
	struct stat st;
	char buf[PATH_MAX];
	bool linked = false;

	s->given = arg;
	s->dir = NULL;
	s->wheel_fd = open_no_symlinks(arg, flags);
	if (s->wheel_fd < 0 && errno == ELOOP) {
		linked = true;
		s->wheel_fd = open(arg, flags);
	}
	if (s->wheel_fd < 0 || fstat(s->wheel_fd, &st) < 0) {
		fprintf(stderr, "plugbox: cannot install %s: %s\n", shown(arg, buf, sizeof(buf)), strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		close(s->wheel_fd);
		s->wheel_fd = -1;
		if (linked) {
			fprintf(stderr, "plugbox: cannot install %s: its path goes through a symlink (a plugin "
			                "directory is installed only by its real path)\n",
			        shown(arg, buf, sizeof(buf)));
			return -1;
		}
		snprintf(s->id, sizeof(s->id), "%llu:%llu", (unsigned long long)st.st_dev,
		         (unsigned long long)st.st_ino);
		if (!(s->dir = absolute(arg))) {
			fprintf(stderr, "plugbox: cannot install %s: %s\n", shown(arg, buf, sizeof(buf)), strerror(errno));
			return -1;
		}
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "plugbox: cannot install %s: neither a wheel nor a plugin directory\n",
		        shown(arg, buf, sizeof(buf)));
		return -1;
	}
	if ((uint64_t)st.st_size > PB_INSTALL_MAX_BYTES) {
		fprintf(stderr, "plugbox: cannot install %s: the wheel is larger than %llu bytes\n",
		        shown(arg, buf, sizeof(buf)), (unsigned long long)PB_INSTALL_MAX_BYTES);
		return -1;
	}
	fcntl(s->wheel_fd, F_SETFL, 0);
	return 0;
}

static int exit_code(enum pb_install_status st)
{
	return st == PB_INSTALL_REFUSED ? PB_EXIT_USAGE : st == PB_INSTALL_KILLED ? PB_EXIT_VIOLATION
	                                                                          : PB_EXIT_WORKER;
}

/* Unpack into a fresh staging directory and check it: 0 with sname (the
 * staging entry) and res filled, or the exit code after saying why. */
static int unpack(struct plugins *p, const struct source *src, const struct pb_policy *pol,
                  const char *worker, const char *name, char *sname, size_t sname_len,
                  struct pb_install_result *res)
{
	char staging[PATH_MAX + 64], why[512], shown_src[PATH_MAX];
	struct pb_tree_stats stats;
	bool root = geteuid() == 0;
	int sfd;

	shown(src->given, shown_src, sizeof(shown_src));
	if (pb_unique_name(p->staging, name ? name : "wheel", true, sname, sname_len) < 0 ||
	    (sfd = openat(p->staging, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		fprintf(stderr, "plugbox: cannot make a staging directory in %s/.plugbox/staging: %s\n", p->given,
		        strerror(errno));
		return PB_EXIT_USAGE;
	}
	/* As root the worker runs as a uid claimed for this install alone (no
	 * plugin's, no other helper's), which must own what it writes. */
	uid_t hu = PB_INSTALL_UID;
	int hfd = -1;
	if (root && pb_uid_claim_helper(&hfd, &hu, why, sizeof(why)) < 0) {
		fprintf(stderr, "plugbox: cannot install %s: %s\n", shown_src, why);
		close(sfd);
		return PB_EXIT_WORKER;
	}
	if (root && fchown(sfd, hu, hu) < 0) {
		fprintf(stderr, "plugbox: cannot prepare the staging directory: %s\n", strerror(errno));
		close(sfd);
		pb_uid_release(&hfd);
		return PB_EXIT_WORKER;
	}
	snprintf(staging, sizeof(staging), "%s/.plugbox/staging/%s", p->path, sname);
	const struct pb_install_job job = {
		worker,
		pol,
		src->dir ? "dir" : "wheel",
		src->wheel_fd,
		staging,
		src->dir,
		NULL,
		name,
		hu,
		hu,
		src->dir ? src->id : NULL,
	};
	pb_install_run(&job, res);
	if (res->status == PB_INSTALL_OK &&
	    pb_tree_check(sfd, root, p->st.st_uid, p->st.st_gid, &stats, why, sizeof(why)) < 0) {
		res->status = PB_INSTALL_FAILED;
		snprintf(res->message, sizeof(res->message), "the unpacker left something it must not: %s", why);
	}
	if (res->status == PB_INSTALL_OK && syncfs(sfd) < 0) {
		res->status = PB_INSTALL_FAILED;
		snprintf(res->message, sizeof(res->message), "cannot write the plugin to disk: %s", strerror(errno));
	}
	close(sfd);
	if (res->status != PB_INSTALL_OK) {
		fprintf(stderr, "plugbox: cannot install %s: %s\n", shown_src, res->message);
		discard(p->staging, sname);
		pb_uid_release(&hfd);
		return exit_code(res->status);
	}
	pb_uid_release(&hfd); /* the unpacker is gone and its tree re-owned */
	return 0;
}

/* The bytecode cache of the plugin being installed: built before the swap,
 * put in place after it. */
struct install_cache {
	int root_fd;
	char *root;
	struct pb_policy *policy;
	struct pb_cache_build *build;
};

/* The cache root for this PLUGINS, open (made when `create`), or -1 when
 * there is none to use (--no-cache, or it cannot be made or is not ours). */
static int open_cache(const struct plugins *p, const struct cache_opt *cache, bool create, char **root)
{
	char why[512];
	int fd;

	*root = NULL;
	if (cache->off)
		return -1;
	if (cache->dir)
		*root = pb_cli_cache_path(cache->dir);
	else if (asprintf(root, "%s/.plugbox/cache", p->path) < 0)
		*root = NULL;
	fd = *root ? pb_cache_root_open(*root, create, why, sizeof(why)) : -1;
	if (fd < 0) {
		free(*root);
		*root = NULL;
	}
	return fd;
}

/* Compile the staging tree sname as PLUGINS/NAME will be; without a cache
 * or compile.policy there is nothing to build, and a build that fails
 * leaves the plugin uncached: neither fails the install. */
static void cache_build(struct install_cache *ic, const struct plugins *p, const struct cache_opt *cache,
                        const char *policies, const char *worker, const char *name, const char *sname)
{
	char plugin_dir[PATH_MAX + 130], staging[PATH_MAX + 330], why[512];

	ic->build = NULL;
	ic->policy = NULL;
	if ((ic->root_fd = open_cache(p, cache, true, &ic->root)) < 0 ||
	    pb_cache_policy_load(policies, &ic->policy, why, sizeof(why)) < 0)
		return;
	snprintf(plugin_dir, sizeof(plugin_dir), "%s/%s", p->path, name);
	snprintf(staging, sizeof(staging), "%s/.plugbox/staging/%s", p->path, sname);
	const struct pb_cache_spec spec = {
		.root_fd = ic->root_fd,
		.root = ic->root,
		.name = name,
		.plugin_dir = plugin_dir,
		.source = staging,
		.worker_path = worker,
		.policy = ic->policy,
		.wait_lock = true,
		.force = true,
	};
	if (pb_cache_build_start(&spec, &ic->build, why, sizeof(why)) < 0)
		fprintf(stderr, "plugbox: warning: the bytecode cache of %s was not built: %s (it runs uncached)\n",
		        name, why);
	else if (ic->build)
		pb_cache_build_wait(ic->build);
}

/* After the swap: the cache goes in place, stamped with the new directory. */
static void cache_commit(struct install_cache *ic, const char *name)
{
	unsigned compiled, skipped;
	char why[512];

	if (ic->build && pb_cache_build_commit(ic->build, NULL, &compiled, &skipped, why, sizeof(why)) < 0)
		fprintf(stderr, "plugbox: warning: the bytecode cache of %s was not built: %s (it runs uncached)\n",
		        name, why);
}

static void cache_release(struct install_cache *ic)
{
	pb_cache_build_free(ic->build);
	if (ic->policy)
		pb_policy_free(ic->policy);
	if (ic->root_fd >= 0)
		close(ic->root_fd);
	free(ic->root);
}

/* The version of the plugin about to be replaced, read in a sandbox of
 * its own: it is untrusted too. "" when it does not say. */
static void old_version(struct plugins *p, const struct pb_policy *pol, const char *worker,
                        const char *name, char *out, size_t len)
{
	char old[PATH_MAX + 130];
	struct pb_install_result res;

	uid_t hu = PB_INSTALL_UID;
	int hfd = -1;
	char why[512];

	*out = '\0';
	if (geteuid() == 0 && pb_uid_claim_helper(&hfd, &hu, why, sizeof(why)) < 0)
		return; /* no uid of its own: the old version goes unsaid */
	snprintf(old, sizeof(old), "%s/%s", p->path, name);
	const struct pb_install_job job = {
		worker,
		pol,
		"version",
		-1,
		NULL,
		NULL,
		old,
		NULL,
		hu,
		hu,
		NULL,
	};
	pb_install_run(&job, &res);
	pb_uid_release(&hfd);
	snprintf(out, len, "%s", res.status == PB_INSTALL_OK ? res.version : "");
}

/* One `plugbox install`, carried from step to step. */
struct install {
	const char *plugins, *policies, *name, *worker;
	struct cache_opt cache;
	struct install_cache ic;
	struct pb_install_result res;
	struct pb_policy *pol;
	struct plugins p;
	struct source src;
	char sname[300];   /* the staging entry */
	char was[65];      /* the version replaced, "" if none said */
	char retired[300]; /* where the replaced version went in old/ */
	bool replaced, kept;
};

/* The command line, and the source it names opened: -1 to go on, or the
 * exit code. */
static int install_options(struct install *in, int argc, char **argv)
{
	char buf[300];
	int code = parse(argc, argv, "install needs one WHEEL_OR_DIR", &in->plugins, &in->policies, &in->name,
	                 &in->cache);

	if (code >= 0)
		return code;
	if (in->name && !plugin_name_ok(in->name))
		return usage("--name '%s' is not a plugin name ([A-Za-z0-9_-]+, at most 128)",
		             shown(in->name, buf, sizeof(buf)));
	if (open_source(argv[optind], &in->src) < 0)
		return PB_EXIT_USAGE;
	/* A directory is named for itself unless --name says otherwise. */
	if (in->src.dir && !in->name) {
		in->name = strrchr(in->src.dir, '/') + 1;
		if (!plugin_name_ok(in->name)) {
			fprintf(stderr, "plugbox: cannot install %s: '%s' is not a plugin name ([A-Za-z0-9_-]+); "
			                "give one with --name\n",
			        in->src.given, shown(in->name, buf, sizeof(buf)));
			return PB_EXIT_USAGE;
		}
	}
	return -1;
}

/* Unpacked and checked in staging, with the replaced version's number
 * read and the bytecode cache built: 0, or the exit code. */
static int install_stage(struct install *in)
{
	struct stat st;
	int code;

	if (load_install_policy(policies_dir(in->policies), &in->pol) < 0 || open_plugins(in->plugins, &in->p) < 0)
		return PB_EXIT_USAGE;
	clean_up(&in->p, NULL, NULL);
	code = unpack(&in->p, &in->src, in->pol, in->worker, in->name, in->sname, sizeof(in->sname), &in->res);
	if (code != 0)
		return code;
	if (!in->name)
		in->name = in->res.name;
	/* Only a real directory is read for its version: a symlink there is
	 * replaced like anything else, but not followed. */
	if (fstatat(in->p.fd, in->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		old_version(&in->p, in->pol, in->worker, in->name, in->was, sizeof(in->was));
	cache_build(&in->ic, &in->p, &in->cache, policies_dir(in->policies), in->worker, in->name, in->sname);
	test_pause("unpacked");
	return 0;
}

/* PLUGINS/NAME becomes the staged tree in one rename; a replaced version
 * goes to old/. 0, or the exit code. */
static int install_swap(struct install *in)
{
	struct plugins *p = &in->p;

	swap_lock(p, LOCK_EX);
	int swapped = renameat2(p->staging, in->sname, p->fd, in->name, RENAME_NOREPLACE);
	if (swapped < 0 && errno == EEXIST) {
		swapped = renameat2(p->staging, in->sname, p->fd, in->name, RENAME_EXCHANGE);
		in->replaced = swapped == 0;
	}
	int swap_errno = errno;
	swap_lock(p, LOCK_UN);
	errno = swap_errno;
	if (swapped < 0) {
		fprintf(stderr, "plugbox: cannot install %s as %s/%s: %s\n", in->src.given, p->given, in->name,
		        strerror(errno));
		discard(p->staging, in->sname);
		return PB_EXIT_WORKER;
	}
	if (in->replaced) {
		test_pause("exchanged");
		/* staging/sname is the old version now. Should this fail, the
		 * next run finds it in staging and treats it the same way. */
		if (retire(p, p->staging, in->sname, in->name, in->retired, sizeof(in->retired)) == 0)
			test_pause("retired");
	}
	fsync(p->fd);
	cache_commit(&in->ic, in->name);
	clean_up(p, in->retired, &in->kept);
	return 0;
}

/* The one line that says what happened. */
static int install_report(const struct install *in)
{
	const struct pb_install_result *res = &in->res;

	printf("installed %s%s%s", in->name, *res->version ? " " : "", res->version);
	if (in->replaced && *in->was && !strcmp(in->was, res->version))
		printf(" (reinstalled)");
	else if (in->replaced && *in->was)
		printf(" (upgraded from %s)", in->was);
	else if (in->replaced)
		printf(" (replaced a version that did not say its version)");
	if (res->ignored)
		printf("; skipped %lu files of its .data scripts, headers and data", res->ignored);
	if (in->kept)
		printf("; the old version stays in %s/.plugbox/old until the worker using it ends", in->p.given);
	putchar('\n');
	return fflush(stdout) == 0 ? PB_EXIT_OK : PB_EXIT_WORKER;
}

static void install_release(struct install *in)
{
	cache_release(&in->ic);
	if (in->pol)
		pb_policy_free(in->pol);
	if (in->src.wheel_fd >= 0)
		close(in->src.wheel_fd);
	free(in->src.dir);
	close_plugins(&in->p);
}

int pb_cmd_install(int argc, char **argv)
{
	const char *worker = getenv("PLUGBOX_WORKER");
	struct install in = {
		.worker = worker && *worker ? worker : PB_WORKER_PATH,
		.ic = { .root_fd = -1 },
		.p = { .fd = -1, .meta = -1, .staging = -1, .old = -1, .lock = -1, .swap = -1 },
		.src = { .wheel_fd = -1 },
	};
	int code = install_options(&in, argc, argv);

	if (code < 0 && (code = install_stage(&in)) == 0 && (code = install_swap(&in)) == 0)
		code = install_report(&in);
	install_release(&in);
	return code;
}

int pb_cmd_remove(int argc, char **argv)
{
	const char *plugins = NULL;
	struct cache_opt cache = { 0 };
	struct plugins p = { .fd = -1, .meta = -1, .staging = -1, .old = -1, .lock = -1 };
	char retired[300] = "", buf[300], *root;
	struct stat st;
	bool kept = false;
	int code = parse(argc, argv, "remove needs one NAME", &plugins, NULL, NULL, &cache);

	if (code >= 0)
		return code;
	const char *name = argv[optind];
	if (!plugin_name_ok(name))
		return usage("'%s' is not a plugin name ([A-Za-z0-9_-]+)", shown(name, buf, sizeof(buf)));
	code = PB_EXIT_USAGE;
	if (open_plugins(plugins, &p) < 0)
		goto out;
	clean_up(&p, NULL, NULL);
	if (fstatat(p.fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			fprintf(stderr, "plugbox: remove: no plugin '%s' in %s\n", name, p.given);
		else
			fprintf(stderr, "plugbox: remove: %s/%s: %s\n", p.given, name, strerror(errno));
		goto out;
	}
	swap_lock(&p, LOCK_EX);
	int retired_ok = retire(&p, p.fd, name, name, retired, sizeof(retired));
	int retire_errno = errno;
	swap_lock(&p, LOCK_UN);
	errno = retire_errno;
	if (retired_ok < 0) {
		fprintf(stderr, "plugbox: cannot remove %s/%s: %s\n", p.given, name, strerror(errno));
		code = PB_EXIT_WORKER;
		goto out;
	}
	fsync(p.fd);
	clean_up(&p, retired, &kept);
	/* Its bytecode cache goes with it (waiting for a build of it to end). */
	int cache_fd = open_cache(&p, &cache, false, &root);
	if (cache_fd >= 0 && (code = pb_cache_remove(cache_fd, name)) < 0)
		fprintf(stderr, "plugbox: warning: cannot delete the bytecode cache %s/%s: %s\n", root, name,
		        strerror(-code));
	if (cache_fd >= 0)
		close(cache_fd);
	free(root);
	if (kept)
		printf("removed %s; its files stay in %s/.plugbox/old until the worker using them ends\n", name, p.given);
	else
		printf("removed %s\n", name);
	code = fflush(stdout) == 0 ? PB_EXIT_OK : PB_EXIT_WORKER;
out:
	close_plugins(&p);
	return code;
}
