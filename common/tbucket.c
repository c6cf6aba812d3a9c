#include "tbucket.h"

void tbucket_init(struct tbucket *tb, long burst, uint64_t now_ms)
{
    tb->tokens = burst > 0 ? (double)burst : 0.0;
    tb->last_ms = now_ms;
}

bool tbucket_take(struct tbucket *tb, long rate, long burst, uint64_t now_ms)
{
    /* A clock that steps back only moves the reference point: no refill,
     * and no negative elapsed time later. */
    if (now_ms > tb->last_ms && rate > 0)
        tb->tokens += (double)(now_ms - tb->last_ms) * (double)rate / 1000.0;
    /* Also caps a bucket filled under a larger burst before a reload. */
    if (tb->tokens > (double)burst)
        tb->tokens = burst > 0 ? (double)burst : 0.0;
    tb->last_ms = now_ms;
    /* Refills of a fraction of a token each (0.5 + 0.499 + 0.001) add up
     * to a hair under 1.0 in binary floating point; a token due is due. */
    if (tb->tokens < 1.0 - 1e-9)
        return false;
    tb->tokens -= 1.0;
    return true;
}
