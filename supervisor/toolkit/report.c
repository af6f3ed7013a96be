/* report.c - pb_report_recv (report.h). */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "toolkit/report.h"

ssize_t pb_report_recv(int fd, uint8_t *buf, size_t cap, int fds[PB_REPORT_MAX_FDS], int *nfds,
                       bool *ctrunc)
{
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(PB_REPORT_MAX_FDS * sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof(control.space) };
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);

	*nfds = 0;
	*ctrunc = false;
	if (n <= 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(got));
			if (*nfds < PB_REPORT_MAX_FDS)
				fds[(*nfds)++] = got;
			else
				close(got);
		}
	}
	*ctrunc = (msg.msg_flags & MSG_CTRUNC) != 0;
	return n;
}
