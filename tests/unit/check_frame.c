/* check_frame.c - unit tests for the framing layer (supervisor/frame.c):
 * round trips through pipes, every split point, zero-length frames, lengths
 * over the bound refused before any allocation, a payload buffer that grows
 * with the bytes received rather than the length announced, truncation and
 * clean EOF; the buffered reader and writer of the call channel (many frames
 * per read and per write, a frame larger than the buffer, bounds, EOF).
 * The envelope decoder behind it is tested in check_envelope.c.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/frame.h"
#include "proto/value.h"


static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);
	size_t i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed);
	return p;
}


/* --- framing -------------------------------------------------------------- */

START_TEST(test_pipe_roundtrip)
{
	static const size_t sizes[] = { 5, 0, 1024, 1 };
	struct pb_frame_reader r;
	int fds[2];
	size_t i;

	ck_assert_int_eq(pipe(fds), 0);
	for (i = 0; i < 4; i++) {
		uint8_t *p = pattern(sizes[i], (unsigned)i);

		ck_assert_int_eq(pb_frame_write(fds[1], p, sizes[i]), 0);
		free(p);
	}
	pb_frame_reader_init(&r, PB_FRAME_MAX_DEFAULT);
	for (i = 0; i < 4; i++) {
		uint8_t *want = pattern(sizes[i], (unsigned)i), *got;
		uint32_t len;

		ck_assert_int_eq(pb_frame_read_blocking(&r, fds[0]), 1);
		ck_assert_int_eq(pb_frame_take(&r, &got, &len), 0);
		ck_assert_uint_eq(len, sizes[i]);
		ck_assert_ptr_nonnull(got);
		ck_assert_mem_eq(got, want, len);
		free(got);
		free(want);
	}
	ck_assert_int_eq(pb_frame_take(&r, &(uint8_t *){ NULL }, &(uint32_t){ 0 }), -EAGAIN);
	close(fds[1]);
	ck_assert_int_eq(pb_frame_read_blocking(&r, fds[0]), -ENODATA);
	pb_frame_reader_free(&r);
	close(fds[0]);
}
END_TEST

/* A frame much larger than the pipe buffer, written on a non-blocking pipe
 * (EAGAIN + poll on the writer) and read on a non-blocking pipe (poll in
 * pb_frame_read_blocking) by a child process. */
START_TEST(test_pipe_large_nonblocking)
{
	const size_t n = 3u << 20;
	uint8_t *p = pattern(n, 7);
	int fds[2], status;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct pb_frame_reader r;
		uint8_t *got;
		uint32_t len;
		int ok;

		close(fds[1]);
		pb_frame_reader_init(&r, PB_FRAME_MAX_DEFAULT);
		ok = pb_frame_read_blocking(&r, fds[0]) == 1 &&
		     pb_frame_take(&r, &got, &len) == 0 && len == n &&
		     memcmp(got, p, n) == 0;
		_exit(ok ? 0 : 1);
	}
	close(fds[0]);
	ck_assert_int_eq(pb_frame_write(fds[1], p, n), 0);
	close(fds[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	free(p);
}
END_TEST

START_TEST(test_read_fd_leaves_next_frame)
{
	struct pb_frame_reader r;
	int fds[2], avail = -1, rc;
	uint8_t *a = pattern(100, 1), *b = pattern(33, 2), *got;
	uint32_t len;

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(pb_frame_write(fds[1], a, 100), 0);
	ck_assert_int_eq(pb_frame_write(fds[1], b, 33), 0);
	pb_frame_reader_init(&r, 1000);
	while ((rc = pb_frame_read_fd(&r, fds[0])) == 0)
		;
	ck_assert_int_eq(rc, 1);
	ck_assert_int_eq(ioctl(fds[0], FIONREAD, &avail), 0);
	ck_assert_int_eq(avail, 4 + 33);
	/* A ready frame is not overwritten by more reads. */
	ck_assert_int_eq(pb_frame_read_fd(&r, fds[0]), 1);
	ck_assert_int_eq(pb_frame_take(&r, &got, &len), 0);
	ck_assert_uint_eq(len, 100);
	ck_assert_mem_eq(got, a, 100);
	free(got);
	while ((rc = pb_frame_read_fd(&r, fds[0])) == 0)
		;
	ck_assert_int_eq(rc, 1);
	ck_assert_int_eq(pb_frame_take(&r, &got, &len), 0);
	ck_assert_uint_eq(len, 33);
	ck_assert_mem_eq(got, b, 33);
	free(got);
	/* Non-blocking and empty: "need more", not an error. */
	ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(pb_frame_read_fd(&r, fds[0]), 0);
	pb_frame_reader_free(&r);
	close(fds[0]);
	close(fds[1]);
	free(a);
	free(b);
}
END_TEST

static size_t make_frame(uint8_t *out, const uint8_t *payload, uint32_t len)
{
	out[0] = (uint8_t)len;
	out[1] = (uint8_t)(len >> 8);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 24);
	memcpy(out + 4, payload, len);
	return 4 + (size_t)len;
}

