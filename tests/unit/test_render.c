/* The template engine: the language, quoting that survives hostile values,
 * errors that name the template and line, bounds, the embedded set and the
 * --templates override. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpuctl/cli.h"
#include "gpuctl/render.h"
#include "gpuctl/toml.h"
#include "gpuctl/yaml.h"

static cJSON *values_of(const char *json)
{
	cJSON *v = cJSON_Parse(json ? json : "{}");
	cr_assert_not_null(v, "bad JSON in the test: %s", json);
	return v;
}

/* Render tmpl against the JSON values; the output (caller frees). */
static char *render_ok(const char *tmpl, const char *json)
{
	cJSON *v = values_of(json);
	struct buf out = BUF_INIT;
	struct gerr err = GERR_INIT;
	int rc = render_string(NULL, "t.tmpl", tmpl, strlen(tmpl), v, &out, &err);
	cr_assert_eq(rc, 0, "render failed: %s\ntemplate: %s", err.msg, tmpl);
	cJSON_Delete(v);
	return buf_detach(&out);
}

/* Render tmpl, which must fail; the error (code in *code). */
static char *render_fail(const struct render_ctx *rc, const char *tmpl, const char *json, enum gerr_code *code)
{
	cJSON *v = values_of(json);
	struct buf out = BUF_INIT;
	buf_adds(&out, "kept");
	struct gerr err = GERR_INIT;
	int r = render_string(rc, "t.tmpl", tmpl, strlen(tmpl), v, &out, &err);
	cr_assert_eq(r, -1, "expected an error for: %s\ngot: %s", tmpl, out.s);
	cr_assert_str_eq(out.s, "kept", "the output is cut back on error");
	cr_assert_not_null(err.msg);
	if (code)
		*code = err.code;
	cJSON_Delete(v);
	buf_release(&out);
	char *msg = err.msg; /* handed to the caller; the rest of the error freed */
	err.msg = NULL;
	gerr_clear(&err);
	return msg;
}

static void expect(const char *tmpl, const char *json, const char *want)
{
	char *got = render_ok(tmpl, json);
	cr_assert_str_eq(got, want, "template: %s", tmpl);
	free(got);
}

Test(render, variables_and_nested_paths)
{
	const char *v = "{\"a\":\"x\",\"b\":{\"c\":{\"d\":\"deep\"}},\"n\":3,\"f\":0.1,\"neg\":-2.5,\"t\":true,\"no\":false,"
			"\"z\":null,\"l\":[\"p\",\"q\"],\"0\":\"zero\"}";
	expect("a={{ .a }} d={{ .b.c.d }} n={{.n}} f={{ .f }} neg={{ .neg }}", v, "a=x d=deep n=3 f=0.1 neg=-2.5");
	expect("t={{ .t }} no={{ .no }} z={{ .z }} l1={{ .l.1 }} zero={{ .0 }}", v, "t=true no=false z=null l1=q zero=zero");
	expect("root {{ $.a }} {{ $.b.c.d }}", v, "root x deep");
	expect("no actions at all\n", v, "no actions at all\n");
	expect("", v, "");
	expect("stray }} stays", v, "stray }} stays");
	expect("{{ \"{{ literal }}\" | raw }}", v, "{{ literal }}");
	expect("{{ \"say \\\"hi\\\"\" }}", v, "\"say \\\"hi\\\"\"");
	expect("{{ .a | raw }} {{ .n | raw }} {{ .t | raw }}", v, "x 3 true");
}

