/* policy_cache.c - a supervisor's parsed policies, kept from one worker
 * start to the next.
 *
 * Parsing python.policy and what includes it cost ~0.35 ms of every start
 * (a restart from the fork-server is ~5 ms in all), and its compiled
 * program (the memo of policy_compile.c) was thrown away with it. A policy
 * kept here is handed to the next start of the same name when every file
 * its load read still holds the bytes that load parsed: the files are read
 * again and compared, byte for byte, with the copies the parser kept
 * (policy_parse.c). Bytes, not mtime/size/inode: an edit within one tick
 * of the file system's clock, or one that keeps the size, is still seen,
 * and a file replaced in the middle of a parse is seen at the next start
 * (the copy is what was parsed, not what the file held afterwards).
 * Reading ~20 KB of two files costs a few syscalls; the parse it saves is
 * ten times that.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy_cache.h"
#include "policy/policy_syntax.h"

struct kept {
	char *dir;
	char *name;
	struct pb_policy *policy; /* the cache's own reference */
};

struct pb_policy_cache {
	struct kept *v;
	size_t n, cap;
	uint64_t parsed, kept;
};

struct pb_policy_cache *pb_policy_cache_new(void)
{
	return calloc(1, sizeof(struct pb_policy_cache));
}

static void kept_free(struct kept *k)
{
	free(k->dir);
	free(k->name);
	pb_policy_free(k->policy);
	memset(k, 0, sizeof(*k));
}

void pb_policy_cache_free(struct pb_policy_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		kept_free(&c->v[i]);
	free(c->v);
	free(c);
}

void pb_policy_cache_counts(const struct pb_policy_cache *c, uint64_t *parsed, uint64_t *kept)
{
	*parsed = c ? c->parsed : 0;
	*kept = c ? c->kept : 0;
}

/* Does PATH hold exactly TEXT (LEN bytes)? Any error: no. */
static bool file_holds(const char *path, const char *text, size_t len)
{
	struct stat st;
	bool same = false;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY); /* a FIFO: no waiting */

	if (fd < 0)
		return false;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == len) {
		/* One byte more than expected: a file that grew since fstat. */
		char *buf = malloc(len + 1);
		size_t got = 0;
		ssize_t n = 1;
		while (buf && got < len + 1 && n > 0) {
			n = read(fd, buf + got, len + 1 - got);
			if (n < 0 && errno == EINTR)
				n = 1;
			else if (n > 0)
				got += (size_t)n;
		}
		same = buf && n >= 0 && got == len && memcmp(buf, text, len) == 0;
		free(buf);
	}
	close(fd);
	return same;
}

/* Every file the load read, unchanged? */
static bool still_true(const struct pb_policy *p)
{
	if (p->nkept != p->nfiles || p->nfiles == 0)
		return false;
	for (size_t i = 0; i < p->nfiles; i++)
		if (!p->texts[i] || !file_holds(p->files[i], p->texts[i], p->text_lens[i]))
			return false;
	return true;
}

static struct kept *find(struct pb_policy_cache *c, const char *dir, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].name, name) && !strcmp(c->v[i].dir, dir))
			return &c->v[i];
	return NULL;
}

/* Keep P under (DIR, NAME), replacing what was kept; false: not kept. */
static bool keep(struct pb_policy_cache *c, struct kept *slot, const char *dir, const char *name,
                 struct pb_policy *p)
{
	struct kept k = { strdup(dir), strdup(name), NULL };

	if (!k.dir || !k.name) {
		kept_free(&k);
		return false;
	}
	if (!slot) {
		if (c->n == c->cap) {
			size_t cap = c->cap ? 2 * c->cap : 16;
			struct kept *v = cap <= PB_POLICY_CACHE_MAX ? realloc(c->v, cap * sizeof(*v)) : NULL;
			if (!v) {
				kept_free(&k);
				return false;
			}
			c->v = v;
			c->cap = cap;
		}
		slot = &c->v[c->n++];
	} else {
		kept_free(slot);
	}
	k.policy = pb_policy_ref(p);
	*slot = k;
	return true;
}

int pb_policy_cache_load(struct pb_policy_cache *c, const char *dir, const char *name, pb_policy_diag_fn diag,
                         void *data, struct pb_policy **out)
{
	struct kept *k = find(c, dir, name);
	int r;

	*out = NULL;
	if (k && still_true(k->policy)) {
		c->kept++;
		*out = pb_policy_ref(k->policy);
		return 0;
	}
	c->parsed++;
	r = policy_load_keeping_texts(dir, name, diag, data, out);
	if (r < 0 || (*out)->sandbox.network == PB_NETWORK_CONNECT) {
		/* Nothing kept under this name any more: an error is said at
		 * every start, and a policy a worker changes is never shared. */
		if (k) {
			kept_free(k);
			*k = c->v[--c->n];
		}
		return r;
	}
	keep(c, k, dir, name, *out);
	return 0;
}
