/* The report model: rows, statuses, counts, and the shape of each kind. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/report.h"
#include "gpuctl/sig.h"
#include "gpuctl/strpool.h"
#include "shape.h"

static const char *const status_names[REPORT_STATUS_COUNT] = {
	"pass", "warn", "fail", "skip", "changed", "unchanged", "failed", "skipped", "rolled-back", "rollback-failed",
	"created",
};

static const enum report_class status_classes[REPORT_STATUS_COUNT] = {
	REPORT_CLASS_OK,   REPORT_CLASS_WARN, REPORT_CLASS_FAIL, REPORT_CLASS_SKIP,
	REPORT_CLASS_OK,   REPORT_CLASS_OK,   REPORT_CLASS_FAIL, REPORT_CLASS_SKIP,
	REPORT_CLASS_FAIL, REPORT_CLASS_FAIL, REPORT_CLASS_OK,
};

const char *report_status_name(enum report_status st)
{
	return (unsigned)st < REPORT_STATUS_COUNT ? status_names[st] : "unknown";
}

enum report_class report_status_class(enum report_status st)
{
	return (unsigned)st < REPORT_STATUS_COUNT ? status_classes[st] : REPORT_CLASS_FAIL;
}

/* ---- shapes: the documents of the man pages ---- */

#define FAILED_CHANGE (STATUS_BIT(REPORT_FAILED) | STATUS_BIT(REPORT_ROLLED_BACK) | STATUS_BIT(REPORT_ROLLBACK_FAILED))

static const struct sum_key checks_summary[] = {
	{ "total", ALL_STATUSES },
	{ "passed", STATUS_BIT(REPORT_PASS) },
	{ "warnings", STATUS_BIT(REPORT_WARN) },
	{ "failed", STATUS_BIT(REPORT_FAIL) },
	{ "skipped", STATUS_BIT(REPORT_SKIP) },
	{ NULL, 0 },
};

/* gpuctl-deploy(1) */
static const char *const deploy_node_keys[] = { "name", "address", "result", "probe", "containerd", "error", NULL };
static const char *const deploy_rc_keys[] = { "name", "handler", "result", NULL };
static const struct sum_key deploy_summary[] = {
	{ "nodes", ALL_STATUSES },
	{ "changed", STATUS_BIT(REPORT_CHANGED) },
	{ "unchanged", STATUS_BIT(REPORT_UNCHANGED) },
	{ "failed", FAILED_CHANGE }, /* "counts the nodes failed and rolled-back" */
	{ NULL, 0 },
};

/* gpuctl-label(1), gpuctl-taint(1) */
static const char *const edit_keys[] = { "name", "result", "changes", "labels", "taints", "error", NULL };
static const struct sum_key edit_summary[] = {
	{ "total", ALL_STATUSES },
	{ "changed", STATUS_BIT(REPORT_CHANGED) },
	{ "unchanged", STATUS_BIT(REPORT_UNCHANGED) },
	{ "failed", FAILED_CHANGE },
	{ "skipped", STATUS_BIT(REPORT_SKIPPED) },
	{ NULL, 0 },
};

/* gpuctl-slice(1) */
static const char *const slice_node_keys[] = { "name", "result", "configKey", "resource", "before", "after",
					       "replicas", "strategy", "error", NULL };

static const struct sum_key generic_summary[] = {
	{ "total", ALL_STATUSES },
	{ "passed", STATUS_BIT(REPORT_PASS) | STATUS_BIT(REPORT_CHANGED) | STATUS_BIT(REPORT_UNCHANGED) |
			    STATUS_BIT(REPORT_CREATED) },
	{ "warnings", STATUS_BIT(REPORT_WARN) },
	{ "failed", STATUS_BIT(REPORT_FAIL) | FAILED_CHANGE },
	{ "skipped", STATUS_BIT(REPORT_SKIP) | STATUS_BIT(REPORT_SKIPPED) },
	{ NULL, 0 },
};

