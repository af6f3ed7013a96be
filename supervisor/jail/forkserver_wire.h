/* forkserver_wire.h - what the supervisor (supervisor/forkserver.c) and the
 * fork-server (worker/forkserver.c) say to each other on its control
 * socket. A request is the packed jail plan and argv (jail_wire.c) with
 * PB_FORKSERVER_NFDS descriptors: the child's 1-6 and its exec channel.
 */
#ifndef PLUGBOX_FORKSERVER_WIRE_H
#define PLUGBOX_FORKSERVER_WIRE_H

#include <stdint.h>

/* The fork-server's control socket. */
#define PB_FORKSERVER_FD 3
#define PB_FORKSERVER_NFDS 7
/* Largest request: a plan with its paths and an argv fit in a few KiB. */
#define PB_FORKSERVER_MAX_REQUEST (256 * 1024)

/* The fork-server's third argument: this many spaces, room in its command
 * line for a zygote it clones to show `--zygote --name PLUGIN` there, as
 * an exec'd zygote does (ps, plugbox selftest, the tests find it so). */
#define PB_FORKSERVER_TITLE_ROOM 160

/* The answer to a request (with the child's pidfd attached when err is 0),
 * and, once, with pid 0, that the fork-server is ready. */
struct pb_forkserver_reply {
	int32_t err;
	int32_t pid;
	char why[200];
};

#endif
