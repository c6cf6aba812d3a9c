/* libFuzzer target: acl_subscribe_qos, acl_publish_qos, acl_mount,
 * acl_expand and acl_user_safe over a fixed table of eight roles.
 *
 * Input: byte 0 chooses which roles the session holds (bit i: role i),
 * byte 1 holds options (bit 7: no user at all; bits 0..6: the output size
 * given to acl_expand), then NUL-separated fields USER, TOPIC, PATTERN.
 * TOPIC is used as a filter for subscribe and as a name for publish when
 * it is one.
 *
 * Each answer is compared with a reference written from config.md and
 * acl.h directly (expand %u into a big buffer, then topic_covers or
 * topic_match), so the stack/heap expansion paths, the '$' and "$share/"
 * rules and the mount agreement are all checked, not just run. */
#include <stdbool.h>

#include "acl.h"
#include "fuzz.h"
#include "topic.h"
#include "utf8.h"

#define LIST(...) (char *[]){ __VA_ARGS__ }, \
    sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)
#define NONE NULL, 0

static const struct cfg_role roles[8] = {
    { "viewer", LIST("sensor/#"), NONE, 1, NULL },
    { "operator", LIST("sensor/#", "device/+/status"), LIST("device/+/cmd"),
      2, NULL },
    { "tenant", LIST("#"), LIST("cmd/#"), 2, "tenants/%u/" },
    { "tenant_ro", LIST("x/#", "+/%u/+"), NONE, 0, "tenants/%u/" },
    { "self", LIST("users/%u/#", "pair/%u/%u", "%u/+", "$share/g/%u/#"),
      LIST("users/%u/out", "%u"), 1, NULL },
    { "shared", LIST("$share/g/sensor/#", "plain/#", "$SYS/#"),
      LIST("$SYS/x"), 1, NULL },
    { "top", LIST("%u/#", "%u%u%u%u/+/#"), LIST("%u/x", "a%ub%uc/#"), 2,
      "%u/" },
    { "site", LIST("+/+/#"), LIST("+"), 0, "site/" },
};

