/* install_run.c - run one install worker and judge what it says.
 *
 * The worker handles the untrusted bytes, so everything it sends is
 * hostile here, as on a plugin's channel: its answer is read up to
 * PB_INSTALL_RESULT_MAX bytes and must be the few tab-separated lines of
 * install.h; its output is drained and only the tail kept; its reports are
 * fixed-size messages decoded by the codec; and its time is bounded by
 * install.policy's @limit call-time. Whether the sandbox killed it is the
 * kernel's verdict (death by SIGSYS), not the worker's claim; the report
 * only names the syscall, and the rule comes from the operator's policy.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers/cache_build.h"
#include "proto/frame.h"
#include "proto/install.h"
#include "jail/spawn.h"
#include "policy/policy.h"
#include "toolkit/clock.h"
#include "proto/names.h"
#include "toolkit/report.h"
#include "toolkit/sanitize.h"

#define TAIL_MAX 512

struct run_state {
	char result[PB_INSTALL_RESULT_MAX + 1];
	size_t result_len;
	bool result_too_long;
	char tail[TAIL_MAX + 1];        /* the end of its stderr, for an unexplained death */
	size_t tail_len;
	bool have_violation;
	int nr;
	uint32_t arch;
	uint64_t args[6];
	bool bad_report;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_message(struct pb_install_result *res, enum pb_install_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_message(struct pb_install_result *res, enum pb_install_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	pb_sanitize_inplace(res->message, sizeof(res->message), 0);
	res->status = st;
}

/* A report from the SIGSYS handler: which call it was, nothing more. */
static void read_reports(int *fd, struct run_state *st)
{
	for (int msgs = 0; msgs < 64; msgs++) {
		uint8_t buf[PB_REPORT_MAX];
		int fds[PB_REPORT_MAX_FDS], nfds;
		bool ctrunc;
		Plugbox__Envelope *env;
		char why[160];

		ssize_t n = pb_report_recv(*fd, buf, sizeof(buf), fds, &nfds, &ctrunc);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			close(*fd);
			*fd = -1;
			return;
		}
		/* No descriptor has any business here (install.policy has no
		 * `log` rules, so no listener): close whatever came. */
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		if (nfds > 0 || ctrunc)
			st->bad_report = true;
		if ((size_t)n > sizeof(buf) || pb_envelope_decode(buf, (size_t)n, &env, why, sizeof(why)) < 0) {
			st->bad_report = true;
			continue;
		}
		if (env->body_case == PLUGBOX__ENVELOPE__BODY_VIOLATION && env->violation->n_args == 6 &&
		    !st->have_violation) {
			st->have_violation = true;
			st->nr = env->violation->syscall_nr;
			st->arch = env->violation->arch;
			memcpy(st->args, env->violation->args, sizeof(st->args));
		} else if (env->body_case != PLUGBOX__ENVELOPE__BODY_VIOLATION) {
			st->bad_report = true;
		}
		pb_envelope_free(env);
	}
}

static void name_violation(const struct pb_install_job *job, const struct pb_spawned *w,
                           const struct run_state *st, struct pb_install_result *res)
{
	char call[256], rule[512] = "", where[300];
	struct pb_action action;
	bool own_pidns = true;

	if (!st->have_violation) {
		set_message(res, PB_INSTALL_KILLED, "the sandbox killed the unpacker (SIGSYS; it sent no report)");
		return;
	}
	for (size_t i = 0; i < w->nlayers; i++)
		if (!strncmp(w->layers[i], "namespaces: none", 16))
			own_pidns = false;
	pb_format_syscall(st->nr, st->arch, st->args, call, sizeof(call));
	if (!pb_native_arch(st->arch, st->nr)) {
		snprintf(rule, sizeof(rule), "'kill what is not a native syscall' (plugbox's built-in guard)");
	} else {
		const struct pb_entry *e = pb_policy_match(job->policy, st->nr, st->args, own_pidns ? 1 : w->pid,
		                                           false, &action);
		if (e) {
			pb_where_format(&e->where, where, sizeof(where));
			snprintf(rule, sizeof(rule), "'%s' at %s", e->text, where);
		} else {
			snprintf(rule, sizeof(rule), "the @default of policy '%s'", job->policy->name);
		}
	}
	set_message(res, PB_INSTALL_KILLED, "the sandbox killed the unpacker: %s is not allowed by rule %s",
	            call, rule);
}

