/* The label and taint planners (table-driven) and whole-number quantities. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/json.h"
#include "gpuctl/plan.h"

struct plan_case {
	const char *name;
	const char *node;      /* the Node as read */
	const char *ops;       /* space-separated operations */
	int overwrite, defaults;
	int rc;                /* 0 or -1 */
	enum gerr_code code;   /* when rc == -1 */
	const char *changes;   /* compact JSON */
	const char *state;     /* compact JSON of labels / taints after */
	const char *patch;     /* NULL: nothing to write */
};

static char *compact(const cJSON *j)
{
	return j ? cJSON_PrintUnformatted(j) : NULL;
}

static void run_case(const struct plan_case *c, int taints)
{
	cJSON *node = cJSON_Parse(c->node);
	cr_assert_not_null(node, "%s: bad node JSON", c->name);
	struct label_plan lp = { .overwrite = c->overwrite, .defaults = c->defaults };
	struct taint_plan tp = { .overwrite = c->overwrite };
	char *ops = strdup(c->ops), *save = NULL;
	for (char *a = strtok_r(ops, " ", &save); a; a = strtok_r(NULL, " ", &save)) {
		struct gerr e = GERR_INIT;
		if (taints) {
			tp.ops = realloc(tp.ops, (tp.nops + 1) * sizeof(*tp.ops));
			cr_assert_eq(taint_op_parse(a, &tp.ops[tp.nops++], &e), 0, "%s: %s", c->name, e.msg);
		} else if (c->defaults) {
			/* defaults come from the config file as key: value, "{product}" unparsed */
			lp.ops = realloc(lp.ops, (lp.nops + 1) * sizeof(*lp.ops));
			char *eq = strchr(a, '=');
			lp.ops[lp.nops++] = (struct label_op){ strndup(a, (size_t)(eq - a)), strdup(eq + 1) };
		} else {
			lp.ops = realloc(lp.ops, (lp.nops + 1) * sizeof(*lp.ops));
			cr_assert_eq(label_op_parse(a, &lp.ops[lp.nops++], &e), 0, "%s: %s", c->name, e.msg);
		}
	}
	struct edit_result r = { .node = strdup("gpu-1"), .changes = cJSON_CreateArray() };
	int rc = taints ? taint_plan_node(&tp, node, &r) : label_plan_node(&lp, node, &r);
	cr_assert_eq(rc, c->rc, "%s: rc %d (%s)", c->name, rc, r.err.msg ? r.err.msg : "");
	if (rc < 0) {
		cr_assert_eq(r.err.code, c->code, "%s: code %s: %s", c->name, gerr_code_name(r.err.code), r.err.msg);
	} else {
		char *ch = compact(r.changes), *st = compact(r.state);
		cr_assert_str_eq(ch, c->changes, "%s: changes", c->name);
		cr_assert_str_eq(st, c->state, "%s: state", c->name);
		if (c->patch)
			cr_assert(r.patch && !strcmp(r.patch, c->patch), "%s: patch %s", c->name, r.patch ? r.patch : "(none)");
		else
			cr_assert_null(r.patch, "%s: unexpected patch %s", c->name, r.patch);
		free(ch);
		free(st);
	}
	struct edit_result *rp = malloc(sizeof(*rp));
	*rp = r;
	edit_results_free(rp, 1);
	for (size_t i = 0; i < lp.nops; i++)
		label_op_release(&lp.ops[i]);
	for (size_t i = 0; i < tp.nops; i++)
		taint_op_release(&tp.ops[i]);
	free(lp.ops);
	free(tp.ops);
	free(ops);
	cJSON_Delete(node);
}

#define NODE_LABELS(l) "{\"metadata\":{\"name\":\"gpu-1\",\"labels\":" l "}}"

