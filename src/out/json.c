/* The report as its document (-o json|yaml), in the shape of its kind. */
#include <string.h>

#include "gpuctl/out.h"
#include "gpuctl/report.h"
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

cJSON *report_json(const struct report *r)
{
	const struct shape *s = report_shape(r);
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "apiVersion", REPORT_API_VERSION);
	cJSON_AddStringToObject(doc, "kind", r->kind ? r->kind : "Result");
	const cJSON *x;
	cJSON_ArrayForEach(x, r->extra)
		cJSON_AddItemToObject(doc, x->string, cJSON_Duplicate(x, 1));
	if (!r->no_items) {
		cJSON *arr = cJSON_AddArrayToObject(doc, s->items);
		for (size_t i = 0; i < r->n; i++)
			if (shape_is_item(s, &r->v[i]))
				cJSON_AddItemToArray(arr, s->item_keys ? keyed(&r->v[i], s->item_keys) : check_item(&r->v[i]));
	}
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
	return doc;
}

void report_print_doc(FILE *f, const struct report *r, const char *format)
{
	cJSON *doc = report_json(r);
	out_doc(f, doc, format);
	cJSON_Delete(doc);
}
