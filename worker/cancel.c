/* cancel.c - the worker's end of cancelling a call.
 *
 * The supervisor queues PB_CANCEL_SIGNAL to our main thread with the id of
 * the call it cancels in si_value (protocol.h). The handler below is the
 * only code that runs in signal context: it notes the id among the
 * cancelled ones and, when it is the call running now, asks CPython to run
 * the Python-level handler (PyErr_SetInterruptEx, async-signal-safe). That
 * handler, run by the interpreter between bytecodes in the main thread,
 * raises plugbox.Cancelled in the call only if it is still the one the
 * signal named: a signal that arrives as the call ends, or a plugin that
 * queues the signal to itself with another id, cancels nothing else. A call
 * not started yet is answered without running (pb_cancel_pending), so
 * pipelined calls are safe whatever order the signal and the Call arrive in.
 *
 * A plugin can block, ignore or replace the signal, or swallow the
 * exception: the supervisor kills a worker that has not answered within a
 * grace period. The handler is installed before the seccomp filter loads,
 * so the policy needs no rule for it; the plugin sending itself the signal
 * cancels at most its own call.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "worker.h"

/* The call the main thread runs now (0: none), and the one whose
 * interrupt the handler requested. */
static _Atomic uint64_t running;
static _Atomic uint64_t interrupt_for;
/* Ids cancelled, newest overwriting the oldest. */
static _Atomic uint64_t cancelled[PB_CANCEL_REMEMBERED];
/* Slots filled so far (each is taken before its id is stored): a call's
 * check reads only those, not all PB_CANCEL_REMEMBERED of them. 64 bits:
 * never wraps. */
static _Atomic uint64_t next_slot;

_Static_assert(sizeof(union sigval) >= sizeof(uint64_t), "a call id fits in si_value");

static void on_cancel(int sig, siginfo_t *info, void *ctx)
{
	int saved = errno;
	uint64_t id;

	(void)ctx;
	/* the supervisor wrote the id's bytes there (runtime/cancel.c) */
	memcpy(&id, &info->si_value, sizeof(id));
	if (info->si_code == SI_QUEUE && id != 0) {
		atomic_store(&cancelled[atomic_fetch_add(&next_slot, 1) % PB_CANCEL_REMEMBERED], id);
		if (atomic_load(&running) == id) {
			atomic_store(&interrupt_for, id);
			PyErr_SetInterruptEx(sig);
		}
	}
	errno = saved;
}

static bool was_cancelled(uint64_t id)
{
	uint64_t used = atomic_load(&next_slot);
	size_t n = used < PB_CANCEL_REMEMBERED ? (size_t)used : PB_CANCEL_REMEMBERED;

	for (size_t i = 0; i < n; i++)
		if (atomic_load(&cancelled[i]) == id)
			return true;
	return false;
}

/* The Python-level handler: raise plugbox.Cancelled in the call the
 * signal named, if it still runs. */
static PyObject *python_handler(PyObject *self, PyObject *args)
{
	uint64_t id = atomic_load(&interrupt_for);
	PyObject *plugbox, *cls;

	(void)self;
	(void)args;
	if (id == 0 || id != atomic_load(&running))
		Py_RETURN_NONE;
	atomic_store(&interrupt_for, 0);
	plugbox = PyImport_ImportModule("plugbox");
	cls = plugbox ? PyObject_GetAttrString(plugbox, "Cancelled") : NULL;
	Py_XDECREF(plugbox);
	if (!cls)
		return NULL;
	PyErr_SetString(cls, "the host cancelled this call");
	Py_DECREF(cls);
	return NULL;
}

static PyMethodDef handler_def = { "_cancel_handler", python_handler, METH_VARARGS,
	                           "plugbox's handler of the cancel signal" };

int pb_cancel_install(char *why, size_t why_len)
{
	PyObject *signal_mod, *handler, *r;
	struct sigaction sa;

	/* The Python-level handler first (signal.signal also installs
	 * CPython's C handler, which ours then replaces). */
	signal_mod = PyImport_ImportModule("_signal");
	handler = PyCFunction_New(&handler_def, NULL);
	r = signal_mod && handler ? PyObject_CallMethod(signal_mod, "signal", "iO", PB_CANCEL_SIGNAL, handler) : NULL;
	Py_XDECREF(signal_mod);
	Py_XDECREF(handler);
	if (!r) {
		PyErr_Clear();
		snprintf(why, why_len, "cannot install the Python handler of the cancel signal (%d)", PB_CANCEL_SIGNAL);
		return -1;
	}
	Py_DECREF(r);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_cancel;
	/* no SA_RESTART: a blocking call returns EINTR and Python checks its
	 * signals, which is how a sleeping call is interrupted */
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(PB_CANCEL_SIGNAL, &sa, NULL) < 0) {
		snprintf(why, why_len, "sigaction(cancel signal %d): %s", PB_CANCEL_SIGNAL, strerror(errno));
		return -1;
	}
	return 0;
}

uint64_t pb_cancel_enter(uint64_t id)
{
	uint64_t outer = atomic_exchange(&running, id);

	atomic_store(&interrupt_for, 0);
	return outer;
}

bool pb_cancel_pending(uint64_t id)
{
	return id != 0 && was_cancelled(id);
}

void pb_cancel_leave(uint64_t outer)
{
	atomic_store(&running, outer);
	atomic_store(&interrupt_for, 0);
}

uint64_t pb_cancel_running(void)
{
	return atomic_load(&running);
}
