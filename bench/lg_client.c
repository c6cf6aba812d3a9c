/* The load generator's client side (bench/lg.h): connections, TLS, the
 * WebSocket client (RFC 6455: random key checked against
 * Sec-WebSocket-Accept, masked client frames, server frames parsed in place
 * from one read buffer, only an incomplete frame's bytes kept per
 * connection, pings answered), MQTT 3.1.1 framing, the event loop, and the
 * measurements of processes. What the traffic means is the mode's (its
 * struct lg_app hooks). */
#include "lg.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct lg G;

/* ---- small helpers ------------------------------------------------------ */

uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec -
           G.t_base;
}

void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

void note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

uint64_t rnd(void)
{
    uint64_t x = G.rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return G.rng = x;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (!q && n)
        die("out of memory");
    return q;
}

void buf_need(uint8_t **b, uint32_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 256;

    while (c < need)
        c *= 2;
    *b = xrealloc(*b, c);
    *cap = (uint32_t)c;
}

void put_dec(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

uint64_t get_dec(const uint8_t *p, int width)
{
    uint64_t v = 0;

    for (int i = 0; i < width; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    return v;
}

void hist_add(struct hist *h, uint64_t v)
{
    size_t i;

    if (v < 128) {
        i = v;
    } else {
        int e = 63 - __builtin_clzll(v);
        int shift = e - 6;

        i = 128 + (size_t)(shift - 1) * 64 + ((v >> shift) - 64);
        if (i >= H_BUCKETS)
            i = H_BUCKETS - 1;
    }
    h->c[i]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static uint64_t hist_val(size_t i)
{
    if (i < 128)
        return i;
    int shift = (int)((i - 128) / 64) + 1;
    uint64_t mant = (i - 128) % 64 + 64;

    return (mant << shift) + ((1ull << shift) >> 1);
}

uint64_t hist_pct(const struct hist *h, double p)
{
    uint64_t want, seen = 0;

    if (!h->n)
        return 0;
    want = (uint64_t)(p / 100.0 * (double)h->n);
    if (want >= h->n)
        want = h->n - 1;
    for (size_t i = 0; i < H_BUCKETS; i++) {
        seen += h->c[i];
        if (seen > want) {
            uint64_t v = hist_val(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double cpu_self(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds used so far by a process (all its threads), or -1. */
double cpu_pid(int pid)
{
    char path[64], buf[2048], *p;
    unsigned long ut, st;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!(p = strrchr(buf, ')')))
        return -1;
    /* fields after the name: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Seconds a process's threads spent runnable but waiting for a CPU (the
 * second field of schedstat), summed over its threads; -1 if unknown.
 * A load generator or target that waits a lot was starved by other work
 * on its CPU, and the run measured the machine more than the program. */
double wait_pid(int pid)
{
    char path[320];
    double sum = 0;
    int found = 0;
    DIR *d;
    struct dirent *e;

    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    if (!(d = opendir(path)))
        return -1;
    while ((e = readdir(d))) {
        unsigned long long run, wait;
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", pid,
                 e->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        if (fscanf(f, "%llu %llu", &run, &wait) == 2) {
            sum += (double)wait / 1e9;
            found = 1;
        }
        fclose(f);
    }
    closedir(d);
    return found ? sum : -1;
}

/* VmRSS of a process in KiB, or -1. */
long rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = atol(line + 6);
            break;
        }
    fclose(f);
    return kb;
}

/* Busy and total jiffies of CPU k from /proc/stat. */
void cpu_stat(int k, unsigned long long *busy, unsigned long long *total)
{
    char line[512], name[16];
    FILE *f = fopen("/proc/stat", "r");

    *busy = *total = 0;
    if (!f)
        return;
    snprintf(name, sizeof(name), "cpu%d ", k);
    while (fgets(line, sizeof(line), f)) {
        unsigned long long v[8] = {0};

        if (strncmp(line, name, strlen(name)) != 0)
            continue;
        sscanf(line + strlen(name), "%llu %llu %llu %llu %llu %llu %llu %llu",
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
        for (int i = 0; i < 8; i++)
            *total += v[i];
        *busy = *total - v[3] - v[4];
        break;
    }
    fclose(f);
}

double loadavg1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");

    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* ---- output ------------------------------------------------------------- */

static char result[8192];
static size_t result_len;

void res(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    result_len += (size_t)vsnprintf(result + result_len,
                                    sizeof(result) - result_len, fmt, ap);
    va_end(ap);
    if (result_len >= sizeof(result))
        result_len = sizeof(result) - 1;
}

/* ---- connections -------------------------------------------------------- */

static void set_out(struct conn *c, bool want)
{
    struct epoll_event ev;

    if (c->want_out == want || c->state == CS_DEAD)
        return;
    c->want_out = want;
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev);
}



void conn_kill(struct conn *c, const char *why)
{
    struct linger lg = {1, 0};

    if (c->state == CS_DEAD)
        return;
    if (why && c->kind == CK_PUBLISHER)
        note("publisher connection lost: %s", why);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    /* RST: no TIME_WAIT left behind by thousands of short sessions */
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    epoll_ctl(G.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    bool was_ready = c->ready;
    c->state = CS_DEAD;
    free(c->in);
    free(c->out);
    free(c->app);
    c->in = c->out = c->app = NULL;
    c->in_len = c->in_cap = c->out_len = c->out_cap = c->out_off = 0;
    c->app_len = c->app_cap = 0;
    if (c->kind == CK_SESSION) {
        if (!c->counted) {
            c->counted = true;
            G.resolved++;
            G.in_flight--;
            G.n_failed++;
            if (why && !G.fail_reason[0])
                snprintf(G.fail_reason, sizeof(G.fail_reason), "%s", why);
        } else if (was_ready && why) {
            G.closes_by_server++;
            if (G.app->dead)
                G.app->dead(c);
        }
    } else {
        G.pub_ready = false;
    }
}

/* Sends what is pending. Returns -1 when the connection died. */
int conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n;
        size_t len = c->out_len - c->out_off;

        if (c->ssl) {
            int r = SSL_write(c->ssl, c->out + c->out_off, (int)len);

            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);

                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    set_out(c, true);
                    return 0;
                }
                conn_kill(c, "tls write error");
                return -1;
            }
            n = r;
        } else {
            n = send(c->fd, c->out + c->out_off, len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    set_out(c, true);
                    return 0;
                }
                conn_kill(c, strerror(errno));
                return -1;
            }
        }
        c->out_off += (uint32_t)n;
    }
    c->out_off = c->out_len = 0;
    if (c->out_cap > 1 << 20) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    set_out(c, false);
    return 0;
}

uint8_t *out_reserve(struct conn *c, size_t n)
{
    buf_need(&c->out, &c->out_cap, (size_t)c->out_len + n);
    return c->out + c->out_len;
}

void out_put(struct conn *c, const void *p, size_t n)
{
    memcpy(out_reserve(c, n), p, n);
    c->out_len += (uint32_t)n;
}

/* Appends a masked client frame (RFC 6455 § 5.3). */
void ws_put(struct conn *c, int opcode, const void *payload, size_t len)
{
    uint8_t *p = out_reserve(c, len + 14), *start = p;
    uint32_t key = (uint32_t)rnd();
    uint8_t mk[4];

    *p++ = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        *p++ = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        *p++ = 0x80 | 126;
        *p++ = (uint8_t)(len >> 8);
        *p++ = (uint8_t)len;
    } else {
        *p++ = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            *p++ = (uint8_t)((uint64_t)len >> (8 * i));
    }
    memcpy(mk, &key, 4);
    memcpy(p, mk, 4);
    p += 4;
    for (size_t i = 0; i < len; i++)
        p[i] = ((const uint8_t *)payload)[i] ^ mk[i & 3];
    p += len;
    c->out_len += (uint32_t)(p - start);
}