Test(render, if_else_and_truthiness)
{
	static const struct {
		const char *json;
		const char *want;
	} cases[] = {
		{ "{}", "no" },                  /* missing: false, not an error */
		{ "{\"x\":null}", "no" },
		{ "{\"x\":false}", "no" },
		{ "{\"x\":\"\"}", "no" },
		{ "{\"x\":[]}", "no" },
		{ "{\"x\":{}}", "no" },
		{ "{\"x\":0}", "yes" },          /* numbers are true, 0 too */
		{ "{\"x\":true}", "yes" },
		{ "{\"x\":\"false\"}", "yes" },  /* a non-empty string */
		{ "{\"x\":[0]}", "yes" },
		{ "{\"x\":{\"a\":null}}", "yes" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		expect("{{ if .x }}yes{{ else }}no{{ end }}", cases[i].json, cases[i].want);
		expect("{{ if not .x }}no{{ else }}yes{{ end }}", cases[i].json, cases[i].want);
	}
	expect("{{ if .a.b.c }}yes{{ end }}", "{\"a\":1}", "");
	const char *chain = "{{ if .a }}A{{ else if .b }}B{{ else if not .c }}notC{{ else }}C{{ end }}";
	expect(chain, "{\"a\":1}", "A");
	expect(chain, "{\"b\":1}", "B");
	expect(chain, "{}", "notC");
	expect(chain, "{\"c\":1}", "C");
	expect("{{ if .a }}{{ if .b }}ab{{ else }}a{{ end }}{{ end }}", "{\"a\":1}", "a");
}

Test(render, range_over_arrays_with_the_root)
{
	const char *v = "{\"name\":\"gpu\",\"l\":[\"p\",\"q\"],\"objs\":[{\"n\":1},{\"n\":2}],\"e\":[],\"z\":null,"
			"\"nested\":[[1,2],[3]]}";
	expect("{{ range .l }}[{{ . }}]{{ end }}", v, "[p][q]");
	expect("{{ range .l }}{{ $.name }}-{{ . }};{{ end }}", v, "gpu-p;gpu-q;");
	expect("{{ range .objs }}{{ .n }}{{ end }}", v, "12");
	expect("{{ range .e }}x{{ else }}empty{{ end }}", v, "empty");
	expect("{{ range .z }}x{{ end }}.", v, ".");
	expect("{{ range .nested }}({{ range . }}{{ . }}{{ end }}){{ end }}", v, "(12)(3)");
	expect("{{ range $.l }}{{ range $.l }}{{ . }}{{ end }}|{{ end }}", v, "pq|pq|");
}

Test(render, range_over_objects_gives_key_and_value)
{
	const char *v = "{\"m\":{\"b\":1,\"a\":\"x: y\",\"nvidia.com/gpu\":{\"deep\":true}}}";
	expect("{{ range .m }}{{ .key }}={{ .value | raw }};{{ end }}", "{\"m\":{\"b\":1,\"a\":\"x\"}}", "b=1;a=x;");
	char *out = render_ok("{{ range .m }}\n{{ .key }}: {{ .value | json }}\n{{ end }}", v);
	cr_assert_str_eq(out, "b: 1\na: \"x: y\"\nnvidia.com/gpu: {\"deep\":true}\n");
	cJSON *doc = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(yaml_parse(out, strlen(out), "out", &doc, &err), 0, "%s", err.msg);
	cJSON *want = values_of(v);
	cr_assert(cJSON_Compare(doc, cJSON_GetObjectItem(want, "m"), 1), "the mapping round-trips");
	cJSON_Delete(doc);
	cJSON_Delete(want);
	free(out);
}

Test(render, block_tags_on_their_own_lines_leave_no_blank_lines)
{
	const char *v = "{\"t\":true,\"f\":false,\"l\":[\"a\",\"b\"]}";
	expect("a:\n  {{ if .t }}\n  b: 1\n  {{ end }}\nc: 2\n", v, "a:\n  b: 1\nc: 2\n");
	expect("a:\n  {{ if .f }}\n  b: 1\n  {{ else }}\n  b: 2\n  {{ end }}\nc: 2\n", v, "a:\n  b: 2\nc: 2\n");
	expect("list:\n{{ range .l }}\n  - {{ . }}\n{{ end }}\nend: 1\n", v, "list:\n  - a\n  - b\nend: 1\n");
	expect("{{ if .t }}\nfirst\n{{ end }}", v, "first\n");     /* at the very start and end */
	expect("{{# a comment }}\nx: 1\n", v, "x: 1\n");
	expect("x{{# inline comment }}y\n", v, "xy\n");
	expect("a {{ if .t }}b{{ end }}\n", v, "a b\n");              /* not alone on the line: kept */
	expect("{{ if .t }} {{ .t }}\n{{ end }}", v, " true\n");
	expect("  {{ if .t }}  \t\r\nx\n{{ end }}\n", v, "x\n");
	/* Go's trim markers */
	expect("x  {{- .t -}}  \n y", v, "xtruey");
	expect("a,\n  {{- range .l }} {{ . }}{{ end }}", v, "a, a b");
	expect("{{- \"x\" | raw -}}", v, "x");
}

/* ---- quoting ---- */

static const char *const hostile[] = {
	"true", "false", "null", "Null", "NULL", "~", "yes", "no", "on", "off", "y", "n", "Yes", "NO", "On", "OFF",
	"0x1F", "0o17", "017", "1e3", "1E3", "2026-01-01", "2026-01-01T10:00:00Z", "12:30", "1:20:30", "0", "00", "1",
	"-1", "+1", "1.5", ".5", "1_000", "inf", ".inf", "-.inf", ".nan", "NaN", "<<", "=", "-", "- x", "? x", ":",
	"a: b", "a:b", "key:", "a #b", "#c", "a#b", "{x}", "[y]", "a,b", ",", "'q'", "\"dq\"", "it's", "@at", "`bt",
	"!tag", "!!str x", "&anchor", "*alias", "|", ">", "|-\n  x", "%dir", "---", "...", "--- x", "", " ", "  ",
	" lead", "trail ", "in  ner", "line1\nline2", "trailing newline\n", "\n", "tab\there", "cr\rx", "crlf\r\n",
	"{{ .v }}", "{{", "}}", "back\\slash", "\\n", "\x01ctl\x1f", "del\x7f", "ünïcödé ✓ 日本語", "emoji 😀",
	"nel\xc2\x85x", "ls\xe2\x80\xa8x", "ps\xe2\x80\xa9x", "bom\xef\xbb\xbfx", "nonchar\xef\xbf\xbe\xef\xbf\xbf",
	"c1\xc2\x80\xc2\x9f", "nbsp\xc2\xa0x", "nvidia.com/gpu", "hello world", "plain-ok_1.2/x", "/abs/path",
	"_under", "a/b:c", "v1.2.3", "$HOME", "$(rm -rf /)", "%", "a%b",
};

/* s as a YAML value, parsed back, is exactly s: as a mapping value, a
 * sequence item, a flow sequence item, (when short) a mapping key, and
 * through the json filter. */
static void yaml_round_trip(const char *s)
{
	static const char *const forms[] = { "key: {{ .v }}\n", "- {{ .v }}\n", "[{{ .v }}, x]\n",
					     "a:\n  b: {{ .v }}\n", "{{ .v }}: 1\n", "key: {{ .v | json }}\n",
					     "key: [{{ .v | json }}]\n" };
	cJSON *v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "v", s);
	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		if (f == 4 && strlen(s) > 1000)
			continue; /* YAML limits implicit keys to 1024 characters */
		struct buf out = BUF_INIT;
		struct gerr err = GERR_INIT;
		cr_assert_eq(render_string(NULL, "q.tmpl", forms[f], strlen(forms[f]), v, &out, &err), 0, "%s", err.msg);
		cJSON *doc = NULL;
		cr_assert_eq(yaml_parse(out.s, out.len, "q", &doc, &err), 0, "%.60s: %s\nrendered: %.200s", s, err.msg,
			     out.s);
		const cJSON *got = f == 0 || f == 5 ? cJSON_GetObjectItem(doc, "key")
				   : f == 6 ? cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "key"), 0)
				   : f == 1 || f == 2 ? cJSON_GetArrayItem(doc, 0)
				   : f == 3 ? cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "a"), "b")
				   : doc->child;
		cr_assert_not_null(got, "%.60s: nothing at the value's place in %.200s", s, out.s);
		const char *text = f == 4 ? got->string : got->valuestring;
		cr_assert(f == 4 || cJSON_IsString(got), "%.60s became a non-string in %.200s", s, out.s);
		cr_assert_str_eq(text, s, "form %zu, rendered: %.200s", f, out.s);
		if (f == 2)
			cr_assert_str_eq(cJSON_GetArrayItem(doc, 1)->valuestring, "x", "%s broke the flow sequence", s);
		cJSON_Delete(doc);
		buf_release(&out);
	}
	cJSON_Delete(v);
}

