/* Private to src/out: how a report of each kind is laid out, in its
 * document and on the terminal (the documents are those of the man pages;
 * their fields are never renamed). */
#ifndef GPUCTL_OUT_SHAPE_H
#define GPUCTL_OUT_SHAPE_H

#include <stdio.h>

#include "gpuctl/report.h"

#define STATUS_BIT(s) (1u << (s))
#define ALL_STATUSES 0u

/* One key of the summary object and the statuses it counts (ALL_STATUSES: every item). */
struct sum_key {
	const char *key;
	unsigned statuses;
};

enum layout {
	LAYOUT_TABLE, /* CHECK TARGET RESULT MESSAGE columns, hints below, "N checks: ..." */
	LAYOUT_LINES, /* node/<target>  <status>  <message> */
};

struct shape {
	const char *kind;               /* NULL: the generic shape */
	/* the document */
	const char *items;              /* key of the array of item rows: "checks", "nodes" */
	const char *item_kind;          /* rows of this kind are the items; NULL: every row */
	const char *const *item_keys;   /* an item's keys in order (see json.c); NULL: a check's */
	const char *object_kind;        /* the row of this kind is a document-level object... */
	const char *object_key;         /* ...under this key... */
	const char *const *object_keys; /* ...with these keys */
	const struct sum_key *summary;  /* the summary object; ends with a NULL key */
	int ok;                         /* add "ok": true when no item failed */
	/* the terminal */
	enum layout layout;
	int pad;                        /* LINES: names padded to one width, statuses to 9 */
	const char *sep;                /* LINES: between the status and the message */
	const char *summary_noun;       /* LINES: "node(s)" */
};

const struct shape *report_shape(const struct report *r);
/* Whether the row is one of the document's items (counted in the summary). */
int shape_is_item(const struct shape *s, const struct report_row *row);

/* Write n bytes of cJSON's text to f, DEL and C1 controls as \u escapes
 * (out.c; out_doc's JSON writer, for a document written in pieces). */
void out_put_json(FILE *f, const char *s, size_t n);

/* Length of the valid UTF-8 sequence at p, or 0 when there is none. */
size_t report_utf8_len(const unsigned char *p);

#endif