static const struct plan_case label_cases[] = {
	{ "add", NODE_LABELS("{\"a\":\"1\"}"), "b=2", 0, 0, 0, 0,
	  "[{\"op\":\"add\",\"key\":\"b\",\"value\":\"2\"}]", "{\"a\":\"1\",\"b\":\"2\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"a\":\"1\"}},{\"op\":\"add\",\"path\":\"/metadata/labels/b\",\"value\":\"2\"},{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/added-labels\":\"[\\\"b\\\"]\"}}]" },
	{ "same value: nothing to write", NODE_LABELS("{\"a\":\"1\"}"), "a=1", 0, 0, 0, 0, "[]", "{\"a\":\"1\"}", NULL },
	{ "other value needs --overwrite", NODE_LABELS("{\"a\":\"1\"}"), "a=2", 0, 0, -1, GERR_CONFLICT, NULL, NULL, NULL },
	{ "overwrite", NODE_LABELS("{\"a\":\"1\"}"), "a=2", 1, 0, 0, 0,
	  "[{\"op\":\"update\",\"key\":\"a\",\"value\":\"2\",\"old\":\"1\"}]", "{\"a\":\"2\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"a\":\"1\"}},{\"op\":\"add\",\"path\":\"/metadata/labels/a\",\"value\":\"2\"},{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/overwritten-labels\":\"{\\\"a\\\":\\\"1\\\"}\"}}]" },
	{ "remove", NODE_LABELS("{\"a\":\"1\",\"b\":\"2\"}"), "a-", 0, 0, 0, 0,
	  "[{\"op\":\"remove\",\"key\":\"a\",\"old\":\"1\"}]", "{\"b\":\"2\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"a\":\"1\",\"b\":\"2\"}},{\"op\":\"remove\",\"path\":\"/metadata/labels/a\"}]" },
	{ "remove absent is not an error", NODE_LABELS("{\"b\":\"2\"}"), "a-", 0, 0, 0, 0, "[]", "{\"b\":\"2\"}", NULL },
	{ "a key with / is escaped in the JSON pointer", NODE_LABELS("{}"), "nvidia.com/gpu.deploy=true", 0, 0, 0, 0,
	  "[{\"op\":\"add\",\"key\":\"nvidia.com/gpu.deploy\",\"value\":\"true\"}]", "{\"nvidia.com/gpu.deploy\":\"true\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{}},{\"op\":\"add\",\"path\":\"/metadata/labels/nvidia.com~1gpu.deploy\",\"value\":\"true\"},{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/added-labels\":\"[\\\"nvidia.com/gpu.deploy\\\"]\"}}]" },
	{ "no labels at all: the whole map is added", "{\"metadata\":{\"name\":\"gpu-1\"}}", "a=1", 0, 0, 0, 0,
	  "[{\"op\":\"add\",\"key\":\"a\",\"value\":\"1\"}]", "{\"a\":\"1\"}",
	  "[{\"op\":\"add\",\"path\":\"/metadata/labels\",\"value\":{\"a\":\"1\"}},{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/added-labels\":\"[\\\"a\\\"]\"}}]" },
	{ "defaults: {product} from the node", NODE_LABELS("{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"}"),
	  "gpu-type={product}", 0, 1, 0, 0,
	  "[{\"op\":\"add\",\"key\":\"gpu-type\",\"value\":\"NVIDIA-H100-80GB-HBM3\"}]",
	  "{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\",\"gpu-type\":\"NVIDIA-H100-80GB-HBM3\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"}},{\"op\":\"add\",\"path\":\"/metadata/labels/gpu-type\",\"value\":\"NVIDIA-H100-80GB-HBM3\"},{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/added-labels\":\"[\\\"gpu-type\\\"]\"}}]" },
	{ "defaults: {product} without GFD's -SHARED (a shared GPU keeps its type)",
	  NODE_LABELS("{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3-SHARED\"}"),
	  "gpu-type={product}", 0, 1, 0, 0,
	  "[{\"op\":\"add\",\"key\":\"gpu-type\",\"value\":\"NVIDIA-H100-80GB-HBM3\"}]",
	  "{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3-SHARED\",\"gpu-type\":\"NVIDIA-H100-80GB-HBM3\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3-SHARED\"}},{\"op\":\"add\",\"path\":\"/metadata/labels/gpu-type\",\"value\":\"NVIDIA-H100-80GB-HBM3\"},{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/added-labels\":\"[\\\"gpu-type\\\"]\"}}]" },
	{ "defaults: {product} without GFD's -MIG-<profile> (MIG single strategy: the GPU keeps its type)",
	  NODE_LABELS("{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3-MIG-1g.10gb\"}"),
	  "gpu-type={product}", 0, 1, 0, 0,
	  "[{\"op\":\"add\",\"key\":\"gpu-type\",\"value\":\"NVIDIA-H100-80GB-HBM3\"}]",
	  "{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3-MIG-1g.10gb\",\"gpu-type\":\"NVIDIA-H100-80GB-HBM3\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3-MIG-1g.10gb\"}},{\"op\":\"add\",\"path\":\"/metadata/labels/gpu-type\",\"value\":\"NVIDIA-H100-80GB-HBM3\"},{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/added-labels\":\"[\\\"gpu-type\\\"]\"}}]" },
	{ "defaults: {product} without -MIG-<profile>-SHARED (MIG devices time-sliced)",
	  NODE_LABELS("{\"nvidia.com/gpu.product\":\"NVIDIA-A100-SXM4-40GB-MIG-3g.20gb-SHARED\"}"),
	  "gpu-type={product}", 0, 1, 0, 0,
	  "[{\"op\":\"add\",\"key\":\"gpu-type\",\"value\":\"NVIDIA-A100-SXM4-40GB\"}]",
	  "{\"nvidia.com/gpu.product\":\"NVIDIA-A100-SXM4-40GB-MIG-3g.20gb-SHARED\",\"gpu-type\":\"NVIDIA-A100-SXM4-40GB\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"nvidia.com/gpu.product\":\"NVIDIA-A100-SXM4-40GB-MIG-3g.20gb-SHARED\"}},{\"op\":\"add\",\"path\":\"/metadata/labels/gpu-type\",\"value\":\"NVIDIA-A100-SXM4-40GB\"},{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/added-labels\":\"[\\\"gpu-type\\\"]\"}}]" },
	{ "defaults: no product, no gpu-type label", NODE_LABELS("{}"), "accelerator=nvidia gpu-type={product}", 0, 1, 0, 0,
	  "[{\"op\":\"add\",\"key\":\"accelerator\",\"value\":\"nvidia\"}]", "{\"accelerator\":\"nvidia\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{}},{\"op\":\"add\",\"path\":\"/metadata/labels/accelerator\",\"value\":\"nvidia\"},{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/added-labels\":\"[\\\"accelerator\\\"]\"}}]" },
	{ "record: an added label joins the record, other annotations untouched", "{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"x\":\"1\"},\"annotations\":{\"gpuctl.io/added-labels\":\"[\\\"x\\\"]\",\"other\":\"y\"}}}", "b=2", 0, 0, 0, 0,
	  "[{\"op\":\"add\",\"key\":\"b\",\"value\":\"2\"}]", "{\"x\":\"1\",\"b\":\"2\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"x\":\"1\"}},{\"op\":\"add\",\"path\":\"/metadata/labels/b\",\"value\":\"2\"},{\"op\":\"test\",\"path\":\"/metadata/annotations/gpuctl.io~1added-labels\",\"value\":\"[\\\"x\\\"]\"},{\"op\":\"add\",\"path\":\"/metadata/annotations/gpuctl.io~1added-labels\",\"value\":\"[\\\"x\\\",\\\"b\\\"]\"}]" },
	{ "record: overwriting a label gpuctl added keeps it gpuctl's, no old value kept", "{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"a\":\"1\"},\"annotations\":{\"gpuctl.io/added-labels\":\"[\\\"a\\\"]\"}}}", "a=2", 1, 0, 0, 0,
	  "[{\"op\":\"update\",\"key\":\"a\",\"value\":\"2\",\"old\":\"1\"}]", "{\"a\":\"2\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"a\":\"1\"}},{\"op\":\"add\",\"path\":\"/metadata/labels/a\",\"value\":\"2\"}]" },
	{ "record: a person's label overwritten again keeps the first old value", "{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"a\":\"2\"},\"annotations\":{\"gpuctl.io/overwritten-labels\":\"{\\\"a\\\":\\\"1\\\"}\"}}}", "a=3", 1, 0, 0, 0,
	  "[{\"op\":\"update\",\"key\":\"a\",\"value\":\"3\",\"old\":\"2\"}]", "{\"a\":\"3\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"a\":\"2\"}},{\"op\":\"add\",\"path\":\"/metadata/labels/a\",\"value\":\"3\"}]" },
	{ "record: removing through gpuctl removes from the record", "{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"a\":\"1\",\"b\":\"2\"},\"annotations\":{\"gpuctl.io/added-labels\":\"[\\\"a\\\",\\\"b\\\"]\"}}}", "a-", 0, 0, 0, 0,
	  "[{\"op\":\"remove\",\"key\":\"a\",\"old\":\"1\"}]", "{\"b\":\"2\"}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"a\":\"1\",\"b\":\"2\"}},{\"op\":\"remove\",\"path\":\"/metadata/labels/a\"},{\"op\":\"test\",\"path\":\"/metadata/annotations/gpuctl.io~1added-labels\",\"value\":\"[\\\"a\\\",\\\"b\\\"]\"},{\"op\":\"add\",\"path\":\"/metadata/annotations/gpuctl.io~1added-labels\",\"value\":\"[\\\"b\\\"]\"}]" },
	{ "record: the last entries gone, the annotations go", "{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"a\":\"1\",\"p\":\"9\"},\"annotations\":{\"gpuctl.io/added-labels\":\"[\\\"a\\\"]\",\"gpuctl.io/overwritten-labels\":\"{\\\"p\\\":\\\"8\\\"}\"}}}", "a- p-", 0, 0, 0, 0,
	  "[{\"op\":\"remove\",\"key\":\"a\",\"old\":\"1\"},{\"op\":\"remove\",\"key\":\"p\",\"old\":\"9\"}]", "{}",
	  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"a\":\"1\",\"p\":\"9\"}},{\"op\":\"remove\",\"path\":\"/metadata/labels/a\"},{\"op\":\"remove\",\"path\":\"/metadata/labels/p\"},{\"op\":\"test\",\"path\":\"/metadata/annotations/gpuctl.io~1added-labels\",\"value\":\"[\\\"a\\\"]\"},{\"op\":\"remove\",\"path\":\"/metadata/annotations/gpuctl.io~1added-labels\"},{\"op\":\"test\",\"path\":\"/metadata/annotations/gpuctl.io~1overwritten-labels\",\"value\":\"{\\\"p\\\":\\\"8\\\"}\"},{\"op\":\"remove\",\"path\":\"/metadata/annotations/gpuctl.io~1overwritten-labels\"}]" },
	{ "defaults: a product that is no label value", NODE_LABELS("{\"nvidia.com/gpu.product\":\"x\"}"),
	  "gpu-type={product}-with-a-very-long-suffix-that-makes-the-value-longer-than-sixty-three-chars", 0, 1, -1,
	  GERR_INVALID, NULL, NULL, NULL },
};

