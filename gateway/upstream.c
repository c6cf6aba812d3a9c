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
#include "props.h"
#include "utf8.h"
#include "metrics.h"
#include "upstream.h"
#include "worker.h"

/* A QoS 1/2 publish waiting for room in the broker's receive window. */
struct held_pub {
    struct held_pub *next;
    void *ctx;
    size_t len, props_len;
    int qos;
    bool retain;
    char *payload;             /* points into data, after the topic */
    uint8_t *props;            /* points into data, after the payload */
    char data[];               /* topic, NUL, payload, properties */
};

struct upstream {
    MQTTAsync client;
    struct mailbox *mb;
    int version;               /* 4 or 5: of the connection (to be) */
    bool auto_version;         /* mqtt_version "auto": 5, else 3.1.1 */
    bool refusal_logged;       /* the MQTT 5 refusal, with mqtt_version 5 */
    char *client_id;           /* expanded */
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

/* The message property p as a record of ours (props.h): false for the
 * properties msg does not carry, and for strings a browser or a broker
 * could not take (the broker checks them; a record is never invalid
 * JSON). */
static bool prop_item(const MQTTProperty *p, struct props_item *it)
{
    memset(it, 0, sizeof(*it));
    switch (p->identifier) {
    case MQTTPROPERTY_CODE_USER_PROPERTY:
        it->kind = PROPS_USER;
        it->b = p->value.value.data;
        it->b_len = p->value.value.len > 0 ? (size_t)p->value.value.len : 0;
        break;
    case MQTTPROPERTY_CODE_CONTENT_TYPE:
        it->kind = PROPS_CONTENT_TYPE;
        break;
    case MQTTPROPERTY_CODE_RESPONSE_TOPIC:
        it->kind = PROPS_RESPONSE_TOPIC;
        break;
    case MQTTPROPERTY_CODE_CORRELATION_DATA:
        it->kind = PROPS_CORRELATION;
        break;
    case MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL:
        it->kind = PROPS_EXPIRY;
        it->n = p->value.integer4;
        return true;
    default:
        return false;
    }
    it->a = p->value.data.data;
    it->a_len = p->value.data.len > 0 ? (size_t)p->value.data.len : 0;
    if (it->a_len > PROPS_STR_MAX || it->b_len > PROPS_STR_MAX)
        return false;
    return it->kind == PROPS_CORRELATION ||
           (utf8_mqtt_valid(it->a, it->a_len) &&
            utf8_mqtt_valid(it->b, it->b_len));
}

/* Bytes of m's properties as records: 0 when it has none msg carries
 * (the common case costs one pass over its few properties). */
static size_t props_size(const MQTTProperties *mp)
{
    struct props_item it;
    size_t n = 0;

    for (int i = 0; i < mp->count; i++)
        if (mp->array[i].identifier !=
                MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER &&
            prop_item(&mp->array[i], &it))
            n += props_record_len(&it);
    return n;
}

static void props_copy(const MQTTProperties *mp, uint8_t *out)
{
    struct props_item it;

    for (int i = 0; i < mp->count; i++)
        if (mp->array[i].identifier !=
                MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER &&
            prop_item(&mp->array[i], &it))
            out += props_put(out, &it);
}

static int on_message(void *context, char *topic, int topic_len,
                      MQTTAsync_message *m)
{
    struct upstream *up = context;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
    size_t mlen = up->version == 5 ? props_size(&m->properties) : 0;
    struct mb_event *ev = mb_event_new(MB_MESSAGE, tlen + 1 + plen + mlen);

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
    if (mlen) {
        ev->props = ev->payload + plen;
        ev->props_len = mlen;
        props_copy(&m->properties, ev->props);
    }
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

    log_warn("broker connect to %s failed: %s (code %d, reason %d)",
             up->uris[up->uri_idx],
             r && r->message ? r->message : "no answer", r ? r->code : 0,
             r ? (int)r->reasonCode : -1);
    /* a CONNACK's refusal: its return code (3.1.1) or reason (5) */
    push_simple(up, MB_CONNECT_FAILED,
                r && r->code > 0 ? r->code : r && r->reasonCode ? (int)r->reasonCode : -1,
                NULL);
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
    up->auto_version = b->mqtt_version == 0;
    up->version = up->auto_version ? 5 : b->mqtt_version;
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
             up->auto_version   ? "5, or 3.1.1 where the broker refuses 5"
             : up->version == 5 ? "5"
                                : "3.1.1");
    up->client_id = client_id;
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

bool upstream_connect_failed(struct upstream *up, int code)
{
    if (up->auto_version && code < 0) {
        /* no CONNACK at all: a broker away, or one that closes an MQTT 5
         * connect without a word (RabbitMQ 3.x): the next attempt, after
         * the usual backoff, speaks the other version */
        up->version = up->version == 5 ? 4 : 5;
        log_info("broker %s: no answer to an MQTT %s connect; the next "
                 "attempt speaks MQTT %s (broker.mqtt_version \"auto\")",
                 up->uris[up->uri_idx], up->version == 4 ? "5" : "3.1.1",
                 up->version == 4 ? "3.1.1" : "5");
        return false;
    }
    /* CONNACK 1 (3.1.1: unacceptable protocol version) or reason 0x84
     * (5: unsupported protocol version): a broker without MQTT 5 */
    if (up->version != 5 || (code != 1 && code != 0x84))
        return false;
    metrics_add(MC_MQTT5_REFUSED, 1);
    if (up->auto_version) {
        log_warn("broker %s refused MQTT 5 (CONNACK %d): connecting with "
                 "MQTT 3.1.1 (broker.mqtt_version \"auto\")",
                 up->uris[up->uri_idx], code);
        up->version = 4;
        return true;
    }
    if (!up->refusal_logged) {
        up->refusal_logged = true;
        log_error("broker %s refused MQTT 5 (CONNACK %d): it speaks MQTT "
                  "3.1.1 only; set broker.mqtt_version to 4, or to \"auto\"",
                  up->uris[up->uri_idx], code);
    }
    return false;
}

uint32_t upstream_retry_delay(struct upstream *up, bool was_connected)
{
    up->connected = false;
    if (was_connected) {
        if (up->auto_version)
            up->version = 5;      /* each new connection tries 5 first */
        /* back to the preferred broker, quickly */
        up->uri_idx = 0;
        backoff_reset(&up->bo);
        return backoff_next(&up->bo);
    }
    up->uri_idx = (up->uri_idx + 1) % up->n_uris;
    return backoff_next(&up->bo);
}

static int send_now(struct upstream *up, const char *topic,
                    const struct upstream_msg *msg, void *ctx);
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

int upstream_version(const struct upstream *up)
{
    return up ? up->version : 0;
}

const char *upstream_client_id(const struct upstream *up)
{
    return up->client_id;
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
        if (subid) {
            prop.identifier = MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER;
            prop.value.integer4 = subid;
            MQTTProperties_add(&ro.properties, &prop);
        }
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

/* Our property records as Paho's properties of m (copied by Paho). */
static int props_to_paho(const uint8_t *meta, size_t len,
                         MQTTProperties *mp)
{
    struct props_item it;
    size_t off = 0;
    int rc;

    while ((rc = props_next(meta, len, &off, &it)) > 0) {
        MQTTProperty p;

        memset(&p, 0, sizeof(p));
        switch (it.kind) {
        case PROPS_USER:
            p.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
            p.value.value.data = (char *)it.b;
            p.value.value.len = (int)it.b_len;
            break;
        case PROPS_CONTENT_TYPE:
            p.identifier = MQTTPROPERTY_CODE_CONTENT_TYPE;
            break;
        case PROPS_RESPONSE_TOPIC:
            p.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
            break;
        case PROPS_CORRELATION:
            p.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
            break;
        case PROPS_EXPIRY:
            p.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL;
            p.value.integer4 = it.n;
            break;
        }
        if (it.kind != PROPS_EXPIRY) {
            p.value.data.data = (char *)it.a;
            p.value.data.len = (int)it.a_len;
        }
        if (MQTTProperties_add(mp, &p) != 0)
            return -1;
    }
    return rc;
}

static int send_now(struct upstream *up, const char *topic,
                    const struct upstream_msg *msg, void *ctx)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    MQTTAsync_message m = MQTTAsync_message_initializer;
    struct req_box *b = NULL;
    int qos = msg->qos;
    int rc;

    m.payload = (void *)msg->payload;
    m.payloadlen = (int)msg->len;
    m.qos = qos;
    m.retained = msg->retain;
    if (msg->props_len && (up->version != 5 ||
                           props_to_paho(msg->props, msg->props_len,
                                         &m.properties) < 0)) {
        MQTTProperties_free(&m.properties);
        log_warn("publish to %s: its properties could not be set", topic);
        return MQG_EFAIL;
    }
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
    MQTTProperties_free(&m.properties);
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
        struct upstream_msg msg = {
            .payload = h->payload, .len = h->len, .qos = h->qos,
            .retain = h->retain, .props = h->props,
            .props_len = h->props_len};

        if (send_now(up, h->data, &msg, h->ctx) < 0) {
            /* in flight until its answer, like the others: the answer
             * gives the room back */
            up->inflight++;
            push_simple(up, MB_PUBDONE, MQG_ELOST, h->ctx);
        }
        free(h);
    }
}