/* The answer: lines of tab-separated fields, the last one deciding. */
static void judge_answer(struct run_state *st, const struct pb_install_job *job, bool asked_probes,
                         int exit_status, struct pb_install_result *res)
{
	char *text = st->result, *last = NULL;

	text[st->result_len] = '\0';
	if (st->result_too_long) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker sent more than %u bytes of answer",
		            PB_INSTALL_RESULT_MAX);
		return;
	}
	if (strlen(text) != st->result_len || (st->result_len > 0 && text[st->result_len - 1] != '\n')) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker sent a malformed answer");
		return;
	}
	for (char *line = text, *next; *line; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		if (!strncmp(line, "probe\t", 6) && asked_probes) {
			char *tab = strchr(line + 6, '\t');
			if (tab)
				*tab++ = '\0';
			char *probe = pb_sanitize_dup(line + 6, 0), *said = pb_sanitize_dup(tab ? tab : "?", 0);
			fprintf(stderr, "plugbox: install probe %s: %s\n", probe ? probe : "?", said ? said : "?");
			free(probe);
			free(said);
			continue;
		}
		if (last) {
			set_message(res, PB_INSTALL_FAILED, "the unpacker sent a malformed answer");
			return;
		}
		last = line;
	}
	if (!last) {
		char tail[TAIL_MAX + 1];
		size_t n = st->tail_len;
		memcpy(tail, st->tail, n);
		tail[n] = '\0';
		while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == ' '))
			tail[--n] = '\0';
		char *line = strrchr(tail, '\n');
		set_message(res, PB_INSTALL_FAILED, "the unpacker ended without an answer (exit status %d)%s%s",
		            exit_status, n ? "; its last words: " : "", n ? (line ? line + 1 : tail) : "");
		return;
	}
	char *fields[5] = { 0 };
	int nf = 0;
	for (char *f = last, *tab; nf < 5 && f; f = tab) {
		tab = strchr(f, '\t');
		if (tab)
			*tab++ = '\0';
		fields[nf++] = f;
	}
	if (!strcmp(fields[0], "refused") && nf == 2) {
		set_message(res, PB_INSTALL_REFUSED, "%s", fields[1]);
	} else if (!strcmp(fields[0], "failed") && nf == 2) {
		set_message(res, PB_INSTALL_FAILED, "%s", fields[1]);
	} else if (exit_status != 0) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker claimed success but exited with status %d",
		            exit_status);
	} else if (!strcmp(fields[0], "version") && nf == 2 && !strcmp(job->mode, "version") &&
	           strlen(fields[1]) < sizeof(res->version)) {
		snprintf(res->version, sizeof(res->version), "%s", fields[1]);
		pb_sanitize_inplace(res->version, sizeof(res->version), 0);
		res->status = PB_INSTALL_OK;
	} else if (!strcmp(fields[0], "ok") && nf == 4 && strcmp(job->mode, "version") != 0 &&
	           pb_valid_plugin_name(fields[1]) && (!job->name || !strcmp(job->name, fields[1])) &&
	           strlen(fields[2]) < sizeof(res->version) && strspn(fields[3], "0123456789") == strlen(fields[3]) &&
	           strlen(fields[3]) > 0 && strlen(fields[3]) < 10) {
		snprintf(res->name, sizeof(res->name), "%s", fields[1]);
		snprintf(res->version, sizeof(res->version), "%s", fields[2]);
		pb_sanitize_inplace(res->version, sizeof(res->version), 0);
		res->ignored = strtoul(fields[3], NULL, 10);
		res->status = PB_INSTALL_OK;
	} else {
		set_message(res, PB_INSTALL_FAILED, "the unpacker sent a malformed answer");
	}
}

/* The worker's command line beyond its trees: the limits (install.h), the
 * name, and test probes. Strings live in `store`. */
static size_t worker_args(const struct pb_install_job *job, char *store, size_t store_len, char **args,
                          char **probes_copy, bool *asked_probes)
{
	const struct { const char *key; unsigned long long v; } limits[] = {
		{ "bytes", PB_INSTALL_MAX_BYTES }, { "files", PB_INSTALL_MAX_FILES },
		{ "file_size", job->policy->sandbox.limit[PB_LIMIT_FILE_SIZE] == PB_LIMIT_UNLIMITED
		  ? PB_INSTALL_MAX_BYTES : job->policy->sandbox.limit[PB_LIMIT_FILE_SIZE] },
		{ "ratio", PB_INSTALL_MAX_RATIO }, { "ratio_floor", PB_INSTALL_RATIO_FLOOR },
		{ "depth", PB_INSTALL_MAX_DEPTH },
	};
	const char *probes = getenv(PB_INSTALL_PROBE_ENV);
	size_t n = 0, used = 0;

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		int w = snprintf(store + used, store_len - used, "%s=%llu", limits[i].key, limits[i].v);
		args[n++] = "--limit";
		args[n++] = store + used;
		used += (size_t)w + 1;
	}
	if (job->name) {
		args[n++] = "--name";
		args[n++] = (char *)job->name;
	}
	*asked_probes = false;
	*probes_copy = NULL;
	if (probes && *probes && (*probes_copy = strdup(probes))) {
		char *save = NULL;
		int count = 0;
		for (char *p = strtok_r(*probes_copy, " ", &save); p && count < PB_INSTALL_MAX_PROBES;
		     p = strtok_r(NULL, " ", &save), count++) {
			args[n++] = "--probe";
			args[n++] = p;
		}
		*asked_probes = count > 0;
	}
	args[n] = NULL;
	return n;
}

