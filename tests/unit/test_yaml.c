/* The YAML bridge: typing of scalars, structure, errors, the emitter round trip. */
#include <criterion/criterion.h>
#include <string.h>

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
