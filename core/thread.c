/*
 * thread.c - helper threads with the process signals blocked (gitkv/thread.h).
 */
#include <signal.h>
#include <string.h>

#include "gitkv/error.h"
#include "gitkv/thread.h"

int gitkv_thread_start(pthread_t *out, void *(*fn)(void *), void *arg, const char *what)
{
	sigset_t block, old;
	int err;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	err = pthread_create(out, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return gitkv_error_set(GITKV_ERROR, "cannot start the %s thread: %s", what,
				       strerror(err));
	return 0;
}