/* a loop, not criterion's parameterized tests: their workers do not share
 * this process's addresses of the string literals */
Test(plan, labels)
{
	for (size_t i = 0; i < sizeof(label_cases) / sizeof(label_cases[0]); i++)
		run_case(&label_cases[i], 0);
}

#define NODE_TAINTS(t) "{\"metadata\":{\"name\":\"gpu-1\"},\"spec\":{\"podCIDR\":\"10.0.0.0/24\",\"taints\":" t "}}"
#define GPU_TAINT "{\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\",\"timeAdded\":\"2026-01-01T00:00:00Z\"}"
#define OTHER_TAINT "{\"key\":\"team\",\"value\":\"ml\",\"effect\":\"NoExecute\"}"

static const struct plan_case taint_cases[] = {
	{ "add to a node without taints", "{\"metadata\":{\"name\":\"gpu-1\"},\"spec\":{\"podCIDR\":\"10.0.0.0/24\"}}",
	  "nvidia.com/gpu=true:NoSchedule", 0, 0, 0, 0,
	  "[{\"op\":\"add\",\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]",
	  "[{\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]",
	  "[{\"op\":\"test\",\"path\":\"/spec\",\"value\":{\"podCIDR\":\"10.0.0.0/24\"}},{\"op\":\"add\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]},{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/added-taints\":\"[\\\"nvidia.com/gpu:NoSchedule\\\"]\"}}]" },
	{ "the same taint: unchanged, timeAdded and order kept", NODE_TAINTS("[" OTHER_TAINT "," GPU_TAINT "]"),
	  "nvidia.com/gpu=true:NoSchedule", 0, 0, 0, 0, "[]", "[" OTHER_TAINT "," GPU_TAINT "]", NULL },
	{ "another value needs --overwrite", NODE_TAINTS("[" GPU_TAINT "]"), "nvidia.com/gpu=false:NoSchedule", 0, 0, -1,
	  GERR_CONFLICT, NULL, NULL, NULL },
	{ "overwrite: added first, then the old ones", NODE_TAINTS("[" OTHER_TAINT "," GPU_TAINT "]"),
	  "nvidia.com/gpu=false:NoSchedule", 1, 0, 0, 0,
	  "[{\"op\":\"update\",\"key\":\"nvidia.com/gpu\",\"value\":\"false\",\"effect\":\"NoSchedule\",\"old\":\"true\"}]",
	  "[{\"key\":\"nvidia.com/gpu\",\"value\":\"false\",\"effect\":\"NoSchedule\"}," OTHER_TAINT "]",
	  "[{\"op\":\"test\",\"path\":\"/spec/taints\",\"value\":[" OTHER_TAINT "," GPU_TAINT "]},{\"op\":\"replace\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"false\",\"effect\":\"NoSchedule\"}," OTHER_TAINT "]}]" },
	{ "KEY- removes every effect", NODE_TAINTS("[" GPU_TAINT ",{\"key\":\"nvidia.com/gpu\",\"effect\":\"NoExecute\"}," OTHER_TAINT "]"),
	  "nvidia.com/gpu-", 0, 0, 0, 0,
	  "[{\"op\":\"remove\",\"key\":\"nvidia.com/gpu\",\"value\":\"\",\"effect\":\"NoExecute\"},{\"op\":\"remove\",\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]",
	  "[" OTHER_TAINT "]",
	  "[{\"op\":\"test\",\"path\":\"/spec/taints\",\"value\":[" GPU_TAINT ",{\"key\":\"nvidia.com/gpu\",\"effect\":\"NoExecute\"}," OTHER_TAINT "]},{\"op\":\"replace\",\"path\":\"/spec/taints\",\"value\":[" OTHER_TAINT "]}]" },
	{ "KEY:EFFECT- removes one; the last taint removes the field", NODE_TAINTS("[" GPU_TAINT "]"),
	  "nvidia.com/gpu:NoSchedule-", 0, 0, 0, 0,
	  "[{\"op\":\"remove\",\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]", "[]",
	  "[{\"op\":\"test\",\"path\":\"/spec/taints\",\"value\":[" GPU_TAINT "]},{\"op\":\"remove\",\"path\":\"/spec/taints\"}]" },
	{ "record: removing a recorded taint removes it from the record", "{\"metadata\":{\"name\":\"gpu-1\",\"annotations\":{\"gpuctl.io/added-taints\":\"[\\\"nvidia.com/gpu:NoSchedule\\\"]\"}},\"spec\":{\"taints\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\",\"timeAdded\":\"2026-01-01T00:00:00Z\"}]}}", "nvidia.com/gpu-", 0, 0, 0, 0,
	  "[{\"op\":\"remove\",\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]", "[]",
	  "[{\"op\":\"test\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\",\"timeAdded\":\"2026-01-01T00:00:00Z\"}]},{\"op\":\"remove\",\"path\":\"/spec/taints\"},{\"op\":\"test\",\"path\":\"/metadata/annotations/gpuctl.io~1added-taints\",\"value\":\"[\\\"nvidia.com/gpu:NoSchedule\\\"]\"},{\"op\":\"remove\",\"path\":\"/metadata/annotations/gpuctl.io~1added-taints\"}]" },
	{ "removing an absent taint is not an error", NODE_TAINTS("[" OTHER_TAINT "]"), "nvidia.com/gpu-", 0, 0, 0, 0, "[]",
	  "[" OTHER_TAINT "]", NULL },
};

