/* gpuctl label: set or remove node labels, kubectl semantics, GPU nodes by default. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "gpuctl/json.h"
#include "gpuctl/buf.h"
#include "gpuctl/labels.h"
#include "gpuctl/plan.h"

static const char usage[] =
	"gpuctl label [NODE...] [-l SELECTOR] [KEY=VALUE...] [KEY-...] [--taint[=KEY=VALUE:EFFECT]] [--overwrite] [--dry-run[=client|server]] [-o json|yaml]";
static const char summary[] =
	"Set (KEY=VALUE) or remove (KEY-) labels on nodes. Without NODE or -l, acts on the GPU nodes\n"
	"(nvidia.com/gpu capacity, NFD PCI vendor 10de, or nvidia.com/gpu.present=true). Without\n"
	"KEY=VALUE or KEY-, sets the default labels accelerator=nvidia and gpu-type=<GPU product>\n"
	"(changeable in the config file). Changing an existing value needs --overwrite. --taint also\n"
	"adds gpuctl taint's default taint (or the one given) to the same nodes in the same pass: one\n"
	"list, one write per node, labels and taint together or not at all.";


/* The command's plan is a struct label_taint_plan: its labels always, its
 * taints with --taint. */

static int label_add_op(void *ud, const char *arg, struct gerr *err)
{
	struct label_plan *p = &((struct label_taint_plan *)ud)->labels;
	struct label_op op;
	if (label_op_parse(arg, &op, err) < 0)
		return -1;
	p->ops = xrealloc(p->ops, (p->nops + 1) * sizeof(*p->ops));
	p->ops[p->nops++] = op;
	return 0;
}

static int label_check(void *ud, struct gerr *err)
{
	struct label_plan *p = &((struct label_taint_plan *)ud)->labels;
	return label_ops_check(p->ops, p->nops, err);
}

static size_t label_count(void *ud)
{
	return ((struct label_taint_plan *)ud)->labels.nops;
}

static int label_defaults(struct gctx *g, void *ud, struct gerr *err)
{
	struct label_plan *p = &((struct label_taint_plan *)ud)->labels;
	free(p->ops);
	p->ops = NULL;
	p->defaults = 1;
	return label_default_ops(g->config, &p->ops, &p->nops, err);
}

static void label_set_overwrite(void *ud, int overwrite)
{
	struct label_taint_plan *p = ud;
	p->labels.overwrite = p->taints.overwrite = overwrite;
}

/* --taint[=KEY=VALUE:EFFECT]: "" for gpuctl taint's defaults */
static const char *taint_arg;

static int label_complete(struct gctx *g, void *ud, struct gerr *err)
{
	struct taint_plan *t = &((struct label_taint_plan *)ud)->taints;
	if (!taint_arg)
		return 0;
	if (!*taint_arg) {
		if (gctx_load_config(g, err) < 0)
			return -1;
		return taint_default_ops(g->config, &t->ops, &t->nops, err);
	}
	t->ops = xcalloc(1, sizeof(*t->ops));
	if (taint_op_parse(taint_arg, &t->ops[0], err) < 0) {
		gerr_prefix(err, "--taint");
		err->code = GERR_USAGE;
		return -1;
	}
	t->nops = 1;
	return taint_ops_check(t->ops, t->nops, err);
}

static unsigned label_more_parts(void *ud)
{
	(void)ud;
	return taint_arg ? NODE_PART_SPEC : 0;
}

static int label_or_both_plan(void *ud, const cJSON *node, struct edit_result *r)
{
	struct label_taint_plan *p = ud;
	return taint_arg ? label_taint_plan_node(p, node, r) : label_plan_node(&p->labels, node, r);
}

int cmd_label(struct gctx *g, int argc, char **argv)
{
	static const struct opt extra[] = {
		{ "taint", 0, OPT_OPTARG, &taint_arg, "KEY=VALUE:EFFECT",
		  "also add this taint (default: gpuctl taint's) in the same write as the labels", "" },
		OPT_END,
	};
	static const struct edit_cmd spec = {
		.name = "label", .usage = usage, .summary = summary,
		.overwrite_help = "allow changing the value of an existing label",
		.kind = "NodeLabelResult", .state_field = "labels", .verb = "labeled",
		.is_op = label_arg_is_op, .add_op = label_add_op, .check_ops = label_check, .count_ops = label_count,
		.default_ops = label_defaults, .set_overwrite = label_set_overwrite, .plan = label_or_both_plan,
		.parts = NODE_PART_LABELS | NODE_PART_ANNOTATIONS,
		.more_parts = label_more_parts,
		.extra = extra, .complete = label_complete,
	};
	struct label_taint_plan plan = { 0 };
	int code = edit_cmd_main(g, argc, argv, &spec, &plan);
	for (size_t i = 0; i < plan.labels.nops; i++)
		label_op_release(&plan.labels.ops[i]);
	free(plan.labels.ops);
	for (size_t i = 0; i < plan.taints.nops; i++)
		taint_op_release(&plan.taints.ops[i]);
	free(plan.taints.ops);
	taint_arg = NULL;
	return code;
}
