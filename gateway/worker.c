/* A worker's identity and the shared metrics (worker.h). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "clock.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "promtext.h"
#include "worker.h"

/* how often a worker publishes its metrics for the others' /metrics */
#define PUBLISH_MS 5000

/* one process's metrics text; seq is odd while it is written */
#define SLOT_BYTES (256 * 1024)
struct slot {
    _Atomic uint32_t seq;
    uint32_t len;
    char text[SLOT_BYTES - 8];
};

struct worker_shm {
    int n;
    struct slot *slots;           /* n + 1: the supervisor's last */
};

static struct {
    int index, n;
    const int *fds;
    size_t n_fds;
    struct worker_shm *shm;
} W;

struct worker_shm *worker_shm_new(int n)
{
    struct worker_shm *m = calloc(1, sizeof(*m));
    void *p;

    if (!m)
        return NULL;
    p = mmap(NULL, (size_t)(n + 1) * sizeof(struct slot),
             PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        free(m);
        return NULL;
    }
    m->n = n;
    m->slots = p;
    return m;
}

void worker_shm_free(struct worker_shm *m)
{
    if (!m)
        return;
    munmap(m->slots, (size_t)(m->n + 1) * sizeof(struct slot));
    free(m);
}

int worker_shm_put(struct worker_shm *m, int slot, const char *text,
                   size_t len)
{
    struct slot *s = &m->slots[slot];
    uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    int rc = 0;

    if (len > sizeof(s->text)) {
        len = 0;
        rc = -1;
    }
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    memcpy(s->text, text, len);
    s->len = (uint32_t)len;
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
    return rc;
}

/* A consistent copy of slot's text (malloc'd), or NULL: it was being
 * written each time it was read, or it is empty. */
static char *slot_get(struct worker_shm *m, int slot, size_t *len)
{
    struct slot *s = &m->slots[slot];

    for (int tries = 0; tries < 8; tries++) {
        uint32_t a = atomic_load_explicit(&s->seq, memory_order_acquire);
        uint32_t l = s->len;
        char *copy;

        if ((a & 1) || l == 0 || l > sizeof(s->text))
            continue;
        if (!(copy = malloc(l)))
            return NULL;
        memcpy(copy, s->text, l);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) == a) {
            *len = l;
            return copy;
        }
        free(copy);
    }
    return NULL;
}

void worker_set(int index, int n, const int *listen_fds, size_t n_listeners,
                struct worker_shm *shm)
{
    char prefix[32];

    W.index = index;
    W.n = n;
    W.fds = listen_fds;
    W.n_fds = n_listeners;
    W.shm = shm;
    snprintf(prefix, sizeof(prefix), "worker %d: ", index);
    log_set_prefix(prefix);
}

int worker_index(void)
{
    return W.index;
}

int worker_count(void)
{
    return W.n ? W.n : 1;
}

int worker_listen_fd(size_t i)
{
    return W.index && i < W.n_fds ? W.fds[i] : -1;
}

/* This worker's metrics with its label; NULL when out of memory. */
static char *own_labelled(size_t *len)
{
    char *text = NULL, *out, num[16];
    size_t tlen = 0;

    if (metrics_render(&text, &tlen) < 0)
        return NULL;
    snprintf(num, sizeof(num), "%d", W.index);
    out = promtext_label(text, tlen, "worker", num, len);
    free(text);
    return out;
}

void worker_tick(void)
{
    static int warned;
    static uint64_t last_ms;
    uint64_t now = clock_now_ms();
    size_t len;
    char *text;

    if (!W.index || !conf()->metrics || (last_ms && now - last_ms < PUBLISH_MS))
        return;
    last_ms = now;
    if (!(text = own_labelled(&len)))
        return;
    if (worker_shm_put(W.shm, W.index - 1, text, len) < 0 && !warned++)
        log_warn("metrics: %zu bytes do not fit the shared slot", len);
    free(text);
}

int worker_metrics(char **out, size_t *len)
{
    const char *texts[CONFIG_WORKERS_MAX + 1];
    char *copies[CONFIG_WORKERS_MAX + 1];
    size_t lens[CONFIG_WORKERS_MAX + 1], n = 0, own_len;
    char *own;
    int rc = -1;

    if (!W.index)
        return metrics_render(out, len);
    if (!(own = own_labelled(&own_len)))
        return -1;
    worker_shm_put(W.shm, W.index - 1, own, own_len);
    /* the workers in order (this one's fresh), then the supervisor's */
    for (int s = 0; s <= W.n; s++) {
        copies[s] = NULL;
        if (s == W.index - 1) {
            texts[n] = own;
            lens[n++] = own_len;
        } else if ((copies[s] = slot_get(W.shm, s, &lens[n]))) {
            texts[n++] = copies[s];
        }
    }
    if ((*out = promtext_merge(texts, lens, n, len)))
        rc = 0;
    for (int s = 0; s <= W.n; s++)
        free(copies[s]);
    free(own);
    return rc;
}
