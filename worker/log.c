/* log.c - plugin logging: the C half of plugbox._SupervisorHandler, which
 * the glue puts on the root logger before any plugin code runs.
 *
 * Each record becomes one Envelope{id 0, Log} on the replies channel, legal
 * in every state of the conversation. Any Python thread may log: the frame
 * is written by one C call with the GIL held and not released, so it cannot
 * interleave with a frame another thread writes (calls.c writes the same
 * way). The text is bounded and made valid UTF-8 here, since a plugin can
 * call plugbox._log with anything. A supervisor that is gone (EPIPE) costs
 * the record, nothing more: logging must never break the plugin.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
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

PyObject *pb_py_log(PyObject *module, PyObject *args)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Log log = PLUGBOX__LOG__INIT;
	PyObject *logger, *message;
	char *l, *m = NULL;

	(void)module;
	if (!PyArg_ParseTuple(args, "iUU:_log", &log.level, &logger, &message))
		return NULL;
	l = bounded_utf8(logger, PB_LOG_LOGGER_MAX);
	if (l)
		m = bounded_utf8(message, PB_LOG_MESSAGE_MAX);
	if (m) {
		log.logger = l;
		log.message = m;
		env.body_case = PLUGBOX__ENVELOPE__BODY_LOG;
		env.log = &log;
		(void)pb_envelope_send(PB_FD_REPLIES, &env, PB_FRAME_MAX_DEFAULT);
	}
	free(l);
	free(m);
	if (!m)
		return NULL;
	Py_RETURN_NONE;
}
