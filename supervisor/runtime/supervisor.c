/* supervisor.c - libplugbox's public API: a supervisor over a plugins
 * directory, its settings, the plugins it finds, and the synchronous calls
 * (pb_call, pb_describe), which start a call and run the loop until it ends.
 *
 * Calls and the workers' lifecycle are runtime.c's; how a worker's bytes
 * are read and judged is channel.c's (the trust boundary).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/cache_build.h"
#include "runtime/cache.h"
#include "jail/forkserver.h"
#include "jail/zygote.h"
#include "policy/policy_cache.h"
#include "runtime/cache.h"
#include "runtime/changes.h"
#include "runtime/discover.h"
#include "runtime/error.h"
#include "runtime/hostcall.h"
#include "runtime/lifecycle.h"
#include "runtime/loop.h"
#include "runtime/process.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"
#include "runtime/watch.h"
#include "proto/value.h"
#include "toolkit/sanitize.h"
#include "toolkit/sink.h"

void pb_set_message(pb_supervisor *s, const char *fmt, ...)
{
	va_list ap;
	/* It may quote a name a host or client gave (a hook's group): a cut
	 * keeps characters whole, the message must stay UTF-8. */
	va_start(ap, fmt);
	pb_utf8_vformat(s->message, sizeof(s->message), fmt, ap);
	va_end(ap);
}

/* Registers the sink for EPOLLOUT while lines wait, and drops it after:
 * level-triggered, a writable stderr would otherwise wake every round. */
static void sink_watch(pb_supervisor *s, bool want)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &s->sink_source };

	if (want == s->sink_watched || s->epoll_fd < 0)
		return;
	s->sink_source.kind = SRC_SINK;
	s->sink_source.proc = NULL;
	if (epoll_ctl(s->epoll_fd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, pb_stderr_fd(), &ev) == 0 || !want)
		s->sink_watched = want;
}

void pb_supervisor_sink_event(pb_supervisor *s)
{
	sink_watch(s, pb_stderr_flush());
}

/* The default output: stderr, through a bounded queue that never blocks
 * the loop (toolkit/sink.c). The lines are sanitised already. */
static void default_output(void *data, const char *plugin, pb_stream stream, const char *line)
{
	pb_supervisor *s = data;
	char text[LINE_MAX_BYTES * 2 + 600];

	if (stream == PB_STREAM_SUPERVISOR)
		snprintf(text, sizeof(text), "plugbox: plugin '%s': %s", plugin, line);
	else
		snprintf(text, sizeof(text), "[%s] %s", plugin, line);
	pb_stderr_line(text);
	sink_watch(s, pb_stderr_flush());
}

void pb_supervisor_flush_output(pb_supervisor *s, double seconds)
{
	pb_stderr_drain(seconds);
	if (s)
		sink_watch(s, pb_stderr_flush());
}

/* ---- policies ------------------------------------------------------------- */

struct diag_buffer {
	char *buf;
	size_t len;
	bool have_error;
};

/* Keep the first error; warnings go to the output as supervisor notes. */
static void keep_first_error(void *data, bool is_error, const char *line)
{
	struct diag_buffer *d = data;
	if (is_error && !d->have_error) {
		snprintf(d->buf, d->len, "%s", line);
		d->have_error = true;
	}
}

