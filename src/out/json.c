/* The report as its document (-o json|yaml), in the shape of its kind. */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"

#include "gpuctl/out.h"
#include "gpuctl/report.h"
#include "gpuctl/yaml.h"
#include "shape.h"

static int listed(const char *const *keys, const char *k)
{
	for (; *keys; keys++)
		if (!strcmp(*keys, k))
			return 1;
	return 0;
}

/* The details' fields not placed yet, after the others: a field a command
 * adds appears without a change here. */
static void add_rest(cJSON *o, const cJSON *details, const char *const *placed)
{
	const cJSON *v;
	cJSON_ArrayForEach(v, details)
		if (v->string && !listed(placed, v->string) && !cJSON_GetObjectItemCaseSensitive(o, v->string))
			cJSON_AddItemToObject(o, v->string, cJSON_Duplicate(v, 1));
}

/* An object with keys in this order: "name" is the details' name or else
 * the target, "result" the status, any other key the details' field of
 * that name when present. */
static cJSON *keyed(const struct report_row *row, const char *const *keys)
{
	cJSON *o = cJSON_CreateObject();
	for (const char *const *k = keys; *k; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(row->details, *k);
		if (!strcmp(*k, "result"))
			cJSON_AddStringToObject(o, "result", report_status_name(row->status));
		else if (v)
			cJSON_AddItemToObject(o, *k, cJSON_Duplicate(v, 1));
		else if (!strcmp(*k, "name"))
			cJSON_AddStringToObject(o, "name", row->target);
	}
	add_rest(o, row->details, keys);
	return o;
}

/* gpuctl-validate(1): checks[].id, target, status, message, hint */
static cJSON *check_item(const struct report_row *row)
{
	static const char *const keys[] = { "id", "target", "status", "message", "hint", NULL };
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", row->kind);
	cJSON_AddStringToObject(o, "target", row->target);
	cJSON_AddStringToObject(o, "status", report_status_name(row->status));
	cJSON_AddStringToObject(o, "message", row->message ? row->message : "");
	if (row->hint)
		cJSON_AddStringToObject(o, "hint", row->hint);
	add_rest(o, row->details, keys);
	return o;
}

static cJSON *item_json(const struct shape *s, const struct report_row *row)
{
	return s->item_keys ? keyed(row, s->item_keys) : check_item(row);
}

/* The document's fields before the items: apiVersion, kind, the extras. */
static cJSON *doc_head(const struct report *r)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "apiVersion", REPORT_API_VERSION);
	cJSON_AddStringToObject(doc, "kind", r->kind ? r->kind : "Result");
	const cJSON *x;
	cJSON_ArrayForEach(x, r->extra)
		cJSON_AddItemToObject(doc, x->string, cJSON_Duplicate(x, 1));
	return doc;
}

/* ...and after them: the document-level object, the summary, ok. */
static void doc_tail(const struct report *r, const struct shape *s, cJSON *doc)
{
	const struct report_row *obj = NULL;
	for (size_t i = 0; s->object_kind && i < r->n; i++)
		if (!strcmp(r->v[i].kind, s->object_kind))
			obj = &r->v[i];
	if (obj)
		cJSON_AddItemToObject(doc, s->object_key, keyed(obj, s->object_keys));
	size_t n[REPORT_STATUS_COUNT];
	report_count(r, n);
	cJSON *sum = cJSON_AddObjectToObject(doc, "summary");
	for (const struct sum_key *k = s->summary; k->key; k++) {
		size_t c = 0;
		for (int st = 0; st < REPORT_STATUS_COUNT; st++)
			if (k->statuses == ALL_STATUSES || (k->statuses & STATUS_BIT(st)))
				c += n[st];
		cJSON_AddNumberToObject(sum, k->key, (double)c);
	}
	if (s->ok)
		cJSON_AddBoolToObject(doc, "ok", report_failed(r) == 0);
}

cJSON *report_json(const struct report *r)
{
	const struct shape *s = report_shape(r);
	cJSON *doc = doc_head(r);
	if (!r->no_items) {
		cJSON *arr = cJSON_AddArrayToObject(doc, s->items);
		for (size_t i = 0; i < r->n; i++)
			if (shape_is_item(s, &r->v[i]))
				cJSON_AddItemToArray(arr, item_json(s, &r->v[i]));
	}
	doc_tail(r, s, doc);
	return doc;
}

