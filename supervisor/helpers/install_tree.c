/* install_tree.c - the directory trees `plugbox install` checks and deletes.
 *
 * A staging directory was written by an install worker, and an old
 * version was written by whoever installed it: both are untrusted trees.
 * Nothing here follows a symlink (openat with O_NOFOLLOW, fstatat with
 * AT_SYMLINK_NOFOLLOW, unlinkat), so a link planted in a tree can neither
 * lead a check out of it nor make a deletion remove something elsewhere.
 * The check recurses at most PB_INSTALL_MAX_DEPTH levels; deletion keeps
 * one descriptor and climbs back with "..", so any depth works.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/install.h"
#include "toolkit/sanitize.h"

struct walk {
	bool chown_tree;
	uid_t uid;
	gid_t gid;
	struct pb_tree_stats *stats;
	char *why;
	size_t why_len;
	char path[1200]; /* the entry being looked at, relative, for messages */
};

static int fail(struct walk *wk, const char *what)
{
	/* the path is the worker's choice of name: nothing in it reaches a terminal raw */
	pb_sanitize_inplace(wk->path, sizeof(wk->path), 0);
	snprintf(wk->why, wk->why_len, "%s%s%s", wk->path, *wk->path ? ": " : "", what);
	return -1;
}

/* Directories 0755 and files 0644, owned by PLUGINS' owner: what a plugin
 * worker, running as another uid, needs to read it, and nothing more. */
static int settle(struct walk *wk, int fd, mode_t mode)
{
	if (fchmod(fd, mode) < 0 || (wk->chown_tree && fchown(fd, wk->uid, wk->gid) < 0))
		return fail(wk, strerror(errno));
	return 0;
}

static int check_dir(struct walk *wk, int fd, unsigned depth)
{
	size_t path_len = strlen(wk->path);
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *e;
	int r = 0;

	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return fail(wk, strerror(errno));
	}
	if (depth > PB_INSTALL_MAX_DEPTH) {
		closedir(d);
		return fail(wk, "nested deeper than the limit");
	}
	while (r == 0 && (e = readdir(d))) {
		struct stat st, again;
		int sub;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(wk->path + path_len, sizeof(wk->path) - path_len, "%s%s", path_len ? "/" : "", e->d_name);
		if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = fail(wk, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			if (++wk->stats->dirs > PB_INSTALL_MAX_FILES) {
				r = fail(wk, "more directories than the limit");
				break;
			}
			sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 || fstat(sub, &again) < 0 || again.st_ino != st.st_ino || again.st_dev != st.st_dev)
				r = fail(wk, "changed while it was checked");
			else if ((r = check_dir(wk, sub, depth + 1)) == 0)
				r = settle(wk, sub, 0755);
			if (sub >= 0)
				close(sub);
		} else if (S_ISREG(st.st_mode)) {
			/* A second link would let the plugin's files and some other
			 * file be one and the same. */
			if (st.st_nlink != 1) {
				r = fail(wk, "a file with more than one link");
				break;
			}
			wk->stats->bytes += (uint64_t)st.st_size;
			if (++wk->stats->files > PB_INSTALL_MAX_FILES || wk->stats->bytes > PB_INSTALL_MAX_BYTES) {
				r = fail(wk, "more files or bytes than the limits");
				break;
			}
			sub = openat(fd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
			if (sub < 0 || fstat(sub, &again) < 0 || again.st_ino != st.st_ino || !S_ISREG(again.st_mode))
				r = fail(wk, "changed while it was checked");
			else
				r = settle(wk, sub, 0644);
			if (sub >= 0)
				close(sub);
		} else {
			r = fail(wk, S_ISLNK(st.st_mode) ? "a symlink" : "a special file");
		}
		wk->path[path_len] = '\0';
	}
	closedir(d);
	return r;
}

int pb_tree_check(int dirfd, bool chown_tree, uid_t uid, gid_t gid, struct pb_tree_stats *stats,
                  char *why, size_t why_len)
{
	struct walk wk = { chown_tree, uid, gid, stats, why, why_len, "" };

	memset(stats, 0, sizeof(*stats));
	if (check_dir(&wk, dirfd, 0) < 0)
		return -1;
	return settle(&wk, dirfd, 0755);
}

/* Deleting a tree its owner made unwritable: the owner may chmod it back. */
static void make_writable(int fd)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700)
		fchmod(fd, (st.st_mode & 07777) | 0700);
}

#define REMOVE_STEPS_MAX 10000000L

int pb_tree_remove(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	size_t depth = 0;
	long steps = 0;

	if (fd < 0) {
		if (errno == ENOTDIR || errno == ELOOP)
			return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -errno : 0;
		return errno == ENOENT ? 0 : -errno;
	}
	for (;;) {
		int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0), down = -1, err = 0;
		DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
		struct dirent *e;

		if (!d) {
			err = -errno;
			if (dup_fd >= 0)
				close(dup_fd);
			close(fd);
			return err;
		}
		/* The copy shares fd's position, which the last pass left at the end. */
		rewinddir(d);
		make_writable(fd);
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (unlinkat(fd, e->d_name, 0) == 0 || errno == ENOENT)
				continue;
			if (errno == EISDIR) {
				if (unlinkat(fd, e->d_name, AT_REMOVEDIR) == 0 || errno == ENOENT)
					continue;
				if (errno == ENOTEMPTY || errno == EEXIST) {
					down = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
					if (down >= 0)
						break;
				}
			}
			err = -errno;
			break;
		}
		closedir(d);
		if (err < 0 || ++steps > REMOVE_STEPS_MAX) {
			close(fd);
			return err < 0 ? err : -ELOOP;
		}
		if (down >= 0) {
			close(fd);
			fd = down;
			depth++;
			continue;
		}
		if (depth == 0)
			break;
		/* Emptied: back to its parent, which removes it on its next pass. */
		int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		if (up < 0)
			return -errno;
		fd = up;
		depth--;
	}
	close(fd);
	return unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

int pb_unique_name(int dirfd, const char *prefix, bool mkdir_it, char *out, size_t len)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	for (int tries = 0; tries < 100; tries++) {
		unsigned char r[6];
		char suffix[7];
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			return -1;
		for (int i = 0; i < 6; i++)
			suffix[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
		suffix[6] = '\0';
		snprintf(out, len, "%s.%s", prefix, suffix);
		if (!mkdir_it)
			return 0;
		if (mkdirat(dirfd, out, 0700) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}
