#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "auth_jwt.h"
#include "preflight.h"
#include "users.h"

#define USERS_ERR_MAX (64 * 1024)

struct pf {
    const char *path;
    bool full;
    int bad;
};

/* A file the daemon must read; secret ones should not be world-readable.
 * Returns 0 when there is one to read, else -1 (printed unless file is
 * NULL: none configured). */
static int need_file(struct pf *pf, const char *key, const char *file,
                     bool secret)
{
    struct stat st;

    if (!file)
        return -1;
    if (stat(file, &st) < 0 || access(file, R_OK) < 0) {
        fprintf(stderr, "%s: %s: %s: %s\n", pf->path, key, file,
                strerror(errno));
        pf->bad++;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: %s: %s: not a regular file\n", pf->path, key,
                file);
        pf->bad++;
        return -1;
    }
    if (secret && pf->full && (st.st_mode & S_IROTH))
        fprintf(stderr,
                "%s: %s: %s: warning: readable by every user (chmod 600)\n",
                pf->path, key, file);
    return 0;
}

/* Prints a problem with a file's contents, with OpenSSL's last reason
 * when it has one, and clears OpenSSL's error queue. */
static void bad_content(struct pf *pf, const char *key, const char *file,
                        const char *problem)
{
    const char *reason = ERR_reason_error_string(ERR_peek_last_error());

    fprintf(stderr, "%s: %s: %s: %s%s%s%s\n", pf->path, key, file, problem,
            reason ? " (" : "", reason ? reason : "", reason ? ")" : "");
    ERR_clear_error();
    pf->bad++;
}

/* Never ask for a passphrase: the daemon has nobody to ask. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* A certificate chain (PEM) and its unencrypted private key, as the
 * listeners and the broker connection load them: both parse, and the key
 * is the certificate's (contents only when full). */
static void check_pair(struct pf *pf, const char *prefix,
                       const char *cert_file, const char *key_file)
{
    char cert_key[80], key_key[80];
    SSL_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIO *b = NULL;

    snprintf(cert_key, sizeof(cert_key), "%s.cert_file", prefix);
    snprintf(key_key, sizeof(key_key), "%s.key_file", prefix);
    if (need_file(pf, cert_key, cert_file, false) < 0 ||
        need_file(pf, key_key, key_file, true) < 0 || !pf->full)
        return;
    if (!(ctx = SSL_CTX_new(TLS_method()))) {
        bad_content(pf, cert_key, cert_file, "cannot be checked");
        return;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        bad_content(pf, cert_key, cert_file, "not a PEM certificate chain");
        goto out;
    }
    if (!(b = BIO_new_file(key_file, "r")) ||
        !(pkey = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL))) {
        bad_content(pf, key_key, key_file,
                    "not a PEM private key (or one with a passphrase)");
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        fprintf(stderr, "%s: %s: %s: not the key of %s (%s)\n", pf->path,
                key_key, key_file, cert_key, cert_file);
        pf->bad++;
    }
out:
    EVP_PKEY_free(pkey);
    BIO_free(b);
    SSL_CTX_free(ctx);
}

/* A CA file: at least one certificate loads from it (when full). */
static void check_ca(struct pf *pf, const char *key, const char *file)
{
    SSL_CTX *ctx;

    if (need_file(pf, key, file, false) < 0 || !pf->full)
        return;
    ctx = SSL_CTX_new(TLS_method());
    if (!ctx || SSL_CTX_load_verify_locations(ctx, file, NULL) != 1)
        bad_content(pf, key, file, "no CA certificate loads from it");
    SSL_CTX_free(ctx);
}

/* The JWT key file loads as the daemon loads it, with the same function
 * (when full). */
/* Prints each line of text (a JWKS's keys left out, the reason it is
 * refused), after what (e.g. "warning: "). */
static void print_lines(struct pf *pf, const char *key, const char *file,
                        const char *what, const char *text)
{
    for (const char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        fprintf(stderr, "%s: %s: %s: %s%.*s\n", pf->path, key, file, what,
                (int)(nl ? (size_t)(nl - line) : strlen(line)), line);
        if (!nl)
            break;
    }
}

/* The JWT key file loads as the daemon loads it, with the same function
 * (when full); a jwks_url is fetched at start, not here, but its CA file
 * must load. */
