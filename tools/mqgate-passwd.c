/* mqgate-passwd: add, change or delete a user of mqgated's users file
 * (config.md § auth.users_file) without ever writing a plaintext password.
 *
 * The file is read whole and checked with the daemon's own parser
 * (common/users.c), which also says on which line the user stands. Only
 * that line changes (or goes, or a new one is appended); every other byte
 * stays as it was. The result is parsed again as a whole and replaces the
 * file atomically: a new file in the same directory, fsync, rename. A lock
 * on the directory serialises concurrent runs, so that none loses another's
 * change.
 *
 * Decisions the issue leaves open:
 *   - usage errors exit 1, as every other error does;
 *   - the existing file's owner and group are kept whoever runs the tool,
 *     and a run that cannot keep them (fchown refused) changes nothing:
 *     a users file that silently changes group is one the service can no
 *     longer read;
 *   - a symbolic link is followed: its target is replaced, the link stays;
 *   - one '\r' at the end of a password line is dropped (CRLF input);
 *   - a signal during the terminal prompt restores the terminal, then
 *     kills the tool as it would have without the prompt. */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <liboath/oath.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "autoconfig.h"
#include "users.h"
#include "utf8.h"

#define PROG "mqgate-passwd"
#define DEFAULT_USERS_FILE SYSCONFDIR "/mqgate/users"
#define PASSWORD_MAX 511          /* bytes, without the line end */
#define TOTP_KEY_BYTES 20         /* RFC 4226's recommended 160 bits */
#define TOTP_B32_MAX 64
#define NEW_FILE_MODE 0640

enum totp_action { TOTP_KEEP, TOTP_NEW, TOTP_REMOVE };

struct method {
    const char *name;
    const char *prefix;
};

static const struct method methods[] = {
    {"yescrypt", "$y$"},
    {"sha-512", "$6$"},
    {"sha512", "$6$"},
    {"bcrypt", "$2b$"},
};

struct opts {
    const char *path;             /* as given, for messages */
    const struct method *method;
    const char *roles;            /* NULL: keep (or none for a new user) */
    enum totp_action totp;
    bool from_stdin, delete;
    const char *user;
};

/* A growing byte buffer that wipes what it drops: it holds hashes and
 * TOTP secrets. */
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_free(struct buf *b)
{
    if (b->p) {
        explicit_bzero(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof(*b));
}

static int buf_add(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 4096, len = b->len;
        char *np;

        while (cap - b->len < n) {
            if (cap > (size_t)USERS_MAX_BYTES * 4)
                return -1;
            cap *= 2;
        }
        if (!(np = malloc(cap)))
            return -1;
        if (len)
            memcpy(np, b->p, len);
        buf_free(b);
        b->p = np;
        b->len = len;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int buf_adds(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

__attribute__((format(printf, 1, 2)))
static void complain(const char *fmt, ...)
{
    va_list ap;

    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ------------------------------------------------------------------------ */
/* Command line */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " [-f FILE] [-m METHOD] [-r ROLES]"
            " [--totp|--no-totp] [--stdin] USER\n"
            "       " PROG " [-f FILE] -d USER\n"
            "Sets USER's password (asked twice on the terminal) in the users"
            " file.\n"
            "  -f, --file FILE     users file (default %s)\n"
            "  -m, --method M      yescrypt (default), sha-512 or bcrypt\n"
            "  -r, --roles R1,R2   set the roles (\"\" for none); default:"
            " keep them\n"
            "      --totp          make a new TOTP secret, print its"
            " otpauth:// URI\n"
            "      --no-totp       remove the TOTP secret\n"
            "      --stdin         read the password from one line of"
            " standard input\n"
            "  -d, --delete        delete USER\n"
            "      --version       print the version\n"
            "  -h, --help          print this help\n",
            DEFAULT_USERS_FILE);
}

/* The parser's rules for a name (users.c check_name), and what would break
 * the line: ':' ends the field, a leading '#' makes a comment. NULL: fine. */
static const char *name_problem(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0)
        return "empty user name";
    if (n > USERS_NAME_MAX)
        return "user name longer than 256 bytes";
    if (strchr(s, ':'))
        return "user name contains ':'";
    if (!utf8_valid(s, n))
        return "user name is not valid UTF-8";
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch < 0x20 || ch == 0x7f ||
            (ch == 0xc2 && (unsigned char)s[i + 1] >= 0x80 &&
             (unsigned char)s[i + 1] <= 0x9f))
            return "user name contains a control character";
    }
    for (i = 0; s[i] == ' '; i++)
        ;
    if (s[i] == '#')
        return "user name starts with '#' (the file would read a comment)";
    return NULL;
}

