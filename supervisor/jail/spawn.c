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
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "jail/spawn.h"
#include "jail/spawner.h"

enum { CH_CALLS, CH_REPLIES, CH_STDOUT, CH_STDERR, CH_REPORT, CH_POLICY, CH_EXEC, CH_COUNT };

/* What to start: a plugin's worker (plugin_dir), or an install worker (install). */
struct spawn_req {
	struct pb_forkserver *forkserver;   /* clone from it, or NULL: exec */
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
	const char *tmp = getenv("TMPDIR");
	char *dir;

	if (!tmp || tmp[0] != '/')
		tmp = "/tmp";
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
                          const struct pb_jail *j, const struct pb_sandbox *sb)
{
	size_t n = 0, cap = 16 + 2 * (j->nread + j->nwrite);
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
	for (size_t i = 0; i < j->nread; i++) {
		argv[n++] = "--read";
		argv[n++] = j->read_paths[i];
	}
	for (size_t i = 0; i < j->nwrite; i++) {
		argv[n++] = "--write";
		argv[n++] = j->write_paths[i];
	}
	argv[n] = NULL;
	return argv;
}

/* An install worker's command line (worker/install.c): its trees as it
 * sees them (fixed paths in the mount tree, host paths without one). */
static char **install_argv(const char *worker_path, const struct pb_install_spec *spec,
                           const struct pb_jail *j, const struct pb_sandbox *sb)
{
	const struct { const char *option, *host, *inside; } trees[] = {
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

static int spawn_once(const char *worker_path, const struct spawn_req *req, bool use_namespaces,
                      struct pb_spawned *out, bool *listener, bool *namespaces_refused,
                      char *why, size_t why_len)
{
	const struct pb_policy *policy = req->policy;
	enum pb_compile_mode mode = req->mode;
	struct pb_sandbox learn_sandbox = policy->sandbox;
	const struct pb_sandbox *sb = &policy->sandbox;
	int ch[CH_COUNT][2];
	char **argv = NULL;
	struct pb_jail jail;
	struct pb_bpf_blob blob = { 0 };
	struct pb_child_msg failure;
	pid_t parent = getpid(), pid;
	int r, pidfd = -1;
	ssize_t n;

	*namespaces_refused = false;
	/* Learn mode watches syscalls: a network namespace with nothing in it
	 * would fail a call before it made the syscalls worth learning. */
	if (mode == PB_COMPILE_LEARN) {
		learn_sandbox.network = PB_NETWORK_HOST;
		sb = &learn_sandbox;
	}
	for (int i = 0; i < CH_COUNT; i++)
		ch[i][0] = ch[i][1] = -1;
	if (req->install) {
		const struct pb_jail_install in = { req->install->staging, req->install->source, req->install->old,
		                                    req->install->plugin, req->install->plugin_at };
		r = pb_jail_prepare_install(&jail, sb, use_namespaces, &in, out->view_dir, worker_path,
		                            req->uid, req->gid, why, why_len);
	} else {
		r = pb_jail_prepare(&jail, sb, use_namespaces, req->name, req->plugin_dir, out->view_dir,
		                    worker_path, req->cache, req->uid, req->gid, why, why_len);
	}
	if (r < 0) {
		if (!*why)
			snprintf(why, why_len, "cannot plan the sandbox: %s", strerror(-r));
		goto fail;
	}
	argv = req->install ? install_argv(worker_path, req->install, &jail, sb)
	                    : worker_argv(worker_path, req->name, req->plugin_dir, &jail, sb);
	if (!argv) {
		r = -ENOMEM;
		snprintf(why, why_len, "out of memory");
		goto fail;
	}
	for (int i = 0; i < CH_COUNT; i++) {
		int ok;
		if (i == CH_CALLS && req->install) {
			/* The input instead of a call channel: our own copy, read-only. */
			int in = req->install->input_fd;
			ch[i][0] = in >= 0 ? fcntl(in, F_DUPFD_CLOEXEC, 0) : open("/dev/null", O_RDONLY | O_CLOEXEC);
			ok = ch[i][0] < 0 ? -1 : 0;
		} else if (i == CH_REPORT || i == CH_EXEC) {
			ok = socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch[i]);
		} else {
			ok = pipe2(ch[i], O_CLOEXEC);
		}
		if (ok < 0) {
			r = -errno;
			snprintf(why, why_len, "cannot create the worker's channels: %s", strerror(errno));
			goto fail;
		}
	}

	/* clone, not fork: the worker is the first process of its new pid
	 * namespace, and still our child (pidfd, waitpid). Its pidfd comes
	 * from clone itself (close-on-exec): no pidfd_open, which is one
	 * kernel release younger and unknown to valgrind 3.19. */
	if (req->forkserver) {
		/* The same child, cloned by the fork-server from its warm
		 * interpreter instead of exec'd (forkserver.c). */
		const int fds[PB_CHILD_FDS] = { -1, ch[CH_STDOUT][1], ch[CH_STDERR][1], ch[CH_CALLS][0],
		                                ch[CH_REPLIES][1], ch[CH_REPORT][1], ch[CH_POLICY][0] };
		r = pb_forkserver_clone(req->forkserver, &jail, argv, fds, ch[CH_EXEC][1], &pid, &pidfd,
		                        why, why_len);
		if (r < 0) {
			*namespaces_refused = jail.clone_flags != 0 && namespace_failure(why);
			goto fail;
		}
	} else {
		struct clone_req c = { worker_path, argv, ch, parent, &jail, -1 };
		long got = pb_spawner_run(clone_worker, &c);
		if (got < 0) {
			r = (int)got;
			*namespaces_refused = jail.clone_flags != 0;
			snprintf(why, why_len, "%s: %s", jail.clone_flags ? "namespaces: cannot create them"
			         : "cannot start a worker", strerror(-r));
			goto fail;
		}
		pid = (pid_t)got;
		pidfd = c.pidfd;
	}
	if (req->install && ch[CH_CALLS][0] >= 0) {
		/* The worker has its copy of the input; ours goes. */
		close(ch[CH_CALLS][0]);
		ch[CH_CALLS][0] = -1;
	}

	/* The exec channel closes on a successful exec, or carries what
	 * failed; before that, the child may ask for its limits. */
	close(ch[CH_EXEC][1]);
	ch[CH_EXEC][1] = -1;
	for (;;) {
		n = read(ch[CH_EXEC][0], &failure, sizeof(failure));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(failure))
			break;
		failure.step[sizeof(failure.step) - 1] = '\0';
		if (failure.step[0])
			break;
		int answer = -pb_jail_set_limit(&jail, pid, failure.limit);
		while (write(ch[CH_EXEC][0], &answer, sizeof(answer)) < 0 && errno == EINTR)
			;
	}
	if (n == (ssize_t)sizeof(failure)) {
		waitpid(pid, NULL, 0);
		close(pidfd);
		r = -failure.err;
		*namespaces_refused = jail.clone_flags != 0 && namespace_failure(failure.step);
		if (!strcmp(failure.step, "exec"))
			snprintf(why, why_len, "cannot start the worker %s: %s", worker_path, strerror(failure.err));
		else
			snprintf(why, why_len, "%s: %s", failure.step, strerror(failure.err));
		goto fail;
	}

	/* Rules naming "self" must name the pid the worker sees. */
	r = pb_policy_compile(policy, (jail.clone_flags & CLONE_NEWPID) ? 1 : pid, mode, &blob, why, why_len);
	if (r == 0) {
		*listener = blob.listener;
		const uint8_t *p = blob.data;
		size_t left = blob.len;
		while (left > 0) {
			n = write(ch[CH_POLICY][1], p, left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r = -errno;
				snprintf(why, why_len, "cannot hand the policy to the worker: %s", strerror(errno));
				break;
			}
			p += n;
			left -= (size_t)n;
		}
	}
	pb_bpf_blob_free(&blob);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(pidfd);
		goto fail;
	}

	out->pid = pid;
	out->pidfd = pidfd;
	out->calls_fd = ch[CH_CALLS][1];
	out->replies_fd = ch[CH_REPLIES][0];
	out->stdout_fd = ch[CH_STDOUT][0];
	out->stderr_fd = ch[CH_STDERR][0];
	out->report_fd = ch[CH_REPORT][0];
	ch[CH_CALLS][1] = ch[CH_REPLIES][0] = ch[CH_STDOUT][0] = ch[CH_STDERR][0] = ch[CH_REPORT][0] = -1;
	for (size_t i = 0; i < jail.nlayers; i++) {
		out->layers[i] = jail.layers[i];
		jail.layers[i] = NULL;
	}
	out->nlayers = jail.nlayers;
	jail.nlayers = 0;
	for (int i = 0; i < CH_COUNT; i++)
		close_pair(ch[i]);
	int fds[] = { out->calls_fd, out->replies_fd, out->stdout_fd, out->stderr_fd, out->report_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	free(argv);
	pb_jail_free(&jail);
	return 0;

fail:
	for (int i = 0; i < CH_COUNT; i++)
		close_pair(ch[i]);
	free(argv);
	pb_jail_free(&jail);
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
	r = make_view_dir(req->name, req->plugin_dir, &view_dir, why, why_len);
	if (r < 0)
		return r;
	out->view_dir = view_dir;
	*why = '\0';
	r = spawn_once(worker_path, req, ns != PB_LAYER_OFF, out, listener, &refused, why, why_len);
	if (r < 0 && refused && ns == PB_LAYER_OPTIONAL) {
		/* Optional: go on without them, and say so in the layers. */
		*why = '\0';
		r = spawn_once(worker_path, req, false, out, listener, &refused, why, why_len);
	} else if (r < 0 && refused) {
		char was[512];
		snprintf(was, sizeof(was), "%s", why);
		snprintf(why, why_len, "%s (the policy requires namespaces: `@layer namespaces required`)", was);
	}
	if (r < 0) {
		remove_view_dir(view_dir, req->plugin_dir ? req->name : NULL);
		free(view_dir);
		out->view_dir = NULL;
	}
	return r;
}

int pb_spawn_worker(struct pb_forkserver *fs, const char *worker_path, const char *name,
                    const char *plugin_dir, const char *cache, const struct pb_policy *policy,
                    enum pb_compile_mode mode, uid_t uid, gid_t gid, struct pb_spawned *out, bool *listener,
                    char *why, size_t why_len)
{
	const struct spawn_req req = { fs, name, plugin_dir, cache, NULL, policy, mode, uid, gid };

	return spawn(worker_path, &req, out, listener, why, why_len);
}

int pb_spawn_install(const char *worker_path, const struct pb_policy *policy,
                     const struct pb_install_spec *spec, uid_t uid, gid_t gid,
                     struct pb_spawned *out, char *why, size_t why_len)
{
	const struct spawn_req req = { NULL, "install", NULL, NULL, spec, policy, PB_COMPILE_ENFORCE, uid, gid };
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