Test(plan, taints)
{
	for (size_t i = 0; i < sizeof(taint_cases) / sizeof(taint_cases[0]); i++)
		run_case(&taint_cases[i], 1);
}

Test(plan, conflict_message_names_the_label_and_the_flag)
{
	cJSON *node = cJSON_Parse(NODE_LABELS("{\"a\":\"1\"}"));
	char k[] = "a", v[] = "2";
	struct label_op op = { k, v };
	struct label_plan lp = { .ops = &op, .nops = 1 };
	struct edit_result r = { .changes = cJSON_CreateArray() };
	cr_assert_eq(label_plan_node(&lp, node, &r), -1);
	cr_assert_str_eq(r.err.msg, "'a' already has a value (1), and --overwrite is false");
	gerr_clear(&r.err);
	cJSON_Delete(r.changes);
	cJSON_Delete(r.state);
	cJSON_Delete(node);
}

/* cleanup removes exactly what the record says (a person's label and taint
 * stay, an overwritten value comes back), and then finds nothing to do */
Test(plan, cleanup_undoes_exactly_the_record)
{
	cJSON *node = cJSON_Parse("{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"accelerator\":\"nvidia\",\"owner\":\"ana\",\"gpu-type\":\"mine\"},\"annotations\":{\"keep\":\"x\",\"gpuctl.io/added-labels\":\"[\\\"accelerator\\\",\\\"gone\\\"]\",\"gpuctl.io/overwritten-labels\":\"{\\\"gpu-type\\\":\\\"person\\\"}\",\"gpuctl.io/added-taints\":\"[\\\"nvidia.com/gpu:NoSchedule\\\"]\"}},\"spec\":{\"taints\":[{\"key\":\"team\",\"value\":\"ml\",\"effect\":\"NoExecute\"},{\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\",\"timeAdded\":\"2026-01-01T00:00:00Z\"}]}}");
	struct edit_result r = { .changes = cJSON_CreateArray() };
	cr_assert_eq(cleanup_plan_node(NULL, node, &r), 0);
	char *ch = cJSON_PrintUnformatted(r.changes), *st = cJSON_PrintUnformatted(r.state);
	cr_assert_str_eq(ch, "[{\"kind\":\"label\",\"op\":\"remove\",\"key\":\"accelerator\",\"old\":\"nvidia\"},{\"kind\":\"label\",\"op\":\"update\",\"key\":\"gpu-type\",\"value\":\"person\",\"old\":\"mine\"},{\"kind\":\"taint\",\"op\":\"remove\",\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"},{\"kind\":\"annotation\",\"op\":\"remove\",\"key\":\"gpuctl.io/added-labels\",\"old\":\"[\\\"accelerator\\\",\\\"gone\\\"]\"},{\"kind\":\"annotation\",\"op\":\"remove\",\"key\":\"gpuctl.io/overwritten-labels\",\"old\":\"{\\\"gpu-type\\\":\\\"person\\\"}\"},{\"kind\":\"annotation\",\"op\":\"remove\",\"key\":\"gpuctl.io/added-taints\",\"old\":\"[\\\"nvidia.com/gpu:NoSchedule\\\"]\"}]");
	cr_assert_str_eq(st, "{\"labels\":{\"owner\":\"ana\",\"gpu-type\":\"person\"},\"taints\":[{\"key\":\"team\",\"value\":\"ml\",\"effect\":\"NoExecute\"}]}");
	cr_assert_str_eq(r.patch, "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"accelerator\":\"nvidia\",\"owner\":\"ana\",\"gpu-type\":\"mine\"}},{\"op\":\"remove\",\"path\":\"/metadata/labels/accelerator\"},{\"op\":\"add\",\"path\":\"/metadata/labels/gpu-type\",\"value\":\"person\"},{\"op\":\"test\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"team\",\"value\":\"ml\",\"effect\":\"NoExecute\"},{\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\",\"timeAdded\":\"2026-01-01T00:00:00Z\"}]},{\"op\":\"replace\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"team\",\"value\":\"ml\",\"effect\":\"NoExecute\"}]},{\"op\":\"test\",\"path\":\"/metadata/annotations/gpuctl.io~1added-labels\",\"value\":\"[\\\"accelerator\\\",\\\"gone\\\"]\"},{\"op\":\"remove\",\"path\":\"/metadata/annotations/gpuctl.io~1added-labels\"},{\"op\":\"test\",\"path\":\"/metadata/annotations/gpuctl.io~1overwritten-labels\",\"value\":\"{\\\"gpu-type\\\":\\\"person\\\"}\"},{\"op\":\"remove\",\"path\":\"/metadata/annotations/gpuctl.io~1overwritten-labels\"},{\"op\":\"test\",\"path\":\"/metadata/annotations/gpuctl.io~1added-taints\",\"value\":\"[\\\"nvidia.com/gpu:NoSchedule\\\"]\"},{\"op\":\"remove\",\"path\":\"/metadata/annotations/gpuctl.io~1added-taints\"}]");
	free(ch);
	free(st);
	free(r.patch);
	cJSON_Delete(r.changes);
	cJSON_Delete(r.state);
	cJSON_Delete(node);
	/* the node as the patch leaves it: nothing to do */
	node = cJSON_Parse("{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"owner\":\"ana\",\"gpu-type\":\"person\"},\"annotations\":{\"keep\":\"x\"}},\"spec\":{\"taints\":[{\"key\":\"team\",\"value\":\"ml\",\"effect\":\"NoExecute\"}]}}");
	struct edit_result r2 = { .changes = cJSON_CreateArray() };
	cr_assert_eq(cleanup_plan_node(NULL, node, &r2), 0);
	cr_assert_null(r2.patch);
	cr_assert_eq(cJSON_GetArraySize(r2.changes), 0);
	cJSON_Delete(r2.changes);
	cJSON_Delete(r2.state);
	cJSON_Delete(node);
}

