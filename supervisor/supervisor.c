/* supervisor.c - libplugbox's public API: a supervisor over a plugins
 * directory, its workers by plugin name, and calls.
 *
 * How a worker's bytes are read and judged is channel.c's business (the
 * trust boundary); this file asks it to run a worker until Hello or a reply
 * arrives, and turns the outcome into results and errors.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor_internal.h"
#include "value.h"

void pb_set_message(pb_supervisor *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->message, sizeof(s->message), fmt, ap);
	va_end(ap);
}

static void default_output(void *data, const char *plugin, pb_stream stream, const char *line)
{
	(void)data;
	if (stream == PB_STREAM_SUPERVISOR)
		fprintf(stderr, "plugbox: plugin '%s': %s\n", plugin, line);
	else
		fprintf(stderr, "[%s] %s\n", plugin, line);
}

static bool valid_plugin_name(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > 128)
		return false;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
		      (*n >= '0' && *n <= '9') || *n == '_' || *n == '-'))
			return false;
	return true;
}

/* ---- workers ---------------------------------------------------------------- */

static struct worker *find_worker(pb_supervisor *s, const char *name)
{
	for (size_t i = 0; i < s->nworkers; i++)
		if (strcmp(s->workers[i]->name, name) == 0)
			return s->workers[i];
	return NULL;
}

static void drop_worker(pb_supervisor *s, struct worker *w)
{
	for (size_t i = 0; i < s->nworkers; i++) {
		if (s->workers[i] == w) {
			s->workers[i] = s->workers[--s->nworkers];
			break;
		}
	}
	pb_worker_free(w);
}

/* The identity a plugin's workers run as when the supervisor is root: one
 * uid (and the same gid) per plugin, from a hash of its directory so it is
 * stable across restarts, moved on when another plugin of this supervisor
 * has it already. */
static uid_t plugin_uid(pb_supervisor *s, const char *name)
{
	uint32_t h = 2166136261u;
	const char *parts[] = { s->plugins_dir, "/", name };

	for (size_t i = 0; i < s->nuids; i++)
		if (!strcmp(s->uids[i].name, name))
			return s->uids[i].uid;
	for (size_t p = 0; p < 3; p++)
		for (const char *c = parts[p]; *c; c++)
			h = (h ^ (uint8_t)*c) * 16777619u;
	uid_t uid = PB_PLUGIN_UID_BASE + h % PB_PLUGIN_UID_RANGE;
	for (bool taken = true; taken;) {
		taken = false;
		for (size_t i = 0; i < s->nuids; i++)
			if (s->uids[i].uid == uid) {
				uid = PB_PLUGIN_UID_BASE + (uid - PB_PLUGIN_UID_BASE + 1) % PB_PLUGIN_UID_RANGE;
				taken = true;
			}
	}
	struct pb_plugin_uid *grown = realloc(s->uids, (s->nuids + 1) * sizeof(*grown));
	if (grown) {
		s->uids = grown;
		if ((grown[s->nuids].name = strdup(name)))
			grown[s->nuids++].uid = uid;
	}
	return uid;
}

/* A ready worker for plugin `name`, started if need be. */
static struct worker *get_worker(pb_supervisor *s, const char *name, pb_error **err)
{
	struct worker *w = find_worker(s, name);
	char dir[4096], why[512];
	struct stat st;
	double deadline;

	if (w && w->state == W_READY)
		return w;
	if (w)
		drop_worker(s, w);

