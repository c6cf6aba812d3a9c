#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/sockios.h>

#include "clock.h"
#include "conf.h"
#include "frame.h"
#include "gateway.h"
#include "handle.h"
#include "listener.h"
#include "sendq.h"
#include "session.h"
#include "session_int.h"
#include "transport.h"
#include "utf8.h"
#include "ws.h"

#define RX_BUFFER_SIZE 256  /* bytes per connection, allocated by lws: a
                            * larger message arrives in several reads */
#define TX_PACKET_SIZE (256 * 1024)
#define PREAUTH_MESSAGE_MAX 16384  /* bytes of a message before auth */
#define SCRATCH_SIZE (64 * 1024)   /* bytes coalesced into one write */
#define CONFLATE_SNDBUF (64 * 1024) /* the kernel's send buffer, conflating */

/* Where queued frames are coalesced for one write (flush()). */
static uint8_t scratch[LWS_PRE + SCRATCH_SIZE];
#define TX_CHUNK 16384             /* bytes of a fragment (flush_ext()) */

/* What a session's own callback (ESTABLISHED, RECEIVE) queues, a
 * handshake's hello or a request's answer, is written when the loop's pass
 * ends (ws_write_pending()), coalesced with whatever else the pass queued
 * for it, instead of waiting for a writable callback: libwebsockets 4.1's
 * libuv plugin turns each POLLOUT request and release into epoll_ctl()
 * calls (libuv deletes and adds the socket again), the largest kernel cost
 * of a connection storm. Only a session whose queue was empty comes here
 * (session_send() asks for a write at the first frame): a slow reader's
 * backlog still waits to be writable, as fan-out from the mailbox, pings
 * and closes do; what a full kernel buffer does not take of an answer,
 * libwebsockets keeps and sends when writable. The sessions are kept here;
 * a session closed before the pass ends is taken out (ws_write_forget()).
 * When the array is full they wait for a writable callback too. */
#define PENDING_MAX 1024
static struct session *pending[PENDING_MAX];
static size_t n_pending;
static struct session *in_callback; /* whose callback runs */

static void ws_want_write(struct session *s)
{
    if (s == in_callback && s->ws.raw_ok) {
        if (s->ws.write_pending)
            return;
        if (n_pending < PENDING_MAX) {
            s->ws.write_pending = true;
            pending[n_pending++] = s;
            return;
        }
    }
    lws_callback_on_writable(s->wsi);
}

static void ws_write_forget(struct session *s)
{
    for (size_t i = 0; s->ws.write_pending && i < n_pending; i++)
        if (pending[i] == s) {
            pending[i] = NULL;
            s->ws.write_pending = false;
        }
}

static void ws_closing(struct session *s)
{
    /* a peer that never reads cannot hold the close up for long */
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, 10);
}

