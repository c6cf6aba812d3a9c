/* The HTTP thread (http_client.h). A call is allocated with its
 * MB_HTTPDONE event, so that a finished call always reaches the mailbox:
 * the thread has no failure path after it took a call. The thread owns a
 * call from the queue until it posts it; the service thread before and
 * after. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "gateway.h"
#include "http_client.h"
#include "log.h"
#include "mailbox.h"

struct http_call {
    struct http_call *next;     /* the queue {H.lock}, then the thread's */
    struct mb_event *ev;        /* MB_HTTPDONE, ctx = this call */

    /* service thread */
    http_done_fn *done;         /* NULL: disowned */
    void *owner;

    /* the request, copied; read by the thread */
    char *url, *body, *auth_header, *ca_file;
    size_t body_len;
    long timeout_ms;
    size_t max_bytes;

    /* the thread's, then the answer */
    CURL *easy;
    struct curl_slist *headers;
    char *answer;
    size_t answer_len, answer_cap;
    bool too_long;
    long status;
    char error[CURL_ERROR_SIZE];
    const char *failure;        /* NULL, or error (or a static text) */
};

static struct {
    struct mailbox *mb;
    bool running;               /* service thread */
    pthread_t thread;
    CURLM *multi;
    pthread_mutex_t lock;
    struct http_call *qhead, *qtail; /* {lock} */
    bool stop;                  /* {lock} */
} H = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Frees c; its event too unless it was posted (the mailbox's consumer
 * frees that as any event). */
static void call_free(struct http_call *c, bool posted)
{
    struct mb_event *ev = posted ? NULL : c->ev;

    if (c->body)
        explicit_bzero(c->body, c->body_len);
    if (c->auth_header)
        explicit_bzero(c->auth_header, strlen(c->auth_header));
    if (c->answer)
        explicit_bzero(c->answer, c->answer_len);
    free(c->url);
    free(c->body);
    free(c->auth_header);
    free(c->ca_file);
    free(c->answer);
    free(c);
    free(ev);
}

/* ------------------------------------------------------------------------ */
/* The thread */

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct http_call *c = arg;
    size_t len = size * n;

    if (len > c->max_bytes - c->answer_len) {
        c->too_long = true;
        return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
    }
    if (c->answer_len + len + 1 > c->answer_cap) {
        size_t cap = c->answer_cap ? c->answer_cap : 1024;
        char *a;

        while (cap < c->answer_len + len + 1)
            cap *= 2;
        if (!(a = realloc(c->answer, cap)))
            return 0;
        c->answer = a;
        c->answer_cap = cap;
    }
    memcpy(c->answer + c->answer_len, p, len);
    c->answer_len += len;
    c->answer[c->answer_len] = '\0';
    return len;
}

/* Sets up c's easy handle; 0, or -1 with c->failure set. */
static int call_setup(struct http_call *c)
{
    CURL *e = curl_easy_init();
    bool ok = e != NULL;

    c->easy = e;
    if (ok && c->auth_header)
        ok = (c->headers = curl_slist_append(c->headers, c->auth_header));
    if (ok && c->body)
        ok = (c->headers = curl_slist_append(
                  c->headers, "Content-Type: application/json")) &&
             (c->headers = curl_slist_append(c->headers, "Expect:"));
    if (ok)
        ok = (c->headers = curl_slist_append(c->headers,
                                             "Accept: application/json"));
    if (!ok) {
        c->failure = "out of memory";
        return -1;
    }
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, MQG_SERVER);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->error);
    if (c->body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)c->body_len);
    }
    return 0;
}

/* c is done (code): its answer or failure is set, its handle released,
 * and it goes to the service thread. */
static void call_post(struct http_call *c, CURLcode code)
{
    if (c->easy) {
        if (code == CURLE_OK)
            curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->status);
        curl_multi_remove_handle(H.multi, c->easy);
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
    }
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    if (c->too_long)
        c->failure = "answer too long";
    else if (code != CURLE_OK && !c->failure)
        c->failure = c->error[0] ? c->error : curl_easy_strerror(code);
    if (c->failure)
        c->status = 0;
    mailbox_push(H.mb, c->ev);
}

/* Takes c off the thread's list of calls under way. */
static void unlink_flight(struct http_call **flight, struct http_call *c)
{
    for (struct http_call **p = flight; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            return;
        }
}

