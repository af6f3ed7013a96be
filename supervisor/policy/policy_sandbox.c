/* policy_sandbox.c - the policy lines for the layers beside seccomp.
 *
 *   @limit memory 1G          private writable memory: heap, stacks, private
 *                             mappings (RLIMIT_DATA); K M G T are binary
 *   @limit address-space 6G   every mapping, reserved or touched, shared ones
 *                             too (RLIMIT_AS)
 *   @limit cpu 60s            CPU time (RLIMIT_CPU); ms s m h
 *   @limit files 256          open descriptors (RLIMIT_NOFILE)
 *   @limit processes 256      threads and processes (RLIMIT_NPROC)
 *   @limit file-size 16M      largest file it may write (RLIMIT_FSIZE); default.policy
 *                             lifts it (its scratch size bounds the bytes)
 *   @limit core 0             core dumps (RLIMIT_CORE)
 *   @limit call-time 60s      wall clock per call; the caller may only shorten it
 *   @layer namespaces required|optional|off
 *   @layer landlock required|optional|off
 *   @network none|host|connect HOST:PORT   policy_net.c
 *   @scratch 64M|none         a private, empty tmpfs at /tmp of that size
 *   @scratch 64M inodes=4096  ... holding at most that many files and
 *                             directories (default: one per 16K, >= 1024)
 *   @scratch-exec on|off      whether files in scratch may be mapped executable
 *                             (off: the tmpfs is noexec, the built-in value)
 *   @proc on|off              the worker's own /proc (only its own process)
 *                             whenever it has a pid namespace; on by default
 *   @host-call NAME...        host functions the plugin may call as
 *                             plugbox.host.NAME(...); none without it
 *
 * A required layer that cannot be applied stops the worker from starting;
 * an optional one is used where the kernel has it, and the worker's layers
 * say whether it was. The values here are plugbox's own defaults, for a
 * policy that sets nothing; default.policy writes them out.
 *
 * @host-call is no seccomp rule: the supervisor checks each call a plugin
 * makes, so it may stand anywhere, also after @after-start, and means the
 * same there. Grants add up across lines and included files; there is no
 * wildcard, so what a plugin may call never grows when the host registers
 * a new function.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_syntax.h"

const char *const pb_limit_names[PB_LIMIT_COUNT] = {
	"memory",
	"address-space",
	"cpu",
	"files",
	"processes",
	"file-size",
	"core",
	"call-time",
};
const char *const pb_layer_names[PB_LAYER_COUNT] = { "namespaces", "landlock" };
const char *const pb_layer_mode_names[3] = { "required", "optional", "off" };
const char *const pb_proc_names[2] = { "on", "off" };

/* Below this a scratch directory is of no use (its root is one inode). */
#define SCRATCH_INODES_FLOOR 16u

enum unit { UNIT_BYTES,
	    UNIT_SECONDS,
	    UNIT_MILLIS,
	    UNIT_COUNT };

/* What each limit is measured in, its floor (below it the worker cannot
 * even start its interpreter) and whether "unlimited" makes sense. The
 * defaults are default.policy's, but for file-size: default.policy lifts it
 * because python.policy refuses memfd_create and a scratch tmpfs has a size;
 * a policy without those keeps this bound. */
static const struct {
	enum unit unit;
	uint64_t min;
	bool may_be_unlimited;
	uint64_t dflt;
} limit_info[PB_LIMIT_COUNT] = {
	[PB_LIMIT_MEMORY] = { UNIT_BYTES, 64u << 20, true, 1u << 30 },
	[PB_LIMIT_ADDRESS_SPACE] = { UNIT_BYTES, 64u << 20, true, 6ull << 30 },
	[PB_LIMIT_CPU] = { UNIT_SECONDS, 1, true, 60 },
	[PB_LIMIT_FILES] = { UNIT_COUNT, 16, false, 256 },
	[PB_LIMIT_PROCESSES] = { UNIT_COUNT, 1, true, 256 },
	[PB_LIMIT_FILE_SIZE] = { UNIT_BYTES, 0, true, 16u << 20 },
	[PB_LIMIT_CORE] = { UNIT_BYTES, 0, true, 0 },
	[PB_LIMIT_CALL_TIME] = { UNIT_MILLIS, 1, true, 60000 },
};

