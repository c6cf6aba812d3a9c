/* Logging: one line per event on stderr, "LEVEL: message", never a secret.
 * Safe from any thread (each line is a single write). */
#ifndef MQG_LOG_H
#define MQG_LOG_H

#include <stdbool.h>

#include "config.h"

/* Lines above lvl are not written from now on, on every thread. Set by the
 * service thread (at start and on reload); atomic, as Paho's threads and
 * the password worker read it at any time. */
void log_set_threshold(enum log_level lvl);

/* True when a line of level lvl is written. Any thread. */
bool log_enabled(enum log_level lvl);

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Puts p (at most 31 bytes: "worker 2 ") in front of every line from
 * now on. Before any other thread starts. */
void log_set_prefix(const char *p);

/* Routes libwebsockets' own warnings and errors through log_msg(). */
void log_init_lws(void);

/* A per-address budget of log lines, for what a client can cause at will
 * (failed logins): at most burst lines per address per window_s seconds.
 * The lines over it are counted, and the count is logged as a warning
 * ("N more WHAT from ADDR not logged") by log_limit_flush() once the
 * window has ended. LOG_LIMIT_ADDRS addresses are tracked at a time; the
 * others share one budget ("other addresses"). Service thread only. */
#define LOG_LIMIT_ADDRS 64

struct log_limit;

/* what: static plural text ("failed authentications"). NULL when out of
 * memory; a NULL limiter lets every line through. */
struct log_limit *log_limit_new(const char *what, unsigned burst,
                                unsigned window_s);

/* Logs the counts still held (log_limit_flush(l, true)) and frees l. */
void log_limit_free(struct log_limit *l);

/* Logs the line when addr's budget allows and returns true; else counts
 * it and returns false (the caller makes sure log_limit_flush() runs
 * when the window ends). */
bool log_limited(struct log_limit *l, const char *addr, enum log_level lvl,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Logs the count of each window that has ended (all: of every window) and
 * forgets those addresses. Returns the seconds until the next window that
 * holds a count ends, or -1 when none does. */
int log_limit_flush(struct log_limit *l, bool all);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
