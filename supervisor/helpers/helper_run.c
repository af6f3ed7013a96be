/* helper_run.c - one runner for the sandboxed helper workers (the
 * unpacker of install_run.c, the compiler of cache_build.c): what helper_run.h
 * promises, in one place a reviewer can audit.
 *
 * Every read is bounded and non-blocking: the answer pipe up to
 * PB_INSTALL_RESULT_MAX bytes (one byte more kills the helper), stdout into
 * nowhere, stderr into a tail of PB_HELPER_TAIL_MAX bytes, the report
 * socket 64 messages per step. A helper that outlives its deadline is
 * killed; once it is reaped, one last pass takes what it left buffered, and
 * a pipe still open then belongs to a grandchild nobody waits for.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/helper_run.h"
#include "policy/policy.h"
#include "proto/frame.h"
#include "toolkit/clock.h"
#include "toolkit/report.h"

void pb_helper_init(struct pb_helper *h, const char *who, const char *policy_file)
{
	memset(h, 0, sizeof(*h));
	pb_spawned_init(&h->w);
	h->who = who;
	h->policy_file = policy_file;
	h->answer = h->small;
	h->answer_max = PB_INSTALL_RESULT_MAX;
}

int pb_helper_set_answer_max(struct pb_helper *h, size_t max)
{
	char *buf = max > PB_INSTALL_RESULT_MAX ? malloc(max + 1) : NULL;

	if (max > PB_INSTALL_RESULT_MAX && !buf)
		return -ENOMEM;
	if (h->answer != h->small)
		free(h->answer);
	h->answer = buf ? buf : h->small;
	h->answer_max = buf ? max : PB_INSTALL_RESULT_MAX;
	return 0;
}

int pb_helper_spawn(struct pb_helper *h, const char *worker_path, const struct pb_policy *policy,
                    const struct pb_install_spec *spec, uid_t uid, gid_t gid, char *why, size_t why_len)
{
	int r = pb_spawn_install(worker_path, policy, spec, uid, gid, &h->w, why, why_len);

	if (r < 0)
		return r;
	h->call_ms = policy->sandbox.limit[PB_LIMIT_CALL_TIME];
	h->cpu_limit = policy->sandbox.limit[PB_LIMIT_CPU];
	h->deadline = h->call_ms == PB_LIMIT_UNLIMITED ? 0 : pb_now() + (double)h->call_ms / 1000.0;
	return 0;
}

size_t pb_helper_fds(const struct pb_helper *h, int fds[PB_HELPER_FDS_MAX])
{
	const int all[PB_HELPER_FDS_MAX] = { h->exited ? -1 : h->w.pidfd, h->w.replies_fd, h->w.stdout_fd,
		                             h->w.stderr_fd, h->w.report_fd };
	size_t n = 0;

	for (size_t i = 0; i < PB_HELPER_FDS_MAX; i++)
		if (all[i] >= 0)
			fds[n++] = all[i];
	return n;
}

double pb_helper_deadline(const struct pb_helper *h)
{
	return h->finished ? 0 : h->deadline;
}

/* What the pipe *fd holds now: into buf (the first cap bytes, *overflow set
 * past them; or with keep_tail the last cap bytes), or nowhere when buf is
 * NULL. At its end or an error *fd is closed and set to -1. */
static void drain_fd(int *fd, char *buf, size_t cap, size_t *len, bool keep_tail, bool *overflow)
{
	char chunk[4096];

	for (int reads = 0; *fd >= 0 && reads < 64; reads++) {
		ssize_t n = read(*fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(*fd);
			*fd = -1;
			return;
		}
		size_t take = (size_t)n;
		if (!buf)
			continue;
		if (keep_tail) {
			const char *from = take > cap ? chunk + take - cap : chunk;
			size_t fresh = take > cap ? cap : take, keep = *len + fresh > cap ? cap - fresh : *len;
			memmove(buf, buf + *len - keep, keep);
			memcpy(buf + keep, from, fresh);
			*len = keep + fresh;
		} else {
			if (*len + take > cap) {
				*overflow = true;
				take = cap - *len;
			}
			memcpy(buf + *len, chunk, take);
			*len += take;
		}
	}
}

/* One report: the first Violation is kept (it names the call a SIGSYS
 * death was for); a descriptor, a truncated message, another body or
 * bytes the codec refuses make the socket garbage. */