static const struct pb_grant *grant_find(const struct pb_sandbox *s, const char *name)
{
	for (size_t i = 0; i < s->ngrants; i++)
		if (!strcmp(s->grants[i].name, name))
			return &s->grants[i];
	return NULL;
}

/* Takes name over; false (name not taken) when memory runs out. */
static bool grant_push(struct pb_sandbox *s, char *name, const struct pb_where *where)
{
	struct pb_grant *v = realloc(s->grants, (s->ngrants + 1) * sizeof(*v));

	if (!v)
		return false;
	s->grants = v;
	v[s->ngrants++] = (struct pb_grant){ name, *where };
	return true;
}

void sandbox_free(struct pb_sandbox *s)
{
	for (size_t i = 0; i < s->ngrants; i++)
		free(s->grants[i].name);
	free(s->grants);
	s->grants = NULL;
	s->ngrants = 0;
	net_free(s);
}

bool pb_host_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > PB_HOST_NAME_MAX || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (; *name; name++)
		if (!((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') ||
		      (*name >= '0' && *name <= '9') || *name == '_'))
			return false;
	return true;
}

const struct pb_grant *pb_policy_host_grant(const struct pb_policy *p, const char *name)
{
	return p && name ? grant_find(&p->sandbox, name) : NULL;
}

void sandbox_fill_defaults(struct pb_sandbox *s)
{
	for (int i = 0; i < PB_LIMIT_COUNT; i++)
		if (!s->limit_where[i].file)
			s->limit[i] = limit_info[i].dflt;
	/* The address space holds the memory: a policy that raises memory past
	 * it (`@limit memory 8G` over default's 6G of address space) means the
	 * memory, and the address space follows, named by the memory's line. */
	if (s->limit[PB_LIMIT_MEMORY] > s->limit[PB_LIMIT_ADDRESS_SPACE]) {
		s->limit[PB_LIMIT_ADDRESS_SPACE] = s->limit[PB_LIMIT_MEMORY];
		s->limit_where[PB_LIMIT_ADDRESS_SPACE] = s->limit_where[PB_LIMIT_MEMORY];
	}
	if (!s->layer_where[PB_LAYER_NAMESPACES].file)
		s->layer[PB_LAYER_NAMESPACES] = PB_LAYER_REQUIRED;
	if (!s->layer_where[PB_LAYER_LANDLOCK].file)
		s->layer[PB_LAYER_LANDLOCK] = PB_LAYER_OPTIONAL;
	if (!s->network_where.file)
		s->network = PB_NETWORK_NONE;
	if (!s->scratch_where.file) {
		s->scratch = 0;
		s->scratch_inodes = 0;
	}
	if (!s->proc_where.file)
		s->proc = PB_PROC_ON;
	if (!s->scratch_exec_where.file)
		s->scratch_exec = false;
	if (!s->fresh_where.file)
		s->fresh_per_call = false;
}

