/* history_bench: what the history store (common/history.c) costs.
 *
 *   make bench-history        (builds it with -O2, no sanitizers, and runs)
 *   history_bench [MESSAGES [TOPICS [PER_TOPIC]]]   [1000000 10000 100]
 *
 * 1. Memory: fills the store with MESSAGES messages spread evenly over
 *    TOPICS topics ("sensor/NNNNN/temp"), payloads of 16 to 80 bytes like
 *    the simulator's JSON, and reports the heap bytes in use (mallinfo2:
 *    malloc's own headers and rounding included) and the RSS grown, each
 *    per message beyond the payload bytes.
 * 2. Add throughput at the count bound: as many more messages, each
 *    dropping its topic's oldest.
 * 3. Replays: a cursor over "sensor/#" (newest PER_TOPIC of every topic:
 *    every message), then over one topic, then "since" the middle seq:
 *    creation time and messages per second through history_cursor_next().
 * 4. Expiry: everything dropped by age at once, messages per second.
 * Output: one line per figure, "name value unit". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "history.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t heap_used(void)
{
    return mallinfo2().uordblks;
}

static size_t rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static uint64_t seq;
static char (*names)[32];

/* Adds n messages round-robin over topics, payloads of 16 to 80 bytes;
 * returns their payload bytes. */
static size_t fill(struct history *h, size_t n, size_t topics, uint64_t ts)
{
    static const char payload[] = "{\"v\":21.5,\"u\":\"C\",\"pad\":\""
                                  "................................"
                                  "..............................\"}";
    size_t bytes = 0;

    for (size_t i = 0; i < n; i++) {
        const char *t = names[i % topics];
        struct history_in in = {
            .topic = t, .topic_len = strlen(t), .payload = payload,
            .len = 16 + (size_t)(seq * 7 % 65), .seq = seq + 1, .ts_ms = ts,
            .qos = 1
        };

        seq++;
        if (history_add(h, &in) != 1) {
            fprintf(stderr, "history_add failed at %zu\n", i);
            exit(1);
        }
        bytes += in.len;
    }
    return bytes;
}

/* Runs q to the end; returns the messages given. */
static size_t drain(struct history *h, const char *filter, uint64_t after,
                    uint32_t per_topic, double *create_s, double *run_s)
{
    struct history_query q = { filter, strlen(filter), after, per_topic,
                               UINT64_MAX };
    struct history_cursor *c;
    struct history_msg *m;
    struct history_view v;
    size_t n = 0, sum = 0;
    double t0 = now_s(), t1;

    if (history_cursor_new(h, &q, 1000, &c) < 0) {
        fprintf(stderr, "history_cursor_new failed\n");
        exit(1);
    }
    t1 = now_s();
    while (history_cursor_next(c, &m) == 1) {
        history_msg_view(m, &v);
        sum += v.len; /* touch the message, as a frame builder would */
        history_msg_unref(m);
        n++;
    }
    *run_s = now_s() - t1;
    *create_s = t1 - t0;
    history_cursor_free(c);
    return sum ? n : 0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t topics = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
    uint32_t per = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 100;
    struct history_limits lim = { per, 3600, (size_t)1 << 40 };
    struct history_stats st;
    struct history *h;
    size_t heap0, rss0, payload, got;
    double t, c_s, r_s;

    if (!n || !topics || !per || n != topics * per) {
        fprintf(stderr, "MESSAGES must be TOPICS x PER_TOPIC\n");
        return 2;
    }
    names = malloc(topics * sizeof(*names));
    for (size_t i = 0; i < topics; i++)
        snprintf(names[i], sizeof(names[i]), "sensor/%05zu/temp", i);
    heap0 = heap_used();
    rss0 = rss_bytes();
    h = history_new(&lim);
    t = now_s();
    payload = fill(h, n, topics, 1000);
    t = now_s() - t;
    history_stats(h, &st);
    printf("messages %zu\ntopics %zu\n", st.messages, st.topics);
    printf("payload_per_message %.1f B\n", (double)payload / (double)n);
    printf("heap_per_message_beyond_payload %.1f B\n",
           ((double)(heap_used() - heap0) - (double)payload) / (double)n);
    printf("rss_per_message_beyond_payload %.1f B\n",
           ((double)(rss_bytes() - rss0) - (double)payload) / (double)n);
    printf("fill_rate %.2f M msg/s\n", (double)n / t / 1e6);

    t = now_s();
    fill(h, n, topics, 1000);
    t = now_s() - t;
    history_stats(h, &st);
    printf("add_with_count_drop_rate %.2f M msg/s (dropped %llu)\n",
           (double)n / t / 1e6, (unsigned long long)st.dropped_count);

    got = drain(h, "sensor/#", 0, per, &c_s, &r_s);
    printf("replay_all_create %.2f ms (%zu topics)\n", c_s * 1e3, topics);
    printf("replay_all_rate %.2f M msg/s (%zu msgs)\n",
           (double)got / r_s / 1e6, got);
    got = drain(h, "sensor/00042/temp", 0, per, &c_s, &r_s);
    printf("replay_one_topic_create %.3f ms (%zu msgs)\n", c_s * 1e3, got);
    got = drain(h, "sensor/+/temp", seq - n / 2, 0, &c_s, &r_s);
    printf("replay_since_create %.2f ms\n", c_s * 1e3);
    printf("replay_since_rate %.2f M msg/s (%zu msgs)\n",
           (double)got / r_s / 1e6, got);

    t = now_s();
    history_expire(h, 1000 + 3600 * 1000 + 1);
    t = now_s() - t;
    history_stats(h, &st);
    printf("expire_rate %.2f M msg/s (left %zu)\n", (double)n / t / 1e6,
           st.messages);
    history_free(h);
    free(names);
    return 0;
}