int pb_load_plugin_policy(pb_supervisor *s, const char *name, struct pb_policy **out,
                          char *why, size_t why_len)
{
	struct diag_buffer d = { why, why_len, false };
	char path[4096];
	const char *policy = name;
	int r;

	if (snprintf(path, sizeof(path), "%s/%s.policy", s->policies_dir, name) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	/* Learn mode finds what a call needs beyond default. install.policy
	 * is the unpacker's (plugbox install) and compile.policy the bytecode
	 * compiler's, which may write: a plugin that happens to be called
	 * "install" or "compile" never gets them. */
	if (s->mode == PB_COMPILE_LEARN || !strcmp(name, "install") || !strcmp(name, "compile") ||
	    access(path, F_OK) < 0)
		policy = "default";
	/* Kept from the last start while its files are unchanged (an edit
	 * takes effect at the next start, as before). */
	if (!s->policy_cache)
		s->policy_cache = pb_policy_cache_new();
	if (s->policy_cache)
		r = pb_policy_cache_load(s->policy_cache, s->policies_dir, policy, keep_first_error, &d, out);
	else
		r = pb_policy_load(s->policies_dir, policy, keep_first_error, &d, out);
	if (r < 0 && !d.have_error)
		snprintf(why, why_len, "%s/%s.policy: %s", s->policies_dir, policy, strerror(-r));
	return r;
}

/* ---- public API --------------------------------------------------------- */

PB_API int pb_supervisor_new(const char *plugins_dir, pb_supervisor **out)
{
	pb_supervisor *s;
	const char *worker = getenv("PLUGBOX_WORKER");
	char *real;

	*out = NULL;
	real = realpath(plugins_dir, NULL);
	if (!real)
		return -errno;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->worker_path = strdup(worker && *worker ? worker : PB_WORKER_PATH))) {
		free(s);
		free(real);
		return -ENOMEM;
	}
	s->plugins_dir = real;
	s->timeout = 60;
	s->output = default_output;
	s->output_data = s;
	s->max_crashes = 5;
	s->max_replicas = PB_REPLICAS_DEFAULT_CAP;
	s->crash_window = 60;
	s->backoff = 0.1;
	s->backoff_max = 10;
	s->epoll_fd = s->timer_fd = s->wake_fd = s->watch_fd = s->uid_lock_fd = -1;
	const char *policies = getenv("PLUGBOX_POLICIES");
	s->policies_dir = strdup(policies && *policies ? policies : PB_POLICIES_DIR);
	if (!s->policies_dir) {
		pb_supervisor_free(s);
		return -ENOMEM;
	}
	int r = pb_loop_init(s);
	if (r == 0)
		r = pb_watch_init(s);
	if (r == 0)
		r = pb_changes_init(s);
	if (r < 0) {
		pb_supervisor_free(s);
		return r;
	}
	*out = s;
	return 0;
}

PB_API void pb_supervisor_free(pb_supervisor *s)
{
	if (!s)
		return;
	/* Every call still gets its answer, and every worker is reaped. */
	if (s->epoll_fd >= 0) {
		pb_supervisor_shutdown(s, 0);
		/* No grace: the calls in flight end now, as unavailable, before
		 * an answer still on its way is read (a plugin may answer at
		 * once when its unanswered host call fails). */
		pb_runtime_tick(s, pb_now());
		while (!pb_supervisor_finished(s))
			if (pb_supervisor_dispatch(s, 100) < 0)
				break;
	}
	if (s->output == default_output) {
		/* What was queued for stderr gets a second to leave. */
		sink_watch(s, false);
		pb_stderr_drain(1.0);
	}
	pb_runtime_free(s);
	pb_cache_free(s);
	pb_discover_free(s);
	pb_watch_free(s);
	pb_policy_cache_free(s->policy_cache);
	pb_changes_free(s);
	pb_loop_free(s);
	pb_host_functions_free(s);
	free(s->plugins_dir);
	free(s->worker_path);
	free(s->policies_dir);
	free(s->cache_dir);
	pb_forkserver_stop(s->forkserver);
	/* Every worker is reaped: the uids may go to another supervisor. */
	if (s->uid_lock_fd >= 0)
		close(s->uid_lock_fd);
	free(s->learned);
	free(s);
}

