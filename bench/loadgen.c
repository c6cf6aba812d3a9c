/* loadgen: mqgate's load generator (docs/benchmarks.md).
 *
 * One thread, one epoll set, thousands of connections. It speaks:
 *   - a minimal RFC 6455 client (masked client frames, optional TLS),
 *     carrying either mqgate's JSON protocol ("mqgate.v1") or MQTT 3.1.1
 *     ("mqtt" subprotocol, as mosquitto's websockets listener wants);
 *   - a raw MQTT 3.1.1 publisher over TCP whose payloads carry a sequence
 *     number and a send timestamp: {"seq":NNNNNNNNNN,"ts":TTTTTTTTTTTTTTTT}.
 *
 * Modes (the scenarios of bench/run.sh):
 *   fanout   N sessions on one topic; the publisher keeps the slowest
 *            session within --window messages (sends --batch at a time)
 *   latency  same, but the publisher sends at a fixed --rate msgs/s
 *   topics   --topics topics, each session holds 3 filters with wildcards
 *   publish  N sessions publishing QoS 1, --inflight outstanding each
 *   storm    N sessions connect as fast as possible (--concurrency in
 *            flight): sessions/s to hello+status+sub ok
 *   idle     N subscribed idle sessions: RSS of --pid before and after
 *   freeport prints a free TCP port on 127.0.0.1
 *   waitport waits until 127.0.0.1:--port accepts a connection
 *
 * The result is one line on stdout: "RESULT key=value ...". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define RBUF_SZ (512 * 1024)
#define RING_BITS 20
#define RING_MASK ((1u << RING_BITS) - 1)
#define MAX_FILTERS 3
#define MAX_PIDS 4
#define PUB_SLOTS 1024
#define SEQ_BASE 1000000000ull
#define TS_BASE 1000000000000000ull
#define PAYLOAD_LEN 40 /* {"seq":%010,"ts":%016} */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum mode { M_FANOUT, M_LATENCY, M_TOPICS, M_PUBLISH, M_STORM, M_IDLE };
enum proto { PR_MQG, PR_MQTTWS };
enum cstate { CS_TCP, CS_TLS, CS_HTTP, CS_OPEN, CS_DEAD };
enum ckind { CK_SESSION, CK_PUBLISHER };

struct conn {
    int fd;
    uint8_t kind, state;
    bool ready, got_hello, got_status, want_out, counted;
    uint8_t oks;
    uint32_t idx;
    SSL *ssl;
    uint8_t *in; /* carry: bytes of an incomplete frame or header */
    uint32_t in_len, in_cap;
    uint8_t *out; /* pending output */
    uint32_t out_off, out_len, out_cap;
    uint8_t *app; /* reassembly: WS fragments, or the MQTT byte stream */
    uint32_t app_len, app_cap;
    uint64_t last; /* last sequence number received */
    uint64_t recv;
    uint64_t t0; /* connect started, ns */
    uint32_t inflight, pubctr;
    uint64_t *slot_ts; /* publish mode: send time per slot */
};

/* Latency histogram: log-linear, 64 sub-buckets per power of two (about
 * 1.5 % resolution), values in ns. */
#define H_BUCKETS (128 + 64 * 64)
struct hist {
    uint64_t c[H_BUCKETS];
    uint64_t n, max;
};

static struct {
    enum mode mode;
    enum proto proto;
    const char *host, *path, *label, *ready_file;
    const char *topic; /* --topic: the one topic of fanout, latency, storm */
    int port, broker_port;
    bool tls;
    int n, conc, window, batch, n_topics, inflight, src_ips;
    double duration, warmup, drain, rate, settle, max_time, connect_timeout;
    uint64_t max_msgs;
    int start_delay_ms;
    int n_pids;
    int pids[MAX_PIDS];
    char *pid_names[MAX_PIDS];

    int ep;
    SSL_CTX *ssl_ctx;
    uint64_t t_base; /* CLOCK_MONOTONIC at start */
    char ws_key[32], ws_accept[32];
    struct sockaddr_in dst, pub_dst;
    uint8_t *rbuf;
    uint64_t rng;

    struct conn **s; /* sessions */
    int launched, resolved, n_ready, n_failed, in_flight;
    struct conn *pub;
    bool pub_ready;

    /* topics and filters */
    char **topics;
    uint16_t *topic_len;
    char *(*filters)[MAX_FILTERS];
    int n_filters;
    uint8_t **match; /* per session: bitmap over topics */
    uint32_t *fan;   /* per topic: live sessions matching */

    /* traffic */
    bool traffic, stop_pub;
    uint64_t t_pub0, t_warm, t_end;
    uint64_t sent, done;
    uint32_t *cnt, *expct;
    uint64_t expected_total;
    uint64_t received, win_deliv, lost, dups, bogus, closed_lost, win_sent;
    uint64_t errors, closes_by_server, close_4408;
    struct hist h;
    uint64_t drain_ns; /* how long the drain took */
    bool drained;

    /* publish mode */
    uint64_t acked, win_acked, pub_errors;
    uint64_t first_err_print;

    /* storm */
    uint64_t t_first, t_last_ready;
    struct hist hs;
} G;

