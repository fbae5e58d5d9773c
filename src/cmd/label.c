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
	"gpuctl label [NODE...] [-l SELECTOR] [KEY=VALUE...] [KEY-...] [--overwrite] [--dry-run[=client|server]] [-o json|yaml]";
static const char summary[] =
	"Set (KEY=VALUE) or remove (KEY-) labels on nodes. Without NODE or -l, acts on the GPU nodes\n"
	"(nvidia.com/gpu capacity, NFD PCI vendor 10de, or nvidia.com/gpu.present=true). Without\n"
	"KEY=VALUE or KEY-, sets the default labels accelerator=nvidia and gpu-type=<GPU product>\n"
	"(changeable in the config file). Changing an existing value needs --overwrite.";


static int label_add_op(void *ud, const char *arg, struct gerr *err)
{
	struct label_plan *p = ud;
	struct label_op op;
	if (label_op_parse(arg, &op, err) < 0)
		return -1;
	p->ops = xrealloc(p->ops, (p->nops + 1) * sizeof(*p->ops));
	p->ops[p->nops++] = op;
	return 0;
}

static int label_check(void *ud, struct gerr *err)
{
	struct label_plan *p = ud;
	return label_ops_check(p->ops, p->nops, err);
}

static size_t label_count(void *ud)
{
	return ((struct label_plan *)ud)->nops;
}

static int label_defaults(struct gctx *g, void *ud, struct gerr *err)
{
	struct label_plan *p = ud;
	free(p->ops);
	p->ops = NULL;
	p->defaults = 1;
	return label_default_ops(g->config, &p->ops, &p->nops, err);
}

static void label_set_overwrite(void *ud, int overwrite)
{
	((struct label_plan *)ud)->overwrite = overwrite;
}

int cmd_label(struct gctx *g, int argc, char **argv)
{
	static const struct edit_cmd spec = {
		.name = "label", .usage = usage, .summary = summary,
		.overwrite_help = "allow changing the value of an existing label",
		.kind = "NodeLabelResult", .state_field = "labels", .verb = "labeled",
		.is_op = label_arg_is_op, .add_op = label_add_op, .check_ops = label_check, .count_ops = label_count,
		.default_ops = label_defaults, .set_overwrite = label_set_overwrite, .plan = label_plan_node,
		.parts = NODE_PART_LABELS | NODE_PART_ANNOTATIONS,
	};
	struct label_plan plan = { 0 };
	int code = edit_cmd_main(g, argc, argv, &spec, &plan);
	for (size_t i = 0; i < plan.nops; i++)
		label_op_release(&plan.ops[i]);
	free(plan.ops);
	return code;
}
