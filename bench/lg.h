/* The load generator's shared part (bench/lg_client.c): its connections
 * (TCP, TLS, an RFC 6455 client, MQTT 3.1.1 framing), the event loop, the
 * measurements of processes and the RESULT line. The modes live in
 * bench/loadgen.c (fanout, latency, topics, publish, storm, idle: also the
 * options and main) and bench/lg_stream.c (replay, rate: the stream-state
 * features of protocol.md, Extensions of version 1); they see the traffic
 * through the hooks of struct lg_app. */
#ifndef LG_H
#define LG_H

#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define RBUF_SZ (512 * 1024)
#define MAX_PIDS 4
#define SEQ_BASE 1000000000ull
#define TS_BASE 1000000000000000ull
#define PAYLOAD_LEN 40 /* {"seq":%010,"ts":%016} */

enum mode {
    M_FANOUT, M_LATENCY, M_TOPICS, M_PUBLISH, M_STORM, M_IDLE,
    M_REPLAY, M_RATE
};
/* mqgate JSON over WebSocket, MQTT 3.1.1 over WebSocket, or mqgate's
 * Server-Sent Events stream (GET /api/events: the same JSON objects) */
enum proto { PR_MQG, PR_MQTTWS, PR_SSE };
enum cstate { CS_TCP, CS_TLS, CS_HTTP, CS_OPEN, CS_DEAD };
enum ckind { CK_SESSION, CK_PUBLISHER };

struct conn {
    int fd;
    uint8_t kind, state;
    bool ready, got_hello, got_status, want_out, counted;
    uint8_t oks, want_oks; /* ready when hello, status and want_oks oks */
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

/* What a mode does with the traffic. Any hook may be NULL. */
struct lg_app {
    /* the WebSocket is open: send the subscriptions, set c->want_oks */
    void (*ws_open)(struct conn *c);
    /* PR_SSE: write the request's path and query (the subscriptions) to
     * buf[0..len), set c->want_oks */
    void (*sse_path)(struct conn *c, char *buf, size_t len);
    /* one mqgate JSON message (call lg_json_control() for the rest) */
    void (*json)(struct conn *c, const uint8_t *p, size_t len, uint64_t now);
    /* MQTT: a PUBLISH's payload (mqttws sessions), a PUBACK */
    void (*publish)(struct conn *c, const uint8_t *pl, size_t len,
                    uint64_t now);
    void (*puback)(struct conn *c, uint32_t pid, uint64_t now);
    /* a ready session was closed by the server or failed */
    void (*dead)(struct conn *c);
};

/* Latency histogram: log-linear, 64 sub-buckets per power of two (about
 * 1.5 % resolution), values in ns. */
#define H_BUCKETS (128 + 64 * 64)
struct hist {
    uint64_t c[H_BUCKETS];
    uint64_t n, max;
};

/* CPU and wait of this process and of the --pid processes, and how busy
 * CPUs 0 and 1 were, at one moment. */
struct lg_meter {
    double cpu, wait, pcpu[MAX_PIDS], pwait[MAX_PIDS];
    unsigned long long busy[2], total[2];
};

/* A measurement window [t_warm, t_end): the meters at its ends, read by
 * window_tick() when the time comes. */
struct lg_window {
    uint64_t t_warm, t_end;
    bool in, done;
    struct lg_meter m0, m1;
};

extern struct lg {
    /* options */
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
    /* stream modes (bench/lg_stream.c) */
    int replay_n, history, fill;
    double max_rate;

    /* the client */
    const struct lg_app *app;
    int ep;
    SSL_CTX *ssl_ctx;
    uint64_t t_base; /* CLOCK_MONOTONIC at start */
    char ws_key[32], ws_accept[32];
    struct sockaddr_in dst, pub_dst;
    uint8_t *rbuf;
    uint64_t rng;

    struct conn **s; /* sessions */
    int n_alloc;     /* room in s */
    int launched, resolved, n_ready, n_failed, in_flight;
    struct conn *pub;
    bool pub_ready;

    uint64_t errors, closes_by_server, close_4408;
    uint64_t first_err_print;
    char fail_reason[256];

    /* connecting */
    uint64_t t_first, t_last_ready;
    struct hist hs;
} G;

/* helpers */
uint64_t now_ns(void);
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t rnd(void);
void *xrealloc(void *p, size_t n);
void buf_need(uint8_t **b, uint32_t *cap, size_t need);
void put_dec(char *p, uint64_t v, int width);
uint64_t get_dec(const uint8_t *p, int width);
void hist_add(struct hist *h, uint64_t v);
uint64_t hist_pct(const struct hist *h, double p);
double cpu_self(void);
double cpu_pid(int pid);
double wait_pid(int pid);
long rss_kb(int pid);
void cpu_stat(int k, unsigned long long *busy, unsigned long long *total);
double loadavg1(void);
void meter_read(struct lg_meter *m);
/* lg_cpu, lg_wait, wait_NAME, sys_cpuK, cpu_NAME between a and b, per
 * second of win */
void meter_res(const struct lg_meter *a, const struct lg_meter *b,
               double win);
void window_tick(struct lg_window *w, uint64_t now);

/* the RESULT line */
void res(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void res_print(void);

/* connections */
void lg_init(void); /* after the options: epoll, TLS, addresses, key */
struct conn *conn_open(enum ckind kind, const struct sockaddr_in *dst,
                       uint32_t idx);
void conn_kill(struct conn *c, const char *why);
int conn_flush(struct conn *c);
uint8_t *out_reserve(struct conn *c, size_t n);
void out_put(struct conn *c, const void *p, size_t n);
void ws_put(struct conn *c, int opcode, const void *payload, size_t len);
void mqtt_put_connect(struct conn *c, const char *client_id);
/* appends a QoS 0 PUBLISH to the publisher's output */
void mqtt_put_publish(struct conn *c, const char *topic, size_t tl,
                      const uint8_t *payload, size_t plen);
void put_payload(uint8_t *p, uint64_t seq, uint64_t ts);
void check_ready(struct conn *c);
/* hello, status, ok and error before ready; true when it was one */
bool lg_json_control(struct conn *c, const uint8_t *p, size_t len);
uint64_t json_id(const uint8_t *p, size_t len);

/* the loop */
void loop_once(int timeout_ms);
/* opens sessions G.launched .. upto - 1 (G.conc at a time) and waits
 * until each is ready or failed */
void connect_phase(int upto);
/* the same, calling tick (if not NULL) at least every millisecond or so */
void connect_phase_tick(int upto, void (*tick)(void));
void wait_publisher(void);
void sleep_loop(double secs);
void report_failed(void); /* ready=, failed=, why= */

/* an HTTP/1.0 GET of path on 127.0.0.1:port; the body in a malloc'd
 * string, NULL on failure */
char *http_get(int port, const char *path);
int free_port(void);
int wait_port(int port, double secs);

/* filter[0..) URL-encoded into out[0..len) (NUL-terminated) */
void url_encode(const char *filter, char *out, size_t len);

/* bench/lg_stream.c */
int stream_run(void);
void stream_usage(void);

#endif