/* ---- the document printed item by item ---- */

/* Where the items go in the document's text: a raw value cJSON prints as
 * it is (a control character in a string or key is always escaped, so
 * this byte can come from nowhere else). */
#define ITEMS_MARK "\001"

/* One item as cJSON_Print writes it inside the document: the items array
 * is a member of the top object, so each of its lines is two tabs deeper
 * than when the item is printed alone (string values carry their newlines
 * as \n, so every newline of the text is one of the layout's). */
static void put_json_item(FILE *f, const cJSON *item, struct buf *b)
{
	char *t = cJSON_Print(item);
	buf_reset(b);
	for (const char *p = t; *p; p++) {
		buf_addc(b, *p);
		if (*p == '\n')
			buf_adds(b, "\t\t");
	}
	out_put_json(f, b->s, b->len);
	free(t);
}

static void print_json(FILE *f, const struct report *r, const struct shape *s)
{
	cJSON *doc = doc_head(r);
	if (!r->no_items)
		cJSON_AddItemToObject(doc, s->items, cJSON_CreateRaw(ITEMS_MARK));
	doc_tail(r, s, doc);
	char *text = cJSON_Print(doc);
	cJSON_Delete(doc);
	const char *mark = strchr(text, ITEMS_MARK[0]);
	if (!mark) {
		out_put_json(f, text, strlen(text));
		fputc('\n', f);
		free(text);
		return;
	}
	out_put_json(f, text, (size_t)(mark - text));
	fputc('[', f);
	struct buf b = BUF_INIT;
	int first = 1;
	for (size_t i = 0; i < r->n; i++) {
		if (!shape_is_item(s, &r->v[i]))
			continue;
		if (!first)
			fputs(", ", f);
		first = 0;
		cJSON *item = item_json(s, &r->v[i]);
		put_json_item(f, item, &b);
		cJSON_Delete(item);
	}
	buf_release(&b);
	fputc(']', f);
	out_put_json(f, mark + 1, strlen(mark + 1));
	fputc('\n', f);
	free(text);
}

static void put_yaml(FILE *f, const cJSON *node, struct buf *b)
{
	buf_reset(b);
	yaml_emit(node, b);
	fwrite(b->s, 1, b->len, f);
}

/* YAML's layout is one key or one item after another at the same
 * indentation: the head with the first item under the items key, each
 * further item as a one-item list, then the tail are the document's
 * lines in order. */
static void print_yaml(FILE *f, const struct report *r, const struct shape *s)
{
	size_t i = 0;
	while (!r->no_items && i < r->n && !shape_is_item(s, &r->v[i]))
		i++;
	struct buf b = BUF_INIT;
	if (r->no_items || i == r->n) {
		/* no item: the document is small */
		cJSON *doc = report_json(r);
		put_yaml(f, doc, &b);
		cJSON_Delete(doc);
		buf_release(&b);
		return;
	}
	cJSON *doc = doc_head(r);
	cJSON *arr = cJSON_AddArrayToObject(doc, s->items);
	cJSON_AddItemToArray(arr, item_json(s, &r->v[i]));
	put_yaml(f, doc, &b);
	cJSON_Delete(doc);
	for (i++; i < r->n; i++) {
		if (!shape_is_item(s, &r->v[i]))
			continue;
		cJSON *one = cJSON_CreateArray();
		cJSON_AddItemToArray(one, item_json(s, &r->v[i]));
		put_yaml(f, one, &b);
		cJSON_Delete(one);
	}
	cJSON *tail = cJSON_CreateObject();
	doc_tail(r, s, tail);
	put_yaml(f, tail, &b);
	cJSON_Delete(tail);
	buf_release(&b);
}

void report_print_doc(FILE *f, const struct report *r, const char *format)
{
	const struct shape *s = report_shape(r);
	if (format && !strcmp(format, "yaml"))
		print_yaml(f, r, s);
	else
		print_json(f, r, s);
}