START_TEST(test_feed_every_split)
{
	uint8_t *payload = pattern(37, 3), frame[64];
	size_t total = make_frame(frame, payload, 37), k, i;

	for (k = 0; k <= total; k++) {
		struct pb_frame_reader r;
		uint8_t *got;
		uint32_t len;

		pb_frame_reader_init(&r, 37);
		ck_assert_int_eq(pb_frame_feed(&r, frame, k), (ssize_t)k);
		ck_assert_int_eq(r.ready, k == total);
		ck_assert_int_eq(pb_frame_feed(&r, frame + k, total - k), (ssize_t)(total - k));
		ck_assert_int_eq(pb_frame_take(&r, &got, &len), 0);
		ck_assert_uint_eq(len, 37);
		ck_assert_mem_eq(got, payload, 37);
		free(got);
		pb_frame_reader_free(&r);
	}
	/* And one byte at a time. */
	{
		struct pb_frame_reader r;
		uint8_t *got;
		uint32_t len;

		pb_frame_reader_init(&r, 37);
		for (i = 0; i < total; i++)
			ck_assert_int_eq(pb_frame_feed(&r, frame + i, 1), 1);
		ck_assert_int_eq(pb_frame_take(&r, &got, &len), 0);
		ck_assert_mem_eq(got, payload, 37);
		free(got);
		pb_frame_reader_free(&r);
	}
	free(payload);
}
END_TEST

START_TEST(test_feed_two_frames)
{
	uint8_t *a = pattern(10, 4), *b = pattern(20, 5), buf[64], *got;
	size_t na = make_frame(buf, a, 10);
	size_t nb = make_frame(buf + na, b, 20);
	struct pb_frame_reader r;
	uint32_t len;

	pb_frame_reader_init(&r, 100);
	/* Stops at the end of the first frame. */
	ck_assert_int_eq(pb_frame_feed(&r, buf, na + nb), (ssize_t)na);
	ck_assert_int_eq(pb_frame_feed(&r, buf + na, nb), 0);
	ck_assert_int_eq(pb_frame_take(&r, &got, &len), 0);
	ck_assert_uint_eq(len, 10);
	ck_assert_mem_eq(got, a, 10);
	free(got);
	ck_assert_int_eq(pb_frame_feed(&r, buf + na, nb), (ssize_t)nb);
	ck_assert_int_eq(pb_frame_take(&r, &got, &len), 0);
	ck_assert_uint_eq(len, 20);
	ck_assert_mem_eq(got, b, 20);
	free(got);
	pb_frame_reader_free(&r);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_zero_length_frame)
{
	static const uint8_t buf[] = { 0, 0, 0, 0, 0, 0, 0, 0 };
	struct pb_frame_reader r;
	uint8_t *got;
	uint32_t len = 99;

	pb_frame_reader_init(&r, 0);
	ck_assert_int_eq(pb_frame_feed(&r, buf, sizeof(buf)), 4);
	ck_assert_int_eq(pb_frame_take(&r, &got, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_ptr_nonnull(got);
	free(got);
	ck_assert_int_eq(pb_frame_feed(&r, buf + 4, 4), 4);
	ck_assert_int_eq(pb_frame_take(&r, &got, &len), 0);
	free(got);
	pb_frame_reader_free(&r);
}
END_TEST

START_TEST(test_oversized_header)
{
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 1, 2, 3 };
	static const uint8_t eleven[] = { 11, 0, 0, 0 };
	struct pb_frame_reader r;
	int fds[2];

	pb_frame_reader_init(&r, PB_FRAME_MAX_DEFAULT);
	ck_assert_int_eq(pb_frame_feed(&r, huge, sizeof(huge)), -EMSGSIZE);
	ck_assert_ptr_null(r.payload);
	/* Stays failed. */
	ck_assert_int_eq(pb_frame_feed(&r, huge + 4, 3), -EMSGSIZE);
	ck_assert_ptr_null(r.payload);
	pb_frame_reader_free(&r);

	pb_frame_reader_init(&r, 10);
	ck_assert_int_eq(pb_frame_feed(&r, eleven, 4), -EMSGSIZE);
	ck_assert_ptr_null(r.payload);
	pb_frame_reader_free(&r);

	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], huge, sizeof(huge)), (ssize_t)sizeof(huge));
	pb_frame_reader_init(&r, PB_FRAME_MAX_DEFAULT);
	ck_assert_int_eq(pb_frame_read_blocking(&r, fds[0]), -EMSGSIZE);
	ck_assert_ptr_null(r.payload);
	ck_assert_int_eq(pb_frame_read_fd(&r, fds[0]), -EMSGSIZE);
	pb_frame_reader_free(&r);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* A peer that announces the largest frame and sends a little of it must not
 * make us allocate the whole frame: the buffer follows the bytes. The sizes
 * are measured with malloc_usable_size, so they hold whatever the reader
 * says about itself; SLACK is malloc's rounding (a page for mmap'd blocks). */
