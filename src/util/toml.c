/* Reading containerd's TOML dumps: headers and one-line key = value pairs,
 * in a canonical form whatever the quoting (see toml.h). */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/toml.h"

static int bare_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A quoted string at s (s[0] is ' or "), up to end; appends the value to v.
 * Returns the position after the closing quote, or NULL when unterminated. */
static const char *quoted(const char *s, const char *end, struct buf *v)
{
	char q = *s++;
	while (s < end && *s != q) {
		if (q == '"' && *s == '\\' && s + 1 < end) {
			s++;
			switch (*s) {
			case 'n': buf_addc(v, '\n'); break;
			case 't': buf_addc(v, '\t'); break;
			case 'r': buf_addc(v, '\r'); break;
			case 'b': buf_addc(v, '\b'); break;
			case 'f': buf_addc(v, '\f'); break;
			default: buf_addc(v, *s); break; /* \" \\ (and \uXXXX kept as its letters) */
			}
			s++;
			continue;
		}
		buf_addc(v, *s++);
	}
	return s < end ? s + 1 : NULL;
}

static const char *skip_blank(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

/* A dotted key at s; appends its canonical form to out.  Returns the
 * position after it, or NULL when there is no key. */
static const char *dotted_key(const char *s, const char *end, struct buf *out)
{
	for (int first = 1;; first = 0) {
		s = skip_blank(s, end);
		struct buf seg = BUF_INIT;
		if (s < end && (*s == '"' || *s == '\'')) {
			s = quoted(s, end, &seg);
			if (!s) {
				buf_release(&seg);
				return NULL;
			}
		} else {
			while (s < end && bare_char(*s))
				buf_addc(&seg, *s++);
			if (!seg.len) {
				buf_release(&seg);
				return NULL;
			}
		}
		int bare = seg.len > 0;
		for (size_t i = 0; i < seg.len; i++)
			bare &= bare_char(seg.s[i]);
		if (!first)
			buf_addc(out, '.');
		if (bare)
			buf_add(out, seg.s, seg.len);
		else
			buf_addf(out, "\"%s\"", seg.s);
		buf_release(&seg);
		s = skip_blank(s, end);
		if (s >= end || *s != '.')
			return s;
		s++;
	}
}

char *toml_header(const char *line, size_t len)
{
	const char *end = line + len;
	const char *s = skip_blank(line, end);
	if (s >= end || *s != '[')
		return NULL;
	s++;
	int array = s < end && *s == '[';
	if (array)
		s++;
	struct buf b = BUF_INIT;
	s = dotted_key(s, end, &b);
	if (!s || s >= end || *s != ']' || (array && (s + 1 >= end || s[1] != ']'))) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b);
}

int toml_within(const char *path, const char *table)
{
	size_t n = strlen(table);
	return !strncmp(path, table, n) && (path[n] == '\0' || path[n] == '.');
}

void toml_scan(const char *text, toml_kv_fn fn, void *ud)
{
	char *table = xstrdup("");
	const char *p = text;
	while (*p) {
		size_t n = strcspn(p, "\n");
		const char *end = p + n;
		while (end > p && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			end--;
		const char *s = skip_blank(p, end);
		if (s < end && *s == '[') {
			char *h = toml_header(s, (size_t)(end - s));
			if (h) {
				free(table);
				table = h;
			}
		} else if (s < end && *s != '#') {
			struct buf key = BUF_INIT, str = BUF_INIT;
			const char *v = dotted_key(s, end, &key);
			if (v && v < end && *v == '=') {
				v = skip_blank(v + 1, end);
				char *raw = xstrndup(v, (size_t)(end - v));
				int is_str = v < end && (*v == '"' || *v == '\'') && quoted(v, end, &str) != NULL;
				int stop = fn(ud, table, key.s, raw, is_str ? str.s : NULL);
				free(raw);
				if (stop) {
					buf_release(&key);
					buf_release(&str);
					break;
				}
			}
			buf_release(&key);
			buf_release(&str);
		}
		p += n;
		if (*p)
			p++;
	}
	free(table);
}

struct get {
	const char *table, *key;
	int raw;
	char *value;
};

static int get_fn(void *ud, const char *table, const char *key, const char *raw, const char *str)
{
	(void)raw;
	struct get *g = ud;
	if (strcmp(table, g->table) || strcmp(key, g->key))
		return 0;
	free(g->value);
	g->value = g->raw ? xstrdup(raw) : str ? xstrdup(str) : NULL;
	return 1;
}

char *toml_get_string(const char *text, const char *table, const char *key)
{
	struct get g = { table, key, 0, NULL };
	if (text)
		toml_scan(text, get_fn, &g);
	return g.value;
}

char *toml_get_raw(const char *text, const char *table, const char *key)
{
	struct get g = { table, key, 1, NULL };
	if (text)
		toml_scan(text, get_fn, &g);
	return g.value;
}