Test(render, yaml_quoting_round_trips_hostile_strings)
{
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
		yaml_round_trip(hostile[i]);
}

Test(render, yaml_quoting_round_trips_a_100k_string)
{
	struct buf big = BUF_INIT;
	while (big.len < 100 * 1024)
		buf_adds(&big, "a: \"b\" #c {{ d }}\n\t\\ é ✓ ");
	yaml_round_trip(big.s);
	buf_release(&big);
}

Test(render, yaml_quotes_only_what_needs_it)
{
	expect("{{ .a }} {{ .b }} {{ .c }} {{ .d }}", "{\"a\":\"nvidia.com/gpu\",\"b\":\"hello world\",\"c\":\"true\",\"d\":\"0x1F\"}",
	       "nvidia.com/gpu hello world \"true\" \"0x1F\"");
	expect("{{ .a }}", "{\"a\":\"line\\nnext \\\"q\\\"\"}", "\"line\\nnext \\\"q\\\"\"");
}

Test(render, invalid_utf8_is_an_error)
{
	cJSON *v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "v", "bad \xff byte");
	cJSON_AddStringToObject(v, "o", "overlong \xc0\xaf");
	cJSON_AddStringToObject(v, "s", "surrogate \xed\xa0\x80");
	const char *const t[] = { "{{ .v }}", "{{ .o }}", "{{ .s | toml }}" };
	for (int i = 0; i < 3; i++) {
		struct buf out = BUF_INIT;
		struct gerr err = GERR_INIT;
		cr_assert_eq(render_string(NULL, "u.tmpl", t[i], strlen(t[i]), v, &out, &err), -1);
		cr_assert(strstr(err.msg, "u.tmpl:1: .") && strstr(err.msg, "not valid UTF-8"), "%s", err.msg);
		cr_assert_eq(err.code, GERR_INVALID);
		gerr_clear(&err);
		buf_release(&out);
	}
	cJSON_Delete(v);
}

