/* spawn.c - fork and exec a worker into a clean process.
 *
 * What the worker inherits is decided here and nowhere else: descriptors
 * 0-6 as worker/worker.h lists them, LANG and nothing else in the
 * environment, default signal dispositions, its own session, and the jail
 * of jail.c (namespaces, mount tree, identity, limits). The seccomp programs
 * are compiled after clone, because the rules name the worker's own pid
 * (signals only to itself), and written to its fd 6.
 *
 * The same path starts install workers (pb_spawn_install): the same walls
 * under install.policy, a different mount tree (jail.c) and command line,
 * and the untrusted input on fd 3 instead of a call channel.
 */
#include "config.h"

#include <dirent.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail/forkserver.h"
#include "jail/jail.h"
#include "jail/rundir.h"
#include "jail/spawn.h"
#include "jail/spawner.h"
#include "jail/zygote.h"

enum { CH_CALLS,
       CH_REPLIES,
       CH_STDOUT,
       CH_STDERR,
       CH_REPORT,
       CH_POLICY,
       CH_EXEC,
       CH_COUNT };

/* What to start: a plugin's worker (plugin_dir), or an install worker (install). */
struct spawn_req {
	struct pb_forkserver *forkserver; /* clone from it, or NULL: exec */
	struct pb_zygote *zygote;         /* fork from the plugin's zygote (before forkserver) */
	bool start_zygote;                /* this is the plugin's zygote */
	const char *name;
	const char *plugin_dir;
	const char *cache;
	const struct pb_install_spec *install;
	const struct pb_policy *policy;
	enum pb_compile_mode mode;
	uid_t uid;
	gid_t gid;
};

static void close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

/* plugin_dir NULL: an empty directory (an install worker's new root). */
static int make_view_dir(const char *name, const char *plugin_dir, char **out,
                         char *why, size_t why_len)
{
	const char *tmp = pb_run_dir();
	char *dir;

	if (asprintf(&dir, "%s/plugbox-%s-XXXXXX", tmp, name) < 0)
		return -ENOMEM;
	if (!mkdtemp(dir)) {
		int e = errno;
		snprintf(why, why_len, "cannot create an import root in %s: %s", tmp, strerror(e));
		free(dir);
		return -e;
	}
	/* The worker must be able to traverse it whatever uid it runs as. */
	chmod(dir, 0755);
	if (!plugin_dir) {
		*out = dir;
		return 0;
	}
	char link[PATH_MAX];
	if (snprintf(link, sizeof(link), "%s/%s", dir, name) >= (int)sizeof(link) ||
	    symlink(plugin_dir, link) < 0) {
		int e = errno ? errno : ENAMETOOLONG;
		snprintf(why, why_len, "cannot create the import root %s: %s", dir, strerror(e));
		rmdir(dir);
		free(dir);
		return -e;
	}
	*out = dir;
	return 0;
}

/* The new root's mount point for workers with a mount tree: one empty
 * directory per user, $TMPDIR/plugbox-root-UID, made once and kept, where
 * a directory per worker cost a mkdtemp, a symlink and their removal on
 * the host's disk (0.2-1.2 ms of each start and stop here) and was left
 * behind by every killed supervisor. Every worker mounts its tmpfs on it
 * in its own mount namespace, so the host's copy stays empty and no worker
 * sees another's. Used only while it is a directory of ours that nobody
 * else may write (a name others could have made first); otherwise a
 * directory of this process's own, made with mkdtemp. */
static pthread_mutex_t mount_point_lock = PTHREAD_MUTEX_INITIALIZER;
static char *mount_point;