static void *thread_main(void *arg)
{
    struct http_call *flight = NULL; /* under way */

    (void)arg;
    for (;;) {
        struct http_call *c, *next;
        CURLMsg *m;
        bool stop;
        int running, left;

        pthread_mutex_lock(&H.lock);
        c = H.qhead;
        H.qhead = H.qtail = NULL;
        stop = H.stop;
        pthread_mutex_unlock(&H.lock);
        for (; c; c = next) {
            next = c->next;
            if (stop || call_setup(c) < 0 ||
                curl_multi_add_handle(H.multi, c->easy) != CURLM_OK) {
                if (stop)
                    c->failure = "shutting down";
                else if (!c->failure)
                    c->failure = "cannot start the call";
                call_post(c, CURLE_ABORTED_BY_CALLBACK);
                continue;
            }
            c->next = flight;
            flight = c;
        }
        if (stop)
            break;
        curl_multi_perform(H.multi, &running);
        while ((m = curl_multi_info_read(H.multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            unlink_flight(&flight, c);
            call_post(c, m->data.result);
        }
        curl_multi_poll(H.multi, NULL, 0, 1000, NULL);
    }
    /* shutting down: what is under way ends now */
    while (flight) {
        struct http_call *c = flight;

        flight = c->next;
        c->failure = "shutting down";
        call_post(c, CURLE_ABORTED_BY_CALLBACK);
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The service thread */

int http_client_init(struct mailbox *mb)
{
    sigset_t all, old;
    int rc;

    if (H.running)
        return 0;
    H.mb = mb;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        !(H.multi = curl_multi_init())) {
        log_error("libcurl cannot start");
        return -1;
    }
    H.stop = false;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&H.thread, NULL, thread_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        log_error("cannot start the HTTP thread: %s", strerror(rc));
        curl_multi_cleanup(H.multi);
        H.multi = NULL;
        curl_global_cleanup();
        return -1;
    }
    H.running = true;
    return 0;
}

void http_client_destroy(void)
{
    if (!H.running)
        return;
    pthread_mutex_lock(&H.lock);
    H.stop = true;
    pthread_mutex_unlock(&H.lock);
    curl_multi_wakeup(H.multi);
    pthread_join(H.thread, NULL);
    curl_multi_cleanup(H.multi);
    H.multi = NULL;
    curl_global_cleanup();
    H.running = false;
}

static char *dup_or_null(const char *s, bool *ok)
{
    char *d = s ? strdup(s) : NULL;

    if (s && !d)
        *ok = false;
    return d;
}

struct http_call *http_call_start(const struct http_request *r,
                                  http_done_fn *done, void *owner)
{
    struct http_call *c;
    bool ok = true;

    if (!H.running)
        return NULL;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    if (!(c->ev = mb_event_new(MB_HTTPDONE, 0))) {
        free(c);
        return NULL;
    }
    c->ev->ctx = c;
    c->done = done;
    c->owner = owner;
    c->url = dup_or_null(r->url, &ok);
    c->ca_file = dup_or_null(r->ca_file, &ok);
    if (r->body && (c->body = malloc(r->body_len + 1))) {
        memcpy(c->body, r->body, r->body_len);
        c->body[r->body_len] = '\0';
        c->body_len = r->body_len;
    } else if (r->body) {
        ok = false;
    }
    if (r->bearer) {
        size_t n = strlen("Authorization: Bearer ") + strlen(r->bearer) + 1;

        if ((c->auth_header = malloc(n)))
            snprintf(c->auth_header, n, "Authorization: Bearer %s",
                     r->bearer);
        else
            ok = false;
    }
    c->timeout_ms = r->timeout_ms;
    c->max_bytes = r->max_bytes;
    if (!ok) {
        call_free(c, false);
        return NULL;
    }
    pthread_mutex_lock(&H.lock);
    if (H.qtail)
        H.qtail->next = c;
    else
        H.qhead = c;
    H.qtail = c;
    pthread_mutex_unlock(&H.lock);
    curl_multi_wakeup(H.multi);
    return c;
}

void http_call_disown(struct http_call *c)
{
    if (c)
        c->done = NULL;
}

void *http_call_owner(const struct http_call *c)
{
    return c->owner;
}

void http_call_finish(struct http_call *c)
{
    if (c->done)
        c->done(c, c->owner);
    call_free(c, true);
}

long http_call_status(const struct http_call *c)
{
    return c->status;
}

const char *http_call_body(const struct http_call *c, size_t *len)
{
    *len = c->answer_len;
    return c->answer ? c->answer : "";
}

const char *http_call_error(const struct http_call *c)
{
    return c->failure;
}
