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
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "frame.h"

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
	uint32_t first = len == 0 ? 1 : len < PB_FRAME_FIRST_ALLOC ? len : PB_FRAME_FIRST_ALLOC;

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

int pb_frame_write(int fd, const uint8_t *payload, size_t len)
{
	uint8_t header[4];
	struct iovec iov[2];
	struct iovec *cur = iov;
	int iovcnt = 2;

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
	if (len == 0)
		iovcnt = 1;
	while (iovcnt > 0) {
		ssize_t n = writev(fd, cur, iovcnt);

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

int pb_envelope_pack(const Plugbox__Envelope *env, uint32_t max_len, uint8_t **frame, size_t *frame_len)
{
	size_t len = plugbox__envelope__get_packed_size(env);
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
	plugbox__envelope__pack(env, buf + 4);
	*frame = buf;
	*frame_len = len + 4;
	return 0;
}

int pb_envelope_send(int fd, const Plugbox__Envelope *env, uint32_t max_len)
{
	size_t len = plugbox__envelope__get_packed_size(env);
	uint8_t *buf;
	int rc;

	if (len > max_len)
		return -EMSGSIZE;
	buf = malloc(len > 0 ? len : 1);
	if (!buf)
		return -ENOMEM;
	plugbox__envelope__pack(env, buf);
	rc = pb_frame_write(fd, buf, len);
	free(buf);
	return rc;
}
