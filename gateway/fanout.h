/* Fan-out of broker messages to the sessions holding matching filters
 * (fanout.c). Service thread only. */
#ifndef MQG_FANOUT_H
#define MQG_FANOUT_H

#include <stdint.h>

struct mb_event;

#define FANOUT_EPOCH_LEN 16

/* Picks this process's epoch (random bytes from the OS). 0 or -1. */
int fanout_init(void);

/* The epoch: FANOUT_EPOCH_LEN characters of [A-Za-z0-9_-], new at every
 * start of the process. */
const char *fanout_epoch(void);

/* Delivers one broker message (MB_MESSAGE), with the next seq of the
 * stream (or that of the message it is an MQTT 5 copy of). */
void fanout_deliver(const struct mb_event *ev);

/* The last seq given. */
uint64_t fanout_seq(void);

/* Frees what the fan-out keeps between messages. */
void fanout_destroy(void);

#endif
