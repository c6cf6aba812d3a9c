/* The daemon: its main loop, signals, reload and shutdown. */
#ifndef MQG_GATEWAY_H
#define MQG_GATEWAY_H

#include "autoconfig.h"
#include <stddef.h>

#include "config.h"

#define MQG_SERVER "mqgate/" PACKAGE_VERSION

/* Runs the daemon with cfg (ownership passes to the gateway) until SIGTERM
 * or SIGINT. Returns the process exit status. */
int gateway_run(struct config *cfg, const char *config_path);

/* Events taken from the mailbox and not handled yet (drain()'s budget). */
size_t gateway_backlog(void);

#endif
