/* The query of GET /api/events (protocol.md, HTTP API): topic (repeatable),
 * qos, history, max_rate, retained, since, and a Last-Event-ID that takes
 * precedence over since. Each topic becomes the sub request a WebSocket
 * client would send, {"op":"sub","topic":T,...}, which request_decode()
 * then checks exactly as a sub. Pure: no I/O. */
#ifndef MQG_EVQUERY_H
#define MQG_EVQUERY_H

#include <stddef.h>

#include "jbuf.h"
#include "request.h"

/* Topics of one stream: libwebsockets 4.1 parses at most about 90 header
 * fragments per request, each query argument one of them, and drops a
 * request with more; 32 leaves room for the other arguments and headers. */
#define EVQ_TOPICS_MAX 32

struct evquery {
    const char *topic[EVQ_TOPICS_MAX];   /* into the arguments */
    size_t topic_len[EVQ_TOPICS_MAX];
    size_t n_topics;
    struct jbuf opts;   /* the options, as members: ,"qos":1,... */
};

/* Reads the n decoded arguments "name=value" (args[i] is a NUL-terminated
 * string; others than those above are ignored) and last_event_id (NULL
 * when absent). Returns RQ_OK, RQ_BAD_TOPIC for a topic that is not
 * UTF-8, or RQ_BAD_REQUEST with msg (no topic, a
 * value of the wrong form, a repeated option, more than EVQ_TOPICS_MAX
 * topics). Call evquery_clear() either way. */
enum req_err evquery_parse(struct evquery *q, const char *const *args,
                           size_t n, const char *last_event_id, char *msg,
                           size_t msglen);

/* The sub request of topic i into b (initialised by the caller). */
void evquery_sub(const struct evquery *q, size_t i, struct jbuf *b);

void evquery_clear(struct evquery *q);

#endif
