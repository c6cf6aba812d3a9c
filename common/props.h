/* MQTT 5 message properties as mqgate carries them (protocol.md, "MQTT 5
 * properties"): a compact form ("meta") of independent records, built on
 * Paho's thread from a message's properties or from a pub's "props",
 * carried in mailbox events and kept in the history, written as the JSON
 * of "props" once per frame, and read back into Paho's properties for a
 * publish. Meta of several records is their concatenation, so a record is
 * added by appending it. I/O-free. */
#ifndef MQG_PROPS_H
#define MQG_PROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum props_kind {
    PROPS_USER = 1,           /* a: name, b: value (MQTT UTF-8) */
    PROPS_CONTENT_TYPE = 2,   /* a (MQTT UTF-8) */
    PROPS_RESPONSE_TOPIC = 3, /* a: the broker-side topic name */
    PROPS_CORRELATION = 4,    /* a: any bytes */
    PROPS_EXPIRY = 5,         /* n: seconds */
};

/* Bytes of one string or binary property at most (MQTT's two-byte
 * lengths). */
#define PROPS_STR_MAX 65535

struct props_item {
    enum props_kind kind;
    const char *a, *b;        /* b only for PROPS_USER */
    size_t a_len, b_len;      /* each <= PROPS_STR_MAX */
    uint32_t n;               /* PROPS_EXPIRY */
};

/* Bytes props_put() writes for it. */
size_t props_record_len(const struct props_item *it);

/* Writes the record of it into out (props_record_len() bytes). Returns
 * the bytes written. */
size_t props_put(uint8_t *out, const struct props_item *it);

/* Appends the record of it to the malloc'd *meta of *len bytes (NULL, 0:
 * none yet). Returns 0, or -1 when out of memory (*meta unchanged). */
int props_append(uint8_t **meta, size_t *len, const struct props_item *it);

/* Reads the record at meta[*off..len) into it (pointing into meta) and
 * advances *off. Returns 1, 0 at the end, -1 when the record is
 * malformed (then it stays the end). */
int props_next(const uint8_t *meta, size_t len, size_t *off,
               struct props_item *it);

/* props_json() leaves out the correlation data (a request's response). */
#define PROPS_JSON_NO_CORRELATION 1u

/* Writes ,"props":{...} for meta[0..len) as seen by a session under
 * mount[0..mlen) (mlen 0: none) into out, or counts its bytes when out is
 * NULL; returns the bytes. "user" is an array of [name, value] in the
 * records' order, "response_topic" relative to the mount (left out when
 * it lies outside), "correlation" base64, "expiry" an integer. Nothing
 * (0) when no member remains. Strings are valid UTF-8 (the records'
 * producers check it); a malformed record ends the members. */
size_t props_json(const uint8_t *meta, size_t len, const char *mount,
                  size_t mlen, unsigned flags, char *out);

/* Decodes a pub's or request's "props" value: every member checked
 * (protocol.md), "user" [[name, value], ...], "content_type",
 * "correlation" (base64), "expiry" (1..2^32-1); other members are
 * ignored. The records go into *meta (malloc'd, *meta_len bytes; NULL and
 * 0 when none), except response_topic, a valid topic name returned in
 * *rt, *rt_len (pointing into v; NULL when absent) for the caller to
 * mount and append. With request, response_topic and correlation are
 * refused (the gateway sets them). Returns 0, or -1 with a message for
 * the client in msg (nothing allocated). */
int props_from_json(const json_t *v, bool request, uint8_t **meta,
                    size_t *meta_len, const char **rt, size_t *rt_len,
                    char *msg, size_t msglen);

#endif
