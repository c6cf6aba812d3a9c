#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "log.h"

/* Relaxed: nothing else is published through it. */
static atomic_int threshold = LOG_LVL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* "worker N: " in a worker process (log_set_prefix()), else "". */
static char prefix[32];

void log_set_prefix(const char *p)
{
    snprintf(prefix, sizeof(prefix), "%s", p);
}

void log_set_threshold(enum log_level lvl)
{
    atomic_store_explicit(&threshold, (int)lvl, memory_order_relaxed);
}

bool log_enabled(enum log_level lvl)
{
    return (int)lvl <= atomic_load_explicit(&threshold, memory_order_relaxed);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    if (!log_enabled(lvl))
        return;
    n = snprintf(line, sizeof(line), "%s%s: ", prefix, level_names[lvl]);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    /* One event, one line, nothing for a terminal to interpret: a user
     * name or a topic quoted in a message could carry a newline (a forged
     * record) or an escape sequence. */
    for (int i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = line[i] == '\t' ? ' ' : '?';
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* nowhere left to report it */
    }
}

/* A budget of lines per window of time (the window starts with its first
 * line). */
struct log_window {
    time_t start;
    unsigned lines, dropped;
};

static time_t now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static bool window_ended(const struct log_window *w, time_t now,
                         unsigned window_s)
{
    return now - w->start >= (time_t)window_s;
}

/* Counts one line against w at now: true when it may be logged. A window
 * that has ended starts again first, and the count of the lines it
 * dropped goes to *ended (else 0). */
static bool window_take(struct log_window *w, time_t now, unsigned burst,
                        unsigned window_s, unsigned *ended)
{
    *ended = 0;
    if (!w->lines || window_ended(w, now, window_s)) {
        *ended = w->dropped;
        w->start = now;
        w->lines = w->dropped = 0;
    }
    if (w->lines >= burst) {
        w->dropped++;
        return false;
    }
    w->lines++;
    return true;
}

/* libwebsockets logs some client mistakes (a malformed handshake) at
 * error level: a client must not be able to flood the log through it.
 * At most LWS_LOG_BURST lines per LWS_LOG_WINDOW seconds, then a count.
 * Service thread: libwebsockets runs there only, and the one call other
 * threads make (lws_cancel_service()) logs at info, which is not routed
 * here. */
#define LWS_LOG_BURST 20
#define LWS_LOG_WINDOW 10

static void lws_log_emit(int level, const char *line)
{
    static struct log_window w;
    unsigned ended;
    bool pass = window_take(&w, now_s(), LWS_LOG_BURST, LWS_LOG_WINDOW,
                            &ended);
    size_t n = strlen(line);

    if (ended)
        log_msg(LOG_LVL_WARN, "lws: %u more messages not logged", ended);
    if (!pass)
        return;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_msg(level == LLL_ERR ? LOG_LVL_ERROR : LOG_LVL_WARN, "lws: %.*s",
            (int)n, line);
}

/* ---- per-address budgets ------------------------------------------------ */

struct log_slot {
    bool used;
    char addr[64];
    struct log_window w;
};

struct log_limit {
    const char *what;
    unsigned burst, window_s;
    struct log_slot slots[LOG_LIMIT_ADDRS + 1]; /* the last: the others */
};

struct log_limit *log_limit_new(const char *what, unsigned burst,
                                unsigned window_s)
{
    struct log_limit *l = calloc(1, sizeof(*l));

    if (l) {
        l->what = what;
        l->burst = burst;
        l->window_s = window_s;
        snprintf(l->slots[LOG_LIMIT_ADDRS].addr,
                 sizeof(l->slots[LOG_LIMIT_ADDRS].addr), "other addresses");
    }
    return l;
}

void log_limit_free(struct log_limit *l)
{
    log_limit_flush(l, true);
    free(l);
}

int log_limit_flush(struct log_limit *l, bool all)
{
    time_t now = now_s();
    int next = -1;

    for (size_t i = 0; l && i <= LOG_LIMIT_ADDRS; i++) {
        struct log_slot *sl = &l->slots[i];

        if (!sl->used)
            continue;
        if (all || window_ended(&sl->w, now, l->window_s)) {
            if (sl->w.dropped)
                log_msg(LOG_LVL_WARN, "%u more %s from %s not logged",
                        sl->w.dropped, l->what, sl->addr);
            sl->used = false;
            memset(&sl->w, 0, sizeof(sl->w));
        } else if (sl->w.dropped) {
            int left = (int)(sl->w.start + (time_t)l->window_s - now);

            if (next < 0 || left < next)
                next = left;
        }
    }
    return next;
}

/* addr's slot, a free one, or the one the others share. */
static struct log_slot *slot_for(struct log_limit *l, const char *addr)
{
    struct log_slot *free_slot = NULL;

    for (size_t i = 0; i < LOG_LIMIT_ADDRS; i++) {
        struct log_slot *sl = &l->slots[i];

        if (sl->used && strncmp(sl->addr, addr, sizeof(sl->addr) - 1) == 0)
            return sl;
        if (!sl->used && !free_slot)
            free_slot = sl;
    }
    if (!free_slot)
        return &l->slots[LOG_LIMIT_ADDRS];
    snprintf(free_slot->addr, sizeof(free_slot->addr), "%s", addr);
    return free_slot;
}

bool log_limited(struct log_limit *l, const char *addr, enum log_level lvl,
                 const char *fmt, ...)
{
    struct log_slot *sl;
    unsigned ended;
    char line[1024];
    va_list ap;

    if (!log_enabled(lvl))
        return true;
    if (l) {
        log_limit_flush(l, false);
        sl = slot_for(l, addr ? addr : "");
        sl->used = true;
        if (!window_take(&sl->w, now_s(), l->burst, l->window_s, &ended))
            return false;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_msg(lvl, "%s", line);
    return true;
}

void log_init_lws(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
}
