/* frame.c - the length-prefixed framing shared by the supervisor, the worker
 * and the tests: a 4-byte little-endian length, then that many bytes.
 *
 * The reader never trusts the length: it is checked against the reader's
 * bound before anything is allocated, the payload buffer then grows with the
 * bytes that arrive rather than being sized by the header (a peer announcing
 * 16 MiB and sending nothing holds PB_FRAME_FIRST_ALLOC of our memory, not
 * 16 MiB), and reads never ask the kernel for more than the current frame
 * still needs, so a frame's bytes are consumed only by the reader that owns
 * them (the next frame stays in the pipe).
 *
 * The buffered reader and writer (pb_frame_in, pb_frame_out) are for the
 * call channel, whose two ends each have one owner: there a system call
 * should move as many frames as are ready, so a reader takes whatever the
 * kernel has and a writer sends every queued frame at once.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto/frame.h"

void pb_frame_reader_init(struct pb_frame_reader *r, uint32_t max_len)
{
	memset(r, 0, sizeof(*r));
	r->max_len = max_len;
}

void pb_frame_reader_free(struct pb_frame_reader *r)
{
	free(r->payload);
	r->payload = NULL;
	r->header_got = 0;
	r->payload_len = 0;
	r->payload_got = 0;
	r->payload_cap = 0;
	r->ready = 0;
}

/* The header is complete: bound the length, then allocate the first part of
 * the buffer. On -EMSGSIZE the reader stays in "header complete, no payload"
 * and every later call returns the same error, which is what makes it
 * unusable until re-initialised. */
static int header_done(struct pb_frame_reader *r)
{
	uint32_t len = (uint32_t)r->header[0] | (uint32_t)r->header[1] << 8 |
	               (uint32_t)r->header[2] << 16 | (uint32_t)r->header[3] << 24;
	/* One byte for an empty frame, so a taken payload is never NULL. */
	uint32_t first = len == 0 ? 1 : len < PB_FRAME_FIRST_ALLOC ? len
	                                                           : PB_FRAME_FIRST_ALLOC;

	r->payload_len = len;
	if (len > r->max_len)
		return -EMSGSIZE;
	r->payload = malloc(first);
	if (!r->payload)
		return -ENOMEM;
	r->payload_cap = first;
	r->payload_got = 0;
	if (len == 0)
		r->ready = 1;
	return 0;
}

/* Make the buffer hold at least need bytes (need <= payload_len): double it
 * until it does, never past the frame's length. Doubling keeps the copying
 * linear in the frame's size; growing only for bytes in hand keeps what a
 * peer can make us hold at twice what it actually sent. After a failure
 * the buffer is as it was (and the next call tries again). */
static int payload_reserve(struct pb_frame_reader *r, uint32_t need)
{
	uint32_t cap = r->payload_cap;
	uint8_t *p;

	if (need <= cap)
		return 0;
	while (cap < need)
		cap = cap > r->payload_len / 2 ? r->payload_len : cap * 2;
	p = realloc(r->payload, cap);
	if (!p)
		return -ENOMEM;
	r->payload = p;
	r->payload_cap = cap;
	return 0;
}

/* True while the header is complete but no payload buffer exists: a bound
 * or allocation failure happened and is reported again. */
static bool payload_pending(const struct pb_frame_reader *r)
{
	return r->header_got == sizeof(r->header) && !r->payload && !r->ready;
}

ssize_t pb_frame_feed(struct pb_frame_reader *r, const uint8_t *data, size_t n)
{
	size_t used = 0;
	int rc;

	if (r->ready)
		return 0;
	if (payload_pending(r)) {
		rc = header_done(r);
		if (rc < 0)
			return rc;
	}
	if (r->header_got < sizeof(r->header)) {
		size_t want = sizeof(r->header) - r->header_got;

		if (want > n)
			want = n;
		if (want > 0)
			memcpy(r->header + r->header_got, data, want);
		r->header_got += want;
		used += want;
		if (r->header_got < sizeof(r->header))
			return (ssize_t)used;
		rc = header_done(r);
		if (rc < 0)
			return rc;
		if (r->ready)
			return (ssize_t)used;
	}
	{
		size_t want = r->payload_len - r->payload_got;

		if (want > n - used)
			want = n - used;
		if (want > 0) {
			rc = payload_reserve(r, r->payload_got + (uint32_t)want);
			if (rc < 0)
				return rc;
			memcpy(r->payload + r->payload_got, data + used, want);
		}
		r->payload_got += (uint32_t)want;
		used += want;
		if (r->payload_got == r->payload_len)
			r->ready = 1;
	}
	return (ssize_t)used;
}

/* One read(2) of at most what the current frame still needs. *would_block
 * tells pb_frame_read_blocking whether waiting in poll() makes sense. */