Test(render, numbers_and_booleans_round_trip_as_yaml)
{
	const char *json = "{\"i\":42,\"neg\":-7,\"f\":0.1,\"third\":0.3333333333333333,\"big\":1e20,\"small\":1.5e-7,"
			   "\"t\":true,\"fa\":false,\"z\":null}";
	char *out = render_ok("i: {{ .i }}\nneg: {{ .neg }}\nf: {{ .f }}\nthird: {{ .third }}\nbig: {{ .big }}\n"
			      "small: {{ .small }}\nt: {{ .t }}\nfa: {{ .fa }}\nz: {{ .z }}\n",
			      json);
	cJSON *doc = NULL, *want = values_of(json);
	struct gerr err = GERR_INIT;
	cr_assert_eq(yaml_parse(out, strlen(out), "n", &doc, &err), 0, "%s", err.msg);
	cr_assert(cJSON_Compare(doc, want, 1), "numbers round-trip: %s", out);
	cJSON_Delete(doc);
	cJSON_Delete(want);
	free(out);
}

Test(render, objects_and_lists_as_block_yaml_with_indent)
{
	const char *json = "{\"obj\":{\"a\":[1,{\"b\":\"x: y\",\"c\":[],\"d\":{\"e\":\"yes\"}},[\"n1\",[\"n2\"]]],"
			   "\"empty\":{},\"s\":\"on\",\"nvidia.com/gpu.product\":\"H100\"}}";
	char *out = render_ok("spec:\n  inner:\n    {{ .obj | indent 4 }}\n  after: 1\n", json);
	cJSON *doc = NULL, *want = values_of(json);
	struct gerr err = GERR_INIT;
	cr_assert_eq(yaml_parse(out, strlen(out), "b", &doc, &err), 0, "%s\n%s", err.msg, out);
	const cJSON *spec = cJSON_GetObjectItem(doc, "spec");
	cr_assert(cJSON_Compare(cJSON_GetObjectItem(spec, "inner"), cJSON_GetObjectItem(want, "obj"), 1), "%s", out);
	cr_assert_eq(cJSON_GetObjectItem(spec, "after")->valuedouble, 1);
	cJSON_Delete(doc);
	/* the same as compact JSON (a YAML flow value), and JSON as a YAML string */
	free(out);
	out = render_ok("j: {{ .obj | json }}\ns: {{ .obj | json | yaml }}\n", json);
	cr_assert_eq(yaml_parse(out, strlen(out), "j", &doc, &err), 0, "%s\n%s", err.msg, out);
	cr_assert(cJSON_Compare(cJSON_GetObjectItem(doc, "j"), cJSON_GetObjectItem(want, "obj"), 1), "%s", out);
	char *compact = cJSON_PrintUnformatted(cJSON_GetObjectItem(want, "obj"));
	cr_assert_str_eq(cJSON_GetObjectItem(doc, "s")->valuestring, compact);
	free(compact);
	cJSON_Delete(doc);
	cJSON_Delete(want);
	free(out);
	expect("{{ .e }} {{ .l }}", "{\"e\":{},\"l\":[]}", "{} []");
	expect("{{ .l | indent 2 }}", "{\"l\":[\"a\",\"b\"]}", "- a\n  - b");
}

Test(render, toml_values_round_trip_through_the_toml_reader)
{
	static const char *const strs[] = { "plain", "", "\"quoted\"", "back\\slash", "it's", "line\nnext", "tab\tx",
					    "cr\rx", "ünï ✓", "# not a comment", "[not.a.table]", "k = v", "true", "1",
					    "{{ x }}", "' single'" };
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		cJSON *v = cJSON_CreateObject();
		cJSON_AddStringToObject(v, "v", strs[i]);
		const char *t = "[plugins.\"x\"]\n  k = {{ .v | toml }}\n";
		struct buf out = BUF_INIT;
		struct gerr err = GERR_INIT;
		cr_assert_eq(render_string(NULL, "t.toml.tmpl", t, strlen(t), v, &out, &err), 0, "%s", err.msg);
		char *got = toml_get_string(out.s, "plugins.x", "k");
		cr_assert_not_null(got, "%s: no string in %s", strs[i], out.s);
		cr_assert_str_eq(got, strs[i], "rendered: %s", out.s);
		free(got);
		buf_release(&out);
		cJSON_Delete(v);
	}
	/* what the reader cannot decode is still escaped as TOML wants it */
	expect("{{ .v | toml }}", "{\"v\":\"\\u0001\\u007f\\b\\f\"}", "\"\\u0001\\u007F\\b\\f\"");
	char *out = render_ok("i = {{ .i | toml }}\nf = {{ .f | toml }}\nb = {{ .b | toml }}\nl = {{ .l | toml }}\n"
			      "o = {{ .o | toml }}\ne = {{ .e | toml }}\n",
			      "{\"i\":42,\"f\":0.5,\"b\":false,\"l\":[\"a\",1,true],\"o\":{\"bare_k-1\":1,\"dotted.key\":\"x\"},\"e\":{}}");
	static const char *const raw[][2] = { { "i", "42" }, { "f", "0.5" }, { "b", "false" },
					      { "l", "[\"a\", 1, true]" }, { "o", "{ bare_k-1 = 1, \"dotted.key\" = \"x\" }" },
					      { "e", "{}" } };
	for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		char *got = toml_get_raw(out, "", raw[i][0]);
		cr_assert_not_null(got, "%s missing in %s", raw[i][0], out);
		cr_assert_str_eq(got, raw[i][1]);
		free(got);
	}
	free(out);
	enum gerr_code code;
	char *msg = render_fail(NULL, "x = {{ .z | toml }}", "{\"z\":null}", &code);
	cr_assert(strstr(msg, "t.tmpl:1: .z: TOML has no null"), "%s", msg);
	free(msg);
}