/* A comma-separated list of role names, or "" for none. NULL: fine. */
static const char *roles_problem(const char *s)
{
    size_t n = strlen(s), start = 0;
    const char *why;

    if (n == 0)
        return NULL;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',')
            continue;
        if (i == start)
            return "empty role name (two commas, or one at an end)";
        /* the daemon's own rule, so that it never refuses what this
         * writes */
        if ((why = users_role_name_check(s + start, i - start)))
            return why;
        start = i + 1;
    }
    return NULL;
}

/* Fills o from argv. Returns 0, 1 when done (--help, --version), or -1
 * after a message. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    enum { OPT_TOTP = 256, OPT_NO_TOTP, OPT_STDIN, OPT_VERSION };
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},
        {"method", required_argument, NULL, 'm'},
        {"roles", required_argument, NULL, 'r'},
        {"delete", no_argument, NULL, 'd'},
        {"totp", no_argument, NULL, OPT_TOTP},
        {"no-totp", no_argument, NULL, OPT_NO_TOTP},
        {"stdin", no_argument, NULL, OPT_STDIN},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool totp = false, no_totp = false, method = false;
    const char *why;
    int c;

    memset(o, 0, sizeof(*o));
    o->path = DEFAULT_USERS_FILE;
    o->method = &methods[0];
    while ((c = getopt_long(argc, argv, "f:m:r:dh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            o->path = optarg;
            break;
        case 'm':
            o->method = NULL;
            for (size_t i = 0; i < sizeof(methods) / sizeof(*methods); i++)
                if (strcmp(optarg, methods[i].name) == 0)
                    o->method = &methods[i];
            if (!o->method) {
                complain("unknown method \"%s\" (yescrypt, sha-512 or "
                         "bcrypt)", optarg);
                return -1;
            }
            method = true;
            break;
        case 'r':
            o->roles = optarg;
            break;
        case 'd':
            o->delete = true;
            break;
        case OPT_TOTP:
            totp = true;
            break;
        case OPT_NO_TOTP:
            no_totp = true;
            break;
        case OPT_STDIN:
            o->from_stdin = true;
            break;
        case OPT_VERSION:
            printf(PROG " %s\n", PACKAGE_VERSION);
            return 1;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc - 1) {
        complain(optind < argc ? "one user at a time" : "no user named");
        usage(stderr);
        return -1;
    }
    o->user = argv[optind];
    if (totp && no_totp) {
        complain("--totp and --no-totp exclude each other");
        return -1;
    }
    o->totp = totp ? TOTP_NEW : no_totp ? TOTP_REMOVE : TOTP_KEEP;
    if (o->delete && (totp || no_totp || method || o->roles ||
                      o->from_stdin)) {
        complain("-d takes no other option than -f");
        return -1;
    }
    if (!*o->path) {
        complain("empty file name");
        return -1;
    }
    if ((why = name_problem(o->user))) {
        complain("%s", why);
        return -1;
    }
    if (o->roles && (why = roles_problem(o->roles))) {
        complain("-r: %s", why);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The password */

static volatile sig_atomic_t caught;

static void on_signal(int sig)
{
    caught = sig;
}