static void take_report(struct pb_helper *h, const uint8_t *buf, ssize_t n, int nfds, bool ctrunc)
{
	Plugbox__Envelope *env;
	char why[160];

	if (nfds > 0 || ctrunc)
		h->bad_report = true;
	if ((size_t)n > PB_REPORT_MAX || pb_envelope_decode(buf, (size_t)n, &env, why, sizeof(why)) < 0) {
		h->bad_report = true;
		return;
	}
	if (env->body_case != PLUGBOX__ENVELOPE__BODY_VIOLATION) {
		h->bad_report = true;
	} else if (env->violation->n_args == 6 && !h->have_violation) {
		h->have_violation = true;
		h->nr = env->violation->syscall_nr;
		h->arch = env->violation->arch;
		memcpy(h->args, env->violation->args, sizeof(h->args));
	}
	pb_envelope_free(env);
}

static void read_reports(struct pb_helper *h)
{
	for (int msgs = 0; h->w.report_fd >= 0 && msgs < 64; msgs++) {
		uint8_t buf[PB_REPORT_MAX];
		int fds[PB_REPORT_MAX_FDS], nfds = 0;
		bool ctrunc = false;
		ssize_t n = pb_report_recv(h->w.report_fd, buf, sizeof(buf), fds, &nfds, &ctrunc);

		/* No descriptor has any business here (a helper's policy has
		 * no `log` rules, so no listener): close whatever came. */
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			close(h->w.report_fd);
			h->w.report_fd = -1;
			return;
		}
		take_report(h, buf, n, nfds, ctrunc);
	}
}

static void drain(struct pb_helper *h)
{
	drain_fd(&h->w.replies_fd, h->answer, h->answer_max, &h->answer_len, false, &h->answer_too_long);
	drain_fd(&h->w.stdout_fd, NULL, 0, NULL, false, NULL);
	drain_fd(&h->w.stderr_fd, h->tail, PB_HELPER_TAIL_MAX, &h->tail_len, true, NULL);
	read_reports(h);
}

static void kill_and_reap(struct pb_helper *h)
{
	kill(h->w.pid, SIGKILL);
	while (wait4(h->w.pid, &h->status, 0, &h->ru) < 0 && errno == EINTR)
		;
	h->exited = true;
}

bool pb_helper_step(struct pb_helper *h)
{
	if (h->finished)
		return true;
	drain(h);
	if (!h->exited && wait4(h->w.pid, &h->status, WNOHANG, &h->ru) == h->w.pid)
		h->exited = true;
	if (!h->exited && (h->answer_too_long || (h->deadline > 0 && pb_now() >= h->deadline))) {
		h->timed_out = !h->answer_too_long;
		kill_and_reap(h);
	}
	if (!h->exited)
		return false;
	drain(h);
	h->answer[h->answer_len] = '\0';
	h->tail[h->tail_len] = '\0';
	pb_spawned_release(&h->w);
	h->finished = true;
	return true;
}