struct conn *conn_open(enum ckind kind, const struct sockaddr_in *dst,
                              uint32_t idx)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct epoll_event ev;
    int one = 1;

    if (!c)
        die("out of memory");
    c->kind = (uint8_t)kind;
    c->idx = idx;
    c->t0 = now_ns();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket: %s (raise ulimit -n)", strerror(errno));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (G.src_ips > 1 && kind == CK_SESSION) {
        /* spread over loopback addresses: more ports, fewer collisions */
        struct sockaddr_in src = {.sin_family = AF_INET};

        src.sin_addr.s_addr =
            htonl(0x7f000000u | (2 + idx % (uint32_t)G.src_ips));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof(one));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0)
            die("bind source: %s", strerror(errno));
    }
    c->state = CS_TCP;
    c->want_out = true;
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    if (connect(c->fd, (const struct sockaddr *)dst, sizeof(*dst)) < 0 &&
        errno != EINPROGRESS) {
        conn_kill(c, strerror(errno));
    }
    return c;
}

/* ---- protocol: opening -------------------------------------------------- */

void mqtt_put_connect(struct conn *c, const char *client_id)
{
    size_t idl = strlen(client_id);
    size_t rem = 10 + 2 + idl;
    uint8_t h[16], *p = h;

    *p++ = 0x10;
    *p++ = (uint8_t)rem; /* < 128 */
    *p++ = 0;
    *p++ = 4;
    memcpy(p, "MQTT", 4);
    p += 4;
    *p++ = 4;    /* 3.1.1 */
    *p++ = 0x02; /* clean session */
    *p++ = 0x02; /* keepalive 600 s */
    *p++ = 0x58;
    *p++ = (uint8_t)(idl >> 8);
    *p++ = (uint8_t)idl;
    if (c->kind == CK_PUBLISHER) {
        out_put(c, h, (size_t)(p - h));
        out_put(c, client_id, idl);
    } else {
        uint8_t pkt[128];

        memcpy(pkt, h, (size_t)(p - h));
        memcpy(pkt + (p - h), client_id, idl);
        ws_put(c, 2, pkt, (size_t)(p - h) + idl);
    }
}

