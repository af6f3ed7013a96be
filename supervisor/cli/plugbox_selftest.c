/* plugbox_selftest.c - `plugbox selftest`: prove, on the machine it runs on,
 * that a worker is contained, by attacking it for real.
 *
 * The probes are plugins (selftest/ in the source tree, installed under
 * PB_SELFTEST_DIR; $PLUGBOX_SELFTEST overrides): each attack(ctx) really
 * tries one escape and returns {"contained": bool, "how": text}. The
 * manifest selftest/probes.txt (trusted) gives each probe's layer and the
 * outcomes that count as contained.
 *
 * The runner gives the probes targets worth attacking: a world-readable
 * secret, a world-writable directory, loopback TCP and UDP listeners, a unix
 * and an abstract socket, a descriptor left open without close-on-exec, a
 * marker in its own memory, its own pid and a sibling plugin. It does not
 * take a probe's word alone: after each probe it looks at those targets
 * itself (a file in the directory? a connection or datagram? a SIGURG? the
 * secret in the probe's answer?) and asks the sibling, which must still be
 * the same process and answer "pong". Each probe runs under a supervisor of
 * its own, freed afterwards, so a probe's worker never outlives its line.
 * Only the public API is used, as a host program would use it.
 *
 * An operator adds probes of their own with --probes DIR (issue 24): a
 * DIR/probes.txt in the same format, each probe a plugin in DIR, run by the
 * same runner with the same evidence rules (and the built-in sibling);
 * --only-probes leaves the built-in battery out. --junit FILE and --tap
 * report one case per probe (cli/test_report.c).
 *
 * The manifest is read in selftest_manifest.c, the targets are made and
 * looked at in selftest_fixtures.c; this file runs the probes and judges.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/plugbox_cli.h"
#include "cli/selftest.h"
#include "cli/test_report.h"
#include "policy/policy.h"
#include "proto/names.h"
#include "toolkit/clock.h"
#include "toolkit/sanitize.h"

#ifndef PB_SELFTEST_DIR
#define PB_SELFTEST_DIR "/usr/local/share/plugbox/selftest"
#endif

/* What the probe being run printed last: its "[about to call X]" marker
 * explains a kill or a deadline that follows. */
struct capture {
	const char *plugin;
	char last[300];
	/* every line of the probe's, for "output" probes */
	unsigned long lines, bytes, drop_notes;
	char control[80]; /* the first line that held a control character, shown escaped */
};

/* A byte sequence a terminal would act on: C0 but tab, DEL, a C1 control
 * (U+0080..U+009F, two bytes in UTF-8), a bidi override or isolate.
 * Written here from the definitions, not with the sanitiser it checks. */
static bool has_control(const char *line)
{
	for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return true;
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return true;
		if (p[0] == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
		                     (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)))
			return true;
	}
	return false;
}

static void capture_output(void *data, const char *plugin, pb_stream stream, const char *line)
{
	struct capture *c = data;

	if (!c->plugin || !plugin || strcmp(plugin, c->plugin) != 0)
		return;
	if (stream == PB_STREAM_STDOUT)
		snprintf(c->last, sizeof(c->last), "%s", line);
	c->lines++;
	c->bytes += strlen(line);
	if (stream == PB_STREAM_SUPERVISOR && strstr(line, "dropped ") && strstr(line, " lines / "))
		c->drop_notes++;
	if (!c->control[0] && has_control(line))
		pb_sanitize(c->control, sizeof(c->control), line, strlen(line), 0);
}

/* ---- JSON ---------------------------------------------------------------- */

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/* A value as JSON text (malloc'd), or NULL. */
static char *value_text(const pb_value *v)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	if (pb_value_print_json(v, f) < 0) {
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	return text;
}

