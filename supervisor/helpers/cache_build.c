/* cache_build.c - build one plugin's bytecode cache (the layout is in
 * cache.h).
 *
 * Compiling is parsing untrusted input, so it happens only in the compiler,
 * plugbox-worker --install compile: the install worker's walls under
 * compile.policy, the plugin read-only at the path its workers see it at,
 * and one writable tree, a fresh directory that nothing else uses. What
 * the compiler says and leaves is hostile here, as an unpacker's is: its
 * answer is read up to PB_INSTALL_RESULT_MAX bytes, its output drained and
 * dropped, its time bounded by the policy's call-time, and the tree it
 * wrote is checked without following links (install_tree.c) before it is
 * stamped and renamed into place. Nothing here waits on it: the caller
 * polls the descriptors (cache.c from the supervisor's loop; the command
 * line with pb_cache_build_wait).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/cache_build.h"
#include "helpers/helper_run.h"
#include "policy/policy.h"
#include "toolkit/clock.h"
#include "toolkit/sanitize.h"
#include "proto/names.h"
#include "toolkit/report.h"
#include "proto/install.h"
#include "jail/jail.h"
#include "jail/uids.h"
#include "jail/spawn.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#endif

#define SOURCE_MAX (16u << 20) /* a source file the compiler reads at most */
#define STAMP_FORMAT "plugbox-cache 1"

struct pb_cache_build {
	char *name, *plugin_dir;
	int root_fd, build_fd, lock_fd, tmp_fd, tree_fd;
	uid_t uid; /* the compiler's, as root: claimed (uid_fd) for this build */
	int uid_fd;
	char tmp_name[200];             /* .build/NAME.tmp-XXXXXX, until renamed into place */
	char stamp[PB_CACHE_STAMP_MAX]; /* the plugin directory when the build began */
	struct pb_helper h;             /* the compiler (helper_run.c) */
	bool judged, ok;
	bool transient;    /* killed from outside: worth another try */
	char verdict[512]; /* why it failed */
	unsigned compiled, skipped;
};

/* ---- the cache on disk ------------------------------------------------- */

