#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jwk.h"
#include "jwk_pem.h"
#include "jwks.h"
#include "jws.h"
#include "readfile.h"

struct jwks {
    struct jwk_set *keys;
    char **pems;                /* by index of keys */
    size_t *pem_lens;
};

void jwks_free(struct jwks *set)
{
    if (!set)
        return;
    for (size_t i = 0; set->keys && i < set->keys->n; i++)
        free(set->pems[i]);
    free(set->pems);
    free(set->pem_lens);
    jwk_set_free(set->keys);
    free(set);
}

size_t jwks_count(const struct jwks *set)
{
    return set ? set->keys->n : 0;
}

struct jwks *jwks_new(const char *text, size_t len, struct errbuf *e)
{
    struct jwks *set = calloc(1, sizeof(*set));
    struct jwk_set *ks;
    size_t i, n = 0;

    if (!set) {
        errbuf_puts(e, "out of memory\n");
        return NULL;
    }
    if (jwk_set_parse(text, len, &set->keys, e) < 0)
        goto fail;
    ks = set->keys;
    if (!(set->pems = calloc(ks->n + 1, sizeof(*set->pems))) ||
        !(set->pem_lens = calloc(ks->n + 1, sizeof(*set->pem_lens)))) {
        errbuf_puts(e, "out of memory\n");
        goto fail;
    }
    for (i = 0; i < ks->n; i++) {
        const char *why;
        char *pem = jwk_pem_new(&ks->keys[i], &set->pem_lens[n], &why);

        if (!pem) {
            errbuf_printf(e, "key%s%.64s%s: left out: %s\n",
                          ks->keys[i].kid ? " \"" : " ",
                          ks->keys[i].kid ? ks->keys[i].kid : "without kid",
                          ks->keys[i].kid ? "\"" : "", why);
            jwk_clear(&ks->keys[i]);
            continue;
        }
        ks->keys[n] = ks->keys[i];
        set->pems[n++] = pem;
    }
    ks->n = n;
    if (n == 0) {
        errbuf_puts(e, "no usable key in the set\n");
        goto fail;
    }
    return set;
fail:
    jwks_free(set);
    return NULL;
}

static void *plain_alloc(size_t n)
{
    return malloc(n);
}

struct jwks *jwks_load(const char *path, struct errbuf *e)
{
    static const struct readfile_alloc a = {plain_alloc, free};
    struct jwks *set;
    char *text;
    size_t len;

    if (readfile(path, JWKS_DOC_MAX, &a, &text, &len) < 0) {
        errbuf_printf(e, "%s\n", errno == EFBIG ? "larger than 1 MiB"
                                                : strerror(errno));
        return NULL;
    }
    set = jwks_new(text, len, e);
    free(text);
    return set;
}

enum jwks_pick jwks_pick(const struct jwks *set, const struct jws_header *h,
                         const unsigned char **pem, size_t *len,
                         const char **why)
{
    size_t i;

    switch (jwk_set_find(set->keys, h->has_kid ? h->kid : NULL, &i)) {
    case JWK_NO_KID:
        *why = "token has no kid, and the key set holds several keys";
        return JWKS_REFUSED;
    case JWK_UNKNOWN_KID:
        *why = "token kid not in the key set";
        return JWKS_UNKNOWN_KID;
    case JWK_FOUND:
        break;
    }
    if ((*why = jwk_agrees(&set->keys->keys[i], h->alg)))
        return JWKS_REFUSED;
    *pem = (const unsigned char *)set->pems[i];
    *len = set->pem_lens[i];
    return JWKS_KEY;
}
