/* suggest.c - "did you mean": optimal string alignment distance (Damerau's
 * edit distance without repeated edits of one substring), which counts the
 * commonest slip, two swapped letters, as one edit. Names are short
 * (plugin names at most 128 bytes), so one row array on the stack does. */
#include "config.h"

#include <string.h>

#include "toolkit/suggest.h"

#define LONGEST 256

size_t pb_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t two_ago[LONGEST + 1], prev[LONGEST + 1], cur[LONGEST + 1];

	if (la > LONGEST || lb > LONGEST)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		two_ago[j] = prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && two_ago[j - 2] + 1 < best)
				best = two_ago[j - 2] + 1;
			cur[j] = best;
		}
		memcpy(two_ago, prev, (lb + 1) * sizeof(prev[0]));
		memcpy(prev, cur, (lb + 1) * sizeof(cur[0]));
	}
	return prev[lb];
}

const char *pb_closest_name(const char *typed, const char *const *candidates, size_t n)
{
	size_t len = strlen(typed), limit = len <= 5 ? 1 : len / 3, best = (size_t)-1;
	const char *found = NULL;

	for (size_t i = 0; i < n; i++) {
		size_t d = pb_edit_distance(typed, candidates[i]);
		if (d > 0 && d <= limit && d < best) {
			best = d;
			found = candidates[i];
		}
	}
	return found;
}
