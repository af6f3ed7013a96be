/* watch.c - notice that a plugin's directory was replaced (plugbox install
 * over it, plugbox remove), so that its next calls go to a worker on the
 * new directory while the call in flight finishes on the old one.
 *
 * Installers swap directories with renameat2(RENAME_EXCHANGE): the name
 * PLUGINS/NAME always exists, and the old tree moves aside to be deleted
 * later. A worker reads its plugin's files lazily (imports at call time),
 * so the old tree must outlive the worker: while a worker lives, the
 * supervisor holds a shared flock on its directory, and the installer
 * deletes an old tree only when it can lock it exclusively. The worker
 * binds the directory by path after the supervisor opened it, so the two
 * must not differ: installers rename under PLUGINS/.plugbox/swap.lock held
 * exclusively, and a worker's start holds it shared until its binds are
 * made.
 *
 * Which directory a worker has is its (device, inode) when it started. An
 * inotify watch on PLUGINS says when a name changed; new calls drain it
 * before they are queued, so a call made after an install has returned
 * never reaches the old worker. Without inotify (its per-user limit
 * reached), a new call compares the directory itself.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/changes.h"
#include "runtime/process.h"
#include "runtime/runtime.h"
#include "runtime/watch.h"

int pb_watch_init(pb_supervisor *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->watch_source };

	s->watch_source.proc = NULL;
	s->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->watch_fd < 0)
		return 0; /* the fallback in pb_watch_check */
	if (inotify_add_watch(s->watch_fd, s->plugins_dir, IN_ONLYDIR | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO) < 0 ||
	    epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->watch_fd, &ev) < 0) {
		close(s->watch_fd);
		s->watch_fd = -1;
	}
	return 0;
}

void pb_watch_free(pb_supervisor *s)
{
	if (s->watch_fd >= 0)
		close(s->watch_fd);
	s->watch_fd = -1;
}

void pb_watch_drain(pb_supervisor *s)
{
	/* Aligned as inotify_event requires. */
	char buf[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)]
	        __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	if (s->watch_fd < 0)
		return;
	while ((n = read(s->watch_fd, buf, sizeof(buf))) > 0) {
		for (char *at = buf; at < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)at;
			at += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				pb_runtime_dir_changed(s, NULL); /* lost track: look at every plugin */
				pb_changes_rescan(s);
			} else if (ev->len > 0 && ev->name[0] != '.') {
				pb_runtime_dir_changed(s, ev->name);
				pb_changes_note(s, ev->name);
			}
		}
	}
}

void pb_watch_check(pb_supervisor *s, const char *name)
{
	if (s->watch_fd >= 0)
		pb_watch_drain(s);
	else {
		pb_runtime_dir_changed(s, name);
		pb_changes_note(s, name);
	}
}

int pb_watch_pin(pb_supervisor *s, struct process *w, char *why, size_t why_len)
{
	char dir[PATH_MAX];
	struct stat st;

	w->dir_fd = -1;
	w->swap_fd = -1;
	/* The worker binds its directory by path, after this open: an
	 * installer's rename in between would give it another directory than
	 * the one locked here. Installers rename under swap.lock held
	 * exclusively; share it until the worker's binds are made
	 * (pb_watch_started). No .plugbox: nothing was ever installed here. */
	if (snprintf(dir, sizeof(dir), "%s/.plugbox/swap.lock", s->plugins_dir) < (int)sizeof(dir)) {
		w->swap_fd = open(dir, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		while (w->swap_fd >= 0 && flock(w->swap_fd, LOCK_SH) < 0 && errno == EINTR)
			;
	}
	if (snprintf(dir, sizeof(dir), "%s/%s", s->plugins_dir, w->name) >= (int)sizeof(dir)) {
		snprintf(why, why_len, "its directory's path is too long");
		return -ENAMETOOLONG;
	}
	/* An installer deleting a replaced tree holds it exclusively: that tree
	 * is no longer at this name, so open the name again. */
	for (int tries = 0; tries < 20; tries++) {
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			snprintf(why, why_len, "%s: %s", dir, strerror(e));
			return -e;
		}
		if (flock(fd, LOCK_SH | LOCK_NB) == 0 && fstat(fd, &st) == 0) {
			w->dir_fd = fd;
			w->dir_dev = st.st_dev;
			w->dir_ino = st.st_ino;
			return 0;
		}
		close(fd);
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	snprintf(why, why_len, "%s stays locked by an installer", dir);
	return -EBUSY;
}

void pb_watch_started(struct process *w)
{
	if (w->swap_fd >= 0)
		close(w->swap_fd);
	w->swap_fd = -1;
}

void pb_watch_unpin(struct process *w)
{
	pb_watch_started(w);
	if (w->dir_fd >= 0)
		close(w->dir_fd); /* drops the lock */
	w->dir_fd = -1;
}

bool pb_watch_outdated(const pb_supervisor *s, const struct process *w)
{
	char dir[PATH_MAX];
	struct stat st;

	if (w->dir_fd < 0)
		return false;
	if (snprintf(dir, sizeof(dir), "%s/%s", s->plugins_dir, w->name) >= (int)sizeof(dir) ||
	    stat(dir, &st) < 0)
		return true;
	return st.st_dev != w->dir_dev || st.st_ino != w->dir_ino;
}
