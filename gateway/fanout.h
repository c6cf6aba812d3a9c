/* Fan-out of broker messages to the sessions holding matching filters
 * (fanout.c). Service thread only. */
#ifndef MQG_FANOUT_H
#define MQG_FANOUT_H

struct mb_event;

/* Delivers one broker message (MB_MESSAGE). */
void fanout_deliver(const struct mb_event *ev);

#endif