static int read_once(struct pb_frame_reader *r, int fd, bool *would_block)
{
	uint8_t *dst;
	size_t want;
	ssize_t got;
	int rc;

	*would_block = false;
	if (r->ready)
		return 1;
	if (payload_pending(r)) {
		rc = header_done(r);
		if (rc < 0)
			return rc;
		if (r->ready)
			return 1;
	}
	if (r->header_got < sizeof(r->header)) {
		dst = r->header + r->header_got;
		want = sizeof(r->header) - r->header_got;
	} else {
		/* A full buffer grows before the read, so at most what was
		 * received so far is allocated ahead of the bytes. */
		if (r->payload_got == r->payload_cap) {
			rc = payload_reserve(r, r->payload_got + 1);
			if (rc < 0)
				return rc;
		}
		dst = r->payload + r->payload_got;
		want = r->payload_cap - r->payload_got;
	}
	got = read(fd, dst, want);
	if (got < 0) {
		if (errno == EINTR)
			return 0;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			*would_block = true;
			return 0;
		}
		return -errno;
	}
	if (got == 0)
		return r->header_got == 0 ? -ENODATA : -EPIPE;
	if (r->header_got < sizeof(r->header)) {
		r->header_got += (size_t)got;
		if (r->header_got < sizeof(r->header))
			return 0;
		rc = header_done(r);
		if (rc < 0)
			return rc;
	} else {
		r->payload_got += (uint32_t)got;
		if (r->payload_got == r->payload_len)
			r->ready = 1;
	}
	return r->ready ? 1 : 0;
}

int pb_frame_read_fd(struct pb_frame_reader *r, int fd)
{
	bool would_block;

	return read_once(r, fd, &would_block);
}

int pb_frame_read_blocking(struct pb_frame_reader *r, int fd)
{
	for (;;) {
		bool would_block;
		int rc = read_once(r, fd, &would_block);

		if (rc != 0)
			return rc;
		if (would_block) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return -errno;
			if (p.revents & POLLNVAL)
				return -EBADF;
		}
	}
}

int pb_frame_take(struct pb_frame_reader *r, uint8_t **payload, uint32_t *len)
{
	if (!r->ready)
		return -EAGAIN;
	*payload = r->payload;
	*len = r->payload_len;
	r->payload = NULL;
	r->header_got = 0;
	r->payload_len = 0;
	r->payload_got = 0;
	r->payload_cap = 0;
	r->ready = 0;
	return 0;
}

/* Wait until fd is writable again after EAGAIN. POLLERR/POLLHUP also wake us;
 * the next write then reports the real error (EPIPE). */
static int wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	if (poll(&p, 1, -1) < 0 && errno != EINTR)
		return -errno;
	if (p.revents & POLLNVAL)
		return -EBADF;
	return 0;
}

/* Write every byte of iov[0..iovcnt) (which it consumes), retrying short
 * writes and EINTR, waiting on EAGAIN. One iovec goes out with write(2),
 * which is all a worker's policy must allow. */
