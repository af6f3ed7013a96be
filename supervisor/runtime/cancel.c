/* cancel.c - pb_cancel: the host no longer wants a call.
 *
 * A call still in its plugin's queue, or chosen for the pipeline but not
 * yet written, is simply taken out: it never reaches a worker. A call the
 * worker has (running, or written ahead of time) is told to it with a
 * signal that carries the call's id (protocol.h, worker/cancel.c): a
 * signal reaches a worker busy in the plugin's code, where a frame on its
 * calls pipe would wait behind the call. The id, not the signal alone,
 * names the call, so a cancel that arrives as the call ends touches no
 * other. Either way the host's call ends at once, with PB_ERROR_CANCELLED,
 * and a ghost (inflight.c) takes its place in the worker: the worker's
 * late answer to it is dropped. A running call's ghost has the grace
 * period as its deadline: a worker still in it then (the plugin blocked
 * the signal, swallowed plugbox.Cancelled, or waits on a host function
 * that never answers) is killed; the calls written ahead to it go back to
 * the queue for its replacement, as after any end of a worker.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/cancel.h"
#include "runtime/channel.h"
#include "runtime/error.h"
#include "runtime/inflight.h"
#include "runtime/output.h"
#include "runtime/process.h"
#include "runtime/runtime.h"

/* The id travels as the bytes of si_value (no pointer is made of it). */
_Static_assert(sizeof(union sigval) >= sizeof(uint64_t), "a call id fits in si_value");

void pb_cancel_signal(pb_supervisor *s, struct process *w, uint64_t id)
{
	siginfo_t info;

	if (w->reaped || w->proc.pid <= 0)
		return; /* its end requeues or fails everything already */
	memset(&info, 0, sizeof(info));
	info.si_signo = PB_CANCEL_SIGNAL;
	info.si_code = SI_QUEUE;
	info.si_pid = getpid();
	info.si_uid = getuid();
	memcpy(&info.si_value, &id, sizeof(id));
	/* To its main thread, which runs the calls (any other thread would
	 * take the signal without interrupting it). Not yet reaped, the pid
	 * cannot name another process. */
	if (syscall(SYS_rt_tgsigqueueinfo, w->proc.pid, w->proc.pid, PB_CANCEL_SIGNAL, &info) < 0) {
		pb_note(s, w->name, "cannot signal the worker to cancel a call (rt_tgsigqueueinfo: %s): ending it",
		        strerror(errno));
		pb_channel_end(w, PB_ERROR_CANCELLED, "cannot signal the worker of plugin '%s' to cancel a call "
		                                      "(rt_tgsigqueueinfo: %s): it was ended",
		               w->name, strerror(errno));
	}
}

pb_error *pb_cancelled_error(const struct plugin *p, const struct call *c, bool running)
{
	(void)c;
	return pb_error_newf(PB_ERROR_CANCELLED, p->name, "call to plugin '%s' cancelled %s", p->name,
	                     running ? "while it ran" : "before it started");
}

void pb_cancel_overdue(pb_supervisor *s, struct process *w)
{
	/* On purpose, not a crash: the replacement starts without backoff. */
	w->stop_requested = true;
	pb_note(s, w->name, "the worker did not stop a cancelled call within %g s: killed", PB_CANCEL_GRACE);
	pb_channel_end(w, PB_ERROR_CANCELLED, "plugin '%s' did not stop a cancelled call within %g s: its "
	                                      "worker was killed",
	               w->name, PB_CANCEL_GRACE);
}

PB_API int pb_cancel(pb_supervisor *s, uint64_t id)
{
	if (id == 0)
		return -ENOENT;
	if (pb_hook_cancel(s, id) == 0)
		return 0;
	for (size_t i = 0; i < s->nplugins; i++) {
		struct plugin *p = s->plugins[i];
		struct call **link = &p->queue_head, *c, *prev = NULL;

		for (; (c = *link); prev = c, link = &c->next) {
			if (c->id != id)
				continue;
			*link = c->next;
			if (p->queue_tail == c)
				p->queue_tail = prev;
			c->next = NULL;
			p->queued--;
			pb_call_finish(s, c, NULL, pb_cancelled_error(p, c, false));
			return 0;
		}
		for (unsigned k = 0; k < p->nworkers; k++) {
			int r = pb_inflight_cancel(s, p->workers[k], id);
			if (r != -ENOENT)
				return r;
		}
	}
	return -ENOENT;
}
