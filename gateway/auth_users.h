/* The password method (config.md § auth.users_file): crypt(3) hashes and
 * TOTP codes, checked on a worker thread so that a slow hash never stalls
 * the service thread.
 *
 *   service thread                       worker
 *   auth_users_submit() --job queue-->   crypt_r, TOTP
 *   auth_users_finish() <--MB_AUTHDONE-- (ev->ctx is the job)
 *
 * Every function here is for the service thread only. The workers
 * (auth.password_workers of them) never touch sessions or the users
 * table: they get copies of what they need in the job. The replay rule (an
 * accepted TOTP code is never accepted again for the same user) is applied
 * in auth_users_finish(), on the service thread, so that two jobs racing
 * with one code cannot both pass. */
#ifndef MQG_AUTH_USERS_H
#define MQG_AUTH_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct mailbox;
struct auth_job;

/* Jobs under way (queued, being checked, or answered but not yet
 * finished): at most this many per worker in all, and this many from one
 * client address, so that a flood from one address cannot make the other
 * logins wait for long, nor a flood from many queue past the auth
 * timeout. Beyond them auth_users_submit() refuses at once. */
#define AUTH_USERS_JOBS_PER_WORKER 64
#define AUTH_USERS_JOBS_PER_ADDR 8
#define AUTH_USERS_PASSWORD_MAX 511 /* libcrypt takes no longer phrase */

/* Loads cfg->auth.users_file when set and starts the workers, which post
 * their results to mb. Returns 0, or -1 with every reason logged. Without
 * a users file it starts nothing and auth_users_submit() returns NULL. */
int auth_users_init(const struct config *cfg, struct mailbox *mb);

/* Stops and joins the workers and frees the jobs still queued. A job a
 * worker took is inside its MB_AUTHDONE event: whoever drains the mailbox
 * frees it with the event, before or after this call, and may still pass
 * it to auth_users_finish() (which then fails). Waits at most timeout_ms
 * (<0: for ever) for the checks under way: returns -1 when one is still
 * running then, having freed nothing a worker may touch (the caller must
 * not destroy the mailbox either, and exits). Else 0. Call before
 * mailbox_destroy(). */
int auth_users_destroy(int timeout_ms);

/* SIGHUP, as a transaction with the other parts of a reload.
 * auth_users_reload_prepare() loads cfg->auth.users_file aside (and starts
 * the worker if it is not running yet); on any error it logs each error
 * line and returns -1, keeping nothing. Then auth_users_reload_commit()
 * swaps the table in, keeping the last accepted TOTP step of each user
 * still present (by name) — without a users file in cfg it drops the
 * table: password authentication is then off — or
 * auth_users_reload_abort() drops what was loaded (nothing when nothing
 * is prepared). Jobs in flight are checked again against the new table
 * when they finish. cfg must outlive the commit. */
int auth_users_reload_prepare(const struct config *cfg);
void auth_users_reload_commit(void);
void auth_users_reload_abort(void);

/* True when a users file is loaded (password authentication is on). */
bool auth_users_enabled(void);

/* True when the loaded users file holds user (the webhook is asked about
 * the others). */
bool auth_users_known(const char *user);

/* Queues a check of user/password/otp for owner, a client at addr; the
 * strings are copied. NULL reads as ""; a name over USERS_NAME_MAX
 * (users.h) bytes is unknown and a password over AUTH_USERS_PASSWORD_MAX
 * bytes fails, after the same work. Returns the job, which the
 * MB_AUTHDONE event will carry as its ctx, or NULL with *why set (static
 * text for the log) when no users file is loaded, a bound above is
 * reached, or memory is short. */
struct auth_job *auth_users_submit(const char *user, const char *password,
                                   const char *otp, const char *addr,
                                   void *owner, const char **why);

/* The owner is going away: its result will be dropped. A job still queued
 * is freed now (it never reaches the mailbox); for one the worker has
 * taken, auth_users_finish() gives owner NULL. Either way the caller must
 * forget job. */
void auth_job_disown(struct auth_job *job);

struct auth_result {
    void *owner;                   /* as submitted; NULL when disowned */
    char *user;                    /* malloc'd; the name as submitted (its
                                      first USERS_NAME_MAX bytes), also on
                                      failure; NULL when disowned */
    const struct cfg_role **roles; /* malloc'd, into cfg; success only */
    size_t n_roles;                /* unknown role names are left out */
    const char *reason;            /* failure: static text for the client;
                                      never says whether the user exists */
    const char *detail;            /* failure: static text for the log */
};

/* Consumes the job an MB_AUTHDONE event carries (ev->ctx): applies the
 * replay rule, resolves the user's roles with config_role(cfg, name),
 * fills res (release with auth_result_clear()) and wipes the job, which
 * lives inside ev: free ev afterwards as any event. Returns 0 when the
 * user is authenticated, else -1 (res->reason is for the client, detail
 * for the log). An event freed without this call leaves its owner holding
 * a dangling job: skip it only once every owner has disowned its job. */
int auth_users_finish(struct auth_job *job, const struct config *cfg,
                      struct auth_result *res);

void auth_result_clear(struct auth_result *res);

/* The roles the loaded users file gives user, resolved in cfg: sets
 * *roles (malloc'd, caller frees) and *n, returns 0; -1 when no users file
 * is loaded, the user is not in it, or memory is short. */
int auth_users_lookup(const char *user, const struct config *cfg,
                      const struct cfg_role ***roles, size_t *n);

#endif
