/* zygote.c - start, use and stop a plugin's zygote (zygote.h).
 *
 * The control socket is the zygote's descriptor 3, a SOCK_SEQPACKET pair:
 * one request or reply per message, each of a fixed size (zygote_wire.h).
 * The zygote ran its plugin's import-time code, so a reply is read as
 * hostile bytes (HACKING.md): exact size, magic, at most one descriptor
 * kept, its error code mapped to ours and its text never shown. The
 * descriptor must be a pidfd of a child of this zygote, which the kernel
 * says (/proc/self/fdinfo, /proc/PID/status), not the zygote; the worst a
 * zygote can then hand us is a process of its own plugin.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/fdpass.h"
#include "jail/spawn.h"
#include "jail/zygote.h"
#include "jail/zygote_wire.h"

struct pb_zygote {
	struct pb_spawned proc; /* its calls_fd is the control socket */
	bool dead;
	bool ready;              /* it said the plugin is imported */
	struct timespec started; /* CLOCK_MONOTONIC, for PB_ZYGOTE_START_MS */
	int timeout_ms;
};

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Wait at most timeout_ms for the control socket. What the zygote prints
 * meanwhile (its plugin's import) is read and dropped, so that a full pipe
 * never stops it: a worker forked later prints on pipes of its own. */
static int wait_control(struct pb_zygote *z, int timeout_ms)
{
	struct timespec t0;
	char sink[4096];
	int out[2] = { z->proc.stdout_fd, z->proc.stderr_fd };
	/* Without a wait, a bounded number of reads: a zygote printing
	 * without end cannot keep the caller here. */
	int rounds = 16;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p[3] = { { z->proc.calls_fd, POLLIN, 0 }, { out[0], POLLIN, 0 }, { out[1], POLLIN, 0 } };
		long left = timeout_ms - ms_since(&t0);
		int r = poll(p, 3, left > 0 ? (int)left : 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || p[0].revents)
			return r;
		for (int i = 0; i < 2; i++)
			if (p[i + 1].revents && read(out[i], sink, sizeof(sink)) <= 0)
				out[i] = -1; /* closed: poll ignores a negative descriptor */
		if (timeout_ms == 0 && --rounds == 0)
			return 0;
	}
}

/* One reply within timeout_ms; *fd its pidfd or -1. 0, or -EPIPE with why. */
static int read_reply(struct pb_zygote *z, int timeout_ms, struct pb_zygote_reply *rep, int *fd,
                      char *why, size_t why_len)
{
	int got[1], mflags;
	size_t nfds;
	ssize_t n;
	int r;

	*fd = -1;
	r = wait_control(z, timeout_ms);
	if (r == 0) {
		snprintf(why, why_len, "zygote: no answer within %d ms", timeout_ms);
		return -EPIPE;
	}
	n = pb_fdpass_recv(z->proc.calls_fd, rep, sizeof(*rep), MSG_DONTWAIT, got, 1, &nfds, &mflags);
	if (n >= 0 && nfds > 0)
		*fd = got[0];
	if (n != (ssize_t)sizeof(*rep) || rep->magic != PB_ZYGOTE_MAGIC || (mflags & (MSG_TRUNC | MSG_CTRUNC)) || nfds > 1) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		snprintf(why, why_len, "zygote: %s", n == 0 ? "it exited" : n < 0 ? strerror(errno)
		                                                                  : "a reply it may not send");
		return -EPIPE;
	}
	return 0;
}

static int gone(struct pb_zygote *z, int r)
{
	z->dead = true;
	pb_zygote_kill(z->proc.pidfd, z->proc.pid);
	return r;
}

int pb_zygote_start(struct pb_forkserver *fs, const char *worker_path, const char *name, const char *plugin_dir,
                    const char *cache, const struct pb_policy *policy, uid_t uid, gid_t gid, int timeout_ms,
                    struct pb_zygote **out, char *why, size_t why_len)
{
	struct pb_zygote *z = calloc(1, sizeof(*z));
	char refused[256] = "";
	int r;

