/* The workers' shared listening sockets (reuseport.h). */
#include <errno.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "reuseport.h"
#include "ws.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

/* connections accepted in one wake-up, before the loop serves others */
#define ACCEPT_BATCH 64
/* accept() out of descriptors: the socket rests this long */
#define EMFILE_PAUSE_US (100 * LWS_US_PER_MS)

/* Where a listener binds: an address or host name (getaddrinfo), else an
 * interface name (its first IPv4 address, as libwebsockets does). */
static int resolve(const struct cfg_listener *lc, struct sockaddr_storage *ss,
                   socklen_t *sl)
{
    struct addrinfo hints, *res = NULL;
    struct ifaddrs *ifs = NULL;
    char port[8];
    int rc = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", lc->port);
    if (getaddrinfo(lc->bind, port, &hints, &res) == 0 && res) {
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *sl = res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
    }
    if (getifaddrs(&ifs) == 0)
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
            if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
                strcmp(i->ifa_name, lc->bind) == 0) {
                struct sockaddr_in *sin = (struct sockaddr_in *)ss;

                memcpy(sin, i->ifa_addr, sizeof(*sin));
                sin->sin_port = htons((uint16_t)lc->port);
                *sl = sizeof(*sin);
                rc = 0;
                break;
            }
    freeifaddrs(ifs);
    if (rc < 0)
        log_error("listener %s:%d: not an address, host or interface",
                  lc->bind, lc->port);
    return rc;
}

