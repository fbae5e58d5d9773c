/* The report for a person: validate's table, the per-node lines of deploy,
 * label and taint, and the summary line. */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/out.h"
#include "gpuctl/report.h"
#include "shape.h"

/* Text from a node or the cluster on one terminal line: a newline or tab
 * would break the row (they become a space), an escape sequence could
 * rewrite the screen (out_add_printable escapes it). */
static void clean(struct buf *b, const char *s)
{
	char *one = xstrdup(s ? s : "");
	for (char *p = one; *p; p++)
		if (*p == '\t' || *p == '\n' || *p == '\r')
			*p = ' ';
	out_add_printable(b, one, 0);
	free(one);
}

static size_t clean_len(const char *s)
{
	struct buf b = BUF_INIT;
	clean(&b, s);
	size_t n = b.len;
	buf_release(&b);
	return n;
}

static void put_clean(FILE *f, const char *s)
{
	struct buf b = BUF_INIT;
	clean(&b, s);
	fwrite(b.s, 1, b.len, f);
	buf_release(&b);
}

static void put_pad(FILE *f, size_t n)
{
	for (; n; n--)
		fputc(' ', f);
}

static enum out_color status_color(enum report_status st)
{
	switch (st) {
	case REPORT_PASS:
	case REPORT_CHANGED:
	case REPORT_CREATED:
		return OUT_GREEN;
	case REPORT_WARN:
	case REPORT_SKIPPED:
		return OUT_YELLOW;
	case REPORT_SKIP:
	case REPORT_UNCHANGED:
		return OUT_DIM;
	default:
		return OUT_RED;
	}
}

static const char *status_word(const struct report *r, enum report_status st)
{
	if (st == REPORT_CHANGED && r->changed_word)
		return r->changed_word;
	return report_status_name(st);
}

/* ---- validate's table ---- */

static void print_grid(FILE *f, const struct report *r, int color)
{
	size_t wk = strlen("CHECK"), wt = strlen("TARGET"), ws = strlen("RESULT");
	for (size_t i = 0; i < r->n; i++) {
		size_t k = clean_len(r->v[i].kind), t = clean_len(r->v[i].target);
		size_t st = strlen(status_word(r, r->v[i].status));
		wk = k > wk ? k : wk;
		wt = t > wt ? t : wt;
		ws = st > ws ? st : ws;
	}
	fprintf(f, "%-*s  %-*s  %-*s  %s\n", (int)wk, "CHECK", (int)wt, "TARGET", (int)ws, "RESULT", "MESSAGE");
	for (size_t i = 0; i < r->n; i++) {
		const struct report_row *row = &r->v[i];
		const char *word = status_word(r, row->status);
		put_clean(f, row->kind);
		put_pad(f, wk - clean_len(row->kind) + 2);
		put_clean(f, row->target);
		put_pad(f, wt - clean_len(row->target) + 2);
		out_colored(f, color, status_color(row->status), word);
		put_pad(f, ws - strlen(word) + 2);
		put_clean(f, row->message);
		fputc('\n', f);
		enum report_class c = report_status_class(row->status);
		if (row->hint && (c == REPORT_CLASS_FAIL || c == REPORT_CLASS_WARN)) {
			put_pad(f, wk + wt + ws + 6);
			fputs("hint: ", f);
			put_clean(f, row->hint);
			fputc('\n', f);
		}
	}
}

/* ---- one line per node: node/gpu-1  changed  message ---- */

static void print_line(FILE *f, const struct report *r, const struct shape *s, const struct report_row *row,
		       int color, size_t width)
{
	struct buf name = BUF_INIT;
	if (row->object)
		clean(&name, row->object);
	else if (!strcmp(row->target, "cluster"))
		buf_adds(&name, "cluster");
	else {
		buf_adds(&name, "node/");
		clean(&name, row->target);
	}
	fwrite(name.s, 1, name.len, f);
	if (width > name.len)
		put_pad(f, width - name.len);
	fputs("  ", f);
	const char *word = status_word(r, row->status);
	if (s->pad) {
		/* the padding is coloured with the word, as it always was */
		struct buf w = BUF_INIT;
		buf_addf(&w, "%-9s", word);
		out_colored(f, color, status_color(row->status), w.s);
		buf_release(&w);
	} else {
		out_colored(f, color, status_color(row->status), word);
	}
	if (row->message && *row->message) {
		fputs(s->sep ? s->sep : "  ", f);
		put_clean(f, row->message);
	}
	fputc('\n', f);
	buf_release(&name);
}

void report_print_row(FILE *f, const struct report *r, const struct report_row *row, int color)
{
	const struct shape *s = report_shape(r);
	print_line(f, r, s, row, color, 0);
	fflush(f);
}

void report_print_table(FILE *f, const struct report *r, int color)
{
	const struct shape *s = report_shape(r);
	if (s->layout == LAYOUT_TABLE) {
		print_grid(f, r, color);
		return;
	}
	size_t width = 0;
	if (s->pad) {
		size_t w = 4;
		for (size_t i = 0; i < r->n; i++) {
			size_t n = clean_len(r->v[i].target);
			w = n > w ? n : w;
		}
		width = strlen("node/") + w;
	}
	for (size_t i = 0; i < r->n; i++)
		print_line(f, r, s, &r->v[i], color, width);
}

void report_print_summary(FILE *f, const struct report *r)
{
	const struct shape *s = report_shape(r);
	size_t n[REPORT_STATUS_COUNT], c[4], total = 0;
	report_count(r, n);
	report_count_classes(r, c);
	for (int i = 0; i < 4; i++)
		total += c[i];
	if (s->layout == LAYOUT_TABLE) {
		fprintf(f, "%zu check%s: %zu passed, %zu warning%s, %zu failed, %zu skipped\n", total,
			total == 1 ? "" : "s", c[REPORT_CLASS_OK], c[REPORT_CLASS_WARN], c[REPORT_CLASS_WARN] == 1 ? "" : "s",
			c[REPORT_CLASS_FAIL], c[REPORT_CLASS_SKIP]);
		return;
	}
	fprintf(f, "%zu %s: %zu %s, %zu unchanged, %zu failed%s\n", total, s->summary_noun ? s->summary_noun : "item(s)",
		n[REPORT_CHANGED] + n[REPORT_CREATED], r->changed_word ? r->changed_word : "changed", n[REPORT_UNCHANGED],
		c[REPORT_CLASS_FAIL], c[REPORT_CLASS_SKIP] ? ", others skipped" : "");
}
