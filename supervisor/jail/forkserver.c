/* forkserver.c - start, use and stop the fork-server (forkserver.h).
 *
 * The control socket is a SOCK_SEQPACKET pair: one request is one message
 * (the packed jail plan and argv, jail_wire.c, with the child's seven
 * descriptors attached), one reply is one message (struct
 * pb_forkserver_reply, with the child's pidfd attached). The fork-server
 * trusts us and we trust it: it runs no plugin code, ever, and its
 * children talk to us only on the channels we gave them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/fdpass.h"
#include "jail/forkserver.h"
#include "jail/forkserver_wire.h"
#include "jail/spawner.h"

struct pb_forkserver {
	pid_t pid;
	int sock;
	int dead;
};

/* fork(2) of the fork-server, run on the spawner thread (spawner.c): its
 * parent-death signal then follows the supervisor process, and so do its
 * children's, which it clones with CLONE_PARENT. */
struct start_req {
	const char *worker_path;
	char *const *argv, *const *envp;
	int sock;
	pid_t parent;
};

static long start_forkserver(void *arg)
{
	const struct start_req *q = arg;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid > 0)
		return pid;
	/* System calls only until exec: the host may have threads. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != q->parent ||
	    dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
	    dup2(q->sock, PB_FORKSERVER_FD) < 0 ||
	    syscall(SYS_close_range, PB_FORKSERVER_FD + 1, ~0U, 0) < 0)
		_exit(127);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(q->worker_path, q->argv, q->envp);
	_exit(127);
}

int pb_forkserver_start(const char *worker_path, bool zygotes, struct pb_forkserver **out, char *why,
                        size_t why_len)
{
	static char *const envp[] = { "LANG=C.UTF-8", NULL };
	char room[PB_FORKSERVER_TITLE_ROOM + 1];
	char *const with_zygotes[] = { (char *)worker_path, "--fork-server", "--zygotes", room, NULL };
	char *const without[] = { (char *)worker_path, "--fork-server", room, NULL };
	char *const *argv = zygotes ? with_zygotes : without;
	struct pb_forkserver *fs;
	struct pb_forkserver_reply ready;
	int sv[2];
	pid_t parent = getpid();

	*out = NULL;
	memset(room, ' ', PB_FORKSERVER_TITLE_ROOM);
	room[PB_FORKSERVER_TITLE_ROOM] = '\0';
	if (!(fs = calloc(1, sizeof(*fs))))
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		int e = errno;
		snprintf(why, why_len, "fork-server: cannot create its socket: %s", strerror(e));
		free(fs);
		return -e;
	}
	struct start_req req = { worker_path, argv, envp, sv[1], parent };
	long got = pb_spawner_run(start_forkserver, &req);
	fs->pid = (pid_t)got;
	if (got < 0) {
		int e = (int)-got;
		snprintf(why, why_len, "fork-server: cannot fork: %s", strerror(e));
		close(sv[0]);
		close(sv[1]);
		free(fs);
		return -e;
	}
	close(sv[1]);
	fs->sock = sv[0];
	/* It says it is ready once its interpreter is up, or dies trying. */
	ssize_t n;
	while ((n = recv(fs->sock, &ready, sizeof(ready), 0)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(ready) || ready.err != 0) {
		ready.why[sizeof(ready.why) - 1] = '\0';
		snprintf(why, why_len, "fork-server: %s did not start%s%s", worker_path,
		         n == (ssize_t)sizeof(ready) ? ": " : "", n == (ssize_t)sizeof(ready) ? ready.why : "");
		pb_forkserver_stop(fs);
		return -ECHILD;
	}
	*out = fs;
	return 0;
}

int pb_forkserver_alive(struct pb_forkserver *fs)
{
	struct pollfd p;

	if (!fs || fs->dead)
		return 0;
	/* Between requests it says nothing: anything readable is its exit
	 * (hang-up) or a fault. */
	p.fd = fs->sock;
	p.events = POLLIN;
	p.revents = 0;
	if (poll(&p, 1, 0) != 0)
		fs->dead = 1;
	return !fs->dead;
}

int pb_forkserver_clone(struct pb_forkserver *fs, const struct pb_jail *jail, char *const *argv,
                        const int fds[PB_CHILD_FDS], int exec_fd, pid_t *pid, int *pidfd,
                        char *why, size_t why_len)
{
	struct pb_forkserver_reply reply = { 0 };
	uint8_t *packed = NULL;
	size_t len = 0, nfds;
	int send_fds[PB_FORKSERVER_NFDS], got = -1, mflags;
	ssize_t n;
	int r;

	*pid = -1;
	*pidfd = -1;
	if (!pb_forkserver_alive(fs)) {
		snprintf(why, why_len, "fork-server: it is gone");
		return -EPIPE;
	}
	if ((r = pb_jail_pack(jail, argv, &packed, &len)) < 0) {
		snprintf(why, why_len, "fork-server: cannot pack the jail: %s", strerror(-r));
		return r;
	}
	for (int i = 1; i < PB_CHILD_FDS; i++)
		send_fds[i - 1] = fds[i];
	send_fds[PB_CHILD_FDS - 1] = exec_fd;

	n = pb_fdpass_send(fs->sock, packed, len, send_fds, PB_FORKSERVER_NFDS, 0);
	free(packed);
	if (n != (ssize_t)len) {
		fs->dead = 1;
		snprintf(why, why_len, "fork-server: cannot send it a request: %s", n < 0 ? strerror(errno) : "short");
		return -EPIPE;
	}
	n = pb_fdpass_recv(fs->sock, &reply, sizeof(reply), 0, &got, 1, &nfds, &mflags);
	if (n != (ssize_t)sizeof(reply)) {
		if (n > 0 && nfds > 0)
			close(got);
		fs->dead = 1;
		snprintf(why, why_len, "fork-server: no answer: %s", n < 0 ? strerror(errno) : "it exited");
		return -EPIPE;
	}
	if (nfds == 0)
		got = -1;
	reply.why[sizeof(reply.why) - 1] = '\0';
	if (reply.err != 0 || got < 0 || reply.pid <= 0) {
		if (got >= 0)
			close(got);
		snprintf(why, why_len, "%s: %s", reply.why[0] ? reply.why : "fork-server",
		         strerror(reply.err ? reply.err : EPROTO));
		return -(reply.err ? reply.err : EPROTO);
	}
	*pid = reply.pid;
	*pidfd = got;
	return 0;
}

void pb_forkserver_stop(struct pb_forkserver *fs)
{
	if (!fs)
		return;
	if (fs->sock >= 0)
		close(fs->sock);
	if (fs->pid > 0) {
		kill(fs->pid, SIGKILL);
		while (waitpid(fs->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	free(fs);
}