void url_encode(const char *f, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *f && o + 4 < len; f++) {
        unsigned char ch = (unsigned char)*f;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

/* PR_SSE: the stream's GET instead of the upgrade. */
static void send_sse_get(struct conn *c)
{
    char path[1024], req[1400];
    int n;

    path[0] = '\0';
    if (G.app->sse_path)
        G.app->sse_path(c, path, sizeof(path));
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\n"
                 "Accept: text/event-stream\r\n\r\n",
                 path, G.host, G.port);
    c->state = CS_HTTP;
    out_put(c, req, (size_t)n);
    conn_flush(c);
}

static void send_upgrade(struct conn *c)
{
    char req[512];
    int n;

    if (G.proto == PR_SSE) {
        send_sse_get(c);
        return;
    }
    n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: %s\r\n\r\n",
                     G.path, G.host, G.port, G.ws_key,
                     G.proto == PR_MQG ? "mqgate.v1" : "mqtt");

    c->state = CS_HTTP;
    out_put(c, req, (size_t)n);
    conn_flush(c);
}

static void tls_step(struct conn *c)
{
    int r = SSL_connect(c->ssl);

    if (r == 1) {
        send_upgrade(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);

    if (e == SSL_ERROR_WANT_READ)
        set_out(c, false);
    else if (e == SSL_ERROR_WANT_WRITE)
        set_out(c, true);
    else
        conn_kill(c, "TLS handshake failed");
}

static void on_connected(struct conn *c)
{
    int err = 0;
    socklen_t l = sizeof(err);

    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
        conn_kill(c, strerror(err));
        return;
    }
    if (c->kind == CK_PUBLISHER) {
        char id[48];

        /* one per process: several load generators publish at once */
        snprintf(id, sizeof(id), "loadgen-publisher-%d", (int)getpid());
        c->state = CS_OPEN;
        mqtt_put_connect(c, id);
        conn_flush(c);
        return;
    }
    if (G.tls) {
        c->state = CS_TLS;
        if (!(c->ssl = SSL_new(G.ssl_ctx)))
            die("SSL_new");
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_tlsext_host_name(c->ssl, "localhost");
        tls_step(c);
        return;
    }
    send_upgrade(c);
}

static void session_became_ready(struct conn *c)
{
    uint64_t t = now_ns();

    c->ready = true;
    c->counted = true;
    G.resolved++;
    G.in_flight--;
    G.n_ready++;
    if (t > G.t_last_ready)
        G.t_last_ready = t;
    hist_add(&G.hs, t - c->t0);
}

