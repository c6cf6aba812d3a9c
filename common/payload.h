/* MQTT payload classification and the small JSON scanning the protocol
 * needs: validate a JSON text without building it, find the raw bytes of a
 * top-level member, and compact JSON text. No allocation unless noted. */
#ifndef MQG_PAYLOAD_H
#define MQG_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>

enum payload_kind {
    PAYLOAD_JSON,   /* one valid JSON text: embed verbatim as "payload" */
    PAYLOAD_TEXT,   /* not JSON but valid UTF-8 (also the empty payload) */
    PAYLOAD_BASE64  /* anything else */
};

/* True when buf[0..len) is exactly one JSON text (RFC 8259), surrounding
 * whitespace allowed, any nesting depth, strings valid UTF-8. */
bool json_text_valid(const void *buf, size_t len);

/* Classifies an MQTT payload for a msg frame. */
enum payload_kind payload_classify(const void *buf, size_t len);

/* buf[0..len) is a valid JSON text whose value is an object. Finds the
 * top-level member named key (key_len bytes, compared after unescaping) and
 * sets *off and *vlen to the raw bytes of its value. Returns 0, or -1 when
 * absent. With duplicate keys, the last one wins. */
int json_member_span(const char *buf, size_t len, const char *key,
                     size_t key_len, size_t *off, size_t *vlen);

/* Copies the valid JSON text in[0..len) to out without insignificant
 * whitespace; out holds at least len bytes. Returns bytes written. */
size_t json_compact(const char *in, size_t len, char *out);

/* Appends s[0..len) to out as the contents of a JSON string (no quotes),
 * escaping '"', '\\' and control characters; s is valid UTF-8. out holds at
 * least json_escaped_len(s, len) bytes. Returns bytes written. */
size_t json_escape(const char *s, size_t len, char *out);
size_t json_escaped_len(const char *s, size_t len);

/* The body member of a msg for the payload p[0..plen) classified as kind
 * (protocol.md, msg): "payload":JSON spliced verbatim, "text":"..." or
 * "base64":"...". Writes it into out, or only counts when out is NULL;
 * returns its bytes. */
size_t payload_body(const void *p, size_t plen, enum payload_kind kind,
                    char *out);

#endif
