/* reports.c - what is said about a worker's system calls, rather than by
 * its plugin: the report socket and the seccomp listener.
 *
 * The worker's SIGSYS handler writes one Violation per trapped call on the
 * report socket: a denial with an errno (the plugin goes on, and the report
 * is shown, rate-limited) or a kill (the worker is dying; the report
 * explains the death). The socket is the worker's to write, so a message is
 * bounded (PB_REPORT_MAX), decoded by pb_envelope_decode, and must be a
 * Violation with six arguments; anything else ends the worker. Once, while
 * it starts, a worker whose policy has `log` rules passes its seccomp
 * listener over the same socket (SCM_RIGHTS), checked to be one.
 * The notifications on that listener come from the kernel, not the
 * worker: they are logged (or recorded, in learn mode) and let go on.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/channel.h"
#include "runtime/loop.h"
#include "runtime/netconnect.h"
#include "runtime/output.h"
#include "runtime/process.h"
#include "runtime/reports.h"
#include "runtime/runtime.h"
#include "runtime/violation.h"
#include "toolkit/sanitize.h"

#define REPORTS_SHOWN 50

/* Accept the worker's seccomp listener: once, while it starts, if its
 * policy has log verdicts, and only a real seccomp notification fd. */
static bool take_listener(pb_supervisor *s, struct process *w, int fd)
{
	char link[64], target[64];
	ssize_t n;

	if (w->state != P_STARTING || !w->expect_listener || w->notify_fd >= 0)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	if (strcmp(target, "anon_inode:seccomp notify") != 0)
		return false;
	/* Invariant 2: a policy that needs what the kernel or our privileges
	 * lack stops the worker, with the layer and the reason. */
	if (w->policy && w->policy->sandbox.network == PB_NETWORK_CONNECT && !w->learning) {
		char why[400];
		if (pb_netconnect_check(w, fd, why, sizeof(why)) < 0) {
			close(fd);
			pb_channel_end(w, PB_ERROR_UNAVAILABLE, "plugin '%s' cannot start: %s", w->name, why);
			return true; /* the descriptor is dealt with; the worker is ending */
		}
	}
	if (pb_loop_watch(s, w, SRC_NOTIFY, fd) < 0)
		return false;
	w->notify_fd = fd;
	return true;
}

void pb_reports_read(pb_supervisor *s, struct process *w)
{
	for (int msgs = 0; msgs < 64 && w->end_kind == 0; msgs++) {
		uint8_t buf[PB_REPORT_MAX];
		int fds[PB_REPORT_MAX_FDS], nfds;
		bool ctrunc;
		Plugbox__Envelope *env;
		struct pb_action action;
		char why[160], call[256], rule_text[512];

		ssize_t n = pb_report_recv(w->proc.report_fd, buf, sizeof(buf), fds, &nfds, &ctrunc);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			pb_channel_close_fd(s, &w->proc.report_fd);
			return;
		}
		if (ctrunc) {
			/* the kernel closed what did not fit; close what did */
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' attached more descriptors "
			                                     "to its report socket than a message may carry",
			               w->name);
			return;
		}
		if ((size_t)n > sizeof(buf) ||
		    pb_envelope_decode(buf, (size_t)n, &env, why, sizeof(why)) < 0) {
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' wrote garbage on its report socket",
			               w->name);
			return;
		}
		if (env->body_case == PLUGBOX__ENVELOPE__BODY_LISTENER) {
			pb_envelope_free(env);
			if (nfds != 1 || !take_listener(s, w, fds[0])) {
				for (int i = 0; i < nfds; i++)
					close(fds[i]);
				pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' passed a descriptor "
				                                     "it had no business passing",
				               w->name);
				return;
			}
			continue;
		}
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		if (nfds > 0 || env->body_case != PLUGBOX__ENVELOPE__BODY_VIOLATION ||
		    env->violation->n_args != 6) {
			pb_envelope_free(env);
			pb_channel_end(w, PB_ERROR_PROTOCOL, "worker for plugin '%s' wrote a non-report on its report socket",
			               w->name);
			return;
		}
		w->violation_nr = env->violation->syscall_nr;
		w->violation_arch = env->violation->arch;
		memcpy(w->violation_args, env->violation->args, sizeof(w->violation_args));
		free(w->violation_traceback);
		w->violation_traceback = pb_sanitize_dup(env->violation->traceback, PB_SAN_MULTILINE);
		pb_envelope_free(env);
		pb_violation_syscall(w, call, sizeof(call));
		pb_describe_rule(w, w->violation_nr, w->violation_arch, w->violation_args, &action,
		                 rule_text, sizeof(rule_text));
		if (action.kind == PB_ACT_TRAP && pb_native_arch(w->violation_arch, w->violation_nr)) {
			/* Denied with an errno; the plugin goes on. */
			if (++w->nreports <= REPORTS_SHOWN) {
				pb_output_emit(s, w, PB_STREAM_SUPERVISOR, "denied %s: %s by rule %s", call,
				               strerrorname_np(action.err) ? strerrorname_np(action.err) : "error", rule_text);
				pb_output_traceback(s, w, w->violation_traceback);
			}
			if (w->nreports == REPORTS_SHOWN)
				pb_output_emit(s, w, PB_STREAM_SUPERVISOR, "further denials are not shown");
		} else {
			w->have_violation = true; /* it is dying by SIGSYS now */
		}
	}
}