void check_ready(struct conn *c)
{
    if (c->ready)
        return;
    if (G.proto == PR_MQG || G.proto == PR_SSE) {
        if (c->got_hello && c->got_status && c->oks >= c->want_oks)
            session_became_ready(c);
    } else if (c->got_hello && c->oks >= c->want_oks) {
        session_became_ready(c);
    }
}

uint64_t json_id(const uint8_t *p, size_t len)
{
    const uint8_t *q = memmem(p, len, "\"id\":", 5);
    uint64_t v = 0;

    if (!q)
        return 0;
    for (q += 5; q < p + len && *q >= '0' && *q <= '9'; q++)
        v = v * 10 + (uint64_t)(*q - '0');
    return v;
}

bool lg_json_control(struct conn *c, const uint8_t *p, size_t len)
{
    if (len > 10 && memcmp(p, "{\"op\":\"ok\"", 10) == 0) {
        c->oks++;
        check_ready(c);
        return true;
    }
    if (len > 13 && memcmp(p, "{\"op\":\"hello\"", 13) == 0) {
        c->got_hello = true;
        check_ready(c);
        return true;
    }
    if (len > 14 && memcmp(p, "{\"op\":\"status\"", 14) == 0) {
        c->got_status = true;
        if (memmem(p, len, "\"down\"", 6) && !G.first_err_print++)
            note("gateway says the broker is down");
        check_ready(c);
        return true;
    }
    if (len > 13 && memcmp(p, "{\"op\":\"error\"", 13) == 0) {
        if (G.first_err_print++ < 5)
            note("error frame: %.*s", (int)(len > 300 ? 300 : len), p);
        G.errors++;
        conn_kill(c, "error reply");
        return true;
    }
    return false;
}

static size_t mqtt_parse(struct conn *c, const uint8_t *p, size_t len,
                         uint64_t now)
{
    size_t off = 0;

    while (off + 2 <= len) {
        uint8_t type = p[off] >> 4;
        size_t rem = 0, i = off + 1;
        int shift = 0;

        for (;;) {
            if (i >= len)
                return off;
            rem |= (size_t)(p[i] & 0x7f) << shift;
            shift += 7;
            if (!(p[i++] & 0x80))
                break;
            if (shift > 21) {
                conn_kill(c, "bad MQTT length");
                return len;
            }
        }
        if (i + rem > len)
            return off;
        const uint8_t *b = p + i;

        switch (type) {
        case 2: /* CONNACK */
            if (rem < 2 || b[1] != 0) {
                conn_kill(c, "CONNACK refused");
                return len;
            }
            if (c->kind == CK_PUBLISHER) {
                c->ready = true;
                G.pub_ready = true;
            } else {
                c->got_hello = true;
                check_ready(c);
            }
            break;
        case 9: /* SUBACK */
            for (size_t k = 2; k < rem; k++)
                if (b[k] == 0x80) {
                    conn_kill(c, "SUBACK refused");
                    return len;
                }
            c->oks++;
            check_ready(c);
            break;
        case 3: { /* PUBLISH */
            size_t tl = (size_t)b[0] << 8 | b[1];
            size_t po = 2 + tl + ((p[off] & 0x06) ? 2 : 0);

            if (po <= rem && G.app->publish)
                G.app->publish(c, b + po, rem - po, now);
            break;
        }
        case 4: /* PUBACK */
            if (rem >= 2 && G.app->puback)
                G.app->puback(c, (uint32_t)b[0] << 8 | b[1], now);
            break;
        default:
            break;
        }
        off = i + rem;
        if (c->state == CS_DEAD)
            return len;
    }
    return off;
}

/* One application message (a whole WebSocket message). */
static void on_app(struct conn *c, const uint8_t *p, size_t len, uint64_t now)
{
    if (G.proto == PR_MQG || G.proto == PR_SSE) {
        if (G.app->json)
            G.app->json(c, p, len, now);
        else
            lg_json_control(c, p, len);
        return;
    }
    /* MQTT over WebSocket: frames carry a byte stream */
    if (c->app_len == 0) {
        size_t used = mqtt_parse(c, p, len, now);

        if (c->state == CS_DEAD || used == len)
            return;
        p += used;
        len -= used;
    }
    buf_need(&c->app, &c->app_cap, (size_t)c->app_len + len);
    memcpy(c->app + c->app_len, p, len);
    c->app_len += (uint32_t)len;
    size_t used = mqtt_parse(c, c->app, c->app_len, now);

    if (c->state == CS_DEAD)
        return;
    memmove(c->app, c->app + used, c->app_len - used);
    c->app_len -= (uint32_t)used;
}

