#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpuctl/buf.h"
#include "gpuctl/out.h"
#include "gpuctl/yaml.h"
#include "shape.h"

/* The length of a valid UTF-8 sequence at s and its code point; 0 when the
 * bytes are not UTF-8. */
static size_t utf8_char(const unsigned char *s, unsigned *cp)
{
	unsigned c = s[0];
	size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
	if (!n)
		return 0;
	unsigned v = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	static const unsigned min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

void out_add_printable(struct buf *b, const char *s, int keep_newlines)
{
	static const char hex[] = "0123456789abcdef";
	if (!s)
		return;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		unsigned c = *p, cp = 0;
		if (c >= 0x20 && c < 0x7f) {
			buf_addc(b, (char)c);
			p++;
			continue;
		}
		if (c == '\n' && keep_newlines) {
			buf_addc(b, '\n');
			p++;
			continue;
		}
		if (c == '\t') {
			buf_addc(b, '\t');
			p++;
			continue;
		}
		size_t n = c >= 0x80 ? utf8_char(p, &cp) : 0;
		/* C1 controls (8-bit CSI and friends) and the bidirectional
		 * overrides that reorder what the reader sees */
		if (n && !(cp < 0xa0 || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))) {
			buf_add(b, p, n);
			p += n;
			continue;
		}
		if (n > 2) {
			buf_addf(b, "\\u%04x", cp);
			p += n;
			continue;
		}
		if (n == 2)
			c = cp; /* U+0080..U+009F: written as the byte it stands for */
		buf_adds(b, "\\x");
		buf_addc(b, hex[(c >> 4) & 15]);
		buf_addc(b, hex[c & 15]);
		p += n ? n : 1;
	}
}

char *out_sanitize(const char *s)
{
	struct buf b = BUF_INIT;
	out_add_printable(&b, s, 0);
	if (!b.len)
		return xstrdup("");
	return buf_detach(&b);
}

int out_want_color(FILE *f)
{
	const char *nc = getenv("NO_COLOR");
	if (nc && *nc)
		return 0;
	const char *term = getenv("TERM");
	if (term && !strcmp(term, "dumb"))
		return 0;
	return isatty(fileno(f));
}

void out_colored(FILE *f, int enabled, enum out_color c, const char *s)
{
	static const char *const codes[] = { "", "\033[32m", "\033[33m", "\033[31m", "\033[2m", "\033[1m" };
	struct buf b = BUF_INIT;
	out_add_printable(&b, s, 1);
	if (!enabled || c == OUT_PLAIN) {
		fputs(b.s, f);
		buf_release(&b);
		return;
	}
	fputs(codes[c], f);
	fputs(b.s, f);
	fputs("\033[0m", f);
	buf_release(&b);
}

/* cJSON writes DEL and C1 controls raw; \u escapes are the same JSON
 * value and cannot drive a terminal. */
void out_put_json(FILE *f, const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	for (; p < end; p++) {
		if (*p == 0x7f)
			buf_adds(&b, "\\u007f");
		else if (*p == 0xc2 && p + 1 < end && p[1] >= 0x80 && p[1] <= 0x9f)
			buf_addf(&b, "\\u%04x", (unsigned)*++p);
		else
			buf_addc(&b, (char)*p);
	}
	fwrite(b.s, 1, b.len, f);
	buf_release(&b);
}

void out_doc(FILE *f, const cJSON *doc, const char *format)
{
	if (format && !strcmp(format, "yaml")) {
		struct buf b = BUF_INIT;
		yaml_emit(doc, &b);
		fwrite(b.s, 1, b.len, f);
		buf_release(&b);
		return;
	}
	char *s = cJSON_Print(doc);
	out_put_json(f, s, strlen(s));
	fputc('\n', f);
	free(s);
}

int out_finish(struct gerr *err)
{
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout))
		return gerr_set(err, GERR_IO, "cannot write the output: %s",
				errno ? strerror(errno) : "write error");
	return 0;
}