PB_API int pb_supervisor_set_restart(pb_supervisor *s, unsigned max_crashes, double window,
                                     double backoff, double backoff_max)
{
	if (max_crashes < 1 || max_crashes > 32 || !(window > 0) || !(backoff >= 0) || !(backoff_max >= backoff)) {
		pb_set_message(s, "restart settings: 1 to 32 crashes, a window over 0 s, 0 <= backoff <= backoff_max");
		return -EINVAL;
	}
	s->max_crashes = max_crashes;
	s->crash_window = window;
	s->backoff = backoff;
	s->backoff_max = backoff_max;
	return 0;
}

PB_API int pb_supervisor_set_max_replicas(pb_supervisor *s, unsigned n)
{
	if (n < 1 || n > PB_REPLICAS_MAX) {
		pb_set_message(s, "the most replicas a plugin may have must be 1 to %u, not %u", PB_REPLICAS_MAX, n);
		return -EINVAL;
	}
	s->max_replicas = n;
	return 0;
}

PB_API int pb_supervisor_set_spawn_mode(pb_supervisor *s, pb_spawn_mode mode)
{
	if (mode != PB_SPAWN_EXEC && mode != PB_SPAWN_FORK_SERVER && mode != PB_SPAWN_ZYGOTE &&
	    mode != PB_SPAWN_SHARED_ZYGOTE) {
		pb_set_message(s, "unknown spawn mode %d", (int)mode);
		return -EINVAL;
	}
	s->spawn_mode = mode;
	return 0;
}

/* The fork-server, started at first use; NULL once it was refused (said
 * once: the same binary would refuse again at every start). In
 * shared-zygote mode it clones the plugins' zygotes; their fallback
 * workers stay exec'd. */
static struct pb_forkserver *forkserver(pb_supervisor *s, const char *plugin)
{
	char why[256], line[400];

	if (s->forkserver_refused)
		return NULL;
	if (s->forkserver && !pb_forkserver_alive(s->forkserver)) {
		pb_forkserver_stop(s->forkserver);
		s->forkserver = NULL;
	}
	if (!s->forkserver && pb_forkserver_start(s->worker_path, pb_supervisor_zygote_mode(s), &s->forkserver, why, sizeof(why)) < 0) {
		/* Exec is the slower and safer way: say so once, and go on with it. */
		snprintf(line, sizeof(line), "%s; starting %s with exec from now on", why,
		         pb_supervisor_zygote_mode(s) ? "zygotes" : "workers");
		s->output(s->output_data, plugin, PB_STREAM_SUPERVISOR, line);
		s->forkserver = NULL;
		s->forkserver_refused = true;
	}
	return s->forkserver;
}

bool pb_supervisor_zygote_mode(const pb_supervisor *s)
{
	return s->spawn_mode == PB_SPAWN_ZYGOTE || s->spawn_mode == PB_SPAWN_SHARED_ZYGOTE;
}

struct pb_forkserver *pb_supervisor_forkserver(pb_supervisor *s, const char *plugin)
{
	return s->spawn_mode == PB_SPAWN_FORK_SERVER ? forkserver(s, plugin) : NULL;
}

/* The zygote could not start or import: its workers start as exec'd ones,
 * said once. The exec'd worker reports an import error as it always does. */
static void refuse_zygote(pb_supervisor *s, struct plugin *p, const char *why)
{
	char line[700];

	snprintf(line, sizeof(line), "plugin '%s': %s; starting workers with exec from now on", p->name, why);
	s->output(s->output_data, p->name, PB_STREAM_SUPERVISOR, line);
	pb_zygote_stop(p->zygote);
	p->zygote = NULL;
	p->zygote_refused = true;
}

