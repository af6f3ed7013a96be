/* sink.h - a writer that never blocks, for the supervisor's own stderr
 * (sink.c). Lines are queued in a bounded buffer and written as the
 * descriptor takes them; when the buffer is full, lines are dropped and
 * counted, and a "dropped N lines / N bytes" line says so once the
 * descriptor takes bytes again. A wedged log collector costs output,
 * never the event loop. */
#ifndef PLUGBOX_TOOLKIT_SINK_H
#define PLUGBOX_TOOLKIT_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The queue of the supervisor's stderr writer. */
#define PB_SINK_BYTES ((size_t)256 * 1024)

struct pb_sink {
	int target; /* the descriptor lines are for (2) */
	int fd;     /* what is written: target, or a non-blocking open of it */
	int how;    /* sink.c: write, send or poll-then-write */
	char *buf;
	size_t off, len, cap; /* bytes waiting: buf[off, off + len) */
	uint64_t dropped_lines, dropped_bytes;
};

/* Prepares a sink for `target` with a queue of `cap` bytes. The target's
 * own flags are never changed (it is usually shared with a shell). */
int pb_sink_open(struct pb_sink *k, int target, size_t cap);
void pb_sink_close(struct pb_sink *k);
/* Queues `line` and a newline, then writes what the descriptor takes. */
void pb_sink_line(struct pb_sink *k, const char *line);
/* Writes what the descriptor takes now; true while bytes still wait. */
bool pb_sink_flush(struct pb_sink *k);
/* The descriptor to watch for POLLOUT while bytes wait. */
int pb_sink_fd(const struct pb_sink *k);
/* For exits: waits until the queue is empty, or `seconds` pass without the
 * descriptor taking a byte. */
void pb_sink_drain(struct pb_sink *k, double seconds);

/* The process's one writer to its stderr (descriptor 2), a sink of
 * PB_SINK_BYTES opened when first used, shared by every supervisor and the
 * daemon's own messages so that their lines never interleave; safe from
 * any thread. */
void pb_stderr_line(const char *line);
/* Writes what stderr takes now; true while bytes still wait. */
bool pb_stderr_flush(void);
/* The descriptor to watch for POLLOUT while bytes wait (-1: none yet). */
int pb_stderr_fd(void);
/* pb_sink_drain for it. */
void pb_stderr_drain(double seconds);

#endif