/* The ctx map every attack() gets. */
static pb_value *make_ctx(const struct fixtures *f, const char *sibling_dir, pid_t sibling_pid)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	const struct {
		const char *key, *value;
	} strings[] = {
		{ "secret", f->secret },
		{ "write_dir", f->write_dir },
		{ "sibling_dir", sibling_dir },
		{ "unix_path", f->unix_path },
		{ "abstract_name", f->abstract_name },
	};
	struct stat passwd = { 0 };
	pb_value *ctx;

	/* The host's /etc/passwd by identity: a worker may have one of its own. */
	if (!out)
		return NULL;
	stat("/etc/passwd", &passwd);
	fputc('{', out);
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		json_string(out, strings[i].key);
		fputc(':', out);
		json_string(out, strings[i].value);
		fputc(',', out);
	}
	fprintf(out, "\"supervisor_pid\":%d,\"sibling_pid\":%d,\"tcp_port\":%d,\"udp_port\":%d,\"connect_port\":%d,"
	             "\"marker_addr\":%llu,\"marker_len\":%zu,\"leaked_fd\":%d,\"passwd_id\":[%llu,%llu]}",
	        (int)getpid(), (int)sibling_pid, f->tcp_port, f->udp_port, f->tcp_ok_port,
	        (unsigned long long)(uintptr_t)pb_selftest_marker(), strlen(pb_selftest_marker()), f->leaked,
	        (unsigned long long)passwd.st_dev, (unsigned long long)passwd.st_ino);
	fclose(out);
	ctx = text ? pb_value_parse_json(text, NULL) : NULL;
	free(text);
	return ctx;
}

/* ---- running probes ------------------------------------------------------ */

struct run {
	const char *dir, *policies;
	double timeout;
	struct fixtures fx;
	char sibling_dir[PATH_MAX];
	pb_supervisor *sibling;
	pid_t sibling_pid;
	struct capture capture;
	int spawn; /* --spawn: how every worker starts, the sibling's too */
};

/* A supervisor over a probes directory, as `plugbox call` opens one. */
static pb_supervisor *open_supervisor(struct run *r, const char *dir, const char *policies, double timeout)
{
	/* No bytecode cache: the probes are attacks, and their directory may be
	 * the installed, read-only one. */
	struct pb_cli_options o = { .plugins = dir, .policies = policies, .timeout = timeout, .no_cache = true, .spawn = r->spawn };
	pb_supervisor *sup = pb_open_supervisor(&o);

	if (sup)
		pb_supervisor_set_output(sup, capture_output, &r->capture);
	return sup;
}

/* The probe's answer: {"contained": bool, "how": string}. */
static void judge_result(struct probe *p, const pb_value *result)
{
	const pb_value *how = pb_value_map_get(result, "how");
	char *contained = value_text(pb_value_map_get(result, "contained"));

	if (!how || !pb_value_get_string(how) || !contained ||
	    (strcmp(contained, "true") != 0 && strcmp(contained, "false") != 0)) {
		char *all = value_text(result);
		snprintf(p->how, sizeof(p->how), "the probe's answer is not {contained, how}: %.300s",
		         all ? all : "?");
		free(all);
	} else if (!(p->expect & (EXPECT_RESULT | EXPECT_LIMIT | EXPECT_OUTPUT))) {
		snprintf(p->how, sizeof(p->how), "the call returned, which it must not: %s", pb_value_get_string(how));
	} else {
		p->contained = !strcmp(contained, "true");
		snprintf(p->how, sizeof(p->how), "%s", pb_value_get_string(how));
	}
	free(contained);
}

/* A failed call: which errors are containment depends on EXPECT. */
static void judge_error(struct probe *p, const pb_error *err, const char *printed)
{
	const char *msg = pb_error_get_message(err);
	const char *lead = *printed ? printed : "", *sep = *printed ? " -> " : "";

	switch (pb_error_get_kind(err)) {
	case PB_ERROR_VIOLATION:
		p->contained = p->expect & EXPECT_KILLED;
		snprintf(p->how, sizeof(p->how), "%s%s%s", lead, sep, msg);
		break;
	case PB_ERROR_TIMEOUT:
		p->contained = p->expect & EXPECT_DEADLINE;
		snprintf(p->how, sizeof(p->how), "%s%sended at the deadline (%s)", lead, sep, msg);
		break;
	case PB_ERROR_CRASHED:
		/* A limit may end the worker (the kernel's SIGKILL, SIGXCPU). */
		p->contained = p->expect & EXPECT_LIMIT;
		snprintf(p->how, sizeof(p->how), "%s%sworker ended: %s", lead, sep, msg);
		break;
	case PB_ERROR_EXCEPTION:
		snprintf(p->how, sizeof(p->how), "the probe raised %s: %s", pb_error_get_type(err), msg);
		break;
	case PB_ERROR_UNAVAILABLE:
	case PB_ERROR_CONFIG:
		p->unavailable = true;
		snprintf(p->how, sizeof(p->how), "the worker could not start: %s", msg);
		break;
	default:
		snprintf(p->how, sizeof(p->how), "%s: %s", pb_error_kind_name(pb_error_get_kind(err)), msg);
		break;
	}
}

