/* install_run.c - run one install worker and judge what it says.
 *
 * The worker handles the untrusted bytes, so everything it sends is
 * hostile here, as on a plugin's channel. helper_run.c runs it (bounded
 * reads, install.policy's @limit call-time, reaping) and decodes its answer
 * into the few tab-separated lines of install.h; this file judges what the
 * deciding line claims. Whether the sandbox killed it is the
 * kernel's verdict (death by SIGSYS), not the worker's claim; the report
 * only names the syscall, and the rule comes from the operator's policy.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/helper_run.h"
#include "policy/policy.h"
#include "proto/install.h"
#include "proto/names.h"
#include "toolkit/sanitize.h"

/* An installed plugin's version is one token of printable ASCII (it names
 * the plugin in `plugbox list`'s columns and in messages): a format rule,
 * not a sanitiser, so anything else becomes '?'. */
static void version_token(char *v)
{
	for (; *v; v++)
		if (*v <= ' ' || *v >= 0x7f)
			*v = '?';
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

static void name_violation(const struct pb_install_job *job, const struct pb_helper *h,
                           struct pb_install_result *res)
{
	char call[256], rule[512] = "", where[300];
	struct pb_action action;
	bool own_pidns = true;

	if (!h->have_violation) {
		set_message(res, PB_INSTALL_KILLED, "the sandbox killed the unpacker (SIGSYS; it sent no report)");
		return;
	}
	for (size_t i = 0; i < h->w.nlayers; i++)
		if (!strncmp(h->w.layers[i], "namespaces: none", 16))
			own_pidns = false;
	pb_format_syscall(h->nr, h->arch, h->args, call, sizeof(call));
	if (!pb_native_arch(h->arch, h->nr)) {
		snprintf(rule, sizeof(rule), "'kill what is not a native syscall' (plugbox's built-in guard)");
	} else {
		const struct pb_entry *e = pb_policy_match(job->policy, h->nr, h->args, own_pidns ? 1 : h->w.pid,
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

void pb_install_judge(const struct pb_helper_answer *a, const struct pb_install_job *job, int exit_status,
                      struct pb_install_result *res)
{
	const struct pb_helper_line *l = &a->last;
	const char *const *f = l->field;
	unsigned long ignored;

	if (pb_helper_line_is(l, "refused", 1)) {
		set_message(res, PB_INSTALL_REFUSED, "%s", *f[1] ? f[1] : "the unpacker refused without saying why");
	} else if (pb_helper_line_is(l, "failed", 1)) {
		set_message(res, PB_INSTALL_FAILED, "%s", *f[1] ? f[1] : "the unpacker failed without saying why");
	} else if (exit_status != 0) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker claimed success but exited with status %d",
		            exit_status);
	} else if (pb_helper_line_is(l, "version", 1) && !strcmp(job->mode, "version") &&
	           strlen(f[1]) < sizeof(res->version)) {
		snprintf(res->version, sizeof(res->version), "%s", f[1]);
		pb_sanitize_inplace(res->version, sizeof(res->version), 0);
		res->status = PB_INSTALL_OK;
	} else if (pb_helper_line_is(l, "ok", 3) && strcmp(job->mode, "version") != 0 &&
	           pb_valid_plugin_name(f[1]) && (!job->name || !strcmp(job->name, f[1])) &&
	           strlen(f[2]) < sizeof(res->version) && pb_helper_count(f[3], &ignored)) {
		snprintf(res->name, sizeof(res->name), "%s", f[1]);
		snprintf(res->version, sizeof(res->version), "%s", f[2]);
		version_token(res->version);
		res->ignored = ignored;
		res->status = PB_INSTALL_OK;
	} else {
		set_message(res, PB_INSTALL_FAILED, "the unpacker sent a malformed answer");
	}
}

/* The answer: probe lines (tests only) go to stderr; the last line decides. */
static void judge_answer(const struct pb_helper *h, const struct pb_install_job *job, bool asked_probes,
                         int exit_status, struct pb_install_result *res)
{
	struct pb_helper_answer *a = malloc(sizeof(*a));

	if (!a) {
		set_message(res, PB_INSTALL_FAILED, "out of memory");
		return;
	}
	if (pb_helper_answer_decode(h->answer, h->answer_len, asked_probes, a) < 0) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker sent a malformed answer");
	} else {
		for (unsigned i = 0; i < a->nprobes; i++) {
			char spec[PB_INSTALL_RESULT_MAX + 1], outcome[PB_INSTALL_RESULT_MAX + 1];
			snprintf(spec, sizeof(spec), "%s", a->probe[i].field[1]);
			snprintf(outcome, sizeof(outcome), "%s", a->probe[i].nfields > 2 ? a->probe[i].field[2] : "?");
			pb_sanitize_inplace(spec, sizeof(spec), 0);
			pb_sanitize_inplace(outcome, sizeof(outcome), 0);
			fprintf(stderr, "plugbox: install probe %s: %s\n", spec, outcome);
		}
		if (a->last.nfields == 0) {
			char why[sizeof(res->message)];
			pb_helper_no_answer(h, exit_status, why, sizeof(why));
			set_message(res, PB_INSTALL_FAILED, "%s", why);
		} else {
			pb_install_judge(a, job, exit_status, res);
		}
	}
	free(a);
}

/* The worker's command line beyond its trees: the limits (install.h), the
 * name, and test probes. Strings live in `store`. */
static size_t worker_args(const struct pb_install_job *job, char *store, size_t store_len, char **args,
                          char **probes_copy, bool *asked_probes)
{
	const struct {
		const char *key;
		unsigned long long v;
	} limits[] = {
		{ "bytes", PB_INSTALL_MAX_BYTES },
		{ "files", PB_INSTALL_MAX_FILES },
		{ "file_size", job->policy->sandbox.limit[PB_LIMIT_FILE_SIZE] == PB_LIMIT_UNLIMITED
		                       ? PB_INSTALL_MAX_BYTES
		                       : job->policy->sandbox.limit[PB_LIMIT_FILE_SIZE] },
		{ "ratio", PB_INSTALL_MAX_RATIO },
		{ "ratio_floor", PB_INSTALL_RATIO_FLOOR },
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
	if (job->source_id) {
		args[n++] = "--source-id";
		args[n++] = (char *)job->source_id;
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
	struct pb_helper *h = malloc(sizeof(*h));
	bool asked_probes;
	int exit_status;

	memset(res, 0, sizeof(*res));
	if (!h) {
		set_message(res, PB_INSTALL_FAILED, "out of memory");
		return;
	}
	pb_helper_init(h, "the unpacker", "install.policy");
	worker_args(job, store, sizeof(store), args, &probes, &asked_probes);
	const struct pb_install_spec spec = {
		.mode = job->mode,
		.input_fd = job->input_fd,
		.staging = job->staging,
		.source = job->source,
		.old = job->old,
		.args = args,
	};
	if (pb_helper_spawn(h, job->worker_path, job->policy, &spec, job->uid, job->gid, why, sizeof(why)) < 0) {
		set_message(res, PB_INSTALL_FAILED, "the unpacker could not be started: %s", why);
	} else {
		pb_helper_wait(h);
		switch (pb_helper_end(h, &exit_status, why, sizeof(why))) {
		case PB_HELPER_SECCOMP:
			name_violation(job, h, res);
			break;
		case PB_HELPER_EXITED:
			judge_answer(h, job, asked_probes, exit_status, res);
			break;
		default:
			set_message(res, PB_INSTALL_FAILED, "%s", why);
		}
	}
	pb_helper_free(h);
	free(probes);
	free(h);
}
