/* The workers' supervisor (supervisor.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "cpus.h"
#include "gateway.h"
#include "jbuf.h"
#include "log.h"
#include "notify.h"
#include "preflight.h"
#include "reuseport.h"
#include "supervisor.h"
#include "worker.h"

/* SIGTERM: the workers' shutdown has this bound (config.md: 6 s); one
 * still running then is killed. */
#define STOP_BOUND_MS 6000
/* a worker that dies is started again after RESTART_FIRST_MS, and after
 * twice the last delay (up to RESTART_MAX_MS) when it had lived less
 * than RESTART_STABLE_MS */
#define RESTART_FIRST_MS 100
#define RESTART_MAX_MS 10000
#define RESTART_STABLE_MS 10000
/* a reload's READY=1 waits this long at most for every worker's */
#define RELOAD_WAIT_MS 10000

struct wk {
    pid_t pid;                    /* 0: not running */
    uint64_t started_ms, last_ping_ms, restart_at_ms;
    uint32_t delay_ms;
    bool ready, reloading, ever_ready;
    char status[128];
};

static struct {
    struct config *cfg;           /* what the next worker starts with */
    const char *path;
    int n;
    int *fds;                     /* n_listeners * n */
    size_t n_listeners;
    struct worker_shm *shm;
    struct wk w[CONFIG_WORKERS_MAX];
    int sfd, nfd;                 /* signalfd, the workers' notify socket */
    char nname[64];               /* its abstract name, without the NUL */
    pid_t self;
    sigset_t oldmask;
    bool stopping, ready_sent, reloading, any_ready;
    uint64_t stop_deadline_ms, reload_deadline_ms, next_wd_ms;
    unsigned long long wd_usec;
    uint64_t restarts;
    char last_status[160];
} S;

int supervisor_workers(const struct config *cfg)
{
    long n = cfg->workers > 0 ? cfg->workers : cpus_usable();

    return n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (int)n;
}

static int running(void)
{
    int r = 0;

    for (int k = 0; k < S.n; k++)
        r += S.w[k].pid != 0;
    return r;
}

/* The supervisor's slot of /metrics. */
static void publish_metrics(void)
{
    struct jbuf b;

    jbuf_init(&b);
    jbuf_lit(&b, "# HELP mqgate_workers Worker processes: configured, "
                 "running.\n# TYPE mqgate_workers gauge\n"
                 "mqgate_workers{state=\"configured\"} ");
    jbuf_int(&b, S.n);
    jbuf_lit(&b, "\nmqgate_workers{state=\"running\"} ");
    jbuf_int(&b, running());
    jbuf_lit(&b, "\n# HELP mqgate_worker_restarts_total Workers started "
                 "again after they died.\n"
                 "# TYPE mqgate_worker_restarts_total counter\n"
                 "mqgate_worker_restarts_total ");
    jbuf_int(&b, (int64_t)S.restarts);
    jbuf_lit(&b, "\n# HELP mqgate_worker_up Whether each worker runs.\n"
                 "# TYPE mqgate_worker_up gauge\n");
    for (int k = 0; k < S.n; k++) {
        jbuf_lit(&b, "mqgate_worker_up{worker=\"");
        jbuf_int(&b, k + 1);
        jbuf_lit(&b, "\"} ");
        jbuf_int(&b, S.w[k].pid != 0);
        jbuf_lit(&b, "\n");
    }
    if (!b.failed)
        worker_shm_put(S.shm, S.n, b.p, b.len);
    jbuf_free(&b);
}

/* STATUS= for systemd: how many run, and whether they reach the broker
 * (each worker's own STATUS= begins with "broker up" when it does). */
static void publish_status(void)
{
    int up = 0, r = running();
    char st[160];

    for (int k = 0; k < S.n; k++)
        up += S.w[k].pid && strncmp(S.w[k].status, "broker up", 9) == 0;
    snprintf(st, sizeof(st), "%d of %d workers running, %d with the broker up",
             r, S.n, up);
    if (strcmp(st, S.last_status) != 0) {
        notify_status("%s", st);
        snprintf(S.last_status, sizeof(S.last_status), "%s", st);
    }
}