static void ws_hang_up(struct session *s)
{
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

size_t ws_kernel_unsent(struct session *s)
{
    int outq;

    if (ioctl(lws_get_socket_fd(s->wsi), SIOCOUTQ, &outq) == 0 && outq > 0)
        return (size_t)outq;
    return 0;
}

static const struct transport ws_transport = {
    "ws", ws_want_write, ws_closing, ws_hang_up, ws_kernel_unsent, NULL,
};

/* What lws_cancel_service() wakes the loop for (the mailbox). */
static void (*on_wake)(void);

void ws_on_wake(void (*fn)(void))
{
    on_wake = fn;
}

void ws_conn_free(struct ws_conn *c)
{
    free(c->tx);
    free(c->rx);
    c->tx = NULL;
    c->rx = NULL;
    c->rx_len = c->rx_cap = c->tx_off = 0;
}

/* ---- writing ------------------------------------------------------------ */

/* On a connection with an extension (permessage-deflate), the head
 * frame's payload goes through libwebsockets' framing in fragments of at
 * most TX_CHUNK bytes, one per writable callback, whatever its size. Each
 * is copied into the session's own buffer: the extension keeps pointing
 * into it while it drains its output over later callbacks, so it must not
 * be shared with other sessions, and it is freed only at a callback that
 * finds the queue empty (libwebsockets calls back only once it drained).
 * Returns the bytes written, or -1 to close. */
static long flush_ext(struct session *s)
{
    struct frame *f = sendq_peek(&s->q);
    size_t left = f->payload_len - s->ws.tx_off;
    size_t n = left > TX_CHUNK ? TX_CHUNK : left;
    int flags = s->ws.tx_off ? LWS_WRITE_CONTINUATION : LWS_WRITE_TEXT;

    if (n < left)
        flags |= LWS_WRITE_NO_FIN;
    if (!s->ws.tx && !(s->ws.tx = malloc(LWS_PRE + TX_CHUNK)))
        return -1;
    memcpy(s->ws.tx + LWS_PRE, f->payload + s->ws.tx_off, n);
    if (lws_write(s->wsi, s->ws.tx + LWS_PRE, n, (enum lws_write_protocol)flags) <
        (int)n)
        return -1;
    s->ws.tx_off += n;
    if (s->ws.tx_off == f->payload_len) {
        s->ws.tx_off = 0;
        frame_unref(sendq_pop(&s->q));
    }
    return (long)n;
}

/* Writes what is queued: pre-framed frames coalesced into one write, or,
 * on a connection with an extension, a fragment of one frame at a time
 * (flush_ext()). Returns -1 to close. */
static int flush(struct session *s)
{
    uint8_t *out = scratch + LWS_PRE;
    size_t n = 0;

    if (!s->ws.raw_ok) {
        long w = flush_ext(s);

        if (w < 0)
            return -1;
        n = (size_t)w;
        goto more;
    }
    if (sendq_peek(&s->q)->len > SCRATCH_SIZE) {
        /* too big to coalesce: written from its own buffer, which has
         * LWS_PRE headroom */
        struct frame *f = sendq_pop(&s->q);
        int rc = lws_write(s->wsi, f->data, f->len, LWS_WRITE_RAW);

        n = f->len;
        frame_unref(f);
        if (rc < 0)
            return -1;
        goto more;
    }
    while (s->q.count) {
        struct frame *f = sendq_peek(&s->q);

        if (n + f->len > SCRATCH_SIZE)
            break;
        memcpy(out + n, f->data, f->len);
        n += f->len;
        frame_unref(sendq_pop(&s->q));
    }
    if (lws_write(s->wsi, out, n, LWS_WRITE_RAW) < 0)
        return -1;
more:
    session_wrote(s, n);
    /* (with an extension, once more when the queue is empty: the callback
     * that frees the fragment buffer) */
    if (s->q.count || s->close_code || s->ws.tx)
        lws_callback_on_writable(s->wsi);
    else
        sendq_trim(&s->q); /* a big burst is over */
    return 0;
}

void ws_write_pending(void)
{
    for (size_t i = 0; i < n_pending; i++) {
        struct session *s = pending[i];

        if (!s || !s->wsi)
            continue;
        s->ws.write_pending = false;
        /* a ping, a close or output libwebsockets still holds go in the
         * writable callback, in its order, and so does a replay that ran
         * out of its time budget with nothing queued (the writable
         * callback feeds it); a writable callback of this pass may have
         * written the queue already */
        if (s->q.count && !s->ping_due && !s->close_code &&
            !lws_partial_buffered(s->wsi)) {
            if (flush(s) < 0)
                ws_hang_up(s);
        } else if (s->q.count || s->replays || s->ping_due || s->close_code) {
            lws_callback_on_writable(s->wsi);
        }
    }
    n_pending = 0;
}

/* ---- receiving ---------------------------------------------------------- */

static void receive(struct session *s, const char *in, size_t len)
{
    struct lws *wsi = s->wsi;
    size_t max = (size_t)conf()->limits.max_message_bytes;
    bool complete = lws_is_final_fragment(wsi);

    /* Before authentication only auth and ping make sense: a client that
     * has not said who it is gets a small buffer. */
    if (s->state != SS_AUTHED && max > PREAUTH_MESSAGE_MAX)
        max = PREAUTH_MESSAGE_MAX;

    if (s->close_code)
        return;
    if (lws_frame_is_binary(wsi)) {
        session_close(s, 1003, "binary frames are not accepted");
        return;
    }
    if (s->ws.rx_len + len > max) {
        session_close(s, 1009, "message too big");
        return;
    }
    if (complete && s->ws.rx_len == 0) {
        if (!utf8_valid(in, len)) {
            session_close(s, 1007, "invalid UTF-8");
            return;
        }
        handle_request(s, in, len);
        return;
    }
    if (s->ws.rx_len + len > s->ws.rx_cap) {
        size_t cap = s->ws.rx_cap ? s->ws.rx_cap : 1024;
        char *rx;

        while (cap < s->ws.rx_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        if (!(rx = realloc(s->ws.rx, cap))) {
            session_close(s, 1011, "out of memory");
            return;
        }
        s->ws.rx = rx;
        s->ws.rx_cap = cap;
    }
    memcpy(s->ws.rx + s->ws.rx_len, in, len);
    s->ws.rx_len += len;
    if (!complete)
        return;
    if (!utf8_valid(s->ws.rx, s->ws.rx_len)) {
        session_close(s, 1007, "invalid UTF-8");
    } else {
        handle_request(s, s->ws.rx, s->ws.rx_len);
    }
    /* idle sessions hold no assembly buffer */
    s->ws.rx_len = 0;
    free(s->ws.rx);
    s->ws.rx = NULL;
    s->ws.rx_cap = 0;
}

/* ---- the callback ------------------------------------------------------- */

const struct lws_protocols ws_protocols[] = {
    /* First, so that a client offering no subprotocol lands here. */
    /* A small rx buffer: libwebsockets allocates it for every
     * connection, and a larger request simply arrives in pieces that the
     * session assembles. Sends are not limited by it. */
    {WS_PROTOCOL, ws_callback, sizeof(struct session), RX_BUFFER_SIZE,
     0, NULL, TX_PACKET_SIZE},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason,
                void *user, void *in, size_t len)
{
    struct session *s = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED: {
        const struct listener *lis = lws_vhost_user(lws_get_vhost(wsi));
        char ip[64];

        memset(s, 0, sizeof(*s));
        s->ws.raw_ok = !(lis && lis->compression);
        if (conf()->limits.slow_consumer == SLOW_CONFLATE) {
            /* what a slow reader has not taken waits here, where it can be
             * conflated, not in a kernel buffer of megabytes */
            int sndbuf = CONFLATE_SNDBUF;

            setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF,
                       &sndbuf, sizeof(sndbuf));
        }
        lws_get_peer_simple(wsi, ip, sizeof(ip));
        in_callback = s;
        session_open(s, &ws_transport, wsi, ip);
        in_callback = NULL;
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        s->last_rx_ms = clock_now_ms();
        in_callback = s;
        receive(s, in, len);
        in_callback = NULL;
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        s->last_rx_ms = clock_now_ms();
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (s->ping_due && !s->close_code) {
            /* with a payload: libwebsockets 4.1 reports no pong that
             * echoes an empty ping */
            uint8_t ping[LWS_PRE + 8];

            s->ping_due = false;
            memcpy(ping + LWS_PRE, "mqgate.k", 8);
            if (lws_write(wsi, ping + LWS_PRE, 8, LWS_WRITE_PING) < 0)
                return -1;
            if (s->q.count)
                lws_callback_on_writable(wsi);
            return 0;
        }
        if (!s->q.count && s->replays)
            session_replay_feed(s); /* its budget ran out last time */
        if (s->q.count)
            return flush(s);
        /* the extension drained what it had of the fragment buffer */
        free(s->ws.tx);
        s->ws.tx = NULL;
        if (s->close_code) {
            lws_close_reason(wsi, (enum lws_close_status)s->close_code,
                             (unsigned char *)s->close_reason,
                             strlen(s->close_reason));
            /* Not by returning -1: Debian builds libwebsockets with
             * _DEBUG, which on libuv closes a connection a callback
             * refused twice, the second time without the close frame.
             * One close here sends it at the next writable. */
            lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
            return 0;
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        ws_write_forget(s);
        if (s->wsi)
            session_closed(s);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (on_wake)
            on_wake();
        return 0;
    default:
        return listener_http_callback(wsi, reason, user, in, len);
    }
}
