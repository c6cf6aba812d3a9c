/* Exponential backoff with jitter for reconnects. */
#ifndef MQG_BACKOFF_H
#define MQG_BACKOFF_H

#include <stdint.h>

struct backoff {
    uint32_t min_ms, max_ms, cur_ms;
    uint64_t rng;  /* xorshift state, seeded by backoff_init() */
};

void backoff_init(struct backoff *b, uint32_t min_ms, uint32_t max_ms,
                  uint64_t seed);
/* The next delay: "full jitter" in [cur/2, cur], then cur doubles up to
 * max. */
uint32_t backoff_next(struct backoff *b);
/* Back to min after a success. */
void backoff_reset(struct backoff *b);

#endif