static void child(int k) __attribute__((noreturn));
static void child(int k)
{
    int mine[64];
    char v[96];
    size_t nl = S.n_listeners < 64 ? S.n_listeners : 64;

    sigprocmask(SIG_SETMASK, &S.oldmask, NULL);
    close(S.sfd);
    close(S.nfd);
    /* a worker does not outlive its supervisor */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != S.self)
        _exit(1);
    for (size_t i = 0; i < S.n_listeners; i++)
        for (int w = 0; w < S.n; w++) {
            int fd = S.fds[i * (size_t)S.n + (size_t)w];

            if (w != k)
                close(fd);
            else if (i < nl)
                mine[i] = fd;
        }
    /* its notifications come to the supervisor, which speaks for all */
    snprintf(v, sizeof(v), "@%s", S.nname);
    setenv("NOTIFY_SOCKET", v, 1);
    if (S.wd_usec) {
        snprintf(v, sizeof(v), "%llu", S.wd_usec);
        setenv("WATCHDOG_USEC", v, 1);
        snprintf(v, sizeof(v), "%ld", (long)getpid());
        setenv("WATCHDOG_PID", v, 1);
    } else {
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
    }
    worker_set(k + 1, S.n, mine, nl, S.shm);
    _exit(gateway_run(S.cfg, S.path));
}

static void spawn(int k)
{
    struct wk *w = &S.w[k];
    pid_t pid = fork();

    if (pid < 0) {
        log_error("cannot start worker %d: %s", k + 1, strerror(errno));
        w->restart_at_ms = clock_now_ms() + RESTART_MAX_MS;
        return;
    }
    if (pid == 0)
        child(k);
    w->pid = pid;
    w->started_ms = w->last_ping_ms = clock_now_ms();
    w->restart_at_ms = 0;
    w->ready = w->reloading = false;
    w->status[0] = '\0';
    log_info("worker %d started (pid %ld)", k + 1, (long)pid);
    publish_metrics();
    publish_status();
}

static void reap(void)
{
    int st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        uint64_t now = clock_now_ms();
        int k;

        for (k = 0; k < S.n && S.w[k].pid != pid; k++)
            ;
        if (k == S.n)
            continue;
        S.w[k].pid = 0;
        /* what it last published is not reported as running */
        worker_shm_put(S.shm, k, "", 0);
        if (S.stopping) {
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                log_info("worker %d stopped", k + 1);
            else
                log_warn("worker %d stopped with status %d", k + 1,
                         WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            continue;
        }
        if (WIFSIGNALED(st))
            log_error("worker %d (pid %ld) was killed by signal %d", k + 1,
                      (long)pid, WTERMSIG(st));
        else
            log_error("worker %d (pid %ld) exited with status %d", k + 1,
                      (long)pid, WEXITSTATUS(st));
        S.restarts++;
        if (now - S.w[k].started_ms < RESTART_STABLE_MS)
            S.w[k].delay_ms = S.w[k].delay_ms
                                  ? (S.w[k].delay_ms * 2 > RESTART_MAX_MS
                                         ? RESTART_MAX_MS
                                         : S.w[k].delay_ms * 2)
                                  : RESTART_FIRST_MS;
        else
            S.w[k].delay_ms = RESTART_FIRST_MS;
        S.w[k].restart_at_ms = now + S.w[k].delay_ms;
        log_info("worker %d restarts in %u ms", k + 1, S.w[k].delay_ms);
        publish_metrics();
        publish_status();
    }
}

static void stop(void)
{
    if (S.stopping)
        return;
    S.stopping = true;
    log_info("shutting down %d workers", running());
    notify_stopping();
    S.stop_deadline_ms = clock_now_ms() + STOP_BOUND_MS;
    for (int k = 0; k < S.n; k++)
        if (S.w[k].pid)
            kill(S.w[k].pid, SIGTERM);
}

static void reload_done(void)
{
    S.reloading = false;
    notify_ready(NULL);
}

