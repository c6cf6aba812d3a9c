#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "auth_http.h"
#include "jwks_fetch.h"
#include "metrics.h"
#include "requests.h"
#include "subs.h"
#include "session.h"
#include "stream.h"
#include "throttle.h"

uint64_t metrics_counters[MC_COUNTERS];

static const char *const method_names[AUTH_METHODS] = {
    "token", "password", "handshake", "anonymous"};
static uint64_t auth_counts[AUTH_METHODS][2];

static const char *const error_codes[] = {
    "bad_json", "bad_request", "unknown_op", "unauthenticated",
    "auth_failed", "token_expired", "forbidden", "bad_topic",
    "limit_exceeded", "rate_limited", "broker_unavailable",
    "broker_rejected", "internal", "timeout"};
#define N_CODES (sizeof(error_codes) / sizeof(error_codes[0]))
static uint64_t error_counts[N_CODES];

/* HTTP API answers by endpoint and status */
static const unsigned http_statuses[] = {200, 204, 400, 401, 403, 405, 411,
                                         413, 415, 429, 500, 502, 503};
#define N_STATUSES (sizeof(http_statuses) / sizeof(http_statuses[0]))
static uint64_t http_counts[2][N_STATUSES + 1];  /* + other */

void metrics_http(bool events, unsigned status)
{
    size_t i = 0;

    while (i < N_STATUSES && http_statuses[i] != status)
        i++;
    http_counts[events][i]++;
}

/* fan-out latency buckets, upper bounds in microseconds */
static const uint64_t bucket_us[] = {50, 100, 250, 500, 1000, 2500, 5000,
                                     10000, 25000, 50000, 100000, 250000,
                                     1000000};
#define N_BUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))
static uint64_t bucket_counts[N_BUCKETS + 1];
static uint64_t latency_sum_us, latency_count;

void metrics_auth(enum auth_method m, bool ok)
{
    auth_counts[m][ok]++;
}

void metrics_error(const char *code)
{
    for (size_t i = 0; i < N_CODES; i++)
        if (strcmp(code, error_codes[i]) == 0) {
            error_counts[i]++;
            return;
        }
}

void metrics_fanout_us(uint64_t us)
{
    size_t i = 0;

    while (i < N_BUCKETS && us > bucket_us[i])
        i++;
    bucket_counts[i]++;
    latency_sum_us += us;
    latency_count++;
}

struct sbuf {
    char *p;
    size_t len, cap;
    int err;
};

static void put(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->err = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);

        if (!p) {
            b->err = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void metric(struct sbuf *b, const char *name, const char *type,
                   const char *help, unsigned long long v)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type,
        name, v);
}

