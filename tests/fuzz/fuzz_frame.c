/* fuzz_frame.c - libFuzzer target for the frame reader (supervisor/frame.c),
 * the first code that touches the bytes of a worker or a `plugbox serve`
 * client.
 *
 * The input is a byte stream plus the way it arrives: byte 0 picks the
 * reader's bound (byte 0 % 9) and an allocation that fails (byte 0 / 9,
 * 0 for none: then both readers run again while it fails; the one error
 * allowed is then -ENOMEM, and nothing may leak), byte 1 how many of the
 * following bytes are chunk sizes (low 4 bits) and whether the stream is
 * repeated to a larger size (high 4 bits 14 and 15: to 96 and 256 KiB;
 * frames larger than the reader's first allocation need more bytes than
 * libFuzzer's inputs have; rarely, as big streams are slow), and the rest
 * is the stream. The stream goes through pb_frame_feed in those
 * chunks, then through a socketpair written in the same chunks and read
 * with pb_frame_read_fd (and pb_frame_read_blocking once the writer has shut
 * down). Both readers are checked against a model that splits the stream
 * into frames by hand: every frame taken is the model's frame, byte for
 * byte; an oversized header is refused exactly where the model says; no
 * call consumes more than it was given (for the descriptor, the kernel's
 * count of unread bytes says what the reader took); the payload buffer never
 * exceeds the bound nor runs more than a doubling ahead of the bytes
 * received. Every whole frame is decoded with pb_envelope_decode.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/frame.h"
#include "fuzz_common.h"


static const uint32_t bounds[] = {
	0,
	1,
	7,
	64,
	4096,
	PB_FRAME_FIRST_ALLOC - 1,
	PB_FRAME_FIRST_ALLOC + 1,
	PB_FRAME_MAX_DEFAULT,
	UINT32_MAX,
};

/* The stream cut into frames by hand. */
struct model {
	const uint8_t *s;
	size_t n;
	size_t pos; /* start of the next frame */
	uint32_t max_len;
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Is the frame at the model's position announced larger than the bound
 * (with its whole header in the stream)? */
static bool model_oversized(const struct model *m)
{
	return m->n - m->pos >= 4 && le32(m->s + m->pos) > m->max_len;
}

/* A reader gave us a frame: it must be the model's next one. */
static void model_take(struct model *m, const uint8_t *payload, uint32_t len)
{
	FUZZ_ASSERT(m->n - m->pos >= 4);
	FUZZ_ASSERT(le32(m->s + m->pos) == len);
	FUZZ_ASSERT(len <= m->max_len);
	FUZZ_ASSERT(m->n - m->pos - 4 >= len);
	FUZZ_ASSERT(payload != NULL);
	FUZZ_ASSERT(len == 0 || memcmp(payload, m->s + m->pos + 4, len) == 0);
	m->pos += 4 + (size_t)len;
}

/* What the reader holds of the frame in progress. */
static size_t reader_holds(const struct pb_frame_reader *r)
{
	return r->header_got + r->payload_got;
}

static void check_reader(const struct pb_frame_reader *r)
{
	FUZZ_ASSERT(r->header_got <= sizeof(r->header));
	if (r->header_got < sizeof(r->header)) {
		FUZZ_ASSERT(r->payload == NULL);
		FUZZ_ASSERT(r->payload_got == 0 && !r->ready);
		return;
	}
	if (!r->payload) {
		/* Refused (or the allocation failed): nothing held. */
		FUZZ_ASSERT(r->payload_got == 0 && !r->ready);
		return;
	}
	FUZZ_ASSERT(r->payload_len <= r->max_len);
	FUZZ_ASSERT(r->payload_got <= r->payload_len);
	FUZZ_ASSERT(r->payload_got <= r->payload_cap);
	/* Never more than the frame (one byte for an empty one)... */
	FUZZ_ASSERT(r->payload_cap <= (r->payload_len > 0 ? r->payload_len : 1));
	/* ... and never more than a doubling ahead of what arrived. */
	FUZZ_ASSERT(r->payload_cap <= PB_FRAME_FIRST_ALLOC ||
	            (uint64_t)r->payload_cap <= 2 * (uint64_t)r->payload_got);
	FUZZ_ASSERT(!r->ready || r->payload_got == r->payload_len);
}

static void decode(const uint8_t *payload, uint32_t len)
{
	static Plugbox__Envelope sentinel;
	Plugbox__Envelope *env = &sentinel; /* decode must clear it on failure */
	char why[128];
	int rc = pb_envelope_decode(payload, len, &env, why, sizeof(why));

	if (rc == 0) {
		FUZZ_ASSERT(env != NULL);
		pb_envelope_free(env);
		return;
	}
	FUZZ_ASSERT(env == NULL);
	FUZZ_ASSERT(rc == -EBADMSG || rc == -ELOOP || rc == -E2BIG);
	FUZZ_ASSERT(why[0] != '\0' && memchr(why, '\0', sizeof(why)));
}

/* Take the ready frame, check it against the model, decode it. */
static void take(struct pb_frame_reader *r, struct model *m)
{
	uint8_t *payload;
	uint32_t len;

	FUZZ_ASSERT(pb_frame_take(r, &payload, &len) == 0);
	FUZZ_ASSERT(!r->ready && r->payload == NULL && reader_holds(r) == 0);
	model_take(m, payload, len);
	decode(payload, len);
	free(payload);
	FUZZ_ASSERT(pb_frame_take(r, &payload, &len) == -EAGAIN);
}

struct chunks {
	const uint8_t *size;
	size_t n, next;
	size_t scale; /* a doubled stream comes in bigger pieces */
};

static size_t next_chunk(struct chunks *c, size_t left)
{
	size_t want;

	if (c->n == 0)
		return left;
	/* 0 means "everything that is left"; others are 1..255 bytes, scaled
	 * up now and then so big frames arrive in big pieces too. */
	want = c->size[c->next % c->n] * c->scale;
	if (want == 0)
		want = left;
	else if (c->next % 7 == 6)
		want *= 1024;
	c->next++;
	return want < left ? want : left;
}

static void run_feed(const uint8_t *s, size_t n, uint32_t max_len, struct chunks ck, bool may_fail)
{
	struct pb_frame_reader r;
	struct model m = { s, n, 0, max_len };
	size_t off = 0;

	pb_frame_reader_init(&r, max_len);
	while (off < n) {
		size_t chunk = next_chunk(&ck, n - off), fed = 0;

		while (fed < chunk) {
			ssize_t rc = pb_frame_feed(&r, s + off + fed, chunk - fed);

			if (rc == -ENOMEM && may_fail) {
				check_reader(&r);
				pb_frame_reader_free(&r);
				return;
			}
			if (rc < 0) {
				FUZZ_ASSERT(rc == -EMSGSIZE);
				FUZZ_ASSERT(model_oversized(&m));
				/* Refused as the header completed, in this call;
				 * the error stays. */
				FUZZ_ASSERT(r.header_got == 4 && r.payload == NULL);
				FUZZ_ASSERT(m.pos + 4 > off + fed && m.pos + 4 <= off + chunk);
				FUZZ_ASSERT(pb_frame_feed(&r, s, n) == -EMSGSIZE);
				check_reader(&r);
				pb_frame_reader_free(&r);
				return;
			}
			FUZZ_ASSERT((size_t)rc <= chunk - fed);
			check_reader(&r);
			if (!r.ready) {
				/* Not stopped by a whole frame: took all of it. */
				FUZZ_ASSERT((size_t)rc == chunk - fed);
			}
			fed += (size_t)rc;
			if (r.ready) {
				/* A ready reader takes nothing more. */
				FUZZ_ASSERT(pb_frame_feed(&r, s + off + fed, chunk - fed) == 0);
				take(&r, &m);
			}
			/* Everything consumed is in whole frames or held. */
			FUZZ_ASSERT(m.pos + reader_holds(&r) == off + fed);
		}
		off += chunk;
	}
	/* The end: whatever is left of the stream is the frame in progress. */
	FUZZ_ASSERT(m.pos + reader_holds(&r) == n);
	FUZZ_ASSERT(!model_oversized(&m));
	pb_frame_reader_free(&r);
}

static size_t unread(int fd)
{
	int avail = -1;

	FUZZ_ASSERT(ioctl(fd, FIONREAD, &avail) == 0 && avail >= 0);
	return (size_t)avail;
}

/* Read what the descriptor has, frame by frame, until it would block.
 * Returns false once the reader refused a frame. */
static bool drain_fd(struct pb_frame_reader *r, struct model *m, int fd, size_t written, bool may_fail)
{
	for (;;) {
		size_t before = reader_holds(r);
		int rc = pb_frame_read_fd(r, fd);

		check_reader(r);
		/* The reader took exactly the bytes it holds or handed out. */
		FUZZ_ASSERT(m->pos + reader_holds(r) + unread(fd) == written);
		if (rc == 1) {
			take(r, m);
			continue;
		}
		if (rc == -ENOMEM && may_fail)
			return false;
		if (rc < 0) {
			FUZZ_ASSERT(rc == -EMSGSIZE);
			FUZZ_ASSERT(model_oversized(m));
			FUZZ_ASSERT(pb_frame_read_fd(r, fd) == -EMSGSIZE);
			return false;
		}
		FUZZ_ASSERT(rc == 0);
		if (reader_holds(r) == before)
			return true; /* EAGAIN */
	}
}

static void run_fd(const uint8_t *s, size_t n, uint32_t max_len, struct chunks ck, bool may_fail)
{
	struct pb_frame_reader r;
	struct model m = { s, n, 0, max_len };
	size_t off = 0;
	bool reading = true;
	int sv[2], rc;

	FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	FUZZ_ASSERT(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
	pb_frame_reader_init(&r, max_len);
	while (reading && off < n) {
		size_t chunk = next_chunk(&ck, n - off), sent = 0;

		while (reading && sent < chunk) {
			ssize_t w = send(sv[1], s + off + sent, chunk - sent, MSG_DONTWAIT | MSG_NOSIGNAL);

			size_t pending;

			if (w < 0) {
				FUZZ_ASSERT(errno == EAGAIN || errno == EWOULDBLOCK);
				w = 0;
			}
			sent += (size_t)w;
			pending = unread(sv[0]);
			reading = drain_fd(&r, &m, sv[0], off + sent, may_fail);
			/* Full: the reader must make room (it always can, as it
			 * takes every frame it completes), or we would spin. */
			FUZZ_ASSERT(w > 0 || !reading || pending == 0 || unread(sv[0]) < pending);
		}
		off += sent;
	}
	FUZZ_ASSERT(shutdown(sv[1], SHUT_WR) == 0);
	if (reading) {
		/* No more bytes come: read the rest, blocking is safe now. */
		while ((rc = pb_frame_read_blocking(&r, sv[0])) == 1)
			take(&r, &m);
		check_reader(&r);
		if (!(rc == -ENOMEM && may_fail)) {
			if (model_oversized(&m))
				FUZZ_ASSERT(rc == -EMSGSIZE);
			else if (m.pos == n)
				FUZZ_ASSERT(rc == -ENODATA);
			else
				FUZZ_ASSERT(rc == -EPIPE && m.pos + reader_holds(&r) == n);
		}
	}
	pb_frame_reader_free(&r);
	close(sv[0]);
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int free_fd = fuzz_lowest_free_fd();
	struct chunks ck = { NULL, 0, 0, 1 };
	const size_t nbounds = sizeof(bounds) / sizeof(bounds[0]);
	uint8_t *stream = NULL;
	unsigned fail_at;
	size_t grow;
	uint32_t max_len;
	size_t k;

	if (size < 2)
		return 0;
	max_len = bounds[data[0] % nbounds];
	fail_at = data[0] / nbounds;
	k = data[1] % 16;
	grow = data[1] >> 4 == 15 ? 256 * 1024 : data[1] >> 4 == 14 ? 96 * 1024
	                                                            : 0;
	if (k > size - 2)
		k = size - 2;
	ck.size = data + 2;
	ck.n = k;
	data += 2 + k;
	size -= 2 + k;
	if (grow > 0 && size > 0) {
		size_t n = (grow + size - 1) / size * size;

		stream = malloc(n);
		FUZZ_ASSERT(stream != NULL);
		for (k = 0; k < n; k += size)
			memcpy(stream + k, data, size);
		/* A repeated stream comes in bigger pieces. */
		ck.scale = n / size;
		data = stream;
		size = n;
	}
	run_feed(data, size, max_len, ck, false);
	run_fd(data, size, max_len, ck, false);
	if (fail_at > 0) {
		/* Odd: every allocation from there on fails. */
		fuzz_nomem_arm(fail_at, fail_at & 1);
		run_feed(data, size, max_len, ck, true);
		fuzz_nomem_disarm();
		fuzz_nomem_arm(fail_at, fail_at & 1);
		run_fd(data, size, max_len, ck, true);
		fuzz_nomem_disarm();
	}
	free(stream);
	FUZZ_ASSERT(fuzz_lowest_free_fd() == free_fd);
	return 0;
}
