/* Prometheus text exposition (version 0.0.4) as mqgate's workers combine
 * theirs into one /metrics: a label put on every sample of a text, and
 * several texts merged family by family. Pure: no I/O. */
#ifndef MQG_PROMTEXT_H
#define MQG_PROMTEXT_H

#include <stddef.h>

/* A copy of text[0..len) in which every sample line carries name="value"
 * as its first label (value is written as given: the caller passes one
 * that needs no escaping). Comment and blank lines are copied. Returns a
 * NUL-terminated malloc'd string (its length in *outlen), or NULL when
 * out of memory. */
char *promtext_label(const char *text, size_t len, const char *name,
                     const char *value, size_t *outlen);

/* The n texts merged: each family (the lines from its "# HELP" up to the
 * next family's) once, in the order in which the texts first name it,
 * with its "# HELP" and "# TYPE" lines from the first text holding it and
 * then the samples of every text holding it, text by text. Lines before a
 * text's first "# HELP" are kept, in front. Returns a NUL-terminated
 * malloc'd string (its length in *outlen), or NULL when out of memory. */
char *promtext_merge(const char *const *texts, const size_t *lens, size_t n,
                     size_t *outlen);

#endif
