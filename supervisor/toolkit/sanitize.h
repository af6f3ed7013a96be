/* sanitize.h - the one function that makes text a plugin supplied safe for
 * a terminal or a log (sanitize.c has the rule). Every plugin-supplied
 * string that plugbox prints outside --json goes through it: output lines,
 * log records, tracebacks, exception types and messages, start-up errors,
 * `plugbox list`'s fields, names found in a plugins directory. */
#ifndef PLUGBOX_TOOLKIT_SANITIZE_H
#define PLUGBOX_TOOLKIT_SANITIZE_H

#include <stdarg.h>
#include <stddef.h>

/* Keep '\n' as a line break (tracebacks, multi-line messages); without
 * it a newline is shown as the two characters \n, so that one field can
 * never become two lines. */
#define PB_SAN_MULTILINE 1u

/* At most this many output bytes per input byte: size a buffer for a whole
 * string with len * PB_SAN_EXPANSION + 1. */
#define PB_SAN_EXPANSION 4

/* Writes the sanitised form of the `len` bytes at `in` to `out` (`cap`
 * bytes, cap > 0), always NUL-terminated, cut only between whole
 * characters or escapes when it does not fit. Returns the length of what
 * was written. A NUL byte in `in` is escaped, not an end. */
size_t pb_sanitize(char *out, size_t cap, const char *in, size_t len, unsigned flags);

/* Sanitises the NUL-terminated string in `buf` (a buffer of `cap`
 * bytes) in place, cut to fit. */
void pb_sanitize_inplace(char *buf, size_t cap, unsigned flags);

/* The sanitised copy of a NUL-terminated string (NULL reads as ""),
 * malloc'd; NULL when out of memory. */
char *pb_sanitize_dup(const char *in, unsigned flags);

/* Where to cut text (UTF-8 from a plugin or a client) to at most `max`
 * bytes: `len` when it fits, else `max` moved back to the start of the
 * character it falls inside (at most 3 bytes back). A character cut in
 * two would reach the host as \xNN escapes, or as invalid UTF-8 where
 * nothing sanitises after the cut (the daemon's text log; a protobuf
 * string field, which must be valid UTF-8). Reads at most `max` bytes
 * when len > max: len = max + 1 says "the text goes on past the buffer". */
size_t pb_utf8_cut(const char *s, size_t len, size_t max);

/* vsnprintf into buf (cap > 0 bytes), and if that cut the text, the cut
 * moved back to a character's start (pb_utf8_cut). Returns the length
 * written. */
__attribute__((format(printf, 3, 0))) size_t pb_utf8_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
__attribute__((format(printf, 3, 4))) size_t pb_utf8_format(char *buf, size_t cap, const char *fmt, ...);

#endif
