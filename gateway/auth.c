#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "gateway.h"
#include "log.h"
#include "request.h"
#include "session.h"

static char hello[256];

int auth_init(const struct config *cfg)
{
    const char *methods[2];
    size_t n = 0, o;

    if (cfg->auth.users_file)
        methods[n++] = "\"password\"";
    if (cfg->auth.jwt)
        methods[n++] = "\"token\"";
    o = (size_t)snprintf(hello, sizeof(hello),
                         "{\"op\":\"hello\",\"proto\":1,\"server\":\"%s\","
                         "\"auth\":[",
                         MQG_SERVER);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(hello + o, sizeof(hello) - o, "%s%s",
                              i ? "," : "", methods[i]);
    snprintf(hello + o, sizeof(hello) - o, "]}");
    return 0;
}

void auth_destroy(void)
{
}

const char *auth_hello(void)
{
    return hello;
}

int auth_handshake(struct session *s)
{
    (void)s;
    return -1;
}

void auth_request(struct session *s, const struct request *r)
{
    session_reply_error(s, r->id, r->id_len, "auth_failed",
                        "no authentication method is configured");
    if (s->state != SS_AUTHED)
        session_close(s, 4401, "authentication failed");
}
