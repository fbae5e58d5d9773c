/* Interned strings in large blocks, found again through an open-addressing
 * hash index (see strpool.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/strpool.h"

/* 64 KiB less malloc's own header: below glibc's mmap threshold, and a
 * string longer than an eighth of it gets a block of its own */
#define BLOCK_SIZE (64 * 1024 - 64)

struct block {
	struct block *next;
	size_t used, cap;
	char data[];
};

struct strpool {
	struct block *blocks;   /* the newest first: strings are added to it */
	const char **slots;     /* the index: NULL or a string of the blocks */
	size_t nslots, count;   /* nslots a power of two, count at most half of it */
	size_t bytes;
};

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037u; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211u;
	}
	return h;
}

struct strpool *strpool_new(void)
{
	return xcalloc(1, sizeof(struct strpool));
}

void strpool_free(struct strpool *p)
{
	if (!p)
		return;
	for (struct block *b = p->blocks, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(p->slots);
	free(p);
}

static void rehash(struct strpool *p)
{
	size_t n = p->nslots ? 2 * p->nslots : 256;
	const char **slots = xcalloc(n, sizeof(*slots));
	for (size_t i = 0; i < p->nslots; i++) {
		const char *s = p->slots[i];
		if (!s)
			continue;
		size_t j = (size_t)hash(s, strlen(s)) & (n - 1);
		while (slots[j])
			j = (j + 1) & (n - 1);
		slots[j] = s;
	}
	free(p->slots);
	p->bytes += (n - p->nslots) * sizeof(*slots);
	p->slots = slots;
	p->nslots = n;
}

static char *store(struct strpool *p, const char *s, size_t n)
{
	struct block *b = p->blocks;
	if (!b || b->cap - b->used < n + 1) {
		size_t cap = n + 1 > BLOCK_SIZE / 8 ? n + 1 : BLOCK_SIZE - sizeof(*b);
		b = xmalloc(sizeof(*b) + cap);
		b->used = 0;
		b->cap = cap;
		p->bytes += sizeof(*b) + cap;
		if (p->blocks && cap != BLOCK_SIZE - sizeof(*b)) {
			/* a string of its own: the current block keeps taking the small ones */
			b->next = p->blocks->next;
			p->blocks->next = b;
		} else {
			b->next = p->blocks;
			p->blocks = b;
		}
	}
	char *d = b->data + b->used;
	memcpy(d, s, n);
	d[n] = '\0';
	b->used += n + 1;
	return d;
}

const char *strpool_intern_n(struct strpool *p, const char *s, size_t n)
{
	if (!s)
		return NULL;
	if (2 * (p->count + 1) > p->nslots)
		rehash(p);
	size_t j = (size_t)hash(s, n) & (p->nslots - 1);
	for (const char *t; (t = p->slots[j]); j = (j + 1) & (p->nslots - 1))
		if (!strncmp(t, s, n) && t[n] == '\0')
			return t;
	p->count++;
	return p->slots[j] = store(p, s, n);
}

const char *strpool_intern(struct strpool *p, const char *s)
{
	return s ? strpool_intern_n(p, s, strlen(s)) : NULL;
}

size_t strpool_count(const struct strpool *p)
{
	return p ? p->count : 0;
}

size_t strpool_bytes(const struct strpool *p)
{
	return p ? p->bytes : 0;
}
