/* ceiling: the smallest C broadcaster that does mqgate's job on one topic,
 * the upper bound of docs/benchmarks.md.
 *
 * One thread, epoll. It accepts WebSocket upgrades (offering
 * "mqgate.v1"), greets with hello and status, answers every sub with ok,
 * and takes an MQTT 3.1.1 publisher on a second port (CONNECT, PUBLISH,
 * PINGREQ). Each PUBLISH becomes mqgate's msg frame, built once; all frames
 * decoded from one read of the publisher are sent to each session with one
 * send(). No routing, no ACL, no JSON validation, no broker: what is left
 * is the cost of the kernel's socket writes, which is the floor for any
 * gateway on this machine.
 *
 * With --wss-port, --cert and --key it also listens for TLS (OpenSSL,
 * the same library and certificate as the gateway): its handshake rate is
 * the practical crypto limit the gateway's wss storm is compared with.
 *
 * With --route 1 a message goes only to the sessions whose sub named
 * exactly its topic (a hash of topics, each frame sent as it is decoded):
 * the ceiling of a message for one session among many idle ones.
 *
 *   ceiling --ws-port P --mqtt-port Q [--wss-port R --cert F --key F]
 *           [--route 1]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#define RBUF_SZ (256 * 1024)
#define MAX_PENDING (8u << 20)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum kind {
    K_LISTEN_WS,
    K_LISTEN_WSS,
    K_LISTEN_MQTT,
    K_TLS,
    K_HTTP,
    K_WS,
    K_MQTT
};

struct conn {
    int fd;
    enum kind kind;
    SSL *ssl;
    bool subscribed, want_out, dead;
    struct conn *prev, *next; /* subscribed sessions (of rt with --route) */
    struct route *rt;
    struct conn *grave;       /* closed, freed after this round of events */
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_off, out_len, out_cap;
};

static int ep;
static SSL_CTX *tls_ctx;
static uint8_t rbuf[RBUF_SZ];
static uint8_t *batch;
static size_t batch_len, batch_cap;
static struct conn *subs, *graveyard;
static unsigned long n_subs, dropped;

/* ---- routing by exact topic (--route) ----------------------------------- */

#define ROUTE_BUCKETS 4096
struct route {
    struct route *next;
    struct conn *head;
    size_t tl;
    char topic[];
};
static bool routing;
static struct route *routes[ROUTE_BUCKETS];

static struct route **route_slot(const uint8_t *t, size_t tl)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < tl; i++)
        h = (h ^ t[i]) * 16777619u;
    return &routes[h % ROUTE_BUCKETS];
}

static struct route *route_find(const uint8_t *t, size_t tl, bool create)
{
    struct route **slot = route_slot(t, tl), *r;

    for (r = *slot; r; r = r->next)
        if (r->tl == tl && memcmp(r->topic, t, tl) == 0)
            return r;
    if (!create || !(r = calloc(1, sizeof(*r) + tl)))
        return NULL;
    memcpy(r->topic, t, tl);
    r->tl = tl;
    r->next = *slot;
    *slot = r;
    return r;
}

/* The list a subscribed session is on. */
static struct conn **list_of(struct conn *c)
{
    return c->rt ? &c->rt->head : &subs;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (!q) {
        fputs("ceiling: out of memory\n", stderr);
        exit(1);
    }
    return q;
}

static void need(uint8_t **b, size_t *cap, size_t want)
{
    if (want <= *cap)
        return;
    size_t c = *cap ? *cap : 4096;

    while (c < want)
        c *= 2;
    *b = xrealloc(*b, c);
    *cap = c;
}

static void set_out(struct conn *c, bool want)
{
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                             .data.ptr = c};

    if (c->want_out == want)
        return;
    c->want_out = want;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_close(struct conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    if (c->subscribed) {
        if (c->prev)
            c->prev->next = c->next;
        else
            *list_of(c) = c->next;
        if (c->next)
            c->next->prev = c->prev;
        n_subs--;
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
    c->grave = graveyard;
    graveyard = c;
}

/* send() or SSL_write(): bytes written, 0 when it would block, -1 on
 * error. */
static ssize_t io_write(struct conn *c, const uint8_t *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_write(c->ssl, p, (int)n);

        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);

        return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

    if (w < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    return w;
}

/* Writes p[0..n) after whatever is pending; keeps the rest. Returns -1
 * when the connection was closed. */
static int conn_send(struct conn *c, const uint8_t *p, size_t n)
{
    if (c->out_len == c->out_off) {
        ssize_t w = io_write(c, p, n);

        if (w < 0) {
            conn_close(c);
            return -1;
        }
        if ((size_t)w == n)
            return 0;
        p += w;
        n -= (size_t)w;
        c->out_off = c->out_len = 0;
    }
    if (c->out_len - c->out_off + n > MAX_PENDING) {
        dropped++;
        conn_close(c);
        return -1;
    }
    need(&c->out, &c->out_cap, c->out_len + n);
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    set_out(c, true);
    return 0;
}

static void conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = io_write(c, c->out + c->out_off, c->out_len - c->out_off);

        if (w < 0) {
            conn_close(c);
            return;
        }
        if (w == 0)
            return;
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
    free(c->out); /* a session that caught up keeps no buffer */
    c->out = NULL;
    c->out_cap = 0;
    set_out(c, false);
}