static int write_iovs(int fd, struct iovec *cur, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = iovcnt == 1 ? write(fd, cur->iov_base, cur->iov_len) : writev(fd, cur, iovcnt);

		if (n < 0) {
			int rc;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			rc = wait_writable(fd);
			if (rc < 0)
				return rc;
			continue;
		}
		while (iovcnt > 0 && (size_t)n >= cur->iov_len) {
			n -= (ssize_t)cur->iov_len;
			cur++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			cur->iov_base = (uint8_t *)cur->iov_base + n;
			cur->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int pb_frame_write(int fd, const uint8_t *payload, size_t len)
{
	uint8_t header[4];
	struct iovec iov[2];

	if (len > UINT32_MAX)
		return -EMSGSIZE;
	header[0] = (uint8_t)len;
	header[1] = (uint8_t)(len >> 8);
	header[2] = (uint8_t)(len >> 16);
	header[3] = (uint8_t)(len >> 24);
	/* One writev for header and payload: a small frame then reaches the
	 * pipe in one atomic write and costs one system call. */
	iov[0] = (struct iovec){ .iov_base = header, .iov_len = sizeof(header) };
	iov[1] = (struct iovec){ .iov_base = (void *)payload, .iov_len = len };
	return write_iovs(fd, iov, len == 0 ? 1 : 2);
}

int pb_envelope_pack(const Plugbox__Envelope *env, uint32_t max_len, uint8_t **frame, size_t *frame_len)
{
	size_t len = pb_envelope_packed_size(env);
	uint8_t *buf;

	*frame = NULL;
	*frame_len = 0;
	if (len > max_len)
		return -EMSGSIZE;
	buf = malloc(len + 4);
	if (!buf)
		return -ENOMEM;
	buf[0] = (uint8_t)len;
	buf[1] = (uint8_t)(len >> 8);
	buf[2] = (uint8_t)(len >> 16);
	buf[3] = (uint8_t)(len >> 24);
	pb_envelope_pack_to(env, buf + 4);
	*frame = buf;
	*frame_len = len + 4;
	return 0;
}

int pb_envelope_send(int fd, const Plugbox__Envelope *env, uint32_t max_len)
{
	struct iovec iov;
	uint8_t *frame;
	size_t len;
	int rc = pb_envelope_pack(env, max_len, &frame, &len);

	if (rc < 0)
		return rc;
	/* header and payload in one buffer: one write(2) */
	iov = (struct iovec){ .iov_base = frame, .iov_len = len };
	rc = write_iovs(fd, &iov, 1);
	free(frame);
	return rc;
}

/* ---- buffered reading -------------------------------------------------- */

void pb_frame_in_init(struct pb_frame_in *in, uint32_t max_len, size_t cap)
{
	memset(in, 0, sizeof(*in));
	in->cap = in->base_cap = cap < 64 ? 64 : cap;
	in->max_len = max_len;
}

void pb_frame_in_free(struct pb_frame_in *in)
{
	free(in->buf);
	in->buf = NULL;
	in->start = in->end = 0;
	in->cap = in->base_cap;
}

int pb_frame_in_next(struct pb_frame_in *in, const uint8_t **payload, uint32_t *len)
{
	size_t have = in->end - in->start;
	uint32_t n;

	if (have < 4)
		return 0;
	n = pb_frame_in_announced(in);
	if (n > in->max_len)
		return -EMSGSIZE;
	if (have - 4 < n)
		return 0;
	*payload = in->buf + in->start + 4;
	*len = n;
	in->start += 4 + (size_t)n;
	return 1;
}

ssize_t pb_frame_in_fill(struct pb_frame_in *in, int fd)
{
	size_t have, need = 0;
	ssize_t got;

	if (in->start == in->end) {
		in->start = in->end = 0;
		if (in->cap > in->base_cap) {
			/* a large frame is gone: give its memory back */
			free(in->buf);
			in->buf = NULL;
			in->cap = in->base_cap;
		}
	}
	if (!in->buf && !(in->buf = malloc(in->cap)))
		return -ENOMEM;
	have = in->end - in->start;
	if (have >= 4) {
		uint32_t n = pb_frame_in_announced(in);

		if (n > in->max_len)
			return -EMSGSIZE;
		need = 4 + (size_t)n;
	}
	/* Keep the frame in progress at the front once the tail is full or
	 * it would not fit behind what was consumed. */
	if (in->start > 0 && (in->end == in->cap || in->start + need > in->cap)) {
		memmove(in->buf, in->buf + in->start, have);
		in->start = 0;
		in->end = have;
	}
	if (in->end == in->cap) {
		/* Full of one frame larger than the buffer: grow with what came. */
		size_t cap = in->cap * 2 < need ? in->cap * 2 : need;
		uint8_t *p;

		if (cap <= in->cap)
			return 0; /* a whole frame waits: the caller takes it first */
		p = realloc(in->buf, cap);
		if (!p)
			return -ENOMEM;
		in->buf = p;
		in->cap = cap;
	}
	got = read(fd, in->buf + in->end, in->cap - in->end);
	if (got < 0)
		return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	if (got == 0)
		return have == 0 ? -ENODATA : -EPIPE;
	in->end += (size_t)got;
	return got;
}

/* ---- buffered writing -------------------------------------------------- */

/* Room for `more` bytes at the end, moving what is left to the front or
 * growing (doubling) as needed. */
static int out_reserve(struct pb_frame_out *out, size_t more)
{
	size_t cap;
	uint8_t *p;

	if (out->start == out->end)
		out->start = out->end = 0;
	if (out->cap - out->end >= more)
		return 0;
	if (out->start > 0) {
		memmove(out->buf, out->buf + out->start, out->end - out->start);
		out->end -= out->start;
		out->start = 0;
		if (out->cap - out->end >= more)
			return 0;
	}
	cap = out->cap ? out->cap : 4096;
	while (cap - out->end < more) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	p = realloc(out->buf, cap);
	if (!p)
		return -ENOMEM;
	out->buf = p;
	out->cap = cap;
	return 0;
}

int pb_frame_out_append(struct pb_frame_out *out, const Plugbox__Envelope *env, uint32_t max_len)
{
	size_t len = pb_envelope_packed_size(env);
	uint8_t *p;

	if (len > max_len)
		return -EMSGSIZE;
	if (out_reserve(out, len + 4) < 0)
		return -ENOMEM;
	p = out->buf + out->end;
	p[0] = (uint8_t)len;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 24);
	pb_envelope_pack_to(env, p + 4);
	out->end += len + 4;
	return 0;
}

int pb_frame_out_append_raw(struct pb_frame_out *out, const uint8_t *data, size_t len)
{
	if (out_reserve(out, len) < 0)
		return -ENOMEM;
	memcpy(out->buf + out->end, data, len);
	out->end += len;
	return 0;
}

ssize_t pb_frame_out_write(struct pb_frame_out *out, int fd)
{
	ssize_t n;

	if (out->start == out->end)
		return 0;
	do
		n = write(fd, out->buf + out->start, out->end - out->start);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	pb_frame_out_consumed(out, (size_t)n);
	return n;
}

void pb_frame_out_consumed(struct pb_frame_out *out, size_t n)
{
	out->start += n;
	if (out->start == out->end) {
		out->start = out->end = 0;
		if (out->cap > (size_t)256 * 1024) {
			/* a large frame went out: give its memory back */
			free(out->buf);
			out->buf = NULL;
			out->cap = 0;
		}
	}
}

void pb_frame_out_free(struct pb_frame_out *out)
{
	free(out->buf);
	memset(out, 0, sizeof(*out));
}
