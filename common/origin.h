/* Browser Origin checks at the handshake (config.md § origins). */
#ifndef MQG_ORIGIN_H
#define MQG_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

/* True when a browser with this Origin header may open a session. With
 * list_set, the origin must equal an entry exactly (scheme, host and port;
 * default ports may be left out on either side), or the list holds "*".
 * Without, the origin's host and port must equal those of the request's
 * Host header (tls tells the default port of Host). */
bool origin_allowed(const char *origin, const char *host, bool tls,
                    char *const *list, size_t n, bool list_set);

#endif
