/* policy_memo.c - a loaded policy's last compile, kept.
 *
 * The same policy compiled for the same pid and mode makes the same
 * programs: a worker's are made when it starts (spawn.c) and again to
 * check its @after-start rules at its Hello (workers.c), ~0.1 ms each
 * here. A loaded policy is never changed, so its last compile is kept
 * and copied out (policy_compile.c).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "policy/policy_rules.h"

struct pb_compiled_memo {
	bool valid;
	int32_t self_pid;
	enum pb_compile_mode mode;
	struct pb_bpf_blob blob;
};

struct pb_compiled_memo *pb_compiled_memo_new(void)
{
	return calloc(1, sizeof(struct pb_compiled_memo));
}

void pb_compiled_memo_free(struct pb_compiled_memo *m)
{
	if (m)
		pb_bpf_blob_free(&m->blob);
	free(m);
}

static int blob_copy(const struct pb_bpf_blob *from, struct pb_bpf_blob *to)
{
	*to = *from;
	to->data = malloc(from->len ? from->len : 1);
	if (!to->data) {
		memset(to, 0, sizeof(*to));
		return -ENOMEM;
	}
	memcpy(to->data, from->data, from->len);
	return 0;
}

int pb_compiled_memo_get(const struct pb_compiled_memo *m, int32_t self_pid, enum pb_compile_mode mode,
                         struct pb_bpf_blob *out)
{
	if (!m->valid || m->self_pid != self_pid || m->mode != mode)
		return -ENOENT;
	return blob_copy(&m->blob, out);
}

void pb_compiled_memo_put(struct pb_compiled_memo *m, int32_t self_pid, enum pb_compile_mode mode,
                          const struct pb_bpf_blob *blob)
{
	pb_bpf_blob_free(&m->blob);
	m->valid = blob_copy(blob, &m->blob) == 0;
	m->self_pid = self_pid;
	m->mode = mode;
}
