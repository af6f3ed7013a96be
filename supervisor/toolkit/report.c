/* report.c - pb_report_recv (report.h). */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/fdpass.h"
#include "toolkit/report.h"

ssize_t pb_report_recv(int fd, uint8_t *buf, size_t cap, int fds[PB_REPORT_MAX_FDS], int *nfds,
                       bool *ctrunc)
{
	size_t came = 0;
	int flags = 0;
	ssize_t n = pb_fdpass_recv(fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC, fds, PB_REPORT_MAX_FDS, &came, &flags);

	*nfds = 0;
	*ctrunc = false;
	if (n <= 0) {
		for (size_t i = 0; i < came && i < PB_REPORT_MAX_FDS; i++)
			close(fds[i]);
		return n;
	}
	*nfds = (int)(came < PB_REPORT_MAX_FDS ? came : PB_REPORT_MAX_FDS);
	*ctrunc = (flags & MSG_CTRUNC) != 0;
	return n;
}