/* ---- errors ---- */

Test(render, errors_name_the_template_and_line)
{
	static const struct {
		const char *tmpl, *json, *want;
		enum gerr_code code;
	} cases[] = {
		{ "a\nb\n{{ .nope.x }}\n", "{}", "t.tmpl:3: unknown variable .nope.x", GERR_INVALID },
		{ "{{ range .l }}\n{{ .missing }}\n{{ end }}", "{\"l\":[1]}", "t.tmpl:2: unknown variable .missing",
		  GERR_INVALID },
		{ "{{ .l.5 }}", "{\"l\":[1]}", "t.tmpl:1: unknown variable .l.5", GERR_INVALID },
		{ "{{ .s.x }}", "{\"s\":\"str\"}", "t.tmpl:1: unknown variable .s.x", GERR_INVALID },
		{ "{{ range .nope }}{{ end }}", "{}", "t.tmpl:1: unknown variable .nope", GERR_INVALID },
		{ "x\n{{ if .a }}\ny\n", "{}", "t.tmpl:2: unclosed {{ if }}: no {{ end }}", GERR_PARSE },
		{ "{{ range .l }}\n{{ if .a }}{{ end }}", "{}", "t.tmpl:1: unclosed {{ range }}", GERR_PARSE },
		{ "ok\n\n{{ end }}\n", "{}", "t.tmpl:3: {{ end }} without a matching {{ if }} or {{ range }}", GERR_PARSE },
		{ "{{ else }}", "{}", "t.tmpl:1: {{ else }} without a matching", GERR_PARSE },
		{ "{{ if .a }}\n{{ else }}\n{{ else }}\n{{ end }}", "{}", "t.tmpl:3: a second {{ else }} for the {{ if }} of line 1",
		  GERR_PARSE },
		{ "{{ range .l }}{{ else if .a }}{{ end }}", "{}", "t.tmpl:1: {{ else if }} inside {{ range }}", GERR_PARSE },
		{ "{{ range .s }}x{{ end }}", "{\"s\":\"str\"}", "t.tmpl:1: range over .s: it is not a list or a mapping",
		  GERR_INVALID },
		{ "{{ range .n }}x{{ end }}", "{\"n\":3}", "range over .n: it is not a list", GERR_INVALID },
		{ "{{ range \"x\" }}{{ end }}", "{}", "t.tmpl:1: range needs a path", GERR_PARSE },
		{ "a\n{{ .a", "{}", "t.tmpl:2: unclosed action: {{ without }}", GERR_PARSE },
		{ "{{ \"abc }}", "{}", "t.tmpl:1: unterminated string", GERR_PARSE },
		{ "{{ .a | upper }}", "{\"a\":1}", "t.tmpl:1: expected a filter (yaml, toml, json, raw, indent N), found \"upper\"",
		  GERR_PARSE },
		{ "{{ .a | indent }}", "{\"a\":1}", "indent needs a number", GERR_PARSE },
		{ "{{ .a..b }}", "{}", "t.tmpl:1: \".a..b\" is not a path", GERR_PARSE },
		{ "{{ .a .b }}", "{}", "t.tmpl:1: expected the end of the action, found \".b\"", GERR_PARSE },
		{ "{{ }}", "{}", "t.tmpl:1: expected a value", GERR_PARSE },
		{ "{{ foo }}", "{}", "t.tmpl:1: expected a value or if, else, end, range, found \"foo\"", GERR_PARSE },
		{ "{{ if }}{{ end }}", "{}", "t.tmpl:1: expected a value", GERR_PARSE },
		{ "{{ \"\\q\" }}", "{}", "unknown escape \\q", GERR_PARSE },
		{ "{{ .o | raw }}", "{\"o\":{}}", "t.tmpl:1: .o: raw needs a string, number or boolean, not a mapping",
		  GERR_INVALID },
		/* a syntax error is found even in a branch that does not run */
		{ "{{ if .a }}{{ .x | nope }}{{ end }}", "{}", "expected a filter", GERR_PARSE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum gerr_code code;
		char *msg = render_fail(NULL, cases[i].tmpl, cases[i].json, &code);
		cr_assert(strstr(msg, cases[i].want), "case %zu: got \"%s\", wanted \"%s\"", i, msg, cases[i].want);
		cr_assert_eq(code, cases[i].code, "case %zu: %s", i, msg);
		free(msg);
	}
}

Test(render, output_size_is_bounded)
{
	struct render_ctx rc = { .max_output = 100 };
	struct buf t = BUF_INIT;
	for (int i = 0; i < 30; i++)
		buf_adds(&t, "line\n");
	char *msg = render_fail(&rc, t.s, "{}", NULL);
	cr_assert(strstr(msg, "t.tmpl:1: the output would be larger than 100 bytes"), "%s", msg);
	free(msg);
	buf_release(&t);
	msg = render_fail(&rc, "{{ .v }}", "{\"v\":\"0123456789012345678901234567890123456789012345678901234567890123456789"
					    "0123456789012345678901234567890123456789\"}", NULL);
	cr_assert(strstr(msg, "larger than 100 bytes"), "%s", msg);
	free(msg);
	/* the default bound: 1 MiB */
	cJSON *v = cJSON_CreateObject();
	struct buf big = BUF_INIT;
	while (big.len < 100 * 1024)
		buf_adds(&big, "0123456789abcdef");
	cJSON_AddStringToObject(v, "big", big.s);
	cJSON *l = cJSON_AddArrayToObject(v, "l");
	for (int i = 0; i < 11; i++)
		cJSON_AddItemToArray(l, cJSON_CreateNumber(i));
	const char *tmpl = "{{ range .l }}\n{{ $.big | raw }}\n{{ end }}";
	struct buf out = BUF_INIT;
	struct gerr err = GERR_INIT;
	cr_assert_eq(render_string(NULL, "big.tmpl", tmpl, strlen(tmpl), v, &out, &err), -1);
	cr_assert(strstr(err.msg, "big.tmpl:2: the output would be larger than 1048576 bytes"), "%s", err.msg);
	cr_assert_eq(out.len, 0);
	gerr_clear(&err);
	cJSON_DeleteItemFromArray(l, 10);
	cr_assert_eq(render_string(NULL, "big.tmpl", tmpl, strlen(tmpl), v, &out, &err), 0, "%s", err.msg);
	cr_assert_eq(out.len, 10 * (big.len + 1));
	buf_release(&out);
	buf_release(&big);
	cJSON_Delete(v);
}

Test(render, nesting_and_work_are_bounded)
{
	struct buf t = BUF_INIT;
	for (int i = 0; i < RENDER_MAX_DEPTH; i++)
		buf_adds(&t, "{{ if .a }}");
	for (int i = 0; i < RENDER_MAX_DEPTH; i++)
		buf_adds(&t, "{{ end }}");
	char *out = render_ok(t.s, "{\"a\":1}");
	cr_assert_str_eq(out, "");
	free(out);
	buf_reset(&t);
	for (int i = 0; i <= RENDER_MAX_DEPTH; i++)
		buf_addf(&t, "{{ if .a }}\n");
	char *msg = render_fail(NULL, t.s, "{}", NULL);
	cr_assert(strstr(msg, "t.tmpl:33: blocks nest deeper than 32"), "%s", msg);
	free(msg);
	buf_reset(&t);
	buf_adds(&t, "{{ if .a }}");
	for (int i = 0; i < 40; i++)
		buf_adds(&t, "{{ else if .a }}");
	buf_adds(&t, "{{ end }}");
	msg = render_fail(NULL, t.s, "{}", NULL);
	cr_assert(strstr(msg, "nest deeper"), "%s", msg);
	free(msg);
	/* 10^7 iterations of nothing: stopped by the step bound, not run */
	buf_reset(&t);
	for (int i = 0; i < 7; i++)
		buf_adds(&t, "{{ range $.l }}");
	for (int i = 0; i < 7; i++)
		buf_adds(&t, "{{ end }}");
	msg = render_fail(NULL, t.s, "{\"l\":[0,1,2,3,4,5,6,7,8,9]}", NULL);
	cr_assert(strstr(msg, "the template runs more than 1000000 steps"), "%s", msg);
	free(msg);
	buf_release(&t);
}

/* ---- the embedded set and the override folder ---- */

Test(render, every_template_file_is_embedded)
{
	DIR *d = opendir(TEMPLATES);
	cr_assert_not_null(d, "%s", TEMPLATES);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 5, ".tmpl"))
			continue;
		n++;
		const struct render_embedded *e = render_embedded_find(de->d_name);
		cr_assert_not_null(e, "templates/%s is not embedded: add it to templates in meson.build", de->d_name);
		char *path = xasprintf("%s/%s", TEMPLATES, de->d_name);
		struct buf text = BUF_INIT;
		struct gerr err = GERR_INIT;
		cr_assert_eq(buf_read_file(&text, path, 1 << 20, &err), 0, "%s", err.msg);
		cr_assert_eq(e->len, text.len);
		cr_assert_str_eq(e->text, text.s, "the embedded %s is its file", de->d_name);
		buf_release(&text);
		free(path);
	}
	closedir(d);
	int m = 0;
	for (const struct render_embedded *e = render_embedded_list(); e->name; e++)
		m++;
	cr_assert_eq(m, n, "as many embedded templates as files");
	cr_assert(n >= 2);
	cr_assert_null(render_embedded_find("nope.tmpl"));
}

