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

#endif
