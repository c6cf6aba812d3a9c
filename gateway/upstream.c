/* The broker connection (upstream.h). Over 500 lines because Paho's
 * callbacks, the connect and failover policy and the publishes held while
 * the broker is away all share the connection's state and its lock-free
 * hand-over to the mailbox; splitting them would put that state in a
 * header every part writes. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include "backoff.h"
#include "clock.h"
#include "gateway.h"
#include "log.h"
#include "mailbox.h"
#include "errors.h"
#include "upstream.h"
#include "worker.h"

/* A QoS 1/2 publish waiting for room in the broker's receive window. */
struct held_pub {
    struct held_pub *next;
    void *ctx;
    size_t len;
    int qos;
    bool retain;
    char *payload;             /* points into data, after the topic */
    char data[];               /* topic, NUL, payload */
};

struct upstream {
    MQTTAsync client;
    struct mailbox *mb;
    int version;               /* 4 or 5 */
    char **uris;               /* copies: a reload keeps the connection */
    /* uri_idx is the service thread's; the connect callbacks read it on
     * Paho's thread between the MQTTAsync_connect() of the attempt and
     * the MB_CONNECT_FAILED they post, while it does not change. */
    size_t n_uris, uri_idx;
    int keepalive_s;
    char *username, *password;
    char *ca_file, *cert_file, *key_file;
    bool tls_verify;
    struct backoff bo;
    bool connected;            /* service thread's view */
    /* QoS 1/2 flow control: at most recv_max handed to Paho at once (the
     * broker's Receive Maximum); the rest wait here, in order. Paho itself
     * holds back what passes the window and sends it only when its send
     * thread next wakes, up to a second later: a stall per window. */
    unsigned inflight, recv_max;
    struct held_pub *held_head, *held_tail;
    size_t n_held, buffer_messages;
};

/* ---- Paho threads: only build events and push them ------------------- */

static void push_tagged(struct upstream *up, enum mb_type t, int code,
                        void *ctx, uint64_t tag)
{
    struct mb_event *ev = mb_event_new(t, 0);

    if (!ev) {
        log_error("out of memory: upstream event lost");
        return;
    }
    ev->code = code;
    ev->ctx = ctx;
    ev->tag = tag;
    mailbox_push(up->mb, ev);
}

static void push_simple(struct upstream *up, enum mb_type t, int code,
                        void *ctx)
{
    push_tagged(up, t, code, ctx, 0);
}

static void on_conn_lost(void *context, char *cause)
{
    (void)cause;
    push_simple(context, MB_CONN_LOST, 0, NULL);
}

