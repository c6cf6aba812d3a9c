/* ping (protocol.md § ping): always answered, before authentication too. */
#include "handle.h"
#include "jbuf.h"
#include "reply.h"
#include "request.h"
#include "session.h"
#include "session_int.h"

void handle_ping(struct session *s, const struct request *r)
{
    struct jbuf b;

    jbuf_init(&b);
    reply_begin(&b, "pong", r->id, r->id_len);
    reply_end(&b);
    session_send_jbuf(s, &b);
}