static size_t ws_parse(struct conn *c, const uint8_t *p, size_t len,
                       uint64_t now)
{
    size_t off = 0;

    while (off + 2 <= len) {
        uint8_t b0 = p[off], b1 = p[off + 1];
        uint64_t plen = b1 & 0x7f;
        size_t hdr = 2;

        if (b1 & 0x80) {
            conn_kill(c, "masked server frame");
            return len;
        }
        if (plen == 126) {
            if (off + 4 > len)
                return off;
            plen = (uint64_t)p[off + 2] << 8 | p[off + 3];
            hdr = 4;
        } else if (plen == 127) {
            if (off + 10 > len)
                return off;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | p[off + 2 + i];
            hdr = 10;
        }
        if (plen > RBUF_SZ / 2) {
            conn_kill(c, "frame too big");
            return len;
        }
        if (off + hdr + plen > len)
            return off;
        const uint8_t *pl = p + off + hdr;
        int op = b0 & 0x0f;
        bool fin = b0 & 0x80;

        off += hdr + plen;
        switch (op) {
        case 0:
        case 1:
        case 2:
            if (fin && op != 0 && (G.proto != PR_MQG || c->app_len == 0)) {
                on_app(c, pl, plen, now);
            } else if (G.proto == PR_MQG) {
                buf_need(&c->app, &c->app_cap, (size_t)c->app_len + plen);
                memcpy(c->app + c->app_len, pl, plen);
                c->app_len += (uint32_t)plen;
                if (fin) {
                    on_app(c, c->app, c->app_len, now);
                    c->app_len = 0;
                }
            } else {
                on_app(c, pl, plen, now);
            }
            break;
        case 8: {
            int code = plen >= 2 ? (pl[0] << 8 | pl[1]) : 1005;
            char why[64];

            if (code == 4408)
                G.close_4408++;
            snprintf(why, sizeof(why), "closed by server %d", code);
            if (c->ready || G.first_err_print++ < 5)
                note("session %u %s", c->idx, why);
            conn_kill(c, why);
            return len;
        }
        case 9:
            ws_put(c, 10, pl, plen);
            break;
        default:
            break;
        }
        if (c->state == CS_DEAD)
            return len;
    }
    return off;
}

/* PR_SSE: the events in p[0..len), each "event: OP\n[id: ..\n]data:
 * JSON\n\n" (or a ": ping" comment), their JSON handed on as a WebSocket
 * message's. Returns the bytes consumed (whole events). */
static size_t sse_parse(struct conn *c, const uint8_t *p, size_t len,
                        uint64_t now)
{
    size_t off = 0;

    for (;;) {
        const uint8_t *end = memmem(p + off, len - off, "\n\n", 2);
        const uint8_t *d;

        if (!end)
            return off;
        d = memmem(p + off, (size_t)(end - (p + off)), "data: ", 6);
        if (d) {
            const uint8_t *j = d + 6;
            size_t jl = (size_t)(end - j);

            if (jl > 13 && memcmp(j, "{\"op\":\"close\"", 13) == 0) {
                const uint8_t *k = memmem(j, jl, "\"code\":", 7);
                int code = k ? atoi((const char *)k + 7) : 0;
                char why[64];

                if (code == 4408)
                    G.close_4408++;
                snprintf(why, sizeof(why), "stream closed by server %d", code);
                if (c->ready || G.first_err_print++ < 5)
                    note("session %u %s", c->idx, why);
                conn_kill(c, why);
                return len;
            }
            on_app(c, j, jl, now);
            if (c->state == CS_DEAD)
                return len;
        }
        off = (size_t)(end - p) + 2;
    }
}

/* The body after the headers: WebSocket frames, or the SSE events. */
static size_t body_parse(struct conn *c, const uint8_t *p, size_t len,
                         uint64_t now)
{
    return G.proto == PR_SSE ? sse_parse(c, p, len, now)
                             : ws_parse(c, p, len, now);
}

