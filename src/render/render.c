/* The template engine: a template is cut into text and {{ actions }}, the
 * whitespace rules are applied to the text, the actions are parsed into a
 * tree (so a syntax error is found whatever the values), then the tree runs
 * against the values.  See render.h for the language. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpuctl/render.h"
#include "gpuctl/yaml.h"

/* ---- encoders ---- */

/* Decode one UTF-8 sequence at s (n bytes left): its code point, or -1 when
 * malformed (overlong, surrogate, beyond U+10FFFF, truncated). */
static long utf8_next(const unsigned char *s, size_t n, size_t *used)
{
	unsigned char c = s[0];
	long cp;
	size_t k;
	if (c < 0x80) {
		*used = 1;
		return c;
	} else if ((c & 0xe0) == 0xc0) {
		cp = c & 0x1f;
		k = 2;
	} else if ((c & 0xf0) == 0xe0) {
		cp = c & 0x0f;
		k = 3;
	} else if ((c & 0xf8) == 0xf0) {
		cp = c & 0x07;
		k = 4;
	} else {
		return -1;
	}
	if (k > n)
		return -1;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	static const long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*used = k;
	return cp;
}

static int utf8_check(const char *s, size_t len, struct gerr *err)
{
	size_t used;
	for (size_t i = 0; i < len; i += used)
		if (utf8_next((const unsigned char *)s + i, len - i, &used) < 0)
			return gerr_set(err, GERR_INVALID, "the value is not valid UTF-8 (byte %zu)", i);
	return 0;
}

static int plain_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == '/' || c == '-' || c == ' ';
}

/* Whether s can be written as a plain YAML scalar that every YAML reader
 * (1.1 and 1.2, flow or block context) reads back as this very string. */
static int yaml_plain_ok(const char *s, size_t len)
{
	static const char *const special[] = { "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
					       NULL };
	if (!len)
		return 0;
	char c = s[0];
	if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '/'))
		return 0;
	if (s[len - 1] == ' ')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!plain_char(s[i]) || (s[i] == ' ' && i + 1 < len && s[i + 1] == ' '))
			return 0;
	for (int i = 0; special[i]; i++)
		if (strlen(special[i]) == len && !strncasecmp(s, special[i], len))
			return 0;
	return 1;
}

int render_yaml_string(const char *s, size_t len, struct buf *out, struct gerr *err)
{
	if (utf8_check(s, len, err) < 0)
		return -1;
	if (yaml_plain_ok(s, len)) {
		buf_add(out, s, len);
		return 0;
	}
	buf_addc(out, '"');
	size_t used;
	for (size_t i = 0; i < len; i += used) {
		long cp = utf8_next((const unsigned char *)s + i, len - i, &used);
		switch (cp) {
		case '"': buf_adds(out, "\\\""); break;
		case '\\': buf_adds(out, "\\\\"); break;
		case '\n': buf_adds(out, "\\n"); break;
		case '\t': buf_adds(out, "\\t"); break;
		case '\r': buf_adds(out, "\\r"); break;
		case 0x85: buf_adds(out, "\\N"); break;      /* YAML line breaks: a reader would fold them */
		case 0x2028: buf_adds(out, "\\L"); break;
		case 0x2029: buf_adds(out, "\\P"); break;
		default:
			if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
				buf_addf(out, "\\x%02lX", cp);
			else if (cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
				buf_addf(out, "\\u%04lX", cp); /* a BOM or a non-character: not printable */
			else
				buf_add(out, s + i, used);
		}
	}
	buf_addc(out, '"');
	return 0;
}

int render_toml_string(const char *s, size_t len, struct buf *out, struct gerr *err)
{
	if (utf8_check(s, len, err) < 0)
		return -1;
	buf_addc(out, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': buf_adds(out, "\\\""); break;
		case '\\': buf_adds(out, "\\\\"); break;
		case '\b': buf_adds(out, "\\b"); break;
		case '\t': buf_adds(out, "\\t"); break;
		case '\n': buf_adds(out, "\\n"); break;
		case '\f': buf_adds(out, "\\f"); break;
		case '\r': buf_adds(out, "\\r"); break;
		default:
			if (c < 0x20 || c == 0x7f)
				buf_addf(out, "\\u%04X", c);
			else
				buf_addc(out, (char)c);
		}
	}
	buf_addc(out, '"');
	return 0;
}

/* A number as YAML and TOML both read it: an integer when it is one (and
 * exact), else the shortest text that reads back as the same double. */
