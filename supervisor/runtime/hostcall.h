/* hostcall.h - hostcall.c: host functions a plugin may call back. */
#ifndef PLUGBOX_RUNTIME_HOSTCALL_H
#define PLUGBOX_RUNTIME_HOSTCALL_H

#include "runtime/process.h"

/* The worker asked for a host function (env taken): answer at once when it
 * is not granted or not registered, else queue the function. */
void pb_host_call_received(pb_supervisor *s, struct process *p, Plugbox__Envelope *env);
/* Run a queued host function (from the ready list). */
void pb_host_call_invoke(pb_supervisor *s, struct pb_host_call *hc);
/* The call waiting for it ended: the answer, when it comes, is dropped. */
void pb_host_call_orphan(struct pb_host_call *hc);
/* Another call waits for it now (the ghost of a cancelled call, cancel.c):
 * the answer still goes to the worker. */
void pb_host_call_adopt(struct pb_host_call *hc, struct call *c);
/* Is a host function of this process's innermost call running on the stack
 * (so a call to it now is nested in that host call)? */
bool pb_host_call_nesting(const struct process *p);
/* The innermost call's host call was answered while a nested call ran:
 * send the answer now. */
void pb_host_call_flush(pb_supervisor *s, struct process *p);
void pb_host_functions_free(pb_supervisor *s);

#endif
