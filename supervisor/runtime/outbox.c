/* outbox.c - frames to a worker: buffered, and written in batches.
 *
 * Each worker has one outbox, a buffer of whole frames its calls pipe has
 * not taken yet. A frame that must go now (a call to an idle worker, a host
 * function's answer, a nested call) is appended and written at once; calls
 * pipelined behind a running one are appended when the loop flushes (before
 * it sleeps and after it has run callbacks), so calls started together
 * reach the worker in one write(2). What the pipe does not take waits for
 * EPOLLOUT; a worker that stops reading is ended after
 * PB_CHANNEL_STALL_SECONDS (channel.c).
 *
 * Writing to a pipe whose reader is gone raises SIGPIPE, and the library
 * must not change the host's signal dispositions. So we hold a read end of
 * each calls pipe ourselves (reopened through /proc/self/fd): the pipe then
 * always has a reader, a write never raises SIGPIPE, and a dead worker is
 * noticed through its pidfd as always. Without /proc, each write blocks
 * SIGPIPE for its duration instead (three more system calls).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/channel.h"
#include "runtime/inflight.h"
#include "runtime/loop.h"
#include "runtime/outbox.h"
#include "runtime/process.h"

void pb_outbox_keep_reader(struct process *w)
{
	char path[64];
	struct stat a, b;
	int fd;

	if (w->proc.calls_fd < 0)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", w->proc.calls_fd);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	/* the same pipe, not whatever the path turned out to be */
	if (fstat(fd, &a) < 0 || fstat(w->proc.calls_fd, &b) < 0 || !S_ISFIFO(a.st_mode) ||
	    a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		close(fd);
		return;
	}
	w->calls_keep_fd = fd;
}

/* Write without raising SIGPIPE in the host: block it for this thread and
 * swallow the one our write raised. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old, pending;
	ssize_t n;
	int saved;
	bool was_pending;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, buf, len);
	saved = errno;
	if (n < 0 && saved == EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return n;
}

ssize_t pb_outbox_write(const struct process *w, const void *buf, size_t len)
{
	ssize_t n;

	if (w->calls_keep_fd < 0)
		return write_nosigpipe(w->proc.calls_fd, buf, len);
	do
		n = write(w->proc.calls_fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

static void unqueue_flush(pb_supervisor *s, struct process *w)
{
	if (!w->flush_queued)
		return;
	for (struct process **p = &s->flush_head; *p; p = &(*p)->next_flush) {
		if (*p == w) {
			*p = w->next_flush;
			break;
		}
	}
	w->next_flush = NULL;
	w->flush_queued = false;
}

void pb_outbox_drop(pb_supervisor *s, struct process *w)
{
	unqueue_flush(s, w);
	pb_frame_out_free(&w->outbox);
	w->write_stall_at = 0;
}

void pb_outbox_flush(pb_supervisor *s, struct process *w)
{
	bool progressed = false;

	while (pb_frame_out_pending(&w->outbox) > 0 && w->proc.calls_fd >= 0) {
		ssize_t n = pb_outbox_write(w, w->outbox.buf + w->outbox.start, pb_frame_out_pending(&w->outbox));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			/* The worker is gone; its pidfd will tell how. */
			pb_frame_out_free(&w->outbox);
			break;
		}
		pb_frame_out_consumed(&w->outbox, (size_t)n);
		progressed = progressed || n > 0;
	}
	pb_loop_want_write(s, w, pb_frame_out_pending(&w->outbox) > 0);
	pb_channel_stall_clock(s, w, &w->write_stall_at, pb_frame_out_pending(&w->outbox) > 0, progressed);
}

int pb_outbox_send(pb_supervisor *s, struct process *w, uint8_t *frame, size_t len)
{
	int r = pb_frame_out_append_raw(&w->outbox, frame, len);

	free(frame);
	if (r < 0)
		return r;
	pb_outbox_flush(s, w);
	return 0;
}

int pb_outbox_append_call(struct process *w, const uint8_t *frame, size_t len, uint32_t poll_us)
{
	/* Envelope.poll_us (field 12, varint), appended after the body: fields
	 * may come in any order, and the frame's length grows by as much. */
	uint8_t field[8];
	size_t n = 0;
	uint32_t total;

	if (poll_us > 0) {
		field[n++] = 12 << 3;
		for (uint32_t v = poll_us;; v >>= 7) {
			field[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
			if (v < 0x80)
				break;
		}
	}
	if (pb_frame_out_append_raw(&w->outbox, frame, len) < 0)
		return -ENOMEM;
	if (n == 0)
		return 0;
	if (pb_frame_out_append_raw(&w->outbox, field, n) < 0) {
		w->outbox.end -= len;
		return -ENOMEM;
	}
	/* the header went in as it was: fix its length */
	total = (uint32_t)(len - 4 + n);
	uint8_t *h = w->outbox.buf + w->outbox.end - n - len;
	h[0] = (uint8_t)total;
	h[1] = (uint8_t)(total >> 8);
	h[2] = (uint8_t)(total >> 16);
	h[3] = (uint8_t)(total >> 24);
	return 0;
}

void pb_outbox_flush_later(pb_supervisor *s, struct process *w)
{
	if (w->flush_queued)
		return;
	w->flush_queued = true;
	w->next_flush = s->flush_head;
	s->flush_head = w;
	/* outside a dispatch round, the host's loop must come and do it */
	if (s->dispatch_depth == 0)
		pb_loop_wake(s);
}

void pb_outbox_flush_all(pb_supervisor *s)
{
	while (s->flush_head) {
		struct process *w = s->flush_head;

		s->flush_head = w->next_flush;
		w->next_flush = NULL;
		w->flush_queued = false;
		if (w->state == P_DEAD)
			continue;
		pb_inflight_materialize(s, w);
		pb_outbox_flush(s, w);
	}
}