struct qcase {
	const char *s;
	int rc;
	long v;
};

Test(quantity, whole_numbers_as_kubernetes_writes_them)
{
	static const struct qcase cases[] = {
		{ "8", 0, 8 }, { "0", 0, 0 }, { "+4", 0, 4 }, { "1k", 0, 1000 }, { "2Ki", 0, 2048 }, { "1M", 0, 1000000 },
		{ "1e3", 0, 1000 }, { "3E2", 0, 300 }, { "500m", -1, 0 }, { "1.5", -1, 0 }, { "-1", -1, 0 }, { "", -1, 0 },
		{ "abc", -1, 0 }, { "8 ", -1, 0 }, { "99999999999999999999", -1, 0 }, { "9Ei", -1, 0 }, { "1e-3", -1, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long v = -7;
		int rc = kube_quantity_int(cases[i].s, &v);
		cr_assert_eq(rc, cases[i].rc, "\"%s\": rc %d", cases[i].s, rc);
		if (rc == 0)
			cr_assert_eq(v, cases[i].v, "\"%s\": %ld", cases[i].s, v);
	}
}

Test(quantity, gpu_nodes_by_capacity_or_labels)
{
	static const struct { const char *node; int gpu; long cap; } cases[] = {
		{ "{\"status\":{\"capacity\":{\"nvidia.com/gpu\":\"8\"}}}", 1, 8 },
		{ "{\"status\":{\"capacity\":{\"nvidia.com/gpu\":\"0\"}}}", 0, 0 },
		{ "{\"status\":{\"allocatable\":{\"nvidia.com/gpu\":\"4\"}}}", 1, 0 },
		{ "{\"status\":{\"capacity\":{\"nvidia.com/gpu\":\"bad\"}}}", 0, -1 },
		{ "{\"metadata\":{\"labels\":{\"feature.node.kubernetes.io/pci-10de.present\":\"true\"}}}", 1, 0 },
		{ "{\"metadata\":{\"labels\":{\"nvidia.com/gpu.present\":\"true\"}}}", 1, 0 },
		{ "{\"metadata\":{\"labels\":{\"nvidia.com/gpu.present\":\"false\"}}}", 0, 0 },
		{ "{}", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *n = cJSON_Parse(cases[i].node);
		cr_assert_eq(node_is_gpu(n), cases[i].gpu, "%s", cases[i].node);
		cr_assert_eq(node_resource(n, "capacity", "nvidia.com/gpu"), cases[i].cap, "%s", cases[i].node);
		cJSON_Delete(n);
	}
}

Test(quantity, the_gpu_resource_a_node_advertises)
{
	static const struct { const char *node; const char *want; } cases[] = {
		{ "{\"status\":{\"capacity\":{\"nvidia.com/gpu\":\"8\",\"nvidia.com/gpu.shared\":\"4\"}}}", "nvidia.com/gpu" },
		{ "{\"status\":{\"capacity\":{\"nvidia.com/gpu\":\"0\",\"nvidia.com/gpu.shared\":\"4\"}}}", "nvidia.com/gpu.shared" },
		{ "{\"status\":{\"capacity\":{\"cpu\":\"8\",\"nvidia.com/mig-1g.10gb\":\"0\",\"nvidia.com/mig-3g.40gb\":\"2\"}}}",
		  "nvidia.com/mig-3g.40gb" },
		{ "{\"status\":{\"capacity\":{\"cpu\":\"8\"},\"allocatable\":{\"nvidia.com/gpu\":\"1\"}}}", NULL },
		{ "{}", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *n = cJSON_Parse(cases[i].node);
		const char *got = node_gpu_resource(n, "capacity");
		if (cases[i].want)
			cr_assert(got && !strcmp(got, cases[i].want), "%s: %s", cases[i].node, got ? got : "(none)");
		else
			cr_assert_null(got, "%s: %s", cases[i].node, got);
		cJSON_Delete(n);
	}
}

/* Where a DaemonSet's pods may go (deploy waits only on those nodes). */
Test(plan, taints_tolerated_by_the_kubernetes_rules)
{
	const char *plugin = "[{\"key\":\"CriticalAddonsOnly\",\"operator\":\"Exists\"},"
			     "{\"key\":\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"},"
			     "{\"key\":\"gpuctl.io/unvalidated\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"},"
			     "{\"key\":\"team\",\"value\":\"ml\"}]";
	static const struct { const char *taints; int ok; } cases[] = {
		{ "null", 1 },
		{ "[]", 1 },
		{ "[{\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]", 1 },
		{ "[{\"key\":\"nvidia.com/gpu\",\"effect\":\"NoExecute\"}]", 0 },          /* effect differs */
		{ "[{\"key\":\"gpuctl.io/unvalidated\",\"value\":\"true\",\"effect\":\"NoSchedule\"},"
		  "{\"key\":\"nvidia.com/gpu\",\"effect\":\"NoSchedule\"}]", 1 },
		{ "[{\"key\":\"dedicated\",\"value\":\"x\",\"effect\":\"NoSchedule\"}]", 0 },
		{ "[{\"key\":\"dedicated\",\"value\":\"x\",\"effect\":\"PreferNoSchedule\"}]", 1 }, /* never blocks */
		{ "[{\"key\":\"CriticalAddonsOnly\",\"value\":\"y\",\"effect\":\"NoExecute\"}]", 1 }, /* any effect */
		{ "[{\"key\":\"team\",\"value\":\"ml\",\"effect\":\"NoSchedule\"}]", 1 },  /* Equal, same value */
		{ "[{\"key\":\"team\",\"value\":\"ops\",\"effect\":\"NoSchedule\"}]", 0 }, /* Equal, other value */
	};
	cJSON *tols = cJSON_Parse(plugin);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *t = cJSON_Parse(cases[i].taints);
		cr_assert_eq(taints_tolerated(t, tols), cases[i].ok, "%s", cases[i].taints);
		cJSON_Delete(t);
	}
	/* an empty key with Exists tolerates everything */
	cJSON *all = cJSON_Parse("[{\"operator\":\"Exists\"}]");
	cJSON *t = cJSON_Parse("[{\"key\":\"dedicated\",\"value\":\"x\",\"effect\":\"NoExecute\"}]");
	cr_assert_eq(taints_tolerated(t, all), 1);
	cr_assert_eq(taints_tolerated(t, NULL), 0);
	cJSON_Delete(t);
	cJSON_Delete(all);
	cJSON_Delete(tols);
}

