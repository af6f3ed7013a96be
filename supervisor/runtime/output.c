/* output.c - what a worker produces on its way to the host: its stdout and
 * stderr cut into lines, its log records, and plugbox's own notes about it.
 *
 * Every such line goes through pb_output_line(): metered per stream in lines
 * and bytes a second (toolkit/meter.c), then sanitised as one line
 * (toolkit/sanitize.c), then handed to the host's output function. What a
 * meter turns away is counted and said ("dropped N lines") at most once a
 * second per stream, and once more when the worker ends. The bytes come from
 * a plugin: each read is bounded (a pipe's worth a wake-up), each line is
 * cut at LINE_MAX_BYTES, and a flood is counted in bulk, not looked at line
 * by line.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/channel.h"
#include "runtime/inflight.h"
#include "runtime/output.h"
#include "runtime/process.h"
#include "runtime/runtime.h"
#include "runtime/stats.h"
#include "toolkit/clock.h"
#include "toolkit/meter.h"
#include "toolkit/sanitize.h"

/* A line to the host: with the call w runs now when the host wants that. */
static void to_host(pb_supervisor *s, const struct process *w, const char *plugin, pb_stream stream,
                    const char *line)
{
	if (s->call_output)
		s->call_output(s->call_output_data, plugin, w ? pb_inflight_running(w) : 0, stream, line);
	else
		s->output(s->output_data, plugin, stream, line);
}

static const char *const stream_names[] = {
	[PB_STREAM_STDOUT] = "stdout",
	[PB_STREAM_STDERR] = "stderr",
	[PB_STREAM_SUPERVISOR] = "notes",
	[PB_STREAM_LOG] = "log lines",
};

/* Says what a stream's meter turned away: at most once a second per
 * stream (the note itself is not metered), and at once when `now_anyway`
 * (the worker ended: nothing will come after). A note that must wait is
 * due on the plugin's timer, so it comes even if the plugin goes quiet. */
static void note_drops(pb_supervisor *s, struct process *w, pb_stream stream, bool now_anyway)
{
	struct pb_meter *m = &w->meters[stream];
	uint64_t lines, bytes;
	char line[256];
	double now = pb_now();

	if (!m->dropped_lines && !m->dropped_bytes)
		return;
	if (!now_anyway && now - w->drops_noted_at[stream] < 1.0) {
		double due = w->drops_noted_at[stream] + 1.0;
		if (w->drops_due == 0 || due < w->drops_due) {
			w->drops_due = due;
			pb_runtime_timer(s, w->plugin, due);
		}
		return;
	}
	if (!pb_meter_dropped(m, &lines, &bytes))
		return;
	pb_stats_dropped(w->plugin, lines);
	w->drops_noted_at[stream] = now;
	snprintf(line, sizeof(line), "dropped %llu lines / %llu bytes of %s (more than %d lines or %d bytes a second)",
	         (unsigned long long)lines, (unsigned long long)bytes, stream_names[stream],
	         PB_OUTPUT_LINES_PER_SECOND, PB_OUTPUT_BYTES_PER_SECOND);
	to_host(s, w, w->name, PB_STREAM_SUPERVISOR, line);
}

void pb_output_drops_due(pb_supervisor *s, struct process *w, double now)
{
	if (w->drops_due == 0 || now < w->drops_due)
		return;
	w->drops_due = 0;
	for (pb_stream st = PB_STREAM_STDOUT; st <= PB_STREAM_LOG; st++)
		note_drops(s, w, st, false);
}

/* Every line a worker's streams produce reaches the host through here:
 * metered per stream in lines and bytes a second, then sanitised
 * (toolkit/sanitize.c) as one line. False when the meter refused it. */
bool pb_output_line(pb_supervisor *s, struct process *w, pb_stream stream, const char *text, size_t len)
{
	char line[LINE_MAX_BYTES * 2];

	if (!pb_meter_take(&w->meters[stream], PB_OUTPUT_LINES_PER_SECOND, PB_OUTPUT_BYTES_PER_SECOND,
	                   pb_now(), len + 1)) {
		note_drops(s, w, stream, false);
		return false;
	}
	note_drops(s, w, stream, false);
	pb_sanitize(line, sizeof(line), text, len, 0);
	to_host(s, w, w->name, stream, line);
	return true;
}

static void vemit(pb_supervisor *s, struct process *w, pb_stream stream, const char *fmt, va_list ap)
{
	char line[1024];
	/* A note may quote a plugin: a cut keeps its characters whole. */
	size_t n = pb_utf8_vformat(line, sizeof(line), fmt, ap);
	pb_output_line(s, w, stream, line, n);
}

void pb_output_emit(pb_supervisor *s, struct process *w, pb_stream stream, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vemit(s, w, stream, fmt, ap);
	va_end(ap);
}