void sandbox_merge(struct pb_sandbox *dst, struct pb_sandbox *src)
{
	for (int i = 0; i < PB_LIMIT_COUNT; i++)
		if (!dst->limit_where[i].file && src->limit_where[i].file) {
			dst->limit[i] = src->limit[i];
			dst->limit_where[i] = src->limit_where[i];
		}
	for (int i = 0; i < PB_LAYER_COUNT; i++)
		if (!dst->layer_where[i].file && src->layer_where[i].file) {
			dst->layer[i] = src->layer[i];
			dst->layer_where[i] = src->layer_where[i];
		}
	net_merge(dst, src);
	if (!dst->scratch_where.file && src->scratch_where.file) {
		dst->scratch = src->scratch;
		dst->scratch_inodes = src->scratch_inodes;
		dst->scratch_where = src->scratch_where;
	}
	if (!dst->proc_where.file && src->proc_where.file) {
		dst->proc = src->proc;
		dst->proc_where = src->proc_where;
	}
	if (!dst->scratch_exec_where.file && src->scratch_exec_where.file) {
		dst->scratch_exec = src->scratch_exec;
		dst->scratch_exec_where = src->scratch_exec_where;
	}
	if (!dst->fresh_where.file && src->fresh_where.file) {
		dst->fresh_per_call = src->fresh_per_call;
		dst->fresh_where = src->fresh_where;
	}
	/* Out of memory, a grant is lost: the plugin is refused, not let through. */
	for (size_t i = 0; i < src->ngrants; i++)
		if (grant_find(dst, src->grants[i].name) ||
		    !grant_push(dst, src->grants[i].name, &src->grants[i].where))
			free(src->grants[i].name);
	free(src->grants);
	src->grants = NULL;
	src->ngrants = 0;
}

const char *pb_limit_format(enum pb_limit l, uint64_t v, char *buf, size_t len)
{
	static const char sizes[] = "KMGT";

	if (v == PB_LIMIT_UNLIMITED) {
		snprintf(buf, len, "unlimited");
		return buf;
	}
	switch (limit_info[l].unit) {
	case UNIT_BYTES: {
		int k = -1;
		while (k < 3 && v && v % 1024 == 0) {
			v /= 1024;
			k++;
		}
		if (k >= 0)
			snprintf(buf, len, "%llu%c", (unsigned long long)v, sizes[k]);
		else
			snprintf(buf, len, "%llu", (unsigned long long)v);
		break;
	}
	case UNIT_SECONDS: snprintf(buf, len, "%llus", (unsigned long long)v); break;
	case UNIT_MILLIS:
		if (v % 1000 == 0)
			snprintf(buf, len, "%llus", (unsigned long long)(v / 1000));
		else
			snprintf(buf, len, "%llums", (unsigned long long)v);
		break;
	case UNIT_COUNT: snprintf(buf, len, "%llu", (unsigned long long)v); break;
	}
	return buf;
}

/* The next blank-separated token: its length, 0 at the end of the line. */
static size_t next_token(struct cursor *c, char *buf, size_t len)
{
	size_t n;

	cursor_skip_ws(c);
	n = strcspn(c->s + c->pos, " \t");
	if (n == 0 || n >= len)
		return n;
	memcpy(buf, c->s + c->pos, n);
	buf[n] = '\0';
	return n;
}

/* "16M" in bytes, "1.5s" in the unit asked for; -1 when it is not one. */
static int parse_amount(const char *t, enum unit unit, uint64_t *out)
{
	char *end;
	double scale = 1;

	if (!isdigit((unsigned char)*t))
		return -1;
	errno = 0;
	double v = strtod(t, &end);
	if (errno || end == t)
		return -1;
	switch (unit) {
	case UNIT_BYTES:
	case UNIT_COUNT:
		if (strchr(t, '.') || strchr(t, 'e') || strchr(t, 'x'))
			return -1;
		if (unit == UNIT_BYTES && *end) {
			const char *k = strchr("KMGT", *end);
			if (!k || end[1])
				return -1;
			scale = (double)(1ull << (10 * (k - "KMGT" + 1)));
		} else if (*end) {
			return -1;
		}
		break;
	case UNIT_SECONDS:
	case UNIT_MILLIS:
		if (!strcmp(end, "ms"))
			scale = 0.001;
		else if (!*end || !strcmp(end, "s"))
			scale = 1;
		else if (!strcmp(end, "m"))
			scale = 60;
		else if (!strcmp(end, "h"))
			scale = 3600;
		else
			return -1;
		if (unit == UNIT_MILLIS)
			scale *= 1000;
		break;
	}
	v *= scale;
	if (v >= 1e18)
		return -1;
	/* seconds round up, so 500ms of CPU is 1s and never 0 (unlimited) */
	uint64_t whole = (uint64_t)v;
	if (unit == UNIT_SECONDS)
		*out = whole + (v > (double)whole);
	else
		*out = whole + (v - (double)whole >= 0.5);
	return 0;
}