/* ---- records added beside a planned edit ---- */

static cJSON *patched(const char *node_json, const char *patch)
{
	/* the patch as the API server applies it (json_patch_apply: tests/unit/test_util.c) */
	cJSON *node = cJSON_Parse(node_json), *ops = cJSON_Parse(patch);
	cr_assert(ops && json_patch_apply(node, ops) == 0, "the patch does not apply: %s", patch);
	cJSON_Delete(ops);
	return node;
}

Test(plan, an_annotation_beside_a_planned_edit)
{
	/* no annotations yet, and the label planner creates the object: the record goes into it */
	const char *bare = "{\"metadata\":{\"name\":\"n\",\"labels\":{}}}";
	cJSON *node = cJSON_Parse(bare);
	struct label_op op = { (char *)"nvidia.com/device-plugin.config", (char *)"mps-2" };
	struct label_plan lp = { .ops = &op, .nops = 1, .overwrite = 1 };
	struct edit_result r = { .changes = cJSON_CreateArray() };
	cr_assert_eq(label_plan_node(&lp, node, &r), 0);
	cr_assert_eq(edit_add_annotation(node, &r, "gpuctl.io/mps", "2026-12-03T00:00:00Z"), 0);
	cJSON *after = patched(bare, r.patch);
	const cJSON *ann = json_get2(after, "metadata", "annotations");
	cr_expect_str_eq(json_str(ann, "gpuctl.io/mps"), "2026-12-03T00:00:00Z", "%s", r.patch);
	cr_expect(json_str(ann, "gpuctl.io/added-labels") != NULL, "the planner's record survives: %s", r.patch);
	cr_expect_eq(cJSON_GetArraySize(r.changes), 2);
	cJSON_Delete(after);
	cJSON_Delete(r.changes);
	cJSON_Delete(r.state);
	free(r.patch);
	cJSON_Delete(node);
	/* annotations exist, nothing else to change: one op adding the key */
	const char *annotated = "{\"metadata\":{\"name\":\"n\",\"annotations\":{\"a\":\"b\"}}}";
	node = cJSON_Parse(annotated);
	r = (struct edit_result){ .changes = cJSON_CreateArray() };
	cr_assert_eq(edit_add_annotation(node, &r, "gpuctl.io/mps", "t"), 0);
	cr_expect_str_eq(r.patch, "[{\"op\":\"add\",\"path\":\"/metadata/annotations/gpuctl.io~1mps\",\"value\":\"t\"}]");
	free(r.patch);
	cJSON_Delete(r.changes);
	cJSON_Delete(node);
	/* already recorded: nothing at all */
	node = cJSON_Parse("{\"metadata\":{\"name\":\"n\",\"annotations\":{\"gpuctl.io/mps\":\"x\"}}}");
	r = (struct edit_result){ .changes = cJSON_CreateArray() };
	cr_assert_eq(edit_add_annotation(node, &r, "gpuctl.io/mps", "t"), 0);
	cr_expect_null(r.patch);
	cr_expect_eq(cJSON_GetArraySize(r.changes), 0);
	cJSON_Delete(r.changes);
	cJSON_Delete(node);
}

