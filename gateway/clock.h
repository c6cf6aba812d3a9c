/* The monotonic clock every timeout and rate of the daemon reads. */
#ifndef MQG_CLOCK_H
#define MQG_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static inline uint64_t clock_now_ms(void)
{
    return clock_now_us() / 1000;
}

/* Milliseconds since the Unix epoch (the wall clock: for time stamps that
 * leave the process, never for timeouts). */
static inline uint64_t clock_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
