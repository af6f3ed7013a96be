/* cache.c - a supervisor's bytecode caches: which cache a worker gets, and
 * when a cache is built.
 *
 * A worker of plugin NAME gets ROOT/NAME/tree bound read-only (jail.c) and
 * nothing of any other plugin's cache. Starting it also looks at the
 * cache's stamp (cache.h); when the cache is missing or stale, a build is
 * queued, and runs in the background, driven by this supervisor's loop:
 * the worker being started does not wait for it (it runs uncached, or on
 * the previous cache, whose pycs are still checked one by one against
 * their sources), the next worker is warm. The loop never waits on a
 * build either: spawning the compiler costs what spawning a worker costs,
 * and checking and renaming its tree a few milliseconds once it has ended.
 * At most PB_CACHE_BUILDS_MAX builds run at once. One-shot commands (plugbox
 * call, list, call-all) wait for their builds before they exit
 * (pb_cache_settle), so that the next run finds them; a supervisor freed
 * with builds running kills them, and the next build of that plugin
 * deletes what they left.
 *
 * A build that fails (the compiler killed by its limits, or its tree
 * refused) leaves a marker with the plugin's stamp, and is not tried again
 * until the plugin changes; the plugin just runs uncached. Nothing about a
 * cache ever stops a worker from starting.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "helpers/cache_build.h"
#include "runtime/cache.h"
#include "runtime/cache.h"
#include "runtime/channel.h"
#include "runtime/output.h"
#include "runtime/loop.h"
#include "runtime/process.h"
#include "runtime/supervisor.h"

/* One plugin's build in this supervisor: queued, running, or ended. */
struct slot {
	struct slot *next;
	char *name;
	bool force;
	bool queued;
	struct pb_cache_build *build; /* while it runs */
	int outcome;                  /* once ended: 1 built, 0 nothing to do, -1 failed */
	bool ended;
	unsigned compiled, skipped;
	char why[512];
};

struct pb_cache_state {
	struct source src; /* SRC_CACHE: every build's descriptors and the timer */
	bool off;          /* no cache root: run uncached */
	char *configured;  /* the setting it was made from ("" for the default) */
	char *root;
	int root_fd;
	int timer_fd;
	struct pb_policy *policy;
	bool policy_failed; /* compile.policy cannot be loaded: existing caches only */
	char policy_why[512];
	struct slot *slots;
	unsigned running;
};

static const char *setting(const pb_supervisor *s)
{
	return !s->cache_chosen ? "" : s->cache_dir ? s->cache_dir
	                                            : "-";
}

static void state_free(pb_supervisor *s, struct pb_cache_state *c)
{
	while (c->slots) {
		struct slot *sl = c->slots;
		c->slots = sl->next;
		pb_cache_build_free(sl->build); /* kills a compiler that still runs */
		free(sl->name);
		free(sl);
	}
	if (c->timer_fd >= 0) {
		pb_loop_unwatch(s, c->timer_fd);
		close(c->timer_fd);
	}
	if (c->root_fd >= 0)
		close(c->root_fd);
	if (c->policy)
		pb_policy_free(c->policy);
	free(c->configured);
	free(c->root);
	free(c);
}

/* The root, made when missing: the setting, or PLUGINS/.plugbox/cache. */
static void resolve_root(pb_supervisor *s, struct pb_cache_state *c)
{
	char why[512], meta[4096];

	if (s->cache_chosen && !s->cache_dir) {
		c->off = true;
		return;
	}
	if (s->cache_chosen) {
		c->root = strdup(s->cache_dir);
	} else {
		snprintf(meta, sizeof(meta), "%s/.plugbox", s->plugins_dir);
		/* As `plugbox install` makes it: others may pass, not list. */
		if (mkdir(meta, 0711) < 0 && errno != EEXIST) {
			c->off = true;
			return;
		}
		if (asprintf(&c->root, "%s/cache", meta) < 0)
			c->root = NULL;
	}
	if (!c->root || (c->root_fd = pb_cache_root_open(c->root, true, why, sizeof(why))) < 0)
		c->off = true;
}

