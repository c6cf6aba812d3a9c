#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "jwk.h"
#include "jwk_pem.h"

/* The OpenSSL group of a JWK crv (common/jwk.c admits only these). */
static const struct {
    const char *crv, *group;
    int nid;
} groups[] = {
    {"P-256", "prime256v1", NID_X9_62_prime256v1},
    {"P-384", "secp384r1", NID_secp384r1},
    {"P-521", "secp521r1", NID_secp521r1},
};

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;

    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

static EVP_PKEY *rsa_key(const struct jwk *k)
{
    BIGNUM *n = BN_bin2bn(k->a, (int)k->a_len, NULL);
    BIGNUM *e = BN_bin2bn(k->b, (int)k->b_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;

    if (n && e && bld &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        pk = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pk;
}

/* The point (x, y) is encoded by OpenSSL's own EC_POINT, which refuses
 * a point that is not on the curve. */
static EVP_PKEY *ec_key(const struct jwk *k)
{
    const char *group = NULL;
    EC_GROUP *g = NULL;
    EC_POINT *pt = NULL;
    BIGNUM *x = BN_bin2bn(k->a, (int)k->a_len, NULL);
    BIGNUM *y = BN_bin2bn(k->b, (int)k->b_len, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    unsigned char *oct = NULL;
    EVP_PKEY *pk = NULL;
    size_t oct_len;

    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (strcmp(k->crv, groups[i].crv) == 0) {
            group = groups[i].group;
            g = EC_GROUP_new_by_curve_name(groups[i].nid);
        }
    if (!g || !x || !y || !bld || !(pt = EC_POINT_new(g)) ||
        EC_POINT_set_affine_coordinates(g, pt, x, y, NULL) != 1 ||
        !(oct_len = EC_POINT_point2buf(g, pt, POINT_CONVERSION_UNCOMPRESSED,
                                       &oct, NULL)))
        goto out;
    if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                        group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, oct,
                                         oct_len))
        pk = from_params("EC", bld);
out:
    OPENSSL_free(oct);
    OSSL_PARAM_BLD_free(bld);
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    BN_free(x);
    BN_free(y);
    return pk;
}

char *jwk_pem_new(const struct jwk *k, size_t *len, const char **why)
{
    EVP_PKEY *pk = k->kty == JWK_RSA ? rsa_key(k) : ec_key(k);
    EVP_PKEY_CTX *chk = NULL;
    BIO *b = NULL;
    char *pem = NULL, *data;
    long n;

    if (!pk) {
        *why = k->kty == JWK_RSA ? "OpenSSL refuses the RSA key"
                                 : "OpenSSL refuses the EC key (a point "
                                   "not on the curve?)";
        goto out;
    }
    if (!(chk = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) ||
        EVP_PKEY_public_check(chk) != 1) {
        *why = "OpenSSL's check of the public key fails";
        goto out;
    }
    if (!(b = BIO_new(BIO_s_mem())) || PEM_write_bio_PUBKEY(b, pk) != 1 ||
        (n = BIO_get_mem_data(b, &data)) <= 0 ||
        !(pem = malloc((size_t)n + 1))) {
        *why = "out of memory";
        goto out;
    }
    memcpy(pem, data, (size_t)n);
    pem[n] = '\0';
    *len = (size_t)n;
out:
    BIO_free(b);
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return pem;
}
