#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "gpuctl/yaml.h"

#define MAX_DEPTH 128
/* Nodes that anchors, aliases and merge keys may copy, together: a small
 * document of nested anchors or aliases (a "billion laughs") must not grow
 * to gigabytes. */
#define MAX_ALIAS_NODES 100000
/* Nodes of one stream, copies included. */
#define MAX_NODES 4000000

struct anchor {
	char *name;
	cJSON *node; /* owned copy */
};

struct ystate {
	yaml_parser_t p;
	const char *source;
	struct anchor *anchors;
	size_t nanchors;
	size_t alias_budget;
	size_t nodes;
	struct gerr *err;
};

static int parse_error(struct ystate *st)
{
	const char *problem = st->p.problem ? st->p.problem : "malformed YAML";
	size_t line = st->p.problem_mark.line + 1, col = st->p.problem_mark.column + 1;
	if (st->p.context)
		return gerr_set(st->err, GERR_PARSE, "%s:%zu:%zu: %s %s", st->source, line, col,
				problem, st->p.context);
	return gerr_set(st->err, GERR_PARSE, "%s:%zu:%zu: %s", st->source, line, col, problem);
}

static int next_event(struct ystate *st, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&st->p, ev))
		return parse_error(st);
	return 0;
}

static int is_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o'))
		return 0; /* keep hex/octal as strings: rare and ambiguous */
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

static int is_float(const char *s)
{
	/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
	const char *p = s;
	int digits = 0;
	if (*p == '-' || *p == '+')
		p++;
	while (isdigit((unsigned char)*p)) {
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			p++;
			digits++;
		}
	}
	if (!digits)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0';
}

static cJSON *scalar_to_json(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	if (tag && strcmp(tag, "tag:yaml.org,2002:str") == 0)
		return cJSON_CreateString(v);
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return cJSON_CreateString(v);
	if (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL"))
		return cJSON_CreateNull();
	if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
		return cJSON_CreateTrue();
	if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
		return cJSON_CreateFalse();
	if (is_int(v) || is_float(v)) {
		/* Integers beyond double precision stay strings so nothing is lost. */
		if (is_int(v) && strlen(v) > 15)
			return cJSON_CreateString(v);
		double d = strtod(v, NULL);
		/* 1e400: JSON has no infinity; keep what was written */
		if (!isfinite(d))
			return cJSON_CreateString(v);
		return cJSON_CreateNumber(d);
	}
	return cJSON_CreateString(v);
}

static size_t count_nodes(const cJSON *n)
{
	size_t c = 1;
	for (const cJSON *k = n->child; k; k = k->next)
		c += count_nodes(k);
	return c;
}

/* Account for copying n nodes (an anchor's copy, an alias, a merge). */
static int spend(struct ystate *st, size_t n, size_t line)
{
	if (n > st->alias_budget || st->nodes + n > MAX_NODES)
		return gerr_set(st->err, GERR_PARSE,
				"%s:%zu: anchors and aliases expand to too many nodes (more than %d copied)",
				st->source, line, MAX_ALIAS_NODES);
	st->alias_budget -= n;
	st->nodes += n;
	return 0;
}

/* One node of the input itself. */
static int count_one(struct ystate *st, size_t line)
{
	if (++st->nodes > MAX_NODES)
		return gerr_set(st->err, GERR_PARSE, "%s:%zu: more than %d nodes", st->source, line, MAX_NODES);
	return 0;
}

static int remember_anchor(struct ystate *st, const yaml_char_t *anchor, const cJSON *node, size_t line)
{
	if (!anchor)
		return 0;
	/* the copy counts like an alias: nested anchors copy each level again */
	if (spend(st, count_nodes(node), line) < 0)
		return -1;
	st->anchors = xrealloc(st->anchors, (st->nanchors + 1) * sizeof(*st->anchors));
	st->anchors[st->nanchors].name = xstrdup((const char *)anchor);
	st->anchors[st->nanchors].node = cJSON_Duplicate(node, 1);
	st->nanchors++;
	return 0;
}

static int parse_node(struct ystate *st, yaml_event_t *ev, int depth, cJSON **out);

static int parse_mapping(struct ystate *st, int depth, cJSON **out)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON *merged = cJSON_CreateObject(); /* from "<<" keys; explicit keys win */
	for (;;) {
		yaml_event_t kev;
		if (next_event(st, &kev) < 0)
			goto fail;
		if (kev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&kev);
			break;
		}
		size_t kline = kev.start_mark.line + 1;
		if (kev.type != YAML_SCALAR_EVENT) {
			yaml_event_delete(&kev);
			gerr_set(st->err, GERR_PARSE, "%s:%zu: mapping keys must be scalars", st->source, kline);
			goto fail;
		}
		char *key = xstrdup((const char *)kev.data.scalar.value);
		yaml_event_delete(&kev);
		yaml_event_t vev;
		if (next_event(st, &vev) < 0) {
			free(key);
			goto fail;
		}
		cJSON *val = NULL;
		int rc = parse_node(st, &vev, depth + 1, &val);
		yaml_event_delete(&vev);
		if (rc < 0) {
			free(key);
			goto fail;
		}
		if (!strcmp(key, "<<") && cJSON_IsObject(val)) {
			/* merge key: its fields apply where no explicit key says otherwise;
			 * they are copied twice (into merged, then into obj) */
			if (spend(st, 2 * count_nodes(val), kline) < 0) {
				cJSON_Delete(val);
				free(key);
				goto fail;
			}
			for (cJSON *c = val->child; c; c = c->next)
				if (!cJSON_GetObjectItemCaseSensitive(merged, c->string))
					cJSON_AddItemToObject(merged, c->string, cJSON_Duplicate(c, 1));
			cJSON_Delete(val);
		} else if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
			cJSON_Delete(val);
			gerr_set(st->err, GERR_PARSE, "%s:%zu: duplicate key \"%s\"", st->source, kline, key);
			free(key);
			goto fail;
		} else {
			cJSON_AddItemToObject(obj, key, val);
		}
		free(key);
	}
	for (cJSON *c = merged->child; c; c = c->next)
		if (!cJSON_GetObjectItemCaseSensitive(obj, c->string))
			cJSON_AddItemToObject(obj, c->string, cJSON_Duplicate(c, 1));
	cJSON_Delete(merged);
	*out = obj;
	return 0;