int pb_cache_root_open(const char *root, bool create, char *why, size_t why_len)
{
	struct stat st;
	int fd;

	if (create && mkdir(root, 0711) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(why, why_len, "cannot create the cache %s: %s", root, strerror(e));
		return -e;
	}
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		snprintf(why, why_len, "cannot open the cache %s: %s", root, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	/* Whoever may write here decides what code plugins run: us alone. */
	if (st.st_uid != geteuid() || (st.st_mode & 022)) {
		snprintf(why, why_len, "the cache %s is not ours alone (owner %u, mode %03o)", root,
		         (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -EPERM;
	}
	return fd;
}

void pb_cache_stamp(const char *plugin_dir, char *out, size_t len)
{
	struct stat st;

	*out = '\0';
	if (stat(plugin_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return;
	if (snprintf(out, len, STAMP_FORMAT " %llu %llu %lld.%09ld %s %s\n", (unsigned long long)st.st_dev,
	             (unsigned long long)st.st_ino, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
	             PB_PYTHON_STDLIB, plugin_dir) >= (int)len)
		*out = '\0';
}

/* dir/path's first len-1 bytes, NUL-terminated; "" when it is not there. */
static void read_small(int dir, const char *path, char *buf, size_t len)
{
	int fd = openat(dir, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

static bool starts_with_stamp(const char *text, const char *stamp)
{
	return *stamp && !strncmp(text, stamp, strlen(stamp));
}

bool pb_cache_fresh(int root_fd, const char *name, const char *stamp)
{
	char path[300], text[PB_CACHE_STAMP_MAX];
	int dir = openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dir < 0)
		return false;
	snprintf(path, sizeof(path), "stamp");
	read_small(dir, path, text, sizeof(text));
	close(dir);
	return starts_with_stamp(text, stamp) && text[strlen(stamp)] == '\0';
}

bool pb_cache_failed(int root_fd, const char *name, const char *stamp)
{
	char path[300], text[PB_CACHE_STAMP_MAX + 600];

	snprintf(path, sizeof(path), ".build/%s.failed", name);
	read_small(root_fd, path, text, sizeof(text));
	return starts_with_stamp(text, stamp);
}

/* .build, made when missing. */
static int open_build_dir(int root_fd)
{
	if (mkdirat(root_fd, ".build", 0711) < 0 && errno != EEXIST)
		return -1;
	return openat(root_fd, ".build", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* .build/NAME.lock, held exclusively; -1 with errno (EWOULDBLOCK: busy). */
static int lock_name(int build_fd, const char *name, bool wait)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s.lock", name);
	fd = openat(build_fd, path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Builds of NAME that a killed supervisor left (we hold NAME's lock). */
static void remove_leftovers(int build_fd, const char *name)
{
	int dup_fd = fcntl(build_fd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	char prefix[200];
	struct dirent *e;

	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return;
	}
	snprintf(prefix, sizeof(prefix), "%s.tmp.", name);
	rewinddir(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, prefix, strlen(prefix)))
			pb_tree_remove(build_fd, e->d_name);
	closedir(d);
}

int pb_cache_remove(int root_fd, const char *name)
{
	char path[300];
	int build_fd = open_build_dir(root_fd), lock, r;

	if (build_fd < 0)
		return -errno;
	lock = lock_name(build_fd, name, true);
	if (lock < 0) {
		r = -errno;
		close(build_fd);
		return r;
	}
	r = pb_tree_remove(root_fd, name);
	snprintf(path, sizeof(path), "%s.failed", name);
	unlinkat(build_fd, path, 0);
	remove_leftovers(build_fd, name);
	close(lock);
	close(build_fd);
	return r;
}

struct first_error {
	char *buf;
	size_t len;
	bool have;
};

static void keep_error(void *data, bool is_error, const char *line)
{
	struct first_error *f = data;
	if (is_error && !f->have) {
		snprintf(f->buf, f->len, "%s", line);
		f->have = true;
	}
}

int pb_cache_policy_load(const char *policies_dir, struct pb_policy **out, char *why, size_t why_len)
{
	struct first_error f = { why, why_len, false };
	int r = pb_policy_load(policies_dir, "compile", keep_error, &f, out);

	if (r < 0) {
		if (!f.have)
			snprintf(why, why_len, "%s/compile.policy: %s", policies_dir, strerror(-r));
		return r;
	}
	if (pb_policy_has_log(*out)) {
		snprintf(why, why_len, "%s/compile.policy: `log` is not available to the compiler", policies_dir);
		pb_policy_free(*out);
		*out = NULL;
		return -EINVAL;
	}
	return 0;
}

/* ---- one build ----------------------------------------------------------- */

static int make_tmp(struct pb_cache_build *b)
{
	char prefix[160];

	snprintf(prefix, sizeof(prefix), "%s.tmp", b->name);
	if (pb_unique_name(b->build_fd, prefix, true, b->tmp_name, sizeof(b->tmp_name)) < 0) {
		b->tmp_name[0] = '\0';
		return -1;
	}
	/* 0711: as root the compiler, another uid, passes through to its tree. */
	b->tmp_fd = openat(b->build_fd, b->tmp_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (b->tmp_fd < 0 || fchmod(b->tmp_fd, 0711) < 0 || mkdirat(b->tmp_fd, "tree", 0700) < 0)
		return -1;
	b->tree_fd = openat(b->tmp_fd, "tree", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (b->tree_fd < 0)
		return -1;
	return 0;
}

/* As root the compiler runs as a uid claimed for this build alone (no
 * plugin's, no other helper's, of any supervisor), which must own what it
 * writes. 0, or -errno with why. */
static int claim_uid(struct pb_cache_build *b, char *why, size_t why_len)
{
	int r;

	if (geteuid() != 0)
		return 0;
	if ((r = pb_uid_claim_helper(&b->uid_fd, &b->uid, why, why_len)) < 0)
		return r;
	if (fchown(b->tree_fd, b->uid, b->uid) < 0) {
		r = -errno;
		snprintf(why, why_len, "cannot hand the build directory to uid %u: %s", (unsigned)b->uid,
		         strerror(errno));
		return r;
	}
	return 0;
}

static struct pb_cache_build *build_new(const struct pb_cache_spec *spec)
{
	struct pb_cache_build *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->root_fd = b->build_fd = b->lock_fd = b->tmp_fd = b->tree_fd = b->uid_fd = -1;
	b->uid = PB_INSTALL_UID;
	pb_helper_init(&b->h, "the compiler", "compile.policy");
	b->name = strdup(spec->name);
	b->plugin_dir = strdup(spec->plugin_dir);
	b->root_fd = fcntl(spec->root_fd, F_DUPFD_CLOEXEC, 0);
	if (!b->name || !b->plugin_dir || b->root_fd < 0) {
		pb_cache_build_free(b);
		return NULL;
	}
	return b;
}

static int spawn_compiler(struct pb_cache_build *b, const struct pb_cache_spec *spec, char *why, size_t why_len)
{
	const struct pb_sandbox *sb = &spec->policy->sandbox;
	char staging[PATH_MAX], alias[PATH_MAX], limits[3][64];
	uint64_t file_size = sb->limit[PB_LIMIT_FILE_SIZE];

	if (snprintf(staging, sizeof(staging), "%s/.build/%s/tree", spec->root, b->tmp_name) >= (int)sizeof(staging)) {
		snprintf(why, why_len, "the cache's path is too long");
		return -ENAMETOOLONG;
	}
	snprintf(alias, sizeof(alias), PB_JAIL_IMPORT_ROOT "/%s", b->name);
	snprintf(limits[0], sizeof(limits[0]), "files=%u", PB_INSTALL_MAX_FILES);
	snprintf(limits[1], sizeof(limits[1]), "bytes=%llu", (unsigned long long)PB_INSTALL_MAX_BYTES);
	snprintf(limits[2], sizeof(limits[2]), "file_size=%llu", (unsigned long long)(file_size == PB_LIMIT_UNLIMITED || file_size > PB_INSTALL_MAX_BYTES ? PB_INSTALL_MAX_BYTES : file_size));
	char source_limit[64];
	snprintf(source_limit, sizeof(source_limit), "source_size=%u", SOURCE_MAX);
	char *args[] = { "--name", b->name, "--alias", alias, "--limit", limits[0], "--limit", limits[1],
		         "--limit", limits[2], "--limit", source_limit, NULL };
	const struct pb_install_spec in = {
		.mode = "compile",
		.input_fd = -1,
		.staging = staging,
		.plugin = spec->source ? spec->source : spec->plugin_dir,
		.plugin_at = spec->plugin_dir,
		.args = args,
	};
	return pb_helper_spawn(&b->h, spec->worker_path, spec->policy, &in, b->uid, b->uid,
	                       why, why_len);
}

int pb_cache_build_start(const struct pb_cache_spec *spec, struct pb_cache_build **out,
                         char *why, size_t why_len)
{
	struct pb_cache_build *b;
	int r;

	*out = NULL;
	*why = '\0';
	if (!pb_valid_plugin_name(spec->name)) {
		snprintf(why, why_len, "'%s' is not a plugin name", spec->name);
		return -EINVAL;
	}
	if (!(b = build_new(spec)))
		return -ENOMEM;
	if ((b->build_fd = open_build_dir(b->root_fd)) < 0 ||
	    (b->lock_fd = lock_name(b->build_fd, b->name, spec->wait_lock)) < 0) {
		r = -errno;
		pb_cache_build_free(b);
		if (r == -EWOULDBLOCK) {
			snprintf(why, why_len, "another process is building it right now");
			return 0;
		}
		snprintf(why, why_len, "cannot lock the cache: %s", strerror(-r));
		return r;
	}
	/* Under the lock: another supervisor may have just built it. */
	pb_cache_stamp(spec->plugin_dir, b->stamp, sizeof(b->stamp));
	if (!spec->source && !*b->stamp) {
		pb_cache_build_free(b);
		snprintf(why, why_len, "no plugin directory %s", spec->plugin_dir);
		return -ENOENT;
	}
	if (!spec->force && (pb_cache_fresh(b->root_fd, b->name, b->stamp) ||
	                     pb_cache_failed(b->root_fd, b->name, b->stamp))) {
		pb_cache_build_free(b);
		return 0;
	}
	remove_leftovers(b->build_fd, b->name);
	if (make_tmp(b) < 0) {
		r = -errno;
		snprintf(why, why_len, "cannot make a directory to build in: %s", strerror(errno));
		pb_cache_build_free(b);
		return r;
	}
	if ((r = claim_uid(b, why, why_len)) < 0) {
		pb_cache_build_free(b);
		return r;
	}
	if ((r = spawn_compiler(b, spec, why, why_len)) < 0) {
		char was[400];
		snprintf(was, sizeof(was), "%s", why);
		snprintf(why, why_len, "the compiler could not be started: %s", was);
		pb_cache_build_free(b);
		return r;
	}
	*out = b;
	return 1;
}

size_t pb_cache_build_fds(const struct pb_cache_build *b, int fds[6])
{
	return pb_helper_fds(&b->h, fds);
}

double pb_cache_build_deadline(const struct pb_cache_build *b)
{
	return pb_helper_deadline(&b->h);
}

/* ok TAB COMPILED TAB SKIPPED after an exit 0, or failed TAB WHY. */
static void judge_answer(struct pb_cache_build *b, int exit_status)
{
	struct pb_helper_answer *a = malloc(sizeof(*a));
	bool decoded = a && pb_helper_answer_decode(b->h.answer, b->h.answer_len, false, a) == 0;
	const struct pb_helper_line *l = a ? &a->last : NULL;
	unsigned long compiled, skipped;

	if (!a) {
		snprintf(b->verdict, sizeof(b->verdict), "out of memory");
		b->transient = true;
	} else if (decoded && exit_status == 0 && pb_helper_line_is(l, "ok", 2) &&
	           pb_helper_count(l->field[1], &compiled) && pb_helper_count(l->field[2], &skipped)) {
		b->compiled = (unsigned)compiled;
		b->skipped = (unsigned)skipped;
		b->ok = true;
	} else if (decoded && pb_helper_line_is(l, "failed", 1)) {
		snprintf(b->verdict, sizeof(b->verdict), "%s", l->field[1]);
	} else if (!decoded || l->nfields) {
		snprintf(b->verdict, sizeof(b->verdict), "the compiler sent a malformed answer");
	} else {
		pb_helper_no_answer(&b->h, exit_status, b->verdict, sizeof(b->verdict));
	}
	pb_sanitize_inplace(b->verdict, sizeof(b->verdict), 0);
	free(a);
}

static void judge(struct pb_cache_build *b)
{
	int exit_status;

	switch (pb_helper_end(&b->h, &exit_status, b->verdict, sizeof(b->verdict))) {
	case PB_HELPER_EXITED:
		judge_answer(b, exit_status);
		break;
	case PB_HELPER_SECCOMP:
		snprintf(b->verdict, sizeof(b->verdict), "the sandbox killed the compiler (a system call "
		                                         "compile.policy does not allow)");
		break;
	case PB_HELPER_SIGNAL:
		/* SIGKILL past no limit of ours: the OOM killer, or the parent-death
		 * signal of a host thread that started it and ended. */
		b->transient = WTERMSIG(b->h.status) == SIGKILL;
		break;
	default:
		break;
	}
}

bool pb_cache_build_step(struct pb_cache_build *b)
{
	if (b->judged)
		return true;
	if (!pb_helper_step(&b->h))
		return false;
	judge(b);
	b->judged = true;
	return true;
}

void pb_cache_build_wait(struct pb_cache_build *b)
{
	pb_helper_wait(&b->h);
	pb_cache_build_step(b);
}

static void mark_failed(struct pb_cache_build *b, const char *stamp, const char *why)
{
	char path[300], text[PB_CACHE_STAMP_MAX + 600];
	int fd;

	snprintf(path, sizeof(path), "%s.failed", b->name);
	int n = snprintf(text, sizeof(text), "%s%s\n", stamp, why);
	fd = openat(b->build_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (n > 0 && write(fd, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1) < 0) {
		/* a build that cannot be marked is simply tried again */
	}
	close(fd);
}

int pb_cache_build_commit(struct pb_cache_build *b, const char *expect, unsigned *compiled,
                          unsigned *skipped, char *why, size_t why_len)
{
	char stamp[PB_CACHE_STAMP_MAX], path[300];
	struct pb_tree_stats stats;
	int fd;

	*compiled = *skipped = 0;
	pb_cache_stamp(b->plugin_dir, stamp, sizeof(stamp));
	if (!*stamp || (expect && strcmp(expect, stamp) != 0)) {
		snprintf(why, why_len, "the plugin changed while it was compiled");
		return -ESTALE;
	}
	if (!b->judged || !b->ok) {
		snprintf(why, why_len, "%s", b->judged ? b->verdict : "the compiler did not finish");
		if (!b->judged || b->transient)
			return -EAGAIN; /* not marked: the next start tries again */
		mark_failed(b, stamp, why);
		return -EIO;
	}
	if (pb_tree_check(b->tree_fd, geteuid() == 0, geteuid(), getegid(), &stats, why, why_len) < 0) {
		char was[400];
		snprintf(was, sizeof(was), "%s", why);
		snprintf(why, why_len, "the compiler left something it must not: %s", was);
		mark_failed(b, stamp, why);
		return -EIO;
	}
	fd = openat(b->tmp_fd, "stamp", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, stamp, strlen(stamp)) != (ssize_t)strlen(stamp)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		snprintf(why, why_len, "cannot stamp the cache: %s", strerror(e));
		return -e;
	}
	close(fd);
	/* In place at once, never half. The previous tree goes aside, under
	 * the name the build had: workers that bound it keep their pycs until
	 * the next build of this plugin deletes it (remove_leftovers). */
	int r = renameat2(b->build_fd, b->tmp_name, b->root_fd, b->name, RENAME_NOREPLACE);
	if (r < 0 && errno == EEXIST)
		r = renameat2(b->build_fd, b->tmp_name, b->root_fd, b->name, RENAME_EXCHANGE);
	if (r < 0) {
		int e = errno;
		snprintf(why, why_len, "cannot put the cache in place: %s", strerror(e));
		return -e;
	}
	b->tmp_name[0] = '\0';
	snprintf(path, sizeof(path), "%s.failed", b->name);
	unlinkat(b->build_fd, path, 0);
	*compiled = b->compiled;
	*skipped = b->skipped;
	return 0;
}

const char *pb_cache_build_name(const struct pb_cache_build *b)
{
	return b->name;
}

const char *pb_cache_build_stamp(const struct pb_cache_build *b)
{
	return b->stamp;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void pb_cache_build_free(struct pb_cache_build *b)
{
	if (!b)
		return;
	pb_helper_free(&b->h);
	pb_uid_release(&b->uid_fd); /* the compiler is gone, its tree re-owned or removed */
	close_fd(&b->tree_fd);
	close_fd(&b->tmp_fd);
	if (b->tmp_name[0] && b->build_fd >= 0)
		pb_tree_remove(b->build_fd, b->tmp_name);
	close_fd(&b->lock_fd); /* the lock goes with its descriptor */
	close_fd(&b->build_fd);
	close_fd(&b->root_fd);
	free(b->name);
	free(b->plugin_dir);
	free(b);
}

int pb_cache_build_run(const struct pb_cache_spec *spec, unsigned *compiled, unsigned *skipped,
                       char *why, size_t why_len)
{
	struct pb_cache_build *b;
	int r = pb_cache_build_start(spec, &b, why, why_len);

	*compiled = *skipped = 0;
	if (r <= 0 || !b)
		return r;
	pb_cache_build_wait(b);
	r = pb_cache_build_commit(b, spec->source ? NULL : b->stamp, compiled, skipped, why, why_len);
	pb_cache_build_free(b);
	return r < 0 ? r : 1;
}
