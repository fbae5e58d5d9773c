/* The YAML bridge: typing of scalars, structure, errors, the emitter round trip. */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "gpuctl/yaml.h"

static cJSON *parse(const char *text)
{
	cJSON *out = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(yaml_parse(text, strlen(text), "t.yaml", &out, &err), 0, "%s", err.msg);
	return out;
}

static char *parse_error(const char *text)
{
	cJSON *out = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(yaml_parse(text, strlen(text), "t.yaml", &out, &err), -1, "expected an error for %s", text);
	cr_assert_null(out);
	char *msg = err.msg; /* handed to the caller; the rest of the error freed */
	err.msg = NULL;
	gerr_clear(&err);
	return msg;
}

Test(yaml, scalars_follow_the_core_schema)
{
	cJSON *d = parse("a: true\nb: false\nc: null\nd: ~\ne: 42\nf: -1.5\ng: \"42\"\nh: '{x}'\ni: hello world\n"
			 "j: 0x1F\nk: yes\nl:\nm: 12345678901234567890\n");
	cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(d, "a")));
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(d, "b")));
	cr_assert(cJSON_IsNull(cJSON_GetObjectItem(d, "c")));
	cr_assert(cJSON_IsNull(cJSON_GetObjectItem(d, "d")));
	cr_assert_eq(cJSON_GetObjectItem(d, "e")->valuedouble, 42);
	cr_assert_eq(cJSON_GetObjectItem(d, "f")->valuedouble, -1.5);
	cr_assert_str_eq(cJSON_GetObjectItem(d, "g")->valuestring, "42", "quoted stays a string");
	cr_assert_str_eq(cJSON_GetObjectItem(d, "h")->valuestring, "{x}");
	cr_assert_str_eq(cJSON_GetObjectItem(d, "i")->valuestring, "hello world");
	cr_assert_str_eq(cJSON_GetObjectItem(d, "j")->valuestring, "0x1F");
	cr_assert_str_eq(cJSON_GetObjectItem(d, "k")->valuestring, "yes", "YAML 1.2: yes is a string");
	cr_assert(cJSON_IsNull(cJSON_GetObjectItem(d, "l")));
	cr_assert_str_eq(cJSON_GetObjectItem(d, "m")->valuestring, "12345678901234567890", "no precision lost");
	cJSON_Delete(d);
}

Test(yaml, nested_structures_flow_and_block)
{
	cJSON *d = parse("list:\n- a\n- {k: v, n: [1, 2]}\n- - inner\nmap: {x: {y: z}}\nblock: |\n  line1\n  line2\n");
	cJSON *l = cJSON_GetObjectItem(d, "list");
	cr_assert_eq(cJSON_GetArraySize(l), 3);
	cr_assert_str_eq(cJSON_GetArrayItem(l, 0)->valuestring, "a");
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(l, 1), "n")), 2);
	cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetArrayItem(l, 2), 0)->valuestring, "inner");
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "map"), "x"), "y")->valuestring, "z");
	cr_assert_str_eq(cJSON_GetObjectItem(d, "block")->valuestring, "line1\nline2\n");
	cJSON_Delete(d);
}

Test(yaml, anchors_aliases_and_merge_keys)
{
	cJSON *d = parse("base: &b {a: 1, b: 2}\nother:\n  <<: *b\n  b: 3\ncopy: *b\n");
	cJSON *o = cJSON_GetObjectItem(d, "other");
	cr_assert_eq(cJSON_GetObjectItem(o, "a")->valuedouble, 1);
	cr_assert_eq(cJSON_GetObjectItem(o, "b")->valuedouble, 3, "explicit keys win over merged ones");
	cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "copy"), "b")->valuedouble, 2);
	cJSON_Delete(d);
}

Test(yaml, errors_name_file_line_and_column)
{
	char *m = parse_error("a: 1\nb: [1, 2\nc: 3\n");
	cr_assert(!strncmp(m, "t.yaml:", 7), "%s", m);
	free(m);
	m = parse_error("a: 1\na: 2\n");
	cr_assert(strstr(m, "t.yaml:2: duplicate key \"a\""), "%s", m);
	free(m);
	m = parse_error("a: *nope\n");
	cr_assert(strstr(m, "unknown alias"), "%s", m);
	free(m);
	m = parse_error("a: 1\n---\nb: 2\n");
	cr_assert(strstr(m, "expected one YAML document, found 2"), "%s", m);
	free(m);
	m = parse_error("? [a, b]\n: c\n");
	cr_assert(strstr(m, "mapping keys must be scalars"), "%s", m);
	free(m);
}