/* The object phase_runtimeclass built with cJSON before it used the template. */
static cJSON *runtimeclass_before(void)
{
	cJSON *rc = cJSON_CreateObject();
	cJSON_AddStringToObject(rc, "apiVersion", "node.k8s.io/v1");
	cJSON_AddStringToObject(rc, "kind", "RuntimeClass");
	cJSON *md = cJSON_AddObjectToObject(rc, "metadata");
	cJSON_AddStringToObject(md, "name", "nvidia");
	cJSON *labels = cJSON_AddObjectToObject(md, "labels");
	cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "gpuctl");
	cJSON_AddStringToObject(rc, "handler", "nvidia");
	return rc;
}

Test(render, the_runtimeclass_is_the_object_deploy_built_before)
{
	cJSON *values = values_of("{\"name\":\"nvidia\",\"handler\":\"nvidia\"}"), *docs = NULL;
	struct gerr err = GERR_INIT;
	struct buf text = BUF_INIT;
	cr_assert_eq(render_yaml_docs(NULL, "runtimeclass.yaml.tmpl", values, &docs, &text, &err), 0, "%s", err.msg);
	cr_assert_eq(cJSON_GetArraySize(docs), 1);
	cJSON *want = runtimeclass_before();
	char *a = cJSON_PrintUnformatted(cJSON_GetArrayItem(docs, 0)), *b = cJSON_PrintUnformatted(want);
	cr_assert_str_eq(a, b, "same object, same key order; rendered:\n%s", text.s);
	free(a);
	free(b);
	cJSON_Delete(want);
	cJSON_Delete(docs);
	cJSON_Delete(values);
	buf_release(&text);
}