#define SLACK 4096
START_TEST(test_payload_grows_with_bytes)
{
	const uint32_t big = PB_FRAME_MAX_DEFAULT;
	const uint8_t header[4] = { (uint8_t)big, (uint8_t)(big >> 8), (uint8_t)(big >> 16),
		                    (uint8_t)(big >> 24) };
	uint8_t *p = pattern(big, 9), *got;
	struct pb_frame_reader r;
	uint32_t len, off;
	int fds[2], rc;

	pb_frame_reader_init(&r, PB_FRAME_MAX_DEFAULT);
	ck_assert_int_eq(pb_frame_feed(&r, header, 4), 4);
	ck_assert_ptr_nonnull(r.payload);
	ck_assert_uint_le(malloc_usable_size(r.payload), PB_FRAME_FIRST_ALLOC + SLACK);
	/* 100 KiB in: one doubling, to 128 KiB. */
	ck_assert_int_eq(pb_frame_feed(&r, p, 100 * 1024), 100 * 1024);
	ck_assert_uint_ge(malloc_usable_size(r.payload), 100 * 1024);
	ck_assert_uint_le(malloc_usable_size(r.payload), 2 * PB_FRAME_FIRST_ALLOC + SLACK);
	ck_assert_uint_eq(r.payload_cap, 2 * PB_FRAME_FIRST_ALLOC);
	/* The rest in uneven pieces: the frame is whole and intact. */
	for (off = 100 * 1024; off < big;) {
		uint32_t n = big - off < 777777 ? big - off : 777777;

		ck_assert_int_eq(r.ready, 0);
		ck_assert_int_eq(pb_frame_feed(&r, p + off, n), (ssize_t)n);
		ck_assert_uint_le(r.payload_cap, big);
		ck_assert_uint_le(r.payload_cap, 2 * r.payload_got);
		off += n;
	}
	ck_assert_int_eq(r.ready, 1);
	ck_assert_int_eq(pb_frame_take(&r, &got, &len), 0);
	ck_assert_uint_eq(len, big);
	ck_assert_mem_eq(got, p, big);
	free(got);
	pb_frame_reader_free(&r);

	/* The same through a descriptor: header and 10 bytes, then silence. */
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(write(fds[1], header, 4), 4);
	ck_assert_int_eq(write(fds[1], p, 10), 10);
	pb_frame_reader_init(&r, PB_FRAME_MAX_DEFAULT);
	while ((rc = pb_frame_read_fd(&r, fds[0])) == 0 && r.payload_got < 10)
		;
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(r.payload_got, 10);
	ck_assert_int_eq(pb_frame_read_fd(&r, fds[0]), 0);
	ck_assert_ptr_nonnull(r.payload);
	ck_assert_uint_le(malloc_usable_size(r.payload), PB_FRAME_FIRST_ALLOC + SLACK);
	pb_frame_reader_free(&r);
	close(fds[0]);
	close(fds[1]);

	/* A small frame gets a buffer of its own size. */
	{
		const uint8_t small[4] = { 10, 0, 0, 0 };

		pb_frame_reader_init(&r, PB_FRAME_MAX_DEFAULT);
		ck_assert_int_eq(pb_frame_feed(&r, small, 4), 4);
		ck_assert_uint_eq(r.payload_cap, 10);
		ck_assert_uint_le(malloc_usable_size(r.payload), 64);
		pb_frame_reader_free(&r);
	}
	free(p);
}
END_TEST