static int add_number(double d, int toml, struct buf *out, struct gerr *err)
{
	if (!isfinite(d)) {
		if (!toml)
			return gerr_set(err, GERR_INVALID, "the value is not a finite number");
		buf_adds(out, isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
		return 0;
	}
	if (d == trunc(d) && fabs(d) < 9007199254740992.0) {
		buf_addf(out, "%lld", (long long)d);
		return 0;
	}
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%.15g", d);
	if (strtod(tmp, NULL) != d)
		snprintf(tmp, sizeof(tmp), "%.17g", d);
	buf_adds(out, tmp);
	return 0;
}

static int is_bare_toml_key(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-'))
			return 0;
	return 1;
}

#define MAX_VALUE_DEPTH 64

static int toml_value(const cJSON *v, int depth, struct buf *out, struct gerr *err)
{
	if (depth > MAX_VALUE_DEPTH)
		return gerr_set(err, GERR_INVALID, "the value nests deeper than %d", MAX_VALUE_DEPTH);
	if (cJSON_IsString(v))
		return render_toml_string(v->valuestring, strlen(v->valuestring), out, err);
	if (cJSON_IsNumber(v))
		return add_number(v->valuedouble, 1, out, err);
	if (cJSON_IsBool(v)) {
		buf_adds(out, cJSON_IsTrue(v) ? "true" : "false");
		return 0;
	}
	if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
		int obj = cJSON_IsObject(v);
		buf_adds(out, obj ? "{" : "[");
		for (const cJSON *c = v->child; c; c = c->next) {
			buf_adds(out, c == v->child ? (obj ? " " : "") : ", ");
			if (obj) {
				if (is_bare_toml_key(c->string))
					buf_adds(out, c->string);
				else if (render_toml_string(c->string, strlen(c->string), out, err) < 0)
					return -1;
				buf_adds(out, " = ");
			}
			if (toml_value(c, depth + 1, out, err) < 0)
				return -1;
		}
		buf_adds(out, obj ? (v->child ? " }" : "}") : "]");
		return 0;
	}
	return gerr_set(err, GERR_INVALID, "TOML has no null");
}

static int yaml_scalar(const cJSON *v, struct buf *out, struct gerr *err)
{
	if (cJSON_IsString(v))
		return render_yaml_string(v->valuestring, strlen(v->valuestring), out, err);
	if (cJSON_IsNumber(v))
		return add_number(v->valuedouble, 0, out, err);
	if (cJSON_IsBool(v))
		buf_adds(out, cJSON_IsTrue(v) ? "true" : "false");
	else if (cJSON_IsObject(v))
		buf_adds(out, "{}");
	else if (cJSON_IsArray(v))
		buf_adds(out, "[]");
	else
		buf_adds(out, "null");
	return 0;
}

static int is_collection(const cJSON *v)
{
	return (cJSON_IsObject(v) || cJSON_IsArray(v)) && v->child;
}

static void spaces(struct buf *out, int n)
{
	for (int i = 0; i < n; i++)
		buf_addc(out, ' ');
}

/* Block YAML for v: its first line where the output stands, every other
 * line indented by level; no newline at the end. */
static int yaml_block(const cJSON *v, int level, int depth, struct buf *out, struct gerr *err)
{
	if (depth > MAX_VALUE_DEPTH)
		return gerr_set(err, GERR_INVALID, "the value nests deeper than %d", MAX_VALUE_DEPTH);
	if (!is_collection(v))
		return yaml_scalar(v, out, err);
	for (const cJSON *c = v->child; c; c = c->next) {
		if (c != v->child) {
			buf_addc(out, '\n');
			spaces(out, level);
		}
		if (cJSON_IsArray(v)) {
			buf_adds(out, "- ");
			if (yaml_block(c, level + 2, depth + 1, out, err) < 0)
				return -1;
			continue;
		}
		if (render_yaml_string(c->string, strlen(c->string), out, err) < 0)
			return -1;
		buf_addc(out, ':');
		if (is_collection(c)) {
			buf_addc(out, '\n');
			spaces(out, level + 2);
			if (yaml_block(c, level + 2, depth + 1, out, err) < 0)
				return -1;
		} else {
			buf_addc(out, ' ');
			if (yaml_scalar(c, out, err) < 0)
				return -1;
		}
	}
	return 0;
}

/* ---- the template tree ---- */

enum filter_kind { F_YAML, F_TOML, F_JSON, F_RAW, F_INDENT };

struct filter {
	enum filter_kind kind;
	int arg;
};

struct expr {
	int neg;          /* not X */
	const char *path; /* ".a.b", "$.a", "." or "$" in the source; NULL for a literal */
	size_t plen;
	char *str;        /* a literal's value (owned) */
};

enum node_kind { N_TEXT, N_OUT, N_IF, N_RANGE };

struct node {
	enum node_kind kind;
	int line;
	const char *text; /* N_TEXT: in the source */
	size_t len;
	struct expr x;
	struct filter *f;
	size_t nf;
	struct node *body, *alt; /* if: then/else; range: body/else */
	struct node *next;
};

