/* strpool.h - interned strings: each distinct text stored once.
 *
 * A report holds a few texts per row (the node's name, the check's id, the
 * message, the hint), and on a large cluster most of them repeat: every
 * row of a node names the node, and thousands of nodes get the same hint
 * and often the same message.  A pool keeps one copy of each distinct
 * string, packed in large blocks (no allocation per string), so a row holds
 * pointers only.
 *
 * Ownership: the pool owns every string it returns; they stay valid and
 * unchanged until strpool_free.  Equal strings interned in one pool give
 * the same pointer.
 */
#ifndef GPUCTL_STRPOOL_H
#define GPUCTL_STRPOOL_H

#include <stddef.h>

struct strpool;

struct strpool *strpool_new(void);
/* Free the pool and every string in it (NULL is fine). */
void strpool_free(struct strpool *p);
/* The pool's copy of s (NULL gives NULL), added when it is not there yet. */
const char *strpool_intern(struct strpool *p, const char *s);
/* The same for the n bytes at s (no NUL among them). */
const char *strpool_intern_n(struct strpool *p, const char *s, size_t n);
/* Distinct strings held, and the bytes the pool takes (blocks and index). */
size_t strpool_count(const struct strpool *p);
size_t strpool_bytes(const struct strpool *p);

#endif