START_TEST(test_truncated_stream)
{
	static const uint8_t partial[] = { 10, 0, 0, 0, 'a', 'b', 'c' };
	struct pb_frame_reader r;
	int fds[2];

	/* Length and part of the payload, then EOF. */
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], partial, sizeof(partial)), (ssize_t)sizeof(partial));
	close(fds[1]);
	pb_frame_reader_init(&r, 100);
	ck_assert_int_eq(pb_frame_read_blocking(&r, fds[0]), -EPIPE);
	pb_frame_reader_free(&r);
	close(fds[0]);

	/* Length only, then EOF. */
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], partial, 4), 4);
	close(fds[1]);
	pb_frame_reader_init(&r, 100);
	ck_assert_int_eq(pb_frame_read_fd(&r, fds[0]), 0);
	ck_assert_int_eq(pb_frame_read_fd(&r, fds[0]), -EPIPE);
	pb_frame_reader_free(&r);
	close(fds[0]);

	/* Half a header, then EOF. */
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], partial, 2), 2);
	close(fds[1]);
	pb_frame_reader_init(&r, 100);
	ck_assert_int_eq(pb_frame_read_blocking(&r, fds[0]), -EPIPE);
	pb_frame_reader_free(&r);
	close(fds[0]);
}
END_TEST

START_TEST(test_clean_eof)
{
	struct pb_frame_reader r;
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	close(fds[1]);
	pb_frame_reader_init(&r, 100);
	ck_assert_int_eq(pb_frame_read_fd(&r, fds[0]), -ENODATA);
	ck_assert_int_eq(pb_frame_read_blocking(&r, fds[0]), -ENODATA);
	pb_frame_reader_free(&r);
	close(fds[0]);
}
END_TEST

START_TEST(test_write_errors)
{
	uint8_t byte = 0;
	int fds[2];

	/* Callers ignore SIGPIPE; the writer just reports the closed peer. */
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pipe(fds), 0);
	close(fds[0]);
	ck_assert_int_eq(pb_frame_write(fds[1], &byte, 1), -EPIPE);
	ck_assert_int_eq(pb_frame_write(fds[1], NULL, 0), -EPIPE);
	close(fds[1]);
	ck_assert_int_eq(pb_frame_write(-1, &byte, 1), -EBADF);
#if SIZE_MAX > UINT32_MAX
	/* Refused before the payload is looked at. */
	ck_assert_int_eq(pb_frame_write(1, NULL, (size_t)UINT32_MAX + 1), -EMSGSIZE);
#endif
}
END_TEST

/* --- buffered reading and writing ------------------------------------------ */