static void hup(void)
{
    struct config *ncfg;
    char err[8192];

    if (S.stopping)
        return;
    log_info("SIGHUP: the workers reload %s", S.path);
    /* the workers started from now on start with the new file, if it is
     * valid (each running worker checks and loads it itself) */
    if (config_load(S.path, &ncfg, err, sizeof(err)) == 0 &&
        preflight_check(ncfg, S.path, false) == 0) {
        if (supervisor_workers(ncfg) != S.n)
            log_warn("reload: workers changed: it takes effect at the next "
                     "restart");
        config_free(S.cfg);
        S.cfg = ncfg;
    } else if (err[0]) {
        for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
            log_error("%s", line);
    }
    notify_reloading();
    S.reloading = true;
    S.reload_deadline_ms = clock_now_ms() + RELOAD_WAIT_MS;
    for (int k = 0; k < S.n; k++)
        if (S.w[k].pid) {
            S.w[k].reloading = true;
            kill(S.w[k].pid, SIGHUP);
        }
}

/* One notification of a worker's (sd_notify lines). */
static void on_notify(pid_t pid, char *msg)
{
    int k;

    for (k = 0; k < S.n && S.w[k].pid != pid; k++)
        ;
    if (k == S.n)
        return;
    for (char *save, *line = strtok_r(msg, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strcmp(line, "READY=1") == 0) {
            S.w[k].ready = S.w[k].ever_ready = true;
            S.w[k].delay_ms = 0;
            S.any_ready = true;
            S.w[k].reloading = false;
        } else if (strcmp(line, "WATCHDOG=1") == 0) {
            S.w[k].last_ping_ms = clock_now_ms();
        } else if (strncmp(line, "STATUS=", 7) == 0) {
            snprintf(S.w[k].status, sizeof(S.w[k].status), "%s", line + 7);
        }
    }
    if (!S.ready_sent) {
        int ready = 0;

        for (int j = 0; j < S.n; j++)
            ready += S.w[j].pid && S.w[j].ready;
        if (ready == S.n) {
            S.ready_sent = true;
            log_info("%d workers ready", S.n);
            notify_ready(NULL);
        }
    }
    if (S.reloading) {
        bool pending = false;

        for (int j = 0; j < S.n; j++)
            pending |= S.w[j].pid && S.w[j].reloading;
        if (!pending)
            reload_done();
    }
    publish_status();
}

static void read_notifications(void)
{
    char buf[4096], cbuf[CMSG_SPACE(sizeof(struct ucred))];

    for (;;) {
        struct iovec iov = { buf, sizeof(buf) - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = cbuf,
                             .msg_controllen = sizeof(cbuf) };
        ssize_t n = recvmsg(S.nfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        pid_t pid = 0;

        if (n < 0)
            return;
        buf[n] = '\0';
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
             c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET &&
                c->cmsg_type == SCM_CREDENTIALS) {
                struct ucred uc;

                memcpy(&uc, CMSG_DATA(c), sizeof(uc));
                pid = uc.pid;
            }
        if (pid)
            on_notify(pid, buf);
    }
}

