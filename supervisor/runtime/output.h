/* output.h - output.c: a worker's stdout, stderr, log records and plugbox's notes about it, metered and sanitised on their way to the host. */
#ifndef PLUGBOX_RUNTIME_OUTPUT_H
#define PLUGBOX_RUNTIME_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/process.h"

/* A logger name is shown up to this many bytes (sanitised). */
#define PB_LOG_LOGGER_SHOWN 1024
/* A message or exc_text, sanitised: the worker's 16 KiB, escapes and all. */
#define PB_LOG_TEXT_SHOWN (64 * 1024 + 1)

/* One line to the host: metered (false when the meter refused it), then
 * sanitised. */
bool pb_output_line(pb_supervisor *s, struct process *w, pb_stream stream, const char *text, size_t len);
__attribute__((format(printf, 4, 5))) void pb_output_emit(pb_supervisor *s, struct process *w, pb_stream stream,
                                                          const char *fmt, ...);
/* A note about the worker's doing (a denied host call...), metered with
 * its other notes: a worker that provokes them in a loop floods nobody. */
__attribute__((format(printf, 3, 4))) void pb_output_note(pb_supervisor *s, struct process *w, const char *fmt, ...);
/* Write a note about the plugin to the output function (sanitised). */
__attribute__((format(printf, 3, 4))) void pb_note(pb_supervisor *s, const char *plugin, const char *fmt, ...);
/* A traceback as indented note lines. */
void pb_output_traceback(pb_supervisor *s, struct process *w, const char *tb);
/* A record of the plugin's `logging`, rate-limited (a flood ends the
 * worker): to the host's log function whole, or as lines. */
void pb_output_log(pb_supervisor *s, struct process *w, const Plugbox__Log *log);
/* Read what the worker wrote on *fd (its stdout or stderr), at most a
 * pipe's worth; at EOF the last partial line goes out and *fd is closed. */
void pb_output_read(pb_supervisor *s, struct process *w, int *fd, struct line_buffer *b, pb_stream stream);
/* The "dropped N lines" notes that waited for their second, once it came
 * (the plugin's timer: pb_runtime_tick). */
void pb_output_drops_due(pb_supervisor *s, struct process *w, double now);
/* The worker ended: every drop not yet said, now. */
void pb_output_final(pb_supervisor *s, struct process *w);

#endif