/* Reads one line from fd into buf (PASSWORD_MAX + 1 bytes), NUL-terminated
 * and without its "\n" or "\r\n". With wait_mask, the signals of the
 * prompt are blocked and each wait for input unblocks them (ppoll), so
 * that one caught before the read cannot be missed. Returns 0; -1 on a
 * read error (errno), or with errno EINTR once a signal was caught; 1 when
 * the line is too long, 2 when it holds a NUL byte (the rest of the line
 * is consumed). */
static int read_line(int fd, char *buf, const sigset_t *wait_mask)
{
    size_t n = 0;
    bool too_long = false, nul = false;

    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;
        char ch;

        if (wait_mask && ppoll(&p, 1, NULL, wait_mask) < 0) {
            if (errno == EINTR && !caught)
                continue;
            return -1;
        }
        r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR && !caught)
            continue;
        if (r < 0)
            return -1;
        if (r == 0 || ch == '\n')
            break;
        if (ch == '\0')
            nul = true;
        if (n < PASSWORD_MAX + 1)
            buf[n++] = ch;
        else
            too_long = true;
        ch = 0;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > PASSWORD_MAX)
        too_long = true;
    buf[n < PASSWORD_MAX + 1 ? n : PASSWORD_MAX] = '\0';
    return too_long ? 1 : nul ? 2 : 0;
}

/* Asks twice on the terminal, without echo. Returns 0, or -1 after a
 * message; caught is set when a signal cut the prompt short. */
static int read_tty_passwords(const char *user, char *pw, char *again)
{
    static const int sigs[] = {SIGINT, SIGHUP, SIGQUIT, SIGTERM, SIGTSTP};
    struct sigaction sa, old_sa[sizeof(sigs) / sizeof(*sigs)];
    sigset_t block, old_mask;
    struct termios old, quiet;
    int fd, r1 = -1, r2 = -1, saved = 0, rc = -1;

    fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        complain("no terminal to ask for the password on (%s); use --stdin",
                 strerror(errno));
        return -1;
    }
    if (tcgetattr(fd, &old) < 0) {
        complain("/dev/tty: %s; use --stdin", strerror(errno));
        close(fd);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++) {
        sigaction(sigs[i], NULL, &old_sa[i]);
        if (old_sa[i].sa_handler == SIG_IGN)
            continue;          /* ignored by whoever started us: stays so */
        sigaddset(&block, sigs[i]);
        sigaction(sigs[i], &sa, NULL);
    }
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    quiet.c_lflag |= ECHONL;
    if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0) {
        complain("/dev/tty: %s", strerror(errno));
        goto out;
    }
    dprintf(fd, "New password for %s: ", user);
    r1 = read_line(fd, pw, &old_mask);
    if (r1 == 0) {
        dprintf(fd, "Retype the new password: ");
        r2 = read_line(fd, again, &old_mask);
    }
    saved = errno;
    tcsetattr(fd, TCSAFLUSH, &old);
    if (caught)
        dprintf(fd, "\n");
    else if (r1 < 0 || r2 < 0)
        complain("/dev/tty: %s", strerror(saved));
    else if (r1 == 1 || r2 == 1)
        complain("password longer than %d bytes refused", PASSWORD_MAX);
    else if (r1 == 2 || r2 == 2)
        complain("password with a NUL byte refused");
    else if (strcmp(pw, again) != 0)
        complain("the passwords do not match");
    else
        rc = 0;
out:
    /* Our handler still in place: a signal pending now only sets caught. */
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
        sigaction(sigs[i], &old_sa[i], NULL);
    close(fd);
    return caught ? -1 : rc;
}

/* pw and again hold PASSWORD_MAX + 1 bytes. Returns 0, or -1 after a
 * message (caught set when a signal stopped the prompt). */
static int read_password(const struct opts *o, char *pw, char *again)
{
    int r;

    if (!o->from_stdin) {
        if (read_tty_passwords(o->user, pw, again) < 0)
            return -1;
    } else if ((r = read_line(STDIN_FILENO, pw, NULL)) != 0) {
        if (r < 0)
            complain("standard input: %s", strerror(errno));
        else if (r == 1)
            complain("password longer than %d bytes refused", PASSWORD_MAX);
        else
            complain("password with a NUL byte refused");
        return -1;
    }
    if (!pw[0]) {
        complain("empty password refused");
        return -1;
    }
    if (strcmp(o->method->prefix, "$2b$") == 0 && strlen(pw) > 72)
        complain("warning: bcrypt uses only the first 72 bytes of the "
                 "password");
    return 0;
}

