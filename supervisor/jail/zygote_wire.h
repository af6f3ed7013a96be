/* zygote_wire.h - what the supervisor (supervisor/jail/zygote.c) and a
 * plugin's zygote (worker/zygote.c) say on the zygote's control socket,
 * its descriptor 3 (a SOCK_SEQPACKET pair in place of a call channel).
 *
 * Everything is fixed-size. A request carries PB_ZYGOTE_NFDS descriptors:
 * the child's 1-6 and its exec channel. A reply carries the child's pidfd.
 * The zygote has run its plugin's import-time code: the supervisor treats
 * its replies as hostile (HACKING.md) and believes nothing in them but for
 * that plugin; the child's pid comes from the kernel (the pidfd), not from
 * the reply.
 */
#ifndef PLUGBOX_ZYGOTE_WIRE_H
#define PLUGBOX_ZYGOTE_WIRE_H

#include <stdint.h>

#define PB_ZYGOTE_FD 3
#define PB_ZYGOTE_NFDS 7
#define PB_ZYGOTE_MAGIC 0x7a79676fu /* "zygo" */

/* Fork a child. */
struct pb_zygote_request {
	uint32_t magic;
};

/* Once, with err 0 and no descriptor: the plugin is imported and the
 * zygote is ready. Then one per request: err 0 with the child's pidfd, or
 * an errno (EAGAIN: its process limit) and why. */
struct pb_zygote_reply {
	uint32_t magic;
	int32_t err;
	char why[120];
};

#endif