static int on_message(void *context, char *topic, int topic_len,
                      MQTTAsync_message *m)
{
    struct upstream *up = context;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
    struct mb_event *ev = mb_event_new(MB_MESSAGE, tlen + 1 + plen);

    if (!ev) {
        /* "redeliver": Paho keeps the message and calls again */
        return 0;
    }
    ev->topic = ev->data;
    memcpy(ev->topic, topic, tlen);
    ev->topic[tlen] = '\0';
    ev->topic_len = tlen;
    ev->payload = (uint8_t *)ev->data + tlen + 1;
    if (plen)
        memcpy(ev->payload, m->payload, plen);
    ev->payload_len = plen;
    ev->qos = (uint8_t)m->qos;
    ev->retained = m->retained != 0;
    ev->t_us = clock_now_us();
    ev->ts_ms = clock_wall_ms();
    if (up->version == 5) {
        int n = MQTTProperties_propertyCount(
            &m->properties, MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER);

        for (int i = 0; i < n && i < MB_MAX_SUBIDS; i++)
            ev->subids[ev->n_subids++] = (uint32_t)
                MQTTProperties_getNumericValueAt(
                    &m->properties,
                    MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, i);
        if (n > MB_MAX_SUBIDS)
            ev->n_subids = 0; /* deliver to all, deduplicated */
    }
    mailbox_push(up->mb, ev);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_connect_ok(void *context, MQTTAsync_successData *r)
{
    (void)r;
    push_simple(context, MB_CONNECTED, 0, NULL);
}

static void on_connect_fail(void *context, MQTTAsync_failureData *r)
{
    struct upstream *up = context;

    log_warn("broker connect to %s failed: %s", up->uris[up->uri_idx],
             r && r->message ? r->message : "no answer");
    push_simple(up, MB_CONNECT_FAILED, r ? r->code : -1, NULL);
}

static void on_connect_ok5(void *context, MQTTAsync_successData5 *r)
{
    int rm = 0;

    if (r && MQTTProperties_hasProperty(&r->properties,
                                        MQTTPROPERTY_CODE_RECEIVE_MAXIMUM))
        rm = MQTTProperties_getNumericValue(&r->properties,
                                            MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);
    push_simple(context, MB_CONNECTED, rm, NULL);
}

static void on_connect_fail5(void *context, MQTTAsync_failureData5 *r)
{
    struct upstream *up = context;

    log_warn("broker connect to %s failed: %s (reason %d)",
             up->uris[up->uri_idx],
             r && r->message ? r->message : "no answer",
             r ? (int)r->reasonCode : -1);
    push_simple(up, MB_CONNECT_FAILED, r ? r->code : -1, NULL);
}

/* Subscribe and publish contexts carry the upstream in a small box, as
 * Paho gives one context pointer: a publish's ctx, a SUBSCRIBE's tag. */
struct req_box {
    struct upstream *up;
    void *ctx;
    uint64_t tag;
};

static void box_push(void *context, enum mb_type t, int code)
{
    struct req_box *b = context;

    push_tagged(b->up, t, code, b->ctx, b->tag);
    free(b);
}

static void on_sub_ok(void *context, MQTTAsync_successData *r)
{
    int q = r ? r->alt.qos : 0;

    box_push(context, MB_SUBACK, q >= 0x80 ? -1 : q);
}

static void on_sub_fail(void *context, MQTTAsync_failureData *r)
{
    (void)r;
    box_push(context, MB_SUBACK, -1);
}

static void on_sub_ok5(void *context, MQTTAsync_successData5 *r)
{
    int q = r ? (int)r->reasonCode : 0;

    box_push(context, MB_SUBACK, q >= 0x80 ? -1 : q);
}

static void on_sub_fail5(void *context, MQTTAsync_failureData5 *r)
{
    (void)r;
    box_push(context, MB_SUBACK, -1);
}

static void on_pub_ok(void *context, MQTTAsync_successData *r)
{
    (void)r;
    box_push(context, MB_PUBDONE, MQG_OK);
}

static void on_pub_fail(void *context, MQTTAsync_failureData *r)
{
    (void)r;
    box_push(context, MB_PUBDONE, MQG_ELOST);
}

static void on_pub_ok5(void *context, MQTTAsync_successData5 *r)
{
    /* 0x10 "no matching subscribers" is a success */
    box_push(context, MB_PUBDONE,
             r && r->reasonCode >= 0x80 ? MQG_EREFUSED : MQG_OK);
}

static void on_pub_fail5(void *context, MQTTAsync_failureData5 *r)
{
    box_push(context, MB_PUBDONE,
             r && r->reasonCode >= 0x80 ? MQG_EREFUSED : MQG_ELOST);
}

/* Paho's TLS errors, so that a refused certificate says so in the log. */
static int on_ssl_error(const char *str, size_t len, void *u)
{
    (void)u;
    while (len && (str[len - 1] == '\n' || str[len - 1] == '\r'))
        len--;
    log_warn("broker TLS: %.*s", (int)len, str);
    return 0;
}

/* ---- service thread ---------------------------------------------------- */

static char *expand_client_id(const char *tmpl)
{
    char host[256], out[512];
    size_t o = 0;
    bool numbered = false;

    if (gethostname(host, sizeof(host)) < 0)
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    for (const char *p = tmpl; *p && o < sizeof(out) - 32; p++) {
        if (p[0] == '%' && p[1] == 'h') {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%.200s", host);
            p++;
        } else if (p[0] == '%' && p[1] == 'p') {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%ld",
                                  (long)getpid());
            p++;
        } else if (p[0] == '%' && p[1] == 'w') {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%d",
                                  worker_index());
            p++;
            numbered = true;
        } else {
            out[o++] = *p;
        }
    }
    /* workers are distinct clients of the broker, whatever the template */
    if (worker_count() > 1 && !numbered)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "-w%d",
                              worker_index());
    out[o] = '\0';
    return strdup(out);
}

