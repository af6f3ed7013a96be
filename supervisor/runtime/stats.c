/* stats.c - what a host can count and watch of each plugin's workers: the
 * counters behind pb_supervisor_plugin_stat (what `plugbox serve --metrics`
 * exports) and the events of pb_supervisor_set_event_callback (what
 * `--log-format json` writes). Counted where the runtime already decides
 * (a spawn, an exit and why, a meter's drop, a denied host call), so that
 * nothing is counted twice or guessed from a message. CPU time and peak
 * memory of a live worker are read from /proc, of an ended one from
 * wait4's rusage.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/process.h"
#include "runtime/plugins.h"
#include "runtime/runtime.h"
#include "runtime/stats.h"
#include "proto/names.h"

static void emit(pb_supervisor *s, const char *plugin, pb_event_kind kind, int pid, const char *message,
                 const pb_error *err)
{
	if (s->event_fn)
		s->event_fn(s->event_data, plugin, kind, pid, message, err);
}

void pb_stats_spawned(pb_supervisor *s, struct plugin *p, const struct process *w)
{
	char msg[128];

	p->st_starts++;
	snprintf(msg, sizeof(msg), "worker started (pid %d)", (int)w->proc.pid);
	emit(s, p->name, PB_EVENT_SPAWN, (int)w->proc.pid, msg, NULL);
	if (p->st_last_crashed) {
		p->st_restarts++;
		p->st_last_crashed = false;
		snprintf(msg, sizeof(msg), "worker restarted after a crash (pid %d)", (int)w->proc.pid);
		emit(s, p->name, PB_EVENT_RESTART, (int)w->proc.pid, msg, NULL);
	}
}

void pb_stats_exited(pb_supervisor *s, struct plugin *p, const struct process *w, bool crashed,
                     const pb_error *err)
{
	pb_event_kind kind = PB_EVENT_EXIT;

	p->st_cpu_ended += w->cpu_used;
	if (w->max_rss_kib > p->st_peak_rss_kib)
		p->st_peak_rss_kib = w->max_rss_kib;
	if (crashed) {
		p->st_crashes++;
		p->st_last_crashed = true;
		kind = PB_EVENT_CRASH;
		if (err && err->kind == PB_ERROR_VIOLATION) {
			p->st_violations++;
			kind = PB_EVENT_VIOLATION;
		} else if (err && err->kind == PB_ERROR_PROTOCOL) {
			kind = PB_EVENT_PROTOCOL;
		}
	}
	emit(s, p->name, kind, (int)w->proc.pid, err ? err->message : "worker ended", crashed ? err : NULL);
}

void pb_stats_dropped(struct plugin *p, uint64_t lines)
{
	p->st_dropped += lines;
}

void pb_stats_host_denied(pb_supervisor *s, const struct process *w, const char *name, const char *message)
{
	(void)name;
	w->plugin->st_host_denied++;
	emit(s, w->name, PB_EVENT_HOST_DENIED, (int)w->proc.pid, message, NULL);
}

/* utime + stime (clock ticks) and VmHWM (KiB) of a live worker. */
static void live_usage(const struct process *w, double *cpu, uint64_t *hwm_kib)
{
	char path[64], buf[2048];
	FILE *f;

	*cpu = 0;
	*hwm_kib = 0;
	if (!w || w->proc.pid <= 0 || w->reaped)
		return;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)w->proc.pid);
	if ((f = fopen(path, "re"))) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		unsigned long long ticks = 0;
		char *p, *save = NULL, *tok;
		int field = 2; /* the name, field 2, ends at the last ')' */
		buf[n] = '\0';
		/* The name in parentheses may hold anything: read after the last ')'. */
		p = strrchr(buf, ')');
		for (tok = p ? strtok_r(p + 1, " ", &save) : NULL; tok && field < 15; tok = strtok_r(NULL, " ", &save)) {
			/* utime and stime are fields 14 and 15 (proc(5)). */
			if (++field >= 14) {
				char *end;
				unsigned long long v = strtoull(tok, &end, 10);
				ticks += *end == '\0' ? v : 0;
			}
		}
		*cpu = (double)ticks / (double)sysconf(_SC_CLK_TCK);
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)w->proc.pid);
	if ((f = fopen(path, "re"))) {
		while (fgets(buf, sizeof(buf), f))
			if (!strncmp(buf, "VmHWM:", 6))
				*hwm_kib = strtoull(buf + 6, NULL, 10);
		fclose(f);
	}
}

PB_API int pb_supervisor_plugin_stat(pb_supervisor *s, const char *plugin, pb_stat stat, double *value)
{
	struct plugin *p = pb_runtime_known(s, plugin);
	double cpu = 0;
	uint64_t hwm = 0;

	*value = 0;
	if (!p)
		return plugin && pb_valid_plugin_name(plugin) ? 0 : -ENOENT;
	switch (stat) {
	case PB_STAT_STARTS: *value = (double)p->st_starts; break;
	case PB_STAT_RESTARTS: *value = (double)p->st_restarts; break;
	case PB_STAT_CRASHES: *value = (double)p->st_crashes; break;
	case PB_STAT_VIOLATIONS: *value = (double)p->st_violations; break;
	case PB_STAT_OUTPUT_DROPPED: *value = (double)p->st_dropped; break;
	case PB_STAT_HOST_DENIED: *value = (double)p->st_host_denied; break;
	case PB_STAT_CPU_SECONDS:
		live_usage(p->proc, &cpu, &hwm);
		*value = p->st_cpu_ended + cpu;
		break;
	case PB_STAT_PEAK_RSS_BYTES:
		live_usage(p->proc, &cpu, &hwm);
		*value = (double)(hwm > p->st_peak_rss_kib ? hwm : p->st_peak_rss_kib) * 1024.0;
		break;
	default: return -EINVAL;
	}
	return 0;
}

PB_API void pb_supervisor_set_event_callback(pb_supervisor *s, pb_event_fn fn, void *userdata)
{
	s->event_fn = fn;
	s->event_data = userdata;
}
