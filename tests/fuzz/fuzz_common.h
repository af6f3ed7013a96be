/* fuzz_common.h - what the libFuzzer targets of tests/fuzz share: the entry
 * point's prototype, an invariant check that aborts (so libFuzzer records
 * the input as a crash), a check that an input left no descriptor open,
 * allocation failures on purpose (fuzz_nomem.c) and a per-process scratch
 * directory.
 */
#ifndef PLUGBOX_FUZZ_COMMON_H
#define PLUGBOX_FUZZ_COMMON_H

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: broken means a bug, whatever the
 * input was. abort() is what libFuzzer turns into a saved crash input. */
#define FUZZ_ASSERT(cond)                                                          \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
			        __LINE__, #cond);                                  \
			abort();                                                   \
		}                                                                  \
	} while (0)

/* The lowest free descriptor: the same before and after one input, or the
 * input leaked one (descriptors are the resource a leak checker does not
 * see). Only within one input: libFuzzer opens files of its own between
 * them. */
static inline int fuzz_lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	FUZZ_ASSERT(fd >= 0);
	close(fd);
	return fd;
}

/* Make the fail_at-th allocation from now fail (0: none), and with sticky
 * every one after it too (fuzz_nomem.c, for targets linked with its
 * -Wl,--wrap flags). disarm returns how many failed. */
void fuzz_nomem_arm(unsigned long fail_at, bool sticky);
unsigned long fuzz_nomem_disarm(void);

/* A directory of our own under $TMPDIR (default /tmp), made once per
 * process; the path is static. */
static inline const char *fuzz_scratch_dir(const char *prefix)
{
	static char dir[PATH_MAX];
	const char *tmp = getenv("TMPDIR");

	if (dir[0])
		return dir;
	snprintf(dir, sizeof(dir), "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
	if (!mkdtemp(dir)) {
		perror(dir);
		abort();
	}
	return dir;
}

#endif
