/* The CPUs this process may run on (its affinity; else those online), at
 * least 1: what "the number of CPUs" means for auth.password_workers and
 * workers. */
#ifndef MQG_CPUS_H
#define MQG_CPUS_H

#include <sched.h>
#include <unistd.h>

static inline long cpus_usable(void)
{
    cpu_set_t set;
    long n = sched_getaffinity(0, sizeof(set), &set) == 0
                 ? CPU_COUNT(&set)
                 : sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n;
}

#endif