static const struct shape shapes[] = {
	{
		.kind = "ValidationResult", .items = "checks", .summary = checks_summary, .ok = 1,
		.layout = LAYOUT_TABLE,
	},
	{
		.kind = "DeployResult", .items = "nodes", .item_kind = "containerd", .item_keys = deploy_node_keys,
		.object_kind = "runtimeclass", .object_key = "runtimeClass", .object_keys = deploy_rc_keys,
		.summary = deploy_summary, .layout = LAYOUT_LINES, .sep = "  ", .summary_noun = "node(s)",
	},
	{
		.kind = "NodeLabelResult", .items = "nodes", .item_keys = edit_keys, .summary = edit_summary,
		.layout = LAYOUT_LINES, .pad = 1, .sep = " ", .summary_noun = "node(s)",
	},
	{
		.kind = "NodeTaintResult", .items = "nodes", .item_keys = edit_keys, .summary = edit_summary,
		.layout = LAYOUT_LINES, .pad = 1, .sep = " ", .summary_noun = "node(s)",
	},
	{
		.kind = "SliceResult", .items = "nodes", .item_kind = "node", .item_keys = slice_node_keys,
		.summary = edit_summary, .layout = LAYOUT_LINES, .pad = 1, .sep = " ", .summary_noun = "node(s)",
	},
	{
		/* gpuctl-smoke-test(1): a row per node check and per pod, as validate's checks */
		.kind = "SmokeTestReport", .items = "checks", .summary = checks_summary, .ok = 1,
		.layout = LAYOUT_TABLE,
	},
	{
		.kind = NULL, .items = "results", .summary = generic_summary, .ok = 1, .layout = LAYOUT_TABLE,
	},
};

const struct shape *report_shape(const struct report *r)
{
	const struct shape *s = shapes;
	for (; s->kind; s++)
		if (r->kind && !strcmp(s->kind, r->kind))
			return s;
	return s;
}

int shape_is_item(const struct shape *s, const struct report_row *row)
{
	return !s->item_kind || !strcmp(s->item_kind, row->kind);
}

/* Length of the valid UTF-8 sequence at p, or 0 when it is not one
 * (overlong forms, surrogates and code points past U+10FFFF are not). */
size_t report_utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Whether s is UTF-8 throughout (most texts are: they need no copy). */
static int utf8_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = report_utf8_len(p);
		if (!n)
			return 0;
		p += n;
	}
	return 1;
}

/* s appended to b with what is not UTF-8 replaced by U+FFFD: output that
 * a JSON or YAML reader (or a CI system reading JUnit) can always decode. */
static void add_text(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
		size_t n = report_utf8_len(p);
		if (n) {
			buf_add(b, p, n);
			p += n;
		} else {
			buf_adds(b, "\xef\xbf\xbd");
			p++;
		}
	}
}

/* A row's own copy of s (rows built apart). */
static char *text_dup(const char *s)
{
	struct buf b = BUF_INIT;
	add_text(&b, s);
	return buf_detach(&b);
}

/* ---- the model ---- */

void report_init(struct report *r, const char *kind, const char *command)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->command = command;
}

struct strpool *report_pool(struct report *r)
{
	if (!r->pool)
		r->pool = strpool_new();
	return r->pool;
}

int report_adopt_pool(struct report *r, struct strpool *p)
{
	if (strpool_count(r->pool))
		return 0;
	strpool_free(r->pool);
	r->pool = p;
	return 1;
}

/* The pool's copy of s made UTF-8; NULL stays NULL. */
static const char *pooled(struct report *r, const char *s)
{
	if (!s)
		return NULL;
	if (utf8_ok(s))
		return strpool_intern(report_pool(r), s);
	struct buf b = BUF_INIT;
	add_text(&b, s);
	const char *t = strpool_intern_n(report_pool(r), b.s, b.len);
	buf_release(&b);
	return t;
}

/* s itself when it is UTF-8 (it lives as long as the report), else the
 * pool's UTF-8 copy. */
static const char *as_text(struct report *r, const char *s)
{
	return !s || utf8_ok(s) ? s : pooled(r, s);
}

void report_row_release(struct report_row *row)
{
	if (!row)
		return;
	/* a row built apart owns its texts (report_row_set) */
	free((char *)row->target);
	free((char *)row->kind);
	free((char *)row->message);
	free((char *)row->hint);
	free(row->object);
	cJSON_Delete(row->details);
	memset(row, 0, sizeof(*row));
}

void report_release(struct report *r)
{
	if (!r)
		return;
	/* the texts are the pool's */
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].object);
		cJSON_Delete(r->v[i].details);
	}
	free(r->v);
	cJSON_Delete(r->extra);
	strpool_free(r->pool);
	memset(r, 0, sizeof(*r));
}

