/* Checks of what the configuration names on disk (nginx -t): certificates,
 * keys, the users file, secrets, static directories. */
#ifndef MQG_PREFLIGHT_H
#define MQG_PREFLIGHT_H

#include <stdbool.h>

#include "config.h"

/* Checks every file cfg names; prints each problem to stderr as
 * "PATH: KEY: FILE: problem". With verbose, also warns of secrets that
 * other users can read. Returns 0 or -1. */
int preflight_check(const struct config *cfg, const char *path,
                    bool verbose);

#endif
