/* gpuctl taint: add or remove node taints, kubectl semantics, GPU nodes by default. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "gpuctl/json.h"
#include "gpuctl/buf.h"
#include "gpuctl/labels.h"

static const char usage[] =
	"gpuctl taint [NODE...] [-l SELECTOR] [KEY=VALUE:EFFECT...] [KEY:EFFECT-...] [KEY-...] [--overwrite] [--dry-run[=client|server]] [-o json|yaml]";
static const char summary[] =
	"Add (KEY[=VALUE]:EFFECT) or remove (KEY:EFFECT-, KEY-) taints on nodes. Without NODE or -l,\n"
	"acts on the GPU nodes. Without taint arguments, adds the default nvidia.com/gpu=true:NoSchedule\n"
	"(changeable in the config file). Changing the value of an existing taint needs --overwrite.\n"
	"EFFECT is NoSchedule, PreferNoSchedule or NoExecute.";

struct taint_plan {
	struct taint_op *ops;
	size_t nops;
	int overwrite;
};

static const char *tval(const cJSON *t)
{
	const char *v = json_str(t, "value");
	return v ? v : "";
}

static int same_key_effect(const cJSON *t, const char *key, const char *effect)
{
	const char *k = json_str(t, "key"), *e = json_str(t, "effect");
	return k && e && !strcmp(k, key) && !strcmp(e, effect);
}

static cJSON *taint_json(const struct taint_op *op)
{
	/* the same shape kubectl writes: value omitted when empty */
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "key", op->key);
	if (*op->value)
		cJSON_AddStringToObject(t, "value", op->value);
	cJSON_AddStringToObject(t, "effect", op->effect);
	return t;
}

static void add_change(cJSON *changes, const char *op, const char *key, const char *value, const char *effect,
		       const char *old)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "op", op);
	cJSON_AddStringToObject(c, "key", key);
	cJSON_AddStringToObject(c, "value", value ? value : "");
	cJSON_AddStringToObject(c, "effect", effect);
	if (old)
		cJSON_AddStringToObject(c, "old", old);
	cJSON_AddItemToArray(changes, c);
}

static int plan_taints(void *ud, const cJSON *node, struct edit_result *r)
{
	struct taint_plan *p = ud;
	const cJSON *old = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(node, "spec"), "taints");
	int changed = 0;
	/* kubectl's order: the taints being added first, then the old ones they do not replace */
	cJSON *after = cJSON_CreateArray();
	for (size_t i = 0; i < p->nops; i++) {
		const struct taint_op *op = &p->ops[i];
		if (op->remove)
			continue;
		const cJSON *cur = NULL, *t;
		cJSON_ArrayForEach(t, old)
			if (same_key_effect(t, op->key, op->effect))
				cur = t;
		if (cur && !strcmp(tval(cur), op->value)) {
			cJSON_AddItemToArray(after, cJSON_Duplicate(cur, 1)); /* keeps timeAdded */
			continue;
		}
		if (cur && !p->overwrite) {
			gerr_set(&r->err, GERR_CONFLICT,
				 "node %s already has taint %s:%s with value \"%s\", and --overwrite is false", r->node,
				 op->key, op->effect, tval(cur));
			cJSON_Delete(after);
			return -1;
		}
		add_change(r->changes, cur ? "update" : "add", op->key, op->value, op->effect, cur ? tval(cur) : NULL);
		cJSON_AddItemToArray(after, taint_json(op));
		changed = 1;
	}
	const cJSON *t;
	cJSON_ArrayForEach(t, old) {
		int replaced = 0;
		const cJSON *a;
		cJSON_ArrayForEach(a, after)
			if (same_key_effect(t, json_str(a, "key"), json_str(a, "effect")))
				replaced = 1;
		if (!replaced)
			cJSON_AddItemToArray(after, cJSON_Duplicate(t, 1));
	}
	/* removals: KEY- removes every effect, KEY:EFFECT- one; absent is fine */
	for (size_t i = 0; i < p->nops; i++) {
		const struct taint_op *op = &p->ops[i];
		if (!op->remove)
			continue;
		for (int k = cJSON_GetArraySize(after) - 1; k >= 0; k--) {
			cJSON *x = cJSON_GetArrayItem(after, k);
			const char *key = json_str(x, "key"), *eff = json_str(x, "effect");
			if (key && !strcmp(key, op->key) && (!*op->effect || (eff && !strcmp(eff, op->effect)))) {
				add_change(r->changes, "remove", key, tval(x), eff ? eff : "", NULL);
				cJSON_DeleteItemFromArray(after, k);
				changed = 1;
			}
		}
	}
	if (!changed) {
		/* keep the node's own order when nothing changes */
		cJSON_Delete(after);
		r->state = cJSON_IsArray(old) ? cJSON_Duplicate(old, 1) : cJSON_CreateArray();
		return 0;
	}
	r->state = after;
	/* JSON patch, conditional on the spec as read (taints replace as a whole
	 * list, so a concurrent change must not be lost): a change of it fails the
	 * test (422) and the node is fetched and planned again; status updates
	 * (heartbeats) do not touch the spec, so unlike a resourceVersion
	 * precondition they cause no retries.  No taints left: the field goes,
	 * as kubectl leaves it. */
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(node, "spec");
	cJSON *patch = cJSON_CreateArray();
	cJSON *test = cJSON_CreateObject(), *o = cJSON_CreateObject();
	cJSON_AddStringToObject(test, "op", "test");
	if (cJSON_IsArray(old)) {
		cJSON_AddStringToObject(test, "path", "/spec/taints");
		cJSON_AddItemToObject(test, "value", cJSON_Duplicate(old, 1));
		cJSON_AddStringToObject(o, "op", cJSON_GetArraySize(after) ? "replace" : "remove");
		cJSON_AddStringToObject(o, "path", "/spec/taints");
	} else {
		cJSON_AddStringToObject(test, "path", "/spec");
		cJSON_AddItemToObject(test, "value", cJSON_IsObject(spec) ? cJSON_Duplicate(spec, 1) : cJSON_CreateObject());
		cJSON_AddStringToObject(o, "op", "add");
		cJSON_AddStringToObject(o, "path", "/spec/taints");
	}
	if (cJSON_GetArraySize(after))
		cJSON_AddItemToObject(o, "value", cJSON_Duplicate(after, 1));
	cJSON_AddItemToArray(patch, test);
	if (cJSON_GetArraySize(after) || cJSON_IsArray(old))
		cJSON_AddItemToArray(patch, o);
	else
		cJSON_Delete(o);
	r->patch = cJSON_PrintUnformatted(patch);
	cJSON_Delete(patch);
	return 0;
}