int pb_supervisor_zygote(pb_supervisor *s, struct plugin *p, const char *dir, const char *cache,
                         const struct pb_policy *policy, struct pb_zygote **out)
{
	char why[512];
	/* The import runs while the loop serves the other plugins; a plugin
	 * whose import takes longer than PB_ZYGOTE_START_MS (or the
	 * supervisor's timeout), or hangs, has its workers exec'd. */
	int timeout_ms = s->timeout > 0 && s->timeout * 1000 < PB_ZYGOTE_START_MS ? (int)(s->timeout * 1000)
	                                                                          : PB_ZYGOTE_START_MS;
	int r = 0;

	*out = NULL;
	/* Learn mode logs what a worker does: a zygote's workers could not.
	 * Nor can they connect under @network connect (the zygote's own
	 * filter, which its children keep, refuses their sockets): those
	 * workers are exec'd. */
	if (!pb_supervisor_zygote_mode(s) || p->zygote_refused || s->mode != PB_COMPILE_ENFORCE ||
	    policy->sandbox.network == PB_NETWORK_CONNECT)
		return 0;
	if (p->zygote && !pb_zygote_alive(p->zygote)) {
		/* Killed or broken: a new one for this start. */
		pb_zygote_stop(p->zygote);
		p->zygote = NULL;
	}
	/* Only where the zygote comes from differs between the two modes:
	 * exec'd, with an address layout and hash secret of its own (one
	 * plugin's), or cloned from the fork-server (every plugin's). */
	if (!p->zygote &&
	    (r = pb_zygote_start(s->spawn_mode == PB_SPAWN_SHARED_ZYGOTE ? forkserver(s, p->name) : NULL, s->worker_path, p->name, dir, cache, policy, p->uid,
	                         (gid_t)p->uid, timeout_ms, &p->zygote, why, sizeof(why))) == 1) {
		/* Exec'd instead of cloned: it works as well, but holds an
		 * interpreter of its own (the memory shared-zygote saves). */
		char line[700];
		snprintf(line, sizeof(line), "plugin '%s': %s; its zygote is exec'd instead of cloned from the fork-server",
		         p->name, why);
		s->output(s->output_data, p->name, PB_STREAM_SUPERVISOR, line);
		r = 0;
	}
	if (r == 0 && (r = pb_zygote_ready(p->zygote, why, sizeof(why))) == 0)
		return -EINPROGRESS;
	if (r < 0) {
		refuse_zygote(s, p, why);
		return 0;
	}
	*out = p->zygote;
	return 0;
}

bool pb_supervisor_zygote_importing(pb_supervisor *s, struct plugin *p)
{
	char why[512];
	int r;

	if (!p->zygote)
		return false;
	r = pb_zygote_ready(p->zygote, why, sizeof(why));
	if (r < 0)
		refuse_zygote(s, p, why);
	return r == 0;
}

PB_API int pb_supervisor_set_bytecode_cache(pb_supervisor *s, const char *dir)
{
	char *copy = NULL;

	if (dir && dir[0] != '/') {
		pb_set_message(s, "the bytecode cache %s is not an absolute path", dir);
		return -EINVAL;
	}
	if (dir && !(copy = strdup(dir)))
		return -ENOMEM;
	free(s->cache_dir);
	s->cache_dir = copy;
	s->cache_chosen = true;
	return 0;
}

PB_API int pb_supervisor_plugin_pid(pb_supervisor *s, const char *plugin)
{
	for (size_t i = 0; plugin && i < s->nplugins; i++)
		if (!strcmp(s->plugins[i]->name, plugin))
			return s->plugins[i]->nworkers ? (int)s->plugins[i]->workers[0]->proc.pid : -1; /* the oldest replica */
	return -1;
}