/* The HTTP answer to the upgrade (PR_SSE: to the stream's GET). Returns
 * the bytes consumed, 0 when incomplete. */
static size_t http_parse(struct conn *c, const uint8_t *p, size_t len)
{
    const uint8_t *end = memmem(p, len, "\r\n\r\n", 4);
    char why[96];

    if (!end) {
        if (len > 8192)
            conn_kill(c, "HTTP answer too long");
        return 0;
    }
    if (G.proto == PR_SSE) {
        if (len < 12 || memcmp(p, "HTTP/1.1 200", 12) != 0) {
            snprintf(why, sizeof(why), "stream refused: %.12s",
                     len >= 12 ? (const char *)p : "?");
            conn_kill(c, why);
            return len;
        }
        c->state = CS_OPEN;
        return (size_t)(end + 4 - p);
    }
    if (len < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
        snprintf(why, sizeof(why), "upgrade refused: %.12s",
                 len >= 12 ? (const char *)p : "?");
        conn_kill(c, why);
        return len;
    }
    const char *a =
        memmem(p, (size_t)(end - p), G.ws_accept, strlen(G.ws_accept));

    if (!a) {
        conn_kill(c, "bad Sec-WebSocket-Accept");
        return len;
    }
    c->state = CS_OPEN;
    if (G.app->ws_open)
        G.app->ws_open(c);
    conn_flush(c);
    return (size_t)(end + 4 - p);
}

static void on_readable(struct conn *c)
{
    uint8_t *buf = G.rbuf;

    for (int round = 0; round < 16; round++) {
        size_t have = c->in_len;
        ssize_t n;

        if (have)
            memcpy(buf, c->in, have);
        if (c->ssl) {
            int r = SSL_read(c->ssl, buf + have, (int)(RBUF_SZ - have));

            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);

                if (e == SSL_ERROR_WANT_READ)
                    return;
                if (e == SSL_ERROR_WANT_WRITE) {
                    set_out(c, true);
                    return;
                }
                conn_kill(c, e == SSL_ERROR_ZERO_RETURN ? "closed"
                                                        : "TLS read error");
                return;
            }
            n = r;
        } else {
            n = recv(c->fd, buf + have, RBUF_SZ - have, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return;
                conn_kill(c, strerror(errno));
                return;
            }
            if (n == 0) {
                conn_kill(c, "connection closed by peer");
                return;
            }
        }
        have += (size_t)n;
        uint64_t now = now_ns();
        size_t used = 0;

        if (c->state == CS_HTTP) {
            used = http_parse(c, buf, have);
            if (c->state == CS_OPEN && used < have)
                used += body_parse(c, buf + used, have - used, now);
        } else if (c->kind == CK_PUBLISHER) {
            used = mqtt_parse(c, buf, have, now);
        } else {
            used = body_parse(c, buf, have, now);
        }
        if (c->state == CS_DEAD)
            return;
        c->in_len = 0;
        if (used < have) {
            buf_need(&c->in, &c->in_cap, have - used);
            memcpy(c->in, buf + used, have - used);
            c->in_len = (uint32_t)(have - used);
        } else if (c->in_cap > 65536) {
            free(c->in);
            c->in = NULL;
            c->in_cap = 0;
        }
        if (c->out_len > c->out_off && conn_flush(c) < 0)
            return;
        if (!c->ssl || !SSL_pending(c->ssl))
            return;
    }
}

static void on_event(struct conn *c, uint32_t ev)
{
    if (c->state == CS_DEAD)
        return;
    if (c->state == CS_TCP) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(c);
        return;
    }
    if (c->state == CS_TLS) {
        tls_step(c);
        return;
    }
    if ((ev & EPOLLOUT) && conn_flush(c) < 0)
        return;
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(c);
}

/* ---- publishing --------------------------------------------------------- */

void put_payload(uint8_t *p, uint64_t seq, uint64_t ts)
{
    memcpy(p, "{\"seq\":", 7);
    put_dec((char *)p + 7, seq + SEQ_BASE, 10);
    memcpy(p + 17, ",\"ts\":", 6);
    put_dec((char *)p + 23, ts + TS_BASE, 16);
    p[39] = '}';
}