void report_row_set(struct report_row *row, const char *target, const char *kind, enum report_status st,
		    const char *hint, const char *fmt, ...)
{
	report_row_release(row);
	row->target = text_dup(target);
	row->kind = text_dup(kind);
	row->status = st;
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	row->message = text_dup(b.s);
	buf_release(&b);
	row->hint = hint ? text_dup(hint) : NULL;
}

void report_row_details(struct report_row *row, cJSON *details)
{
	cJSON_Delete(row->details);
	row->details = details;
}

void report_reserve(struct report *r, size_t n)
{
	if (r->cap - r->n >= n)
		return;
	r->cap = r->n + n;
	r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
}

static struct report_row *grow(struct report *r)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	struct report_row *row = &r->v[r->n++];
	memset(row, 0, sizeof(*row));
	return row;
}

struct report_row *report_add(struct report *r, const char *target, const char *kind, enum report_status st,
			      const char *hint, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	struct report_row *row = grow(r);
	row->target = pooled(r, target ? target : "");
	row->kind = pooled(r, kind ? kind : "");
	row->status = st;
	row->message = pooled(r, b.s);
	row->hint = pooled(r, hint);
	buf_release(&b);
	return row;
}

struct report_row *report_add_texts(struct report *r, const char *target, const char *kind, enum report_status st,
				    const char *hint, const char *message)
{
	struct report_row *row = grow(r);
	row->target = target ? as_text(r, target) : "";
	row->kind = kind ? as_text(r, kind) : "";
	row->status = st;
	row->message = message ? as_text(r, message) : "";
	row->hint = as_text(r, hint);
	return row;
}

void report_add_row(struct report *r, struct report_row *row)
{
	struct report_row *dst = grow(r);
	dst->target = pooled(r, row->target ? row->target : "");
	dst->kind = pooled(r, row->kind ? row->kind : "");
	dst->message = pooled(r, row->message ? row->message : "");
	dst->hint = pooled(r, row->hint);
	dst->object = row->object;
	dst->details = row->details;
	dst->seconds = row->seconds;
	dst->status = row->status;
	dst->code = row->code;
	row->object = NULL;
	row->details = NULL;
	report_row_release(row);
}

void report_set(struct report *r, const char *key, cJSON *value)
{
	if (!r->extra)
		r->extra = cJSON_CreateObject();
	if (cJSON_GetObjectItemCaseSensitive(r->extra, key))
		cJSON_ReplaceItemInObjectCaseSensitive(r->extra, key, value);
	else
		cJSON_AddItemToObject(r->extra, key, value);
}

void report_count(const struct report *r, size_t by_status[REPORT_STATUS_COUNT])
{
	const struct shape *s = report_shape(r);
	memset(by_status, 0, REPORT_STATUS_COUNT * sizeof(*by_status));
	for (size_t i = 0; i < r->n; i++)
		if (shape_is_item(s, &r->v[i]) && (unsigned)r->v[i].status < REPORT_STATUS_COUNT)
			by_status[r->v[i].status]++;
}

void report_count_classes(const struct report *r, size_t by_class[4])
{
	size_t n[REPORT_STATUS_COUNT];
	report_count(r, n);
	memset(by_class, 0, 4 * sizeof(*by_class));
	for (int st = 0; st < REPORT_STATUS_COUNT; st++)
		by_class[status_classes[st]] += n[st];
}

size_t report_failed(const struct report *r)
{
	size_t c[4];
	report_count_classes(r, c);
	return c[REPORT_CLASS_FAIL];
}

cJSON *report_error_json(const struct gerr *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "reason", gerr_code_name(e->code));
	if (e->http_status)
		cJSON_AddNumberToObject(o, "httpStatus", (double)e->http_status);
	cJSON_AddStringToObject(o, "message", e->msg ? e->msg : "");
	if (e->hint)
		cJSON_AddStringToObject(o, "hint", e->hint);
	return o;
}

int report_exit_status(const struct report *r, const struct gerr *err)
{
	if (err && err->code != GERR_OK)
		return gerr_exit_status(err, 0);
	size_t failed = r ? report_failed(r) : 0;
	int access = 0;
	for (size_t i = 0; r && i < r->n; i++) {
		struct gerr e = { .code = r->v[i].code };
		access |= report_status_class(r->v[i].status) == REPORT_CLASS_FAIL && gerr_is_cluster_access(&e);
	}
	if (failed)
		return access ? 3 : 1;
	return sig_interrupted() ? 1 : 0;
}
