/* clock.c - pb_now (clock.h). */
#include "config.h"

#include <time.h>

#include "toolkit/clock.h"

double pb_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
