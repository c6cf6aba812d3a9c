/* What a worker process is (supervisor.c starts them): its number, how
 * many there are, its end of each shared listener, and the memory the
 * workers and their supervisor share for one /metrics of them all. A
 * process that is no worker (workers: 1) has number 0. Service thread. */
#ifndef MQG_WORKER_H
#define MQG_WORKER_H

#include <stddef.h>

/* The metrics of every worker and of the supervisor: one slot each, in a
 * shared anonymous mapping made before the workers are forked. */
struct worker_shm;

/* n workers' slots and the supervisor's. NULL when out of memory. */
struct worker_shm *worker_shm_new(int n);
void worker_shm_free(struct worker_shm *m);

/* Writes text[0..len) as slot's metrics (slot n: the supervisor's); a
 * text larger than a slot leaves it empty. Returns 0 or -1 (too big). */
int worker_shm_put(struct worker_shm *m, int slot, const char *text,
                   size_t len);

/* In a worker, after the fork: it is number index (1..n); listen_fds[i]
 * is its socket of listener i (the array stays the caller's). */
void worker_set(int index, int n, const int *listen_fds, size_t n_listeners,
                struct worker_shm *shm);

/* 0 outside workers, else 1..worker_count(). */
int worker_index(void);
int worker_count(void);

/* This worker's socket of listener i, or -1 (not a worker: libwebsockets
 * listens itself). */
int worker_listen_fd(size_t i);

/* The text of GET /metrics: this process's metrics, and in a worker those
 * of every worker (label worker="N") and of the supervisor, merged by
 * family. Returns 0 with a malloc'd *out, or -1. */
int worker_metrics(char **out, size_t *len);

/* From the keepalive tick: every 5 s a worker publishes its metrics in
 * its slot (the other workers' figures in /metrics are that old at most). */
void worker_tick(void);

#endif