/* The kernel asks about a syscall the policy logs: write it down (learn
 * mode) or say it, then let it go on. The numbers are the kernel's. */
void pb_reports_notifications(pb_supervisor *s, struct process *w)
{
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;

	if (seccomp_notify_alloc(&req, &resp) < 0) {
		/* Its logged calls would wait for an answer that never comes. */
		pb_channel_end(w, PB_ERROR_UNAVAILABLE, "cannot answer the seccomp notifications of the worker "
		                                        "for plugin '%s' (its policy's log rules)",
		               w->name);
		return;
	}
	for (int rounds = 0; rounds < 64 && w->notify_fd >= 0; rounds++) {
		struct pollfd p = { .fd = w->notify_fd, .events = POLLIN };
		if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) {
			if (p.revents & (POLLHUP | POLLERR)) {
				pb_channel_close_fd(s, &w->notify_fd);
			}
			break;
		}
		memset(req, 0, sizeof(*req));
		if (seccomp_notify_receive(w->notify_fd, req) < 0)
			continue; /* the caller went away (ENOENT) or a signal came */
		if (req->data.nr == __NR_connect && w->policy && w->policy->sandbox.network == PB_NETWORK_CONNECT &&
		    !w->learning && pb_native_arch(req->data.arch, req->data.nr)) {
			pb_netconnect_notified(s, w, req);
			continue;
		}
		uint64_t args[6];
		memcpy(args, req->data.args, sizeof(args));
		if (s->mode == PB_COMPILE_LEARN) {
			pb_learn_record(s, req->data.nr, args);
		} else if (++w->nreports <= REPORTS_SHOWN) {
			char call[256], rule_text[512];
			struct pb_action action;
			pb_format_syscall(req->data.nr, req->data.arch, args, call, sizeof(call));
			pb_describe_rule(w, req->data.nr, req->data.arch, args, &action, rule_text, sizeof(rule_text));
			pb_output_emit(s, w, PB_STREAM_SUPERVISOR, "logged %s by rule %s", call, rule_text);
			if (w->nreports == REPORTS_SHOWN)
				pb_output_emit(s, w, PB_STREAM_SUPERVISOR, "further logged calls are not shown");
		}
		memset(resp, 0, sizeof(*resp));
		resp->id = req->id;
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		seccomp_notify_respond(w->notify_fd, resp); /* ENOENT: it is gone */
	}
	seccomp_notify_free(req, resp);
}

/* The count of what the rate limit kept back, once the worker has ended. */
void pb_reports_final(pb_supervisor *s, struct process *w)
{
	if (w->nreports > REPORTS_SHOWN)
		pb_output_emit(s, w, PB_STREAM_SUPERVISOR, "%u more denials or logged calls were not shown",
		               w->nreports - REPORTS_SHOWN);
}