/* Hashes pw with a fresh salt from libcrypt into out (outlen bytes), at
 * libcrypt's default cost but for bcrypt, whose default (5: 32 rounds,
 * a few milliseconds) is far below the usual 10, which costs about what
 * yescrypt's default does. Returns 0, or -1 after a message. */
static int hash_password(const char *pw, const char *prefix, char *out,
                         size_t outlen)
{
    unsigned long cost = strcmp(prefix, "$2b$") == 0 ? 10 : 0;
    char *setting = crypt_gensalt_ra(prefix, cost, NULL, 0);
    void *data = NULL;
    int size = 0, rc = -1;
    const char *h;

    if (!setting) {
        complain("libcrypt cannot make a %s salt: %s", prefix,
                 strerror(errno));
        return -1;
    }
    h = crypt_ra(pw, setting, &data, &size);
    if (!h || strncmp(h, prefix, strlen(prefix)) != 0 ||
        strlen(h) >= outlen || strlen(h) > USERS_HASH_MAX) {
        complain("libcrypt failed to hash the password with %s", prefix);
        goto out;
    }
    memcpy(out, h, strlen(h) + 1);
    rc = 0;
out:
    if (data) {
        explicit_bzero(data, (size_t)size);
        free(data);
    }
    free(setting);
    return rc;
}

/* A new random TOTP secret in unpadded RFC 4648 base32, into out
 * (TOTP_B32_MAX + 1 bytes). Returns 0, or -1 after a message. */
static int totp_secret_new(char *out)
{
    unsigned char key[TOTP_KEY_BYTES];
    char *enc = NULL;
    size_t got = 0, enclen = 0, encsize = 0;
    int rc = -1;

    while (got < sizeof(key)) {
        ssize_t r = getrandom(key + got, sizeof(key) - got, 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            complain("getrandom: %s", strerror(errno));
            goto out;
        }
        got += (size_t)r;
    }
    if (oath_base32_encode((const char *)key, sizeof(key), &enc, &enclen) !=
            OATH_OK ||
        !enc) {
        complain("cannot encode the TOTP secret: out of memory");
        goto out;
    }
    encsize = enclen;
    while (enclen > 0 && enc[enclen - 1] == '=')
        enclen--;
    if (enclen == 0 || enclen > TOTP_B32_MAX) {
        complain("cannot encode the TOTP secret");
        goto out;
    }
    memcpy(out, enc, enclen);
    out[enclen] = '\0';
    rc = 0;
out:
    if (enc) {
        explicit_bzero(enc, encsize);
        free(enc);
    }
    explicit_bzero(key, sizeof(key));
    return rc;
}

/* RFC 3986: every byte but the unreserved ones as %XX. */
static void put_percent_encoded(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
            (ch >= '0' && ch <= '9') || strchr("-._~", ch))
            fputc(ch, f);
        else
            fprintf(f, "%%%02X", ch);
    }
}

/* ------------------------------------------------------------------------ */
/* The file */

/* Reads the file at path into b. Returns 0; 1 when there is no such file;
 * -1 after a message. st receives its status. */
static int file_read(const char *path, const char *shown, struct buf *b,
                     struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
    char chunk[16384];

    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0) {
        complain("%s: cannot read: %s", shown, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) < 0) {
        complain("%s: %s", shown, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st->st_mode)) {
        complain("%s: not a regular file", shown);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            complain("%s: cannot read: %s", shown, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        if (b->len + (size_t)r > USERS_MAX_BYTES) {
            complain("%s: larger than %d bytes", shown, USERS_MAX_BYTES);
            goto out;
        }
        if (buf_add(b, chunk, (size_t)r) < 0) {
            complain("out of memory");
            goto out;
        }
    }
    rc = 0;
out:
    explicit_bzero(chunk, sizeof(chunk));
    close(fd);
    return rc;
}

