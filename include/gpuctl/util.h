/* util.h - small helpers that exist once: base64, the monotonic clock,
 * NULL-terminated string vectors. */
#ifndef GPUCTL_UTIL_H
#define GPUCTL_UTIL_H

#include <stddef.h>

struct buf;

/* Standard base64 of n bytes appended to out; pad adds the '=' padding
 * (OpenSSH's SHA256 fingerprints are written without it). */
void base64_encode(const void *in, size_t n, int pad, struct buf *out);
/* Strict base64 (standard or URL alphabet, whitespace ignored, padding
 * optional) appended to out; -1 on a character outside the alphabet or a
 * dangling bit group. */
int base64_decode(const char *in, struct buf *out);

/* Milliseconds of CLOCK_MONOTONIC: for deadlines and durations, never dates. */
long mono_ms(void);
/* Seconds of CLOCK_MONOTONIC as a double: for durations in reports. */
double mono_s(void);
/* The current time, UTC, as RFC 3339 ("2026-12-03T08:00:00Z"), into out. */
void utc_now_rfc3339(char out[32]);

/* The folder of path ("." without a slash, "/" for the root), new string. */
char *path_dir(const char *path);

/* NULL-terminated vectors of owned strings. */
size_t strv_len(char *const *v);
/* Append a copy of s (v may be NULL); returns the new vector. */
char **strv_add(char **v, const char *s);
/* Whether v holds s. */
int strv_has(char *const *v, const char *s);
/* Free each string and the vector (NULL is fine). */
void strv_free(char **v);

#endif
