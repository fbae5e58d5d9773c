/* gpuctl taint: add or remove node taints, kubectl semantics, GPU nodes by default. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "gpuctl/json.h"
#include "gpuctl/buf.h"
#include "gpuctl/labels.h"
#include "gpuctl/owned.h"
#include "gpuctl/plan.h"

static const char usage[] =
	"gpuctl taint [NODE...] [-l SELECTOR] [KEY=VALUE:EFFECT...] [KEY:EFFECT-...] [KEY-...] [--overwrite] [--until-validated] [--dry-run[=client|server]] [-o json|yaml]";
static const char summary[] =
	"Add (KEY[=VALUE]:EFFECT) or remove (KEY:EFFECT-, KEY-) taints on nodes. Without NODE or -l,\n"
	"acts on the GPU nodes. Without taint arguments, adds the default nvidia.com/gpu=true:NoSchedule\n"
	"(changeable in the config file). Changing the value of an existing taint needs --overwrite.\n"
	"EFFECT is NoSchedule, PreferNoSchedule or NoExecute.";


static int taint_add_op(void *ud, const char *arg, struct gerr *err)
{
	struct taint_plan *p = ud;
	struct taint_op op;
	if (taint_op_parse(arg, &op, err) < 0)
		return -1;
	p->ops = xrealloc(p->ops, (p->nops + 1) * sizeof(*p->ops));
	p->ops[p->nops++] = op;
	return 0;
}

static int taint_check(void *ud, struct gerr *err)
{
	struct taint_plan *p = ud;
	return taint_ops_check(p->ops, p->nops, err);
}

static size_t taint_count(void *ud)
{
	return ((struct taint_plan *)ud)->nops;
}

static int taint_defaults(struct gctx *g, void *ud, struct gerr *err)
{
	struct taint_plan *p = ud;
	free(p->ops);
	p->ops = NULL;
	return taint_default_ops(g->config, &p->ops, &p->nops, err);
}

static void taint_set_overwrite(void *ud, int overwrite)
{
	((struct taint_plan *)ud)->overwrite = overwrite;
}

static int until_validated;
/* the same operations without the gate's taint: for nodes already admitted */
static struct taint_plan admitted_plan;

static int taint_gate_plan(void *ud, const cJSON *node, struct edit_result *r)
{
	const cJSON *ann = json_get2(node, "metadata", "annotations");
	if (until_validated && json_str(ann, GPUCTL_VALIDATED_ANNOTATION)) {
		admitted_plan.overwrite = ((struct taint_plan *)ud)->overwrite;
		return taint_plan_node(&admitted_plan, node, r);
	}
	return taint_plan_node(ud, node, r);
}

/* --until-validated: also the validation gate's taint (unless given already) */
static int taint_complete(struct gctx *g, void *ud, struct gerr *err)
{
	(void)g;
	struct taint_plan *p = ud;
	if (!until_validated)
		return 0;
	for (size_t i = 0; i < p->nops; i++)
		if (!strcmp(p->ops[i].key, GPUCTL_UNVALIDATED_TAINT_KEY)) {
			admitted_plan.ops = p->ops; /* named explicitly: every node gets it */
			admitted_plan.nops = p->nops;
			return 0;
		}
	if (taint_add_op(p, GPUCTL_UNVALIDATED_TAINT, err) < 0)
		return -1;
	/* a node validate --admit admitted is not new: it gets the other
	 * operations only (the gate's taint is the last; after the realloc) */
	admitted_plan.ops = p->ops;
	admitted_plan.nops = p->nops - 1;
	return 0;
}

int cmd_taint(struct gctx *g, int argc, char **argv)
{
	static const struct opt extra[] = {
		{ "until-validated", 0, OPT_BOOL, &until_validated, NULL,
		  "also taint " GPUCTL_UNVALIDATED_TAINT " until gpuctl validate --admit finds the node good", NULL },
		OPT_END,
	};
	static const struct edit_cmd spec = {
		.name = "taint", .usage = usage, .summary = summary,
		.overwrite_help = "allow changing the value of an existing taint",
		.kind = "NodeTaintResult", .state_field = "taints", .verb = "tainted",
		.is_op = taint_arg_is_op, .add_op = taint_add_op, .check_ops = taint_check, .count_ops = taint_count,
		.default_ops = taint_defaults, .set_overwrite = taint_set_overwrite, .plan = taint_gate_plan,
		.parts = NODE_PART_SPEC | NODE_PART_ANNOTATIONS,
		.extra = extra, .complete = taint_complete,
	};
	struct taint_plan plan = { 0 };
	int code = edit_cmd_main(g, argc, argv, &spec, &plan);
	for (size_t i = 0; i < plan.nops; i++)
		taint_op_release(&plan.ops[i]);
	free(plan.ops);
	return code;
}