static const char talos_before[] =
	"# Talos has no SSH; the NVIDIA runtime comes from system extensions and a machine-config patch:\n"
	"# talosctl patch mc --nodes <node> --patch @gpu-patch.yaml\n"
	"machine:\n"
	"  kernel:\n"
	"    modules:\n"
	"      - name: nvidia\n"
	"      - name: nvidia_uvm\n"
	"      - name: nvidia_drm\n"
	"      - name: nvidia_modeset\n"
	"  sysctls:\n"
	"    net.core.bpf_jit_harden: 1\n"
	"# and install the extensions siderolabs/nvidia-container-toolkit and siderolabs/nonfree-kmod-nvidia\n"
	"# (or nvidia-open-gpu-kernel-modules) in the node's installer image.\n";

Test(render, the_talos_patch_is_the_text_deploy_printed_before)
{
	cJSON *values = cJSON_CreateObject(), *docs = NULL;
	struct gerr err = GERR_INIT;
	struct buf text = BUF_INIT;
	cr_assert_eq(render_yaml_docs(NULL, "talos-patch.yaml.tmpl", values, &docs, &text, &err), 0, "%s", err.msg);
	cr_assert_str_eq(text.s, talos_before);
	const cJSON *mods = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(docs, 0),
								"machine"), "kernel"), "modules");
	cr_assert_eq(cJSON_GetArraySize(mods), 4);
	cJSON_Delete(docs);
	cJSON_Delete(values);
	buf_release(&text);
}

static char *write_file(const char *dir, const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f, "%s", p);
	fputs(text, f);
	fclose(f);
	return p;
}

