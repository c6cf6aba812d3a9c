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

/* Routes libwebsockets' own warnings and errors through log_msg(). */
void log_init_lws(void);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