static char *read_first_line(const char *path)
{
    char buf[1024];
    FILE *f = fopen(path, "r");

    if (!f)
        return NULL;
    if (!fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The one broker connection of the process (upstream_get()). */
static struct upstream *current;

struct upstream *upstream_get(void)
{
    return current;
}

struct upstream *upstream_new(const struct config *cfg, struct mailbox *mb)
{
    const struct cfg_broker *b = &cfg->broker;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    struct upstream *up = calloc(1, sizeof(*up));
    char *client_id = NULL;
    int rc;

    if (!up)
        return NULL;
    up->mb = mb;
    up->version = b->mqtt_version;
    /* MQTT 5 brokers announce their window in the CONNACK; until then, a
     * common small one */
    up->recv_max = up->version == 5 ? 20 : 65535;
    up->buffer_messages = b->buffer_messages > 0 ? (size_t)b->buffer_messages : 1;
    up->keepalive_s = b->keepalive_s;
    up->uris = calloc(b->n_uris, sizeof(char *));
    if (!up->uris)
        goto fail;
    for (size_t i = 0; i < b->n_uris; i++)
        if (!(up->uris[up->n_uris++] = strdup(b->uris[i])))
            goto fail;
    up->username = dup_or_null(b->username);
    if (b->password_file && !(up->password = read_first_line(b->password_file))) {
        log_error("broker.password_file %s: cannot read", b->password_file);
        goto fail;
    }
    if (b->tls) {
        up->ca_file = dup_or_null(b->tls->ca_file);
        up->cert_file = dup_or_null(b->tls->cert_file);
        up->key_file = dup_or_null(b->tls->key_file);
        up->tls_verify = b->tls->verify;
    } else {
        up->tls_verify = true;
    }
    backoff_init(&up->bo, (uint32_t)b->reconnect_min_s * 1000,
                 (uint32_t)b->reconnect_max_s * 1000,
                 (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));

    if (!(client_id = expand_client_id(b->client_id)))
        goto fail;
    co.MQTTVersion = up->version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    co.sendWhileDisconnected = 1;
    co.allowDisconnectedSendAtAnyTime = 1;
    co.deleteOldestMessages = 0;
    co.maxBufferedMessages = b->buffer_messages > 0 ? b->buffer_messages : 1;
    rc = MQTTAsync_createWithOptions(&up->client, up->uris[0], client_id,
                                     MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        log_error("cannot create the MQTT client: %s",
                  MQTTAsync_strerror(rc));
        goto fail;
    }
    rc = MQTTAsync_setCallbacks(up->client, up, on_conn_lost, on_message,
                                NULL);
    if (rc != MQTTASYNC_SUCCESS)
        goto fail;
    log_info("broker client id %s, MQTT %s", client_id,
             up->version == 5 ? "5" : "3.1.1");
    free(client_id);
    current = up;
    return up;
fail:
    free(client_id);
    upstream_free(up, 0);
    return NULL;
}

void upstream_connect(struct upstream *up)
{
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions o5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_connectOptions *opts = up->version == 5 ? &o5 : &o;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    const char *uri = up->uris[up->uri_idx];
    sigset_t all, old;
    int rc;

    opts->keepAliveInterval = up->keepalive_s;
    opts->connectTimeout = 10;
    opts->serverURIs = (char *const *)&up->uris[up->uri_idx];
    opts->serverURIcount = 1;
    opts->username = up->username;
    opts->password = up->password;
    opts->automaticReconnect = 0;
    opts->context = up;
    if (up->version == 5) {
        opts->cleanstart = 1;
        opts->MQTTVersion = MQTTVERSION_5;
        opts->onSuccess5 = on_connect_ok5;
        opts->onFailure5 = on_connect_fail5;
    } else {
        opts->cleansession = 1;
        opts->MQTTVersion = MQTTVERSION_3_1_1;
        opts->onSuccess = on_connect_ok;
        opts->onFailure = on_connect_fail;
    }
    if (strncmp(uri, "ssl://", 6) == 0) {
        ssl.trustStore = up->ca_file;
        ssl.keyStore = up->cert_file;
        ssl.privateKey = up->key_file;
        ssl.enableServerCertAuth = up->tls_verify;
        ssl.verify = up->tls_verify;
        ssl.ssl_error_cb = on_ssl_error;
        opts->ssl = &ssl;
    }
    log_info("connecting to broker %s", uri);
    /* Paho starts its threads in the first connect: they inherit a full
     * signal mask from it, so that SIGHUP and SIGTERM reach the service
     * thread only, whose loop they must interrupt and whose flags the
     * handler sets. Pending signals arrive when the mask is restored. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = MQTTAsync_connect(up->client, opts);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        log_warn("broker connect to %s: %s", uri, MQTTAsync_strerror(rc));
        push_simple(up, MB_CONNECT_FAILED, rc, NULL);
    }
}

uint32_t upstream_retry_delay(struct upstream *up, bool was_connected)
{
    up->connected = false;
    if (was_connected) {
        /* back to the preferred broker, quickly */
        up->uri_idx = 0;
        backoff_reset(&up->bo);
        return backoff_next(&up->bo);
    }
    up->uri_idx = (up->uri_idx + 1) % up->n_uris;
    return backoff_next(&up->bo);
}

static int send_now(struct upstream *up, const char *topic,
                    const void *payload, size_t len, int qos, bool retain,
                    void *ctx);
static void release_held(struct upstream *up);

void upstream_connected(struct upstream *up, int receive_maximum)
{
    up->connected = true;
    up->recv_max = receive_maximum > 0 ? (unsigned)receive_maximum : 65535;
    release_held(up);
    backoff_reset(&up->bo);
    log_info("connected to broker %s", up->uris[up->uri_idx]);
}

bool upstream_is_connected(const struct upstream *up)
{
    return up && up->connected;
}

static struct req_box *box_new(struct upstream *up, void *ctx,
                               uint64_t tag)
{
    struct req_box *b = malloc(sizeof(*b));

    if (b) {
        b->up = up;
        b->ctx = ctx;
        b->tag = tag;
    }
    return b;
}

int upstream_subscribe(struct upstream *up, const char *filter,
                       uint32_t subid, int qos, uint64_t tag)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTProperty prop;
    struct req_box *b;
    int rc;

    if (!up || !up->connected)
        return MQG_ENOTCONN;
    if (!(b = box_new(up, NULL, tag)))
        return MQG_ENOMEM;
    ro.context = b;
    if (up->version == 5) {
        prop.identifier = MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER;
        prop.value.integer4 = subid;
        MQTTProperties_add(&ro.properties, &prop);
        ro.onSuccess5 = on_sub_ok5;
        ro.onFailure5 = on_sub_fail5;
    } else {
        ro.onSuccess = on_sub_ok;
        ro.onFailure = on_sub_fail;
    }
    rc = MQTTAsync_subscribe(up->client, filter, qos, &ro);
    MQTTProperties_free(&ro.properties);
    if (rc != MQTTASYNC_SUCCESS) {
        log_warn("subscribe %s: %s", filter, MQTTAsync_strerror(rc));
        free(b);
        return MQG_EFAIL;
    }
    return 0;
}