	if (!valid_plugin_name(name)) {
		snprintf(why, sizeof(why), "'%s' is not a plugin name ([A-Za-z0-9_-]+)", name);
		*err = pb_error_new(PB_ERROR_NOT_FOUND, name, "", why, "");
		return NULL;
	}
	if (snprintf(dir, sizeof(dir), "%s/%s", s->plugins_dir, name) >= (int)sizeof(dir) ||
	    stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(why, sizeof(why), "no plugin '%s' in %s", name, s->plugins_dir);
		*err = pb_error_new(PB_ERROR_NOT_FOUND, name, "", why, "");
		return NULL;
	}
	struct worker **grown = realloc(s->workers, (s->nworkers + 1) * sizeof(*grown));
	w = calloc(1, sizeof(*w));
	if (grown)
		s->workers = grown;
	if (!grown || !w || !(w->name = strdup(name))) {
		free(w);
		*err = pb_error_new(PB_ERROR_UNAVAILABLE, name, "", "out of memory", "");
		return NULL;
	}
	pb_frame_reader_init(&w->reader, PB_FRAME_MAX_DEFAULT);
	w->proc.pid = -1;
	w->notify_fd = -1;
	if (pb_load_plugin_policy(s, name, &w->policy, why, sizeof(why)) < 0) {
		char msg[640];
		snprintf(msg, sizeof(msg), "plugin '%s': policy error: %s", name, why);
		*err = pb_error_new(PB_ERROR_CONFIG, name, "", msg, "");
		pb_worker_free(w);
		return NULL;
	}
	uid_t uid = plugin_uid(s, name);
	if (pb_spawn_worker(s->worker_path, name, dir, w->policy, s->mode, uid, (gid_t)uid, &w->proc,
	                    &w->expect_listener, why, sizeof(why)) < 0) {
		char msg[640];
		snprintf(msg, sizeof(msg), "plugin '%s' could not be started: %s", name, why);
		*err = pb_error_new(PB_ERROR_UNAVAILABLE, name, "", msg, "");
		pb_worker_free(w);
		return NULL;
	}
	s->workers[s->nworkers++] = w;
	w->state = W_STARTING;
	deadline = s->timeout > 0 ? pb_now() + s->timeout : 0;
	w->wait_limit = s->timeout;
	pb_worker_run(s, w, W_STARTING, deadline);
	if (w->state != W_READY) {
		if (w->end_kind == PB_ERROR_CONFIG || w->end_kind == PB_ERROR_UNAVAILABLE) {
			char *msg = NULL;
			if (asprintf(&msg, "plugin '%s': %s", name, w->end_message) > 0) {
				snprintf(w->end_message, sizeof(w->end_message), "%.*s",
				         (int)sizeof(w->end_message) - 1, msg);
				free(msg);
			}
		}
		*err = pb_worker_death_error(s, w);
		drop_worker(s, w);
		return NULL;
	}
	return w;
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
	/* learn mode finds what a call needs beyond default */
	if (s->mode == PB_COMPILE_LEARN || access(path, F_OK) < 0)
		policy = "default";
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
	const char *policies = getenv("PLUGBOX_POLICIES");
	s->policies_dir = strdup(policies && *policies ? policies : PB_POLICIES_DIR);
	if (!s->policies_dir) {
		pb_supervisor_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

PB_API void pb_supervisor_free(pb_supervisor *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nworkers; i++) {
		pb_worker_shutdown(s, s->workers[i]);
		pb_worker_free(s->workers[i]);
	}
	free(s->workers);
	free(s->plugins_dir);
	free(s->worker_path);
	free(s->policies_dir);
	free(s->learned);
	for (size_t i = 0; i < s->nuids; i++)
		free(s->uids[i].name);
	free(s->uids);
	free(s);
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
	s->output_data = fn ? userdata : NULL;
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
		if (!valid_plugin_name(e->d_name)) {
			char name[sizeof(e->d_name)], line[600];
			/* Whoever put it there must not reach the terminal through it. */
			snprintf(name, sizeof(name), "%s", e->d_name);
			for (char *c = name; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = '?';
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
	Plugbox__Value *l = pb_value_new_list();
	for (size_t i = 0; l && i < n; i++) {
		Plugbox__Value *v = pb_value_new_string(items[i], strlen(items[i]));
		if (!v || pb_value_list_append(l, v) < 0) {
			pb_value_free(v);
			pb_value_free(l);
			return NULL;
		}
	}
	return l;
}

/* The jail's layers (made before exec) and then the worker's own. */
static Plugbox__Value *layer_list(const struct worker *w)
{
	const Plugbox__Hello *h = w->hello->hello;
	Plugbox__Value *l = string_list(w->proc.layers, w->proc.nlayers);
	for (size_t i = 0; l && i < h->n_layers; i++) {
		Plugbox__Value *v = pb_value_new_string(h->layers[i], strlen(h->layers[i]));
		if (!v || pb_value_list_append(l, v) < 0) {
			pb_value_free(v);
			pb_value_free(l);
			return NULL;
		}
	}
	return l;
}

static int put(Plugbox__Value *map, const char *key, Plugbox__Value *v)
{
	Plugbox__Value *k = pb_value_new_string(key, strlen(key));
	if (!k || !v || pb_value_map_put(map, k, v) < 0) {
		pb_value_free(k);
		pb_value_free(v);
		return -ENOMEM;
	}
	return 0;
}

PB_API int pb_describe(pb_supervisor *s, const char *plugin, pb_value **info, pb_error **err)
{
	struct worker *w;
	const Plugbox__Hello *h;
	Plugbox__Value *m, *eps;
	int r = 0;

	*info = NULL;
	*err = NULL;
	w = get_worker(s, plugin, err);
	if (!w)
		return -ENOENT;
	h = w->hello->hello;
	m = pb_value_new_map();
	eps = pb_value_new_list();
	for (size_t i = 0; eps && i < h->n_entry_points; i++) {
		Plugbox__Value *ep = pb_value_new_map();
		if (!ep || put(ep, "group", pb_value_new_string(h->entry_points[i]->group, strlen(h->entry_points[i]->group))) ||
		    put(ep, "name", pb_value_new_string(h->entry_points[i]->name, strlen(h->entry_points[i]->name))) ||
		    put(ep, "value", pb_value_new_string(h->entry_points[i]->value, strlen(h->entry_points[i]->value))) ||
		    pb_value_list_append(eps, ep) < 0) {
			pb_value_free(ep);
			r = -ENOMEM;
			break;
		}
	}
	if (!m || !eps || r < 0) {
		pb_value_free(m);
		pb_value_free(eps);
		m = NULL;
	} else if (put(m, "entry_points", eps) ||     /* put() owns eps from here on */
	           put(m, "name", pb_value_new_string(plugin, strlen(plugin))) ||
	           put(m, "layout", pb_value_new_string(h->layout, strlen(h->layout))) ||
	           put(m, "version", pb_value_new_string(h->version, strlen(h->version))) ||
	           put(m, "exports", string_list(h->exports, h->n_exports)) ||
	           put(m, "sys_path", string_list(h->sys_path, h->n_sys_path)) ||
	           put(m, "layers", layer_list(w))) {
		pb_value_free(m);
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

PB_API int pb_call_kw(pb_supervisor *s, const char *plugin, const char *function,
                      pb_value *const *args, size_t nargs,
                      const char *const *kwnames, pb_value *const *kwvalues, size_t nkwargs,
                      pb_value **result, pb_error **err)
{
	Plugbox__Envelope env = PLUGBOX__ENVELOPE__INIT;
	Plugbox__Call call = PLUGBOX__CALL__INIT;
	Plugbox__KeywordArgument *kw_store = NULL, **kw_ptrs = NULL;
	struct worker *w;
	size_t len;
	double deadline;

	*result = NULL;
	*err = NULL;
	if (!pb_utf8_valid(function, strlen(function))) {
		*err = pb_error_new(PB_ERROR_BAD_REQUEST, plugin, "", "the function name is not UTF-8", "");
		return -EINVAL;
	}
	for (size_t i = 0; i < nkwargs; i++) {
		if (!kwnames[i] || !*kwnames[i] || !pb_utf8_valid(kwnames[i], strlen(kwnames[i])) ||
		    pb_value_depth((const Plugbox__Value *)kwvalues[i]) > PB_VALUE_MAX_DEPTH - 1) {
			char msg[160];
			snprintf(msg, sizeof(msg), "keyword argument %zu has no valid name or is nested too deeply", i + 1);
			*err = pb_error_new(PB_ERROR_BAD_REQUEST, plugin, "", msg, "");
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < nargs; i++) {
		if (pb_value_depth((const Plugbox__Value *)args[i]) > PB_VALUE_MAX_DEPTH - 1) {
			char msg[128];
			snprintf(msg, sizeof(msg), "argument %zu is nested deeper than %d levels", i + 1,
			         PB_VALUE_MAX_DEPTH - 1);
			*err = pb_error_new(PB_ERROR_BAD_REQUEST, plugin, "", msg, "");
			return -EINVAL;
		}
	}
	w = get_worker(s, plugin, err);
	if (!w)
		return -ENOENT;
	/* The policy's call-time bounds every call; the host may only shorten it. */
	double limit = s->timeout;
	uint64_t call_ms = w->policy->sandbox.limit[PB_LIMIT_CALL_TIME];
	if (call_ms != PB_LIMIT_UNLIMITED && (limit <= 0 || call_ms / 1000.0 < limit))
		limit = call_ms / 1000.0;
	deadline = limit > 0 ? pb_now() + limit : 0;
	w->wait_limit = limit;
	w->wait_limit_is_policy = limit != s->timeout;

	call.function = (char *)function;
	call.n_args = nargs;
	call.args = (Plugbox__Value **)args;
	if (nkwargs) {
		kw_store = calloc(nkwargs, sizeof(*kw_store));
		kw_ptrs = calloc(nkwargs, sizeof(*kw_ptrs));
		if (!kw_store || !kw_ptrs) {
			free(kw_store);
			free(kw_ptrs);
			*err = pb_error_new(PB_ERROR_UNAVAILABLE, plugin, "", "out of memory", "");
			return -ENOMEM;
		}
		for (size_t i = 0; i < nkwargs; i++) {
			plugbox__keyword_argument__init(&kw_store[i]);
			kw_store[i].name = (char *)kwnames[i];
			kw_store[i].value = (Plugbox__Value *)kwvalues[i];
			kw_ptrs[i] = &kw_store[i];
		}
		call.n_kwargs = nkwargs;
		call.kwargs = kw_ptrs;
	}
	env.id = ++s->next_id;
	env.body_case = PLUGBOX__ENVELOPE__BODY_CALL;
	env.call = &call;
	len = protobuf_c_message_get_packed_size(&env.base);
	free(w->send_buf);
	w->send_buf = len <= PB_FRAME_MAX_DEFAULT ? malloc(len + 4) : NULL;
	if (!w->send_buf) {
		free(kw_store);
		free(kw_ptrs);
		*err = len > PB_FRAME_MAX_DEFAULT
			? pb_error_new(PB_ERROR_BAD_REQUEST, plugin, "", "the call is larger than a frame may be", "")
			: pb_error_new(PB_ERROR_UNAVAILABLE, plugin, "", "out of memory", "");
		return len > PB_FRAME_MAX_DEFAULT ? -EMSGSIZE : -ENOMEM;
	}
	w->send_buf[0] = (uint8_t)len;
	w->send_buf[1] = (uint8_t)(len >> 8);
	w->send_buf[2] = (uint8_t)(len >> 16);
	w->send_buf[3] = (uint8_t)(len >> 24);
	protobuf_c_message_pack(&env.base, w->send_buf + 4);
	free(kw_store);
	free(kw_ptrs);
	w->send_len = len + 4;
	w->send_off = 0;
	w->call_id = env.id;
	w->state = W_IN_CALL;
	pb_worker_send_pending(w);
	pb_worker_run(s, w, W_IN_CALL, deadline);

	if (w->state == W_READY && w->reply) {
		Plugbox__Envelope *reply = w->reply;
		w->reply = NULL;
		if (reply->body_case == PLUGBOX__ENVELOPE__BODY_RESULT) {
			Plugbox__Value *v = reply->result->value;
			reply->result->value = NULL;
			pb_envelope_free(reply);
			if (!v)
				v = pb_value_new_null();
			*result = (pb_value *)v;
			return v ? 0 : -ENOMEM;
		}
		const Plugbox__Error *e = reply->error;
		*err = pb_error_new(pb_error_kind_from_wire(e->kind), plugin, e->type, e->message, e->traceback);
		pb_envelope_free(reply);
		return -EREMOTEIO;
	}
	*err = pb_worker_death_error(s, w);
	drop_worker(s, w);
	return -ECHILD;
}