Test(yaml, deep_nesting_is_bounded)
{
	char text[2000];
	size_t n = 0;
	for (int i = 0; i < 300; i++)
		text[n++] = '[';
	text[n] = '\0';
	char *m = parse_error(text);
	cr_assert(strstr(m, "nesting deeper than"), "%s", m);
	free(m);
}

Test(yaml, multi_document_stream)
{
	const char *t = "---\na: 1\n---\n---\nb: 2\n";
	cJSON *docs = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(yaml_parse_all(t, strlen(t), "s", &docs, &err), 0, "%s", err.msg);
	cr_assert_eq(cJSON_GetArraySize(docs), 3);
	cr_assert(cJSON_IsNull(cJSON_GetArrayItem(docs, 1)));
	cJSON_Delete(docs);
}

Test(yaml, empty_input_is_null)
{
	cJSON *d = parse("");
	cr_assert(cJSON_IsNull(d));
	cJSON_Delete(d);
}

Test(yaml, emitter_round_trips_tricky_strings)
{
	const char *json = "{\"labels\":{\"a\":\"true\",\"b\":\"123\",\"c\":\"\",\"d\":\"x: y\",\"e\":\"- dash\","
			   "\"f\":\"line\\nbreak\",\"g\":\"#hash\",\"h\":\"null\",\"i\":\"plain-value\",\"j\":\"say \\\"hi\\\"\"},"
			   "\"list\":[{\"k\":1,\"v\":[true,null]},[],{},\"s\"],\"n\":1.5,\"big\":1e20}";
	cJSON *in = cJSON_Parse(json);
	struct buf b = BUF_INIT;
	yaml_emit(in, &b);
	cJSON *back = parse(b.s);
	cr_assert(cJSON_Compare(in, back, 1), "round trip differs:\n%s", b.s);
	cr_assert(strstr(b.s, "i: plain-value\n"), "plain strings stay unquoted:\n%s", b.s);
	buf_release(&b);
	cJSON_Delete(in);
	cJSON_Delete(back);
}

/* Strings a YAML 1.1 (Go yaml.v2, PyYAML) or 1.2 reader would type as
 * something else: the emitter must quote every one, and they round-trip. */
Test(yaml, emitter_quotes_what_a_reader_would_type)
{
	static const char *const typed[] = {
		"0x1F", "0X1f", "-0x1", "0o17", "017", "0b101", "+0b1", "1_000", "1:20", "-1:20:30", "190:20:30.15",
		"1.2.3", "1.", ".5", "-.5", "1e5", "1E+5", "6.8523015e+5", "685.230_15e+03", ".inf", "-.Inf", "+.INF",
		".nan", ".NaN", "yes", "No", "ON", "off", "y", "N", "True", "FALSE", "null", "NULL", "~", "Null",
		"2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2002-12-14T21:59:43Z",
		"<<", "=", "123", "-7", "+12", "0", "3.14", "",
		"-", "- x", "?", "? x", ":x", "a: b", "a #b", "#x", "&a", "*a", "!tag", "|", ">", "'q", "\"q", "%x", "@x",
		"`x", " lead", "trail ", "tail:", "{", "}", "[", "]", ",x",
	};
	for (size_t i = 0; i < sizeof(typed) / sizeof(typed[0]); i++) {
		cJSON *in = cJSON_CreateObject();
		cJSON_AddStringToObject(in, "k", typed[i]);
		struct buf b = BUF_INIT;
		yaml_emit(in, &b);
		cr_expect(b.s[3] == '"', "\"%s\" emitted unquoted: %s", typed[i], b.s);
		cJSON *back = parse(b.s);
		cr_expect(cJSON_Compare(in, back, 1), "\"%s\" does not round-trip:\n%s", typed[i], b.s);
		cJSON_Delete(back);
		cJSON_Delete(in);
		buf_release(&b);
	}
}