fail:
	cJSON_Delete(merged);
	cJSON_Delete(obj);
	return -1;
}

static int parse_sequence(struct ystate *st, int depth, cJSON **out)
{
	cJSON *arr = cJSON_CreateArray();
	for (;;) {
		yaml_event_t ev;
		if (next_event(st, &ev) < 0)
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		cJSON *item = NULL;
		int rc = parse_node(st, &ev, depth + 1, &item);
		yaml_event_delete(&ev);
		if (rc < 0)
			goto fail;
		cJSON_AddItemToArray(arr, item);
	}
	*out = arr;
	return 0;
fail:
	cJSON_Delete(arr);
	return -1;
}

static int parse_node(struct ystate *st, yaml_event_t *ev, int depth, cJSON **out)
{
	if (depth > MAX_DEPTH)
		return gerr_set(st->err, GERR_PARSE, "%s:%zu: nesting deeper than %d levels", st->source,
				ev->start_mark.line + 1, MAX_DEPTH);
	size_t line = ev->start_mark.line + 1;
	if (ev->type != YAML_ALIAS_EVENT && count_one(st, line) < 0)
		return -1;
	const yaml_char_t *anchor = NULL;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		*out = scalar_to_json(ev);
		anchor = ev->data.scalar.anchor;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		if (parse_mapping(st, depth, out) < 0)
			return -1;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		if (parse_sequence(st, depth, out) < 0)
			return -1;
		break;
	case YAML_ALIAS_EVENT: {
		const char *name = (const char *)ev->data.alias.anchor;
		for (size_t i = st->nanchors; i-- > 0;) {
			if (!strcmp(st->anchors[i].name, name)) {
				if (spend(st, count_nodes(st->anchors[i].node), line) < 0)
					return -1;
				*out = cJSON_Duplicate(st->anchors[i].node, 1);
				return 0;
			}
		}
		return gerr_set(st->err, GERR_PARSE, "%s:%zu: unknown alias *%s", st->source,
				ev->start_mark.line + 1, name);
	}
	default:
		return gerr_set(st->err, GERR_PARSE, "%s:%zu: unexpected YAML event", st->source,
				ev->start_mark.line + 1);
	}
	if (remember_anchor(st, anchor, *out, line) < 0) {
		cJSON_Delete(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static void free_anchors(struct ystate *st)
{
	for (size_t i = 0; i < st->nanchors; i++) {
		free(st->anchors[i].name);
		cJSON_Delete(st->anchors[i].node);
	}
	free(st->anchors);
	st->anchors = NULL;
	st->nanchors = 0;
}

int yaml_parse_all(const char *text, size_t len, const char *source, cJSON **out, struct gerr *err)
{
	struct ystate st = { .source = source ? source : "<input>", .err = err,
			     .alias_budget = MAX_ALIAS_NODES };
	if (!yaml_parser_initialize(&st.p))
		return gerr_set(err, GERR_INTERNAL, "cannot initialise YAML parser");
	yaml_parser_set_input_string(&st.p, (const unsigned char *)text, len);
	cJSON *docs = cJSON_CreateArray();
	int rc = -1;
	for (;;) {
		yaml_event_t ev;
		if (next_event(&st, &ev) < 0)
			goto out;
		yaml_event_type_t t = ev.type;
		yaml_event_delete(&ev);
		if (t == YAML_STREAM_END_EVENT)
			break;
		if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_END_EVENT)
			continue;
		if (t != YAML_DOCUMENT_START_EVENT) {
			gerr_set(err, GERR_PARSE, "%s: unexpected YAML structure", st.source);
			goto out;
		}
		yaml_event_t nev;
		if (next_event(&st, &nev) < 0)
			goto out;
		cJSON *node = NULL;
		if (nev.type == YAML_DOCUMENT_END_EVENT) {
			node = cJSON_CreateNull();
		} else if (parse_node(&st, &nev, 0, &node) < 0) {
			yaml_event_delete(&nev);
			goto out;
		}
		yaml_event_delete(&nev);
		cJSON_AddItemToArray(docs, node);
		free_anchors(&st);
	}
	rc = 0;
out:
	free_anchors(&st);
	yaml_parser_delete(&st.p);
	if (rc < 0) {
		cJSON_Delete(docs);
		return -1;
	}
	*out = docs;
	return 0;
}

int yaml_parse(const char *text, size_t len, const char *source, cJSON **out, struct gerr *err)
{
	cJSON *docs = NULL;
	if (yaml_parse_all(text, len, source, &docs, err) < 0)
		return -1;
	int n = cJSON_GetArraySize(docs);
	if (n > 1) {
		cJSON_Delete(docs);
		return gerr_set(err, GERR_PARSE, "%s: expected one YAML document, found %d",
				source ? source : "<input>", n);
	}
	if (n == 0) {
		*out = cJSON_CreateNull();
	} else {
		*out = cJSON_DetachItemFromArray(docs, 0);
	}
	cJSON_Delete(docs);
	return 0;
}

/* ---- emitter ---- */

/* Whether a plain s could be read as anything but a string by a YAML 1.1
 * reader (Go's yaml.v2, PyYAML: 0x1F, 0o17, 017, 0b101, 1_000, 1:20, 1.2.3,
 * .inf, yes/no/on/off/y/n, 2026-01-02) or a YAML 1.2 one (1e5, 0o17).
 * Over-quoting is harmless: any string starting like a number and made of
 * number, date and time characters only is quoted. */
static int looks_typed(const char *s)
{
	static const char *const words[] = { "true", "false", "null", "~", "yes", "no", "on", "off", "y", "n",
					     ".inf", "+.inf", "-.inf", ".nan", "<<", "=", NULL };
	for (int i = 0; words[i]; i++)
		if (!strcasecmp(s, words[i]))
			return 1;
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (*p == '.')
		p++;
	if (!isdigit((unsigned char)*p))
		return 0;
	for (p = s; *p; p++)
		if (!strchr("0123456789abcdefABCDEFxXoO_.:+-tTzZ ", *p))
			return 0;
	return 1;
}

/* Whether the character at s is one a YAML reader would not take raw
 * inside double quotes (a line break it folds, a control, a BOM, bytes that
 * are not UTF-8): then esc gets its escape.  *len: the bytes it takes. */
static int special_char(const unsigned char *s, char esc[16], size_t *len)
{
	unsigned c = s[0];
	*len = 1;
	if (c < 0x20 || c == 0x7f) {
		snprintf(esc, 16, "\\x%02x", c);
		return 1;
	}
	if (c < 0x80)
		return 0;
	size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
	unsigned cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			n = 0;
			break;
		}
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	static const unsigned min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (!n || cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		/* not UTF-8: the byte as the code point of the same value */
		snprintf(esc, 16, "\\x%02x", c);
		return 1;
	}
	*len = n;
	if (cp == 0x85)
		snprintf(esc, 16, "\\N");
	else if (cp == 0x2028)
		snprintf(esc, 16, "\\L");
	else if (cp == 0x2029)
		snprintf(esc, 16, "\\P");
	else if (cp < 0xa0 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
		snprintf(esc, 16, "\\u%04x", cp);
	else
		return 0;
	return 1;
}

static int needs_quotes(const char *s)
{
	if (!*s)
		return 1;
	if (is_int(s) || is_float(s) || looks_typed(s))
		return 1;
	if (strchr("-?:,[]{}#&*!|>'\"%@`~ ", s[0]))
		return 1;
	size_t n = strlen(s);
	if (s[n - 1] == ' ' || s[n - 1] == ':')
		return 1;
	for (const char *p = s; *p; p += n) {
		char esc[16];
		if (special_char((const unsigned char *)p, esc, &n))
			return 1;
		if (*p == ':' && (p[1] == ' ' || p[1] == '\0'))
			return 1;
		if (*p == '#' && p > s && p[-1] == ' ')
			return 1;
	}
	return 0;
}

static void emit_string(const char *s, struct buf *b)
{
	if (!needs_quotes(s)) {
		buf_adds(b, s);
		return;
	}
	buf_addc(b, '"');
	for (const char *p = s; *p;) {
		unsigned char c = (unsigned char)*p;
		char esc[16];
		size_t n = 1;
		if (c == '"') {
			buf_adds(b, "\\\"");
		} else if (c == '\\') {
			buf_adds(b, "\\\\");
		} else if (c == '\n') {
			buf_adds(b, "\\n");
		} else if (c == '\t') {
			buf_adds(b, "\\t");
		} else if (c == '\r') {
			buf_adds(b, "\\r");
		} else if (special_char((const unsigned char *)p, esc, &n)) {
			buf_adds(b, esc);
		} else {
			buf_add(b, p, n);
		}
		p += n;
	}
	buf_addc(b, '"');
}

static void emit_scalar(const cJSON *n, struct buf *b)
{
	if (cJSON_IsNull(n)) {
		buf_adds(b, "null");
	} else if (cJSON_IsBool(n)) {
		buf_adds(b, cJSON_IsTrue(n) ? "true" : "false");
	} else if (cJSON_IsNumber(n)) {
		double d = n->valuedouble;
		if (!isfinite(d)) {
			buf_adds(b, "null"); /* as cJSON writes it */
		} else if (d == floor(d) && fabs(d) < 1e15) {
			buf_addf(b, "%.0f", d);
		} else {
			/* 1e15 prints as 1000000000000000, which reads back as a
			 * string (integers of more than 15 digits stay strings) */
			size_t at = b->len;
			buf_addf(b, "%.17g", d);
			if (!strpbrk(b->s + at, ".eE"))
				buf_adds(b, ".0");
		}
	} else if (cJSON_IsString(n)) {
		emit_string(n->valuestring, b);
	} else {
		buf_adds(b, "null");
	}
}

static int is_collection(const cJSON *n)
{
	return (cJSON_IsObject(n) || cJSON_IsArray(n)) && n->child;
}

static void indent(struct buf *b, int level)
{
	for (int i = 0; i < level; i++)
		buf_adds(b, "  ");
}

static void emit_node(const cJSON *n, int level, struct buf *b);

static void emit_value_after_key(const cJSON *v, int level, struct buf *b)
{
	if (is_collection(v)) {
		buf_addc(b, '\n');
		emit_node(v, cJSON_IsArray(v) ? level : level + 1, b);
	} else if (cJSON_IsObject(v)) {
		buf_adds(b, " {}\n");
	} else if (cJSON_IsArray(v)) {
		buf_adds(b, " []\n");
	} else {
		buf_addc(b, ' ');
		emit_scalar(v, b);
		buf_addc(b, '\n');
	}
}

static void emit_node(const cJSON *n, int level, struct buf *b)
{
	if (cJSON_IsObject(n)) {
		for (const cJSON *c = n->child; c; c = c->next) {
			indent(b, level);
			emit_string(c->string, b);
			buf_addc(b, ':');
			emit_value_after_key(c, level, b);
		}
	} else if (cJSON_IsArray(n)) {
		for (const cJSON *c = n->child; c; c = c->next) {
			indent(b, level);
			buf_adds(b, "-");
			if (cJSON_IsObject(c) && c->child) {
				/* first key on the dash line, the rest indented under it */
				int first = 1;
				for (const cJSON *k = c->child; k; k = k->next) {
					if (first)
						buf_addc(b, ' ');
					else
						indent(b, level + 1);
					first = 0;
					emit_string(k->string, b);
					buf_addc(b, ':');
					emit_value_after_key(k, level + 1, b);
				}
			} else if (cJSON_IsArray(c) && c->child) {
				buf_addc(b, '\n');
				emit_node(c, level + 1, b);
			} else {
				emit_value_after_key(c, level, b);
			}
		}
	} else {
		indent(b, level);
		emit_scalar(n, b);
		buf_addc(b, '\n');
	}
}

void yaml_emit(const cJSON *node, struct buf *b)
{
	if (cJSON_IsObject(node) && !node->child) {
		buf_adds(b, "{}\n");
		return;
	}
	if (cJSON_IsArray(node) && !node->child) {
		buf_adds(b, "[]\n");
		return;
	}
	emit_node(node, 0, b);
}