void mqtt_put_publish(struct conn *c, const char *topic, size_t tl,
                      const uint8_t *payload, size_t plen)
{
    size_t rem = 2 + tl + plen;
    uint8_t *p = out_reserve(c, rem + 5), *s = p;

    *p++ = 0x30;
    do {
        uint8_t b = rem & 0x7f;
        rem >>= 7;
        *p++ = (uint8_t)(b | (rem ? 0x80 : 0));
    } while (rem);
    *p++ = (uint8_t)(tl >> 8);
    *p++ = (uint8_t)tl;
    memcpy(p, topic, tl);
    p += tl;
    memcpy(p, payload, plen);
    p += plen;
    c->out_len += (uint32_t)(p - s);
}

/* ---- the loop ----------------------------------------------------------- */

void loop_once(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(G.ep, evs, 512, timeout_ms);

    for (int i = 0; i < n; i++)
        on_event(evs[i].data.ptr, evs[i].events);
}

static void launch_sessions(int upto)
{
    while (G.launched < upto && G.in_flight < G.conc) {
        struct conn *c = conn_open(CK_SESSION, &G.dst, (uint32_t)G.launched);

        G.s[G.launched++] = c;
        G.in_flight++;
        if (!G.t_first)
            G.t_first = c->t0;
    }
}

static void kill_stale(uint64_t now, uint64_t max_age)
{
    for (int i = 0; i < G.launched; i++) {
        struct conn *c = G.s[i];

        if (!c->counted && c->state != CS_DEAD && now >= c->t0 &&
            (max_age == 0 || now - c->t0 >= max_age)) {
            static int shown;

            if (shown++ < 3)
                note("session %d stuck after %.0f ms: state %d hello %d "
                     "status %d oks %d in %u out %u resolved %d",
                     i, (now - c->t0) / 1e6, c->state, c->got_hello,
                     c->got_status, c->oks, c->in_len, c->out_len - c->out_off,
                     G.resolved);
            conn_kill(c, "timed out before ready");
        }
    }
}

void connect_phase(int upto)
{
    connect_phase_tick(upto, NULL);
}

void connect_phase_tick(int upto, void (*tick)(void))
{
    uint64_t deadline = now_ns() + (uint64_t)(G.max_time * 1e9);
    uint64_t last_check = 0;

    if (upto > G.n_alloc)
        die("%d sessions: room for %d", upto, G.n_alloc);
    while (G.resolved < upto) {
        uint64_t now = now_ns();

        launch_sessions(upto);
        loop_once(tick ? 1 : 5);
        if (tick)
            tick();
        if (now > deadline) {
            note("connect phase: time is up");
            break;
        }
        if (now - last_check > 500000000ull) {
            last_check = now;
            kill_stale(now_ns(), (uint64_t)(G.connect_timeout * 1e9));
        }
    }
    kill_stale(UINT64_MAX, 0);
}

void wait_publisher(void)
{
    uint64_t deadline = now_ns() + 10000000000ull;

    while (!G.pub_ready) {
        if (G.pub->state == CS_DEAD || now_ns() > deadline)
            die("the publisher could not connect to 127.0.0.1:%d",
                G.broker_port);
        loop_once(5);
    }
}

void sleep_loop(double secs)
{
    uint64_t until = now_ns() + (uint64_t)(secs * 1e9);

    while (now_ns() < until)
        loop_once(10);
}

void meter_read(struct lg_meter *m)
{
    m->cpu = cpu_self();
    m->wait = wait_pid(getpid());
    for (int i = 0; i < G.n_pids; i++) {
        m->pcpu[i] = cpu_pid(G.pids[i]);
        m->pwait[i] = wait_pid(G.pids[i]);
    }
    for (int k = 0; k < 2; k++)
        cpu_stat(k, &m->busy[k], &m->total[k]);
}