static size_t ws_header(uint8_t *h, size_t len)
{
    h[0] = 0x81;
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)((uint64_t)len >> (8 * (7 - i)));
    return 10;
}

static int send_text(struct conn *c, const char *s, size_t len)
{
    uint8_t buf[1024];
    size_t h = ws_header(buf, len);

    if (len + h > sizeof(buf))
        return 0;
    memcpy(buf + h, s, len);
    return conn_send(c, buf, h + len);
}

static void add_conn(int fd, enum kind k)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    int one = 1;

    if (!c)
        exit(1);
    c->fd = fd;
    c->kind = k;
    if (k != K_LISTEN_WS && k != K_LISTEN_WSS && k != K_LISTEN_MQTT)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (k == K_TLS) {
        if (!(c->ssl = SSL_new(tls_ctx)))
            exit(1);
        SSL_set_fd(c->ssl, fd);
        SSL_set_accept_state(c->ssl);
    }
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void tls_step(struct conn *c)
{
    int r = SSL_accept(c->ssl);

    if (r == 1) {
        c->kind = K_HTTP;
        set_out(c, false);
        return;
    }
    int e = SSL_get_error(c->ssl, r);

    if (e == SSL_ERROR_WANT_READ)
        set_out(c, false);
    else if (e == SSL_ERROR_WANT_WRITE)
        set_out(c, true);
    else
        conn_close(c);
}

static int listen_on(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(fd, 4096) < 0) {
        perror("ceiling: listen");
        exit(1);
    }
    return fd;
}

/* ---- the WebSocket side ------------------------------------------------- */

static const char *header(const char *req, const char *name, size_t *len)
{
    size_t nl = strlen(name);

    for (const char *p = strstr(req, "\r\n"); p; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *e;

            while (*v == ' ')
                v++;
            e = strstr(v, "\r\n");
            *len = e ? (size_t)(e - v) : strlen(v);
            return v;
        }
    }
    return NULL;
}

static void upgrade(struct conn *c)
{
    static const char hello[] =
        "{\"op\":\"hello\",\"proto\":1,\"server\":\"ceiling/0\",\"auth\":[]}";
    static const char status[] = "{\"op\":\"status\",\"broker\":\"up\"}";
    char *req = (char *)c->in, cat[128], resp[512], acc[64];
    const char *key, *proto;
    size_t kl, pl;
    uint8_t dig[20];
    unsigned dl = 0;
    int n;

    if (!(key = header(req, "Sec-WebSocket-Key", &kl)) || kl > 60) {
        conn_close(c);
        return;
    }
    snprintf(cat, sizeof(cat), "%.*s%s", (int)kl, key, WS_GUID);
    EVP_Digest(cat, strlen(cat), dig, &dl, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)acc, dig, 20);
    proto = header(req, "Sec-WebSocket-Protocol", &pl);
    n = snprintf(resp, sizeof(resp),
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n%s\r\n",
                 acc,
                 proto && memmem(proto, pl, "mqgate.v1", 9)
                     ? "Sec-WebSocket-Protocol: mqgate.v1\r\n"
                     : "");
    c->kind = K_WS;
    c->in_len = 0;
    free(c->in); /* an idle session keeps no buffer */
    c->in = NULL;
    c->in_cap = 0;
    if (conn_send(c, (uint8_t *)resp, (size_t)n) < 0 ||
        send_text(c, hello, sizeof(hello) - 1) < 0)
        return;
    send_text(c, status, sizeof(status) - 1);
}

