/* log.c - plugin logging: the C half of plugbox._SupervisorHandler, which
 * the glue puts on the root logger before any plugin code runs.
 *
 * Each record becomes one Envelope{id 0, Log} on the replies channel, legal
 * in every state of the conversation. Any Python thread may log: the frame
 * is written by one C call with the GIL held and not released, so it cannot
 * interleave with a frame another thread writes (calls.c writes the same
 * way). The text is bounded and made valid UTF-8 here, since a plugin can
 * call plugbox._log with anything. A supervisor that is gone (EPIPE) costs
 * the record, nothing more: logging must never break the plugin. A plugin
 * logging in a loop has its records dropped here beyond
 * PB_LOG_RECORDS_PER_SECOND, with one record saying how many, sent when
 * the next second begins or when the call that logged them ends, whichever
 * is first (so a one-shot `plugbox call` shows it too): the supervisor ends
 * a worker whose channel floods (protocol.h). Each record says which call
 * the worker was running (Log.call_id) and carries the formatted exception
 * apart from the message (Log.exc_text).
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/frame.h"
#include "proto/protocol.h"
#include "worker.h"

/* s as UTF-8 in a new NUL-terminated buffer holding at most max bytes before
 * the NUL. What UTF-8 cannot carry (lone surrogates) becomes a \udcXX escape
 * and NUL becomes \x00; a longer text is cut at a character boundary and
 * marked. NULL with a Python exception on failure. */
static char *bounded_utf8(PyObject *s, size_t max)
{
	static const char marker[] = " [truncated]";
	const size_t keep = max - (sizeof(marker) - 1);
	PyObject *b = PyUnicode_AsEncodedString(s, "utf-8", "backslashreplace");
	const char *src;
	size_t n, o = 0, cut = 0;
	char *out;

	if (!b)
		return NULL;
	src = PyBytes_AS_STRING(b);
	n = (size_t)PyBytes_GET_SIZE(b);
	out = malloc(max + 1);
	if (!out) {
		Py_DECREF(b);
		PyErr_NoMemory();
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = src[i] ? 1 : 4;

		if (((unsigned char)src[i] & 0xc0) != 0x80 && o <= keep)
			cut = o;
		if (o + len > max) {
			memcpy(out + cut, marker, sizeof(marker));
			Py_DECREF(b);
			return out;
		}
		if (src[i])
			out[o] = src[i];
		else
			memcpy(out + o, "\\x00", 4);
		o += len;
	}
	out[o] = '\0';
	Py_DECREF(b);
	return out;
}

static void send_record(int level, char *logger, char *message, char *exc_text)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Log log = PLUGBOX__LOG__INIT;

	log.level = level;
	log.logger = logger;
	log.message = message;
	log.exc_text = exc_text ? exc_text : "";
	log.call_id = pb_cancel_running();
	env.body_case = PLUGBOX__ENVELOPE__BODY_LOG;
	env.log = &log;
	(void)pb_envelope_send(PB_FD_REPLIES, &env, PB_FRAME_MAX_DEFAULT);
}

/* Called with the GIL held, so the counters need no lock. One record a
 * second is kept for the note that says how many were dropped. */
static double window;
static unsigned sent, dropped;

void pb_log_note_drops(void)
{
	char note[128];

	if (dropped == 0)
		return;
	snprintf(note, sizeof(note), "dropped %u log records (more than %d a second)", dropped,
	         PB_LOG_RECORDS_PER_SECOND - 1);
	dropped = 0;
	sent++;
	send_record(30, "plugbox", note, NULL);
}

static bool rate_allows_record(void)
{
	struct timespec ts;
	double now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (now - window >= 1.0) {
		window = now;
		sent = 0;
		pb_log_note_drops();
	}
	if (sent < PB_LOG_RECORDS_PER_SECOND - 1) {
		sent++;
		return true;
	}
	dropped++;
	return false;
}

PyObject *pb_py_log(PyObject *module, PyObject *args)
{
	PyObject *logger, *message, *exc_text = NULL;
	char *l, *m = NULL, *e = NULL;
	int level;
	bool ok;

	(void)module;
	if (!PyArg_ParseTuple(args, "iUU|U:_log", &level, &logger, &message, &exc_text))
		return NULL;
	if (!rate_allows_record())
		Py_RETURN_NONE;
	l = bounded_utf8(logger, PB_LOG_LOGGER_MAX);
	if (l)
		m = bounded_utf8(message, PB_LOG_MESSAGE_MAX);
	if (m && exc_text)
		e = bounded_utf8(exc_text, PB_LOG_MESSAGE_MAX);
	ok = m && (!exc_text || e);
	if (ok)
		send_record(level, l, m, e);
	free(l);
	free(m);
	free(e);
	if (!ok)
		return NULL;
	Py_RETURN_NONE;
}