static const char *unit_help(enum unit u)
{
	switch (u) {
	case UNIT_BYTES: return "a size such as 512M or 1G";
	case UNIT_SECONDS:
	case UNIT_MILLIS: return "a time such as 500ms, 30s or 5m";
	case UNIT_COUNT: return "a whole number";
	}
	return "";
}

static bool set_once(struct parser *ps, struct cursor *c, size_t col, struct pb_where *where,
                     const char *what)
{
	if (where->file) {
		ERR_AT(ps, c, col - 1, "a second %s in this file (the first is at line %u)", what, where->line);
		return false;
	}
	*where = (struct pb_where){ c->file, c->line, (unsigned)col };
	return true;
}

void sandbox_limit(struct parser *ps, struct cursor *c, size_t col, struct pb_sandbox *own)
{
	char name[32], value[64], what[48], near[32] = "";
	size_t ncol, vcol, n;
	int l;

	cursor_skip_ws(c);
	ncol = c->pos;
	n = cursor_word(c, name, sizeof(name));
	if (n == 0 || n >= sizeof(name)) {
		ERR_AT(ps, c, ncol, "@limit needs a name: memory, address-space, cpu, files, processes, file-size, core or call-time");
		return;
	}
	c->pos += n;
	for (l = 0; l < PB_LIMIT_COUNT; l++)
		if (!strcmp(name, pb_limit_names[l]))
			break;
	if (l == PB_LIMIT_COUNT) {
		unsigned best = 3;
		for (int i = 0; i < PB_LIMIT_COUNT; i++) {
			unsigned d = edit_distance(name, pb_limit_names[i]);
			if (d < best) {
				best = d;
				snprintf(near, sizeof(near), "%s", pb_limit_names[i]);
			}
		}
		if (*near)
			ERR_AT(ps, c, ncol, "unknown limit '%s'; did you mean '%s'?", name, near);
		else
			ERR_AT(ps, c, ncol, "unknown limit '%s' (memory, address-space, cpu, files, processes, file-size, "
			                    "core, call-time)",
			       name);
		return;
	}
	cursor_skip_ws(c);
	vcol = c->pos;
	n = next_token(c, value, sizeof(value));
	if (n == 0 || n >= sizeof(value)) {
		ERR_AT(ps, c, vcol, "@limit %s needs %s", name, unit_help(limit_info[l].unit));
		return;
	}
	c->pos += n;
	if (!cursor_at_end(c)) {
		ERR_AT(ps, c, c->pos, "unexpected text after @limit %s %s", name, value);
		return;
	}
	uint64_t v;
	if (!strcmp(value, "unlimited")) {
		if (!limit_info[l].may_be_unlimited) {
			ERR_AT(ps, c, vcol, "@limit %s cannot be unlimited", name);
			return;
		}
		v = PB_LIMIT_UNLIMITED;
	} else if (parse_amount(value, limit_info[l].unit, &v) < 0) {
		ERR_AT(ps, c, vcol, "'%s' is not %s", value, unit_help(limit_info[l].unit));
		return;
	} else if (v < limit_info[l].min) {
		char min[32];
		ERR_AT(ps, c, vcol, "@limit %s %s is below %s, which the worker needs to start", name, value,
		       pb_limit_format((enum pb_limit)l, limit_info[l].min, min, sizeof(min)));
		return;
	}
	snprintf(what, sizeof(what), "@limit %s", name);
	if (set_once(ps, c, col, &own->limit_where[l], what))
		own->limit[l] = v;
}

