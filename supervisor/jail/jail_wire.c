/* jail_wire.c - a jail plan and a worker's argv as bytes, for the
 * fork-server (forkserver.h): what pb_jail_enter reads, nothing else.
 *
 * Little-endian fixed-size integers and length-prefixed strings (a length
 * of UINT32_MAX is NULL). The reader checks every length against what is
 * left, so a short or corrupt message is an error, never an overread.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jail/jail.h"

#define JAIL_WIRE_MAGIC 0x314a4250u /* "PBJ1" */
#define NO_STRING UINT32_MAX
#define MAX_ITEMS 4096

struct writer {
	uint8_t *buf;
	size_t len, cap;
	int err;
};

static void put(struct writer *w, const void *p, size_t n)
{
	if (w->err)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4096;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *grown = realloc(w->buf, cap);
		if (!grown) {
			w->err = -ENOMEM;
			return;
		}
		w->buf = grown;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_u32(struct writer *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	put(w, b, 4);
}

static void put_u64(struct writer *w, uint64_t v)
{
	put_u32(w, (uint32_t)v);
	put_u32(w, (uint32_t)(v >> 32));
}

static void put_str(struct writer *w, const char *s)
{
	if (!s) {
		put_u32(w, NO_STRING);
		return;
	}
	size_t n = strlen(s);
	if (n >= NO_STRING) {
		w->err = -E2BIG;
		return;
	}
	put_u32(w, (uint32_t)n);
	put(w, s, n);
}

int pb_jail_pack(const struct pb_jail *j, char *const *argv, uint8_t **out, size_t *len)
{
	struct writer w = { 0 };
	uint32_t argc = 0;

	while (argv && argv[argc])
		argc++;
	if (j->nops > MAX_ITEMS || argc > MAX_ITEMS)
		return -E2BIG;
	put_u32(&w, JAIL_WIRE_MAGIC);
	put_u32(&w, (uint32_t)j->clone_flags);
	put_u32(&w, (uint32_t)j->userns | (uint32_t)j->mount_tree << 1 | (uint32_t)j->as_root << 2 |
	                    (uint32_t)j->ro_batch << 3);
	put_u32(&w, (uint32_t)j->uid);
	put_u32(&w, (uint32_t)j->gid);
	put_u32(&w, (uint32_t)j->last_cap);
	put_str(&w, j->newroot);
	put_u32(&w, (uint32_t)j->nops);
	for (size_t i = 0; i < j->nops; i++) {
		put_u32(&w, (uint32_t)j->ops[i].kind);
		put_u64(&w, j->ops[i].locked);
		put_str(&w, j->ops[i].target);
		put_str(&w, j->ops[i].arg);
	}
	for (int i = 0; i < PB_JAIL_RLIMITS; i++) {
		put_u32(&w, (uint32_t)j->rlimit_resource[i]);
		put_u64(&w, (uint64_t)j->rlimits[i].rlim_cur);
		put_u64(&w, (uint64_t)j->rlimits[i].rlim_max);
	}
	put_u32(&w, argc);
	for (uint32_t i = 0; i < argc; i++)
		put_str(&w, argv[i]);
	if (w.err) {
		free(w.buf);
		return w.err;
	}
	*out = w.buf;
	*len = w.len;
	return 0;
}

struct reader {
	const uint8_t *p;
	size_t left;
	int err;
};

static uint32_t get_u32(struct reader *r)
{
	if (r->err || r->left < 4) {
		r->err = -EBADMSG;
		return 0;
	}
	uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
	r->p += 4;
	r->left -= 4;
	return v;
}

static uint64_t get_u64(struct reader *r)
{
	uint64_t lo = get_u32(r);
	return lo | (uint64_t)get_u32(r) << 32;
}

/* A string of the message, or NULL: *ok says whether NULL was meant. */
static char *get_str(struct reader *r, bool *ok)
{
	uint32_t n = get_u32(r);
	char *s;

	*ok = false;
	if (r->err)
		return NULL;
	if (n == NO_STRING) {
		*ok = true;
		return NULL;
	}
	if (n > r->left || memchr(r->p, '\0', n)) {
		r->err = -EBADMSG;
		return NULL;
	}
	if (!(s = malloc((size_t)n + 1))) {
		r->err = -ENOMEM;
		return NULL;
	}
	memcpy(s, r->p, n);
	s[n] = '\0';
	r->p += n;
	r->left -= n;
	*ok = true;
	return s;
}

void pb_jail_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

int pb_jail_unpack(const uint8_t *buf, size_t len, struct pb_jail *j, char ***argv_out)
{
	struct reader r = { buf, len, 0 };
	char **argv = NULL;
	bool ok;

	memset(j, 0, sizeof(*j));
	*argv_out = NULL;
	if (get_u32(&r) != JAIL_WIRE_MAGIC)
		return -EBADMSG;
	j->clone_flags = (int)get_u32(&r);
	uint32_t flags = get_u32(&r);
	j->userns = flags & 1;
	j->mount_tree = flags & 2;
	j->as_root = flags & 4;
	j->ro_batch = flags & 8;
	j->uid = (uid_t)get_u32(&r);
	j->gid = (gid_t)get_u32(&r);
	j->last_cap = (int)get_u32(&r);
	j->newroot = get_str(&r, &ok);
	uint32_t nops = get_u32(&r);
	if (!r.err && (nops > MAX_ITEMS || !(j->ops = calloc(nops ? nops : 1, sizeof(*j->ops)))))
		r.err = nops > MAX_ITEMS ? -EBADMSG : -ENOMEM;
	for (uint32_t i = 0; !r.err && i < nops; i++) {
		struct pb_jail_op *op = &j->ops[i];
		uint32_t kind = get_u32(&r);
		if (kind > JAIL_OP_LAST)
			r.err = -EBADMSG;
		op->kind = (enum pb_jail_op_kind)kind;
		op->locked = (unsigned long)get_u64(&r);
		op->target = get_str(&r, &ok);
		if (!op->target)
			r.err = r.err ? r.err : -EBADMSG;
		op->arg = get_str(&r, &ok);
		j->nops = i + 1;
	}
	for (int i = 0; !r.err && i < PB_JAIL_RLIMITS; i++) {
		j->rlimit_resource[i] = (int)get_u32(&r);
		j->rlimits[i].rlim_cur = (rlim_t)get_u64(&r);
		j->rlimits[i].rlim_max = (rlim_t)get_u64(&r);
	}
	uint32_t argc = get_u32(&r);
	if (!r.err && (argc == 0 || argc > MAX_ITEMS || !(argv = calloc((size_t)argc + 1, sizeof(char *)))))
		r.err = argv || argc == 0 || argc > MAX_ITEMS ? -EBADMSG : -ENOMEM;
	for (uint32_t i = 0; !r.err && i < argc; i++)
		if (!(argv[i] = get_str(&r, &ok)))
			r.err = r.err ? r.err : -EBADMSG;
	if (!r.err && (r.left != 0 || (j->mount_tree && !j->newroot)))
		r.err = -EBADMSG;
	if (r.err) {
		pb_jail_argv_free(argv);
		pb_jail_free(j);
		return r.err;
	}
	*argv_out = argv;
	return 0;
}