void pb_helper_wait(struct pb_helper *h)
{
	while (!pb_helper_step(h)) {
		struct pollfd p[PB_HELPER_FDS_MAX];
		int fds[PB_HELPER_FDS_MAX], wait_ms = -1;
		size_t n = pb_helper_fds(h, fds);

		for (size_t i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (h->deadline > 0) {
			double left = h->deadline - pb_now();
			wait_ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
		}
		poll(p, n, wait_ms);
	}
}

void pb_helper_free(struct pb_helper *h)
{
	if (h->w.pid > 0 && !h->exited)
		kill_and_reap(h);
	pb_spawned_release(&h->w);
	if (h->answer != h->small)
		free(h->answer);
	h->answer = h->small;
	h->answer_max = PB_INSTALL_RESULT_MAX;
	h->answer_len = h->answer_len > h->answer_max ? 0 : h->answer_len;
}

enum pb_helper_end pb_helper_end(const struct pb_helper *h, int *exit_status, char *why, size_t why_len)
{
	int sig = WIFSIGNALED(h->status) ? WTERMSIG(h->status) : 0;
	double cpu = (double)h->ru.ru_utime.tv_sec + (double)h->ru.ru_stime.tv_sec +
	             ((double)h->ru.ru_utime.tv_usec + (double)h->ru.ru_stime.tv_usec) / 1e6;

	*exit_status = WIFEXITED(h->status) ? WEXITSTATUS(h->status) : -1;
	*why = '\0';
	if (h->timed_out) {
		snprintf(why, why_len, "%s timed out after %g s (%s's @limit call-time)", h->who,
		         (double)h->call_ms / 1000.0, h->policy_file);
		return PB_HELPER_TIMED_OUT;
	}
	if (sig == SIGSYS)
		return PB_HELPER_SECCOMP;
	/* RLIMIT_CPU's hard limit is a SIGKILL: one at about the limit is it. */
	if (sig == SIGXCPU || (sig == SIGKILL && h->cpu_limit != PB_LIMIT_UNLIMITED &&
	                       cpu + 0.5 >= (double)h->cpu_limit)) {
		snprintf(why, why_len, "%s hit its CPU limit (%s's @limit cpu)", h->who, h->policy_file);
		return PB_HELPER_LIMIT;
	}
	if (sig == SIGXFSZ) {
		snprintf(why, why_len, "%s hit its file-size limit", h->who);
		return PB_HELPER_LIMIT;
	}
	if (h->answer_too_long) {
		snprintf(why, why_len, "%s sent more than %zu bytes of answer", h->who, h->answer_max);
		return PB_HELPER_TOO_LONG;
	}
	if (sig) {
		snprintf(why, why_len, "%s died of signal %d (%s)", h->who, sig, strsignal(sig));
		return PB_HELPER_SIGNAL;
	}
	if (h->bad_report) {
		snprintf(why, why_len, "%s wrote garbage on its report socket", h->who);
		return PB_HELPER_BAD_REPORT;
	}
	return PB_HELPER_EXITED;
}

void pb_helper_no_answer(const struct pb_helper *h, int exit_status, char *why, size_t why_len)
{
	char tail[PB_HELPER_TAIL_MAX + 1];
	size_t n = h->tail_len;

	memcpy(tail, h->tail, n);
	tail[n] = '\0';
	while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == ' '))
		tail[--n] = '\0';
	const char *line = strrchr(tail, '\n');
	snprintf(why, why_len, "%s ended without an answer (exit status %d)%s%s", h->who, exit_status,
	         n ? "; its last words: " : "", n ? (line ? line + 1 : tail) : "");
}

/* ---- the answer ------------------------------------------------------------ */

/* Fields of one line, split at tabs in place; -1 past PB_HELPER_FIELDS_MAX. */
static int split_fields(char *line, struct pb_helper_line *l)
{
	l->nfields = 0;
	for (char *f = line, *tab; f; f = tab) {
		if (l->nfields == PB_HELPER_FIELDS_MAX)
			return -1;
		tab = strchr(f, '\t');
		if (tab)
			*tab++ = '\0';
		l->field[l->nfields++] = f;
	}
	return 0;
}

int pb_helper_answer_decode(const char *buf, size_t len, bool allow_probes, struct pb_helper_answer *a)
{
	a->nprobes = 0;
	a->last.nfields = 0;
	if (len > PB_INSTALL_RESULT_MAX)
		return -EMSGSIZE;
	if (memchr(buf, '\0', len) || (len > 0 && buf[len - 1] != '\n'))
		return -EBADMSG;
	memcpy(a->text, buf, len);
	a->text[len] = '\0';
	for (char *line = a->text, *next; *line; line = next) {
		struct pb_helper_line l;

		next = strchr(line, '\n');
		*next++ = '\0';
		if (split_fields(line, &l) < 0)
			return -EBADMSG;
		if (allow_probes && l.nfields >= 2 && !strcmp(l.field[0], "probe")) {
			if (a->nprobes == PB_INSTALL_MAX_PROBES)
				return -EBADMSG;
			a->probe[a->nprobes++] = l;
			continue;
		}
		if (a->last.nfields)
			return -EBADMSG; /* one deciding line, no more */
		a->last = l;
	}
	return 0;
}

bool pb_helper_line_is(const struct pb_helper_line *l, const char *verb, unsigned nargs)
{
	return l->nfields == nargs + 1 && !strcmp(l->field[0], verb);
}

bool pb_helper_count(const char *s, unsigned long *out)
{
	size_t n = strspn(s, "0123456789");

	if (n == 0 || n > 9 || s[n] != '\0')
		return false;
	*out = strtoul(s, NULL, 10);
	return true;
}