static struct pb_cache_state *state(pb_supervisor *s)
{
	struct pb_cache_state *c = s->cache;

	if (c && !strcmp(c->configured, setting(s)))
		return c->off ? NULL : c;
	/* The setting changed: start over once nothing is being built. */
	if (c && c->running)
		return c->off ? NULL : c;
	if (c)
		state_free(s, c);
	s->cache = c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->root_fd = c->timer_fd = -1;
	c->src.kind = SRC_CACHE;
	c->src.proc = NULL;
	if (!(c->configured = strdup(setting(s)))) {
		c->off = true;
		return NULL;
	}
	resolve_root(s, c);
	if (!c->off) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->src };
		c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (c->timer_fd < 0 || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, c->timer_fd, &ev) < 0)
			c->off = true;
	}
	return c->off ? NULL : c;
}

static struct slot *find_slot(struct pb_cache_state *c, const char *name)
{
	for (struct slot *sl = c->slots; sl; sl = sl->next)
		if (!strcmp(sl->name, name))
			return sl;
	return NULL;
}

static void arm(struct pb_cache_state *c, double at)
{
	pb_timerfd_at(c->timer_fd, at);
}

static void watch_build(pb_supervisor *s, struct pb_cache_state *c, struct pb_cache_build *b, bool on)
{
	int fds[6];
	size_t n = pb_cache_build_fds(b, fds);

	for (size_t i = 0; i < n; i++) {
		if (on) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->src };
			epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fds[i], &ev);
		} else {
			pb_loop_unwatch(s, fds[i]);
		}
	}
}

static void slot_ended(pb_supervisor *s, struct slot *sl, int outcome, const char *why)
{
	sl->ended = true;
	sl->outcome = outcome;
	snprintf(sl->why, sizeof(sl->why), "%s", why);
	if (outcome < 0)
		pb_note(s, sl->name, "bytecode cache not built (the plugin runs uncached): %s", why);
}

static void start_queued(pb_supervisor *s, struct pb_cache_state *c)
{
	char dir[4096], why[512];

	for (struct slot *sl = c->slots; sl && c->running < PB_CACHE_BUILDS_MAX; sl = sl->next) {
		if (!sl->queued)
			continue;
		sl->queued = false;
		if (!c->policy && !c->policy_failed &&
		    pb_cache_policy_load(s->policies_dir, &c->policy, c->policy_why, sizeof(c->policy_why)) < 0)
			c->policy_failed = true;
		if (c->policy_failed) {
			slot_ended(s, sl, sl->force ? -1 : 0, c->policy_why);
			continue;
		}
		snprintf(dir, sizeof(dir), "%s/%s", s->plugins_dir, sl->name);
		const struct pb_cache_spec spec = {
			.root_fd = c->root_fd,
			.root = c->root,
			.name = sl->name,
			.plugin_dir = dir,
			.worker_path = s->worker_path,
			.policy = c->policy,
			.force = sl->force,
		};
		int r = pb_cache_build_start(&spec, &sl->build, why, sizeof(why));
		if (r <= 0) {
			slot_ended(s, sl, r < 0 ? -1 : 0, why);
			continue;
		}
		c->running++;
		watch_build(s, c, sl->build, true);
	}
}

/* Look at every running build, finish those that ended, start the next. */
static void service(pb_supervisor *s, struct pb_cache_state *c)
{
	double next = 0;
	uint64_t expirations;
	char why[512];

	if (read(c->timer_fd, &expirations, sizeof(expirations)) < 0) {
		/* not expired: a build's descriptor woke us */
	}
	for (struct slot *sl = c->slots; sl; sl = sl->next) {
		if (!sl->build)
			continue;
		if (!pb_cache_build_step(sl->build))
			continue;
		watch_build(s, c, sl->build, false);
		int r = pb_cache_build_commit(sl->build, pb_cache_build_stamp(sl->build), &sl->compiled, &sl->skipped,
		                              why, sizeof(why));
		/* A plugin that changed meanwhile, or a compiler killed from
		 * outside, is simply built again at its next start. */
		slot_ended(s, sl, r == 0 ? 1 : r == -ESTALE || r == -EAGAIN ? 0
		                                                            : -1,
		           r == 0 ? "" : why);
		pb_cache_build_free(sl->build);
		sl->build = NULL;
		c->running--;
	}
	start_queued(s, c);
	for (struct slot *sl = c->slots; sl; sl = sl->next) {
		double at = sl->build ? pb_cache_build_deadline(sl->build) : 0;
		if (at > 0 && (next == 0 || at < next))
			next = at;
	}
	arm(c, next);
}