static char fail_reason[256];

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec -
           G.t_base;
}

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void note(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static uint64_t rnd(void)
{
    uint64_t x = G.rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return G.rng = x;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (!q && n)
        die("out of memory");
    return q;
}

static void buf_need(uint8_t **b, uint32_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 256;

    while (c < need)
        c *= 2;
    *b = xrealloc(*b, c);
    *cap = (uint32_t)c;
}

static void put_dec(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static uint64_t get_dec(const uint8_t *p, int width)
{
    uint64_t v = 0;

    for (int i = 0; i < width; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    return v;
}

static void hist_add(struct hist *h, uint64_t v)
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

static uint64_t hist_pct(const struct hist *h, double p)
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

static double cpu_self(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds used so far by a process (all its threads), or -1. */
static double cpu_pid(int pid)
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
static double wait_pid(int pid)
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
static long rss_kb(int pid)
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
static void cpu_stat(int k, unsigned long long *busy, unsigned long long *total)
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

static double loadavg1(void)
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

static void res(const char *fmt, ...)
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

static void on_session_dead(struct conn *c);

static void conn_kill(struct conn *c, const char *why)
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
            if (why && !fail_reason[0])
                snprintf(fail_reason, sizeof(fail_reason), "%s", why);
        } else if (was_ready && why) {
            on_session_dead(c);
        }
    } else {
        G.pub_ready = false;
    }
}

/* Sends what is pending. Returns -1 when the connection died. */
static int conn_flush(struct conn *c)
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

static uint8_t *out_reserve(struct conn *c, size_t n)
{
    buf_need(&c->out, &c->out_cap, (size_t)c->out_len + n);
    return c->out + c->out_len;
}

static void out_put(struct conn *c, const void *p, size_t n)
{
    memcpy(out_reserve(c, n), p, n);
    c->out_len += (uint32_t)n;
}

/* Appends a masked client frame (RFC 6455 § 5.3). */
static void ws_put(struct conn *c, int opcode, const void *payload, size_t len)
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

static struct conn *conn_open(enum ckind kind, const struct sockaddr_in *dst,
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

static void mqtt_put_connect(struct conn *c, const char *client_id)
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

static void session_filters(struct conn *c, const char **f, int *nf)
{
    *nf = G.n_filters;
    for (int i = 0; i < G.n_filters; i++)
        f[i] = G.filters[c->idx][i];
}

static void on_ws_open(struct conn *c)
{
    const char *f[MAX_FILTERS];
    int nf;
    char buf[512];

    session_filters(c, f, &nf);
    if (G.proto == PR_MQG) {
        for (int i = 0; i < nf; i++) {
            int n = snprintf(
                buf, sizeof(buf),
                "{\"op\":\"sub\",\"id\":%d,\"topic\":\"%s\",\"qos\":0}", i + 1,
                f[i]);
            ws_put(c, 1, buf, (size_t)n);
        }
    } else {
        char id[48];
        uint8_t pkt[512], *p = pkt;
        size_t rem = 2;

        snprintf(id, sizeof(id), "lg%d-%u", (int)getpid(), c->idx);
        mqtt_put_connect(c, id);
        for (int i = 0; i < nf; i++)
            rem += 2 + strlen(f[i]) + 1;
        *p++ = 0x82;
        do {
            uint8_t b = rem & 0x7f;
            rem >>= 7;
            *p++ = (uint8_t)(b | (rem ? 0x80 : 0));
        } while (rem);
        *p++ = 0;
        *p++ = 1;
        for (int i = 0; i < nf; i++) {
            size_t l = strlen(f[i]);

            *p++ = (uint8_t)(l >> 8);
            *p++ = (uint8_t)l;
            memcpy(p, f[i], l);
            p += l;
            *p++ = 0; /* QoS 0 */
        }
        ws_put(c, 2, pkt, (size_t)(p - pkt));
    }
    conn_flush(c);
}

static void send_upgrade(struct conn *c)
{
    char req[512];
    int n = snprintf(req, sizeof(req),
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

static void check_ready(struct conn *c)
{
    if (c->ready)
        return;
    if (G.proto == PR_MQG) {
        if (c->got_hello && c->got_status && c->oks >= G.n_filters)
            session_became_ready(c);
    } else if (c->got_hello && c->oks >= 1) {
        session_became_ready(c);
    }
}

/* ---- traffic accounting ------------------------------------------------- */

static inline bool sess_matches(const struct conn *c, uint64_t seq)
{
    uint32_t t = (uint32_t)((seq - 1) % (uint64_t)G.n_topics);

    return G.match[c->idx][t >> 3] & (1u << (t & 7));
}

static inline void credit(uint64_t seq)
{
    G.cnt[seq & RING_MASK]++;
}

static void advance(void)
{
    while (G.done < G.sent &&
           G.cnt[(G.done + 1) & RING_MASK] >= G.expct[(G.done + 1) & RING_MASK])
        G.done++;
}

static void on_session_dead(struct conn *c)
{
    G.closes_by_server++;
    if (!G.traffic || G.mode == M_PUBLISH)
        return;
    for (uint64_t g = c->last + 1; g <= G.sent; g++)
        if (sess_matches(c, g)) {
            G.closed_lost++;
            credit(g);
        }
    c->last = G.sent;
    for (int t = 0; t < G.n_topics; t++)
        if (G.match[c->idx][t >> 3] & (1u << (t & 7)))
            G.fan[t]--;
    /* messages sent from now on do not expect it: c->last keeps up */
    c->ready = false;
}

static inline void deliver(struct conn *c, const uint8_t *pl, uint64_t now)
{
    uint64_t seq = get_dec(pl + 7, 10) - SEQ_BASE;
    uint64_t ts = get_dec(pl + 23, 16) - TS_BASE;

    if (seq <= c->last) {
        G.dups++;
        return;
    }
    if (seq > G.sent) {
        G.bogus++;
        return;
    }
    for (uint64_t g = c->last + 1; g < seq; g++)
        if (sess_matches(c, g)) {
            G.lost++;
            credit(g);
        }
    credit(seq);
    c->last = seq;
    c->recv++;
    G.received++;
    if (now >= G.t_warm && now < G.t_end) {
        G.win_deliv++;
        hist_add(&G.h, now > ts ? now - ts : 0);
    }
}

/* ---- protocol: receiving ------------------------------------------------ */

static size_t payload_off_cache;
static uint32_t payload_len_cache;

static void on_json_msg(struct conn *c, const uint8_t *p, size_t len,
                        uint64_t now)
{
    const uint8_t *pl = NULL;

    if (len == payload_len_cache &&
        memcmp(p + payload_off_cache, "{\"seq\":", 7) == 0) {
        pl = p + payload_off_cache;
    } else {
        pl = memmem(p, len, "{\"seq\":", 7);
        if (!pl || (size_t)(pl - p) + PAYLOAD_LEN > len) {
            G.bogus++;
            return;
        }
        payload_off_cache = (size_t)(pl - p);
        payload_len_cache = (uint32_t)len;
    }
    if (G.traffic && G.mode != M_PUBLISH)
        deliver(c, pl, now);
}

static void on_pub_ack(struct conn *c, uint64_t t_sent, uint64_t now, bool ok);
static void pub_more(struct conn *c);

static uint64_t json_id(const uint8_t *p, size_t len)
{
    const uint8_t *q = memmem(p, len, "\"id\":", 5);
    uint64_t v = 0;

    if (!q)
        return 0;
    for (q += 5; q < p + len && *q >= '0' && *q <= '9'; q++)
        v = v * 10 + (uint64_t)(*q - '0');
    return v;
}

static void on_json(struct conn *c, const uint8_t *p, size_t len, uint64_t now)
{
    if (len > 11 && memcmp(p, "{\"op\":\"msg\"", 11) == 0) {
        on_json_msg(c, p, len, now);
        return;
    }
    if (len > 10 && memcmp(p, "{\"op\":\"ok\"", 10) == 0) {
        if (G.mode == M_PUBLISH && c->ready) {
            uint64_t id = json_id(p, len);

            on_pub_ack(c, (id >> 10) * 1000, now, true);
            return;
        }
        c->oks++;
        check_ready(c);
        return;
    }
    if (len > 13 && memcmp(p, "{\"op\":\"hello\"", 13) == 0) {
        c->got_hello = true;
        check_ready(c);
        return;
    }
    if (len > 14 && memcmp(p, "{\"op\":\"status\"", 14) == 0) {
        c->got_status = true;
        if (memmem(p, len, "\"down\"", 6) && !G.first_err_print++)
            note("gateway says the broker is down");
        check_ready(c);
        return;
    }
    if (len > 13 && memcmp(p, "{\"op\":\"error\"", 13) == 0) {
        if (G.first_err_print++ < 5)
            note("error frame: %.*s", (int)(len > 300 ? 300 : len), p);
        if (G.mode == M_PUBLISH && c->ready) {
            uint64_t id = json_id(p, len);

            on_pub_ack(c, (id >> 10) * 1000, now, false);
            return;
        }
        G.errors++;
        conn_kill(c, "error reply");
        return;
    }
}

/* Parses MQTT packets from p[0..len); returns the bytes consumed. */
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

            if (po + PAYLOAD_LEN <= rem && b[po] == '{' && b[po + 1] == '"' &&
                G.traffic && G.mode != M_PUBLISH)
                deliver(c, b + po, now);
            else if (G.traffic)
                G.bogus++;
            break;
        }
        case 4: /* PUBACK */
            if (rem >= 2 && c->slot_ts) {
                uint32_t pid = (uint32_t)b[0] << 8 | b[1];
                uint64_t *slot = &c->slot_ts[(pid - 1) % PUB_SLOTS];

                on_pub_ack(c, *slot, now, true);
                *slot = 0;
            }
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
    if (G.proto == PR_MQG) {
        on_json(c, p, len, now);
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

/* The HTTP answer to the upgrade. Returns the bytes consumed, 0 when
 * incomplete. */
static size_t http_parse(struct conn *c, const uint8_t *p, size_t len)
{
    const uint8_t *end = memmem(p, len, "\r\n\r\n", 4);
    char why[96];

    if (!end) {
        if (len > 8192)
            conn_kill(c, "HTTP answer too long");
        return 0;
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
    on_ws_open(c);
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
                used += ws_parse(c, buf + used, have - used, now);
        } else if (c->kind == CK_PUBLISHER) {
            used = mqtt_parse(c, buf, have, now);
        } else {
            used = ws_parse(c, buf, have, now);
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

static void put_payload(uint8_t *p, uint64_t seq, uint64_t ts)
{
    memcpy(p, "{\"seq\":", 7);
    put_dec((char *)p + 7, seq + SEQ_BASE, 10);
    memcpy(p + 17, ",\"ts\":", 6);
    put_dec((char *)p + 23, ts + TS_BASE, 16);
    p[39] = '}';
}

static void publish(uint64_t count)
{
    struct conn *c = G.pub;
    uint64_t ts = now_ns();

    for (uint64_t k = 0; k < count; k++) {
        uint64_t seq = ++G.sent;
        uint32_t t = (uint32_t)((seq - 1) % (uint64_t)G.n_topics);
        size_t tl = G.topic_len[t], rem = 2 + tl + PAYLOAD_LEN;
        uint8_t *p = out_reserve(c, rem + 5), *s = p;

        *p++ = 0x30;
        do {
            uint8_t b = rem & 0x7f;
            rem >>= 7;
            *p++ = (uint8_t)(b | (rem ? 0x80 : 0));
        } while (rem);
        *p++ = (uint8_t)(tl >> 8);
        *p++ = (uint8_t)tl;
        memcpy(p, G.topics[t], tl);
        p += tl;
        put_payload(p, seq, ts);
        p += PAYLOAD_LEN;
        c->out_len += (uint32_t)(p - s);
        G.cnt[seq & RING_MASK] = 0;
        G.expct[seq & RING_MASK] = G.fan[t];
        G.expected_total += G.fan[t];
        if (ts >= G.t_warm && ts < G.t_end)
            G.win_sent++;
    }
    conn_flush(c);
}

static void pub_tick(uint64_t now)
{
    if (!G.pub || G.pub->state == CS_DEAD || !G.pub_ready || G.stop_pub)
        return;
    if (G.max_msgs && G.sent >= G.max_msgs)
        return;
    /* the broker is not reading: wait */
    if (G.pub->out_len - G.pub->out_off > (4u << 20))
        return;
    if (G.mode == M_LATENCY) {
        uint64_t due = (uint64_t)((double)(now - G.t_pub0) * G.rate / 1e9) + 1;

        if (due > G.sent) {
            uint64_t n = due - G.sent;

            if (G.sent + n - G.done >= RING_MASK)
                return; /* hopelessly behind: stall rather than wrap */
            publish(n);
        }
        return;
    }
    advance();
    while (G.sent - G.done + (uint64_t)G.batch <= (uint64_t)G.window) {
        uint64_t n = (uint64_t)G.batch;

        if (G.max_msgs && G.sent + n > G.max_msgs)
            n = G.max_msgs - G.sent;
        if (!n)
            break;
        publish(n);
        if (G.pub->state == CS_DEAD)
            return;
        advance();
    }
}

/* ---- publish mode: sessions publish QoS 1 ------------------------------- */

static void pub_one(struct conn *c)
{
    uint64_t t = now_ns();
    uint8_t pl[PAYLOAD_LEN];

    put_payload(pl, ++c->pubctr, t);
    if (G.proto == PR_MQG) {
        char buf[256];
        uint64_t id = ((t / 1000) << 10) | (c->pubctr & 1023);
        int n =
            snprintf(buf, sizeof(buf),
                     "{\"op\":\"pub\",\"id\":%llu,\"topic\":\"bench/pub/%u\","
                     "\"payload\":%.*s,\"qos\":1}",
                     (unsigned long long)id, c->idx, PAYLOAD_LEN, pl);

        ws_put(c, 1, buf, (size_t)n);
    } else {
        char topic[32];
        int tl = snprintf(topic, sizeof(topic), "bench/pub/%u", c->idx);
        size_t rem = 2 + (size_t)tl + 2 + PAYLOAD_LEN;
        uint8_t pkt[128], *p = pkt;
        uint32_t pid = (c->pubctr - 1) % PUB_SLOTS + 1;

        *p++ = 0x32;
        *p++ = (uint8_t)rem;
        *p++ = 0;
        *p++ = (uint8_t)tl;
        memcpy(p, topic, (size_t)tl);
        p += tl;
        *p++ = (uint8_t)(pid >> 8);
        *p++ = (uint8_t)pid;
        memcpy(p, pl, PAYLOAD_LEN);
        p += PAYLOAD_LEN;
        c->slot_ts[pid - 1] = t;
        ws_put(c, 2, pkt, (size_t)(p - pkt));
    }
    c->inflight++;
}

static void pub_more(struct conn *c)
{
    if (!G.traffic || G.stop_pub || c->state != CS_OPEN)
        return;
    while (c->inflight < (uint32_t)G.inflight)
        pub_one(c);
}

static void on_pub_ack(struct conn *c, uint64_t t_sent, uint64_t now, bool ok)
{
    if (c->inflight)
        c->inflight--;
    if (!ok) {
        G.pub_errors++;
    } else {
        G.acked++;
        if (now >= G.t_warm && now < G.t_end && t_sent) {
            G.win_acked++;
            hist_add(&G.h, now > t_sent ? now - t_sent : 0);
        }
    }
    pub_more(c);
}

/* ---- topics and filters ------------------------------------------------- */

/* MQTT filter match, for the loadgen's own bookkeeping. */
static bool topic_match(const char *f, const char *t)
{
    if ((f[0] == '+' || f[0] == '#') && t[0] == '$')
        return false;
    for (;;) {
        if (f[0] == '#')
            return true;
        const char *fe = strchr(f, '/'), *te = strchr(t, '/');
        size_t fl = fe ? (size_t)(fe - f) : strlen(f);
        size_t tl = te ? (size_t)(te - t) : strlen(t);

        if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl)))
            return false;
        if (!fe && !te)
            return true;
        if (!te)
            return fe && strcmp(fe + 1, "#") == 0;
        if (!fe)
            return false;
        f = fe + 1;
        t = te + 1;
    }
}

static void setup_topics(void)
{
    int n = G.n;

    G.filters = calloc((size_t)n, sizeof(*G.filters));
    if (G.mode == M_TOPICS) {
        int groups = (G.n_topics + 9) / 10;

        G.topics = calloc((size_t)G.n_topics, sizeof(char *));
        for (int t = 0; t < G.n_topics; t++)
            if (asprintf(&G.topics[t], "bench/g%d/d%d", t / 10, t % 10) < 0)
                die("oom");
        G.n_filters = 3;
        for (int i = 0; i < n; i++) {
            uint64_t h = (uint64_t)i * 0x9E3779B97F4A7C15ull;
            int b = (int)((h >> 20) % (uint64_t)groups);
            int cdev = (int)((h >> 40) % 10);
            int e = (int)((h >> 8) % (uint64_t)groups);
            int f = (int)((h >> 50) % 10);

            if (asprintf(&G.filters[i][0], "bench/g%d/+", i % groups) < 0 ||
                asprintf(&G.filters[i][1], "bench/g%d/d%d", b, cdev) < 0 ||
                asprintf(&G.filters[i][2], "+/g%d/d%d", e, f) < 0)
                die("oom");
        }
    } else {
        const char *topic = G.mode == M_PUBLISH ? "bench/none"
                            : G.mode == M_IDLE  ? NULL
                            : G.topic           ? G.topic
                            : G.mode == M_STORM ? "bench/storm"
                                                : "bench/fanout";

        G.n_topics = 1;
        G.topics = calloc(1, sizeof(char *));
        G.topics[0] = strdup(topic ? topic : "bench/idle/0");
        G.n_filters = 1;
        for (int i = 0; i < n; i++) {
            if (G.mode == M_IDLE) {
                if (asprintf(&G.filters[i][0], "bench/idle/%d", i % 100) < 0)
                    die("oom");
            } else {
                G.filters[i][0] = G.topics[0];
            }
        }
    }
    G.topic_len = calloc((size_t)G.n_topics, sizeof(uint16_t));
    G.fan = calloc((size_t)G.n_topics, sizeof(uint32_t));
    G.match = calloc((size_t)n, sizeof(uint8_t *));
    for (int t = 0; t < G.n_topics; t++)
        G.topic_len[t] = (uint16_t)strlen(G.topics[t]);
    for (int i = 0; i < n; i++) {
        G.match[i] = calloc((size_t)(G.n_topics + 7) / 8, 1);
        for (int t = 0; t < G.n_topics; t++)
            for (int k = 0; k < G.n_filters; k++)
                if (topic_match(G.filters[i][k], G.topics[t])) {
                    G.match[i][t >> 3] |= (uint8_t)(1u << (t & 7));
                    break;
                }
    }
}

/* ---- the loop ----------------------------------------------------------- */

static void loop_once(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(G.ep, evs, 512, timeout_ms);

    for (int i = 0; i < n; i++)
        on_event(evs[i].data.ptr, evs[i].events);
}

static void launch_sessions(void)
{
    while (G.launched < G.n && G.in_flight < G.conc) {
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

static void connect_phase(void)
{
    uint64_t deadline = now_ns() + (uint64_t)(G.max_time * 1e9);
    uint64_t last_check = 0;

    while (G.resolved < G.n) {
        uint64_t now = now_ns();

        launch_sessions();
        loop_once(5);
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

static void wait_publisher(void)
{
    uint64_t deadline = now_ns() + 10000000000ull;

    while (!G.pub_ready) {
        if (G.pub->state == CS_DEAD || now_ns() > deadline)
            die("the publisher could not connect to 127.0.0.1:%d",
                G.broker_port);
        loop_once(5);
    }
}

static void sleep_loop(double secs)
{
    uint64_t until = now_ns() + (uint64_t)(secs * 1e9);

    while (now_ns() < until)
        loop_once(10);
}

static void pids_cpu(double *v)
{
    for (int i = 0; i < G.n_pids; i++)
        v[i] = cpu_pid(G.pids[i]);
}

static void pids_wait(double *v)
{
    for (int i = 0; i < G.n_pids; i++)
        v[i] = wait_pid(G.pids[i]);
}

static void traffic_phase(void)
{
    double cpu0 = 0, cpu1 = 0, pc0[MAX_PIDS], pc1[MAX_PIDS];
    double lw0 = 0, lw1 = 0, pw0[MAX_PIDS], pw1[MAX_PIDS];
    unsigned long long sb0[2] = {0}, st0[2] = {0}, sb1[2] = {0}, st1[2] = {0};
    bool in_window = false, window_done = false;
    uint64_t t_stop = 0;

    if (G.ready_file) {
        FILE *f = fopen(G.ready_file, "w");

        if (f)
            fclose(f);
    }
    if (G.start_delay_ms)
        sleep_loop(G.start_delay_ms / 1000.0);
    for (int t = 0; t < G.n_topics; t++)
        G.fan[t] = 0;
    for (int i = 0; i < G.n; i++)
        if (G.s[i]->ready)
            for (int t = 0; t < G.n_topics; t++)
                if (G.match[i][t >> 3] & (1u << (t & 7)))
                    G.fan[t]++;
    G.traffic = true;
    G.t_pub0 = now_ns();
    G.t_warm = G.t_pub0 + (uint64_t)(G.warmup * 1e9);
    G.t_end = G.t_warm + (uint64_t)(G.duration * 1e9);
    if (G.max_msgs)
        G.t_end = UINT64_MAX / 2;
    if (G.mode == M_PUBLISH)
        for (int i = 0; i < G.n; i++)
            if (G.s[i]->ready) {
                G.s[i]->slot_ts = calloc(PUB_SLOTS, sizeof(uint64_t));
                pub_more(G.s[i]);
                conn_flush(G.s[i]);
            }
    for (;;) {
        uint64_t now = now_ns();

        if (!in_window && !window_done && now >= G.t_warm) {
            in_window = true;
            cpu0 = cpu_self();
            pids_cpu(pc0);
            lw0 = wait_pid(getpid());
            pids_wait(pw0);
            for (int k = 0; k < 2; k++)
                cpu_stat(k, &sb0[k], &st0[k]);
        }
        if (in_window && now >= G.t_end) {
            in_window = false;
            window_done = true;
            cpu1 = cpu_self();
            pids_cpu(pc1);
            lw1 = wait_pid(getpid());
            pids_wait(pw1);
            for (int k = 0; k < 2; k++)
                cpu_stat(k, &sb1[k], &st1[k]);
        }
        if (!G.stop_pub &&
            (now >= G.t_end || (G.max_msgs && G.sent >= G.max_msgs))) {
            G.stop_pub = true;
            t_stop = now;
        }
        if (G.stop_pub) {
            advance();
            bool all = G.mode == M_PUBLISH ? false : G.done >= G.sent;

            if (G.mode == M_PUBLISH) {
                all = true;
                for (int i = 0; i < G.n && all; i++)
                    if (G.s[i]->state == CS_OPEN && G.s[i]->inflight)
                        all = false;
            }
            if (all) {
                G.drained = true;
                G.drain_ns = now - t_stop;
                break;
            }
            if (now - t_stop > (uint64_t)(G.drain * 1e9)) {
                G.drain_ns = now - t_stop;
                break;
            }
        }
        pub_tick(now);
        if (G.pub && G.pub->state == CS_DEAD && !G.stop_pub)
            die("the publisher's connection was lost");
        loop_once(1);
        pub_tick(now_ns());
    }
    if (!window_done) {
        cpu1 = cpu_self();
        pids_cpu(pc1);
        lw1 = wait_pid(getpid());
        pids_wait(pw1);
        if (!cpu0) {
            cpu0 = cpu1;
            lw0 = lw1;
            for (int i = 0; i < G.n_pids; i++) {
                pc0[i] = pc1[i];
                pw0[i] = pw1[i];
            }
        }
    }
    double win = G.max_msgs ? 1 : G.duration;

    res(" lg_cpu=%.2f lg_wait=%.2f", (cpu1 - cpu0) / win,
        lw0 >= 0 && lw1 >= 0 ? (lw1 - lw0) / win : -1.0);
    for (int i = 0; i < G.n_pids; i++)
        res(" wait_%s=%.2f", G.pid_names[i],
            pw0[i] >= 0 && pw1[i] >= 0 ? (pw1[i] - pw0[i]) / win : -1.0);
    /* how busy each CPU was, whoever kept it busy: with the gateway
     * alone on CPU 0, busy minus the gateway's share is other work */
    for (int k = 0; k < 2; k++)
        res(" sys_cpu%d=%.2f", k,
            st1[k] > st0[k]
                ? (double)(sb1[k] - sb0[k]) / (double)(st1[k] - st0[k])
                : -1.0);
    for (int i = 0; i < G.n_pids; i++)
        res(" cpu_%s=%.2f", G.pid_names[i],
            pc0[i] >= 0 && pc1[i] >= 0 ? (pc1[i] - pc0[i]) / win : -1.0);
}

static void report_traffic(void)
{
    if (G.mode == M_PUBLISH) {
        uint64_t left = 0;

        for (int i = 0; i < G.n; i++)
            if (G.s[i]->state == CS_OPEN)
                left += G.s[i]->inflight;
        if (left)
            note("%llu publishes still unacknowledged at the end",
                 (unsigned long long)left);
        res(" unacked=%llu", (unsigned long long)left);
        res(" acked=%llu ack_rate=%.0f errors=%llu p50_us=%.0f p99_us=%.0f "
            "max_us=%.0f drained=%d",
            (unsigned long long)G.acked, (double)G.win_acked / G.duration,
            (unsigned long long)G.pub_errors, hist_pct(&G.h, 50) / 1e3,
            hist_pct(&G.h, 99) / 1e3, G.h.max / 1e3, G.drained);
        return;
    }
    /* what never arrived, per live session */
    uint64_t missing = 0, expected = G.expected_total;
    for (int i = 0; i < G.n; i++) {
        struct conn *c = G.s[i];

        if (c->state == CS_DEAD || !c->ready)
            continue;
        for (uint64_t g = c->last + 1; g <= G.sent; g++)
            if (sess_matches(c, g))
                missing++;
    }
    double secs = G.max_msgs ? 1 : G.duration;
    /* lost: a later message came and this one never will, or the session
     * was closed; undelivered: not there when the drain time was up */
    uint64_t lost = G.lost + G.closed_lost;

    res(" sent=%llu msg_rate=%.0f deliv_rate=%.0f received=%llu expected=%llu "
        "undelivered=%llu "
        "lost=%llu loss_pct=%.4f dups=%llu closed=%llu closed_4408=%llu "
        "bogus=%llu p50_us=%.0f p99_us=%.0f max_us=%.0f drained=%d "
        "drain_ms=%.0f",
        (unsigned long long)G.sent, (double)G.win_sent / secs,
        (double)G.win_deliv / secs, (unsigned long long)G.received,
        (unsigned long long)expected, (unsigned long long)missing,
        (unsigned long long)lost,
        expected ? 100.0 * (double)lost / (double)expected : 0.0,
        (unsigned long long)G.dups, (unsigned long long)G.closes_by_server,
        (unsigned long long)G.close_4408, (unsigned long long)G.bogus,
        hist_pct(&G.h, 50) / 1e3, hist_pct(&G.h, 99) / 1e3, G.h.max / 1e3,
        G.drained, G.drain_ns / 1e6);
    if (G.mode == M_LATENCY) {
        double offered = G.rate * (double)G.n;
        bool keeps = lost == 0 && missing == 0 && G.drained &&
                     G.drain_ns < 1000000000ull &&
                     (double)G.win_deliv / secs >= 0.99 * offered;

        res(" offered=%.0f keeps_up=%s", offered, keeps ? "yes" : "no");
    }
}

/* ---- setup -------------------------------------------------------------- */

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

static int free_port(void)
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

static int wait_port(int port, double secs)
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

static void usage(void)
{
    fputs("usage: loadgen MODE [options]\n"
          "modes: fanout latency topics publish storm idle freeport waitport\n"
          "  --port P            WebSocket port of the target (127.0.0.1)\n"
          "  --path /ws          WebSocket path\n"
          "  --tls               wss (TLS; the certificate is not verified)\n"
          "  --proto mqg|mqttws  mqgate JSON or MQTT 3.1.1 over WebSocket\n"
          "  --broker-port Q     MQTT port the publisher sends to\n"
          "  -n N                sessions\n"
          "  --concurrency C     sessions connecting at once [256]\n"
          "  --duration S        measured seconds [5]\n"
          "  --warmup S          seconds before measuring [1]\n"
          "  --drain S           seconds allowed to drain at the end [5]\n"
          "  --window W          fanout: slowest session within W msgs [100]\n"
          "  --batch B           fanout: messages per publish batch [W/4]\n"
          "  --rate R            latency: msgs/s [200]\n"
          "  --topics T          topics: number of topics [1000]\n"
          "  --inflight K        publish: outstanding QoS 1 per session [8]\n"
          "  --msgs M            stop after M messages (profiling)\n"
          "  --pid NAME=PID      a process to watch (CPU; RSS in idle mode)\n"
          "  --settle S          idle: seconds to settle before RSS [3]\n"
          "  --src-ips K         spread sessions over 127.0.0.2.. [16]\n"
          "  --label STR         copied into the RESULT line\n"
          "  --ready-file F      touched when all sessions are ready\n"
          "  --start-delay MS    wait after ready before publishing\n"
          "  --max-time S        give up on connecting after S s [120]\n"
          "  --topic T           fanout, latency, storm: the topic [bench/...]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", 1, 0, 'p'},
        {"path", 1, 0, 'P'},
        {"tls", 0, 0, 'T'},
        {"proto", 1, 0, 'r'},
        {"broker-port", 1, 0, 'b'},
        {"concurrency", 1, 0, 'c'},
        {"duration", 1, 0, 'd'},
        {"warmup", 1, 0, 'w'},
        {"drain", 1, 0, 'D'},
        {"window", 1, 0, 'W'},
        {"batch", 1, 0, 'B'},
        {"rate", 1, 0, 'R'},
        {"topics", 1, 0, 't'},
        {"inflight", 1, 0, 'k'},
        {"msgs", 1, 0, 'm'},
        {"pid", 1, 0, 'i'},
        {"settle", 1, 0, 's'},
        {"src-ips", 1, 0, 'S'},
        {"label", 1, 0, 'l'},
        {"ready-file", 1, 0, 'f'},
        {"start-delay", 1, 0, 'y'},
        {"max-time", 1, 0, 'x'},
        {"connect-timeout", 1, 0, 'C'},
        {"topic", 1, 0, 'o'},
        {0, 0, 0, 0},
    };
    const char *m;
    int o;

    if (argc < 2)
        usage();
    m = argv[1];
    G.host = "127.0.0.1";
    G.path = "/ws";
    G.label = "-";
    G.n = 100;
    G.conc = 256;
    G.duration = 5;
    G.warmup = 1;
    G.drain = 5;
    G.window = 100;
    G.rate = 200;
    G.n_topics = 1000;
    G.inflight = 8;
    G.settle = 3;
    G.src_ips = 16;
    G.max_time = 120;
    G.connect_timeout = 30;
    G.port = -1;
    G.broker_port = -1;
    optind = 2;
    while ((o = getopt_long(argc, argv, "n:", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            G.n = atoi(optarg);
            break;
        case 'p':
            G.port = atoi(optarg);
            break;
        case 'P':
            G.path = optarg;
            break;
        case 'T':
            G.tls = true;
            break;
        case 'r':
            if (strcmp(optarg, "mqg") == 0)
                G.proto = PR_MQG;
            else if (strcmp(optarg, "mqttws") == 0)
                G.proto = PR_MQTTWS;
            else
                usage();
            break;
        case 'b':
            G.broker_port = atoi(optarg);
            break;
        case 'c':
            G.conc = atoi(optarg);
            break;
        case 'd':
            G.duration = atof(optarg);
            break;
        case 'w':
            G.warmup = atof(optarg);
            break;
        case 'D':
            G.drain = atof(optarg);
            break;
        case 'W':
            G.window = atoi(optarg);
            break;
        case 'B':
            G.batch = atoi(optarg);
            break;
        case 'R':
            G.rate = atof(optarg);
            break;
        case 't':
            G.n_topics = atoi(optarg);
            break;
        case 'k':
            G.inflight = atoi(optarg);
            break;
        case 'm':
            G.max_msgs = strtoull(optarg, NULL, 10);
            break;
        case 'i': {
            char *eq = strchr(optarg, '=');

            if (!eq || G.n_pids == MAX_PIDS)
                usage();
            *eq = '\0';
            G.pid_names[G.n_pids] = optarg;
            G.pids[G.n_pids++] = atoi(eq + 1);
            break;
        }
        case 's':
            G.settle = atof(optarg);
            break;
        case 'S':
            G.src_ips = atoi(optarg);
            break;
        case 'l':
            G.label = optarg;
            break;
        case 'f':
            G.ready_file = optarg;
            break;
        case 'y':
            G.start_delay_ms = atoi(optarg);
            break;
        case 'x':
            G.max_time = atof(optarg);
            break;
        case 'C':
            G.connect_timeout = atof(optarg);
            break;
        case 'o':
            G.topic = optarg;
            break;
        default:
            usage();
        }
    }
    {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        G.t_base = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        G.rng = G.t_base ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
        if (!G.rng)
            G.rng = 1;
    }
    if (strcmp(m, "freeport") == 0) {
        printf("%d\n", free_port());
        return 0;
    }
    if (strcmp(m, "waitport") == 0)
        return wait_port(G.port, G.duration);
    if (strcmp(m, "fanout") == 0)
        G.mode = M_FANOUT;
    else if (strcmp(m, "latency") == 0)
        G.mode = M_LATENCY;
    else if (strcmp(m, "topics") == 0)
        G.mode = M_TOPICS;
    else if (strcmp(m, "publish") == 0)
        G.mode = M_PUBLISH;
    else if (strcmp(m, "storm") == 0)
        G.mode = M_STORM;
    else if (strcmp(m, "idle") == 0)
        G.mode = M_IDLE;
    else
        usage();
    if (G.port <= 0 || G.n <= 0)
        usage();
    if ((G.mode == M_FANOUT || G.mode == M_LATENCY || G.mode == M_TOPICS) &&
        G.broker_port <= 0)
        usage();
    if (G.window < 1)
        G.window = 1;
    if (G.batch <= 0)
        G.batch = G.window / 4 > 0 ? G.window / 4 : 1;
    if (G.batch > G.window)
        G.batch = G.window;
    if (G.conc <= 0)
        G.conc = 1;

    signal(SIGPIPE, SIG_IGN);
    if (!(G.rbuf = malloc(RBUF_SZ)))
        die("oom");
    G.cnt = calloc(RING_MASK + 1, sizeof(uint32_t));
    G.expct = calloc(RING_MASK + 1, sizeof(uint32_t));
    G.s = calloc((size_t)G.n, sizeof(*G.s));
    if (!G.cnt || !G.expct || !G.s)
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
    setup_topics();

    long rss0[MAX_PIDS];

    for (int i = 0; i < G.n_pids; i++)
        rss0[i] = rss_kb(G.pids[i]);

    res("RESULT mode=%s label=%s n=%d proto=%s tls=%d load1=%.2f", m, G.label,
        G.n, G.proto == PR_MQG ? "mqg" : "mqttws", G.tls, loadavg1());
    if (G.mode == M_FANOUT || G.mode == M_TOPICS)
        res(" window=%d batch=%d", G.window, G.batch);
    if (G.mode == M_LATENCY)
        res(" rate=%.0f", G.rate);
    if (G.mode == M_TOPICS)
        res(" topics=%d", G.n_topics);
    if (G.mode == M_PUBLISH)
        res(" inflight=%d", G.inflight);

    if (G.mode == M_FANOUT || G.mode == M_LATENCY || G.mode == M_TOPICS) {
        G.pub = conn_open(CK_PUBLISHER, &G.pub_dst, 0);
        wait_publisher();
    }

    double c0 = cpu_self(), pc0[MAX_PIDS], pc1[MAX_PIDS];
    double w0 = wait_pid(getpid()), pw0[MAX_PIDS], pw1[MAX_PIDS];

    pids_cpu(pc0);
    pids_wait(pw0);
    connect_phase();
    double c1 = cpu_self(), w1 = wait_pid(getpid());

    pids_cpu(pc1);
    pids_wait(pw1);
    uint64_t span = G.t_last_ready > G.t_first ? G.t_last_ready - G.t_first
                                               : now_ns() - G.t_first;

    res(" ready=%d failed=%d", G.n_ready, G.n_failed);
    if (G.n_failed) {
        note("%d sessions failed, first reason: %s", G.n_failed, fail_reason);
        /* one word for the RESULT line */
        for (char *p = fail_reason; *p; p++)
            if (*p == ' ' || *p == '=')
                *p = '_';
        res(" why=%s", fail_reason);
    }
    if (G.mode == M_STORM) {
        res(" secs=%.3f rate=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
            "lg_cpu=%.2f",
            span / 1e9, G.n_ready / (span / 1e9), hist_pct(&G.hs, 50) / 1e6,
            hist_pct(&G.hs, 99) / 1e6, G.hs.max / 1e6,
            (c1 - c0) / (span / 1e9));
        res(" lg_wait=%.2f",
            w0 >= 0 && w1 >= 0 ? (w1 - w0) / (span / 1e9) : -1.0);
        for (int i = 0; i < G.n_pids; i++)
            res(" cpu_%s=%.2f wait_%s=%.2f", G.pid_names[i],
                pc0[i] >= 0 && pc1[i] >= 0 ? (pc1[i] - pc0[i]) / (span / 1e9)
                                           : -1.0,
                G.pid_names[i],
                pw0[i] >= 0 && pw1[i] >= 0 ? (pw1[i] - pw0[i]) / (span / 1e9)
                                           : -1.0);
        goto out;
    }
    if (G.n_ready == 0)
        die("no session became ready (%s)", fail_reason);
    if (G.mode == M_IDLE) {
        res(" connect_secs=%.2f", span / 1e9);
        sleep_loop(G.settle);
        for (int i = 0; i < G.n_pids; i++) {
            long r1 = rss_kb(G.pids[i]);

            res(" rss0_%s=%ld rss1_%s=%ld per_session_%s=%.0f", G.pid_names[i],
                rss0[i], G.pid_names[i], r1, G.pid_names[i],
                (double)(r1 - rss0[i]) * 1024.0 / G.n_ready);
        }
        goto out;
    }
    traffic_phase();
    report_traffic();
out:
    printf("%s\n", result);
    fflush(stdout);
    for (int i = 0; i < G.launched; i++)
        conn_kill(G.s[i], NULL);
    if (G.pub)
        conn_kill(G.pub, NULL);
    return 0;
}