/* The sibling must answer "pong" and still be the same process: a killed
 * sibling would be restarted by the call and answer all the same. */
static bool sibling_check(struct run *r, char *why, size_t len)
{
	pb_value *result = NULL;
	pb_error *err = NULL;
	pid_t now;
	bool ok = false;
	size_t used = strlen(why);

	if (pb_call(r->sibling, "sibling", "ping", NULL, 0, &result, &err) < 0) {
		snprintf(why + used, len - used, "; the sibling did not answer: %s", pb_error_get_message(err));
		pb_error_free(err);
	} else if (!pb_value_get_string(result) || strcmp(pb_value_get_string(result), "pong") != 0) {
		snprintf(why + used, len - used, "; the sibling did not answer \"pong\"");
	} else {
		ok = true;
	}
	pb_value_destroy(result);
	now = pb_selftest_find_worker_pid("sibling");
	if (ok && r->sibling_pid > 0 && now != r->sibling_pid) {
		used = strlen(why);
		snprintf(why + used, len - used, "; the sibling's worker %d is gone (now %d)", (int)r->sibling_pid,
		         (int)now);
		ok = false;
	}
	r->sibling_pid = now;
	return ok;
}

/* An "output" probe: the runner counted what reached the output function
 * while the call ran; the probe's word only says that it flooded. */
static void judge_output(struct probe *p, const struct capture *c, double seconds, char *traces, size_t len)
{
	unsigned long bound = (unsigned long)((seconds + 1.0) * OUTPUT_LINES_PER_SECOND_PER_STREAM) *
	                              OUTPUT_STREAMS +
	                      64;
	size_t used = strlen(p->how);

	snprintf(p->how + used, sizeof(p->how) - used, "; %lu lines (%lu bytes) reached the host in %.1f s, "
	                                               "%lu drop notes",
	         c->lines, c->bytes, seconds, c->drop_notes);
	used = strlen(traces);
	if (c->lines > bound)
		snprintf(traces + used, len - used, "; %lu lines is more than the %lu a meter allows", c->lines, bound);
	else if (c->lines > OUTPUT_LINES_PER_SECOND_PER_STREAM * 2 && c->drop_notes == 0)
		snprintf(traces + used, len - used, "; lines were dropped without a note saying so");
	used = strlen(traces);
	if (c->control[0])
		snprintf(traces + used, len - used, "; a control character reached the host: %s", c->control);
}

/* A memory probe touches every page up to the limit, which takes time in
 * proportion to it (on a loaded 2-CPU machine 2 GiB took 5-9 s): its
 * deadline grows with the probe's @limit memory (or the address space when
 * memory is unlimited), so that the limit, not the deadline, stops it, and
 * an operator's larger limit still gets proved. No limit: no more time. */
#define MEMORY_TOUCHED_PER_SECOND (128.0 * 1024 * 1024)
static double probe_timeout(const struct run *r, const struct probe *p, const char *policies)
{
	struct pb_policy *pol = NULL;
	double extra = 0;

	if (strcmp(p->layer, "memory") != 0)
		return r->timeout;
	if (pb_policy_load(policies, p->name, NULL, NULL, &pol) == -ENOENT)
		pb_policy_load(policies, "default", NULL, NULL, &pol);
	if (pol) {
		uint64_t mem = pol->sandbox.limit[PB_LIMIT_MEMORY];
		if (mem == PB_LIMIT_UNLIMITED)
			mem = pol->sandbox.limit[PB_LIMIT_ADDRESS_SPACE];
		if (mem != PB_LIMIT_UNLIMITED)
			extra = (double)mem / MEMORY_TOUCHED_PER_SECOND;
		pb_policy_free(pol);
	}
	return r->timeout + extra;
}

/* How long a worker may take to start before its attack (under --spawn
 * zygote and shared-zygote that includes its zygote's import of the probe,
 * and the fork-server's start): the probe's deadline (--timeout) is for
 * the attack. Charged to the attack, and capping the zygote's import, a
 * start slowed by a loaded machine read "ended at the deadline", NOT
 * CONTAINED, for an attempt never made. (An exec'd worker imports its
 * plugin at its first call: that stays the attack's.) */
#define START_TIMEOUT 60.0

/* The probe's worker started, or left to the call to start (and report
 * why it cannot) when it does not: its attack then runs from its start. */
static void start_worker(pb_supervisor *sup, const char *plugin, double timeout)
{
	pb_value *info = NULL;
	pb_error *err = NULL;

	if (pb_describe(sup, plugin, &info, &err) < 0)
		pb_error_free(err);
	pb_value_destroy(info);
	pb_supervisor_set_timeout(sup, timeout);
}