static void nodes_free(struct node *n)
{
	while (n) {
		struct node *next = n->next;
		nodes_free(n->body);
		nodes_free(n->alt);
		free(n->x.str);
		free(n->f);
		free(n);
		n = next;
	}
}

/* ---- cutting the source ---- */

enum block_kind { B_NONE, B_IF, B_ELSE, B_END, B_RANGE, B_COMMENT };

struct seg {
	int action;
	size_t a, b;    /* text: the bytes kept; action: the inside, between the braces and trim marks */
	size_t a0, b0;  /* text: as written */
	int line;
	int trim_l, trim_r;
	enum block_kind block;
};

struct tmpl {
	const char *name;
	const char *src;
	size_t len;
	struct seg *segs;
	size_t nsegs, cap;
	size_t cur; /* parser position */
};

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void seg_push(struct tmpl *t, struct seg s)
{
	if (t->nsegs == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->segs = xrealloc(t->segs, t->cap * sizeof(*t->segs));
	}
	t->segs[t->nsegs++] = s;
}

static int word_is(const char *s, size_t n, const char *w)
{
	size_t k = strlen(w);
	return n >= k && !strncmp(s, w, k) && (n == k || !((s[k] >= 'a' && s[k] <= 'z') || s[k] == '_'));
}

static enum block_kind block_of(const char *s, size_t n)
{
	while (n && is_ws(*s)) {
		s++;
		n--;
	}
	if (n && *s == '#')
		return B_COMMENT;
	if (word_is(s, n, "if"))
		return B_IF;
	if (word_is(s, n, "else"))
		return B_ELSE;
	if (word_is(s, n, "end"))
		return B_END;
	if (word_is(s, n, "range"))
		return B_RANGE;
	return B_NONE;
}

static int cut(struct tmpl *t, struct gerr *err)
{
	const char *s = t->src;
	size_t n = t->len, p = 0;
	int line = 1;
	while (p <= n) {
		const char *open = NULL;
		for (size_t i = p; i + 1 < n; i++)
			if (s[i] == '{' && s[i + 1] == '{') {
				open = s + i;
				break;
			}
		size_t q = open ? (size_t)(open - s) : n;
		struct seg txt = { .a = p, .b = q, .a0 = p, .b0 = q, .line = line };
		seg_push(t, txt);
		for (size_t i = p; i < q; i++)
			line += s[i] == '\n';
		if (!open)
			break;
		struct seg act = { .action = 1, .line = line };
		size_t i = q + 2;
		if (i + 1 < n && s[i] == '-' && is_ws(s[i + 1])) {
			act.trim_l = 1;
			i++;
		}
		act.a = i;
		size_t j = i;
		while (j < n && is_ws(s[j]))
			j++;
		int comment = j < n && s[j] == '#';
		size_t close = SIZE_MAX;
		while (j < n) {
			if (s[j] == '"' && !comment) {
				for (j++; j < n && s[j] != '"'; j++)
					if (s[j] == '\\')
						j++;
				if (j >= n)
					return gerr_set(err, GERR_PARSE, "%s:%d: unterminated string in {{ }}", t->name,
							act.line);
				j++;
				continue;
			}
			if (j + 1 < n && s[j] == '}' && s[j + 1] == '}') {
				close = j;
				break;
			}
			j++;
		}
		if (close == SIZE_MAX)
			return gerr_set(err, GERR_PARSE, "%s:%d: unclosed action: {{ without }}", t->name, act.line);
		act.b = close;
		if (close > act.a + 1 && s[close - 1] == '-' && is_ws(s[close - 2])) {
			act.trim_r = 1;
			act.b = close - 1;
		}
		act.block = block_of(s + act.a, act.b - act.a);
		seg_push(t, act);
		for (size_t k = q; k < close; k++)
			line += s[k] == '\n';
		p = close + 2;
	}
	/* a line holding a block tag and blanks only disappears, newline included */
	for (size_t k = 1; k < t->nsegs; k += 2) {
		struct seg *act = &t->segs[k], *prev = &t->segs[k - 1];
		struct seg *next = k + 1 < t->nsegs ? &t->segs[k + 1] : NULL;
		if (act->block == B_NONE)
			continue;
		size_t ls = prev->b0, rs = next ? next->a0 : n;
		while (ls > prev->a0 && (s[ls - 1] == ' ' || s[ls - 1] == '\t'))
			ls--;
		int left = (ls > prev->a0 && s[ls - 1] == '\n') || (ls == prev->a0 && k == 1);
		int right = 0;
		if (next) {
			while (rs < next->b0 && (s[rs] == ' ' || s[rs] == '\t' || s[rs] == '\r'))
				rs++;
			if (rs < next->b0 && s[rs] == '\n') {
				rs++;
				right = 1;
			} else {
				right = rs == next->b0 && k + 2 >= t->nsegs;
			}
		}
		if (left && right) {
			if (ls < prev->b)
				prev->b = ls;
			if (rs > next->a)
				next->a = rs;
		}
	}
	for (size_t k = 1; k < t->nsegs; k += 2) {
		struct seg *act = &t->segs[k], *prev = &t->segs[k - 1];
		struct seg *next = k + 1 < t->nsegs ? &t->segs[k + 1] : NULL;
		if (act->trim_l)
			while (prev->b > prev->a && is_ws(s[prev->b - 1]))
				prev->b--;
		if (act->trim_r && next)
			while (next->a < next->b && is_ws(s[next->a]))
				next->a++;
	}
	for (size_t k = 0; k < t->nsegs; k += 2)
		if (t->segs[k].a > t->segs[k].b)
			t->segs[k].b = t->segs[k].a;
	return 0;
}

