/* Reading a whole file into memory, with a size cap, for the loaders of
 * common/ (the config file and the users file). */
#ifndef MQG_READFILE_H
#define MQG_READFILE_H

#include <stddef.h>

/* How readfile() gets and gives back memory: the loader's own allocator,
 * so that a test failing its allocations fails these too. */
struct readfile_alloc {
    void *(*alloc)(size_t n);
    void (*release)(void *p);
};

/* Reads the file at path, at most max bytes, into a buffer from a; the
 * caller releases *buf (its first *len bytes are the file) with a. A
 * buffer outgrown on the way is wiped before it is released: the file may
 * hold secrets. Returns 0, or -1 with errno set (EFBIG: larger than max;
 * ENOMEM; or open(2) and read(2)'s own). */
int readfile(const char *path, size_t max, const struct readfile_alloc *a,
             char **buf, size_t *len);

#endif
