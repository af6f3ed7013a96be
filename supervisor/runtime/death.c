/* death.c - why a worker is gone, as the error its calls get: stopped by
 * the sandbox (the syscall and the rule, from its SIGSYS report), ended by
 * us (timeout, protocol, stop: the reason kept by pb_channel_end), a
 * resource limit (told apart by signal and CPU time used), or a plain
 * crash (the signal or exit status). */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "runtime/channel.h"
#include "runtime/death.h"
#include "runtime/error.h"
#include "runtime/process.h"
#include "runtime/violation.h"

pb_error *pb_death_error(const struct process *w)
{
	char msg[1024], call[256], rule[512], name[64];
	int st = w->wstatus;

	if (w->reaped && WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS) {
		if (w->have_violation) {
			struct pb_where at;
			pb_error *e;
			pb_violation_syscall(w, call, sizeof(call));
			pb_violation_rule(w, rule, sizeof(rule), &at);
			pb_violation_syscall_name(w, name, sizeof(name));
			snprintf(msg, sizeof(msg), "plugin '%s' stopped by the sandbox: %s is not allowed by rule %s",
			         w->name, call, rule);
			e = pb_error_set_violation(pb_error_new(PB_ERROR_VIOLATION, w->name, "", msg,
			                                        w->violation_traceback ? w->violation_traceback : ""),
			                           name, rule);
			return pb_error_set_violation_detail(e, w->violation_args, at.file, at.line);
		} else {
			snprintf(msg, sizeof(msg), "plugin '%s' stopped by the sandbox: killed by the seccomp filter "
			                           "without a report (it tried to replace or block the SIGSYS reporter)",
			         w->name);
		}
		return pb_error_new(PB_ERROR_VIOLATION, w->name, "", msg, "");
	}
	if (w->end_kind != 0)
		return pb_error_new(w->end_kind, w->name, "", w->end_message, "");
	/* The worker is pid 1 of its pid namespace, and the kernel does not
	 * deliver SIGXCPU or SIGXFSZ to an init that has no handler: the CPU
	 * limit then ends it with the SIGKILL at the hard limit (a second
	 * later), which the CPU time it used tells apart from other kills. */
	uint64_t cpu_limit = w->policy ? w->policy->sandbox.limit[PB_LIMIT_CPU] : PB_LIMIT_UNLIMITED;
	bool cpu_kill = w->reaped && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL &&
	                cpu_limit != PB_LIMIT_UNLIMITED && w->cpu_used >= (double)cpu_limit;
	if (w->reaped && WIFSIGNALED(st) && (WTERMSIG(st) == SIGXCPU || WTERMSIG(st) == SIGXFSZ || cpu_kill)) {
		bool cpu = WTERMSIG(st) != SIGXFSZ;
		char limit[32];
		enum pb_limit l = cpu ? PB_LIMIT_CPU : PB_LIMIT_FILE_SIZE;
		snprintf(msg, sizeof(msg), "worker for plugin '%s' hit a resource limit: %s (@limit %s %s)",
		         w->name, cpu ? "CPU time" : "file size", pb_limit_names[l],
		         pb_limit_format(l, w->policy ? w->policy->sandbox.limit[l] : PB_LIMIT_UNLIMITED, limit,
		                         sizeof(limit)));
		return pb_error_new(PB_ERROR_CRASHED, w->name, "", msg, "");
	}
	if (w->reaped && WIFSIGNALED(st))
		snprintf(msg, sizeof(msg), "worker for plugin '%s' died: killed by signal %d (%s)",
		         w->name, WTERMSIG(st), strsignal(WTERMSIG(st)));
	else if (w->reaped)
		snprintf(msg, sizeof(msg), "worker for plugin '%s' died: exit status %d", w->name, WEXITSTATUS(st));
	else
		snprintf(msg, sizeof(msg), "worker for plugin '%s' stopped answering", w->name);
	return pb_error_new(PB_ERROR_CRASHED, w->name, "", msg, "");
}