/* ---- parsing an action ---- */

enum tok_kind { T_EOF, T_WORD, T_PATH, T_STR, T_NUM, T_PIPE, T_BAD };

struct lexer {
	const char *s, *end;
	const char *tok;
	size_t tlen;
	enum tok_kind kind;
};

static int path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static void lex(struct lexer *l)
{
	while (l->s < l->end && is_ws(*l->s))
		l->s++;
	l->tok = l->s;
	if (l->s >= l->end) {
		l->kind = T_EOF;
		l->tlen = 0;
		return;
	}
	char c = *l->s;
	if (c == '|') {
		l->kind = T_PIPE;
		l->s++;
	} else if (c == '"') {
		l->kind = T_STR;
		for (l->s++; l->s < l->end && *l->s != '"'; l->s++)
			if (*l->s == '\\' && l->s + 1 < l->end)
				l->s++;
		if (l->s < l->end)
			l->s++;
		else
			l->kind = T_BAD;
	} else if (c == '.' || c == '$') {
		l->kind = T_PATH;
		l->s++;
		while (l->s < l->end && (path_char(*l->s) || *l->s == '.'))
			l->s++;
	} else if (c >= '0' && c <= '9') {
		l->kind = T_NUM;
		while (l->s < l->end && *l->s >= '0' && *l->s <= '9')
			l->s++;
	} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
		l->kind = T_WORD;
		while (l->s < l->end && path_char(*l->s))
			l->s++;
	} else {
		l->kind = T_BAD;
		l->s++;
	}
	l->tlen = (size_t)(l->s - l->tok);
}

static int tok_is(const struct lexer *l, const char *w)
{
	return l->kind == T_WORD && strlen(w) == l->tlen && !strncmp(l->tok, w, l->tlen);
}

static int syntax(const struct tmpl *t, int line, const struct lexer *l, const char *what, struct gerr *err)
{
	if (l->kind == T_EOF)
		return gerr_set(err, GERR_PARSE, "%s:%d: %s, found the end of the action", t->name, line, what);
	return gerr_set(err, GERR_PARSE, "%s:%d: %s, found \"%.*s\"", t->name, line, what, (int)l->tlen, l->tok);
}

/* A path: "." | "$" | ("$")? ("." SEGMENT)+ */
static int path_valid(const char *p, size_t n)
{
	if (n == 1)
		return 1;
	size_t i = *p == '$' ? 1 : 0;
	while (i < n) {
		if (p[i] != '.')
			return 0;
		size_t k = ++i;
		while (i < n && path_char(p[i]))
			i++;
		if (i == k)
			return 0;
	}
	return 1;
}

static int parse_operand(const struct tmpl *t, int line, struct lexer *l, struct expr *x, struct gerr *err)
{
	if (l->kind == T_PATH) {
		if (!path_valid(l->tok, l->tlen))
			return gerr_set(err, GERR_PARSE, "%s:%d: \"%.*s\" is not a path like .a.b or $.a", t->name, line,
					(int)l->tlen, l->tok);
		x->path = l->tok;
		x->plen = l->tlen;
	} else if (l->kind == T_STR) {
		struct buf b = BUF_INIT;
		for (const char *c = l->tok + 1; c < l->tok + l->tlen - 1; c++) {
			if (*c != '\\') {
				buf_addc(&b, *c);
				continue;
			}
			c++;
			if (*c == 'n')
				buf_addc(&b, '\n');
			else if (*c == 't')
				buf_addc(&b, '\t');
			else if (*c == '"' || *c == '\\')
				buf_addc(&b, *c);
			else {
				buf_release(&b);
				return gerr_set(err, GERR_PARSE, "%s:%d: unknown escape \\%c in a string", t->name, line, *c);
			}
		}
		x->str = buf_detach(&b);
	} else {
		return syntax(t, line, l, "expected a value (.path, $ or \"string\")", err);
	}
	lex(l);
	return 0;
}

