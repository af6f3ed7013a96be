/* uids.c - per-plugin uids that no two supervisors share.
 *
 * Run as root, a supervisor gives each plugin its own uid (and the same
 * gid) in [PB_PLUGIN_UID_BASE, +PB_PLUGIN_UID_RANGE), so that the kernel's
 * per-uid accounting (RLIMIT_NPROC above all) and its signal permission
 * checks keep plugins apart. The uid starts from a hash of the plugin's
 * directory, stable across restarts; but a hash collides (a name that
 * collides with another deployment's plugin is found in under a second),
 * and two supervisors knew nothing of each other's choice: one plugin
 * could take another's whole thread quota.
 *
 * So a uid is claimed. PB_UID_LOCK_FILE holds one byte per uid of the
 * range, and a supervisor holds an open-file-description lock (F_OFD_SETLK)
 * on the byte of each uid its plugins use, for as long as it runs: the
 * kernel drops the locks when the process ends, however it ends, so a
 * crashed supervisor leaves nothing stale. A uid whose byte another
 * supervisor holds is skipped, and so is one this supervisor gave another
 * of its plugins (its own locks never conflict with each other). Locks
 * beyond the end of the file are fine: it stays empty.
 *
 * The directory and file are root's and nobody else may write them; a
 * lock file that cannot be opened fails the plugin's start, it does not
 * fall back to unchecked uids.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jail/uids.h"

/* Root's, a directory (or regular file), and writable by root alone. */
static bool owned_by_root(const struct stat *st, bool dir)
{
	return st->st_uid == 0 && (dir ? S_ISDIR(st->st_mode) : S_ISREG(st->st_mode)) &&
	       !(st->st_mode & (S_IWGRP | S_IWOTH));
}

static int open_lock_file(char *why, size_t why_len)
{
	struct stat st;
	int fd;

	if (mkdir(PB_UID_LOCK_DIR, 0755) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(why, why_len, "identity: cannot create %s for the plugin uid claims: %s", PB_UID_LOCK_DIR,
		         strerror(e));
		return -e;
	}
	if (lstat(PB_UID_LOCK_DIR, &st) < 0 || !owned_by_root(&st, true)) {
		snprintf(why, why_len, "identity: %s is not a directory only root may write; plugin uids "
		                       "cannot be claimed",
		         PB_UID_LOCK_DIR);
		return -EPERM;
	}
	fd = open(PB_UID_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(why, why_len, "identity: cannot open %s: %s", PB_UID_LOCK_FILE, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 || !owned_by_root(&st, false)) {
		close(fd);
		snprintf(why, why_len, "identity: %s is not a file only root may write", PB_UID_LOCK_FILE);
		return -EPERM;
	}
	return fd;
}

/* 0: ours now; -EAGAIN: another supervisor's; else an error. */
static int lock_uid(int fd, uid_t uid)
{
	struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)(uid - PB_PLUGIN_UID_BASE), .l_len = 1 };

	if (fcntl(fd, F_OFD_SETLK, &l) == 0)
		return 0;
	return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
}

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

int pb_uid_claim(int *lock_fd, const char *key, pb_uid_taken_fn *taken, void *arg, uid_t *out,
                 char *why, size_t why_len)
{
	uint32_t start = fnv1a(key) % PB_PLUGIN_UID_RANGE;

	if (*lock_fd < 0) {
		int fd = open_lock_file(why, why_len);
		if (fd < 0)
			return fd;
		*lock_fd = fd;
	}
	for (uint32_t i = 0; i < PB_PLUGIN_UID_RANGE; i++) {
		uid_t uid = PB_PLUGIN_UID_BASE + (start + i) % PB_PLUGIN_UID_RANGE;
		if (taken(uid, arg))
			continue;
		int r = lock_uid(*lock_fd, uid);
		if (r == 0) {
			*out = uid;
			return 0;
		}
		if (r != -EAGAIN) {
			snprintf(why, why_len, "identity: cannot lock uid %u in %s: %s", (unsigned)uid, PB_UID_LOCK_FILE,
			         strerror(-r));
			return r;
		}
	}
	snprintf(why, why_len, "identity: every plugin uid from %u to %u is in use", PB_PLUGIN_UID_BASE,
	         PB_PLUGIN_UID_BASE + PB_PLUGIN_UID_RANGE - 1);
	return -EUSERS;
}

static bool none_of_ours(uid_t uid, void *arg)
{
	(void)uid;
	(void)arg;
	return false; /* a fresh description: every uid locked elsewhere is busy */
}

int pb_uid_claim_helper(int *lock_fd, uid_t *out, char *why, size_t why_len)
{
	int r;

	*lock_fd = -1;
	r = pb_uid_claim(lock_fd, "plugbox helper", none_of_ours, NULL, out, why, why_len);
	if (r < 0)
		pb_uid_release(lock_fd);
	return r;
}

void pb_uid_release(int *lock_fd)
{
	if (*lock_fd >= 0) {
		close(*lock_fd);
		*lock_fd = -1;
	}
}