void pb_cache_event(pb_supervisor *s, const struct source *src)
{
	struct pb_cache_state *c = s->cache;

	if (c && src == &c->src)
		service(s, c);
}

static int queue(pb_supervisor *s, struct pb_cache_state *c, const char *name, bool force)
{
	struct slot *sl = find_slot(c, name);

	if (sl && (sl->queued || sl->build)) {
		sl->force = sl->force || force;
		return 0;
	}
	if (!sl) {
		sl = calloc(1, sizeof(*sl));
		if (!sl || !(sl->name = strdup(name))) {
			free(sl);
			return -ENOMEM;
		}
		sl->next = c->slots;
		c->slots = sl;
	}
	sl->queued = true;
	sl->ended = false;
	sl->force = force;
	/* Started from the loop's next round, not from inside the worker's start. */
	arm(c, pb_now());
	(void)s;
	return 0;
}

char *pb_cache_for_worker(pb_supervisor *s, const char *name, const char *plugin_dir)
{
	struct pb_cache_state *c = state(s);
	char stamp[PB_CACHE_STAMP_MAX], *tree = NULL;
	struct stat st;
	int dir;

	if (!c)
		return NULL;
	pb_cache_stamp(plugin_dir, stamp, sizeof(stamp));
	if (*stamp && !pb_cache_fresh(c->root_fd, name, stamp) && !pb_cache_failed(c->root_fd, name, stamp)) {
		struct slot *sl = find_slot(c, name);
		/* Once per supervisor and plugin version: a build that found
		 * nothing to do is not repeated at every start. */
		if (!sl || (!sl->queued && !sl->build))
			queue(s, c, name, false);
	}
	/* Ours and a real directory, or nothing (the worker runs uncached). */
	dir = openat(c->root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir >= 0 && fstatat(dir, "tree", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
	    st.st_uid == geteuid() && asprintf(&tree, "%s/%s/tree", c->root, name) < 0)
		tree = NULL;
	if (dir >= 0)
		close(dir);
	return tree;
}

int pb_cache_request(pb_supervisor *s, const char *name, bool force)
{
	struct pb_cache_state *c = state(s);

	if (!c) {
		pb_set_message(s, "no bytecode cache: %s", s->cache_chosen && !s->cache_dir ? "turned off" : "its directory cannot be made or is not ours alone");
		return -ENOENT;
	}
	return queue(s, c, name, force);
}

static bool busy(const struct pb_cache_state *c)
{
	for (const struct slot *sl = c->slots; sl; sl = sl->next)
		if (sl->queued || sl->build)
			return true;
	return false;
}

void pb_cache_settle(pb_supervisor *s)
{
	while (s->cache && busy(s->cache))
		if (pb_supervisor_dispatch(s, -1) < 0 && errno != EINTR)
			break;
}

int pb_cache_outcome(pb_supervisor *s, const char *name, unsigned *compiled, unsigned *skipped,
                     char *why, size_t why_len)
{
	struct slot *sl = s->cache ? find_slot(s->cache, name) : NULL;

	*compiled = *skipped = 0;
	*why = '\0';
	if (!sl || !sl->ended)
		return 0;
	*compiled = sl->compiled;
	*skipped = sl->skipped;
	snprintf(why, why_len, "%s", sl->why);
	return sl->outcome;
}

void pb_cache_free(pb_supervisor *s)
{
	if (s->cache)
		state_free(s, s->cache);
	s->cache = NULL;
}
