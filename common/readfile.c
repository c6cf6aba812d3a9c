#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "readfile.h"

/* Small files in practice: one buffer of this size holds them. */
#define READFILE_START (16 * 1024)

static void wipe_release(const struct readfile_alloc *a, char *b, size_t n)
{
    if (!b)
        return;
    explicit_bzero(b, n);
    a->release(b);
}

int readfile(const char *path, size_t max, const struct readfile_alloc *a,
             char **buf, size_t *len)
{
    /* One byte beyond the cap tells a too large file. */
    size_t limit = max + 1, cap = limit < READFILE_START ? limit
                                                         : READFILE_START;
    size_t n = 0;
    char *b;
    int fd, saved;

    *buf = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (!(b = a->alloc(cap))) {
        errno = ENOMEM;
        goto fail;
    }
    for (;;) {
        ssize_t r;

        if (n == cap) {
            size_t ncap = cap < limit / 2 ? cap * 2 : limit;
            char *nb;

            if (n == limit)
                break;
            if (!(nb = a->alloc(ncap))) {
                errno = ENOMEM;
                goto fail;
            }
            memcpy(nb, b, n);
            wipe_release(a, b, cap);
            b = nb;
            cap = ncap;
        }
        r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max) {
        errno = EFBIG;
        goto fail;
    }
    close(fd);
    *buf = b;
    *len = n;
    return 0;

fail:
    saved = errno;
    wipe_release(a, b, n);
    close(fd);
    errno = saved;
    return -1;
}