static int parse_filters(const struct tmpl *t, int line, struct lexer *l, struct node *n, struct gerr *err)
{
	while (l->kind == T_PIPE) {
		lex(l);
		struct filter f = { 0 };
		if (tok_is(l, "yaml"))
			f.kind = F_YAML;
		else if (tok_is(l, "toml"))
			f.kind = F_TOML;
		else if (tok_is(l, "json"))
			f.kind = F_JSON;
		else if (tok_is(l, "raw"))
			f.kind = F_RAW;
		else if (tok_is(l, "indent"))
			f.kind = F_INDENT;
		else
			return syntax(t, line, l, "expected a filter (yaml, toml, json, raw, indent N)", err);
		lex(l);
		if (f.kind == F_INDENT) {
			if (l->kind != T_NUM || l->tlen > 3)
				return syntax(t, line, l, "indent needs a number of spaces (0-999)", err);
			f.arg = (int)strtol(l->tok, NULL, 10);
			lex(l);
		}
		n->f = xrealloc(n->f, (n->nf + 1) * sizeof(*n->f));
		n->f[n->nf++] = f;
	}
	return 0;
}

enum stop { S_EOF, S_ELSE, S_ELSEIF, S_END };

struct stopinfo {
	enum stop how;
	int line;
	struct node *elseif; /* S_ELSEIF: the condition, as an N_IF node without body */
};

static int parse_list(struct tmpl *t, int depth, struct node **out, struct stopinfo *st, struct gerr *err);

static struct node *node_new(enum node_kind kind, int line)
{
	struct node *n = xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->line = line;
	return n;
}

static int expect_end_of_action(const struct tmpl *t, int line, const struct lexer *l, struct gerr *err)
{
	if (l->kind != T_EOF)
		return syntax(t, line, l, "expected the end of the action", err);
	return 0;
}

/* The body of an if or range whose tag was n; fills n->body and n->alt. */
static int parse_block(struct tmpl *t, int depth, struct node *n, struct gerr *err)
{
	const char *what = n->kind == N_IF ? "if" : "range";
	if (depth >= RENDER_MAX_DEPTH)
		return gerr_set(err, GERR_PARSE, "%s:%d: blocks nest deeper than %d", t->name, n->line, RENDER_MAX_DEPTH);
	struct stopinfo st = { 0 };
	if (parse_list(t, depth + 1, &n->body, &st, err) < 0)
		return -1;
	if (st.how == S_ELSEIF && n->kind == N_IF) {
		n->alt = st.elseif;
		return parse_block(t, depth + 1, st.elseif, err);
	}
	if (st.how == S_ELSEIF) {
		nodes_free(st.elseif);
		return gerr_set(err, GERR_PARSE, "%s:%d: {{ else if }} inside {{ range }} (line %d)", t->name, st.line,
				n->line);
	}
	if (st.how == S_ELSE) {
		if (parse_list(t, depth + 1, &n->alt, &st, err) < 0)
			return -1;
		if (st.how == S_ELSE || st.how == S_ELSEIF) {
			nodes_free(st.elseif);
			return gerr_set(err, GERR_PARSE, "%s:%d: a second {{ else }} for the {{ %s }} of line %d", t->name,
					st.line, what, n->line);
		}
	}
	if (st.how == S_EOF)
		return gerr_set(err, GERR_PARSE, "%s:%d: unclosed {{ %s }}: no {{ end }}", t->name, n->line, what);
	return 0;
}