static void run_probe(struct run *r, struct probe *p)
{
	/* connect_* probes: under @network connect to the runner's second
	 * listener (net_policies_make), attacking the first. */
	bool net = !strncmp(p->name, "connect_", 8);
	const char *env = getenv("PLUGBOX_POLICIES");
	const char *from = r->policies && *r->policies ? r->policies : env && *env ? env
	                                                                           : PB_POLICIES_DIR;
	pb_supervisor *sup = net && pb_selftest_net_policies(&r->fx, from) < 0
	                             ? NULL
	                             : open_supervisor(r, p->dir, net ? r->fx.net_policies : r->policies, START_TIMEOUT);
	pb_value *ctx = make_ctx(&r->fx, r->sibling_dir, r->sibling_pid), *result = NULL;
	pb_error *err = NULL;
	sig_atomic_t urgent_before = pb_selftest_urgent();
	char traces[HOW_MAX] = "";

	double started;

	if (sup)
		start_worker(sup, p->name, probe_timeout(r, p, from));
	started = pb_now();
	memset(&r->capture, 0, sizeof(r->capture));
	r->capture.plugin = p->name;
	if (!sup || !ctx) {
		snprintf(p->how, sizeof(p->how), "the runner could not set the probe up");
	} else if (pb_call(sup, p->name, "attack", &ctx, 1, &result, &err) == 0) {
		judge_result(p, result);
	} else {
		judge_error(p, err, r->capture.last);
	}
	pb_value_destroy(result);
	pb_error_free(err);
	pb_value_destroy(ctx);
	pb_supervisor_free(sup); /* the probe's worker ends here */
	r->capture.plugin = NULL;
	if ((p->expect & EXPECT_OUTPUT) && p->contained)
		judge_output(p, &r->capture, pb_now() - started, traces, sizeof(traces));

	/* The runner's own evidence overrules the probe's word. */
	pb_selftest_fixtures_check(&r->fx, urgent_before, traces, sizeof(traces));
	if (strstr(p->how, r->fx.token))
		snprintf(traces + strlen(traces), sizeof(traces) - strlen(traces), "; the answer holds the secret");
	p->sibling_ok = sibling_check(r, traces, sizeof(traces));
	if (traces[0]) {
		size_t used = strlen(p->how);
		p->contained = false;
		snprintf(p->how + used, sizeof(p->how) - used, " [runner: %s]", traces + 2);
	}
	/* One line of output whatever the probe wrote. */
	pb_sanitize_inplace(p->how, sizeof(p->how), 0);
}

/* ---- output -------------------------------------------------------------- */

/* The worker says what its layers are; a list of strings, or "?". */
static const char *layer_text(const pb_value *layers, size_t i)
{
	const char *s = pb_value_get_string(pb_value_list_get(layers, i));
	return s ? s : "?";
}

static void print_text_line(const struct probe *p)
{
	printf("%-12s  %-26s  %-13s  %s: %s\n", p->layer, p->name, p->contained ? "contained" : "NOT CONTAINED",
	       p->attempt, p->how);
	fflush(stdout);
}

static void print_json(const pb_value *layers, const struct probe *probes, int n, int contained)
{
	fputs("{\"layers\":[", stdout);
	for (size_t i = 0; i < pb_value_list_length(layers); i++) {
		if (i)
			fputc(',', stdout);
		json_string(stdout, layer_text(layers, i));
	}
	fputs("],\"probes\":[", stdout);
	for (int i = 0; i < n; i++) {
		const struct probe *p = &probes[i];
		const char *keys[] = { "name", "layer", "attempt", "how" };
		const char *values[] = { p->name, p->layer, p->attempt, p->how };
		fputs(i ? ",{" : "{", stdout);
		for (size_t k = 0; k < 4; k++) {
			json_string(stdout, keys[k]);
			fputc(':', stdout);
			json_string(stdout, values[k]);
			fputc(',', stdout);
		}
		printf("\"contained\":%s,\"sibling_ok\":%s}", p->contained ? "true" : "false",
		       p->sibling_ok ? "true" : "false");
	}
	printf("],\"contained\":%d,\"not_contained\":%d}\n", contained, n - contained);
}

/* ---- the command --------------------------------------------------------- */

/* What selftest takes beside the common options. */
struct selftest_args {
	bool json, tap, only_probes;
	const char *junit;  /* --junit FILE */
	const char *probes; /* --probes DIR */
};

