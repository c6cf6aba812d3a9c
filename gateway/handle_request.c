/* request (protocol.md, "request"): a publish with the gateway's response
 * topic and correlation data, answered by the device's response
 * (requests.c) or by its failure. The file is named for the op; the
 * dispatcher of every op is handle_request() in handle.c. */
#include <stdlib.h>
#include <string.h>

#include "handle.h"
#include "request.h"
#include "requests.h"
#include "session.h"

void handle_request_op(struct session *s, const struct request *r)
{
    const char *why, *code = requests_refusal(s, &why);
    uint8_t *props = NULL;
    size_t props_len = 0;
    uint64_t key;

    if (code) {
        /* the broker's absence is not the client's fault */
        if (strcmp(code, "broker_unavailable") == 0)
            session_reply_error(s, r->id, r->id_len, code, "%s", why);
        else
            handle_error(s, r->id, r->id_len, code, "%s", why);
        return;
    }
    if (r->props_len) {
        if (!(props = malloc(r->props_len)))
            goto oom;
        memcpy(props, r->props, r->props_len);
        props_len = r->props_len;
    }
    if (!(key = requests_new(s, r->id, r->id_len, r->timeout_ms, &props,
                             &props_len)))
        goto oom;
    if (handle_publish(s, r, props, props_len, key) < 0)
        requests_cancel(key);
    free(props);
    return;
oom:
    free(props);
    session_reply_error(s, r->id, r->id_len, "internal", "out of memory");
}
