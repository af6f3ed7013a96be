/* spawner.c - one thread that makes every worker and the fork-server.
 *
 * A worker asks the kernel for SIGKILL when its parent dies
 * (PR_SET_PDEATHSIG), so that it ends with the supervisor however the
 * supervisor ends, SIGKILL included. But the kernel's "parent" is the
 * thread that cloned it: a Python host calling from a ThreadPoolExecutor
 * thread lost its workers when that thread exited, and the next call
 * failed with "killed by signal 9". So clone and fork happen here, on a
 * thread that lives as long as the process and does nothing else: its
 * exit is the process's exit.
 *
 * The thread blocks every signal (the host's handlers run elsewhere); the
 * children reset their mask before exec. After fork() the copy has no
 * spawner thread: pthread_atfork resets the state and the next request
 * starts one there.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

#include "jail/spawner.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t turn = PTHREAD_MUTEX_INITIALIZER; /* one request at a time */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* the fields below */
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static bool running;
static pthread_t spawner;
static pb_spawner_fn *req_fn;
static void *req_arg;
static long req_result;
static unsigned long asked, answered;

static void *spawner_main(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&lock);
	for (;;) {
		while (answered == asked)
			pthread_cond_wait(&wake, &lock);
		pb_spawner_fn *fn = req_fn;
		void *arg = req_arg;
		pthread_mutex_unlock(&lock);
		long r = fn(arg);
		pthread_mutex_lock(&lock);
		req_result = r;
		answered = asked;
		pthread_cond_broadcast(&wake);
	}
	return NULL;
}

/* Is this the spawner itself, forking for a request (the fork-server)?
 * Then a request is in flight and holds the locks: leave them alone. */
static bool on_spawner(void)
{
	return running && pthread_equal(pthread_self(), spawner);
}

/* A fork elsewhere waits for a request in flight; its copy starts afresh,
 * with the locks this thread took released and no spawner thread. */
static void before_fork(void)
{
	if (on_spawner())
		return;
	pthread_mutex_lock(&turn);
	pthread_mutex_lock(&lock);
}

static void after_fork_parent(void)
{
	if (on_spawner())
		return;
	pthread_mutex_unlock(&lock);
	pthread_mutex_unlock(&turn);
}

static void after_fork_child(void)
{
	if (on_spawner())
		return; /* about to exec */
	running = false;
	asked = answered = 0;
	pthread_cond_init(&wake, NULL);
	pthread_mutex_unlock(&lock);
	pthread_mutex_unlock(&turn);
}

static void register_fork_handlers(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* With `lock` held. */
static bool start_thread(void)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int r;

	if (pthread_attr_init(&attr) != 0)
		return false;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&spawner, &attr, spawner_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	running = r == 0;
	return running;
}

long pb_spawner_run(pb_spawner_fn *fn, void *arg)
{
	long r;

	pthread_once(&once, register_fork_handlers);
	pthread_mutex_lock(&turn);
	pthread_mutex_lock(&lock);
	if (!running && !start_thread()) {
		pthread_mutex_unlock(&lock);
		r = fn(arg);
		pthread_mutex_unlock(&turn);
		return r;
	}
	req_fn = fn;
	req_arg = arg;
	asked++;
	pthread_cond_broadcast(&wake);
	while (answered != asked)
		pthread_cond_wait(&wake, &lock);
	r = req_result;
	pthread_mutex_unlock(&lock);
	pthread_mutex_unlock(&turn);
	return r;
}