/* Parses text as the daemon would; on failure prints the parser's
 * messages (FILE:LINE: ...; never a hash or secret) and returns -1. */
static int parse_or_complain(const char *shown, const struct buf *text,
                             struct users **out)
{
    static char err[16384];

    if (users_parse(shown, text->p, text->len, out, err, sizeof(err)) == 0)
        return 0;
    fputs(err, stderr);
    if (err[0] && err[strlen(err) - 1] != '\n')
        fputc('\n', stderr);
    return -1;
}

struct change {
    const struct opts *o;
    unsigned line;                /* the user's line, 0: new user */
    const char *hash;             /* NULL: delete */
    const char *totp_new;         /* for TOTP_NEW */
};

/* Appends the user's line (without its end) to out; old[0..n) is the line
 * it replaces, or NULL. The parser accepted old: 3 or 4 fields. */
static int put_user_line(struct buf *out, const struct change *c,
                         const char *old, size_t n)
{
    const char *f[4] = {NULL, NULL, NULL, NULL};
    size_t fn[4] = {0, 0, 0, 0}, k = 0, start = 0;
    int rc = 0;

    for (size_t i = 0; old && i <= n && k < 4; i++) {
        if (i < n && old[i] != ':')
            continue;
        f[k] = old + start;
        fn[k++] = i - start;
        start = i + 1;
    }
    if (old)
        rc |= buf_add(out, f[0], fn[0]);
    else
        rc |= buf_adds(out, c->o->user);
    rc |= buf_adds(out, ":");
    rc |= buf_adds(out, c->hash);
    rc |= buf_adds(out, ":");
    if (c->o->roles)
        rc |= buf_adds(out, c->o->roles);
    else if (old)
        rc |= buf_add(out, f[2], fn[2]);
    if (c->o->totp == TOTP_NEW) {
        rc |= buf_adds(out, ":");
        rc |= buf_adds(out, c->totp_new);
    } else if (c->o->totp == TOTP_KEEP && k == 4) {
        rc |= buf_adds(out, ":");
        rc |= buf_add(out, f[3], fn[3]);
    }
    return rc;
}

/* Builds into out the file text with the change applied to in: lines are
 * cut as users_parse() cuts them (after a leading BOM, at each '\n'), and
 * all but the user's are copied byte for byte. */
static int apply_change(const struct buf *in, const struct change *c,
                        struct buf *out)
{
    size_t pos = 0, start, len = in->len;
    const char *t = in->p;
    unsigned line = 0;
    int rc = 0;

    if (len >= 3 && memcmp(t, "\xef\xbb\xbf", 3) == 0)
        pos = 3;
    rc |= buf_add(out, t, pos);
    start = pos;
    while (pos < len) {
        const char *s = t + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos, body = n;

        pos += n + (nl ? 1 : 0);
        if (++line != c->line || !c->line) {
            rc |= buf_add(out, s, n + (nl ? 1 : 0));
            continue;
        }
        if (!c->hash)
            continue;
        if (body > 0 && s[body - 1] == '\r')
            body--;
        rc |= put_user_line(out, c, s, body);
        rc |= buf_add(out, s + body, n - body + (nl ? 1 : 0));
    }
    if (!c->line && c->hash) {
        bool crlf = false;

        if (out->len > start && out->p[out->len - 1] != '\n')
            rc |= buf_adds(out, "\n");
        if (out->len >= 2 && out->p[out->len - 2] == '\r')
            crlf = true;
        rc |= put_user_line(out, c, NULL, 0);
        rc |= buf_adds(out, crlf ? "\r\n" : "\n");
    }
    return rc;
}

/* The directory part of path, into dir (PATH_MAX bytes), and its last
 * component. */