Test(render, the_override_folder_wins)
{
	char dir[] = "/tmp/gpuctl-render-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char *p1 = write_file(dir, "runtimeclass.yaml.tmpl", "kind: Mine\nname: {{ .name }}\n");
	char *p2 = write_file(dir, "broken.yaml.tmpl", "ok: 1\n\n{{ .missing }}\n");
	char *p3 = write_file(dir, "badyaml.yaml.tmpl", "a: [1,\n");
	char *p4 = write_file(dir, "two.yaml.tmpl", "a: {{ .name }}\n---\nb: 2\n");
	struct render_ctx rc = { .dir = dir };
	cJSON *values = values_of("{\"name\":\"nvidia\"}"), *docs = NULL, *docs2 = NULL;
	struct buf out = BUF_INIT, talos = BUF_INIT;
	struct gerr e1 = GERR_INIT, e2 = GERR_INIT, e3 = GERR_INIT, e4 = GERR_INIT, e5 = GERR_INIT;
	int r1 = render_template(&rc, "runtimeclass.yaml.tmpl", values, &out, &e1);
	int r2 = render_template(&rc, "talos-patch.yaml.tmpl", values, &talos, &e2); /* not in dir: embedded */
	int r3 = render_template(&rc, "broken.yaml.tmpl", values, &out, &e3);
	int r4 = render_yaml_docs(&rc, "badyaml.yaml.tmpl", values, &docs, NULL, &e4);
	int r5 = render_yaml_docs(&rc, "two.yaml.tmpl", values, &docs2, NULL, &e5);
	struct gerr e6 = GERR_INIT, e7 = GERR_INIT, e8 = GERR_INIT;
	int r6 = render_template(&rc, "absent.tmpl", values, &out, &e6);
	int r7 = render_check_dir(dir, &e7);
	int r8 = render_check_dir(p1, &e8);
	unlink(p1);
	unlink(p2);
	unlink(p3);
	unlink(p4);
	rmdir(dir);
	struct gerr e9 = GERR_INIT;
	int r9 = render_check_dir(dir, &e9);

	cr_assert_eq(r1, 0, "%s", e1.msg);
	cr_assert_str_eq(out.s, "kind: Mine\nname: nvidia\n");
	cr_assert_eq(r2, 0, "%s", e2.msg);
	cr_assert_str_eq(talos.s, talos_before);
	cr_assert_eq(r3, -1);
	char *want = xasprintf("%s/broken.yaml.tmpl:3: unknown variable .missing", dir);
	cr_assert_str_eq(e3.msg, want, "an override's errors name its path");
	free(want);
	cr_assert_eq(r4, -1);
	cr_assert_null(docs);
	cr_assert(strstr(e4.msg, "badyaml.yaml.tmpl (rendered):") && e4.code == GERR_PARSE, "%s", e4.msg);
	cr_assert_eq(r5, 0, "%s", e5.msg);
	cr_assert_eq(cJSON_GetArraySize(docs2), 2);
	cr_assert_str_eq(cJSON_GetArrayItem(docs2, 0)->child->valuestring, "nvidia");
	cr_assert_eq(r6, -1);
	cr_assert_eq(e6.code, GERR_NOTFOUND, "%s", e6.msg);
	cr_assert(strstr(e6.msg, "no template \"absent.tmpl\""), "%s", e6.msg);
	cr_assert_eq(r7, 0, "%s", e7.msg);
	cr_assert_eq(r8, -1);
	cr_assert(strstr(e8.msg, "not a folder") && e8.code == GERR_USAGE, "%s", e8.msg);
	cr_assert_eq(r9, -1);
	cr_assert(strstr(e9.msg, "--templates /tmp/gpuctl-render-") && strstr(e9.msg, "No such file"), "%s", e9.msg);
	cr_assert_eq(e9.code, GERR_USAGE);
	free(p1);
	free(p2);
	free(p3);
	free(p4);
	cJSON_Delete(docs2);
	cJSON_Delete(values);
	buf_release(&out);
	buf_release(&talos);
	gerr_clear(&e1);
	gerr_clear(&e3);
	gerr_clear(&e4);
	gerr_clear(&e6);
	gerr_clear(&e8);
	gerr_clear(&e9);
}

Test(render, the_yaml_and_toml_string_helpers)
{
	struct buf b = BUF_INIT;
	struct gerr err = GERR_INIT;
	cr_assert_eq(render_yaml_string("a\"b", 3, &b, &err), 0);
	cr_assert_eq(render_toml_string("a\"b", 3, &b, &err), 0);
	cr_assert_eq(render_yaml_string("ok", 2, &b, &err), 0);
	cr_assert_str_eq(b.s, "\"a\\\"b\"\"a\\\"b\"ok");
	cr_assert_eq(render_yaml_string("yes-", 3, &b, &err), 0, "only len bytes are read");
	cr_assert_str_eq(b.s + 14, "\"yes\"");
	buf_release(&b);
}

Test(render, the_templates_flag_is_global_and_checked)
{
	struct opt none[] = { OPT_END };
	char dir[] = "/tmp/gpuctl-render-flag-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char *ok_argv[] = { (char *)"deploy", (char *)"--templates", dir, (char *)"node-1", NULL };
	char *bad_argv[] = { (char *)"validate", (char *)"--templates=/nonexistent/templates", NULL };
	struct gctx g = { 0 }, g2 = { 0 };
	struct gerr err = GERR_INIT, err2 = GERR_INIT;
	char **rest;
	int nrest, help;
	int r1 = opt_parse(&g, 4, ok_argv, none, "u", NULL, &rest, &nrest, &help, &err);
	int r2 = opt_parse(&g2, 2, bad_argv, none, "u", NULL, &rest, &nrest, &help, &err2);
	rmdir(dir);
	cr_assert_eq(r1, 0, "%s", err.msg);
	cr_assert_str_eq(g.templates_dir, dir);
	cr_assert_eq(r2, -1);
	cr_assert_eq(err2.code, GERR_USAGE);
	cr_assert_str_eq(err2.msg, "--templates /nonexistent/templates: No such file or directory");
	gerr_clear(&err2);
}