void pb_install_run(const struct pb_install_job *job, struct pb_install_result *res)
{
	char store[256], *args[40], *probes = NULL, why[512];
	struct pb_spawned w;
	struct run_state *st = calloc(1, sizeof(*st));
	bool asked_probes, timed_out = false, exited = false;
	uint64_t call_ms = job->policy->sandbox.limit[PB_LIMIT_CALL_TIME];
	double deadline = call_ms == PB_LIMIT_UNLIMITED ? 0 : now() + (double)call_ms / 1000.0;
	int status = 0;
	struct rusage ru = { 0 };

	memset(res, 0, sizeof(*res));
	if (!st) {
		set_message(res, PB_INSTALL_FAILED, "out of memory");
		return;
	}
	worker_args(job, store, sizeof(store), args, &probes, &asked_probes);
	const struct pb_install_spec spec = {
		.mode = job->mode, .input_fd = job->input_fd, .staging = job->staging, .source = job->source,
		.old = job->old, .args = args,
	};
	if (pb_spawn_install(job->worker_path, job->policy, &spec, job->uid, job->gid, &w, why, sizeof(why)) < 0) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker could not be started: %s", why);
		free(probes);
		free(st);
		return;
	}
	/* Until it has exited and every pipe is at its end, or the deadline. */
	while (!exited || w.replies_fd >= 0 || w.stdout_fd >= 0 || w.stderr_fd >= 0 || w.report_fd >= 0) {
		struct pollfd p[5] = {
			{ .fd = exited ? -1 : w.pidfd, .events = POLLIN }, { .fd = w.replies_fd, .events = POLLIN },
			{ .fd = w.stdout_fd, .events = POLLIN }, { .fd = w.stderr_fd, .events = POLLIN },
			{ .fd = w.report_fd, .events = POLLIN },
		};
		int wait_ms = -1;
		if (exited) {
			wait_ms = 0;       /* it is gone: take what is left, without waiting for grandchildren */
		} else if (deadline > 0) {
			double left = deadline - now();
			wait_ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
		}
		int r = poll(p, 5, wait_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (w.replies_fd >= 0 && (p[1].revents || exited))
			pb_drain_fd(&w.replies_fd, st->result, PB_INSTALL_RESULT_MAX, &st->result_len, false,
			      &st->result_too_long);
		if (w.stdout_fd >= 0 && (p[2].revents || exited)) {
			char sink[TAIL_MAX];
			size_t sink_len = 0;
			pb_drain_fd(&w.stdout_fd, sink, sizeof(sink), &sink_len, true, NULL);
		}
		if (w.stderr_fd >= 0 && (p[3].revents || exited))
			pb_drain_fd(&w.stderr_fd, st->tail, TAIL_MAX, &st->tail_len, true, NULL);
		if (w.report_fd >= 0 && (p[4].revents || exited))
			read_reports(&w.report_fd, st);
		if (exited) {
			/* One last pass took what was buffered; a pipe still open
			 * belongs to nobody we wait for. */
			break;
		}
		if (p[0].revents) {
			if (wait4(w.pid, &status, 0, &ru) == w.pid)
				exited = true;
			continue;
		}
		if (st->result_too_long || (deadline > 0 && now() >= deadline)) {
			timed_out = !st->result_too_long;
			kill(w.pid, SIGKILL);
			wait4(w.pid, &status, 0, &ru);
			exited = true;
		}
	}
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	             ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
	uint64_t cpu_limit = job->policy->sandbox.limit[PB_LIMIT_CPU];
	if (timed_out) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker timed out after %g s (install.policy's @limit "
		            "call-time)", (double)call_ms / 1000.0);
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
		name_violation(job, &w, st, res);
	} else if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGXCPU ||
	           (WTERMSIG(status) == SIGKILL && cpu_limit != PB_LIMIT_UNLIMITED && cpu + 0.5 >= (double)cpu_limit))) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker hit its CPU limit (install.policy's @limit cpu)");
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker hit its file-size limit");
	} else if (WIFSIGNALED(status) && !st->result_too_long) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker died of signal %d (%s)", WTERMSIG(status),
		            strsignal(WTERMSIG(status)));
	} else if (st->bad_report) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker wrote garbage on its report socket");
	} else {
		judge_answer(st, job, asked_probes, WIFEXITED(status) ? WEXITSTATUS(status) : -1, res);
	}
	pb_spawned_release(&w);
	free(probes);
	free(st);
}
