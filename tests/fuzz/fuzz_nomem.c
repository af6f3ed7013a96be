/* fuzz_nomem.c - allocation failures on purpose, for the fuzz targets.
 *
 * A target linked with -Wl,--wrap=malloc -Wl,--wrap=calloc
 * -Wl,--wrap=realloc -Wl,--wrap=strdup (FUZZ_NOMEM_LDFLAGS in fuzz.am) has
 * every call of those made by plugbox's code (and its own) come here. While
 * armed, the fail_at-th of them fails (and with sticky, every one after
 * it), so the code's out-of-memory paths run as often as the others.
 * Allocations inside shared libraries (libc's own, protobuf-c, jansson,
 * libseccomp) are not affected.
 */
#include <stdbool.h>
#include <stddef.h>

#include "fuzz_common.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static struct {
	bool armed, sticky;
	unsigned long count, fail_at, failed;
} inject;

static bool fail_now(void)
{
	if (!inject.armed)
		return false;
	inject.count++;
	if (inject.count == inject.fail_at || (inject.sticky && inject.count > inject.fail_at)) {
		inject.failed++;
		return true;
	}
	return false;
}

void *__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return fail_now() ? NULL : __real_strdup(s);
}

void fuzz_nomem_arm(unsigned long fail_at, bool sticky)
{
	inject.armed = fail_at > 0;
	inject.sticky = sticky;
	inject.count = inject.failed = 0;
	inject.fail_at = fail_at;
}

unsigned long fuzz_nomem_disarm(void)
{
	inject.armed = false;
	return inject.failed;
}