/* A client's text message. */
static int on_text(struct conn *c, const uint8_t *p, size_t len)
{
    const uint8_t *id, *e;
    char reply[256];
    int n;

    if (!memmem(p, len, "\"op\":\"sub\"", 10))
        return 0;
    if (!c->subscribed) {
        const uint8_t *t = memmem(p, len, "\"topic\":\"", 9), *te;
        struct conn **head;

        if (routing && t) {
            t += 9;
            te = memchr(t, '"', (size_t)(p + len - t));
            c->rt = te ? route_find(t, (size_t)(te - t), true) : NULL;
        }
        head = list_of(c);
        c->subscribed = true;
        c->prev = NULL;
        c->next = *head;
        if (*head)
            (*head)->prev = c;
        *head = c;
        n_subs++;
    }
    if (!(id = memmem(p, len, "\"id\":", 5)))
        return 0;
    id += 5;
    for (e = id; e < p + len && *e != ',' && *e != '}' && e - id < 64; e++)
        ;
    n = snprintf(reply, sizeof(reply), "{\"op\":\"ok\",\"id\":%.*s,\"qos\":0}",
                 (int)(e - id), id);
    return send_text(c, reply, (size_t)n);
}

/* Client frames: masked. Returns the bytes consumed, or -1 if closed. */
static long ws_parse(struct conn *c, uint8_t *p, size_t len)
{
    size_t off = 0;

    while (off + 6 <= len) {
        uint64_t pl = p[off + 1] & 0x7f;
        size_t h = 2;
        int op = p[off] & 0x0f;

        if (pl == 126) {
            if (off + 8 > len)
                break;
            pl = (uint64_t)p[off + 2] << 8 | p[off + 3];
            h = 4;
        } else if (pl == 127) {
            conn_close(c); /* nothing a dashboard sends is that big */
            return -1;
        }
        if (!(p[off + 1] & 0x80)) {
            conn_close(c);
            return -1;
        }
        if (off + h + 4 + pl > len)
            break;
        uint8_t *mk = p + off + h, *d = mk + 4;

        for (uint64_t i = 0; i < pl; i++)
            d[i] ^= mk[i & 3];
        off += h + 4 + pl;
        if (op == 1 && on_text(c, d, pl) < 0)
            return -1;
        if (op == 8) {
            conn_close(c);
            return -1;
        }
        if (op == 9) {
            uint8_t pong[130];

            if (pl <= 125) {
                pong[0] = 0x8a;
                pong[1] = (uint8_t)pl;
                memcpy(pong + 2, d, pl);
                if (conn_send(c, pong, 2 + pl) < 0)
                    return -1;
            }
        }
    }
    return (long)off;
}

/* ---- the MQTT side ------------------------------------------------------ */

static void batch_frame(const uint8_t *topic, size_t tl, const uint8_t *pl,
                        size_t plen, int qos)
{
    size_t len = 20 + tl + 12 + plen + 25;
    uint8_t *p;
    size_t h;

    need(&batch, &batch_cap, batch_len + len + 10);
    p = batch + batch_len;
    /* header once the length is known: write the body after 10 bytes */
    uint8_t *b = p + 10, *q = b;

    memcpy(q, "{\"op\":\"msg\",\"topic\":\"", 21);
    q += 21;
    memcpy(q, topic, tl);
    q += tl;
    memcpy(q, "\",\"payload\":", 12);
    q += 12;
    memcpy(q, pl, plen);
    q += plen;
    q += sprintf((char *)q, ",\"qos\":%d,\"retain\":false}", qos);
    len = (size_t)(q - b);
    h = ws_header(p, len);
    memmove(p + h, b, len);
    batch_len += h + len;
}

static void broadcast(void)
{
    struct conn *c = subs, *next;

    for (; c; c = next) {
        next = c->next;
        conn_send(c, batch, batch_len);
    }
    batch_len = 0;
}

static long mqtt_parse(struct conn *c, const uint8_t *p, size_t len)
{
    size_t off = 0;

    while (off + 2 <= len) {
        size_t rem = 0, i = off + 1;
        int shift = 0;
        uint8_t type = p[off] >> 4;

        for (;;) {
            if (i >= len)
                return (long)off;
            rem |= (size_t)(p[i] & 0x7f) << shift;
            shift += 7;
            if (!(p[i++] & 0x80))
                break;
            if (shift > 21) {
                conn_close(c);
                return -1;
            }
        }
        if (i + rem > len)
            break;
        const uint8_t *b = p + i;

        if (type == 1) {
            static const uint8_t connack[] = {0x20, 2, 0, 0};

            if (conn_send(c, connack, 4) < 0)
                return -1;
        } else if (type == 3 && rem >= 2) {
            int qos = (p[off] >> 1) & 3;
            size_t tl = (size_t)b[0] << 8 | b[1];
            size_t po = 2 + tl + (qos ? 2 : 0);

            if (po <= rem)
                batch_frame(b + 2, tl, b + po, rem - po, qos);
            if (po <= rem && routing) {
                struct route *r = route_find(b + 2, tl, false);

                for (struct conn *s = r ? r->head : NULL, *nx; s; s = nx) {
                    nx = s->next;
                    conn_send(s, batch, batch_len);
                }
                batch_len = 0;
            }
        } else if (type == 12) {
            static const uint8_t pingresp[] = {0xd0, 0};

            if (conn_send(c, pingresp, 2) < 0)
                return -1;
        }
        off = i + rem;
    }
    return (long)off;
}