Test(yaml, emitter_round_trips_controls_and_unicode)
{
	static const char *const strs[] = {
		"a\x01" "b", "esc\x1b[31mred", "tab\there", "cr\rlf\n", "del\x7f", "nel\xc2\x85" "x", "ls\xe2\x80\xa8" "x",
		"ps\xe2\x80\xa9" "x", "bom\xef\xbb\xbf", "c1\xc2\x9b" "x", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
		"emoji \xf0\x9f\x98\x80", "back\\slash \"quotes\"", "10Gi", "plain-value", "nvidia.com/gpu",
	};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		cJSON *in = cJSON_CreateObject();
		cJSON_AddStringToObject(in, strs[i], strs[i]); /* as key and as value */
		struct buf b = BUF_INIT;
		yaml_emit(in, &b);
		cJSON *back = parse(b.s);
		cr_expect(cJSON_Compare(in, back, 1), "string %zu does not round-trip:\n%s", i, b.s);
		cJSON_Delete(back);
		cJSON_Delete(in);
		buf_release(&b);
	}
	/* UTF-8 text and Kubernetes quantities stay plain */
	cJSON *in = cJSON_Parse("{\"a\":\"caf\xc3\xa9\",\"b\":\"10Gi\",\"c\":\"nvidia.com/gpu\"}");
	struct buf b = BUF_INIT;
	yaml_emit(in, &b);
	cr_assert_str_eq(b.s, "a: caf\xc3\xa9\nb: 10Gi\nc: nvidia.com/gpu\n");
	buf_release(&b);
	cJSON_Delete(in);
}

static long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

Test(yaml, billion_laughs_fails_fast)
{
	struct buf t = BUF_INIT;
	buf_adds(&t, "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
	for (char c = 'b'; c <= 'j'; c++)
		buf_addf(&t, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, c - 1, c - 1, c - 1,
			 c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
	long t0 = mono_ms();
	char *m = parse_error(t.s);
	cr_assert(strstr(m, "too many nodes"), "%s", m);
	cr_assert_lt(mono_ms() - t0, 2000);
	free(m);
	buf_release(&t);
}

Test(yaml, nested_anchors_count_against_the_budget)
{
	/* no alias at all: 100 nested anchored lists around 20000 scalars; each
	 * anchor keeps a copy of its subtree, 2 million nodes in all */
	struct buf t = BUF_INIT;
	for (int i = 0; i < 100; i++)
		buf_addf(&t, "&a%d [", i);
	for (int i = 0; i < 20000; i++)
		buf_adds(&t, "x, ");
	buf_adds(&t, "x");
	for (int i = 0; i < 100; i++)
		buf_addc(&t, ']');
	buf_addc(&t, '\n');
	long t0 = mono_ms();
	char *m = parse_error(t.s);
	cr_assert(strstr(m, "too many nodes"), "%s", m);
	cr_assert_lt(mono_ms() - t0, 2000);
	free(m);
	buf_release(&t);
	/* a merge key copying a large anchor many times */
	buf_adds(&t, "base: &b {");
	for (int i = 0; i < 2000; i++)
		buf_addf(&t, "k%d: v, ", i);
	buf_adds(&t, "z: v}\n");
	for (int i = 0; i < 100; i++)
		buf_addf(&t, "m%d: {<<: *b}\n", i);
	m = parse_error(t.s);
	cr_assert(strstr(m, "too many nodes"), "%s", m);
	free(m);
	buf_release(&t);
}

/* found by tests/fuzz/fuzz_yaml: numbers that came back as strings */
Test(yaml, numbers_round_trip)
{
	cJSON *d = parse("a: 1e15\nb: 1e400\nc: -0\nd: 123456789012345\ne: 0.1\nf: 1e-300\n");
	cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(d, "a")));
	cr_assert_str_eq(cJSON_GetObjectItem(d, "b")->valuestring, "1e400", "no infinity in JSON: kept as written");
	struct buf b = BUF_INIT;
	yaml_emit(d, &b);
	cJSON *back = parse(b.s);
	cr_assert(cJSON_Compare(d, back, 1), "round trip differs:\n%s", b.s);
	buf_release(&b);
	cJSON_Delete(back);
	cJSON_Delete(d);
}
