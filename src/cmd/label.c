/* gpuctl label: set or remove node labels, kubectl semantics, GPU nodes by default. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "gpuctl/json.h"
#include "gpuctl/buf.h"
#include "gpuctl/labels.h"

static const char usage[] =
	"gpuctl label [NODE...] [-l SELECTOR] [KEY=VALUE...] [KEY-...] [--overwrite] [--dry-run[=client|server]] [-o json|yaml]";
static const char summary[] =
	"Set (KEY=VALUE) or remove (KEY-) labels on nodes. Without NODE or -l, acts on the GPU nodes\n"
	"(nvidia.com/gpu capacity, NFD PCI vendor 10de, or nvidia.com/gpu.present=true). Without\n"
	"KEY=VALUE or KEY-, sets the default labels accelerator=nvidia and gpu-type=<GPU product>\n"
	"(changeable in the config file). Changing an existing value needs --overwrite.";

struct label_plan {
	struct label_op *ops;
	size_t nops;
	int defaults;  /* ops came from the defaults: "{product}" is substituted per node */
	int overwrite;
};

static void add_change(cJSON *changes, const char *op, const char *key, const char *value, const char *old)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "op", op);
	cJSON_AddStringToObject(c, "key", key);
	if (value)
		cJSON_AddStringToObject(c, "value", value);
	if (old)
		cJSON_AddStringToObject(c, "old", old);
	cJSON_AddItemToArray(changes, c);
}

/* "{product}" in a default value becomes the node's GPU product. */
static char *expand_value(const char *v, const cJSON *node, int *unknown)
{
	const char *ph = strstr(v, "{product}");
	if (!ph)
		return xstrdup(v);
	const char *product = node_gpu_product(node);
	if (!product) {
		*unknown = 1;
		return NULL;
	}
	return xasprintf("%.*s%s%s", (int)(ph - v), v, product, ph + strlen("{product}"));
}

static int plan_labels(void *ud, const cJSON *node, struct edit_result *r)
{
	struct label_plan *p = ud;
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(node, "metadata");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
	cJSON *after = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, 1) : cJSON_CreateObject();
	cJSON *patch_labels = cJSON_CreateObject();
	int changed = 0;
	for (size_t i = 0; i < p->nops; i++) {
		const struct label_op *op = &p->ops[i];
		const char *cur = json_str(labels, op->key);
		if (!op->value) {
			if (cur) {
				add_change(r->changes, "remove", op->key, NULL, cur);
				cJSON_AddNullToObject(patch_labels, op->key);
				cJSON_DeleteItemFromObjectCaseSensitive(after, op->key);
				changed = 1;
			}
			continue;
		}
		int unknown = 0;
		char *value = p->defaults ? expand_value(op->value, node, &unknown) : xstrdup(op->value);
		if (unknown)
			continue; /* no product known for this node: leave that default out */
		struct gerr verr = GERR_INIT;
		if (label_value_valid(value, &verr) < 0) {
			gerr_set(&r->err, GERR_INVALID, "label %s: %s", op->key, verr.msg);
			gerr_clear(&verr);
			free(value);
			goto fail;
		}
		if (cur && !strcmp(cur, value)) {
			free(value);
			continue;
		}
		if (cur && !p->overwrite) {
			gerr_set(&r->err, GERR_CONFLICT, "'%s' already has a value (%s), and --overwrite is false",
				 op->key, cur);
			free(value);
			goto fail;
		}
		add_change(r->changes, cur ? "update" : "add", op->key, value, cur);
		cJSON_AddStringToObject(patch_labels, op->key, value);
		cJSON_DeleteItemFromObjectCaseSensitive(after, op->key);
		cJSON_AddStringToObject(after, op->key, value);
		changed = 1;
		free(value);
	}
	r->state = after;
	if (changed) {
		/* JSON patch, conditional on the labels as read: a concurrent change of
		 * the labels fails the test (422) and the node is fetched and planned
		 * again; status updates (heartbeats) do not touch them, so unlike a
		 * resourceVersion precondition they cause no retries */
		cJSON *patch = cJSON_CreateArray();
		if (cJSON_IsObject(labels)) {
			cJSON *t = cJSON_CreateObject();
			cJSON_AddStringToObject(t, "op", "test");
			cJSON_AddStringToObject(t, "path", "/metadata/labels");
			cJSON_AddItemToObject(t, "value", cJSON_Duplicate(labels, 1));
			cJSON_AddItemToArray(patch, t);
			const cJSON *ch;
			cJSON_ArrayForEach(ch, patch_labels) {
				cJSON *o = cJSON_CreateObject();
				struct buf path = BUF_INIT;
				buf_adds(&path, "/metadata/labels/");
				json_pointer_escape(&path, ch->string);
				cJSON_AddStringToObject(o, "op", cJSON_IsNull(ch) ? "remove" : "add");
				cJSON_AddStringToObject(o, "path", path.s);
				if (!cJSON_IsNull(ch))
					cJSON_AddStringToObject(o, "value", ch->valuestring);
				cJSON_AddItemToArray(patch, o);
				buf_release(&path);
			}
		} else {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "op", "add");
			cJSON_AddStringToObject(o, "path", "/metadata/labels");
			cJSON_AddItemToObject(o, "value", cJSON_Duplicate(after, 1));
			cJSON_AddItemToArray(patch, o);
		}
		cJSON_Delete(patch_labels);
		r->patch = cJSON_PrintUnformatted(patch);
		cJSON_Delete(patch);
	} else {
		cJSON_Delete(patch_labels);
	}
	return 0;