int metrics_render(char **out, size_t *len)
{
    struct sbuf b = {.p = malloc(4096), .cap = 4096};
    struct session_stats st;

    if (!b.p)
        return -1;
    b.p[0] = '\0';
    session_stats(&st);
    put(&b, "# HELP mqgate_sessions Open sessions by state.\n"
            "# TYPE mqgate_sessions gauge\n"
            "mqgate_sessions{state=\"opening\"} %llu\n"
            "mqgate_sessions{state=\"authenticated\"} %llu\n"
            "mqgate_sessions{state=\"closing\"} %llu\n",
        st.opening, st.authed, st.closing);
    put(&b, "# HELP mqgate_sessions_by_transport Open sessions by "
            "transport.\n"
            "# TYPE mqgate_sessions_by_transport gauge\n"
            "mqgate_sessions_by_transport{transport=\"ws\"} %llu\n"
            "mqgate_sessions_by_transport{transport=\"sse\"} %llu\n",
        st.ws, st.sse);
    put(&b, "# HELP mqgate_http_requests_total HTTP API answers by endpoint "
            "and status.\n"
            "# TYPE mqgate_http_requests_total counter\n");
    for (int e = 1; e >= 0; e--)
        for (size_t i = 0; i <= N_STATUSES; i++) {
            char st_s[8];

            if (i < N_STATUSES)
                snprintf(st_s, sizeof(st_s), "%u", http_statuses[i]);
            else
                snprintf(st_s, sizeof(st_s), "other");
            put(&b, "mqgate_http_requests_total{endpoint=\"%s\","
                    "status=\"%s\"} %llu\n",
                e ? "events" : "publish", st_s,
                (unsigned long long)http_counts[e][i]);
        }
    metric(&b, "mqgate_sessions_opened_total", "counter",
           "Sessions opened since start.", metrics_counters[MC_SESSIONS_OPENED]);
    metric(&b, "mqgate_subscriptions", "gauge",
           "Subscriptions held by sessions.", subs_hold_count());
    metric(&b, "mqgate_upstream_filters", "gauge",
           "Distinct filters subscribed upstream.", subs_filter_count());
    metric(&b, "mqgate_messages_in_total", "counter",
           "Messages received from the broker.", metrics_counters[MC_MSGS_IN]);
    metric(&b, "mqgate_bytes_in_total", "counter",
           "Payload bytes received from the broker.", metrics_counters[MC_BYTES_IN]);
    metric(&b, "mqgate_frames_out_total", "counter",
           "Frames queued to sessions.", metrics_counters[MC_FRAMES_OUT]);
    metric(&b, "mqgate_bytes_out_total", "counter",
           "Bytes queued to sessions.", metrics_counters[MC_BYTES_OUT]);
    metric(&b, "mqgate_publishes_total", "counter",
           "Publishes from sessions handed to the broker.", metrics_counters[MC_PUBS]);
    metric(&b, "mqgate_publish_errors_total", "counter",
           "Publishes from sessions that failed.", metrics_counters[MC_PUB_ERRORS]);
    metric(&b, "mqgate_requests_total", "counter",
           "Requests from sessions published to devices.",
           metrics_counters[MC_REQUESTS]);
    metric(&b, "mqgate_request_timeouts_total", "counter",
           "Requests that got no response in time.",
           metrics_counters[MC_REQUEST_TIMEOUTS]);
    metric(&b, "mqgate_responses_ignored_total", "counter",
           "Messages under the reply prefix that answered no waiting request.",
           metrics_counters[MC_RESPONSES_IGNORED]);
    metric(&b, "mqgate_requests_waiting", "gauge",
           "Requests waiting for their response.", requests_waiting());
    metric(&b, "mqgate_slow_consumer_closes_total", "counter",
           "Sessions closed with 4408.", metrics_counters[MC_SLOW_CLOSES]);
    metric(&b, "mqgate_error_closes_total", "counter",
           "Sessions closed with 4429.", metrics_counters[MC_ERROR_CLOSES]);
    metric(&b, "mqgate_queue_bytes", "gauge",
           "Bytes queued to sessions (live frames waiting for a replay "
           "included) and not yet written.", st.queued);
    metric(&b, "mqgate_mailbox_backlog", "gauge",
           "Events from the broker and the workers waiting for the service "
           "loop.", gateway_backlog());
    metric(&b, "mqgate_broker_up", "gauge",
           "1 when the broker connection is up.", session_broker_up());
    metric(&b, "mqgate_broker_mqtt5_refused_total", "counter",
           "Broker connects refused because of MQTT 5 (the broker speaks "
           "3.1.1 only).", metrics_counters[MC_MQTT5_REFUSED]);
    metric(&b, "mqgate_broker_reconnects_total", "counter",
           "Broker connections established after the first.",
           metrics_counters[MC_RECONNECTS]);
    {
        struct stream_stats ss;

        stream_stats(&ss);
        metric(&b, "mqgate_history_topics", "gauge",
               "Topics the history holds.", ss.topics);
        metric(&b, "mqgate_history_messages", "gauge",
               "Messages the history holds.", ss.messages);
        metric(&b, "mqgate_history_bytes", "gauge",
               "Bytes the history holds, counted against history.max_bytes.",
               ss.bytes);
        put(&b, "# HELP mqgate_history_dropped_total Messages the history "
                "dropped, by reason.\n"
                "# TYPE mqgate_history_dropped_total counter\n"
                "mqgate_history_dropped_total{reason=\"age\"} %llu\n"
                "mqgate_history_dropped_total{reason=\"count\"} %llu\n"
                "mqgate_history_dropped_total{reason=\"size\"} %llu\n",
            (unsigned long long)ss.dropped_age,
            (unsigned long long)ss.dropped_count,
            (unsigned long long)ss.dropped_size);
        metric(&b, "mqgate_recoveries_total", "counter",
               "Subscriptions that asked to recover with since.",
               ss.recoveries);
        metric(&b, "mqgate_recoveries_failed_total", "counter",
               "Recoveries with since that failed.", ss.recoveries_failed);
    }
    put(&b, "# HELP mqgate_auth_total Authentication outcomes by method.\n"
            "# TYPE mqgate_auth_total counter\n");
    for (size_t m = 0; m < AUTH_METHODS; m++)
        for (int ok = 1; ok >= 0; ok--)
            put(&b, "mqgate_auth_total{method=\"%s\",result=\"%s\"} %llu\n",
                method_names[m], ok ? "success" : "failure",
                (unsigned long long)auth_counts[m][ok]);
    {
        struct jwks_fetch_stats js;
        struct auth_http_stats hs;

        jwks_fetch_stats(&js);
        metric(&b, "mqgate_jwks_keys", "gauge",
               "Keys of the auth.jwt.jwks_url set in use.", js.keys);
        put(&b, "# HELP mqgate_jwks_fetches_total Fetches of "
                "auth.jwt.jwks_url, by result.\n"
                "# TYPE mqgate_jwks_fetches_total counter\n"
                "mqgate_jwks_fetches_total{result=\"success\"} %llu\n"
                "mqgate_jwks_fetches_total{result=\"failure\"} %llu\n",
            (unsigned long long)js.ok, (unsigned long long)js.failed);
        metric(&b, "mqgate_jwks_fetches_floored_total", "counter",
               "Fetches an unknown kid asked for, held back by "
               "jwks_min_refresh_s.", js.floored);
        metric(&b, "mqgate_jwks_last_success_timestamp_seconds", "gauge",
               "When auth.jwt.jwks_url was last fetched (0: never).",
               js.last_ok_unix);
        auth_http_stats(&hs);
        put(&b, "# HELP mqgate_auth_http_total Answers of the "
                "authentication webhook, by result.\n"
                "# TYPE mqgate_auth_http_total counter\n"
                "mqgate_auth_http_total{result=\"success\"} %llu\n"
                "mqgate_auth_http_total{result=\"refused\"} %llu\n"
                "mqgate_auth_http_total{result=\"error\"} %llu\n"
                "mqgate_auth_http_total{result=\"malformed\"} %llu\n"
                "mqgate_auth_http_total{result=\"busy\"} %llu\n"
                "mqgate_auth_http_total{result=\"cached\"} %llu\n",
            (unsigned long long)hs.ok, (unsigned long long)hs.refused,
            (unsigned long long)hs.failed, (unsigned long long)hs.malformed,
            (unsigned long long)hs.busy, (unsigned long long)hs.cached);
        metric(&b, "mqgate_auth_http_in_flight", "gauge",
               "Webhook calls waiting for an answer.", hs.in_flight);
        metric(&b, "mqgate_auth_http_cache_entries", "gauge",
               "Positive webhook answers cached.", hs.cache_entries);
    }
    put(&b, "# HELP mqgate_errors_total Error frames sent, by code.\n"
            "# TYPE mqgate_errors_total counter\n");
    for (size_t i = 0; i < N_CODES; i++)
        put(&b, "mqgate_errors_total{code=\"%s\"} %llu\n", error_codes[i],
            (unsigned long long)error_counts[i]);
    metric(&b, "mqgate_rate_skipped_total", "counter",
           "Messages skipped by max_rate (a newer one of the topic came).",
           throttle_skipped());
    metric(&b, "mqgate_conflated_total", "counter",
           "Messages skipped by conflation (limits.slow_consumer).",
           metrics_counters[MC_CONFLATED]);
    metric(&b, "mqgate_frames_dropped_total", "counter",
           "Frames dropped from the queues of sessions closed as too slow.",
           metrics_counters[MC_FRAMES_DROPPED]);
    put(&b, "# HELP mqgate_fanout_latency_seconds Time from a broker "
            "message's arrival to its frames being queued to every session.\n"
            "# TYPE mqgate_fanout_latency_seconds histogram\n");
    {
        unsigned long long cum = 0;

        for (size_t i = 0; i < N_BUCKETS; i++) {
            cum += bucket_counts[i];
            put(&b, "mqgate_fanout_latency_seconds_bucket{le=\"%g\"} %llu\n",
                (double)bucket_us[i] / 1e6, cum);
        }
        cum += bucket_counts[N_BUCKETS];
        put(&b, "mqgate_fanout_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
                "mqgate_fanout_latency_seconds_sum %.6f\n"
                "mqgate_fanout_latency_seconds_count %llu\n",
            cum, (double)latency_sum_us / 1e6,
            (unsigned long long)latency_count);
    }
    if (b.err) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