static void set_nonblock(int fd)
{
	ck_assert_int_ge(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

START_TEST(test_in_many_frames_one_read)
{
	struct pb_frame_in in;
	const uint8_t *got;
	uint32_t len;
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	set_nonblock(fds[0]);
	for (unsigned i = 0; i < 100; i++) {
		uint8_t *p = pattern(i, i);
		ck_assert_int_eq(pb_frame_write(fds[1], p, i), 0);
		free(p);
	}
	pb_frame_in_init(&in, 1000, 16 * 1024);
	/* 100 frames of 0..99 bytes: 5350 bytes, all in one read */
	ck_assert_int_eq(pb_frame_in_fill(&in, fds[0]), 100 * 4 + 99 * 100 / 2);
	for (unsigned i = 0; i < 100; i++) {
		uint8_t *want = pattern(i, i);
		ck_assert_int_eq(pb_frame_in_next(&in, &got, &len), 1);
		ck_assert_uint_eq(len, i);
		ck_assert(i == 0 || memcmp(got, want, i) == 0);
		free(want);
	}
	ck_assert_int_eq(pb_frame_in_next(&in, &got, &len), 0);
	ck_assert_uint_eq(pb_frame_in_pending(&in), 0);
	ck_assert_int_eq(pb_frame_in_fill(&in, fds[0]), 0); /* EAGAIN */
	close(fds[1]);
	ck_assert_int_eq(pb_frame_in_fill(&in, fds[0]), -ENODATA);
	pb_frame_in_free(&in);
	close(fds[0]);
}
END_TEST

START_TEST(test_in_split_frames)
{
	uint8_t *p = pattern(300, 7);
	uint8_t stream[2 * 304];
	struct pb_frame_in in;
	const uint8_t *got;
	uint32_t len;
	int fds[2];

	/* two frames, arriving in pieces cut at every 37th byte */
	for (int k = 0; k < 2; k++) {
		stream[k * 304] = 300 & 0xff;
		stream[k * 304 + 1] = 300 >> 8;
		stream[k * 304 + 2] = stream[k * 304 + 3] = 0;
		memcpy(stream + k * 304 + 4, p, 300);
	}
	ck_assert_int_eq(pipe(fds), 0);
	set_nonblock(fds[0]);
	pb_frame_in_init(&in, 1000, 64);
	unsigned frames = 0;
	for (size_t off = 0; off < sizeof(stream); off += 37) {
		size_t n = sizeof(stream) - off < 37 ? sizeof(stream) - off : 37;
		ck_assert_int_eq(write(fds[1], stream + off, n), (ssize_t)n);
		while (pb_frame_in_fill(&in, fds[0]) > 0)
			;
		/* never more than twice what came, and no more than a frame needs */
		ck_assert_uint_le(in.cap, 304);
		while (pb_frame_in_next(&in, &got, &len) == 1) {
			ck_assert_uint_eq(len, 300);
			ck_assert(memcmp(got, p, 300) == 0);
			frames++;
		}
	}
	ck_assert_uint_eq(frames, 2);
	/* drained: the buffer is back to its first size */
	ck_assert_int_eq(pb_frame_in_fill(&in, fds[0]), 0);
	ck_assert_uint_eq(in.cap, 64);
	close(fds[1]);
	ck_assert_int_eq(pb_frame_in_fill(&in, fds[0]), -ENODATA);
	pb_frame_in_free(&in);
	close(fds[0]);
	free(p);
}
END_TEST

START_TEST(test_in_grows_with_bytes)
{
	uint8_t header[4] = { 0, 0, 0x10, 0 }; /* announces 1 MiB */
	uint8_t chunk[1000];
	struct pb_frame_in in;
	const uint8_t *got;
	uint32_t len;
	int fds[2];

	memset(chunk, 5, sizeof(chunk));
	ck_assert_int_eq(pipe(fds), 0);
	set_nonblock(fds[0]);
	pb_frame_in_init(&in, PB_FRAME_MAX_DEFAULT, 256);
	ck_assert_int_eq(write(fds[1], header, 4), 4);
	size_t sent = 4;
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(write(fds[1], chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
		sent += sizeof(chunk);
		while (pb_frame_in_fill(&in, fds[0]) > 0)
			;
		ck_assert_uint_le(in.cap, 2 * sent);
		ck_assert_int_eq(pb_frame_in_next(&in, &got, &len), 0);
	}
	ck_assert_uint_eq(pb_frame_in_pending(&in), sent);
	close(fds[1]);
	ck_assert_int_eq(pb_frame_in_fill(&in, fds[0]), -EPIPE); /* ended inside the frame */
	pb_frame_in_free(&in);
	close(fds[0]);
}
END_TEST

START_TEST(test_in_oversized)
{
	uint8_t frame[8] = { 11, 0, 0, 0, 1, 2, 3, 4 };
	struct pb_frame_in in;
	const uint8_t *got;
	uint32_t len;
	int fds[2];

	ck_assert_int_eq(pipe(fds), 0);
	set_nonblock(fds[0]);
	pb_frame_in_init(&in, 10, 64);
	ck_assert_int_eq(write(fds[1], frame, sizeof(frame)), (ssize_t)sizeof(frame));
	ck_assert_int_eq(pb_frame_in_fill(&in, fds[0]), 8);
	ck_assert_int_eq(pb_frame_in_next(&in, &got, &len), -EMSGSIZE);
	ck_assert_int_eq(pb_frame_in_fill(&in, fds[0]), -EMSGSIZE);
	ck_assert_uint_eq(in.cap, 64);
	pb_frame_in_free(&in);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(test_out_batches)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Log log = PLUGBOX__LOG__INIT;
	struct pb_frame_out out = { 0 };
	struct pb_frame_in in;
	const uint8_t *got;
	uint32_t len;
	int fds[2];
	char msg[32];

	env.body_case = PLUGBOX__ENVELOPE__BODY_LOG;
	env.log = &log;
	log.logger = (char *)"t";
	log.message = msg;
	for (int i = 0; i < 50; i++) {
		snprintf(msg, sizeof(msg), "record %d", i);
		log.level = i;
		ck_assert_int_eq(pb_frame_out_append(&out, &env, PB_FRAME_MAX_DEFAULT), 0);
	}
	ck_assert_int_eq(pb_frame_out_append(&out, &env, 5), -EMSGSIZE);
	ck_assert_int_eq(pipe(fds), 0);
	set_nonblock(fds[0]);
	/* all fifty in one write */
	size_t pending = pb_frame_out_pending(&out);
	ck_assert_int_eq(pb_frame_out_write(&out, fds[1]), (ssize_t)pending);
	ck_assert_uint_eq(pb_frame_out_pending(&out), 0);
	pb_frame_in_init(&in, PB_FRAME_MAX_DEFAULT, 16 * 1024);
	ck_assert_int_eq(pb_frame_in_fill(&in, fds[0]), (ssize_t)pending);
	for (int i = 0; i < 50; i++) {
		Plugbox__Envelope *e;
		char why[100];

		ck_assert_int_eq(pb_frame_in_next(&in, &got, &len), 1);
		ck_assert_int_eq(pb_envelope_decode(got, len, &e, why, sizeof(why)), 0);
		ck_assert_int_eq(e->log->level, i);
		pb_envelope_free(e);
	}
	ck_assert_int_eq(pb_frame_in_next(&in, &got, &len), 0);
	/* raw bytes, written in parts */
	ck_assert_int_eq(pb_frame_out_append_raw(&out, (const uint8_t *)"\3\0\0\0abc", 7), 0);
	pb_frame_out_consumed(&out, 2);
	ck_assert_uint_eq(pb_frame_out_pending(&out), 5);
	ck_assert_int_eq(pb_frame_out_write(&out, fds[1]), 5);
	ck_assert_int_eq(read(fds[0], msg, sizeof(msg)), 5);
	ck_assert(memcmp(msg, "\0\0abc", 5) == 0);
	close(fds[0]);
	ck_assert_int_eq(pb_frame_out_append_raw(&out, (const uint8_t *)"x", 1), 0);
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pb_frame_out_write(&out, fds[1]), -EPIPE);
	pb_frame_out_free(&out);
	pb_frame_in_free(&in);
	close(fds[1]);
}
END_TEST

static Suite *frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("framing");

	tcase_add_test(tc, test_pipe_roundtrip);
	tcase_add_test(tc, test_pipe_large_nonblocking);
	tcase_add_test(tc, test_read_fd_leaves_next_frame);
	tcase_add_test(tc, test_feed_every_split);
	tcase_add_test(tc, test_feed_two_frames);
	tcase_add_test(tc, test_zero_length_frame);
	tcase_add_test(tc, test_oversized_header);
	tcase_add_test(tc, test_payload_grows_with_bytes);
	tcase_add_test(tc, test_truncated_stream);
	tcase_add_test(tc, test_clean_eof);
	tcase_add_test(tc, test_write_errors);
	tcase_add_test(tc, test_in_many_frames_one_read);
	tcase_add_test(tc, test_in_split_frames);
	tcase_add_test(tc, test_in_grows_with_bytes);
	tcase_add_test(tc, test_in_oversized);
	tcase_add_test(tc, test_out_batches);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(frame_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* The number of failed tests, kept below 77, which the Automake test
	 * driver would read as "skipped". */
	return failed < 77 ? failed : 76;
}