/* WORD, one of `choices` (NULL-terminated); its index or -1 after reporting. */
static int parse_choice(struct parser *ps, struct cursor *c, const char *directive,
                        const char *const *choices, size_t nchoices)
{
	char w[32], list[96] = "";
	size_t col, n;

	for (size_t i = 0; i < nchoices; i++) {
		strncat(list, i ? (i + 1 == nchoices ? " or " : ", ") : "", sizeof(list) - strlen(list) - 1);
		strncat(list, choices[i], sizeof(list) - strlen(list) - 1);
	}
	cursor_skip_ws(c);
	col = c->pos;
	n = cursor_word(c, w, sizeof(w));
	if (n == 0 || n >= sizeof(w)) {
		ERR_AT(ps, c, col, "%s needs %s", directive, list);
		return -1;
	}
	c->pos += n;
	for (size_t i = 0; i < nchoices; i++)
		if (!strcmp(w, choices[i])) {
			if (!cursor_at_end(c)) {
				ERR_AT(ps, c, c->pos, "unexpected text after %s %s", directive, w);
				return -1;
			}
			return (int)i;
		}
	ERR_AT(ps, c, col, "%s takes %s, not '%s'", directive, list, w);
	return -1;
}

/* @host-call NAME...: each name is checked on its own, so that one line
 * reports every bad name in it. */
void sandbox_host_call(struct parser *ps, struct cursor *c, size_t col, struct pb_sandbox *own)
{
	char name[PB_HOST_NAME_MAX + 1];
	size_t ncol, n, count = 0;

	(void)col;

	for (;; c->pos += n, count++) {
		cursor_skip_ws(c);
		ncol = c->pos;
		n = strcspn(c->s + ncol, " \t");
		if (n == 0)
			break;
		if (memchr(c->s + ncol, '*', n)) {
			ERR_AT(ps, c, ncol, "@host-call has no wildcard: list every host function the plugin "
			                    "may call by name");
			continue;
		}
		if (n > PB_HOST_NAME_MAX) {
			ERR_AT(ps, c, ncol, "a host function name is at most %d bytes, not %zu",
			       PB_HOST_NAME_MAX, n);
			continue;
		}
		memcpy(name, c->s + ncol, n);
		name[n] = '\0';
		if (!pb_host_name_valid(name)) {
			ERR_AT(ps, c, ncol, "'%s' is not a host function name (%s)", name, strchr(name, ',') ? "names are separated by blanks, not commas" : "[A-Za-z_][A-Za-z0-9_]*");
			continue;
		}
		const struct pb_grant *first = grant_find(own, name);
		if (first) {
			ERR_AT(ps, c, ncol, "a second @host-call %s in this file (the first is at line %u)",
			       name, first->where.line);
			continue;
		}
		if (own->ngrants >= POLICY_GRANTS_MAX) {
			ERR_AT(ps, c, ncol, "more than %d host functions granted in one file", POLICY_GRANTS_MAX);
			return;
		}
		char *copy = strdup(name);
		const struct pb_where where = { c->file, c->line, (unsigned)ncol + 1 };
		if (!copy || !grant_push(own, copy, &where)) {
			free(copy);
			ERR_AT(ps, c, ncol, "out of memory");
		}
	}
	if (count == 0)
		ERR_AT(ps, c, c->pos, "@host-call needs the names of the host functions it grants");
}

void sandbox_layer(struct parser *ps, struct cursor *c, size_t col, struct pb_sandbox *own)
{
	char name[32], what[48];
	size_t ncol, n;
	int l, mode;

	cursor_skip_ws(c);
	ncol = c->pos;
	n = cursor_word(c, name, sizeof(name));
	for (l = 0; n && n < sizeof(name) && l < PB_LAYER_COUNT; l++)
		if (!strcmp(name, pb_layer_names[l]))
			break;
	if (n == 0 || n >= sizeof(name) || l == PB_LAYER_COUNT) {
		ERR_AT(ps, c, ncol, "@layer names namespaces or landlock (seccomp, capabilities and "
		                    "limits are always on)");
		return;
	}
	c->pos += n;
	snprintf(what, sizeof(what), "@layer %s", name);
	mode = parse_choice(ps, c, what, pb_layer_mode_names, 3);
	if (mode >= 0 && set_once(ps, c, col, &own->layer_where[l], what))
		own->layer[l] = (enum pb_layer_mode)mode;
}

