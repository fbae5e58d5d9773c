/* The label and taint planners: pure functions from a Node object and the
 * requested operations to the changes, the state after them and a JSON
 * patch conditional on what was read (kubectl's semantics).  No I/O. */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/json.h"
#include "gpuctl/plan.h"


static void label_change(cJSON *changes, const char *op, const char *key, const char *value, const char *old)
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

int label_plan_node(void *ud, const cJSON *node, struct edit_result *r)
{
	const struct label_plan *p = ud;
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
				label_change(r->changes, "remove", op->key, NULL, cur);
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
		label_change(r->changes, cur ? "update" : "add", op->key, value, cur);
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

static void taint_change(cJSON *changes, const char *op, const char *key, const char *value, const char *effect,
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

int taint_plan_node(void *ud, const cJSON *node, struct edit_result *r)
{
	const struct taint_plan *p = ud;
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
		taint_change(r->changes, cur ? "update" : "add", op->key, op->value, op->effect, cur ? tval(cur) : NULL);
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
				taint_change(r->changes, "remove", key, tval(x), eff ? eff : "", NULL);
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
