/* names.c - pb_valid_plugin_name (names.h). */
#include "config.h"

#include <string.h>

#include "proto/names.h"

bool pb_valid_plugin_name(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > PB_PLUGIN_NAME_MAX)
		return false;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
		      (*n >= '0' && *n <= '9') || *n == '_' || *n == '-'))
			return false;
	return true;
}