static int parse_list(struct tmpl *t, int depth, struct node **out, struct stopinfo *st, struct gerr *err)
{
	struct node **tail = out;
	st->how = S_EOF;
	while (t->cur < t->nsegs) {
		struct seg *sg = &t->segs[t->cur++];
		if (!sg->action) {
			if (sg->b > sg->a) {
				struct node *n = node_new(N_TEXT, sg->line);
				n->text = t->src + sg->a;
				n->len = sg->b - sg->a;
				*tail = n;
				tail = &n->next;
			}
			continue;
		}
		if (sg->block == B_COMMENT)
			continue;
		struct lexer l = { .s = t->src + sg->a, .end = t->src + sg->b };
		lex(&l);
		int line = sg->line;
		if (tok_is(&l, "end") || tok_is(&l, "else")) {
			int is_else = tok_is(&l, "else");
			lex(&l);
			st->line = line;
			if (is_else && tok_is(&l, "if")) {
				lex(&l);
				struct node *n = node_new(N_IF, line);
				if (tok_is(&l, "not")) {
					n->x.neg = 1;
					lex(&l);
				}
				if (parse_operand(t, line, &l, &n->x, err) < 0 || expect_end_of_action(t, line, &l, err) < 0) {
					nodes_free(n);
					return -1;
				}
				st->how = S_ELSEIF;
				st->elseif = n;
			} else {
				if (expect_end_of_action(t, line, &l, err) < 0)
					return -1;
				st->how = is_else ? S_ELSE : S_END;
			}
			return 0;
		}
		struct node *n;
		if (tok_is(&l, "if") || tok_is(&l, "range")) {
			n = node_new(tok_is(&l, "if") ? N_IF : N_RANGE, line);
			lex(&l);
			if (n->kind == N_IF && tok_is(&l, "not")) {
				n->x.neg = 1;
				lex(&l);
			}
		} else if (l.kind == T_WORD) {
			return syntax(t, line, &l, "expected a value or if, else, end, range", err);
		} else {
			n = node_new(N_OUT, line);
		}
		*tail = n; /* freed with the list from here on */
		tail = &n->next;
		if (n->kind == N_RANGE && l.kind != T_PATH)
			return syntax(t, line, &l, "range needs a path (.list, $.map)", err);
		if (parse_operand(t, line, &l, &n->x, err) < 0)
			return -1;
		if (n->kind == N_OUT && parse_filters(t, line, &l, n, err) < 0)
			return -1;
		if (expect_end_of_action(t, line, &l, err) < 0)
			return -1;
		if (n->kind != N_OUT && parse_block(t, depth, n, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- running ---- */

struct exec {
	const struct tmpl *t;
	const cJSON *root;
	struct buf *out;
	size_t base, max;
	size_t steps;
	struct gerr *err;
};

/* The value at x's path, or NULL when there is none. */
static const cJSON *lookup(const struct exec *e, const struct expr *x, const cJSON *dot)
{
	const char *p = x->path, *end = x->path + x->plen;
	const cJSON *v = dot;
	if (*p == '$') {
		v = e->root;
		p++;
	}
	if (p < end && *p == '.' && end - p == 1)
		return v;
	while (p < end && v) {
		p++; /* the dot */
		const char *k = p;
		while (p < end && *p != '.')
			p++;
		char seg[256];
		size_t n = (size_t)(p - k);
		if (n >= sizeof(seg))
			return NULL;
		memcpy(seg, k, n);
		seg[n] = '\0';
		if (cJSON_IsArray(v)) {
			char *e_ = NULL;
			long i = strtol(seg, &e_, 10);
			v = *e_ || seg[0] < '0' || seg[0] > '9' || i > INT32_MAX ? NULL : cJSON_GetArrayItem(v, (int)i);
		} else if (cJSON_IsObject(v)) {
			v = cJSON_GetObjectItemCaseSensitive(v, seg);
		} else {
			v = NULL;
		}
	}
	return v;
}

static int truthy(const cJSON *v)
{
	if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
		return 0;
	if (cJSON_IsString(v))
		return v->valuestring[0] != '\0';
	if (cJSON_IsArray(v) || cJSON_IsObject(v))
		return v->child != NULL;
	return 1;
}

static int unknown(struct exec *e, const struct node *n)
{
	return gerr_set(e->err, GERR_INVALID, "%s:%d: unknown variable %.*s", e->t->name, n->line, (int)n->x.plen,
			n->x.path);
}

static int check_size(struct exec *e, const struct node *n)
{
	if (e->out->len - e->base > e->max)
		return gerr_set(e->err, GERR_INVALID, "%s:%d: the output would be larger than %zu bytes", e->t->name,
				n->line, e->max);
	return 0;
}

/* cJSON's text, with what a YAML reader would not take verbatim inside a
 * double-quoted string (DEL, C1 controls, line and paragraph separators,
 * BOM, non-characters) escaped as \uXXXX, which JSON reads alike. */
static int json_for_yaml(const char *j, struct buf *text, struct gerr *err)
{
	size_t len = strlen(j), used;
	if (utf8_check(j, len, err) < 0)
		return -1;
	for (size_t i = 0; i < len; i += used) {
		long cp = utf8_next((const unsigned char *)j + i, len - i, &used);
		if ((cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || cp == 0xfffe ||
		    cp == 0xffff)
			buf_addf(text, "\\u%04lX", cp);
		else
			buf_add(text, j + i, used);
	}
	return 0;
}

/* One filter: v (a value, or the text of the stage before as a string)
 * becomes text. */
static int apply_filter(const struct filter *f, const cJSON *v, struct buf *text, struct gerr *err)
{
	switch (f->kind) {
	case F_YAML:
		return yaml_block(v, 0, 0, text, err);
	case F_TOML:
		return toml_value(v, 0, text, err);
	case F_JSON: {
		char *j = cJSON_PrintUnformatted(v);
		if (!j)
			return gerr_set(err, GERR_INVALID, "cannot write the value as JSON");
		int rc = json_for_yaml(j, text, err);
		free(j);
		return rc;
	}
	case F_RAW:
		if (cJSON_IsString(v)) {
			buf_adds(text, v->valuestring);
			return 0;
		}
		if (cJSON_IsArray(v) || cJSON_IsObject(v))
			return gerr_set(err, GERR_INVALID, "raw needs a string, number or boolean, not a %s",
					cJSON_IsArray(v) ? "list" : "mapping");
		return yaml_scalar(v, text, err);
	case F_INDENT:
		for (const char *c = v->valuestring; *c; c++) {
			buf_addc(text, *c);
			if (*c == '\n')
				spaces(text, f->arg);
		}
		return 0;
	}
	return 0;
}

/* Run the pipeline of an output node, appending its text to out. */
static int run_output(struct exec *e, const struct node *n, const cJSON *dot)
{
	const cJSON *v;
	cJSON *tmp = NULL;
	if (n->x.path) {
		v = lookup(e, &n->x, dot);
		if (!v)
			return unknown(e, n);
	} else {
		v = tmp = cJSON_CreateString(n->x.str);
	}
	static const struct filter yaml_f = { F_YAML, 0 }, raw_f = { F_RAW, 0 };
	int encoded = 0, rc = 0;
	struct buf text = BUF_INIT;
	/* past the last filter: YAML unless something encoded it already */
	for (size_t i = 0; i <= n->nf && rc == 0; i++) {
		const struct filter *f = i < n->nf ? &n->f[i] : encoded ? &raw_f : &yaml_f;
		for (int pass = f->kind == F_INDENT && !encoded ? 0 : 1; pass < 2 && rc == 0; pass++) {
			buf_reset(&text);
			rc = apply_filter(pass ? f : &yaml_f, v, &text, e->err); /* indent: YAML first */
			if (rc == 0 && text.len > e->max)
				rc = gerr_set(e->err, GERR_INVALID, "the value is larger than %zu bytes", e->max);
			if (rc == 0) {
				encoded = 1;
				cJSON_Delete(tmp);
				v = tmp = cJSON_CreateString(text.s);
			}
		}
	}
	if (rc == 0)
		buf_add(e->out, text.s, text.len);
	buf_release(&text);
	cJSON_Delete(tmp);
	if (rc < 0) {
		if (n->x.path)
			return gerr_prefix(e->err, "%s:%d: %.*s", e->t->name, n->line, (int)n->x.plen, n->x.path);
		return gerr_prefix(e->err, "%s:%d", e->t->name, n->line);
	}
	return check_size(e, n);
}

static int exec_list(struct exec *e, const struct node *n, const cJSON *dot);

static int too_many_steps(struct exec *e, const struct node *n)
{
	return gerr_set(e->err, GERR_INVALID, "%s:%d: the template runs more than %d steps", e->t->name, n->line,
			RENDER_MAX_STEPS);
}

static int run_range(struct exec *e, const struct node *n, const cJSON *dot)
{
	const cJSON *v = lookup(e, &n->x, dot);
	if (!v)
		return unknown(e, n);
	if (!cJSON_IsArray(v) && !cJSON_IsObject(v) && !cJSON_IsNull(v))
		return gerr_set(e->err, GERR_INVALID, "%s:%d: range over %.*s: it is not a list or a mapping", e->t->name,
				n->line, (int)n->x.plen, n->x.path);
	if (!truthy(v))
		return exec_list(e, n->alt, dot);
	for (const cJSON *c = v->child; c; c = c->next) {
		int rc;
		if (++e->steps > RENDER_MAX_STEPS)
			return too_many_steps(e, n);
		if (cJSON_IsObject(v)) {
			/* the dot is {key, value}: references, nothing copied */
			cJSON *kv = cJSON_CreateObject();
			cJSON_AddItemToObject(kv, "key", cJSON_CreateStringReference(c->string));
			cJSON_AddItemReferenceToObject(kv, "value", (cJSON *)c);
			rc = exec_list(e, n->body, kv);
			cJSON_Delete(kv);
		} else {
			rc = exec_list(e, n->body, c);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int exec_list(struct exec *e, const struct node *n, const cJSON *dot)
{
	for (; n; n = n->next) {
		if (++e->steps > RENDER_MAX_STEPS)
			return too_many_steps(e, n);
		switch (n->kind) {
		case N_TEXT:
			buf_add(e->out, n->text, n->len);
			if (check_size(e, n) < 0)
				return -1;
			break;
		case N_OUT:
			if (run_output(e, n, dot) < 0)
				return -1;
			break;
		case N_IF: {
			int yes = n->x.path ? truthy(lookup(e, &n->x, dot)) : n->x.str[0] != '\0';
			if (n->x.neg)
				yes = !yes;
			if (exec_list(e, yes ? n->body : n->alt, dot) < 0)
				return -1;
			break;
		}
		case N_RANGE:
			if (run_range(e, n, dot) < 0)
				return -1;
			break;
		}
	}
	return 0;
}

int render_string(const struct render_ctx *rc, const char *name, const char *text, size_t len, const cJSON *values,
		  struct buf *out, struct gerr *err)
{
	struct tmpl t = { .name = name, .src = text, .len = len };
	struct node *root = NULL;
	size_t base = out->len;
	int r = -1;
	if (len > RENDER_MAX_TEMPLATE) {
		gerr_set(err, GERR_INVALID, "%s: the template is larger than %d bytes", name, RENDER_MAX_TEMPLATE);
		goto done;
	}
	if (cut(&t, err) < 0)
		goto done;
	struct stopinfo st = { 0 };
	if (parse_list(&t, 0, &root, &st, err) < 0)
		goto done;
	if (st.how != S_EOF) {
		nodes_free(st.elseif);
		gerr_set(err, GERR_PARSE, "%s:%d: {{ %s }} without a matching {{ if }} or {{ range }}", name, st.line,
			 st.how == S_END ? "end" : st.how == S_ELSE ? "else" : "else if");
		goto done;
	}
	struct exec e = { .t = &t, .root = values, .out = out, .base = base, .err = err };
	e.max = rc && rc->max_output ? rc->max_output : RENDER_MAX_OUTPUT;
	r = exec_list(&e, root, values);
done:
	if (r < 0 && out->len != base) {
		out->len = base;
		out->s[base] = '\0';
	}
	nodes_free(root);
	free(t.segs);
	return r;
}

/* ---- finding templates ---- */

int render_check_dir(const char *dir, struct gerr *err)
{
	struct stat st;
	if (stat(dir, &st) < 0)
		return gerr_set(err, GERR_USAGE, "--templates %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return gerr_set(err, GERR_USAGE, "--templates %s: not a folder", dir);
	if (access(dir, R_OK | X_OK) < 0)
		return gerr_set(err, GERR_USAGE, "--templates %s: %s", dir, strerror(errno));
	return 0;
}

/* Load name: from rc->dir when it has it (*path set to the file, a new
 * string), else the embedded copy. */
static int load(const struct render_ctx *rc, const char *name, struct buf *text, char **path, struct gerr *err)
{
	*path = NULL;
	if (!*name || strchr(name, '/') || name[0] == '.')
		return gerr_set(err, GERR_INTERNAL, "bad template name \"%s\"", name);
	if (rc && rc->dir) {
		char *p = xasprintf("%s/%s", rc->dir, name);
		struct stat st;
		if (stat(p, &st) == 0) {
			if (!S_ISREG(st.st_mode)) {
				gerr_set(err, GERR_IO, "template %s: not a regular file", p);
				free(p);
				return -1;
			}
			if (buf_read_file(text, p, RENDER_MAX_TEMPLATE, err) < 0) {
				free(p);
				return gerr_prefix(err, "template");
			}
			*path = p;
			return 0;
		}
		if (errno != ENOENT) {
			gerr_set(err, GERR_IO, "template %s: %s", p, strerror(errno));
			free(p);
			return -1;
		}
		free(p);
	}
	const struct render_embedded *e = render_embedded_find(name);
	if (!e)
		return gerr_set(err, GERR_NOTFOUND, "no template \"%s\"%s%s", name, rc && rc->dir ? " in " : "",
				rc && rc->dir ? rc->dir : "");
	buf_add(text, e->text, e->len);
	return 0;
}

int render_template(const struct render_ctx *rc, const char *name, const cJSON *values, struct buf *out,
		    struct gerr *err)
{
	struct buf text = BUF_INIT;
	char *path = NULL;
	int r = load(rc, name, &text, &path, err);
	if (r == 0)
		r = render_string(rc, path ? path : name, text.s, text.len, values, out, err);
	buf_release(&text);
	free(path);
	return r;
}

int render_yaml_docs(const struct render_ctx *rc, const char *name, const cJSON *values, cJSON **docs,
		     struct buf *text, struct gerr *err)
{
	struct buf out = BUF_INIT;
	*docs = NULL;
	if (render_template(rc, name, values, &out, err) < 0) {
		buf_release(&out);
		return -1;
	}
	char *src = xasprintf("%s (rendered)", name);
	int r = yaml_parse_all(out.s, out.len, src, docs, err);
	free(src);
	if (r == 0 && text)
		buf_add(text, out.s, out.len);
	buf_release(&out);
	return r;
}