/* The abstract socket the workers' sd_notify() writes to. */
static int open_notify(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int one = 1, fd;
    size_t nl;

    snprintf(S.nname, sizeof(S.nname), "mqgate-supervisor-%ld",
             (long)S.self);
    nl = strlen(S.nname);
    memcpy(sa.sun_path + 1, S.nname, nl);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sa,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nl)) <
            0) {
        log_error("cannot open the workers' notify socket: %s",
                  strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Timers: restarts due, the watchdog, the deadlines. Returns the ms until
 * the next one (at most 1000). */
static int timers(void)
{
    uint64_t now = clock_now_ms(), next = now + 1000;

    for (int k = 0; k < S.n; k++) {
        struct wk *w = &S.w[k];

        if (!w->pid && w->restart_at_ms && !S.stopping) {
            if (now >= w->restart_at_ms)
                spawn(k);
            else if (w->restart_at_ms < next)
                next = w->restart_at_ms;
        }
    }
    if (S.wd_usec && !S.stopping) {
        uint64_t wd_ms = S.wd_usec / 1000;

        if (now >= S.next_wd_ms) {
            /* a worker whose loop stopped turning is killed, and started
             * again by reap(); the others keep running */
            for (int k = 0; k < S.n; k++)
                if (S.w[k].pid && S.w[k].ever_ready &&
                    now - S.w[k].last_ping_ms > wd_ms) {
                    log_error("worker %d sent no watchdog ping for %llu ms: "
                              "killing it", k + 1,
                              (unsigned long long)(now - S.w[k].last_ping_ms));
                    kill(S.w[k].pid, SIGKILL);
                }
            notify_watchdog();
            S.next_wd_ms = now + wd_ms / 2;
        }
        if (S.next_wd_ms < next)
            next = S.next_wd_ms;
    }
    if (S.reloading) {
        if (now >= S.reload_deadline_ms) {
            log_warn("reload: not every worker confirmed it");
            reload_done();
        } else if (S.reload_deadline_ms < next) {
            next = S.reload_deadline_ms;
        }
    }
    if (S.stopping) {
        if (now >= S.stop_deadline_ms) {
            for (int k = 0; k < S.n; k++)
                if (S.w[k].pid) {
                    log_error("worker %d still running after %d ms: killed",
                              k + 1, STOP_BOUND_MS);
                    kill(S.w[k].pid, SIGKILL);
                }
            S.stop_deadline_ms = now + 1000;
        }
        if (S.stop_deadline_ms < next)
            next = S.stop_deadline_ms;
    }
    return next > now ? (int)(next - now) : 0;
}

/* Workers that keep failing before any became ready: the configuration
 * cannot run (an error each logged), and restarting them would hide it. */
static bool hopeless(void)
{
    if (S.any_ready)
        return false;
    for (int k = 0; k < S.n; k++)
        if (S.w[k].pid || S.w[k].delay_ms < RESTART_MAX_MS / 2)
            return false;
    return true;
}

int supervisor_run(struct config *cfg, const char *config_path, int n)
{
    sigset_t set;
    int rc = 1;

    memset(&S, 0, sizeof(S));
    S.cfg = cfg;
    S.path = config_path;
    S.n = n;
    S.self = getpid();
    S.sfd = S.nfd = -1;
    S.n_listeners = cfg->n_listeners;
    log_set_threshold(cfg->log_level);
    log_set_prefix("supervisor: ");
    if (!(S.shm = worker_shm_new(n)) ||
        !(S.fds = calloc(S.n_listeners * (size_t)n, sizeof(int)))) {
        log_error("out of memory");
        goto out;
    }
    if (reuseport_open(cfg, n, S.fds) < 0) {
        free(S.fds);
        S.fds = NULL;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++)
        log_info("listening on %s://%s:%d%s (%d workers)",
                 cfg->listeners[i].tls ? "wss" : "ws", cfg->listeners[i].bind,
                 cfg->listeners[i].port, cfg->listeners[i].path, n);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &set, &S.oldmask) < 0 ||
        (S.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
        (S.nfd = open_notify()) < 0) {
        log_error("cannot set up the supervisor: %s", strerror(errno));
        goto out;
    }
    S.wd_usec = notify_watchdog_usec();
    S.next_wd_ms = clock_now_ms();
    publish_metrics();
    for (int k = 0; k < n; k++)
        spawn(k);

    for (;;) {
        struct pollfd pf[2] = { { S.sfd, POLLIN, 0 }, { S.nfd, POLLIN, 0 } };
        int wait = timers();

        if (S.stopping && running() == 0)
            break;
        if (hopeless()) {
            log_error("no worker could start: giving up");
            goto out;
        }
        if (poll(pf, 2, wait) < 0 && errno != EINTR)
            break;
        if (pf[1].revents & POLLIN)
            read_notifications();
        if (pf[0].revents & POLLIN) {
            struct signalfd_siginfo si;

            while (read(S.sfd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGCHLD)
                    reap();
                else if (si.ssi_signo == SIGHUP)
                    hup();
                else
                    stop();
            }
        }
    }
    log_info("all workers stopped");
    rc = 0;
out:
    for (int k = 0; k < S.n; k++)
        if (S.w[k].pid) {
            kill(S.w[k].pid, SIGKILL);
            waitpid(S.w[k].pid, NULL, 0);
        }
    if (S.fds)
        for (size_t i = 0; i < S.n_listeners * (size_t)n; i++)
            close(S.fds[i]);
    free(S.fds);
    if (S.sfd >= 0)
        close(S.sfd);
    if (S.nfd >= 0)
        close(S.nfd);
    worker_shm_free(S.shm);
    config_free(S.cfg);
    return rc;
}
