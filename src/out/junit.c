/* The report as JUnit XML, as CI systems (GitLab, Jenkins, GitHub test
 * reporters) read it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/report.h"
#include "shape.h"

/* s as XML text (attr: as an attribute value in double quotes): markup
 * escaped, the control characters XML 1.0 forbids dropped, U+FFFE and
 * U+FFFF dropped, bytes that are not UTF-8 replaced by U+FFFD, so any
 * message from a node still gives a well-formed document. */
static void xml_put(struct buf *b, const char *s, int attr)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		size_t n = report_utf8_len(p);
		if (!n) {
			buf_adds(b, "\xef\xbf\xbd");
			p++;
			continue;
		}
		if (n == 3 && p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf)) {
			p += 3;
			continue;
		}
		if (n > 1) {
			buf_add(b, p, n);
			p += n;
			continue;
		}
		unsigned char c = *p++;
		switch (c) {
		case '&': buf_adds(b, "&amp;"); break;
		case '<': buf_adds(b, "&lt;"); break;
		case '>': buf_adds(b, "&gt;"); break;
		case '"': buf_adds(b, attr ? "&quot;" : "\""); break;
		case '\'': buf_adds(b, attr ? "&apos;" : "'"); break;
		case '\n': buf_adds(b, attr ? "&#10;" : "\n"); break;
		case '\t': buf_adds(b, attr ? "&#9;" : "\t"); break;
		case '\r': buf_adds(b, "&#13;"); break;
		default:
			if (c >= 0x20)
				buf_addc(b, (char)c);
		}
	}
}

static void suite_name(struct buf *b, const char *target)
{
	if (strcmp(target, "cluster"))
		buf_adds(b, "node/");
	xml_put(b, target, 1);
}

static void class_name(struct buf *b, const char *command, const char *target)
{
	buf_adds(b, "gpuctl.");
	xml_put(b, command, 1);
	if (!strcmp(target, "cluster")) {
		buf_adds(b, ".cluster");
	} else {
		buf_adds(b, ".node.");
		xml_put(b, target, 1);
	}
}

/* Rows grouped by target, groups in the order targets first appear: sort
 * by (target, index), then the groups by their first index. */
struct key {
	const char *target;
	size_t index;
};

static int by_target(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	int c = strcmp(x->target, y->target);
	return c ? c : (x->index < y->index ? -1 : x->index > y->index);
}

struct group {
	size_t index;      /* of its first row in the report */
	size_t first, len; /* its run in the sorted keys */
};

static int by_index(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	return x->index < y->index ? -1 : x->index > y->index;
}

static void testcase(struct buf *b, const struct report *r, const struct report_row *row)
{
	buf_adds(b, "    <testcase classname=\"");
	class_name(b, r->command ? r->command : "", row->target);
	buf_adds(b, "\" name=\"");
	xml_put(b, row->kind, 1);
	buf_addf(b, "\" time=\"%.3f\">\n", row->seconds);
	enum report_class c = report_status_class(row->status);
	if (c == REPORT_CLASS_FAIL) {
		buf_adds(b, "      <failure type=\"");
		xml_put(b, report_status_name(row->status), 1);
		buf_adds(b, "\" message=\"");
		xml_put(b, row->message, 1);
		buf_adds(b, "\">");
		xml_put(b, row->message, 0);
		if (row->hint) {
			buf_adds(b, "\nhint: ");
			xml_put(b, row->hint, 0);
		}
		buf_adds(b, "</failure>\n");
	} else if (c == REPORT_CLASS_SKIP) {
		buf_adds(b, "      <skipped message=\"");
		xml_put(b, row->message, 1);
		buf_adds(b, "\"/>\n");
	} else {
		buf_adds(b, "      <system-out>");
		if (c == REPORT_CLASS_WARN)
			buf_adds(b, "warning: ");
		xml_put(b, row->message, 0);
		if (row->hint) {
			buf_adds(b, "\nhint: ");
			xml_put(b, row->hint, 0);
		}
		buf_adds(b, "</system-out>\n");
	}
	buf_adds(b, "    </testcase>\n");
}

/* The text goes out through put in pieces of about this size: on 20,000
 * nodes the whole document would be tens of MiB. */
#define PIECE (64 * 1024)

typedef void (*put_fn)(void *ud, struct buf *b); /* takes b's bytes, leaves it empty */

static void write_junit(const struct report *r, put_fn put, void *ud)
{
	struct buf b = BUF_INIT;
	size_t fails = 0, skips = 0;
	double total = 0;
	for (size_t i = 0; i < r->n; i++) {
		fails += report_status_class(r->v[i].status) == REPORT_CLASS_FAIL;
		skips += report_status_class(r->v[i].status) == REPORT_CLASS_SKIP;
		total += r->v[i].seconds;
	}
	buf_adds(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"gpuctl");
	if (r->command && *r->command) {
		buf_addc(&b, ' ');
		xml_put(&b, r->command, 1);
	}
	buf_addf(&b, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"%.3f\">\n", r->n, fails, skips,
		 total);
	struct key *keys = xcalloc(r->n ? r->n : 1, sizeof(*keys));
	struct group *g = xcalloc(r->n ? r->n : 1, sizeof(*g));
	size_t ng = 0;
	for (size_t i = 0; i < r->n; i++)
		keys[i] = (struct key){ r->v[i].target, i };
	qsort(keys, r->n, sizeof(*keys), by_target);
	for (size_t i = 0; i < r->n; i++) {
		if (ng && !strcmp(keys[i].target, keys[g[ng - 1].first].target))
			g[ng - 1].len++;
		else
			g[ng++] = (struct group){ keys[i].index, i, 1 };
	}
	qsort(g, ng, sizeof(*g), by_index);
	for (size_t k = 0; k < ng; k++) {
		size_t gf = 0, gs = 0;
		double t = 0;
		for (size_t i = g[k].first; i < g[k].first + g[k].len; i++) {
			const struct report_row *row = &r->v[keys[i].index];
			gf += report_status_class(row->status) == REPORT_CLASS_FAIL;
			gs += report_status_class(row->status) == REPORT_CLASS_SKIP;
			t += row->seconds;
		}
		buf_adds(&b, "  <testsuite name=\"");
		suite_name(&b, r->v[keys[g[k].first].index].target);
		buf_addf(&b, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"%.3f\">\n", g[k].len,
			 gf, gs, t);
		for (size_t i = g[k].first; i < g[k].first + g[k].len; i++) {
			testcase(&b, r, &r->v[keys[i].index]);
			if (b.len >= PIECE)
				put(ud, &b);
		}
		buf_adds(&b, "  </testsuite>\n");
	}
	free(g);
	free(keys);
	buf_adds(&b, "</testsuites>\n");
	put(ud, &b);
	buf_release(&b);
}

static void put_buf(void *ud, struct buf *b)
{
	buf_add(ud, b->s, b->len);
	buf_reset(b);
}

char *report_junit(const struct report *r)
{
	struct buf out = BUF_INIT;
	write_junit(r, put_buf, &out);
	return buf_detach(&out);
}

static void put_file(void *ud, struct buf *b)
{
	fwrite(b->s, 1, b->len, ud);
	buf_reset(b);
}

void report_print_junit(FILE *f, const struct report *r)
{
	write_junit(r, put_file, f);
}

static void fill_junit(FILE *f, const void *ud)
{
	report_print_junit(f, ud);
}

int report_write_junit(const char *path, const struct report *r, struct gerr *err)
{
	int rc = report_write_file_fill(path, fill_junit, r, err);
	if (rc < 0)
		gerr_prefix(err, "JUnit report");
	return rc;
}