	*out = NULL;
	if (!z)
		return -ENOMEM;
	/* From the fork-server: it enters the same jail in the same order,
	 * and only skips exec and the interpreter's start (forkserver.h). A
	 * refusal (the fork-server gone, or its clone refused) is not the
	 * plugin's: the zygote is then exec'd, as it always could be, and the
	 * caller is told why (1). */
	r = fs ? pb_spawn_zygote(fs, worker_path, name, plugin_dir, cache, policy, uid, gid, &z->proc, why, why_len)
	       : -EAGAIN;
	if (fs && r < 0)
		snprintf(refused, sizeof(refused), "%s", why);
	if (r < 0)
		r = pb_spawn_zygote(NULL, worker_path, name, plugin_dir, cache, policy, uid, gid, &z->proc, why,
		                    why_len);
	if (r < 0) {
		free(z);
		return r;
	}
	clock_gettime(CLOCK_MONOTONIC, &z->started);
	z->timeout_ms = timeout_ms;
	*out = z;
	if (refused[0]) {
		snprintf(why, why_len, "%s", refused);
		return 1;
	}
	return 0;
}

int pb_zygote_ready(struct pb_zygote *z, char *why, size_t why_len)
{
	struct pb_zygote_reply ready = { 0 };
	int fd, r;

	if (z->ready)
		return 1;
	if (z->dead) {
		snprintf(why, why_len, "zygote: it is gone");
		return -EPIPE;
	}
	r = wait_control(z, 0);
	if (r == 0) {
		if (ms_since(&z->started) < z->timeout_ms)
			return 0;
		snprintf(why, why_len, "zygote: no answer within %d ms", z->timeout_ms);
		return gone(z, -EPIPE);
	}
	r = read_reply(z, 0, &ready, &fd, why, why_len);
	if (r == 0 && (fd >= 0 || ready.err != 0)) {
		snprintf(why, why_len, "zygote: a ready message it may not send");
		r = -EPROTO;
	}
	if (fd >= 0)
		close(fd);
	if (r < 0)
		return gone(z, r);
	z->ready = true;
	return 1;
}

bool pb_zygote_alive(struct pb_zygote *z)
{
	struct pollfd p[2];

	if (!z || z->dead)
		return false;
	/* Between requests it says nothing: anything readable is its exit
	 * (its pidfd), a hang-up, or bytes it may not send. Before it is
	 * ready, its ready message is pb_zygote_ready's to read. */
	p[0] = (struct pollfd){ z->proc.pidfd, POLLIN, 0 };
	p[1] = (struct pollfd){ z->proc.calls_fd, POLLIN, 0 };
	if (poll(p, z->ready ? 2 : 1, 0) != 0)
		z->dead = true;
	return !z->dead;
}

pid_t pb_zygote_pid(const struct pb_zygote *z)
{
	return z ? z->proc.pid : -1;
}

/* "Pid:" and the last "NSpid:" field of a pidfd, as the kernel says. */
static int pidfd_pids(int pidfd, pid_t *pid, int *nspid)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EPROTO;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nPid:"), *ns = strstr(buf, "\nNSpid:");
	if (!p || !ns)
		return -EPROTO; /* not a pidfd */
	*pid = (pid_t)strtol(p + 5, NULL, 10);
	const char *end = strchr(ns + 1, '\n'), *last = NULL;
	for (const char *q = ns + 7; *q && (!end || q < end); q++)
		if ((*q == '\t' || *q == ' ') && q[1] >= '0' && q[1] <= '9')
			last = q + 1;
	*nspid = last ? (int)strtol(last, NULL, 10) : -1;
	return *pid > 0 && *nspid > 0 ? 0 : -ESRCH;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[2048];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nPPid:");
	return p ? (pid_t)strtol(p + 6, NULL, 10) : -1;
}