void upstream_unsubscribe(struct upstream *up, const char *filter)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    int rc;

    if (!up || !up->connected)
        return;
    rc = MQTTAsync_unsubscribe(up->client, filter, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        log_warn("unsubscribe %s: %s", filter, MQTTAsync_strerror(rc));
}

static int send_now(struct upstream *up, const char *topic,
                    const void *payload, size_t len, int qos, bool retain,
                    void *ctx)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTAsync_message m = MQTTAsync_message_initializer;
    struct req_box *b = NULL;
    int rc;

    m.payload = (void *)payload;
    m.payloadlen = (int)len;
    m.qos = qos;
    m.retained = retain;
    if (qos > 0) {
        if (!(b = box_new(up, ctx, 0)))
            return MQG_ENOMEM;
        ro.context = b;
        if (up->version == 5) {
            ro.onSuccess5 = on_pub_ok5;
            ro.onFailure5 = on_pub_fail5;
        } else {
            ro.onSuccess = on_pub_ok;
            ro.onFailure = on_pub_fail;
        }
    }
    rc = MQTTAsync_sendMessage(up->client, topic, &m, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        free(b);
        if (rc == MQTTASYNC_MAX_BUFFERED_MESSAGES)
            return MQG_EFULL;
        log_warn("publish to %s: %s", topic, MQTTAsync_strerror(rc));
        return MQG_EFAIL;
    }
    if (qos > 0)
        up->inflight++;
    return 0;
}