static const char *split_path(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        strcpy(dir, ".");
        return path;
    }
    if (slash == path) {
        strcpy(dir, "/");
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    return slash + 1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write(fd, p, n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Replaces base in directory dfd with text, atomically: a new file beside
 * it with mode and, when old is given, old's owner and group; fsync;
 * rename; fsync of the directory. Returns 0, or -1 after a message (the
 * file is then as it was). */
static int file_replace(int dfd, const char *base, const char *shown,
                        const struct buf *text, mode_t mode,
                        const struct stat *old)
{
    const char *step = "create a temporary file beside it";
    char tmp[NAME_MAX + 1];
    unsigned char rnd[6];
    struct stat st;
    bool made = false;
    int fd = -1;

    for (int attempt = 0; fd < 0 && attempt < 20; attempt++) {
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            goto fail;
        snprintf(tmp, sizeof(tmp), ".%.200s.%02x%02x%02x%02x%02x%02x", base,
                 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
        fd = openat(dfd, tmp,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
        if (fd < 0 && errno != EEXIST)
            goto fail;
    }
    if (fd < 0)
        goto fail;
    made = true;
    step = "write the new file";
    if (fstat(fd, &st) < 0)
        goto fail;
    if (old && (st.st_uid != old->st_uid || st.st_gid != old->st_gid) &&
        fchown(fd, old->st_uid, old->st_gid) < 0) {
        complain("%s: cannot give the new file its owner and group "
                 "(%lu:%lu): %s; nothing changed",
                 shown, (unsigned long)old->st_uid,
                 (unsigned long)old->st_gid, strerror(errno));
        step = NULL;
        goto fail;
    }
    if (fchmod(fd, mode) < 0 || write_all(fd, text->p, text->len) < 0 ||
        fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    step = "rename the new file over it";
    if (renameat(dfd, tmp, dfd, base) < 0)
        goto fail;
    if (fsync(dfd) < 0)
        complain("%s: changed, but its directory cannot be synced: %s",
                 shown, strerror(errno));
    return 0;

fail:
    if (step)
        complain("%s: cannot %s: %s; nothing changed", shown, step,
                 strerror(errno));
    if (fd >= 0)
        close(fd);
    if (made)
        unlinkat(dfd, tmp, 0);
    return -1;
}

/* ------------------------------------------------------------------------ */

/* Locks the directory dir (an exclusive flock(2) shared by every
 * mqgate-passwd). Returns its descriptor, or -1 after a message. */
static int lock_dir(const char *dir, const char *shown)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd < 0) {
        complain("%s: cannot open its directory %s: %s", shown, dir,
                 strerror(errno));
        return -1;
    }
    /* A file system without locks (EOPNOTSUPP, ENOLCK): go on unlocked. */
    if (flock(dfd, LOCK_EX | LOCK_NB) == 0)
        return dfd;
    if (errno == EWOULDBLOCK) {
        complain("waiting for another " PROG " to finish in %s", dir);
        while (flock(dfd, LOCK_EX) < 0) {
            if (errno != EINTR) {
                complain("%s: cannot lock %s: %s", shown, dir,
                         strerror(errno));
                close(dfd);
                return -1;
            }
        }
    }
    return dfd;
}

int main(int argc, char **argv)
{
    static char pw[PASSWORD_MAX + 1], again[PASSWORD_MAX + 1];
    char hash[CRYPT_OUTPUT_SIZE], secret[TOTP_B32_MAX + 1];
    char real[PATH_MAX], dir[PATH_MAX];
    struct users *cur = NULL, *next = NULL;
    struct buf text = {0}, out = {0};
    const struct user_entry *e;
    struct change c;
    struct opts o;
    struct stat st, lst;
    const char *target, *base;
    bool exists;
    int rc = 1, dfd = -1, r;

    hash[0] = secret[0] = '\0';
    if ((r = parse_args(argc, argv, &o)) != 0)
        return r > 0 ? 0 : 1;
    /* A closed standard output must not kill us silently once the file
     * holds a secret that was never shown. */
    signal(SIGPIPE, SIG_IGN);

    /* Follow a symbolic link, so that the link stays and its target
     * changes. */
    target = o.path;
    if (lstat(o.path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        if (!realpath(o.path, real)) {
            complain("%s: cannot follow the link: %s", o.path,
                     strerror(errno));
            return 1;
        }
        target = real;
    }
    if (strlen(target) >= sizeof(dir)) {
        complain("%s: %s", o.path, strerror(ENAMETOOLONG));
        return 1;
    }
    base = split_path(target, dir);
    if (!*base) {
        complain("%s: not a file name", o.path);
        return 1;
    }
    if ((dfd = lock_dir(dir, o.path)) < 0)
        return 1;

    r = file_read(target, o.path, &text, &st);
    if (r < 0)
        goto out;
    exists = r == 0;
    if (!exists && o.delete) {
        complain("%s: no such file", o.path);
        goto out;
    }
    if (exists && parse_or_complain(o.path, &text, &cur) < 0) {
        complain("%s: not valid: nothing changed", o.path);
        goto out;
    }
    e = users_find(cur, o.user);
    if (o.delete && !e) {
        complain("%s: no user \"%s\"", o.path, o.user);
        goto out;
    }

    memset(&c, 0, sizeof(c));
    c.o = &o;
    c.line = e ? e->line : 0;
    if (!o.delete) {
        caught = 0;
        r = read_password(&o, pw, again);
        explicit_bzero(again, sizeof(again));
        if (r < 0 ||
            hash_password(pw, o.method->prefix, hash, sizeof(hash)) < 0)
            goto out;
        explicit_bzero(pw, sizeof(pw));
        if (o.totp == TOTP_NEW && totp_secret_new(secret) < 0)
            goto out;
        c.hash = hash;
        c.totp_new = secret;
    }
    if (apply_change(&text, &c, &out) < 0) {
        complain("out of memory");
        goto out;
    }

    /* The daemon must accept the result, with the change made. */
    if (parse_or_complain(o.path, &out, &next) < 0) {
        complain("%s: the changed file would not be valid: nothing changed",
                 o.path);
        goto out;
    }
    e = users_find(next, o.user);
    if (o.delete ? e != NULL
                 : !e || strcmp(e->hash, hash) != 0 ||
                       (o.totp == TOTP_NEW && !e->totp_key) ||
                       (o.totp == TOTP_REMOVE && e->totp_key)) {
        complain("%s: the change did not come out as meant: nothing changed",
                 o.path);
        goto out;
    }

    if (file_replace(dfd, base, o.path, &out,
                     exists ? st.st_mode & 07777 : NEW_FILE_MODE,
                     exists ? &st : NULL) < 0)
        goto out;

    rc = 0;
    if (o.totp == TOTP_NEW) {
        fputs("otpauth://totp/mqgate:", stdout);
        put_percent_encoded(stdout, o.user);
        printf("?secret=%s&issuer=mqgate&algorithm=SHA1&digits=6&period=30\n",
               secret);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            complain("standard output: %s: the new TOTP secret is in %s "
                     "but was not shown; run again with --totp",
                     strerror(errno), o.path);
            rc = 1;
        }
    }
    complain("%s: user \"%s\" %s", o.path, o.user,
             o.delete ? "deleted" : c.line ? "changed" : "added");
    if (!exists)
        complain("%s: created with mode %04o; mqgated reads it as user "
                 "mqgate: chown root:mqgate %s",
                 o.path, NEW_FILE_MODE, o.path);
    complain("a running mqgated reads the file again on SIGHUP: "
             "systemctl reload mqgated");

out:
    explicit_bzero(pw, sizeof(pw));
    explicit_bzero(again, sizeof(again));
    explicit_bzero(hash, sizeof(hash));
    explicit_bzero(secret, sizeof(secret));
    users_free(cur);
    users_free(next);
    buf_free(&text);
    buf_free(&out);
    if (dfd >= 0)
        close(dfd);
    if (caught) {
        signal(caught, SIG_DFL);
        raise(caught);
        complain("interrupted: nothing changed"); /* after SIGTSTP */
    }
    return rc;
}
