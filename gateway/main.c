/* mqgated: parse flags, load the configuration, run (one gateway, or the
 * supervisor of several). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconfig.h"
#include "config.h"
#include "gateway.h"
#include "preflight.h"
#include "supervisor.h"

#define DEFAULT_CONFIG SYSCONFDIR "/mqgate/mqgate.json"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mqgated [-c FILE] [--check-config] [--version] [-v]\n"
            "  -c, --config FILE   configuration file (default %s)\n"
            "      --check-config  validate FILE and every file it names\n"
            "      --version       print the version\n"
            "  -v, --verbose       log at debug level\n",
            DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"version", no_argument, NULL, 'V'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = DEFAULT_CONFIG;
    bool check = false, verbose = false;
    struct config *cfg;
    char err[8192];
    int c;

    while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'C':
            check = true;
            break;
        case 'V':
            printf("mqgated %s\n", PACKAGE_VERSION);
            return 0;
        case 'v':
            verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (config_load(path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s", err);
        if (err[0] && err[strlen(err) - 1] != '\n')
            fputc('\n', stderr);
        fprintf(stderr, "%s: configuration not valid\n", path);
        return 1;
    }
    if (verbose)
        cfg->log_level = LOG_LVL_DEBUG;
    if (preflight_check(cfg, path, check) < 0) {
        config_free(cfg);
        if (!check)
            fprintf(stderr, "%s: configuration not usable\n", path);
        return 1;
    }
    if (check) {
        printf("%s: configuration OK\n", path);
        config_free(cfg);
        return 0;
    }
    {
        int n = supervisor_workers(cfg);

        return n > 1 ? supervisor_run(cfg, path, n) : gateway_run(cfg, path);
    }
}
