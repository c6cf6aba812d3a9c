/* Server-Sent Events (protocol.md, "GET /api/events"): a protocol frame,
 * one JSON object, as one event named by its "op", with the field
 * "id: EPOCH:SEQ" when it has a stream position. Pure: no I/O. */
#ifndef MQG_SSE_H
#define MQG_SSE_H

#include <stddef.h>
#include <stdint.h>

/* The "op" of a frame {"op":"NAME",...} as the gateway writes it: its
 * name and length, or "message" (the SSE default) when json does not
 * start that way. */
const char *sse_op(const char *json, size_t len, size_t *op_len);

/* Bytes sse_encode() writes for json[0..len) (which holds no line break,
 * as compact JSON never does), with id EPOCH:SEQ when seq is not 0. */
size_t sse_encoded_len(const char *json, size_t len, const char *epoch,
                       uint64_t seq);

/* Writes "event: OP\n[id: EPOCH:SEQ\n]data: JSON\n\n" to out, which has
 * sse_encoded_len() bytes; returns that length. */
size_t sse_encode(const char *json, size_t len, const char *epoch,
                  uint64_t seq, char *out);

/* Parses "EPOCH:SEQ" (a Last-Event-ID or since) of s[0..len): EPOCH is
 * 1..64 characters of [A-Za-z0-9_-], SEQ decimal digits without a sign
 * that fit in 63 bits. Returns 0 with *epoch_len and *seq, or -1. */
int sse_parse_id(const char *s, size_t len, size_t *epoch_len,
                 uint64_t *seq);

#endif
