/* libFuzzer target: the history store (common/history.c) against the
 * brute-force model of history_model.h.
 *
 * The input is a sequence of operations (history_model.h says which):
 * adds over a few topics with retained duplicates and messages too big to
 * keep, time passing, seqs given out elsewhere, broker outages, cursors
 * opened, read and closed while messages arrive and are dropped, messages
 * held past their cursor, recovery questions, limit changes and the store
 * replaced under live cursors. After every operation the store's counters
 * must equal the model's; every message a cursor gives must be the model's
 * next one, and a recovery answer the model's. */
#include "fuzz.h"

#define HM_CHECK(cond) FUZZ_CHECK(cond)
#include "history_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hm_run(data, size);
    return 0;
}
