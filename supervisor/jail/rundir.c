/* rundir.c - a supervisor's own directory in $TMPDIR, and the sweep of
 * dead supervisors' directories.
 *
 * Per-worker directories (view directories, their .hosts files, install
 * roots: spawn.c) live in one directory per supervisor process,
 * $TMPDIR/plugbox-run-UID/NS-PID-START (NS: the pid namespace's inode, START:
 * /proc/PID/stat field 22), so that what a supervisor killed with SIGKILL
 * left behind is found by name. The first supervisor process that needs
 * such a directory removes its dead siblings' (the process gone, a zombie,
 * or its pid reused: another start time), once, a bounded number of
 * entries, and only what plugbox makes: directories and files of our uid,
 * opened with O_NOFOLLOW and removed with unlinkat relative to them. A
 * sibling of another pid namespace is never judged (its pid means nothing
 * here). If plugbox-run-UID is not a directory of ours that only we may
 * write (another user made the name first), the directories are made flat
 * in $TMPDIR as before, and nothing is swept. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail/rundir.h"

static pthread_mutex_t run_dir_lock = PTHREAD_MUTEX_INITIALIZER;
static bool run_dir_tried;
static char *run_dir; /* NULL: flat in $TMPDIR */
static pid_t run_dir_pid;

enum { SWEEP_BUDGET = 1024 }; /* directory entries looked at by one sweep */

const char *pb_tmp_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	return tmp && tmp[0] == '/' ? tmp : "/tmp";
}

static bool fd_ours(int fd, mode_t type)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type && st.st_uid == geteuid() &&
	       (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* A process's start time (field 22 of /proc/PID/stat); -ESRCH when it is
 * gone or a zombie (its supervisor is dead either way). */
static int proc_start(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 ? -ESRCH : -EIO;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EINVAL;
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return -ESRCH;
	for (int field = 3; field < 22; field++) {
		if (!(p = strchr(p, ' ')))
			return -EINVAL;
		p++;
	}
	char *end;
	errno = 0;
	*start = strtoull(p, &end, 10);
	return errno || end == p ? -EINVAL : 0;
}

/* "NS-PID-START" of this process, or -errno. */
static int run_dir_name(char *buf, size_t len)
{
	struct stat st;
	unsigned long long start = 0;
	int r;

	if (stat("/proc/self/ns/pid", &st) < 0)
		return -errno;
	if ((r = proc_start(getpid(), &start)) < 0)
		return r;
	return snprintf(buf, len, "%llu-%d-%llu", (unsigned long long)st.st_ino, (int)getpid(), start) <
	                       (int)len
	               ? 0
	               : -ENAMETOOLONG;
}

/* Whether entry `name` of dirfd is a `type` of our uid, not followed. */
static bool entry_ours(int dirfd, const char *name, mode_t type)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == type &&
	       st.st_uid == geteuid();
}

/* Calls fn(dirfd, entry, arg) for each entry of the directory `name` of
 * parent (opened without following a link, ours, written by nobody else),
 * then removes it (fails harmlessly when something is left). */
static void remove_tree_level(int parent, const char *name, int *budget,
                              void (*fn)(int, const char *, int *))
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return;
	if (!fd_ours(fd, S_IFDIR) || !(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	struct dirent *e;
	while (*budget > 0 && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		--*budget;
		fn(dirfd(d), e->d_name, budget);
	}
	closedir(d);
	unlinkat(parent, name, AT_REMOVEDIR);
}

/* In a view directory: the link to the plugin, nothing else. */
static void sweep_view_entry(int dirfd, const char *name, int *budget)
{
	(void)budget;
	if (entry_ours(dirfd, name, S_IFLNK))
		unlinkat(dirfd, name, 0);
}

/* In a dead supervisor's directory: plugbox-NAME-XXXXXX view directories
 * and their .hosts files. */
static void sweep_run_entry(int dirfd, const char *name, int *budget)
{
	size_t n = strlen(name);

	if (strncmp(name, "plugbox-", 8) != 0)
		return;
	if (n > 6 && strcmp(name + n - 6, ".hosts") == 0) {
		if (entry_ours(dirfd, name, S_IFREG))
			unlinkat(dirfd, name, 0);
	} else if (entry_ours(dirfd, name, S_IFDIR)) {
		remove_tree_level(dirfd, name, budget, sweep_view_entry);
	}
}

/* NS-PID-START exactly as run_dir_name writes it: v[0..2]. */
static bool parse_run_name(const char *s, unsigned long long v[3])
{
	for (int i = 0; i < 3; i++) {
		char *end;
		if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
			return false;
		errno = 0;
		v[i] = strtoull(s, &end, 10);
		if (errno || *end != (i < 2 ? '-' : '\0'))
			return false;
		s = end + 1;
	}
	return v[1] > 0 && v[1] <= INT_MAX;
}

/* The directories of dead supervisors of our pid namespace, in base. */
static void sweep_dead(int base, const char *ours)
{
	unsigned long long mine[3], v[3], now = 0;
	int budget = SWEEP_BUDGET;
	DIR *d;
	int fd = dup(base);

	if (fd < 0 || !parse_run_name(ours, mine) || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	while (budget > 0 && (e = readdir(d))) {
		budget--;
		if (strcmp(e->d_name, ours) == 0 || !parse_run_name(e->d_name, v) || v[0] != mine[0])
			continue;
		int r = proc_start((pid_t)v[1], &now);
		if (r == 0 && now == v[2])
			continue; /* alive */
		if (r < 0 && r != -ESRCH)
			continue; /* cannot tell: keep it */
		remove_tree_level(base, e->d_name, &budget, sweep_run_entry);
	}
	closedir(d);
}

/* atexit: this supervisor's own directory, when its workers left it empty. */
static void remove_run_dir(void)
{
	if (run_dir && getpid() == run_dir_pid)
		rmdir(run_dir);
}

/* Under run_dir_lock. */
static void open_run_dir(void)
{
	char name[96] = "", *base = NULL;
	int bfd = -1, fd;

	run_dir_tried = true;
	if (run_dir_name(name, sizeof(name)) < 0 ||
	    asprintf(&base, "%s/plugbox-run-%u", pb_tmp_dir(), (unsigned)geteuid()) < 0)
		return;
	/* fchmod: whatever the umask, workers of other uids traverse it */
	if ((mkdir(base, 0711) < 0 && errno != EEXIST) ||
	    (bfd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 || !fd_ours(bfd, S_IFDIR) ||
	    fchmod(bfd, 0711) < 0)
		goto out;
	sweep_dead(bfd, name);
	if (mkdirat(bfd, name, 0711) < 0 && errno != EEXIST)
		goto out;
	if ((fd = openat(bfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		goto out;
	bool ok = fd_ours(fd, S_IFDIR) && fchmod(fd, 0711) == 0;
	close(fd);
	if (ok && asprintf(&run_dir, "%s/%s", base, name) < 0)
		run_dir = NULL;
	if (run_dir) {
		run_dir_pid = getpid();
		atexit(remove_run_dir);
	}
out:
	if (bfd >= 0)
		close(bfd);
	free(base);
}

const char *pb_run_dir(void)
{
	const char *dir;

	pthread_mutex_lock(&run_dir_lock);
	if (!run_dir_tried)
		open_run_dir();
	/* run_dir, once set, is never changed nor freed */
	dir = run_dir ? run_dir : pb_tmp_dir();
	pthread_mutex_unlock(&run_dir_lock);
	return dir;
}