fail:
	cJSON_Delete(after);
	cJSON_Delete(patch_labels);
	return -1;
}

/* Defaults from the config file (label.defaults: {key: value}) or built in. */
static int default_ops(struct gctx *g, struct label_op **ops, size_t *nops, struct gerr *err)
{
	const cJSON *defs = NULL;
	const char *path = NULL;
	if (g->config) {
		defs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g->config, "label"),
							"defaults");
		path = json_str(g->config, "__path");
	}
	if (!defs) {
		*ops = xcalloc(2, sizeof(**ops));
		(*ops)[0] = (struct label_op){ xstrdup("accelerator"), xstrdup("nvidia") };
		(*ops)[1] = (struct label_op){ xstrdup("gpu-type"), xstrdup("{product}") };
		*nops = 2;
		return 0;
	}
	if (!cJSON_IsObject(defs))
		return gerr_set(err, GERR_CONFIG, "%s: label.defaults must be a mapping of label keys to values",
				path);
	size_t n = (size_t)cJSON_GetArraySize(defs), k = 0;
	*ops = xcalloc(n ? n : 1, sizeof(**ops));
	const cJSON *it;
	cJSON_ArrayForEach(it, defs) {
		struct gerr e = GERR_INIT;
		if (!cJSON_IsString(it) || label_key_valid(it->string, &e) < 0) {
			gerr_set(err, GERR_CONFIG, "%s: label.defaults.%s: %s", path, it->string,
				 e.msg ? e.msg : "the value must be a string");
			gerr_clear(&e);
			goto fail;
		}
		(*ops)[k].key = xstrdup(it->string);
		(*ops)[k].value = xstrdup(it->valuestring);
		k++;
	}
	*nops = k;
	return 0;
fail:
	for (size_t i = 0; i < k; i++)
		label_op_release(&(*ops)[i]);
	free(*ops);
	*ops = NULL;
	return -1;
}

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
	return default_ops(g, &p->ops, &p->nops, err);
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
		.default_ops = label_defaults, .set_overwrite = label_set_overwrite, .plan = plan_labels,
	};
	struct label_plan plan = { 0 };
	int code = edit_cmd_main(g, argc, argv, &spec, &plan);
	for (size_t i = 0; i < plan.nops; i++)
		label_op_release(&plan.ops[i]);
	free(plan.ops);
	return code;
}
