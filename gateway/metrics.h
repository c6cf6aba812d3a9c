/* /metrics in the Prometheus text format. Service thread. */
#ifndef MQG_METRICS_H
#define MQG_METRICS_H

#include <stddef.h>

/* Renders every metric into *out (malloc'd, caller frees). 0 or -1. */
int metrics_render(char **out, size_t *len);

#endif
