#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "log.h"

/* Relaxed: nothing else is published through it. */
static atomic_int threshold = LOG_LVL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

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
    n = snprintf(line, sizeof(line), "%s: ", level_names[lvl]);
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
    static time_t window;
    static unsigned lines, dropped;
    time_t now = time(NULL);
    size_t n = strlen(line);

    if (now - window >= LWS_LOG_WINDOW) {
        if (dropped)
            log_msg(LOG_LVL_WARN, "lws: %u more messages not logged",
                    dropped);
        window = now;
        lines = dropped = 0;
    }
    if (++lines > LWS_LOG_BURST) {
        dropped++;
        return;
    }
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_msg(level == LLL_ERR ? LOG_LVL_ERROR : LOG_LVL_WARN, "lws: %.*s",
            (int)n, line);
}

void log_init_lws(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
}
