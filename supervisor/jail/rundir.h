/* rundir.h - where a supervisor makes its per-worker directories in
 * $TMPDIR, and the sweep of what dead supervisors left there (rundir.c).
 */
#ifndef PLUGBOX_JAIL_RUNDIR_H
#define PLUGBOX_JAIL_RUNDIR_H

/* $TMPDIR when it is an absolute path, else /tmp. */
const char *pb_tmp_dir(void);
/* This supervisor process's directory, $TMPDIR/plugbox-run-UID/NS-PID-START,
 * made (and dead siblings swept) at the first call; pb_tmp_dir() when it
 * cannot be ours. Never freed; safe from any thread. */
const char *pb_run_dir(void);

#endif
