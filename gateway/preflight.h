/* Checks of what the configuration names on disk (nginx -t): certificates,
 * keys, the users file, secrets, static directories. */
#ifndef MQG_PREFLIGHT_H
#define MQG_PREFLIGHT_H

#include <stdbool.h>

#include "config.h"

/* Checks that every file cfg names is there to be read, and that the
 * users file parses; prints each problem to stderr as
 * "PATH: KEY: FILE: problem". With full (--check-config), also checks
 * the other files in full: certificate chains and their keys parse and
 * belong together, CA files load, the JWT key file is what alg needs; and
 * warns of secrets that other users can read. (At start and on reload the
 * code that loads each of those files refuses it itself, with its own
 * message.) Returns 0 or -1. */
int preflight_check(const struct config *cfg, const char *path, bool full);

#endif