static bool ref_user_safe(const char *u, size_t len)
{
    if (!u || len == 0 || !utf8_valid(u, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if (u[i] == '/' || u[i] == '+' || u[i] == '#' || u[i] == '\0')
            return false;
    return true;
}

/* Expands %u into a fresh buffer; NULL when the pattern uses %u and the
 * user is unsafe. */
static char *ref_expand(const char *pat, const char *user, size_t *len)
{
    size_t ulen = user ? strlen(user) : 0, plen = strlen(pat), o = 0;
    char *out;

    if (strstr(pat, "%u") && !ref_user_safe(user, ulen))
        return NULL;
    out = malloc(plen * (ulen + 1) + 1);
    if (!out)
        abort();
    for (size_t i = 0; i < plen; i++) {
        if (pat[i] == '%' && pat[i + 1] == 'u') {
            memcpy(out + o, user, ulen);
            o += ulen;
            i++;
        } else {
            out[o++] = pat[i];
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

/* Where the filter after "$share/NAME/" begins in s (0: not shared). */
static size_t ref_share(const char *s)
{
    const char *slash;

    if (strncmp(s, "$share/", 7) != 0 || !(slash = strchr(s + 7, '/')))
        return 0;
    return (size_t)(slash - s) + 1;
}

/* The pattern as it applies to the user, or NULL when it cannot: also
 * when its filter part starts with '$' only because of the user. */
static char *ref_pattern(const char *pat, const char *user, size_t *len)
{
    char *e = ref_expand(pat, user, len);

    if (e && (*len > TOPIC_MAX_LEN ||
              (e[ref_share(e)] == '$' && pat[ref_share(pat)] != '$'))) {
        free(e);
        e = NULL;
    }
    return e;
}

static int ref_qos(const struct cfg_role *const *rs, size_t n,
                   const char *user, const char *t, size_t tlen, bool sub)
{
    bool share = tlen >= 7 && memcmp(t, "$share/", 7) == 0;
    int best = -1;

    for (size_t i = 0; i < n; i++) {
        char **pats = sub ? rs[i]->subscribe : rs[i]->publish;
        size_t np = sub ? rs[i]->n_subscribe : rs[i]->n_publish;

        for (size_t j = 0; j < np; j++) {
            size_t plen;
            char *p;
            bool ok;

            if (sub && share && strncmp(pats[j], "$share/", 7) != 0)
                continue;
            if (!(p = ref_pattern(pats[j], user, &plen)))
                continue;
            ok = sub ? topic_covers(p, plen, t, tlen)
                     : topic_match(p, plen, t, tlen);
            free(p);
            if (ok && rs[i]->max_qos > best)
                best = rs[i]->max_qos;
        }
    }
    return best;
}

/* 0 and *mount (NULL: none), or -1, as acl.h describes acl_mount(). */
static int ref_mount(const struct cfg_role *const *rs, size_t n,
                     const char *user, char **mount)
{
    char *first = NULL;
    size_t flen = 0;
    int rc = 0;

    *mount = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *m = rs[i]->mount ? rs[i]->mount : "";
        size_t len;
        char *e = ref_expand(m, user, &len);

        if (!e) {
            rc = -1;
            break;
        }
        if (i == 0) {
            first = e;
            flen = len;
            continue;
        }
        bool same = len == flen && memcmp(e, first, len) == 0;
        free(e);
        if (!same) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && first && flen > 0) {
        const char *m0 = rs[0]->mount ? rs[0]->mount : "";

        if (first[0] == '$' && m0[0] != '$')
            rc = -1;
        else
            *mount = first, first = NULL;
    }
    free(first);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct cfg_role *rs[8];
    struct field f[3];
    size_t n = 0, nf;
    unsigned opt;
    char *user, *topic, *pat;
    const char *u;

    if (size < 2)
        return 0;
    for (size_t i = 0; i < 8; i++)
        if (data[0] & (1u << i))
            rs[n++] = &roles[i];
    opt = data[1];
    nf = fuzz_split(data + 2, size - 2, f, 3);
    user = fuzz_dup(f[0].p, f[0].len, 1);
    topic = fuzz_dup(nf > 1 ? f[1].p : "", nf > 1 ? f[1].len : 0, 0);
    pat = fuzz_dup(nf > 2 ? f[2].p : "", nf > 2 ? f[2].len : 0, 1);
    size_t tlen = nf > 1 ? f[1].len : 0;
    u = (opt & 0x80) ? NULL : user;

    /* acl_user_safe, with the raw field (it may hold anything). */
    FUZZ_CHECK(!!acl_user_safe(user, f[0].len) ==
               ref_user_safe(user, f[0].len));

    if (topic_filter_check(topic, tlen) == 0) {
        int q = acl_subscribe_qos(rs, n, u, topic, tlen);

        FUZZ_CHECK(q == ref_qos(rs, n, u, topic, tlen, true));
    }
    if (topic_name_check(topic, tlen) == 0) {
        int q = acl_publish_qos(rs, n, u, topic, tlen);

        FUZZ_CHECK(q == ref_qos(rs, n, u, topic, tlen, false));
    }

    {
        char *m = NULL, *want = NULL;
        int rc = acl_mount(rs, n, u, &m);

        FUZZ_CHECK(rc == ref_mount(rs, n, u, &want));
        if (rc == 0) {
            FUZZ_CHECK((m == NULL) == (want == NULL));
            if (m) {
                FUZZ_CHECK(strcmp(m, want) == 0);
                FUZZ_CHECK(m[strlen(m) - 1] == '/');
            }
        } else {
            FUZZ_CHECK(m == NULL);
        }
        free(m);
        free(want);
    }

    /* acl_expand with a pattern from the input and a small buffer. */
    {
        size_t outlen = opt & 0x7f, want_len = 0;
        char *out = malloc(outlen ? outlen : 1);
        char *want = ref_expand(pat, u, &want_len);
        long r;

        if (!out)
            abort();
        r = acl_expand(pat, u, out, outlen);
        if (!want || want_len + 1 > outlen) {
            FUZZ_CHECK(r == -1);
        } else {
            FUZZ_CHECK(r == (long)want_len);
            FUZZ_CHECK(memcmp(out, want, want_len + 1) == 0);
        }
        free(want);
        free(out);
    }

    free(user);
    free(topic);
    free(pat);
    return 0;
}