void pb_output_note(pb_supervisor *s, struct process *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vemit(s, w, PB_STREAM_SUPERVISOR, fmt, ap);
	va_end(ap);
}

void pb_note(pb_supervisor *s, const char *plugin, const char *fmt, ...)
{
	char line[1024], shown[sizeof(line) * 2];
	va_list ap;
	va_start(ap, fmt);
	pb_utf8_vformat(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* The reasons in it may quote what a worker said. */
	pb_sanitize(shown, sizeof(shown), line, strlen(line), 0);
	s->output(s->output_data, plugin, PB_STREAM_SUPERVISOR, shown);
}

static const char *level_name(int level)
{
	static const char *const names[] = { "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL" };
	return level >= 10 && level <= 50 && level % 10 == 0 ? names[level / 10 - 1] : "LEVEL";
}

/* A plugin logging in a loop must not flood the host's log: at most
 * PB_LOG_RECORDS_PER_SECOND records a second reach it, and it is told once
 * when the rest are dropped. The glue already keeps to that rate; a worker
 * sending ten times as many writes its channel itself, and is ended. */
static bool log_allowed(pb_supervisor *s, struct process *w)
{
	double now = pb_now();
	if (now - w->log_window >= 1.0) {
		if (w->log_count > PB_LOG_RECORDS_PER_SECOND) {
			pb_stats_dropped(w->plugin, w->log_count - PB_LOG_RECORDS_PER_SECOND);
			pb_output_emit(s, w, PB_STREAM_SUPERVISOR, "dropped %u log records (more than %d a second)",
			               w->log_count - PB_LOG_RECORDS_PER_SECOND, PB_LOG_RECORDS_PER_SECOND);
		}
		w->log_window = now;
		w->log_count = 0;
	}
	if (++w->log_count > PB_LOG_FLOOD_PER_SECOND) {
		pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' flooded its channel: more than "
		                                     "%d log records in a second",
		               w->name, PB_LOG_FLOOD_PER_SECOND);
		return false;
	}
	return w->log_count <= PB_LOG_RECORDS_PER_SECOND;
}

/* A record whole, to the host's log function: metered as its lines would
 * be, each field sanitised (the logger as one line) and bounded. The call
 * id is the worker's claim: passed on only for a call it runs. */
static void log_record(pb_supervisor *s, struct process *w, const Plugbox__Log *log)
{
	static char logger[PB_LOG_LOGGER_SHOWN], message[PB_LOG_TEXT_SHOWN], exc[PB_LOG_TEXT_SHOWN];
	size_t mlen = strlen(log->message), elen = strlen(log->exc_text);
	uint64_t call_id = 0;

	if (!pb_meter_take(&w->meters[PB_STREAM_LOG], PB_OUTPUT_LINES_PER_SECOND, PB_OUTPUT_BYTES_PER_SECOND,
	                   pb_now(), mlen + elen + 1)) {
		/* Counted as the lines it holds, as when records go as lines: the
		 * meter took one. */
		uint64_t lines = pb_count_lines(log->message, mlen) + (mlen && log->message[mlen - 1] != '\n') +
		                 pb_count_lines(log->exc_text, elen) + (elen && log->exc_text[elen - 1] != '\n');
		if (lines > 1)
			pb_meter_drop(&w->meters[PB_STREAM_LOG], lines - 1, 0);
		note_drops(s, w, PB_STREAM_LOG, false);
		return;
	}
	note_drops(s, w, PB_STREAM_LOG, false);
	for (size_t i = 0; i < w->depth; i++)
		if (log->call_id != 0 && w->stack[i]->id == log->call_id && !w->stack[i]->ghost)
			call_id = w->stack[i]->origin ? w->stack[i]->origin : log->call_id;
	pb_sanitize(logger, sizeof(logger), log->logger, strlen(log->logger), 0);
	pb_sanitize(message, sizeof(message), log->message, mlen, PB_SAN_MULTILINE);
	pb_sanitize(exc, sizeof(exc), log->exc_text, elen, PB_SAN_MULTILINE);
	s->log(s->log_data, w->name, call_id, log->level, logger, message, exc);
}

/* A record of the plugin's `logging`, one output line per line of text
 * (a logged exception has its traceback under it). Each line is metered
 * like any output; once one is refused, the rest of the record is counted
 * and dropped without being looked at again (a record of 16 MiB of
 * newlines costs one pass over its bytes). */
