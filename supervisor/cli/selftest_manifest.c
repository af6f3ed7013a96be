/* selftest_manifest.c - `plugbox selftest`'s manifests: selftest/probes.txt
 * (built in, trusted) and an operator's DIR/probes.txt (--probes DIR), one
 * probe a line: NAME LAYER EXPECT ATTEMPT. Each error names FILE:LINE.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/selftest.h"
#include "proto/names.h"

static const char *const layer_names[] = {
	"filesystem",
	"network",
	"process",
	"memory",
	"cpu",
	"deadline",
	"signals",
	"kernel",
	"seccomp",
	"identity",
	"capabilities",
	"tty",
	"descriptors",
	"namespaces",
	"output",
	NULL,
};

static int parse_expect(char *text, unsigned *out)
{
	static const char *const names[] = { "result", "killed", "deadline", "limit", "output" };
	const size_t nnames = sizeof(names) / sizeof(names[0]);

	*out = 0;
	for (char *save = NULL, *word = strtok_r(text, "|", &save); word; word = strtok_r(NULL, "|", &save)) {
		size_t i = 0;
		while (i < nnames && strcmp(word, names[i]) != 0)
			i++;
		if (i == nnames)
			return -1;
		*out |= 1u << i;
	}
	return *out ? 0 : -1;
}

static bool probe_dir_exists(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	return snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path) && stat(path, &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

static bool known_layer(const char *s)
{
	for (size_t i = 0; layer_names[i]; i++)
		if (!strcmp(s, layer_names[i]))
			return true;
	return false;
}

/* probes.txt: NAME LAYER EXPECT ATTEMPT..., '#' comments, appended to
 * probes[n..]. Errors name the line; returns the new number of probes, or
 * -1. An operator's probe must be a directory of DIR (built-in ones are
 * checked by make check: tests/tools/check-probes-am). */
int pb_selftest_load_manifest(const char *dir, struct probe *probes, int n, bool operator)
{
	char path[PATH_MAX], line[1024];
	int lineno = 0, first = n;
	FILE *f;

	errno = ENAMETOOLONG;
	f = snprintf(path, sizeof(path), "%s/probes.txt", dir) < (int)sizeof(path) ? fopen(path, "re") : NULL;
	if (!f) {
		fprintf(stderr, "plugbox: selftest: %s/probes.txt: %s\n", dir, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *name, *layer, *expect, *attempt;
		const char *why = NULL;
		lineno++;
		line[strcspn(line, "#\n")] = '\0';
		name = strtok_r(line, " \t", &save);
		if (!name)
			continue;
		layer = strtok_r(NULL, " \t", &save);
		expect = strtok_r(NULL, " \t", &save);
		attempt = save ? save + strspn(save, " \t") : NULL;
		if (!layer || !expect || !attempt || !*attempt)
			why = "expected NAME LAYER EXPECT ATTEMPT";
		else if (!pb_valid_plugin_name(name) || strlen(name) >= sizeof(probes->name))
			why = "bad probe name";
		else if (!known_layer(layer))
			why = "unknown layer";
		else if (n == MAX_PROBES)
			why = "too many probes";
		else if (parse_expect(expect, &probes[n].expect) < 0)
			why = "EXPECT must be result, killed, deadline or limit, joined by '|'";
		else if (operator&& !probe_dir_exists(dir, name))
			why = "no such probe: the directory DIR/NAME, a plugin, is missing";
		if (why) {
			fprintf(stderr, "plugbox: selftest: %s:%d: %s\n", path, lineno, why);
			fclose(f);
			return -1;
		}
		probes[n].dir = dir;
		probes[n].operator= operator;
		snprintf(probes[n].name, sizeof(probes[n].name), "%s", name);
		snprintf(probes[n].layer, sizeof(probes[n].layer), "%s", layer);
		snprintf(probes[n].attempt, sizeof(probes[n].attempt), "%s", attempt);
		n++;
	}
	fclose(f);
	if (n == first)
		fprintf(stderr, "plugbox: selftest: %s: no probes\n", path);
	return n > first ? n : -1;
}
