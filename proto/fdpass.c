/* fdpass.c - messages with descriptors (fdpass.h). What arrives is counted
 * and bounded here; whether it is what the protocol allows is the
 * caller's judgement. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "proto/fdpass.h"

ssize_t pb_fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds, int flags)
{
	union {
		char buf[CMSG_SPACE(PB_FDPASS_MAX * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > PB_FDPASS_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (nfds > 0) {
		memset(ctl.buf, 0, sizeof(ctl.buf));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	while ((n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n;
}

ssize_t pb_fdpass_recv(int sock, void *buf, size_t len, int flags, int *fds, size_t max, size_t *nfds,
                       int *msg_flags)
{
	union {
		char buf[CMSG_SPACE(PB_FDPASS_MAX * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf };
	ssize_t n;

	/* Room for max descriptors and no more: the kernel closes the rest
	 * and says MSG_CTRUNC. */
	if (max > PB_FDPASS_MAX)
		max = PB_FDPASS_MAX;
	msg.msg_controllen = max ? CMSG_SPACE(max * sizeof(int)) : 0;
	if (!max)
		msg.msg_control = NULL;
	*nfds = 0;
	*msg_flags = 0;
	while ((n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < max)
				fds[*nfds] = fd;
			else
				close(fd);
			(*nfds)++;
		}
	}
	*msg_flags = msg.msg_flags;
	return n;
}