void meter_res(const struct lg_meter *a, const struct lg_meter *b, double win)
{
    res(" lg_cpu=%.2f lg_wait=%.2f", (b->cpu - a->cpu) / win,
        a->wait >= 0 && b->wait >= 0 ? (b->wait - a->wait) / win : -1.0);
    for (int i = 0; i < G.n_pids; i++)
        res(" wait_%s=%.2f", G.pid_names[i],
            a->pwait[i] >= 0 && b->pwait[i] >= 0
                ? (b->pwait[i] - a->pwait[i]) / win
                : -1.0);
    /* how busy each CPU was, whoever kept it busy: with the gateway
     * alone on CPU 0, busy minus the gateway's share is other work */
    for (int k = 0; k < 2; k++)
        res(" sys_cpu%d=%.2f", k,
            b->total[k] > a->total[k]
                ? (double)(b->busy[k] - a->busy[k]) /
                      (double)(b->total[k] - a->total[k])
                : -1.0);
    for (int i = 0; i < G.n_pids; i++)
        res(" cpu_%s=%.2f", G.pid_names[i],
            a->pcpu[i] >= 0 && b->pcpu[i] >= 0
                ? (b->pcpu[i] - a->pcpu[i]) / win
                : -1.0);
}

void window_tick(struct lg_window *w, uint64_t now)
{
    if (!w->in && !w->done && now >= w->t_warm) {
        w->in = true;
        meter_read(&w->m0);
    }
    if (w->in && now >= w->t_end) {
        w->in = false;
        w->done = true;
        meter_read(&w->m1);
    }
}

void report_failed(void)
{
    res(" ready=%d failed=%d", G.n_ready, G.n_failed);
    if (G.n_failed) {
        note("%d sessions failed, first reason: %s", G.n_failed,
             G.fail_reason);
        /* one word for the RESULT line */
        for (char *p = G.fail_reason; *p; p++)
            if (*p == ' ' || *p == '=')
                *p = '_';
        res(" why=%s", G.fail_reason);
    }
}

char *http_get(int port, const char *path)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    char req[256], *buf = NULL, *body;
    size_t len = 0, cap = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n", path,
                     port);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    for (;;) {
        ssize_t r;

        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            buf = xrealloc(buf, cap);
        }
        r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (!buf)
        return NULL;
    buf[len] = '\0';
    if (len < 12 || memcmp(buf + 9, "200", 3) != 0 ||
        !(body = strstr(buf, "\r\n\r\n"))) {
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

void res_print(void)
{
    printf("%s\n", result);
    fflush(stdout);
}

static void make_key(void)
{
    uint8_t raw[16], dig[20];
    char cat[128];
    unsigned int dl = 0;

    for (int i = 0; i < 16; i++)
        raw[i] = (uint8_t)rnd();
    EVP_EncodeBlock((unsigned char *)G.ws_key, raw, 16);
    snprintf(cat, sizeof(cat), "%s%s", G.ws_key, WS_GUID);
    EVP_Digest(cat, strlen(cat), dig, &dl, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)G.ws_accept, dig, 20);
}

int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t l = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0)
        die("cannot find a free port");
    close(fd);
    return ntohs(a.sin_port);
}

int wait_port(int port, double secs)
{
    uint64_t until = now_ns() + (uint64_t)(secs * 1e9);
    struct sockaddr_in a = {.sin_family = AF_INET};

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    while (now_ns() < until) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            close(fd);
            return 0;
        }
        close(fd);
        usleep(20000);
    }
    return 1;
}

void lg_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (!(G.rbuf = malloc(RBUF_SZ)))
        die("oom");
    if (G.n_alloc < G.n)
        G.n_alloc = G.n;
    if (!(G.s = calloc((size_t)G.n_alloc, sizeof(*G.s))))
        die("oom");
    if ((G.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    G.dst.sin_family = AF_INET;
    G.dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    G.dst.sin_port = htons((uint16_t)G.port);
    G.pub_dst = G.dst;
    G.pub_dst.sin_port = htons((uint16_t)G.broker_port);
    make_key();
    if (G.tls) {
        if (!(G.ssl_ctx = SSL_CTX_new(TLS_client_method())))
            die("SSL_CTX_new");
        SSL_CTX_set_verify(G.ssl_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(G.ssl_ctx, SSL_MODE_RELEASE_BUFFERS |
                                        SSL_MODE_ENABLE_PARTIAL_WRITE |
                                        SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_CTX_set_session_cache_mode(G.ssl_ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_alpn_protos(G.ssl_ctx,
                                (const unsigned char *)"\x08http/1.1", 9);
    }
}
