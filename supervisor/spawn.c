/* spawn.c - fork and exec a worker into a clean process.
 *
 * What the worker inherits is decided here and nowhere else: descriptors
 * 0-6 as worker/worker.h lists them, LANG and nothing else in the
 * environment, default signal dispositions, no core dumps, its own session.
 * The seccomp programs are compiled after fork, because the rules name the
 * worker's own pid (signals only to itself), and written to its fd 6.
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
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"

enum { CH_CALLS, CH_REPLIES, CH_STDOUT, CH_STDERR, CH_REPORT, CH_POLICY, CH_EXEC, CH_COUNT };

static void close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

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

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child(const char *worker_path, char *const argv[], int ch[CH_COUNT][2], pid_t parent)
{
	static char *const envp[] = { "LANG=C.UTF-8", NULL };
	int src[7], err;
	struct rlimit no_core = { 0, 0 };
	sigset_t all;

	if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	if (getppid() != parent)
		_exit(127);     /* the supervisor died before PDEATHSIG was armed */
	setrlimit(RLIMIT_CORE, &no_core);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);

	src[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	src[1] = ch[CH_STDOUT][1];
	src[2] = ch[CH_STDERR][1];
	src[3] = ch[CH_CALLS][0];
	src[4] = ch[CH_REPLIES][1];
	src[5] = ch[CH_REPORT][1];
	src[6] = ch[CH_POLICY][0];
	if (src[0] < 0)
		goto fail;
	/* Move every source above the target range first, so no dup2 below
	 * overwrites a source that is still needed. */
	for (int i = 0; i < 7; i++) {
		src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 64);
		if (src[i] < 0)
			goto fail;
	}
	/* The exec-error pipe may sit on a number about to be reused; the copies above are all >= 64. */
	if (ch[CH_EXEC][1] != 63 && dup3(ch[CH_EXEC][1], 63, O_CLOEXEC) < 0)
		goto fail;
	ch[CH_EXEC][1] = 63;
	for (int i = 0; i < 7; i++)
		if (dup2(src[i], i) < 0)
			goto fail;
	if (syscall(SYS_close_range, 7, 62, 0) < 0 || syscall(SYS_close_range, 64, ~0U, 0) < 0)
		goto fail;
	if (chdir("/") < 0)
		goto fail;
	execve(worker_path, argv, envp);
fail:
	err = errno;
	if (write(ch[CH_EXEC][1], &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

int pb_spawn_worker(const char *worker_path, const char *name, const char *plugin_dir,
                    const struct pb_policy *policy, enum pb_compile_mode mode,
                    struct pb_spawned *out, bool *listener, char *why, size_t why_len)
{
	int ch[CH_COUNT][2];
	char *argv[8];
	char *view_dir = NULL;
	struct pb_bpf_blob blob = { 0 };
	pid_t parent = getpid(), pid;
	int r, err = 0;
	ssize_t n;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < CH_COUNT; i++)
		ch[i][0] = ch[i][1] = -1;
	r = make_view_dir(name, plugin_dir, &view_dir, why, why_len);
	if (r < 0)
		return r;
	for (int i = 0; i < CH_COUNT; i++) {
		int ok = i == CH_REPORT
			? socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch[i])
			: pipe2(ch[i], O_CLOEXEC);
		if (ok < 0) {
			r = -errno;
			snprintf(why, why_len, "cannot create the worker's channels: %s", strerror(errno));
			goto fail;
		}
	}
	argv[0] = "plugbox-worker";
	argv[1] = "--name";
	argv[2] = (char *)name;
	argv[3] = "--dir";
	argv[4] = (char *)plugin_dir;
	argv[5] = "--root";
	argv[6] = view_dir;
	argv[7] = NULL;

	pid = fork();
	if (pid < 0) {
		r = -errno;
		snprintf(why, why_len, "cannot fork a worker: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child(worker_path, argv, ch, parent);

	/* The exec pipe closes on a successful exec, or carries the errno. */
	close(ch[CH_EXEC][1]);
	ch[CH_EXEC][1] = -1;
	do
		n = read(ch[CH_EXEC][0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(err)) {
		waitpid(pid, NULL, 0);
		r = -err;
		snprintf(why, why_len, "cannot start the worker %s: %s", worker_path, strerror(err));
		goto fail;
	}

	r = pb_policy_compile(policy, pid, mode, &blob, why, why_len);
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
		goto fail;
	}

	out->pid = pid;
	out->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (out->pidfd < 0) {
		r = -errno;
		snprintf(why, why_len, "pidfd_open: %s", strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto fail;
	}
	fcntl(out->pidfd, F_SETFD, FD_CLOEXEC);
	out->calls_fd = ch[CH_CALLS][1];
	out->replies_fd = ch[CH_REPLIES][0];
	out->stdout_fd = ch[CH_STDOUT][0];
	out->stderr_fd = ch[CH_STDERR][0];
	out->report_fd = ch[CH_REPORT][0];
	ch[CH_CALLS][1] = ch[CH_REPLIES][0] = ch[CH_STDOUT][0] = ch[CH_STDERR][0] = ch[CH_REPORT][0] = -1;
	out->view_dir = view_dir;
	for (int i = 0; i < CH_COUNT; i++)
		close_pair(ch[i]);
	int fds[] = { out->calls_fd, out->replies_fd, out->stdout_fd, out->stderr_fd, out->report_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
	return 0;

fail:
	for (int i = 0; i < CH_COUNT; i++)
		close_pair(ch[i]);
	remove_view_dir(view_dir, name);
	free(view_dir);
	return r;
}

void pb_spawned_release(struct pb_spawned *s)
{
	int *fds[] = { &s->pidfd, &s->calls_fd, &s->replies_fd, &s->stdout_fd, &s->stderr_fd, &s->report_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] > 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	if (s->view_dir) {
		/* the link inside is named after the plugin: remove whatever is there */
		DIR *d = opendir(s->view_dir);
		if (d) {
			struct dirent *e;
			while ((e = readdir(d)))
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
					unlinkat(dirfd(d), e->d_name, 0);
			closedir(d);
		}
		remove_view_dir(s->view_dir, NULL);
		free(s->view_dir);
		s->view_dir = NULL;
	}
}
