/* Label, taint and selector syntax: what kubectl accepts and rejects. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "gpuctl/labels.h"

struct syntax_case {
	const char *in;
	int ok;
	const char *expect; /* substring of the error, or of the parsed form */
};

Test(labels, keys_and_values)
{
	static const struct syntax_case keys[] = {
		{ "accelerator", 1, NULL }, { "nvidia.com/gpu.product", 1, NULL }, { "a_b.c-d", 1, NULL },
		{ "k8s.io/x", 1, NULL }, { "", 0, "must not be empty" }, { "-a", 0, "alphanumeric" },
		{ "a-", 0, "alphanumeric" }, { "Nvidia.com/x", 0, "lowercase" }, { "a/b/c", 0, "at most one '/'" },
		{ "/x", 0, "prefix must not be empty" }, { "bad..key/x", 0, "no empty part" },
		{ "a.-b/x", 0, "each part begins and ends" }, { ".a/x", 0, "no empty part" }, { "x/", 0, "must not be empty" }, { "a b", 0, "may contain only" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, "63" },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct gerr err = GERR_INIT;
		int rc = label_key_valid(keys[i].in, &err);
		cr_expect_eq(rc == 0, keys[i].ok, "key \"%s\"", keys[i].in);
		if (!keys[i].ok)
			cr_expect(err.msg && strstr(err.msg, keys[i].expect), "key \"%s\": %s", keys[i].in, err.msg);
		gerr_clear(&err);
	}
	static const struct syntax_case values[] = {
		{ "", 1, NULL }, { "NVIDIA-H100-80GB-HBM3", 1, NULL }, { "v1.2_3", 1, NULL },
		{ "-x", 0, "alphanumeric" }, { "a b", 0, "may contain only" }, { "a/b", 0, "may contain only" },
	};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		struct gerr err = GERR_INIT;
		cr_expect_eq(label_value_valid(values[i].in, &err) == 0, values[i].ok, "value \"%s\"", values[i].in);
		if (!values[i].ok)
			cr_expect(err.msg && strstr(err.msg, values[i].expect), "value \"%s\": %s", values[i].in, err.msg);
		gerr_clear(&err);
	}
}

