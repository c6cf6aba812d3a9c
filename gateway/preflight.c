#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preflight.h"

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
    need_file(&pf, "auth.users_file", cfg->auth.users_file, true);
    if (cfg->auth.jwt) {
        need_file(&pf, "auth.jwt.secret_file", cfg->auth.jwt->secret_file,
                  true);
        need_file(&pf, "auth.jwt.public_key_file",
                  cfg->auth.jwt->public_key_file, false);
    }
    return pf.bad ? -1 : 0;
}