void sandbox_proc(struct parser *ps, struct cursor *c, size_t col, struct pb_sandbox *own)
{
	int v = parse_choice(ps, c, "@proc", pb_proc_names, 2);

	if (v >= 0) {
		own->proc_where = (struct pb_where){ c->file, c->line, (unsigned)col };
		own->proc = (enum pb_proc)v;
	}
}

/* @scratch-exec on|off: with W^X given up and execve refused (default),
 * a noexec scratch protects nothing; a policy that keeps W^X (strict)
 * keeps it too, or a plugin could write a library there and map it. */
void sandbox_scratch_exec(struct parser *ps, struct cursor *c, size_t col, struct pb_sandbox *own)
{
	int v = parse_choice(ps, c, "@scratch-exec", pb_proc_names, 2);

	if (v >= 0) {
		own->scratch_exec_where = (struct pb_where){ c->file, c->line, (unsigned)col };
		own->scratch_exec = v == PB_PROC_ON;
	}
}

/* @fresh-per-call: every call in a new worker, ended after its answer
 * (with --spawn zygote, a new child of the plugin's zygote). */
void sandbox_fresh_per_call(struct parser *ps, struct cursor *c, size_t col, struct pb_sandbox *own)
{
	char extra[64];
	size_t n;

	cursor_skip_ws(c);
	n = next_token(c, extra, sizeof(extra));
	if (n > 0 && c->s[c->pos] != '#') {
		ERR_AT(ps, c, c->pos, "@fresh-per-call takes nothing");
		return;
	}
	own->fresh_where = (struct pb_where){ c->file, c->line, (unsigned)col };
	own->fresh_per_call = true;
}

/* @scratch SIZE [inodes=N] | none */
void sandbox_scratch(struct parser *ps, struct cursor *c, size_t col, struct pb_sandbox *own)
{
	char value[64], opt[64];
	size_t vcol, ocol, n;
	uint64_t v = 0, inodes = 0;

	cursor_skip_ws(c);
	vcol = c->pos;
	n = next_token(c, value, sizeof(value));
	if (n == 0 || n >= sizeof(value)) {
		ERR_AT(ps, c, vcol, "@scratch needs a size such as 64M, or none");
		return;
	}
	c->pos += n;
	if (strcmp(value, "none") != 0 && (parse_amount(value, UNIT_BYTES, &v) < 0 || v < 4096)) {
		ERR_AT(ps, c, vcol, "@scratch takes a size of at least 4K such as 64M, or none; not '%s'",
		       value);
		return;
	}
	cursor_skip_ws(c);
	ocol = c->pos;
	n = next_token(c, opt, sizeof(opt));
	if (n > 0 && v && !strncmp(c->s + ocol, "inodes=", 7)) {
		if (n >= sizeof(opt) || parse_amount(opt + 7, UNIT_COUNT, &inodes) < 0 ||
		    inodes < SCRATCH_INODES_FLOOR) {
			ERR_AT(ps, c, ocol + 7, "@scratch inodes= takes a whole number of files of at least %u, "
			                        "such as inodes=4096",
			       SCRATCH_INODES_FLOOR);
			return;
		}
		c->pos += n;
	}
	if (!cursor_at_end(c)) {
		ERR_AT(ps, c, c->pos, "unexpected text after @scratch %s%s", value,
		       v ? " (the only option is inodes=N, the files it may hold)" : "");
		return;
	}
	own->scratch_where = (struct pb_where){ c->file, c->line, (unsigned)col };
	own->scratch = v;
	own->scratch_inodes = v ? (inodes ? inodes : pb_scratch_default_inodes(v)) : 0;
}

uint64_t pb_scratch_default_inodes(uint64_t bytes)
{
	uint64_t n = bytes / PB_SCRATCH_BYTES_PER_INODE;

	return n < PB_SCRATCH_INODES_MIN ? PB_SCRATCH_INODES_MIN : n;
}
