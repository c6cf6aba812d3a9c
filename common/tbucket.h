/* Token bucket: rate tokens per second, at most burst held. */
#ifndef MQG_TBUCKET_H
#define MQG_TBUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct tbucket {
    double tokens;
    uint64_t last_ms;
};

void tbucket_init(struct tbucket *tb, long burst, uint64_t now_ms);
/* Takes one token when there is one; false when the rate is exceeded. */
bool tbucket_take(struct tbucket *tb, long rate, long burst, uint64_t now_ms);

#endif
