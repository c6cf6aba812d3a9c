/* systemd service notifications (Type=notify): READY, STATUS, STOPPING,
 * and the watchdog, pinged from the service loop so that a stuck loop is
 * restarted. No-ops when not started by systemd. Service thread. */
#ifndef MQG_NOTIFY_H
#define MQG_NOTIFY_H

struct lws_context;

/* Tells systemd the daemon is ready; with ctx (at start), also starts the
 * watchdog pings. */
void notify_ready(struct lws_context *ctx);

/* A one-line status shown by systemctl status. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void notify_stopping(void);
void notify_reloading(void);

/* The watchdog interval systemd asked of this process (µs), or 0; and one
 * ping. For a process without a libwebsockets loop (the supervisor). */
unsigned long long notify_watchdog_usec(void);
void notify_watchdog(void);

#endif