Test(plan, a_label_is_gpuctls_only_when_its_record_names_it)
{
	/* slice mps keeps nvidia.com/mps.capable in step only where gpuctl added it
	 * (or it is missing): where GFD set it, GFD follows the config itself */
	cJSON *node = cJSON_Parse("{\"metadata\":{\"labels\":{\"nvidia.com/mps.capable\":\"true\",\"accelerator\":\"nvidia\"},"
				  "\"annotations\":{\"gpuctl.io/added-labels\":\"[\\\"accelerator\\\"]\","
				  "\"gpuctl.io/overwritten-labels\":\"{\\\"nvidia.com/mps.capable\\\":\\\"false\\\"}\"}}}");
	cr_assert(plan_label_added(node, "accelerator"));
	cr_assert_not(plan_label_added(node, "nvidia.com/mps.capable"), "overwritten is not added: it was someone's");
	cr_assert_not(plan_label_added(node, "gpu-type"));
	cJSON_Delete(node);
	node = cJSON_Parse("{\"metadata\":{\"labels\":{\"a\":\"b\"},\"annotations\":{\"gpuctl.io/added-labels\":\"not json\"}}}");
	cr_assert_not(plan_label_added(node, "a"), "an unreadable record names nothing");
	cJSON_Delete(node);
	node = cJSON_Parse("{\"metadata\":{\"name\":\"n\"}}");
	cr_assert_not(plan_label_added(node, "a"));
	cJSON_Delete(node);
}