PB_API int pb_supervisor_set_policies(pb_supervisor *s, const char *dir)
{
	struct stat st;
	char *p;

	if (stat(dir, &st) < 0) {
		pb_set_message(s, "policies directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		pb_set_message(s, "policies directory %s: not a directory", dir);
		return -ENOTDIR;
	}
	p = realpath(dir, NULL);
	if (!p)
		return -errno;
	free(s->policies_dir);
	s->policies_dir = p;
	return 0;
}

PB_API int pb_supervisor_set_worker(pb_supervisor *s, const char *path)
{
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	free(s->worker_path);
	s->worker_path = p;
	return 0;
}

PB_API int pb_supervisor_set_timeout(pb_supervisor *s, double seconds)
{
	if (!(seconds >= 0) || seconds > 86400.0 * 365) {
		pb_set_message(s, "timeout must be between 0 and one year, not %g", seconds);
		return -EINVAL;
	}
	s->timeout = seconds;
	return 0;
}

PB_API void pb_supervisor_set_output(pb_supervisor *s, pb_output_fn fn, void *userdata)
{
	s->output = fn ? fn : default_output;
	s->output_data = fn ? userdata : s;
}

PB_API void pb_supervisor_set_call_output(pb_supervisor *s, pb_call_output_fn fn, void *userdata)
{
	s->call_output = fn;
	s->call_output_data = userdata;
}

PB_API void pb_supervisor_set_log(pb_supervisor *s, pb_log_fn fn, void *userdata)
{
	s->log = fn;
	s->log_data = userdata;
}

PB_API const char *pb_supervisor_strerror(const pb_supervisor *s)
{
	return s->message;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

PB_API void pb_strv_free(char **v, size_t count)
{
	for (size_t i = 0; v && i < count; i++)
		free(v[i]);
	free(v);
}

PB_API int pb_supervisor_plugins(pb_supervisor *s, char ***names, size_t *count)
{
	DIR *d = opendir(s->plugins_dir);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;

	*names = NULL;
	*count = 0;
	if (!d) {
		int r = -errno;
		pb_set_message(s, "cannot read %s: %s", s->plugins_dir, strerror(errno));
		return r;
	}
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (!pb_valid_plugin_name(e->d_name)) {
			char name[sizeof(e->d_name) * PB_SAN_EXPANSION], line[1200];
			/* Whoever put it there must not reach the terminal through it. */
			pb_sanitize(name, sizeof(name), e->d_name, strlen(e->d_name), 0);
			snprintf(line, sizeof(line), "skipping '%s' in %s: not a plugin name ([A-Za-z0-9_-]+)",
			         name, s->plugins_dir);
			s->output(s->output_data, "-", PB_STREAM_SUPERVISOR, line);
			continue;
		}
		char **grown = realloc(v, (n + 1) * sizeof(*v));
		if (!grown || !(grown[n] = strdup(e->d_name))) {
			if (grown)
				v = grown;
			closedir(d);
			pb_strv_free(v, n);
			return -ENOMEM;
		}
		v = grown;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_str);
	*names = v;
	*count = n;
	return 0;
}

static Plugbox__Value *string_list(char *const *items, size_t n)
{
	Plugbox__Value *l = pbv_new_list();
	for (size_t i = 0; l && i < n; i++) {
		Plugbox__Value *v = pbv_new_string(items[i], strlen(items[i]));
		if (!v || pbv_list_append(l, v) < 0) {
			pbv_free(v);
			pbv_free(l);
			return NULL;
		}
	}
	return l;
}

/* The jail's layers (made before exec) and then the worker's own. */
static Plugbox__Value *layer_list(const struct process *w)
{
	const Plugbox__Hello *h = w->hello->hello;
	Plugbox__Value *l = string_list(w->proc.layers, w->proc.nlayers);
	for (size_t i = 0; l && i < h->n_layers; i++) {
		Plugbox__Value *v = pbv_new_string(h->layers[i], strlen(h->layers[i]));
		if (!v || pbv_list_append(l, v) < 0) {
			pbv_free(v);
			pbv_free(l);
			return NULL;
		}
	}
	return l;
}

PB_API int pb_describe(pb_supervisor *s, const char *plugin, pb_value **info, pb_error **err)
{
	const struct process *w;
	const Plugbox__Hello *h;
	Plugbox__Value *m;

	*info = NULL;
	*err = NULL;
	w = pb_runtime_wait_worker(s, plugin, err);
	if (!w)
		return -ENOENT;
	h = w->hello->hello;
	/* What discovery says of a plugin (discover.c), then what only its
	 * worker knows. */
	m = pb_hello_map(plugin, h);
	if (m && (pb_map_put(m, "sys_path", string_list(h->sys_path, h->n_sys_path)) < 0 ||
	          pb_map_put(m, "layers", layer_list(w)) < 0 ||
	          pb_map_put(m, "policy_file", pbv_new_string(w->policy && w->policy->path ? w->policy->path : "", w->policy && w->policy->path ? strlen(w->policy->path) : 0)) < 0)) {
		pbv_free(m);
		m = NULL;
	}
	if (!m) {
		*err = pb_error_new(PB_ERROR_UNAVAILABLE, plugin, "", "out of memory", "");
		return -ENOMEM;
	}
	*info = (pb_value *)m;
	return 0;
}

PB_API int pb_call(pb_supervisor *s, const char *plugin, const char *function,
                   pb_value *const *args, size_t nargs, pb_value **result, pb_error **err)
{
	return pb_call_kw(s, plugin, function, args, nargs, NULL, NULL, 0, result, err);
}

/* On the heap: should the loop fail, pb_call_kw returns and the call is
 * answered later, to this record alone, which then frees itself. */
struct sync_call {
	bool done;
	bool abandoned;
	pb_value *result;
	pb_error *err;
};

static void sync_done(void *data, uint64_t id, pb_value *result, pb_error *err)
{
	struct sync_call *c = data;
	(void)id;
	if (c->abandoned) {
		pb_value_destroy(result);
		pb_error_free(err);
		free(c);
		return;
	}
	c->done = true;
	c->result = result;
	c->err = err;
}

static int errno_for(pb_error_kind kind)
{
	switch (kind) {
	case PB_ERROR_EXCEPTION: return -EREMOTEIO;
	case PB_ERROR_NOT_FOUND: return -ENOENT;
	case PB_ERROR_CONFIG: return -ENOEXEC;
	case PB_ERROR_TIMEOUT: return -ETIMEDOUT;
	case PB_ERROR_UNAVAILABLE: return -EAGAIN;
	case PB_ERROR_BAD_REQUEST: return -EINVAL;
	default: return -ECHILD;
	}
}

PB_API int pb_call_kw(pb_supervisor *s, const char *plugin, const char *function,
                      pb_value *const *args, size_t nargs,
                      const char *const *kwnames, pb_value *const *kwvalues, size_t nkwargs,
                      pb_value **result, pb_error **err)
{
	pb_call_spec spec = {
		.plugin = plugin,
		.function = function,
		.args = args,
		.nargs = nargs,
		.kwnames = kwnames,
		.kwvalues = kwvalues,
		.nkwargs = nkwargs,
	};
	struct sync_call *c = calloc(1, sizeof(*c));
	int r;

	*result = NULL;
	*err = NULL;
	r = c ? pb_call_start(s, &spec, sync_done, c, NULL) : -ENOMEM;
	if (r < 0) {
		free(c);
		*err = r == -ENOMEM ? pb_error_new(PB_ERROR_UNAVAILABLE, plugin, "", "out of memory", "")
		                    : pb_error_new(PB_ERROR_BAD_REQUEST, plugin, "", s->message, "");
		return r;
	}
	/* Callbacks of other calls may run meanwhile; the deadline bounds the wait. */
	while (!c->done)
		if (pb_supervisor_dispatch(s, -1) < 0 && errno != EINTR)
			break;
	if (!c->done) {
		c->abandoned = true;
		*err = pb_error_new(PB_ERROR_UNAVAILABLE, plugin, "", "the supervisor's loop failed", "");
		return -EIO;
	}
	if (c->err) {
		*err = c->err;
		r = errno_for(c->err->kind);
	} else {
		*result = c->result;
		r = 0;
	}
	free(c);
	return r;
}
