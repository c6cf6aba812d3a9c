#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "ipcount.h"

struct slot {
    char key[IPCOUNT_KEY_MAX];
    uint32_t count;   /* 0: empty */
};

struct ipcount {
    struct slot *slots;
    size_t cap, used;
    /* SipHash-2-4 with 64-bit output, keyed once; each hash re-initialises
     * it from that key (EVP_MAC_init with no key) */
    EVP_MAC_CTX *mac;
};

/* Linear probing from a keyed hash: without the key, nobody can choose
 * addresses (IPv6 gives plenty) that pile up in one probe chain. */
uint64_t ipcount_hash(const struct ipcount *t, const char *s)
{
    unsigned char out[8];
    uint64_t h = 0;
    size_t n;

    /* Cannot fail once keyed; 0 would still be a valid (slow) slot. */
    if (EVP_MAC_init(t->mac, NULL, 0, NULL) != 1 ||
        EVP_MAC_update(t->mac, (const unsigned char *)s, strlen(s)) != 1 ||
        EVP_MAC_final(t->mac, out, &n, sizeof(out)) != 1 || n != sizeof(out))
        return 0;
    for (size_t i = sizeof(out); i-- > 0;)
        h = h << 8 | out[i];
    return h;
}

struct ipcount *ipcount_new_keyed(const unsigned char seed[IPCOUNT_SEED_BYTES])
{
    struct ipcount *t = calloc(1, sizeof(*t));
    size_t size = sizeof(uint64_t);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC *sip;

    if (!t)
        return NULL;
    if ((sip = EVP_MAC_fetch(NULL, "SIPHASH", NULL))) {
        t->mac = EVP_MAC_CTX_new(sip);
        EVP_MAC_free(sip); /* the context keeps its own reference */
    }
    if (!t->mac ||
        EVP_MAC_init(t->mac, seed, IPCOUNT_SEED_BYTES, params) != 1 ||
        !(t->slots = calloc(t->cap = 256, sizeof(*t->slots)))) {
        ipcount_free(t);
        return NULL;
    }
    return t;
}

struct ipcount *ipcount_new(void)
{
    unsigned char seed[IPCOUNT_SEED_BYTES];
    struct ipcount *t = NULL;

    if (getrandom(seed, sizeof(seed), 0) == (ssize_t)sizeof(seed))
        t = ipcount_new_keyed(seed);
    explicit_bzero(seed, sizeof(seed));
    return t;
}

void ipcount_free(struct ipcount *t)
{
    if (!t)
        return;
    EVP_MAC_CTX_free(t->mac);
    free(t->slots);
    free(t);
}

static struct slot *find(const struct ipcount *t, const char *k)
{
    size_t i = ipcount_hash(t, k) & (t->cap - 1);

    while (t->slots[i].count) {
        if (strcmp(t->slots[i].key, k) == 0)
            return &t->slots[i];
        i = (i + 1) & (t->cap - 1);
    }
    return &t->slots[i];
}

static int grow(struct ipcount *t)
{
    struct slot *old = t->slots;
    size_t cap = t->cap;

    if (!(t->slots = calloc(cap * 2, sizeof(*t->slots)))) {
        t->slots = old;
        return -1;
    }
    t->cap = cap * 2;
    for (size_t i = 0; i < cap; i++)
        if (old[i].count)
            *find(t, old[i].key) = old[i];
    free(old);
    return 0;
}

uint32_t ipcount_get(const struct ipcount *t, const char *addr)
{
    return find(t, addr)->count;
}

uint32_t ipcount_inc(struct ipcount *t, const char *addr)
{
    char k[IPCOUNT_KEY_MAX];
    struct slot *s;

    strncpy(k, addr, sizeof(k) - 1);
    k[sizeof(k) - 1] = '\0';
    s = find(t, k);
    if (!s->count) {
        if ((t->used + 1) * 2 > t->cap) {
            if (grow(t) < 0)
                return 0;
            s = find(t, k);
        }
        memcpy(s->key, k, sizeof(k));
        t->used++;
    }
    return ++s->count;
}

void ipcount_dec(struct ipcount *t, const char *addr)
{
    char k[IPCOUNT_KEY_MAX];
    struct slot *s;
    size_t i, j;

    strncpy(k, addr, sizeof(k) - 1);
    k[sizeof(k) - 1] = '\0';
    s = find(t, k);
    if (!s->count || --s->count)
        return;
    /* backward-shift deletion keeps probe chains whole */
    t->used--;
    i = (size_t)(s - t->slots);
    for (j = (i + 1) & (t->cap - 1); t->slots[j].count;
         j = (j + 1) & (t->cap - 1)) {
        size_t home = ipcount_hash(t, t->slots[j].key) & (t->cap - 1);

        if ((j > i && (home <= i || home > j)) ||
            (j < i && (home <= i && home > j))) {
            t->slots[i] = t->slots[j];
            t->slots[j].count = 0;
            i = j;
        }
    }
    t->slots[i].count = 0;
}
