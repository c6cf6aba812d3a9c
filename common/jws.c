#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "jws.h"

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool jws_compact_form(const char *token)
{
    size_t part = 0, len = 0;

    for (const char *p = token;; p++) {
        if (*p == '.' || *p == '\0') {
            if (part < 2 && len == 0)
                return false;
            if (*p == '\0')
                return part == 2;
            if (++part > 2)
                return false;
            len = 0;
        } else if (!b64url_char(*p)) {
            return false;
        } else {
            len++;
        }
    }
}

/* A JSON string holding no U+0000, of at most max bytes. */
static bool plain_string(json_t *v, size_t max)
{
    return json_is_string(v) && json_string_length(v) <= max &&
           strlen(json_string_value(v)) == json_string_length(v);
}

int jws_header_parse(const char *token, struct jws_header *h,
                     const char **why)
{
    const char *dot = strchr(token, '.');
    size_t n = dot ? (size_t)(dot - token) : 0, len;
    unsigned char buf[JWS_HEADER_MAX];
    json_t *hdr, *alg, *kid;
    int rc = -1;

    memset(h, 0, sizeof(*h));
    if (!jws_compact_form(token)) {
        *why = "token not in JWS compact form";
        return -1;
    }
    if (n > JWS_HEADER_MAX || base64url_decode(token, n, buf, &len) < 0) {
        *why = "token header not readable";
        return -1;
    }
    hdr = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(hdr)) {
        *why = "token header not a JSON object";
        goto out;
    }
    alg = json_object_get(hdr, "alg");
    if (!plain_string(alg, JWS_ALG_MAX) || json_string_length(alg) == 0) {
        *why = "token header has no alg";
        goto out;
    }
    if (json_object_get(hdr, "crit")) {
        *why = "token header names critical extensions (crit)";
        goto out;
    }
    kid = json_object_get(hdr, "kid");
    if (kid && !plain_string(kid, JWS_KID_MAX)) {
        *why = "token header kid not a string of at most 256 bytes";
        goto out;
    }
    memcpy(h->alg, json_string_value(alg), json_string_length(alg) + 1);
    if (kid) {
        memcpy(h->kid, json_string_value(kid), json_string_length(kid) + 1);
        h->has_kid = true;
    }
    rc = 0;
out:
    json_decref(hdr);
    if (rc < 0)
        memset(h, 0, sizeof(*h));
    return rc;
}
