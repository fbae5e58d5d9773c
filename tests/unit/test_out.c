/* src/out: text from servers, nodes and files made safe for a terminal. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/out.h"

Test(out, sanitize_table)
{
	static const char *const cases[][2] = {
		{ "gpu-1", "gpu-1" },
		{ "", "" },
		{ "a\x1b[31mred", "a\\x1b[31mred" },
		{ "title\x1b]0;x\x07", "title\\x1b]0;x\\x07" },
		{ "nl\nx", "nl\\x0ax" },
		{ "cr\rx", "cr\\x0dx" },
		{ "tab\tx", "tab\tx" },
		{ "del\x7f", "del\\x7f" },
		{ "csi\xc2\x9b" "1m", "csi\\x9b1m" },
		{ "nel\xc2\x85", "nel\\x85" },
		{ "bad\xff\xfe", "bad\\xff\\xfe" },
		{ "cut\xe2\x80", "cut\\xe2\\x80" },
		{ "overlong\xc0\xaf", "overlong\\xc0\\xaf" },
		{ "rlo\xe2\x80\xae" "x", "rlo\\u202ex" },
		{ "Ubuntu 22.04.4 LTS", "Ubuntu 22.04.4 LTS" },
		{ "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80" },
		{ "nbsp\xc2\xa0x", "nbsp\xc2\xa0x" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = out_sanitize(cases[i][0]);
		cr_expect_str_eq(s, cases[i][1], "case %zu", i);
		free(s);
	}
	char *s = out_sanitize(NULL);
	cr_assert_str_eq(s, "");
	free(s);
	struct buf b = BUF_INIT;
	out_add_printable(&b, "line1\nline2\x1b", 1);
	cr_assert_str_eq(b.s, "line1\nline2\\x1b");
	buf_release(&b);
}

static char *written(void (*fn)(FILE *, const void *), const void *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	fn(f, arg);
	fclose(f);
	return text;
}

static void colored_red(FILE *f, const void *s)
{
	out_colored(f, 1, OUT_RED, s);
}

static void doc_json(FILE *f, const void *d)
{
	out_doc(f, d, "json");
}

static void doc_yaml(FILE *f, const void *d)
{
	out_doc(f, d, "yaml");
}

Test(out, colored_text_is_sanitized)
{
	char *t = written(colored_red, "node\x1b[2J");
	cr_assert_str_eq(t, "\x1b[31mnode\\x1b[2J\x1b[0m");
	free(t);
}

Test(out, documents_carry_no_raw_controls)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", "a\x1b[2J\x7f\xc2\x9b" "b");
	cJSON_AddStringToObject(d, "os", "caf\xc3\xa9");
	for (int y = 0; y < 2; y++) {
		char *t = written(y ? doc_yaml : doc_json, d);
		cr_assert_null(strchr(t, '\x1b'), "%s", t);
		cr_assert_null(strchr(t, '\x7f'), "%s", t);
		cr_assert_null(strstr(t, "\xc2\x9b"), "%s", t);
		cr_assert(strstr(t, "caf\xc3\xa9"), "%s", t);
		if (!y) {
			cJSON *back = cJSON_Parse(t);
			cr_assert(cJSON_Compare(back, d, 1), "JSON value changed: %s", t);
			cJSON_Delete(back);
		}
		free(t);
	}
	cJSON_Delete(d);
}
