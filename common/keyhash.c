#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "keyhash.h"

struct keyhash {
    /* keyed once; each hash re-initialises it from that key
     * (EVP_MAC_init with no key) */
    EVP_MAC_CTX *mac;
};

struct keyhash *keyhash_new(const unsigned char *seed)
{
    unsigned char rnd[KEYHASH_SEED_BYTES];
    struct keyhash *k = calloc(1, sizeof(*k));
    size_t size = sizeof(uint64_t);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC *sip;
    int ok;

    if (!k)
        return NULL;
    if (!seed) {
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            free(k);
            return NULL;
        }
        seed = rnd;
    }
    if ((sip = EVP_MAC_fetch(NULL, "SIPHASH", NULL))) {
        k->mac = EVP_MAC_CTX_new(sip);
        EVP_MAC_free(sip); /* the context keeps its own reference */
    }
    ok = k->mac && EVP_MAC_init(k->mac, seed, KEYHASH_SEED_BYTES, params) == 1;
    explicit_bzero(rnd, sizeof(rnd));
    if (!ok) {
        keyhash_free(k);
        return NULL;
    }
    return k;
}

void keyhash_free(struct keyhash *k)
{
    if (!k)
        return;
    EVP_MAC_CTX_free(k->mac);
    free(k);
}

uint64_t keyhash(const struct keyhash *k, const char *s, size_t len)
{
    unsigned char out[8];
    uint64_t h = 0;
    size_t n;

    /* Cannot fail once keyed; 0 would still be a valid (slow) slot. */
    if (EVP_MAC_init(k->mac, NULL, 0, NULL) != 1 ||
        EVP_MAC_update(k->mac, (const unsigned char *)s, len) != 1 ||
        EVP_MAC_final(k->mac, out, &n, sizeof(out)) != 1 || n != sizeof(out))
        return 0;
    for (size_t i = sizeof(out); i-- > 0;)
        h = h << 8 | out[i];
    return h;
}
