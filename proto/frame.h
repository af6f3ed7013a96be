/* frame.h - the one framing layer of plugbox.
 *
 * A frame is a 4-byte little-endian length followed by that many bytes of a
 * serialized plugbox.Envelope. The supervisor, the worker and the tests all
 * use this module; nobody else reads a length prefix. Everything a reader
 * sees may come from a hostile worker: the length is checked against the
 * reader's bound before any allocation, the payload buffer grows with the
 * bytes that actually arrive (a peer that announces 16 MiB and sends nothing
 * costs PB_FRAME_FIRST_ALLOC), and a stream that ends mid-frame is an error,
 * not a hang.
 */
#ifndef PLUGBOX_FRAME_H
#define PLUGBOX_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/plugbox.pb-c.h"

/* Largest frame either side accepts by default (16 MiB). */
#define PB_FRAME_MAX_DEFAULT (16u * 1024u * 1024u)
/* Deepest Value nesting accepted (a list in a list ... counts one per level). */
#define PB_VALUE_MAX_DEPTH 64
/* Most protobuf sub-messages one envelope may hold; bounds how much memory an
 * unpacked envelope can take compared with its wire size. */
#define PB_ENVELOPE_MAX_MESSAGES (1u << 20)

/* The payload buffer starts at min(length, this) and doubles (up to the
 * length) as bytes fill it. */
#define PB_FRAME_FIRST_ALLOC (64u * 1024u)

/* Incremental reader: feed it bytes as they arrive (from a non-blocking fd, or
 * from memory in tests and fuzzers) and take whole frames out. */
struct pb_frame_reader {
	uint8_t header[4];
	size_t header_got;
	uint8_t *payload; /* allocated once the length is known and bounded, grown as bytes come */
	uint32_t payload_len;
	uint32_t payload_got;
	uint32_t payload_cap; /* bytes allocated at payload: payload_got <= cap <= max(len, 1) */
	uint32_t max_len;
	int ready; /* a whole frame is waiting in payload */
};

void pb_frame_reader_init(struct pb_frame_reader *r, uint32_t max_len);
void pb_frame_reader_free(struct pb_frame_reader *r);

/* Consume up to n bytes from data. Stops early once a whole frame is ready
 * (the caller takes it, then feeds the rest). Returns the number of bytes
 * consumed (>= 0) or -EMSGSIZE when a header announces more than max_len,
 * -ENOMEM when the payload buffer cannot be allocated or grown. After an
 * error the reader is unusable until pb_frame_reader_free + init. */
ssize_t pb_frame_feed(struct pb_frame_reader *r, const uint8_t *data, size_t n);

/* Read once from fd into the reader (at most what one frame still needs, so
 * bytes of the next frame stay in the kernel). Returns 1 when a frame is ready,
 * 0 when more bytes are needed (EAGAIN/EINTR or a partial read), -EPIPE when
 * the peer closed mid-frame, -ENODATA when the peer closed cleanly between
 * frames, -EMSGSIZE / -ENOMEM as for pb_frame_feed, or another negative errno
 * from read(2). */
int pb_frame_read_fd(struct pb_frame_reader *r, int fd);

/* Block (poll + read) until a whole frame is ready. Same returns as
 * pb_frame_read_fd, never 0. For the worker, whose only input is the channel. */
int pb_frame_read_blocking(struct pb_frame_reader *r, int fd);

/* Hand the ready payload to the caller (who frees it with free()) and reset the
 * reader for the next frame. Returns -EAGAIN if no frame is ready. */
int pb_frame_take(struct pb_frame_reader *r, uint8_t **payload, uint32_t *len);

/* Buffered reader, for a descriptor this reader alone consumes: one read(2)
 * takes as much as the kernel has (up to the buffer's room), and every whole
 * frame in the buffer is then handed out without copying or another system
 * call. The buffer starts at `cap` bytes; a frame larger than that grows it as
 * its bytes arrive (doubling, never past the frame, so a peer that announces
 * a large frame holds at most twice what it sent), and it shrinks back once
 * drained. Lengths are bounded by max_len before anything grows. */
