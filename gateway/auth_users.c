/* The password method's verifier (auth_users.h). Over 500 lines: the
 * users table, the jobs and the workers share one lock and the rules
 * below; the pure parts (the file, the hashes) are common/users.c.
 *
 * A job lives inside its own MB_AUTHDONE event (one allocation), holding
 * copies of everything a worker needs (name, the user's hash, the TOTP
 * key, password, code), so the workers never read the users table, which
 * reload may swap at any time, and have no failure path: every job one
 * takes reaches the mailbox. The worker wipes the secrets before posting;
 * from then on the job is owned by the event, which its consumer frees as
 * any other, so nothing here keeps a pointer to a posted job and the order
 * of auth_users_destroy() and the last mailbox drain does not matter.
 * The jobs under way, in all and per client address, are counted on the
 * service thread from auth_users_submit() to auth_users_finish() (or to
 * auth_job_disown() for a job no worker took).
 *
 * Decisions:
 *   - The client learns one thing only: "wrong user, password or code",
 *     whatever failed (unknown user, wrong password, missing, wrong or
 *     replayed code). Saying "otp required" or "code already used" would
 *     tell whoever guesses that the password is right, an oracle that
 *     turns two factors into two separate guessing games. The precise
 *     cause is in auth_result.detail, for the log.
 *   - An unknown user is checked against a stand-in: a fresh setting of
 *     the method and cost mqgate-passwd gives a new user by default
 *     (USERS_DEFAULT_PREFIX at USERS_DEFAULT_COST), whatever the file
 *     holds, so that an unknown name costs what a known user of the
 *     default costs. A setting has no hash part, so no password matches
 *     it; crypt_r() does the whole work all the same. (A file whose users
 *     all have another method or cost still answers unknown names at the
 *     default's speed: that the default is in use is no secret.)
 *   - A TOTP code is computed (HMAC-SHA-1, 30 s, 6 digits, one step either
 *     side) even when the password is wrong, so timing does not tell
 *     a right password either; the code must be exactly six digits
 *     (liboath would take strlen(otp) digits, and one digit is a 1 in 10
 *     guess).
 *   - A password longer than AUTH_USERS_PASSWORD_MAX bytes still costs a
 *     crypt_r of its first bytes, then fails.
 *   - A job that finishes after a reload changed or removed its user
 *     fails: it was checked against the old hash or key. Each user
 *     carries a credential generation, kept across a reload while its
 *     hash and key stay the same; a job remembers the one it was made
 *     with. */
#include <crypt.h>
#include <errno.h>
#include <oath.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpus.h"
#include "auth_users.h"
#include "ipcount.h"
#include "log.h"
#include "mailbox.h"
#include "users.h"

#define ERR_MAX (64 * 1024)
#define OTP_DIGITS 6
#define OTP_STEP_S 30
#define OTP_WINDOW 1

#define REASON_FAILED "wrong user, password or code"
#define REASON_OOM "the gateway is short of memory"

/* The stand-in when this libcrypt cannot make a setting of the default
 * (it always can on Debian): made with mkpasswd -m yescrypt from random
 * bytes, no password matches it that anybody knows. */
static const char dummy_yescrypt[] =
    "$y$j9T$UfWSz/h3BI.Rsew9gzdYW0$"
    "1jYZOGFbiVbMcFmxHdAWmpYHq4eWYITWqcRs4WNgG84";

struct auth_job {
    struct auth_job *next, *prev;   /* the queue {A.lock} */
    bool queued;                    /* {A.lock} */
    bool disowned;                  /* service thread */
    void *owner;                    /* service thread */
    struct mb_event *ev;            /* MB_AUTHDONE, ctx = this job, which
                                       it holds */

    /* Written by auth_users_submit() before the job is queued. */
    bool known, too_long, otp_given, otp_wellformed;
    uint64_t cred_gen;              /* of the user at submission */
    char addr[IPCOUNT_KEY_MAX];     /* the client's, for A.per_addr */
    char user[USERS_NAME_MAX + 1];
    char hash[USERS_HASH_MAX + 1];
    char password[AUTH_USERS_PASSWORD_MAX + 1];
    char otp[OTP_DIGITS + 1];
    unsigned char key[USERS_TOTP_MAX];
    size_t key_len;

