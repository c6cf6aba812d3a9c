/* Logging: one line per event on stderr, "LEVEL: message", never a secret.
 * Safe from any thread (each line is a single write). */
#ifndef MQG_LOG_H
#define MQG_LOG_H

#include "config.h"

extern enum log_level log_threshold;

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Routes libwebsockets' own warnings and errors through log_msg(). */
void log_init_lws(void);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { if (log_threshold >= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
