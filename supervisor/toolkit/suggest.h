/* suggest.h - "did you mean": the known name closest to a misspelt one.
 * Used for plugin names (the entries of PLUGINS) and command names; the
 * caller passes only candidates that passed its own name check, since a
 * suggestion is printed as it is. */
#ifndef PLUGBOX_SUGGEST_H
#define PLUGBOX_SUGGEST_H

#include <stddef.h>

/* The edit distance (insertions, deletions, substitutions and swaps of two
 * neighbours) between a and b, or a large number past 256 bytes. */
size_t pb_edit_distance(const char *a, const char *b);

/* The candidate nearest to `typed` when it is near enough to be a likely
 * typing slip (one edit for names of up to five bytes, a third of the
 * length beyond), the first of equals; NULL when none is. Exact matches
 * are not suggestions. */
const char *pb_closest_name(const char *typed, const char *const *candidates, size_t n);

#endif
