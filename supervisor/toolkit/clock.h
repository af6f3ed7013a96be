/* clock.h - the one clock of the supervisor: monotonic seconds as a double,
 * for deadlines, rate windows and stall clocks (never the wall clock, which
 * an operator may set back). */
#ifndef PLUGBOX_CLOCK_H
#define PLUGBOX_CLOCK_H

double pb_now(void);

#endif
