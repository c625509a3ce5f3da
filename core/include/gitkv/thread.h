/*
 * gitkv/thread.h - starting the helper threads of gitkv's daemons.
 *
 * Every thread gitkv creates (ref watcher, sync engine, notifier, replay)
 * starts with SIGTERM, SIGINT, SIGHUP, SIGQUIT and SIGUSR1 blocked, so the
 * process's signals are always delivered to the threads that handle them.
 *
 * Threads: callable from any thread; the caller's signal mask is restored.
 */
#ifndef GITKV_THREAD_H
#define GITKV_THREAD_H

#include <pthread.h>

/*
 * pthread_create() with the process signals blocked in the new thread.
 * Returns 0, or GITKV_ERROR with "cannot start the WHAT thread: ..." as the
 * message.
 */
int gitkv_thread_start(pthread_t *out, void *(*fn)(void *), void *arg, const char *what);

#endif