/* Hands waiting publishes to Paho while the window has room. One that
 * Paho refuses is answered as failed through the mailbox. */
static void release_held(struct upstream *up)
{
    while (up->held_head && up->inflight < up->recv_max) {
        struct held_pub *h = up->held_head;

        if (!(up->held_head = h->next))
            up->held_tail = NULL;
        up->n_held--;
        if (send_now(up, h->data, h->payload, h->len, h->qos, h->retain,
                     h->ctx) < 0) {
            /* in flight until its answer, like the others: the answer
             * gives the room back */
            up->inflight++;
            push_simple(up, MB_PUBDONE, MQG_ELOST, h->ctx);
        }
        free(h);
    }
}

int upstream_publish(struct upstream *up, const char *topic,
                     const void *payload, size_t len, int qos, bool retain,
                     void *ctx)
{
    size_t tlen;
    struct held_pub *h;

    if (!up)
        return MQG_ENOTCONN;
    if (qos == 0 || (!up->held_head && up->inflight < up->recv_max))
        return send_now(up, topic, payload, len, qos, retain, ctx);
    if (up->n_held + up->inflight >= up->buffer_messages)
        return MQG_EFULL;
    tlen = strlen(topic);
    if (!(h = malloc(sizeof(*h) + tlen + 1 + len)))
        return MQG_ENOMEM;
    h->next = NULL;
    h->ctx = ctx;
    h->len = len;
    h->qos = qos;
    h->retain = retain;
    memcpy(h->data, topic, tlen + 1);
    h->payload = h->data + tlen + 1;
    if (len)
        memcpy(h->payload, payload, len);
    if (up->held_tail)
        up->held_tail->next = h;
    else
        up->held_head = h;
    up->held_tail = h;
    up->n_held++;
    return 0;
}

void upstream_pub_done(struct upstream *up)
{
    if (!up)
        return;
    if (up->inflight)
        up->inflight--;
    release_held(up);
}

void upstream_free(struct upstream *up, int timeout_ms)
{
    if (!up)
        return;
    if (current == up)
        current = NULL;
    /* publishes never handed over: their sessions learn they failed */
    while (up->held_head) {
        struct held_pub *h = up->held_head;

        up->held_head = h->next;
        push_simple(up, MB_PUBDONE, MQG_ELOST, h->ctx);
        free(h);
    }
    if (up->client) {
        if (MQTTAsync_isConnected(up->client)) {
            MQTTAsync_disconnectOptions d =
                MQTTAsync_disconnectOptions_initializer;

            /* Paho's timeout waits for the broker's acknowledgements, and
             * checks it only every 3 s: 0 sends the DISCONNECT now. */
            d.timeout = 0;
            MQTTAsync_disconnect(up->client, &d);
            for (int i = 0; i < timeout_ms / 10 &&
                            MQTTAsync_isConnected(up->client);
                 i++)
                usleep(10000);
        }
        MQTTAsync_destroy(&up->client);
    }
    for (size_t i = 0; i < up->n_uris; i++)
        free(up->uris[i]);
    free(up->uris);
    free(up->username);
    free(up->password);
    free(up->ca_file);
    free(up->cert_file);
    free(up->key_file);
    free(up);
}
