/* The supervisor of `workers` service processes (config.md): it binds the
 * listeners once, one SO_REUSEPORT socket per worker (reuseport.h), forks
 * the workers (each a whole gateway with its own broker connection, its
 * sessions and its stream state), restarts one that dies, forwards
 * SIGHUP and SIGTERM, holds the systemd notify socket (READY, STATUS,
 * RELOADING, STOPPING and the watchdog stand for all of them) and writes
 * its own metrics beside theirs. Single-threaded; it runs no loop of
 * libwebsockets. */
#ifndef MQG_SUPERVISOR_H
#define MQG_SUPERVISOR_H

#include "config.h"

/* The number of workers cfg asks for ("auto": the CPUs this process may
 * run on), 1..CONFIG_WORKERS_MAX. */
int supervisor_workers(const struct config *cfg);

/* Runs n > 1 workers of cfg (ownership passes) until SIGTERM or SIGINT
 * and their shutdown. Returns the exit status. */
int supervisor_run(struct config *cfg, const char *config_path, int n);

#endif