    /* Written by the worker before it posts the event. */
    bool crypt_failed, pw_match, otp_match;
    uint64_t step;                  /* the TOTP step otp matched */
};

/* What the service thread remembers of a user, by user_entry.index. */
struct user_state {
    uint64_t last_step;             /* the last accepted TOTP step */
    uint64_t cred_gen;              /* changes with the hash or the key */
};

static struct {
    /* service thread */
    struct users *users;
    struct user_state *state;
    uint64_t next_gen;
    char dummy[USERS_HASH_MAX + 1]; /* the stand-in, once workers run */
    struct mailbox *mb;
    unsigned n_workers;             /* 0: not started */
    pthread_t threads[CONFIG_PASSWORD_WORKERS_MAX];
    struct crypt_data *cds[CONFIG_PASSWORD_WORKERS_MAX]; /* ~32 KiB each */
    size_t under_way, max_under_way; /* jobs from submit to finish */
    struct ipcount *per_addr;       /* ... by client address */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct auth_job *qhead, *qtail; /* {lock} */
    bool stop;                      /* {lock} */
} A = {
    .next_gen = 1,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

/* ------------------------------------------------------------------------ */
/* The worker */

static bool ct_streq(const char *a, const char *b)
{
    size_t n = strlen(b);
    unsigned char d = 0;

    /* The length of a hash is public (its method); only bytes are not. */
    if (strlen(a) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* liboath's comparison callback: 0 when test_otp (the code liboath made
 * for one step of the window) is the one the user gave. */
static int otp_cmp(void *handle, const char *test_otp)
{
    const char *given = handle;
    unsigned char d = 0;

    for (size_t i = 0; i < OTP_DIGITS; i++)
        d |= (unsigned char)(given[i] ^ test_otp[i]);
    return d != 0;
}

static void check_job(struct auth_job *job, struct crypt_data *cd)
{
    const char *out = crypt_r(job->password, job->hash, cd);

    if (!out || out[0] == '*')
        job->crypt_failed = true;
    else
        job->pw_match = ct_streq(out, job->hash);
    explicit_bzero(cd, sizeof(*cd));
    explicit_bzero(job->password, sizeof(job->password));

    if (job->key_len && job->otp_wellformed) {
        uint64_t step = 0;
        int rc = oath_totp_validate3_callback(
            (const char *)job->key, job->key_len, time(NULL), OTP_STEP_S,
            OATH_TOTP_DEFAULT_START_TIME, OTP_DIGITS, OTP_WINDOW, NULL,
            &step, otp_cmp, job->otp);

        if (rc >= 0) {
            job->otp_match = true;
            job->step = step;
        }
    }
    explicit_bzero(job->otp, sizeof(job->otp));
    explicit_bzero(job->key, sizeof(job->key));
    explicit_bzero(job->hash, sizeof(job->hash));
}

static void *worker_main(void *arg)
{
    struct crypt_data *cd = arg;

    for (;;) {
        struct auth_job *job;

        pthread_mutex_lock(&A.lock);
        while (!A.qhead && !A.stop)
            pthread_cond_wait(&A.cond, &A.lock);
        if (A.stop) {
            pthread_mutex_unlock(&A.lock);
            break;
        }
        job = A.qhead;
        A.qhead = job->next;
        if (A.qhead)
            A.qhead->prev = NULL;
        else
            A.qtail = NULL;
        job->queued = false;
        pthread_mutex_unlock(&A.lock);

        check_job(job, cd);
        /* From here on the service thread may free job. */
        mailbox_push(A.mb, job->ev);
    }
    return NULL;
}

/* auth.password_workers, or the CPUs this process may run on. */
static unsigned workers_for(const struct config *cfg)
{
    long n = cfg->auth.password_workers > 0 ? cfg->auth.password_workers
                                             : cpus_usable();

    return n > CONFIG_PASSWORD_WORKERS_MAX ? CONFIG_PASSWORD_WORKERS_MAX
                                           : (unsigned)n;
}

/* The stand-in hash for unknown users (see the top of the file). */
static void make_standin(void)
{
    if (!crypt_gensalt_rn(USERS_DEFAULT_PREFIX, USERS_DEFAULT_COST, NULL, 0,
                          A.dummy, sizeof(A.dummy)) ||
        crypt_checksalt(A.dummy) != CRYPT_SALT_OK)
        snprintf(A.dummy, sizeof(A.dummy), "%s", dummy_yescrypt);
}

/* Stops and joins the workers, waiting for the checks they run at most
 * until deadline (CLOCK_REALTIME, NULL: for ever), and frees what they had
 * but liboath (oath_done() is the caller's). When one is still hashing at
 * the deadline, the workers not joined are detached (nothing joins them
 * later: the process exits around them) and -1 returned, keeping
 * everything they may still touch. */
static int stop_workers_by(const struct timespec *deadline)
{
    pthread_mutex_lock(&A.lock);
    A.stop = true;
    pthread_cond_broadcast(&A.cond);
    pthread_mutex_unlock(&A.lock);
    for (unsigned i = 0; i < A.n_workers; i++) {
        if (!deadline) {
            pthread_join(A.threads[i], NULL);
            continue;
        }
        if (pthread_timedjoin_np(A.threads[i], NULL, deadline) != 0) {
            log_warn("a password check still runs at exit: not waiting "
                     "for it");
            for (unsigned j = i; j < A.n_workers; j++)
                pthread_detach(A.threads[j]);
            A.n_workers = 0;
            return -1;
        }
    }
    for (unsigned i = 0; i < CONFIG_PASSWORD_WORKERS_MAX && A.cds[i]; i++) {
        explicit_bzero(A.cds[i], sizeof(*A.cds[i]));
        free(A.cds[i]);
        A.cds[i] = NULL;
    }
    A.n_workers = 0;
    A.stop = false;
    ipcount_free(A.per_addr);
    A.per_addr = NULL;
    return 0;
}

static void stop_workers(void)
{
    stop_workers_by(NULL);
}

static int start_workers(const struct config *cfg)
{
    unsigned n = workers_for(cfg);
    sigset_t all, old;
    int rc = 0;

    if (A.n_workers) {
        if (cfg->auth.password_workers && n != A.n_workers)
            log_warn("auth.password_workers: %u workers run until the "
                     "next restart", A.n_workers);
        return 0;
    }
    if (oath_init() != OATH_OK) {
        log_error("auth.users_file: liboath cannot start");
        return -1;
    }
    make_standin();
    if (!(A.per_addr = ipcount_new())) {
        log_error("auth.users_file: out of memory");
        oath_done();
        return -1;
    }
    /* The workers inherit a full mask: SIGHUP and SIGTERM must reach the
     * service thread, whose poll they interrupt. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned i = 0; i < n && rc == 0; i++) {
        if (!(A.cds[i] = calloc(1, sizeof(*A.cds[i]))))
            rc = ENOMEM;
        else if ((rc = pthread_create(&A.threads[i], NULL, worker_main,
                                      A.cds[i])) == 0)
            A.n_workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        log_error("auth.users_file: cannot start the password workers: %s",
                  strerror(rc));
        stop_workers();
        oath_done();
        return -1;
    }
    A.max_under_way = (size_t)n * AUTH_USERS_JOBS_PER_WORKER;
    log_info("password checks: %u worker%s, at most %zu under way (%d per "
             "client address); unknown users cost a %.*s hash",
             n, n == 1 ? "" : "s", A.max_under_way, AUTH_USERS_JOBS_PER_ADDR,
             (int)(strrchr(A.dummy, '$') + 1 - A.dummy), A.dummy);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Jobs (service thread) */

/* The job inside ev's data, aligned for it. */
static struct auth_job *job_in(struct mb_event *ev)
{
    uintptr_t p = (uintptr_t)ev->data, a = alignof(struct auth_job);

    return (struct auth_job *)((p + a - 1) & ~(a - 1));
}

/* Frees a job that never reached the mailbox, with its event. */
static void job_free(struct auth_job *job)
{
    struct mb_event *ev = job->ev;

    explicit_bzero(job, sizeof(*job));
    free(ev);
}

/* The job is no longer under way. Once per job counted by submit. */
static void job_release(const struct auth_job *job)
{
    if (!A.per_addr)
        return; /* auth_users_destroy() dropped every count */
    ipcount_dec(A.per_addr, job->addr);
    A.under_way--;
}

static void copy_capped(char *dst, size_t cap, const char *src, bool *cut)
{
    size_t n = src ? strnlen(src, cap) : 0;

    *cut = n == cap;
    if (*cut)
        n = cap - 1;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

struct auth_job *auth_users_submit(const char *user, const char *password,
                                   const char *otp, const char *addr,
                                   void *owner, const char **why)
{
    const struct user_entry *e = NULL;
    char key[IPCOUNT_KEY_MAX];
    struct auth_job *job;
    struct mb_event *ev;
    bool cut;

    if (!A.users || !A.n_workers) {
        *why = "password authentication is off";
        return NULL;
    }
    snprintf(key, sizeof(key), "%s", addr ? addr : "");
    if (A.under_way >= A.max_under_way) {
        *why = "too many password checks under way";
        return NULL;
    }
    if (ipcount_get(A.per_addr, key) >= AUTH_USERS_JOBS_PER_ADDR) {
        *why = "too many password checks under way from this address";
        return NULL;
    }
    ev = mb_event_new(MB_AUTHDONE,
                      sizeof(*job) + alignof(struct auth_job) - 1);
    if (!ev || !ipcount_inc(A.per_addr, key)) {
        free(ev);
        *why = "out of memory";
        return NULL;
    }
    A.under_way++;
    job = job_in(ev);
    job->ev = ev;
    ev->ctx = job;
    job->owner = owner;
    memcpy(job->addr, key, sizeof(key));

    copy_capped(job->user, sizeof(job->user), user, &cut);
    if (!cut)
        e = users_find(A.users, job->user);
    job->known = e != NULL;
    job->cred_gen = e ? A.state[e->index].cred_gen : 0;
    snprintf(job->hash, sizeof(job->hash), "%s", e ? e->hash : A.dummy);
    if (e && e->totp_key) {
        memcpy(job->key, e->totp_key, e->totp_key_len);
        job->key_len = e->totp_key_len;
    }
    copy_capped(job->password, sizeof(job->password), password,
                &job->too_long);
    job->otp_given = otp && otp[0];
    if (job->otp_given && strnlen(otp, OTP_DIGITS + 1) == OTP_DIGITS &&
        strspn(otp, "0123456789") == OTP_DIGITS) {
        memcpy(job->otp, otp, OTP_DIGITS);
        job->otp_wellformed = true;
    }

    pthread_mutex_lock(&A.lock);
    job->prev = A.qtail;
    if (A.qtail)
        A.qtail->next = job;
    else
        A.qhead = job;
    A.qtail = job;
    job->queued = true;
    pthread_cond_signal(&A.cond);
    pthread_mutex_unlock(&A.lock);
    return job;
}

void auth_job_disown(struct auth_job *job)
{
    bool was_queued;

    if (!job)
        return;
    pthread_mutex_lock(&A.lock);
    was_queued = job->queued;
    if (was_queued) {
        if (job->prev)
            job->prev->next = job->next;
        else
            A.qhead = job->next;
        if (job->next)
            job->next->prev = job->prev;
        else
            A.qtail = job->prev;
    }
    pthread_mutex_unlock(&A.lock);
    if (was_queued) {
        job_release(job);
        job_free(job);
        return;
    }
    job->disowned = true;
    job->owner = NULL;
}

/* Why job fails, for the log; NULL when it passes. Sets *ep to the user's
 * current entry. */
static const char *judge(const struct auth_job *job,
                         const struct user_entry **ep)
{
    const struct user_entry *e;

    if (!job->known)
        return "unknown user";
    if (job->too_long)
        return "password too long";
    if (job->crypt_failed)
        return "libcrypt cannot compute the user's hash";
    if (!job->pw_match)
        return "wrong password";
    if (job->key_len && !job->otp_given)
        return "otp missing";
    if (job->key_len && !job->otp_match)
        return "wrong otp";
    if (!A.users)
        return "password authentication is off";
    e = users_find(A.users, job->user);
    if (!e || A.state[e->index].cred_gen != job->cred_gen)
        return "user removed or changed by a reload";
    if (job->key_len && job->step <= A.state[e->index].last_step)
        return "otp already used";
    *ep = e;
    return NULL;
}

/* The roles of e as cfg defines them, without duplicates, into out (room
 * for e->n_roles); unknown names are left out. Returns how many. */
static size_t entry_roles(const struct user_entry *e,
                          const struct config *cfg,
                          const struct cfg_role **out)
{
    size_t n = 0;

    for (size_t i = 0; i < e->n_roles; i++) {
        const struct cfg_role *r = config_role(cfg, e->roles[i]);
        size_t k;

        for (k = 0; r && k < n && out[k] != r; k++)
            ;
        if (r && k == n)
            out[n++] = r;
    }
    return n;
}

int auth_users_finish(struct auth_job *job, const struct config *cfg,
                      struct auth_result *res)
{
    const struct user_entry *e = NULL;
    const char *why;

    memset(res, 0, sizeof(*res));
    job_release(job);
    if (job->disowned) {
        why = "the session went away";
    } else {
        res->owner = job->owner;
        res->user = strdup(job->user);
        why = judge(job, &e);
        if (!why && !res->user)
            why = "out of memory";
        if (!why &&
            !(res->roles = calloc(e->n_roles + 1, sizeof(*res->roles))))
            why = "out of memory";
    }
    if (why) {
        res->reason = strcmp(why, "out of memory") ? REASON_FAILED
                                                   : REASON_OOM;
        res->detail = why;
        explicit_bzero(job, sizeof(*job));
        return -1;
    }
    if (job->key_len)
        A.state[e->index].last_step = job->step;
    res->n_roles = entry_roles(e, cfg, res->roles);
    explicit_bzero(job, sizeof(*job));
    return 0;
}

int auth_users_lookup(const char *user, const struct config *cfg,
                      const struct cfg_role ***roles, size_t *n)
{
    const struct user_entry *e = A.users ? users_find(A.users, user) : NULL;

    *roles = NULL;
    *n = 0;
    if (!e || !(*roles = calloc(e->n_roles + 1, sizeof(**roles))))
        return -1;
    *n = entry_roles(e, cfg, *roles);
    return 0;
}

void auth_result_clear(struct auth_result *res)
{
    free(res->user);
    free(res->roles);
    memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------------------ */
/* The table */

/* Logs each line of err, which users_load() filled (size bytes). */
static void log_lines(const char *err, size_t size)
{
    const char *line = err, *nl;

    while (*line) {
        nl = strchr(line, '\n');
        log_error("%.*s", (int)(nl ? (size_t)(nl - line) : strlen(line)),
                  line);
        if (!nl)
            break;
        line = nl + 1;
    }
    if (strlen(err) + 1 >= size)
        log_error("(more errors not shown)");
}

static bool same_credentials(const struct user_entry *a,
                             const struct user_entry *b)
{
    return strcmp(a->hash, b->hash) == 0 &&
           a->totp_key_len == b->totp_key_len &&
           (!a->totp_key_len ||
            memcmp(a->totp_key, b->totp_key, a->totp_key_len) == 0);
}

/* Loads path into *out with the state of each user: the last step and
 * the credential generation of the current table's user of that name, if
 * any (a new generation when the hash or key changed). Returns 0 or -1
 * (logged). */
static int load_table(const char *path, struct users **out,
                      struct user_state **steps)
{
    char *err = malloc(ERR_MAX);
    struct users *u = NULL;
    size_t n;

    *out = NULL;
    *steps = NULL;
    if (!err) {
        log_error("%s: out of memory", path);
        return -1;
    }
    if (users_load(path, &u, err, ERR_MAX) < 0) {
        log_lines(err, ERR_MAX);
        free(err);
        return -1;
    }
    free(err);
    n = users_count(u);
    if (!(*steps = calloc(n ? n : 1, sizeof(**steps)))) {
        log_error("%s: out of memory", path);
        users_free(u);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct user_entry *e = users_get(u, i);
        const struct user_entry *old = users_find(A.users, e->name);

        if (old)
            (*steps)[i].last_step = A.state[old->index].last_step;
        if (old && same_credentials(old, e))
            (*steps)[i].cred_gen = A.state[old->index].cred_gen;
        else
            (*steps)[i].cred_gen = A.next_gen++;
        if (crypt_checksalt(e->hash) != CRYPT_SALT_OK)
            log_warn("%s:%u: user \"%s\": this libcrypt cannot compute "
                     "the hash: the user cannot log in",
                     path, e->line, e->name);
    }
    *out = u;
    return 0;
}

static void swap_table(struct users *u, struct user_state *state)
{
    users_free(A.users);
    free(A.state);
    A.users = u;
    A.state = state;
}

bool auth_users_enabled(void)
{
    return A.users != NULL;
}

bool auth_users_known(const char *user)
{
    return A.users && user && strlen(user) <= USERS_NAME_MAX &&
           users_find(A.users, user) != NULL;
}

/* What auth_users_reload_prepare() loaded, until the commit or the
 * abort. Service thread. */
static struct {
    bool ready;
    const char *path;               /* in the prepared cfg; NULL: off */
    struct users *users;
    struct user_state *state;
} pending;

void auth_users_reload_abort(void)
{
    users_free(pending.users);
    free(pending.state);
    memset(&pending, 0, sizeof(pending));
}

int auth_users_reload_prepare(const struct config *cfg)
{
    auth_users_reload_abort();
    pending.path = cfg->auth.users_file;
    if (pending.path) {
        if (load_table(pending.path, &pending.users, &pending.state) < 0)
            return -1;
        /* idle workers, should the reload be refused after all */
        if (start_workers(cfg) < 0) {
            auth_users_reload_abort();
            return -1;
        }
    }
    pending.ready = true;
    return 0;
}

void auth_users_reload_commit(void)
{
    if (!pending.ready)
        return;
    if (!pending.path && A.users)
        log_info("password authentication turned off");
    swap_table(pending.users, pending.state);
    if (pending.path)
        log_info("%s: %zu users", pending.path, users_count(A.users));
    memset(&pending, 0, sizeof(pending));
}

int auth_users_init(const struct config *cfg, struct mailbox *mb)
{
    A.mb = mb;
    if (auth_users_reload_prepare(cfg) < 0)
        return -1;
    auth_users_reload_commit();
    return 0;
}

int auth_users_destroy(int timeout_ms)
{
    struct auth_job *job, *next;
    struct timespec dl;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    if (A.n_workers) {
        /* a worker still hashing keeps its job, the queue and the
         * mailbox: the process exits around it */
        if (stop_workers_by(timeout_ms >= 0 ? &dl : NULL) < 0)
            return -1;
        oath_done();
    }
    /* The workers are gone: every job they took is in the mailbox (the
     * events' consumer frees them); the ones still queued are ours. */
    for (job = A.qhead; job; job = next) {
        next = job->next;
        job_free(job);
    }
    A.qhead = A.qtail = NULL;
    A.under_way = 0;
    swap_table(NULL, NULL);
    A.mb = NULL;
    return 0;
}