/* label --taint: one patch per node, labels then taint, both recorded */
static void both_case(const char *node_json, int overwrite, int rc, const char *changes, const char *patch)
{
	cJSON *node = cJSON_Parse(node_json);
	struct label_taint_plan p = { .labels = { .overwrite = overwrite, .defaults = 1 },
				      .taints = { .overwrite = overwrite } };
	struct gerr e = GERR_INIT;
	cr_assert_eq(label_default_ops(NULL, &p.labels.ops, &p.labels.nops, &e), 0);
	cr_assert_eq(taint_default_ops(NULL, &p.taints.ops, &p.taints.nops, &e), 0);
	struct edit_result r = { .node = (char *)"gpu-1", .changes = cJSON_CreateArray() };
	cr_assert_eq(label_taint_plan_node(&p, node, &r), rc, "%s", r.err.msg ? r.err.msg : "");
	if (rc < 0) {
		cr_expect_eq(r.err.code, GERR_CONFLICT);
		cr_expect(strstr(r.err.msg, "nvidia.com/gpu:NoSchedule"), "names the taint: %s", r.err.msg);
		cr_expect_null(r.patch);
	} else {
		char *ch = cJSON_PrintUnformatted(r.changes);
		cr_expect_str_eq(ch, changes);
		free(ch);
		if (!patch) {
			cr_expect_null(r.patch, "%s", r.patch);
		} else {
			cr_assert_not_null(r.patch);
			cr_expect_str_eq(r.patch, patch);
			/* what the server would make of it: both edits and both records */
			cJSON *after = patched(node_json, r.patch);
			const cJSON *ann = json_get2(after, "metadata", "annotations");
			cr_expect_str_eq(json_str(json_get2(after, "metadata", "labels"), "accelerator"), "nvidia");
			cr_expect_str_eq(json_str(ann, "gpuctl.io/added-taints"), "[\"nvidia.com/gpu:NoSchedule\"]");
			cr_expect(json_str(ann, "gpuctl.io/added-labels"), "%s", r.patch);
			/* planned again from the result: nothing left to do */
			struct edit_result again = { .node = (char *)"gpu-1", .changes = cJSON_CreateArray() };
			cr_assert_eq(label_taint_plan_node(&p, after, &again), 0);
			cr_expect_null(again.patch, "%s", again.patch);
			cr_expect_eq(cJSON_GetArraySize(again.changes), 0);
			char *st = cJSON_PrintUnformatted(again.state);
			cr_expect(strstr(st, "\"taints\":[{\"key\":\"nvidia.com/gpu\""), "%s", st);
			free(st);
			cJSON_Delete(again.changes);
			cJSON_Delete(again.state);
			cJSON_Delete(after);
		}
	}
	cJSON_Delete(r.changes);
	cJSON_Delete(r.state);
	free(r.patch);
	gerr_clear(&r.err);
	for (size_t i = 0; i < p.labels.nops; i++)
		label_op_release(&p.labels.ops[i]);
	free(p.labels.ops);
	for (size_t i = 0; i < p.taints.nops; i++)
		taint_op_release(&p.taints.ops[i]);
	free(p.taints.ops);
	cJSON_Delete(node);
}

Test(plan, label_and_taint_in_one_patch)
{
	/* nothing yet, no annotations object: the label patch creates it, the
	 * taint operations add their record into it */
	both_case("{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"}},"
		  "\"spec\":{\"podCIDR\":\"10.0.0.0/24\"}}",
		  0, 0,
		  "[{\"op\":\"add\",\"key\":\"accelerator\",\"value\":\"nvidia\"},"
		  "{\"op\":\"add\",\"key\":\"gpu-type\",\"value\":\"NVIDIA-H100-80GB-HBM3\"},"
		  "{\"op\":\"add\",\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]",
		  "[{\"op\":\"test\",\"path\":\"/metadata/labels\",\"value\":{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"}},"
		  "{\"op\":\"add\",\"path\":\"/metadata/labels/accelerator\",\"value\":\"nvidia\"},"
		  "{\"op\":\"add\",\"path\":\"/metadata/labels/gpu-type\",\"value\":\"NVIDIA-H100-80GB-HBM3\"},"
		  "{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"gpuctl.io/added-labels\":\"[\\\"accelerator\\\",\\\"gpu-type\\\"]\"}},"
		  "{\"op\":\"test\",\"path\":\"/spec\",\"value\":{\"podCIDR\":\"10.0.0.0/24\"}},"
		  "{\"op\":\"add\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]},"
		  "{\"op\":\"add\",\"path\":\"/metadata/annotations/gpuctl.io~1added-taints\",\"value\":\"[\\\"nvidia.com/gpu:NoSchedule\\\"]\"}]");
	/* labelled already (by gpuctl): the taint alone */
	both_case("{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\","
		  "\"accelerator\":\"nvidia\",\"gpu-type\":\"NVIDIA-H100-80GB-HBM3\"},"
		  "\"annotations\":{\"gpuctl.io/added-labels\":\"[\\\"accelerator\\\",\\\"gpu-type\\\"]\"}},"
		  "\"spec\":{\"taints\":[{\"key\":\"other\",\"effect\":\"NoExecute\"}]}}",
		  0, 0,
		  "[{\"op\":\"add\",\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"}]",
		  "[{\"op\":\"test\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"other\",\"effect\":\"NoExecute\"}]},"
		  "{\"op\":\"replace\",\"path\":\"/spec/taints\",\"value\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"true\",\"effect\":\"NoSchedule\"},{\"key\":\"other\",\"effect\":\"NoExecute\"}]},"
		  "{\"op\":\"add\",\"path\":\"/metadata/annotations/gpuctl.io~1added-taints\",\"value\":\"[\\\"nvidia.com/gpu:NoSchedule\\\"]\"}]");
	/* a person's taint with another value, no --overwrite: refused, and the
	 * labels are not written either (one patch: both or neither) */
	both_case("{\"metadata\":{\"name\":\"gpu-1\",\"labels\":{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"}},"
		  "\"spec\":{\"taints\":[{\"key\":\"nvidia.com/gpu\",\"value\":\"present\",\"effect\":\"NoSchedule\"}]}}",
		  0, -1, NULL, NULL);
}