Test(labels, label_ops)
{
	struct label_op op;
	struct gerr err = GERR_INIT;
	cr_assert_eq(label_op_parse("gpu-type=H100", &op, &err), 0);
	cr_assert_str_eq(op.key, "gpu-type");
	cr_assert_str_eq(op.value, "H100");
	label_op_release(&op);
	cr_assert_eq(label_op_parse("empty=", &op, &err), 0);
	cr_assert_str_eq(op.value, "");
	label_op_release(&op);
	cr_assert_eq(label_op_parse("gone-", &op, &err), 0);
	cr_assert_str_eq(op.key, "gone");
	cr_assert_null(op.value);
	label_op_release(&op);
	static const struct syntax_case bad[] = {
		{ "a=b=c", 0, "more than one '='" }, { "=v", 0, "must not be empty" }, { "a=-b", 0, "alphanumeric" },
		{ "justakey", 0, "use KEY=VALUE" }, { "Bad.Prefix/k=v", 0, "lowercase" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(label_op_parse(bad[i].in, &op, &err), -1, "%s", bad[i].in);
		cr_expect(err.msg && strstr(err.msg, bad[i].expect), "%s: %s", bad[i].in, err.msg);
		cr_expect(err.msg && strstr(err.msg, bad[i].in), "the error names the argument: %s", err.msg);
		cr_expect_eq(err.code, GERR_USAGE);
		gerr_clear(&err);
	}
	cr_assert(label_arg_is_op("a=b"));
	cr_assert(label_arg_is_op("a-"));
	cr_assert(!label_arg_is_op("gpu-node-1"));
}

Test(labels, conflicting_label_ops)
{
	struct label_op ops[2] = { { (char *)"a", (char *)"1" }, { (char *)"a", NULL } };
	struct gerr err = GERR_INIT;
	cr_assert_eq(label_ops_check(ops, 2, &err), -1);
	cr_assert(strstr(err.msg, "can not both modify and remove"), "%s", err.msg);
	gerr_clear(&err);
	struct label_op twice[2] = { { (char *)"a", (char *)"1" }, { (char *)"a", (char *)"2" } };
	cr_assert_eq(label_ops_check(twice, 2, &err), -1);
	gerr_clear(&err);
	struct label_op same[2] = { { (char *)"a", (char *)"1" }, { (char *)"a", (char *)"1" } };
	cr_assert_eq(label_ops_check(same, 2, &err), 0);
}

Test(taints, parse_forms)
{
	struct taint_op op;
	struct gerr err = GERR_INIT;
	cr_assert_eq(taint_op_parse("nvidia.com/gpu=true:NoSchedule", &op, &err), 0, "%s", err.msg);
	cr_assert_str_eq(op.key, "nvidia.com/gpu");
	cr_assert_str_eq(op.value, "true");
	cr_assert_str_eq(op.effect, "NoSchedule");
	cr_assert(!op.remove);
	taint_op_release(&op);
	cr_assert_eq(taint_op_parse("dedicated:NoExecute", &op, &err), 0);
	cr_assert_str_eq(op.value, "");
	cr_assert_str_eq(op.effect, "NoExecute");
	taint_op_release(&op);
	cr_assert_eq(taint_op_parse("dedicated:PreferNoSchedule-", &op, &err), 0);
	cr_assert(op.remove);
	cr_assert_str_eq(op.effect, "PreferNoSchedule");
	taint_op_release(&op);
	cr_assert_eq(taint_op_parse("dedicated-", &op, &err), 0);
	cr_assert(op.remove);
	cr_assert_str_eq(op.effect, "", "KEY- removes every effect");
	taint_op_release(&op);
	cr_assert_eq(taint_op_parse("dedicated=x:NoSchedule-", &op, &err), 0);
	cr_assert(op.remove);
	cr_assert_str_eq(op.key, "dedicated");
	taint_op_release(&op);
}

Test(taints, parse_errors)
{
	static const struct syntax_case bad[] = {
		{ "key=value", 0, "use KEY=VALUE:EFFECT" },
		{ "key=value:Sometimes", 0, "invalid taint effect \"Sometimes\"" },
		{ "key:noschedule", 0, "must be NoSchedule, PreferNoSchedule or NoExecute" },
		{ "a:b:NoSchedule", 0, "use KEY=VALUE:EFFECT" },
		{ "a=b=c:NoSchedule", 0, "more than one '='" },
		{ "=v:NoSchedule", 0, "must not be empty" },
		{ "k=-v:NoSchedule", 0, "alphanumeric" },
		{ "k:Bogus-", 0, "invalid taint effect" },
		{ "Bad/k:NoSchedule", 0, "lowercase" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct taint_op op;
		struct gerr err = GERR_INIT;
		cr_expect_eq(taint_op_parse(bad[i].in, &op, &err), -1, "%s", bad[i].in);
		cr_expect(err.msg && strstr(err.msg, bad[i].expect), "%s: %s", bad[i].in, err.msg);
		cr_expect(err.msg && strstr(err.msg, bad[i].in), "the error names the argument: %s", err.msg);
		gerr_clear(&err);
	}
}

Test(taints, conflicting_ops)
{
	struct taint_op a = { (char *)"k", (char *)"1", (char *)"NoSchedule", 0 };
	struct taint_op b = { (char *)"k", (char *)"2", (char *)"NoSchedule", 0 };
	struct taint_op c = { (char *)"k", (char *)"", (char *)"NoExecute", 0 };
	struct taint_op rm_all = { (char *)"k", (char *)"", (char *)"", 1 };
	struct taint_op rm_exec = { (char *)"k", (char *)"", (char *)"NoExecute", 1 };
	struct gerr err = GERR_INIT;
	struct taint_op dup[] = { a, b };
	cr_assert_eq(taint_ops_check(dup, 2, &err), -1);
	cr_assert(strstr(err.msg, "duplicated taints with the same key and effect"), "%s", err.msg);
	gerr_clear(&err);
	struct taint_op two_effects[] = { a, c };
	cr_assert_eq(taint_ops_check(two_effects, 2, &err), 0);
	struct taint_op add_rm[] = { a, rm_all };
	cr_assert_eq(taint_ops_check(add_rm, 2, &err), -1);
	gerr_clear(&err);
	struct taint_op add_rm_other[] = { a, rm_exec };
	cr_assert_eq(taint_ops_check(add_rm_other, 2, &err), 0, "removing another effect of the key is fine");
}

static cJSON *labels(const char *json)
{
	return cJSON_Parse(json);
}

Test(selector, parse_and_match)
{
	struct {
		const char *sel;
		const char *labels;
		int match;
	} cases[] = {
		{ "", "{}", 1 },
		{ "a=b", "{\"a\":\"b\"}", 1 },
		{ "a==b", "{\"a\":\"c\"}", 0 },
		{ "a!=b", "{}", 1 },
		{ "a!=b", "{\"a\":\"b\"}", 0 },
		{ "a", "{\"a\":\"\"}", 1 },
		{ "!a", "{\"a\":\"x\"}", 0 },
		{ "!a", "{}", 1 },
		{ "a in (x, y)", "{\"a\":\"y\"}", 1 },
		{ "a notin (x,y)", "{\"a\":\"y\"}", 0 },
		{ "a notin (x,y)", "{}", 1 },
		{ "nvidia.com/gpu.count>2", "{\"nvidia.com/gpu.count\":\"4\"}", 1 },
		{ "nvidia.com/gpu.count<2", "{\"nvidia.com/gpu.count\":\"4\"}", 0 },
		{ "type=kwok, nvidia.com/gpu.present=true", "{\"type\":\"kwok\",\"nvidia.com/gpu.present\":\"true\"}", 1 },
		{ "type=kwok,!gpu", "{\"type\":\"kwok\",\"gpu\":\"1\"}", 0 },
		{ "a=", "{\"a\":\"\"}", 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct selector s;
		struct gerr err = GERR_INIT;
		cr_assert_eq(selector_parse(cases[i].sel, &s, &err), 0, "\"%s\": %s", cases[i].sel, err.msg);
		cJSON *l = labels(cases[i].labels);
		cr_expect_eq(selector_matches(&s, l), cases[i].match, "\"%s\" on %s", cases[i].sel, cases[i].labels);
		cJSON_Delete(l);
		selector_release(&s);
	}
}

Test(selector, errors_point_at_the_position)
{
	static const struct syntax_case bad[] = {
		{ "a in x", 0, "expected '(' after in/notin" },
		{ "a in (x", 0, "expected ',' or ')'" },
		{ "a=b c=d", 0, "position 5" },
		{ "a>b", 0, "need an integer" },
		{ "Bad.Prefix/k=v", 0, "lowercase" },
		{ "a=-b", 0, "alphanumeric" },
		{ ",a=b", 0, "expected a label key" },
		{ "a=b,", 0, "expected a label key" },
		{ "a ~ b", 0, "expected =, ==, !=, in, notin" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct selector s;
		struct gerr err = GERR_INIT;
		cr_expect_eq(selector_parse(bad[i].in, &s, &err), -1, "\"%s\"", bad[i].in);
		cr_expect(err.msg && strstr(err.msg, bad[i].expect), "\"%s\": %s", bad[i].in, err.msg);
		gerr_clear(&err);
	}
}