/* --junit FILE, --tap, --probes DIR and --only-probes are taken out of
 * argv (also as --opt=VALUE); the rest goes to pb_parse_options. */
static int parse_args(int argc, char **argv, struct run *r, struct selftest_args *a)
{
	static const struct {
		const char *name;
		bool value;
	} own[] = {
		{ "--junit", true },
		{ "--tap", false },
		{ "--probes", true },
		{ "--only-probes", false },
	};
	struct pb_cli_options o;
	char **rest = calloc((size_t)argc + 1, sizeof(char *));
	int nrest = 0, code;

	if (!rest) {
		fprintf(stderr, "plugbox: out of memory\n");
		return PB_EXIT_USAGE;
	}
	for (int i = 0; i < argc; i++) {
		size_t k = 0, len = 0;
		const char *value = NULL;
		while (k < sizeof(own) / sizeof(own[0])) {
			len = strlen(own[k].name);
			if (i > 0 && !strncmp(argv[i], own[k].name, len) && (!argv[i][len] || (own[k].value && argv[i][len] == '=')))
				break;
			k++;
		}
		if (k == sizeof(own) / sizeof(own[0])) {
			rest[nrest++] = argv[i];
			continue;
		}
		if (own[k].value) {
			value = argv[i][len] == '=' ? argv[i] + len + 1 : i + 1 < argc ? argv[++i]
			                                                               : NULL;
			if (!value || !*value) {
				free(rest);
				return pb_usage_error("option %s needs a value", own[k].name);
			}
		}
		switch (k) {
		case 0: a->junit = value; break;
		case 1: a->tap = true; break;
		case 2: a->probes = value; break;
		default: a->only_probes = true; break;
		}
	}
	code = pb_parse_options(nrest, rest, PB_OPT_POLICIES | PB_OPT_TIMEOUT | PB_OPT_JSON | PB_OPT_SPAWN, &o);
	if (code < 0 && optind != nrest)
		code = pb_usage_error("unexpected argument '%s'", rest[optind]);
	free(rest);
	if (code >= 0)
		return code;
	if (a->only_probes && !a->probes)
		return pb_usage_error("--only-probes needs --probes DIR%s", "");
	if (o.json && a->tap)
		return pb_usage_error("--json and --tap both write standard output: choose one%s", "");
	r->policies = o.policies;
	r->spawn = o.spawn;
	if (o.timeout_given)
		r->timeout = o.timeout;
	a->json = o.json;
	return -1;
}

/* One case per probe: failed when not contained, with the attempt and the
 * evidence (the probe's answer or its end, the runner's own findings, the
 * sibling). */
static void report_probe(struct pb_test_report *rep, const struct probe *p)
{
	char klass[64], name[128], msg[HOW_MAX + 400], detail[HOW_MAX + 400];

	snprintf(klass, sizeof(klass), "%s.%s", p->operator? "probes" : "selftest", p->layer);
	snprintf(name, sizeof(name), "%s", p->name);
	snprintf(detail, sizeof(detail), "attempt: %s\noutcome: %s\nsibling: %s", p->attempt, p->how,
	         p->sibling_ok ? "answered, same process" : "did not answer as the same process");
	if (p->contained) {
		pb_test_report_add_in(rep, klass, name, PB_CASE_PASSED, NULL, detail);
		return;
	}
	snprintf(msg, sizeof(msg), "NOT CONTAINED: %s: %s", p->attempt, p->how);
	pb_test_report_add_in(rep, klass, name, PB_CASE_FAILED, msg, detail);
}

/* Start the sibling (its layers are what every worker gets). The exit code
 * if it cannot start, else -1. */
static int start_sibling(struct run *r, pb_value **layers)
{
	pb_value *info = NULL;
	pb_error *err = NULL;
	int code;

	r->sibling = open_supervisor(r, r->dir, r->policies, START_TIMEOUT);
	if (!r->sibling)
		return PB_EXIT_USAGE;
	if (pb_describe(r->sibling, "sibling", &info, &err) == 0) {
		pb_supervisor_set_timeout(r->sibling, r->timeout);
		/* keep only the layers: a copy through JSON, as the API offers no other */
		char *text = value_text(pb_value_map_get(info, "layers"));
		*layers = text ? pb_value_parse_json(text, NULL) : NULL;
		free(text);
		pb_value_destroy(info);
		r->sibling_pid = pb_selftest_find_worker_pid("sibling");
		return *layers ? -1 : PB_EXIT_WORKER;
	}
	code = pb_error_get_kind(err) == PB_ERROR_CONFIG ? PB_EXIT_USAGE : PB_EXIT_WORKER;
	char *why = pb_sanitize_dup(pb_error_get_message(err), 0);
	fprintf(stderr, "plugbox: selftest: %s\n", why ? why : "?");
	free(why);
	pb_error_free(err);
	return code;
}

