#include "backoff.h"

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

void backoff_init(struct backoff *b, uint32_t min_ms, uint32_t max_ms,
                  uint64_t seed)
{
    /* A zero delay would never grow, and xorshift stays at zero forever. */
    b->min_ms = min_ms ? min_ms : 1;
    b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
    b->cur_ms = b->min_ms;
    b->rng = seed ? seed : 0x9E3779B97F4A7C15ULL;
}

uint32_t backoff_next(struct backoff *b)
{
    uint32_t cur = b->cur_ms;
    uint32_t half = cur / 2;
    uint32_t delay = half + (uint32_t)(xorshift64(&b->rng) %
                                       ((uint64_t)(cur - half) + 1));

    b->cur_ms = cur > b->max_ms / 2 ? b->max_ms : cur * 2;
    return delay;
}

void backoff_reset(struct backoff *b)
{
    b->cur_ms = b->min_ms;
}
