/* buf.h - a growable, always NUL-terminated byte buffer (after git's strbuf).
 *
 * BUF_INIT gives an empty buffer whose s is never NULL.  buf_release()
 * frees the contents; buf_detach() hands the string to the caller, who frees it.
 * Allocation failure aborts (the program cannot continue without memory).
 */
#ifndef GPUCTL_BUF_H
#define GPUCTL_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "gpuctl/err.h"

struct buf {
	char *s;
	size_t len;
	size_t cap;
};

extern char buf_empty_[];
#define BUF_INIT { buf_empty_, 0, 0 }

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
/* Shorten to len bytes (no-op when already shorter). */
void buf_truncate(struct buf *b, size_t len);
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) GPUCTL_PRINTF(2, 3);
void buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Take ownership of the string; b is reset to empty. */
char *buf_detach(struct buf *b);
/* Overwrite contents with zeros, then release (for secrets). */
void buf_wipe(struct buf *b);

/* Read a whole file (at most max bytes) into b. Fails with GERR_IO naming path. */
int buf_read_file(struct buf *b, const char *path, size_t max, struct gerr *err);

/* Allocation helpers that abort on failure. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) GPUCTL_PRINTF(1, 2);
/* Zero then free a secret string. NULL is fine. */
void free_secret(char *s);

#endif