static int default_ops(struct gctx *g, struct taint_op **ops, size_t *nops, struct gerr *err)
{
	const cJSON *defs = NULL;
	const char *path = NULL;
	if (g->config) {
		defs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g->config, "taint"),
							"defaults");
		path = json_str(g->config, "__path");
	}
	if (!defs) {
		*ops = xcalloc(1, sizeof(**ops));
		*nops = 1;
		return taint_op_parse("nvidia.com/gpu=true:NoSchedule", &(*ops)[0], err);
	}
	if (!cJSON_IsArray(defs))
		return gerr_set(err, GERR_CONFIG, "%s: taint.defaults must be a list like [\"KEY=VALUE:EFFECT\"]",
				path);
	size_t n = (size_t)cJSON_GetArraySize(defs), k = 0;
	*ops = xcalloc(n ? n : 1, sizeof(**ops));
	const cJSON *it;
	cJSON_ArrayForEach(it, defs) {
		struct gerr e = GERR_INIT;
		if (!cJSON_IsString(it) || taint_op_parse(it->valuestring, &(*ops)[k], &e) < 0 || (*ops)[k].remove) {
			gerr_set(err, GERR_CONFIG, "%s: taint.defaults[%zu]: %s", path, k,
				 e.msg ? e.msg : "must be a string KEY=VALUE:EFFECT");
			gerr_clear(&e);
			if (k < n && (*ops)[k].key)
				taint_op_release(&(*ops)[k]);
			goto fail;
		}
		k++;
	}
	*nops = k;
	return taint_ops_check(*ops, k, err) < 0 ? -1 : 0;
fail:
	for (size_t i = 0; i < k; i++)
		taint_op_release(&(*ops)[i]);
	free(*ops);
	*ops = NULL;
	*nops = 0;
	return -1;
}

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
	return default_ops(g, &p->ops, &p->nops, err);
}

static void taint_set_overwrite(void *ud, int overwrite)
{
	((struct taint_plan *)ud)->overwrite = overwrite;
}

int cmd_taint(struct gctx *g, int argc, char **argv)
{
	static const struct edit_cmd spec = {
		.name = "taint", .usage = usage, .summary = summary,
		.overwrite_help = "allow changing the value of an existing taint",
		.kind = "NodeTaintResult", .state_field = "taints", .verb = "tainted",
		.is_op = taint_arg_is_op, .add_op = taint_add_op, .check_ops = taint_check, .count_ops = taint_count,
		.default_ops = taint_defaults, .set_overwrite = taint_set_overwrite, .plan = plan_taints,
	};
	struct taint_plan plan = { 0 };
	int code = edit_cmd_main(g, argc, argv, &spec, &plan);
	for (size_t i = 0; i < plan.nops; i++)
		taint_op_release(&plan.ops[i]);
	free(plan.ops);
	return code;
}