static void check_jwt(struct pf *pf, const struct cfg_jwt *c)
{
    struct jwt_verifier *v;
    char why[4096] = "";

    if (c->jwks_url) {
        if (c->jwks_ca_file)
            check_ca(pf, "auth.jwt.jwks_ca_file", c->jwks_ca_file);
        return;
    }
    if (need_file(pf, jwt_key_key(c), jwt_key_file(c), !!c->secret_file) < 0 ||
        !pf->full)
        return;
    if (!(v = jwt_verifier_load(c, why, sizeof(why)))) {
        print_lines(pf, jwt_key_key(c), jwt_key_file(c), "", why);
        pf->bad++;
    } else if (c->jwks_file && why[0]) {
        print_lines(pf, jwt_key_key(c), jwt_key_file(c), "warning: ", why);
    }
    jwt_verifier_free(v);
}

/* The webhook's CA file loads and its secret file is there. */
static void check_http(struct pf *pf, const struct cfg_auth_http *c)
{
    if (c->ca_file)
        check_ca(pf, "auth.http.ca_file", c->ca_file);
    need_file(pf, "auth.http.secret_file", c->secret_file, true);
}

static void need_dir(struct pf *pf, const char *key, const char *dir)
{
    struct stat st;

    if (!dir)
        return;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s: %s: not a directory\n", pf->path, key, dir);
        pf->bad++;
    }
}

/* A role name that is all base32 and long is more likely a TOTP secret
 * written where the roles go ("name:hash:SECRET"): not to be printed. */
static bool looks_secret(const char *s)
{
    size_t n = strlen(s);

    return n >= 16 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "abcdefghijklmnopqrstuvwxyz234567=") == n;
}

/* The users file parses (each error printed), and its users' roles exist
 * in cfg (a warning: unknown roles are ignored at authentication). */
static void check_users(struct pf *pf, const struct config *cfg)
{
    char *err = malloc(USERS_ERR_MAX);
    const char *line, *nl;
    struct users *u;

    if (!err ||
        users_load(cfg->auth.users_file, &u, err, USERS_ERR_MAX) < 0) {
        for (line = err ? err : "out of memory"; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            fprintf(stderr, "%s: auth.users_file: %.*s\n", pf->path,
                    (int)(nl ? (size_t)(nl - line) : strlen(line)), line);
            if (!nl)
                break;
        }
        free(err);
        pf->bad++;
        return;
    }
    free(err);
    for (size_t i = 0; i < users_count(u); i++) {
        const struct user_entry *e = users_get(u, i);

        for (size_t k = 0; k < e->n_roles; k++) {
            if (config_role(cfg, e->roles[k]))
                continue;
            if (looks_secret(e->roles[k]))
                fprintf(stderr,
                        "%s: auth.users_file: %s:%u: warning: user \"%s\": "
                        "an unknown role looks like a TOTP secret (roles "
                        "field left out?)\n",
                        pf->path, cfg->auth.users_file, e->line, e->name);
            else
                fprintf(stderr,
                        "%s: auth.users_file: %s:%u: warning: user \"%s\": "
                        "role \"%s\" is not defined in roles\n",
                        pf->path, cfg->auth.users_file, e->line, e->name,
                        e->roles[k]);
        }
    }
    users_free(u);
}

int preflight_check(const struct config *cfg, const char *path, bool full)
{
    struct pf pf = {.path = path, .full = full};
    char key[64];

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];

        if (l->tls) {
            snprintf(key, sizeof(key), "listeners[%zu].tls", i);
            check_pair(&pf, key, l->tls->cert_file, l->tls->key_file);
            snprintf(key, sizeof(key), "listeners[%zu].tls.ca_file", i);
            check_ca(&pf, key, l->tls->ca_file);
        }
        snprintf(key, sizeof(key), "listeners[%zu].static_dir", i);
        need_dir(&pf, key, l->static_dir);
    }
    need_file(&pf, "broker.password_file", cfg->broker.password_file, true);
    if (cfg->broker.tls) {
        check_ca(&pf, "broker.tls.ca_file", cfg->broker.tls->ca_file);
        if (cfg->broker.tls->cert_file || cfg->broker.tls->key_file)
            check_pair(&pf, "broker.tls", cfg->broker.tls->cert_file,
                       cfg->broker.tls->key_file);
    }
    if (cfg->auth.users_file &&
        need_file(&pf, "auth.users_file", cfg->auth.users_file, true) == 0)
        check_users(&pf, cfg);
    if (cfg->auth.jwt)
        check_jwt(&pf, cfg->auth.jwt);
    if (cfg->auth.http)
        check_http(&pf, cfg->auth.http);
    return pf.bad ? -1 : 0;
}