int reuseport_prog(int af, unsigned n, struct sock_filter *prog)
{
    int k = 0;

#define I(code, jt, jf, kk) \
    (prog[k++] = (struct sock_filter){ (code), (jt), (jf), (uint32_t)(kk) })
    if (af == AF_INET6) {
        /* the IP version of this connection (a dual-stack socket takes
         * IPv4 too): IPv4 → its source address; IPv6 → the four words of
         * its source address folded */
        I(BPF_LD | BPF_B | BPF_ABS, 0, 0, SKF_NET_OFF);
        I(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 4);
        I(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 6);
        I(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 12);
        I(BPF_JMP | BPF_JA, 0, 0, 10);
        I(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 8);
        I(BPF_MISC | BPF_TAX, 0, 0, 0);
        I(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 12);
        I(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
        I(BPF_MISC | BPF_TAX, 0, 0, 0);
        I(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 16);
        I(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
        I(BPF_MISC | BPF_TAX, 0, 0, 0);
        I(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 20);
        I(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
    } else {
        I(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 12);
    }
    /* mix the address (MurmurHash3's finaliser: neighbouring addresses
     * spread over the workers), then pick one of the n sockets: the
     * index of its place in the group */
    I(BPF_MISC | BPF_TAX, 0, 0, 0);
    I(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 16);
    I(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
    I(BPF_ALU | BPF_MUL | BPF_K, 0, 0, 0x85ebca6bu);
    I(BPF_MISC | BPF_TAX, 0, 0, 0);
    I(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 13);
    I(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
    I(BPF_ALU | BPF_MUL | BPF_K, 0, 0, 0xc2b2ae35u);
    I(BPF_MISC | BPF_TAX, 0, 0, 0);
    I(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 16);
    I(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
    I(BPF_ALU | BPF_MOD | BPF_K, 0, 0, n);
    I(BPF_RET | BPF_A, 0, 0, 0);
#undef I
    return k;
}

static int attach_prog(int fd, int af, unsigned n)
{
    struct sock_filter prog[REUSEPORT_PROG_MAX];
    struct sock_fprog fp;

    /* zeroed whole: the bytes between len and filter go to the kernel */
    memset(&fp, 0, sizeof(fp));
    fp.len = (unsigned short)reuseport_prog(af, n, prog);
    fp.filter = prog;
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp,
                      sizeof(fp));
}

static int open_one(const struct sockaddr_storage *ss, socklen_t sl)
{
    int one = 1, zero = 0;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0) ||
        bind(fd, (const struct sockaddr *)ss, sl) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int reuseport_open(const struct config *cfg, int n_workers, int *fds)
{
    size_t total = cfg->n_listeners * (size_t)n_workers;

    for (size_t i = 0; i < total; i++)
        fds[i] = -1;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct cfg_listener *lc = &cfg->listeners[i];
        struct sockaddr_storage ss;
        socklen_t sl;

        if (resolve(lc, &ss, &sl) < 0)
            goto fail;
        for (int w = 0; w < n_workers; w++) {
            int fd = open_one(&ss, sl);

            if (fd < 0) {
                log_error("cannot listen on %s:%d: %s", lc->bind, lc->port,
                          strerror(errno));
                goto fail;
            }
            fds[i * (size_t)n_workers + (size_t)w] = fd;
        }
        /* the program belongs to the group: attached once */
        if (attach_prog(fds[i * (size_t)n_workers], ss.ss_family,
                        (unsigned)n_workers) < 0) {
            log_error("listener %s:%d: cannot attach the steering program "
                      "(SO_ATTACH_REUSEPORT_CBPF): %s",
                      lc->bind, lc->port, strerror(errno));
            goto fail;
        }
    }
    return 0;
fail:
    for (size_t i = 0; i < total; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return -1;
}

/* ---- a worker: accepting ------------------------------------------------ */

struct acceptor {
    struct lws *wsi;
    lws_sorted_usec_list_t resume;
};

static void resume_accept(lws_sorted_usec_list_t *sul)
{
    struct acceptor *a = lws_container_of(sul, struct acceptor, resume);

    lws_rx_flow_control(a->wsi, 1);
}

/* Its state hangs off the wsi's opaque pointer, not its user space: lws
 * gives a closing connection's user space to the vhost's first protocol
 * (the WebSocket one), which would take it for a session. */
static int accept_callback(struct lws *wsi, enum lws_callback_reasons reason,
                           void *user, void *in, size_t len)
{
    struct acceptor *a = lws_get_opaque_user_data(wsi);
    int lfd = lws_get_socket_fd(wsi);

    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        for (int k = 0; a && k < ACCEPT_BATCH; k++) {
            int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE) {
                    /* lws' own listener does the same: rest, not spin */
                    log_warn("accept: %s", strerror(errno));
                    lws_rx_flow_control(wsi, 0);
                    lws_sul_schedule(lws_get_context(wsi), 0, &a->resume,
                                     resume_accept, EMFILE_PAUSE_US);
                }
                break;
            }
            /* on failure libwebsockets has closed fd */
            if (!lws_adopt_socket_vhost(lws_get_vhost(wsi), fd))
                log_warn("accept: libwebsockets refused a connection");
        }
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (a) {
            lws_sul_cancel(&a->resume);
            lws_set_opaque_user_data(wsi, NULL);
            free(a);
        }
        return 0;
    default:
        return 0;
    }
}

#define ACCEPT_PROTOCOL "mqgate-accept"

const struct lws_protocols *reuseport_protocols(void)
{
    static struct lws_protocols p[3];

    if (!p[0].name) {
        p[0] = ws_protocols[0];
        p[1] = (struct lws_protocols){ ACCEPT_PROTOCOL, accept_callback, 0,
                                       0, 0, NULL, 0 };
    }
    return p;
}

int reuseport_adopt(struct lws_vhost *vh, int fd)
{
    struct acceptor *a = calloc(1, sizeof(*a));
    lws_sock_file_fd_type d;

    d.filefd = fd;
    if (!a || !(a->wsi = lws_adopt_descriptor_vhost(
                    vh, LWS_ADOPT_RAW_FILE_DESC, d, ACCEPT_PROTOCOL, NULL))) {
        free(a);
        log_error("cannot serve the shared listening socket");
        return -1;
    }
    lws_set_opaque_user_data(a->wsi, a);
    return 0;
}
