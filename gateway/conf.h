/* The running configuration: loaded at start, swapped whole by a reload
 * (gateway.c owns it), read by every module. Service thread only; what it
 * points into lives until the next swap. */
#ifndef MQG_CONF_H
#define MQG_CONF_H

#include "config.h"

extern const struct config *conf_live;

static inline const struct config *conf(void)
{
    return conf_live;
}

#endif