/* The zygote broke the protocol or is gone: it forks nothing more. */
int pb_zygote_fork(struct pb_zygote *z, const int fds[PB_CHILD_FDS], int exec_fd, pid_t *pid, int *pidfd,
                   int *self_pid, char *why, size_t why_len)
{
	struct pb_zygote_request req = { PB_ZYGOTE_MAGIC };
	struct pb_zygote_reply rep = { 0 };
	int send_fds[PB_ZYGOTE_NFDS], fd, r;
	ssize_t n;

	*pid = -1;
	*pidfd = -1;
	if (!z->ready || !pb_zygote_alive(z)) {
		snprintf(why, why_len, "zygote: it is gone");
		return -EPIPE;
	}
	for (int i = 1; i < PB_CHILD_FDS; i++)
		send_fds[i - 1] = fds[i];
	send_fds[PB_ZYGOTE_NFDS - 1] = exec_fd;
	n = pb_fdpass_send(z->proc.calls_fd, &req, sizeof(req), send_fds, PB_ZYGOTE_NFDS, MSG_DONTWAIT);
	if (n != (ssize_t)sizeof(req)) {
		snprintf(why, why_len, "zygote: cannot send it a request: %s", n < 0 ? strerror(errno) : "short");
		return gone(z, -EPIPE);
	}
	if ((r = read_reply(z, PB_ZYGOTE_REPLY_MS, &rep, &fd, why, why_len)) < 0)
		return gone(z, r);
	if (rep.err != 0) {
		/* Its own errno, read as a number only: EAGAIN is its process
		 * limit; anything else, or a descriptor with it, a broken zygote. */
		if (fd >= 0)
			close(fd);
		if (rep.err == EAGAIN) {
			snprintf(why, why_len, "zygote: cannot fork: %s (its @limit processes)", strerror(EAGAIN));
			return -EAGAIN;
		}
		snprintf(why, why_len, "zygote: cannot fork (error %d)", rep.err > 0 && rep.err < 4096 ? rep.err : 0);
		return gone(z, -EPIPE);
	}
	pid_t got = -1;
	int ns = -1;
	struct pollfd p = { fd, POLLIN, 0 };
	/* A pidfd of a child of this zygote, still alive after the check (so
	 * the pid read is not a reused one). */
	if (fd < 0 || pidfd_pids(fd, &got, &ns) < 0 || parent_of(got) != z->proc.pid || poll(&p, 1, 0) != 0) {
		if (fd >= 0)
			close(fd);
		snprintf(why, why_len, "zygote: it did not hand over a child of its own");
		return gone(z, -EPIPE);
	}
	*pid = got;
	*pidfd = fd;
	*self_pid = ns;
	return 0;
}

void pb_zygote_stop(struct pb_zygote *z)
{
	if (!z)
		return;
	if (z->proc.pid > 0) {
		pb_zygote_kill(-1, z->proc.pid);
		while (waitpid(z->proc.pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	pb_spawned_release(&z->proc);
	free(z);
}

/* linux/pidfd.h of Linux 6.15 (Debian 12's headers predate it). */
struct pb_pidfd_info {
	uint64_t mask;
	uint8_t ids[52]; /* cgroupid, then pid .. fsgid: not read here */
	int32_t exit_code;
};
_Static_assert(offsetof(struct pb_pidfd_info, exit_code) == 60 && sizeof(struct pb_pidfd_info) == 64,
               "PIDFD_INFO_SIZE_VER0");
#define PB_PIDFD_INFO_EXIT (1ULL << 3)
#define PB_PIDFD_GET_INFO _IOWR(0xFF, 11, struct pb_pidfd_info)

int pb_zygote_child_status(int pidfd, int *wstatus)
{
	/* The pidfd turns readable as the child exits, a moment before the
	 * kernel reaps it for the zygote and records the status: a few
	 * tries, 50 us apart. */
	for (int i = 0; i < 40; i++) {
		struct pb_pidfd_info info;
		memset(&info, 0, sizeof(info));
		info.mask = PB_PIDFD_INFO_EXIT;
		if (ioctl(pidfd, PB_PIDFD_GET_INFO, &info) < 0)
			return errno == ESRCH ? -EAGAIN : -ENOSYS;
		if (info.mask & PB_PIDFD_INFO_EXIT) {
			*wstatus = info.exit_code;
			return 0;
		}
		nanosleep(&(struct timespec){ 0, 50000 }, NULL);
	}
	return -EAGAIN;
}

void pb_zygote_kill(int pidfd, pid_t pid)
{
	if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0)
		return;
	if (pidfd < 0 && pid > 0)
		kill(pid, SIGKILL);
}