struct pb_frame_in {
	uint8_t *buf;
	size_t cap, start, end; /* unconsumed bytes are buf[start, end) */
	size_t base_cap;
	uint32_t max_len;
};

void pb_frame_in_init(struct pb_frame_in *in, uint32_t max_len, size_t cap);
void pb_frame_in_free(struct pb_frame_in *in);

/* One read(2) into the buffer. Returns the bytes read (> 0), 0 when none were
 * there (EAGAIN, EINTR), -ENODATA when the peer closed with nothing buffered,
 * -EPIPE when it closed inside a frame, -EMSGSIZE when the buffered header
 * announces more than max_len, -ENOMEM, or another negative errno. */
ssize_t pb_frame_in_fill(struct pb_frame_in *in, int fd);

/* The next whole frame in the buffer: 1 with *payload pointing into the
 * buffer (valid until the next pb_frame_in_fill or _free), 0 when the buffer
 * holds none, -EMSGSIZE when its header announces more than max_len (the
 * reader then stays in error). */
int pb_frame_in_next(struct pb_frame_in *in, const uint8_t **payload, uint32_t *len);

/* The length the next frame's header announces (needs 4 bytes pending). */
static inline uint32_t pb_frame_in_announced(const struct pb_frame_in *in)
{
	const uint8_t *h = in->buf + in->start;
	return (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
}

/* Bytes buffered but not handed out (a partial frame, or frames not yet
 * taken). */
static inline size_t pb_frame_in_pending(const struct pb_frame_in *in)
{
	return in->end - in->start;
}

/* Frames waiting to be written, as one contiguous buffer of whole frames:
 * appended to by whoever sends, written out with as few write(2) calls as
 * the pipe allows. */
struct pb_frame_out {
	uint8_t *buf;
	size_t cap, start, end; /* bytes still to write are buf[start, end) */
};

/* Append env as one frame. Returns 0 or -EMSGSIZE (packed larger than
 * max_len) / -ENOMEM; on failure nothing is appended. */
int pb_frame_out_append(struct pb_frame_out *out, const Plugbox__Envelope *env, uint32_t max_len);
/* Append bytes that are already whole frames. */
int pb_frame_out_append_raw(struct pb_frame_out *out, const uint8_t *data, size_t len);
/* Write what the descriptor takes now with one write(2) (retrying EINTR).
 * Returns the bytes written (>= 0; 0 on EAGAIN) or a negative errno. */
ssize_t pb_frame_out_write(struct pb_frame_out *out, int fd);
/* n bytes of it were written by the caller's own means. */
void pb_frame_out_consumed(struct pb_frame_out *out, size_t n);
void pb_frame_out_free(struct pb_frame_out *out);
static inline size_t pb_frame_out_pending(const struct pb_frame_out *out)
{
	return out->end - out->start;
}

/* Write a 4-byte header and the payload, retrying short writes and EINTR, and
 * waiting with poll() on EAGAIN. Returns 0 or a negative errno (-EPIPE when the
 * peer is gone, -EMSGSIZE when len > UINT32_MAX). */
int pb_frame_write(int fd, const uint8_t *payload, size_t len);

/* Serialize env and write it as one frame. Returns 0 or a negative errno
 * (-EMSGSIZE when the packed envelope exceeds max_len). */
int pb_envelope_send(int fd, const Plugbox__Envelope *env, uint32_t max_len);

/* An envelope's serialized size, and its bytes written to out (which has
 * room for that size; returns the bytes written). The same bytes as
 * protobuf-c's plugbox__envelope__pack, written by hand for a Call or a
 * Result body (proto/pack.c), by protobuf-c for the others. */
size_t pb_envelope_packed_size(const Plugbox__Envelope *env);
size_t pb_envelope_pack_to(const Plugbox__Envelope *env, uint8_t *out);

/* An Error too large for its frame, made to fit: its message cut to the
 * first PB_ERROR_CUT bytes, between whole characters, and marked; its
 * traceback (which repeats the message) left out; its type (a plugin's
 * class may have a name of any length) cut to PB_ERROR_TYPE_CUT bytes the
 * same way. The new message and type are written to cut, which
 * er->message and er->type then point into. A plugin's huge exception
 * still answers its call, in the worker and in the daemon (which adds
 * fields to what the worker sent). */
#define PB_ERROR_CUT 4096
#define PB_ERROR_TYPE_CUT 1024
#define PB_ERROR_CUT_BUF (PB_ERROR_CUT + 128 + PB_ERROR_TYPE_CUT + 1)
void pb_error_cut(Plugbox__Error *er, char cut[PB_ERROR_CUT_BUF]);

/* Serialize env as a whole frame (header and payload) in one malloc'd
 * buffer, for writers that queue frames. Returns 0 or -EMSGSIZE / -ENOMEM. */
int pb_envelope_pack(const Plugbox__Envelope *env, uint32_t max_len, uint8_t **frame, size_t *frame_len);

/* Check an untrusted serialized Envelope without unpacking it: wire format
 * well formed, Value nesting at most PB_VALUE_MAX_DEPTH, at most
 * PB_ENVELOPE_MAX_MESSAGES sub-messages, no recursion deeper than that bound.
 * protobuf-c's own unpacker recurses once per nesting level with no limit, so
 * this must run first. Returns 0 or -EBADMSG / -ELOOP (too deep) / -E2BIG
 * (too many messages), with a one-line reason in why (if non-NULL). */
int pb_envelope_check(const uint8_t *buf, size_t len, char *why, size_t why_len);

/* pb_envelope_check, then unpack, then validate the semantic rules protobuf-c
 * does not (strings are valid UTF-8, the body is set, every Value has a kind).
 * On success *out must be freed with pb_envelope_free. */
int pb_envelope_decode(const uint8_t *buf, size_t len, Plugbox__Envelope **out,
                       char *why, size_t why_len);

/* For peers that may speak a later version of the schema (clients of
 * `plugbox serve`, and the daemon's answers to them), never for workers:
 * unknown fields of wire types 0, 1, 2 and 5 are skipped (each counts as
 * one of PB_ENVELOPE_MAX_MESSAGES; protobuf-c keeps a copy of it), and an
 * envelope may come without a body this schema names (body_case NOT_SET;
 * its unknown fields are in env->base.unknown_fields). Everything else is
 * as strict as pb_envelope_decode. */
#define PB_DECODE_LENIENT 1u
/* Leave out the fast path (tests and fuzzers compare the two). */
#define PB_DECODE_GENERAL 2u
/* The fast path (proto/envelope_fast.c): a Call with scalar arguments or
 * a Result with a scalar value, in the shape our writers give them, read in
 * one pass. 1 with *out set (free it with pb_envelope_free), or 0 when buf
 * is not such an envelope; never an error: a strict subset of what
 * pb_envelope_decode takes, decoded to an equal envelope. */
int pb_envelope_decode_small(const uint8_t *buf, size_t len, Plugbox__Envelope **out);
/* pb_envelope_free's fast path: frees a decoded Call or Result whose
 * Values are all scalars (block by block, as protobuf-c would) and returns
 * true, or leaves anything else alone and returns false. */
bool pb_envelope_free_small(Plugbox__Envelope *env);
int pb_envelope_check_opts(const uint8_t *buf, size_t len, unsigned flags, char *why, size_t why_len);
int pb_envelope_decode_opts(const uint8_t *buf, size_t len, unsigned flags, Plugbox__Envelope **out,
                            char *why, size_t why_len);
/* The id of an envelope that may not decode: its first top-level field 1
 * read as a varint, found by skipping the fields before it; 0 when there is
 * none or the bytes before it are malformed. Lets the daemon answer a bad
 * message under its own id. */
uint64_t pb_envelope_peek_id(const uint8_t *buf, size_t len);
void pb_envelope_free(Plugbox__Envelope *env);

#endif