void pb_output_log(pb_supervisor *s, struct process *w, const Plugbox__Log *log)
{
	char line[LINE_MAX_BYTES];
	const char *p = log->message;
	bool first = true, exc_done = !*log->exc_text;

	if (!log_allowed(s, w))
		return;
	if (s->log) {
		log_record(s, w, log);
		return;
	}
	do {
		size_t n = strcspn(p, "\n"), len, keep;
		/* Cut between whole characters: a character cut in two would be
		 * shown as \xNN escapes. */
		if (first)
			len = pb_utf8_format(line, sizeof(line), "%s %.*s: ", level_name(log->level),
			                     (int)pb_utf8_cut(log->logger, strlen(log->logger), 128), log->logger);
		else
			len = pb_utf8_format(line, sizeof(line), "  ");
		keep = pb_utf8_cut(p, n, sizeof(line) - 1 - len);
		memcpy(line + len, p, keep);
		len += keep;
		p += n;
		if (*p == '\n')
			p++;
		if (!pb_output_line(s, w, PB_STREAM_LOG, line, len)) {
			size_t rest = strlen(p);
			if (rest)
				pb_meter_drop(&w->meters[PB_STREAM_LOG], pb_count_lines(p, rest) + (p[rest - 1] != '\n'), rest);
			return;
		}
		first = false;
		if (!*p && !exc_done) {
			/* the traceback under the message, as logging prints it */
			p = log->exc_text;
			exc_done = true;
		}
	} while (*p);
}

/* The traceback as indented lines under a report. */
void pb_output_traceback(pb_supervisor *s, struct process *w, const char *tb)
{
	char line[LINE_MAX_BYTES];
	const char *p = tb;

	while (p && *p) {
		size_t n = strcspn(p, "\n");
		if (n > 0) {
			size_t shown = pb_utf8_cut(p, n, sizeof(line) - 3);
			snprintf(line, sizeof(line), "  %.*s", (int)shown, p);
			if (!pb_output_line(s, w, PB_STREAM_SUPERVISOR, line, shown + 2))
				return;
		}
		p += n;
		if (*p == '\n')
			p++;
	}
}


/* A line, or a piece of one too long for the buffer: a piece ends
 * before a character the buffer holds only the start of, and that start
 * stays for the next piece (cut in two, it would show as \xNN escapes). */
static bool flush_line(pb_supervisor *s, struct process *w, struct line_buffer *b, pb_stream stream, bool piece)
{
	size_t len = piece ? pb_utf8_cut(b->data, b->len + 1, b->len) : b->len;
	bool shown = pb_output_line(s, w, stream, b->data, len);

	memmove(b->data, b->data + len, b->len - len);
	b->len -= len;
	return shown;
}

/* Bytes from a worker's stdout or stderr, cut into lines of at most
 * LINE_MAX_BYTES. Once one line is refused, the rest of what this wake-up
 * reads is counted and dropped in bulk (the meter will not refill within
 * it), and so is the rest of the line it ends inside. */
static void take_output(pb_supervisor *s, struct process *w, struct line_buffer *b, pb_stream stream,
                        const char *p, size_t n, bool *dropping)
{
	while (n > 0) {
		const char *nl;
		size_t k;

		if (*dropping) {
			pb_meter_drop(&w->meters[stream], pb_count_lines(p, n) + (p[n - 1] != '\n'), n + b->len);
			b->skipping = p[n - 1] != '\n';
			b->len = 0;
			return;
		}
		nl = memchr(p, '\n', n);
		k = nl ? (size_t)(nl - p) : n;
		if (b->skipping) {
			pb_meter_drop(&w->meters[stream], 0, k + (nl != NULL));
			b->skipping = nl == NULL;
			p += k + (nl != NULL);
			n -= k + (nl != NULL);
			continue;
		}
		if (k >= sizeof(b->data) - 1 - b->len) {
			/* a line too long for the buffer goes out in pieces */
			k = sizeof(b->data) - 1 - b->len;
			nl = NULL;
		}
		memcpy(b->data + b->len, p, k);
		b->len += k;
		p += k + (nl != NULL);
		n -= k + (nl != NULL);
		if ((nl || b->len == sizeof(b->data) - 1) && !flush_line(s, w, b, stream, !nl))
			*dropping = true;
	}
}

void pb_output_read(pb_supervisor *s, struct process *w, int *fd, struct line_buffer *b, pb_stream stream)
{
	char chunk[16384];
	bool dropping = false;

	/* At most 64 KiB a wake-up (a pipe's worth), in few system calls: a
	 * flood is mostly read to be dropped. */
	for (int rounds = 0; rounds < 4; rounds++) {
		ssize_t n = read(*fd, chunk, sizeof(chunk));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			if (b->len && !dropping)
				flush_line(s, w, b, stream, false);
			pb_channel_close_fd(s, fd);
			break;
		}
		take_output(s, w, b, stream, chunk, (size_t)n, &dropping);
	}
	if (dropping)
		note_drops(s, w, stream, false);
}

void pb_output_final(pb_supervisor *s, struct process *w)
{
	for (pb_stream st = PB_STREAM_STDOUT; st <= PB_STREAM_LOG; st++)
		note_drops(s, w, st, true);
}