static bool mount_point_ours(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
	       (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

static int shared_mount_point(char *out, size_t len, char *why, size_t why_len)
{
	int r = 0;

	pthread_mutex_lock(&mount_point_lock);
	if (mount_point && !mount_point_ours(mount_point)) {
		free(mount_point);
		mount_point = NULL;
	}
	if (!mount_point) {
		const char *tmp = getenv("TMPDIR");
		char *path = NULL;
		if (!tmp || tmp[0] != '/')
			tmp = "/tmp";
		if (asprintf(&path, "%s/plugbox-root-%u", tmp, (unsigned)geteuid()) < 0)
			path = NULL;
		/* chmod: whatever the umask, as make_view_dir does */
		if (path && ((mkdir(path, 0755) == 0 && chmod(path, 0755) == 0) || errno == EEXIST) &&
		    mount_point_ours(path))
			mount_point = path;
		else
			free(path);
	}
	if (!mount_point)
		r = make_view_dir("root", NULL, &mount_point, why, why_len);
	if (r == 0 && snprintf(out, len, "%s", mount_point) >= (int)len)
		r = -ENAMETOOLONG;
	pthread_mutex_unlock(&mount_point_lock);
	return r;
}

/* @network connect: the worker's /etc/hosts, a file of ours beside its
 * view directory (jail.h), created here and never by a path someone else
 * could have prepared: O_EXCL, no link followed. */
static int make_hosts_file(const struct spawn_req *req, struct pb_spawned *out, char *why, size_t why_len)
{
	char path[PATH_MAX];
	char *text;
	int fd, r = 0;

	if ((r = pb_jail_hosts_file(out->view_dir, path, sizeof(path))) < 0)
		return r;
	if (!(text = pb_net_hosts_text(&req->policy->sandbox)))
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || fchmod(fd, 0644) < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		r = errno ? -errno : -EIO;
	if (fd >= 0)
		close(fd);
	free(text);
	if (r == 0 && !(out->hosts_file = strdup(path)))
		r = -ENOMEM;
	if (r < 0) {
		if (fd >= 0)
			unlink(path);
		snprintf(why, why_len, "network: cannot write the worker's hosts file %s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}

static void remove_hosts_file(struct pb_spawned *s)
{
	if (s->hosts_file)
		unlink(s->hosts_file);
	free(s->hosts_file);
	s->hosts_file = NULL;
}

static void remove_view_dir(char *dir, const char *name)
{
	char link[PATH_MAX];

	if (!dir)
		return;
	if (name && snprintf(link, sizeof(link), "%s/%s", dir, name) < (int)sizeof(link))
		unlink(link);
	rmdir(dir);
}

/* In the child, between clone and exec: system calls only. */
_Noreturn static void child(const char *worker_path, char *const argv[], int ch[CH_COUNT][2], pid_t parent,
                            const struct pb_jail *jail)
{
	static char *const envp[] = { "LANG=C.UTF-8", NULL };
	const int fds[PB_CHILD_FDS] = { -1, ch[CH_STDOUT][1], ch[CH_STDERR][1], ch[CH_CALLS][0],
		                        ch[CH_REPLIES][1], ch[CH_REPORT][1], ch[CH_POLICY][0] };
	const char *step = "descriptors";
	int r = pb_child_enter(fds, ch[CH_EXEC][1], parent, jail, &step);

	if (r == 0) {
		execve(worker_path, argv, envp);
		r = -errno;
		step = "exec";
	}
	pb_child_fail(-r, step);
}

/* clone(2) of a worker, run on the spawner thread (spawner.c). */
struct clone_req {
	const char *worker_path;
	char *const *argv;
	int (*ch)[2];
	pid_t parent;
	const struct pb_jail *jail;
	int pidfd;
};

static long clone_worker(void *arg)
{
	struct clone_req *c = arg;
	pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)c->jail->clone_flags | CLONE_PIDFD | SIGCHLD, NULL,
	                           &c->pidfd, NULL, NULL);

	if (pid < 0)
		return -errno;
	if (pid == 0)
		child(c->worker_path, c->argv, c->ch, c->parent, c->jail);
	return pid;
}

/* plugbox-worker's command line: who it is, where the plugin is, and the
 * Landlock rules it applies to itself. */
static char **worker_argv(const char *worker_path, const char *name, const char *plugin_dir,
                          const struct pb_jail *j, const struct pb_sandbox *sb, bool zygote)
{
	/* 17 words at most before the paths (name, dir, root, landlock,
	 * network, cache, list-root, zygote, fresh-scratch), and the NULL. */
	size_t n = 0, cap = 18 + 2 * (j->nread + j->nwrite);
	char **argv = calloc(cap, sizeof(char *));

	if (!argv)
		return NULL;
	argv[n++] = (char *)worker_path;
	argv[n++] = "--name";
	argv[n++] = (char *)name;
	argv[n++] = "--dir";
	argv[n++] = (char *)plugin_dir;
	argv[n++] = "--root";
	argv[n++] = j->import_root;
	argv[n++] = "--landlock";
	argv[n++] = (char *)pb_layer_mode_names[sb->layer[PB_LAYER_LANDLOCK]];
	argv[n++] = "--network";
	argv[n++] = sb->network == PB_NETWORK_HOST ? "host" : "none";
	if (j->cache_view) {
		argv[n++] = "--cache";
		argv[n++] = j->cache_view;
	}
	/* The mount tree holds only what the worker was given: its directories
	 * may be listed (os.listdir("/")). Without one, / is the host's. */
	if (j->mount_tree)
		argv[n++] = "--list-root";
	if (zygote)
		argv[n++] = "--zygote";
	if (zygote && sb->fresh_per_call && j->scratch) {
		/* Its children share its scratch tmpfs: each empties it first. */
		argv[n++] = "--fresh-scratch";
		argv[n++] = j->scratch;
	}
	for (size_t i = 0; i < j->nread; i++) {
		argv[n++] = "--read";
		argv[n++] = j->read_paths[i];
	}
	for (size_t i = 0; i < j->nwrite; i++) {
		argv[n++] = "--write";
		argv[n++] = j->write_paths[i];
	}
	assert(n < cap);
	argv[n] = NULL;
	return argv;
}

/* An install worker's command line (worker/install.c): its trees as it
 * sees them (fixed paths in the mount tree, host paths without one). */
static char **install_argv(const char *worker_path, const struct pb_install_spec *spec,
                           const struct pb_jail *j, const struct pb_sandbox *sb)
{
	const struct {
		const char *option, *host, *inside;
	} trees[] = {
		{ "--staging", spec->staging, PB_JAIL_STAGING },
		{ "--source", spec->source, PB_JAIL_SOURCE },
		{ "--old", spec->old, PB_JAIL_OLD },
	};
	size_t n = 0, nargs = 0;

	while (spec->args && spec->args[nargs])
		nargs++;
	char **argv = calloc(16 + nargs + 2 * (j->nread + j->nwrite), sizeof(char *));
	if (!argv)
		return NULL;
	argv[n++] = (char *)worker_path;
	argv[n++] = "--install";
	argv[n++] = (char *)spec->mode;
	for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
		if (!trees[i].host)
			continue;
		argv[n++] = (char *)trees[i].option;
		argv[n++] = (char *)(j->mount_tree ? trees[i].inside : trees[i].host);
	}
	if (spec->plugin) {
		argv[n++] = "--plugin";
		argv[n++] = (char *)(spec->plugin_at ? spec->plugin_at : spec->plugin);
	}
	argv[n++] = "--landlock";
	argv[n++] = (char *)pb_layer_mode_names[sb->layer[PB_LAYER_LANDLOCK]];
	for (size_t i = 0; i < j->nread; i++) {
		argv[n++] = "--read";
		argv[n++] = j->read_paths[i];
	}
	for (size_t i = 0; i < j->nwrite; i++) {
		argv[n++] = "--write";
		argv[n++] = j->write_paths[i];
	}
	for (size_t i = 0; i < nargs; i++)
		argv[n++] = spec->args[i];
	argv[n] = NULL;
	return argv;
}

/* Did the namespaces fail in a way that "optional" forgives? Any failure
 * to create or fill them: the kernel or a container refused. */
static bool namespace_failure(const char *step)
{
	return !strncmp(step, "namespaces:", 11) || !strncmp(step, "filesystem:", 11);
}

/* One attempt to start a worker: what the steps of spawn_once share. */
struct attempt {
	const char *worker_path;
	const struct spawn_req *req;
	struct pb_sandbox learn_sandbox;
	const struct pb_sandbox *sb;
	struct pb_jail jail;
	char **argv;
	int ch[CH_COUNT][2];
	pid_t pid;
	int pidfd;
	int self_pid;            /* a zygote's child: its pid in its namespace (from its pidfd) */
	bool namespaces_refused; /* what failed was the namespaces (optional forgives) */
	char *why;
	size_t why_len;
};

/* The jail for this worker and its command line. */
static int plan(struct attempt *a, bool use_namespaces, const char *view_dir)
{
	const struct spawn_req *req = a->req;
	int r;

	/* Learn mode watches syscalls: a network namespace with nothing in it
	 * would fail a call before it made the syscalls worth learning. */
	a->sb = &req->policy->sandbox;
	if (req->mode == PB_COMPILE_LEARN) {
		a->learn_sandbox = req->policy->sandbox;
		a->learn_sandbox.network = PB_NETWORK_HOST;
		a->sb = &a->learn_sandbox;
	}
	if (req->install) {
		const struct pb_jail_install in = { req->install->staging, req->install->source, req->install->old,
			                            req->install->plugin, req->install->plugin_at };
		r = pb_jail_prepare_install(&a->jail, a->sb, use_namespaces, &in, view_dir, a->worker_path,
		                            req->uid, req->gid, a->why, a->why_len);
	} else {
		r = pb_jail_prepare(&a->jail, a->sb, use_namespaces, req->name, req->plugin_dir, view_dir,
		                    a->worker_path, req->cache, req->uid, req->gid, a->why, a->why_len);
	}
	if (r < 0) {
		if (!*a->why)
			snprintf(a->why, a->why_len, "cannot plan the sandbox: %s", strerror(-r));
		return r;
	}
	a->argv = req->install ? install_argv(a->worker_path, req->install, &a->jail, a->sb)
	                       : worker_argv(a->worker_path, req->name, req->plugin_dir, &a->jail, a->sb,
	                                     req->start_zygote);
	if (!a->argv) {
		snprintf(a->why, a->why_len, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* The worker's descriptors: pipes, the report and exec sockets, and for an
 * install worker its input in place of a call channel. */
static int open_channels(struct attempt *a)
{
	for (int i = 0; i < CH_COUNT; i++) {
		int ok;
		if (i == CH_CALLS && a->req->install) {
			/* The input instead of a call channel: our own copy, read-only. */
			int in = a->req->install->input_fd;
			a->ch[i][0] = in >= 0 ? fcntl(in, F_DUPFD_CLOEXEC, 0) : open("/dev/null", O_RDONLY | O_CLOEXEC);
			ok = a->ch[i][0] < 0 ? -1 : 0;
		} else if (i == CH_REPORT || i == CH_EXEC || (i == CH_CALLS && a->req->start_zygote)) {
			/* A zygote's descriptor 3 is its control socket (zygote_wire.h). */
			ok = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, a->ch[i]);
		} else {
			ok = pipe2(a->ch[i], O_CLOEXEC);
		}
		if (ok < 0) {
			int e = errno;
			snprintf(a->why, a->why_len, "cannot create the worker's channels: %s", strerror(e));
			return -e;
		}
	}
	return 0;
}

/* clone, not fork: the worker is the first process of its new pid
 * namespace, and still our child (pidfd, waitpid). Its pidfd comes from
 * clone itself (close-on-exec): no pidfd_open, which is one kernel
 * release younger and unknown to valgrind 3.19. With a fork-server, the
 * same child is cloned from its warm interpreter instead (forkserver.c). */
static int start_child(struct attempt *a)
{
	int(*ch)[2] = a->ch;
	int r;

	if (a->req->start_zygote && !(a->jail.clone_flags & CLONE_NEWPID)) {
		/* Its program lets SELF_PID name any pid: only its own pid
		 * namespace keeps that to its own processes. */
		snprintf(a->why, a->why_len, "a zygote needs a pid namespace of its own (@layer namespaces)");
		return -ENOTSUP;
	}
	if (a->req->zygote) {
		const int fds[PB_CHILD_FDS] = { -1, ch[CH_STDOUT][1], ch[CH_STDERR][1], ch[CH_CALLS][0],
			                        ch[CH_REPLIES][1], ch[CH_REPORT][1], ch[CH_POLICY][0] };
		return pb_zygote_fork(a->req->zygote, fds, ch[CH_EXEC][1], &a->pid, &a->pidfd, &a->self_pid,
		                      a->why, a->why_len);
	}
	if (a->req->forkserver) {
		const int fds[PB_CHILD_FDS] = { -1, ch[CH_STDOUT][1], ch[CH_STDERR][1], ch[CH_CALLS][0],
			                        ch[CH_REPLIES][1], ch[CH_REPORT][1], ch[CH_POLICY][0] };
		r = pb_forkserver_clone(a->req->forkserver, &a->jail, a->argv, fds, ch[CH_EXEC][1], &a->pid,
		                        &a->pidfd, a->why, a->why_len);
		if (r < 0)
			a->namespaces_refused = a->jail.clone_flags != 0 && namespace_failure(a->why);
		return r;
	}
	struct clone_req c = { a->worker_path, a->argv, ch, getpid(), &a->jail, -1 };
	long got = pb_spawner_run(clone_worker, &c);
	if (got < 0) {
		a->namespaces_refused = a->jail.clone_flags != 0;
		snprintf(a->why, a->why_len, "%s: %s", a->jail.clone_flags ? "namespaces: cannot create them" : "cannot start a worker", strerror((int)-got));
		return (int)got;
	}
	a->pid = (pid_t)got;
	a->pidfd = c.pidfd;
	return 0;
}

/* The exec channel closes on a successful exec, or carries what failed;
 * before that, the child may ask for the limits it could not set. */
static int await_exec(struct attempt *a)
{
	struct pb_child_msg failure;
	ssize_t n;

	if (a->req->install && a->ch[CH_CALLS][0] >= 0) {
		/* The worker has its copy of the input; ours goes. */
		close(a->ch[CH_CALLS][0]);
		a->ch[CH_CALLS][0] = -1;
	}
	close(a->ch[CH_EXEC][1]);
	a->ch[CH_EXEC][1] = -1;
	for (;;) {
		n = read(a->ch[CH_EXEC][0], &failure, sizeof(failure));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(failure))
			return 0;
		failure.step[sizeof(failure.step) - 1] = '\0';
		if (failure.step[0])
			break;
		int answer = -pb_jail_set_limit(&a->jail, a->pid, failure.limit);
		while (write(a->ch[CH_EXEC][0], &answer, sizeof(answer)) < 0 && errno == EINTR)
			;
	}
	waitpid(a->pid, NULL, 0);
	close(a->pidfd);
	a->namespaces_refused = a->jail.clone_flags != 0 && namespace_failure(failure.step);
	if (!strcmp(failure.step, "exec"))
		snprintf(a->why, a->why_len, "cannot start the worker %s: %s", a->worker_path, strerror(failure.err));
	else
		snprintf(a->why, a->why_len, "%s: %s", failure.step, strerror(failure.err));
	return -failure.err;
}

/* The seccomp programs, compiled now that the worker's pid is known (rules
 * naming "self" must name the pid it sees), written to its fd 6. */
static int hand_policy(struct attempt *a, bool *listener)
{
	struct pb_bpf_blob blob = { 0 };
	pid_t self = (a->jail.clone_flags & CLONE_NEWPID) ? 1 : a->pid;
	enum pb_compile_mode mode = a->req->mode;

	if (a->req->zygote) {
		self = a->self_pid;
		mode = PB_COMPILE_ZYGOTE_CHILD;
	} else if (a->req->start_zygote) {
		self = PB_SELF_PID_ANY;
		mode = PB_COMPILE_ZYGOTE;
	}
	a->self_pid = self;
	int r = pb_policy_compile(a->req->policy, self, mode, &blob, a->why, a->why_len);

	if (r == 0) {
		*listener = blob.listener;
		const uint8_t *p = blob.data;
		size_t left = blob.len;
		while (left > 0) {
			ssize_t n = write(a->ch[CH_POLICY][1], p, left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r = -errno;
				snprintf(a->why, a->why_len, "cannot hand the policy to the worker: %s", strerror(errno));
				break;
			}
			p += n;
			left -= (size_t)n;
		}
	}
	pb_bpf_blob_free(&blob);
	if (r < 0) {
		pb_zygote_kill(a->req->zygote ? a->pidfd : -1, a->pid);
		waitpid(a->pid, NULL, 0);
		close(a->pidfd);
	}
	return r;
}

/* The running worker's descriptors (non-blocking) and layers to *out. */
static void hand_over(struct attempt *a, struct pb_spawned *out)
{
	int(*ch)[2] = a->ch;

	out->pid = a->pid;
	out->pidfd = a->pidfd;
	out->self_pid = a->self_pid;
	out->from_zygote = a->req->zygote != NULL;
	out->calls_fd = ch[CH_CALLS][1];
	out->replies_fd = ch[CH_REPLIES][0];
	out->stdout_fd = ch[CH_STDOUT][0];
	out->stderr_fd = ch[CH_STDERR][0];
	out->report_fd = ch[CH_REPORT][0];
	ch[CH_CALLS][1] = ch[CH_REPLIES][0] = ch[CH_STDOUT][0] = ch[CH_STDERR][0] = ch[CH_REPORT][0] = -1;
	for (size_t i = 0; i < a->jail.nlayers; i++) {
		out->layers[i] = a->jail.layers[i];
		a->jail.layers[i] = NULL;
	}
	out->nlayers = a->jail.nlayers;
	a->jail.nlayers = 0;
	int fds[] = { out->calls_fd, out->replies_fd, out->stdout_fd, out->stderr_fd, out->report_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
}

/* Plan, open the channels, start the child, wait for its exec, hand it
 * its policy, hand its descriptors over: each step a function, as
 * nsjail's containProc reads. */
static int spawn_once(const char *worker_path, const struct spawn_req *req, bool use_namespaces,
                      const char *root, struct pb_spawned *out, bool *listener, bool *namespaces_refused,
                      char *why, size_t why_len)
{
	struct attempt a = { .worker_path = worker_path, .req = req, .pid = -1, .pidfd = -1, .why = why, .why_len = why_len };
	int r;

	for (int i = 0; i < CH_COUNT; i++)
		a.ch[i][0] = a.ch[i][1] = -1;
	if ((r = plan(&a, use_namespaces, out->view_dir ? out->view_dir : root)) == 0 && (r = open_channels(&a)) == 0 &&
	    (r = start_child(&a)) == 0 && (r = await_exec(&a)) == 0 && (r = hand_policy(&a, listener)) == 0)
		hand_over(&a, out);
	*namespaces_refused = a.namespaces_refused;
	for (int i = 0; i < CH_COUNT; i++)
		close_pair(a.ch[i]);
	free(a.argv);
	pb_jail_free(&a.jail);
	return r;
}

static int spawn(const char *worker_path, const struct spawn_req *req, struct pb_spawned *out,
                 bool *listener, char *why, size_t why_len)
{
	enum pb_layer_mode ns = req->policy->sandbox.layer[PB_LAYER_NAMESPACES];
	bool refused = false;
	char *view_dir = NULL;
	int r;

	pb_spawned_init(out);
	if (worker_path[0] != '/') {
		snprintf(why, why_len, "the worker path %s is not absolute", worker_path);
		return -EINVAL;
	}
	/* The worker's own view directory only where it is its import root
	 * (no mount tree), or holds its hosts file beside it (@network
	 * connect); with a mount tree, the shared mount point. A zygote's
	 * child lives in its zygote's mount tree and is never jailed anew: it
	 * needs neither (its plan only names its layers; "/" is never mounted
	 * on). */
	bool shared = !req->zygote && req->plugin_dir && ns != PB_LAYER_OFF &&
	              req->policy->sandbox.network != PB_NETWORK_CONNECT;
	char root[PATH_MAX] = "/";
	if (req->zygote)
		r = 0;
	else if (shared)
		r = shared_mount_point(root, sizeof(root), why, why_len);
	else
		r = make_view_dir(req->name, req->plugin_dir, &view_dir, why, why_len);
	if (r < 0)
		return r;
	out->view_dir = view_dir;
	*why = '\0';
	/* A zygote's child would share its zygote's mount namespace; under
	 * @network connect no zygote is used (runtime/supervisor.c). */
	if (req->policy->sandbox.network == PB_NETWORK_CONNECT && req->plugin_dir && !req->zygote &&
	    (r = make_hosts_file(req, out, why, why_len)) < 0) {
		remove_view_dir(view_dir, req->name);
		free(view_dir);
		out->view_dir = NULL;
		return r;
	}
	r = spawn_once(worker_path, req, ns != PB_LAYER_OFF, root, out, listener, &refused, why, why_len);
	if (r < 0 && refused && ns == PB_LAYER_OPTIONAL && !req->zygote) {
		/* Optional: go on without them, and say so in the layers (not a
		 * zygote's child: it would be forked into the same namespaces).
		 * Without a mount tree the worker's view directory is its import
		 * root, one of its own. */
		*why = '\0';
		if (shared && (r = make_view_dir(req->name, req->plugin_dir, &view_dir, why, why_len)) == 0)
			out->view_dir = view_dir;
		if (!shared || r == 0)
			r = spawn_once(worker_path, req, false, root, out, listener, &refused, why, why_len);
	} else if (r < 0 && refused) {
		char was[512];
		snprintf(was, sizeof(was), "%s", why);
		snprintf(why, why_len, "%s (the policy requires namespaces: `@layer namespaces required`)", was);
	}
	if (r < 0) {
		remove_hosts_file(out);
		remove_view_dir(view_dir, req->plugin_dir ? req->name : NULL);
		free(view_dir);
		out->view_dir = NULL;
	}
	return r;
}

int pb_spawn_worker(struct pb_forkserver *fs, struct pb_zygote *zygote, const char *worker_path, const char *name,
                    const char *plugin_dir, const char *cache, const struct pb_policy *policy,
                    enum pb_compile_mode mode, uid_t uid, gid_t gid, struct pb_spawned *out, bool *listener,
                    char *why, size_t why_len)
{
	const struct spawn_req req = { fs, zygote, false, name, plugin_dir, cache, NULL, policy, mode, uid, gid };

	return spawn(worker_path, &req, out, listener, why, why_len);
}

int pb_spawn_zygote(struct pb_forkserver *fs, const char *worker_path, const char *name, const char *plugin_dir,
                    const char *cache, const struct pb_policy *policy, uid_t uid, gid_t gid,
                    struct pb_spawned *out, char *why, size_t why_len)
{
	const struct spawn_req req = { fs, NULL, true, name, plugin_dir, cache, NULL, policy, PB_COMPILE_ENFORCE, uid, gid };
	bool listener = false;

	return spawn(worker_path, &req, out, &listener, why, why_len);
}

int pb_spawn_install(const char *worker_path, const struct pb_policy *policy,
                     const struct pb_install_spec *spec, uid_t uid, gid_t gid,
                     struct pb_spawned *out, char *why, size_t why_len)
{
	const struct spawn_req req = { NULL, NULL, false, "install", NULL, NULL, spec, policy, PB_COMPILE_ENFORCE, uid, gid };
	bool listener = false;

	/* The caller refuses policies with `log` rules: nobody would answer
	 * their notifications, and the worker would wait forever. */
	return spawn(worker_path, &req, out, &listener, why, why_len);
}

void pb_spawned_init(struct pb_spawned *s)
{
	/* Descriptor 0 is a real one (the host's stdin): "none" is -1. */
	memset(s, 0, sizeof(*s));
	s->pid = -1;
	s->pidfd = s->calls_fd = s->replies_fd = s->stdout_fd = s->stderr_fd = s->report_fd = -1;
}

void pb_spawned_release(struct pb_spawned *s)
{
	int *fds[] = { &s->pidfd, &s->calls_fd, &s->replies_fd, &s->stdout_fd, &s->stderr_fd, &s->report_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		int *fd = fds[i];
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
	for (size_t i = 0; i < s->nlayers; i++)
		free(s->layers[i]);
	s->nlayers = 0;
	remove_hosts_file(s);
	if (s->view_dir) {
		/* the link inside is named after the plugin: remove whatever is there */
		DIR *d = opendir(s->view_dir);
		if (d) {
			struct dirent *e;
			while ((e = readdir(d)))
				if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
					unlinkat(dirfd(d), e->d_name, 0);
			closedir(d);
		}
		remove_view_dir(s->view_dir, NULL);
		free(s->view_dir);
		s->view_dir = NULL;
	}
}
