#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preflight.h"
#include "users.h"

#define USERS_ERR_MAX (64 * 1024)

struct pf {
    const char *path;
    bool verbose;
    int bad;
};

/* A file the daemon must read; secret ones should not be world-readable. */
static void need_file(struct pf *pf, const char *key, const char *file,
                      bool secret)
{
    struct stat st;

    if (!file)
        return;
    if (stat(file, &st) < 0 || access(file, R_OK) < 0) {
        fprintf(stderr, "%s: %s: %s: %s\n", pf->path, key, file,
                strerror(errno));
        pf->bad++;
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        fprintf(stderr, "%s: %s: %s: not a regular file\n", pf->path, key,
                file);
        pf->bad++;
        return;
    }
    if (secret && pf->verbose && (st.st_mode & S_IROTH))
        fprintf(stderr,
                "%s: %s: %s: warning: readable by every user (chmod 600)\n",
                pf->path, key, file);
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

int preflight_check(const struct config *cfg, const char *path,
                    bool verbose)
{
    struct pf pf = {.path = path, .verbose = verbose};
    char key[64];

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];

        if (l->tls) {
            snprintf(key, sizeof(key), "listeners[%zu].tls.cert_file", i);
            need_file(&pf, key, l->tls->cert_file, false);
            snprintf(key, sizeof(key), "listeners[%zu].tls.key_file", i);
            need_file(&pf, key, l->tls->key_file, true);
            snprintf(key, sizeof(key), "listeners[%zu].tls.ca_file", i);
            need_file(&pf, key, l->tls->ca_file, false);
        }
        snprintf(key, sizeof(key), "listeners[%zu].static_dir", i);
        need_dir(&pf, key, l->static_dir);
    }
    need_file(&pf, "broker.password_file", cfg->broker.password_file, true);
    if (cfg->broker.tls) {
        need_file(&pf, "broker.tls.ca_file", cfg->broker.tls->ca_file, false);
        need_file(&pf, "broker.tls.cert_file", cfg->broker.tls->cert_file,
                  false);
        need_file(&pf, "broker.tls.key_file", cfg->broker.tls->key_file,
                  true);
    }
    if (cfg->auth.users_file) {
        int bad = pf.bad;

        need_file(&pf, "auth.users_file", cfg->auth.users_file, true);
        if (pf.bad == bad)
            check_users(&pf, cfg);
    }
    if (cfg->auth.jwt) {
        need_file(&pf, "auth.jwt.secret_file", cfg->auth.jwt->secret_file,
                  true);
        need_file(&pf, "auth.jwt.public_key_file",
                  cfg->auth.jwt->public_key_file, false);
    }
    return pf.bad ? -1 : 0;
}