int upstream_publish(struct upstream *up, const char *topic,
                     const struct upstream_msg *msg, void *ctx)
{
    size_t tlen, len = msg->len;
    struct held_pub *h;

    if (!up)
        return MQG_ENOTCONN;
    if (msg->qos == 0 || (!up->held_head && up->inflight < up->recv_max))
        return send_now(up, topic, msg, ctx);
    if (up->n_held + up->inflight >= up->buffer_messages)
        return MQG_EFULL;
    tlen = strlen(topic);
    if (!(h = malloc(sizeof(*h) + tlen + 1 + len + msg->props_len)))
        return MQG_ENOMEM;
    h->next = NULL;
    h->ctx = ctx;
    h->len = len;
    h->qos = msg->qos;
    h->retain = msg->retain;
    memcpy(h->data, topic, tlen + 1);
    h->payload = h->data + tlen + 1;
    if (len)
        memcpy(h->payload, msg->payload, len);
    h->props = (uint8_t *)h->payload + len;
    h->props_len = msg->props_len;
    if (msg->props_len)
        memcpy(h->props, msg->props, msg->props_len);
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
    free(up->client_id);
    free(up->username);
    free(up->password);
    free(up->ca_file);
    free(up->cert_file);
    free(up->key_file);
    free(up);
}