/* ---- the loop ----------------------------------------------------------- */

static void on_readable(struct conn *c)
{
    ssize_t n;
    long used;

    if (c->kind == K_LISTEN_WS || c->kind == K_LISTEN_WSS ||
        c->kind == K_LISTEN_MQTT) {
        for (int i = 0; i < 64; i++) {
            int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

            if (fd < 0)
                return;
            add_conn(fd, c->kind == K_LISTEN_WS    ? K_HTTP
                         : c->kind == K_LISTEN_WSS ? K_TLS
                                                   : K_MQTT);
        }
        return;
    }
    if (c->kind == K_TLS) {
        tls_step(c);
        if (c->dead || c->kind == K_TLS)
            return;
    }
    if (c->in_len)
        memcpy(rbuf, c->in, c->in_len);
    if (c->ssl) {
        int r = SSL_read(c->ssl, rbuf + c->in_len,
                         (int)(sizeof(rbuf) - c->in_len - 1));

        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);

            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                conn_close(c);
            return;
        }
        n = r;
    } else {
        n = recv(c->fd, rbuf + c->in_len, sizeof(rbuf) - c->in_len - 1, 0);
    }
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        conn_close(c);
        return;
    }
    size_t have = c->in_len + (size_t)n;

    if (c->kind == K_HTTP) {
        need(&c->in, &c->in_cap, have + 1);
        memcpy(c->in, rbuf, have);
        c->in[have] = '\0';
        c->in_len = have;
        if (strstr((char *)c->in, "\r\n\r\n"))
            upgrade(c);
        else if (have > 8192)
            conn_close(c);
        return;
    }
    if (c->kind == K_MQTT) {
        used = mqtt_parse(c, rbuf, have);
        if (batch_len)
            broadcast();
    } else {
        used = ws_parse(c, rbuf, have);
    }
    if (used < 0)
        return;
    c->in_len = have - (size_t)used;
    if (c->in_len) {
        need(&c->in, &c->in_cap, c->in_len);
        memcpy(c->in, rbuf + used, c->in_len);
    } else if (c->in_cap > 4096) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}

int main(int argc, char **argv)
{
    int ws_port = 0, mqtt_port = 0, wss_port = 0;
    const char *cert = NULL, *key = NULL;
    struct epoll_event evs[256];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--ws-port") == 0)
            ws_port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--mqtt-port") == 0)
            mqtt_port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--wss-port") == 0)
            wss_port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--cert") == 0)
            cert = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[i + 1];
        else if (strcmp(argv[i], "--route") == 0)
            routing = atoi(argv[i + 1]) != 0;
    }
    if (!ws_port || !mqtt_port || (wss_port && (!cert || !key))) {
        fputs("usage: ceiling --ws-port P --mqtt-port Q "
              "[--wss-port R --cert F --key F]\n",
              stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    ep = epoll_create1(EPOLL_CLOEXEC);
    add_conn(listen_on(ws_port), K_LISTEN_WS);
    add_conn(listen_on(mqtt_port), K_LISTEN_MQTT);
    if (wss_port) {
        if (!(tls_ctx = SSL_CTX_new(TLS_server_method())) ||
            SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1) {
            fputs("ceiling: cannot load the certificate or key\n", stderr);
            return 1;
        }
        SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                      SSL_MODE_RELEASE_BUFFERS);
        add_conn(listen_on(wss_port), K_LISTEN_WSS);
    }
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);

        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;

            if (c->dead)
                continue;
            if (c->kind == K_TLS) {
                tls_step(c);
                /* the upgrade request may already sit in OpenSSL's buffer */
                if (!c->dead && c->kind != K_TLS)
                    on_readable(c);
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                conn_flush(c);
                if (c->dead ||
                    !(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    continue;
            }
            on_readable(c);
        }
        while (graveyard) {
            struct conn *g = graveyard;

            graveyard = g->grave;
            free(g->in);
            free(g->out);
            free(g);
        }
    }
}