int pb_cmd_selftest(int argc, char **argv)
{
	static struct probe probes[MAX_PROBES];
	struct run r = { .timeout = DEFAULT_TIMEOUT, .sibling_pid = -1 };
	struct selftest_args args = { 0 };
	const char *env = getenv("PLUGBOX_SELFTEST"), *step = "";
	pb_value *layers = NULL;
	struct pb_test_report *rep = NULL;
	static char dir[PATH_MAX], operator_dir[PATH_MAX];
	bool unavailable = false, text;
	int code = parse_args(argc, argv, &r, &args), n = 0, contained = 0;

	if (code >= 0)
		return code;
	text = !args.json && !args.tap;
	r.dir = env && *env ? env : PB_SELFTEST_DIR;
	if (!realpath(r.dir, dir)) {
		fprintf(stderr, "plugbox: selftest: probes directory %s: %s\n", r.dir, strerror(errno));
		return PB_EXIT_USAGE;
	}
	r.dir = dir;
	if (!args.only_probes && (n = pb_selftest_load_manifest(dir, probes, 0, false)) < 0)
		return PB_EXIT_USAGE;
	if (args.probes) {
		if (!realpath(args.probes, operator_dir)) {
			fprintf(stderr, "plugbox: selftest: --probes %s: %s\n", args.probes, strerror(errno));
			return PB_EXIT_USAGE;
		}
		if ((n = pb_selftest_load_manifest(operator_dir, probes, n, true)) < 0)
			return PB_EXIT_USAGE;
	}
	if (snprintf(r.sibling_dir, sizeof(r.sibling_dir), "%s/sibling", dir) >= (int)sizeof(r.sibling_dir)) {
		fprintf(stderr, "plugbox: selftest: probes directory %s: %s\n", dir, strerror(ENAMETOOLONG));
		return PB_EXIT_USAGE;
	}
	if ((args.junit || args.tap) && !(rep = pb_test_report_new("plugbox selftest", "selftest"))) {
		fprintf(stderr, "plugbox: out of memory\n");
		return PB_EXIT_WORKER;
	}
	pb_selftest_count_sigurg();
	if (pb_selftest_fixtures_open(&r.fx, &step) < 0) {
		fprintf(stderr, "plugbox: selftest: cannot make the fixtures (%s): %s\n", step, strerror(errno));
		pb_selftest_fixtures_close(&r.fx);
		pb_test_report_free(rep);
		return PB_EXIT_WORKER;
	}
	code = start_sibling(&r, &layers);
	if (code >= 0)
		goto out;

	if (text) {
		/* each layer describes itself ("landlock: ABI 7: ..."): one a line */
		puts("layers:");
		for (size_t i = 0; i < pb_value_list_length(layers); i++) {
			char shown[512];
			const char *t = layer_text(layers, i);
			pb_sanitize(shown, sizeof(shown), t, strlen(t), 0);
			printf("  %s\n", shown);
		}
		puts("probes:");
	}
	for (int i = 0; i < n; i++) {
		run_probe(&r, &probes[i]);
		contained += probes[i].contained;
		unavailable |= probes[i].unavailable;
		if (text)
			print_text_line(&probes[i]);
		if (rep)
			report_probe(rep, &probes[i]);
	}
	if (args.json)
		print_json(layers, probes, n, contained);
	else if (args.tap)
		pb_test_report_tap(rep, stdout);
	else
		printf("%d probes: %d contained, %d NOT CONTAINED\n", n, contained, n - contained);
	code = unavailable ? PB_EXIT_WORKER : contained == n ? PB_EXIT_OK
	                                                     : EXIT_NOT_CONTAINED;
	if (args.junit && pb_test_report_junit(rep, args.junit) < 0)
		code = PB_EXIT_WORKER;
	if (fflush(stdout) != 0)
		code = PB_EXIT_WORKER;
out:
	pb_test_report_free(rep);
	pb_value_destroy(layers);
	pb_supervisor_free(r.sibling);
	pb_selftest_fixtures_close(&r.fx);
	return code;
}
