/* The label and taint planners: pure functions from a Node object and the
 * requested operations to the changes, the state after them and a JSON
 * patch conditional on what was read (kubectl's semantics).  No I/O. */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/json.h"
#include "gpuctl/owned.h"
#include "gpuctl/plan.h"

/* ---- the record of what gpuctl added (owned.h's annotations) ---- */

static const cJSON *node_annotations(const cJSON *node)
{
	const cJSON *a = json_get2(node, "metadata", "annotations");
	return cJSON_IsObject(a) ? a : NULL;
}

/* The record under key as read: a list of strings (object = 0) or an object
 * of strings (object = 1); a missing or unreadable one is empty (new). */
static cJSON *record_read(const cJSON *node, const char *key, int object)
{
	const char *s = json_str(node_annotations(node), key);
	cJSON *j = s ? cJSON_Parse(s) : NULL;
	cJSON *out = object ? cJSON_CreateObject() : cJSON_CreateArray();
	const cJSON *it;
	if (object ? cJSON_IsObject(j) : cJSON_IsArray(j))
		cJSON_ArrayForEach(it, j) {
			if (!cJSON_IsString(it))
				continue;
			if (object && !cJSON_GetObjectItemCaseSensitive(out, it->string))
				cJSON_AddStringToObject(out, it->string, it->valuestring);
			else if (!object && !plan_record_has(out, it->valuestring))
				cJSON_AddItemToArray(out, cJSON_CreateString(it->valuestring));
		}
	cJSON_Delete(j);
	return out;
}

static int toleration_matches(const cJSON *tol, const char *key, const char *value, const char *effect)
{
	const char *tk = json_str(tol, "key"), *op = json_str(tol, "operator"), *te = json_str(tol, "effect");
	int exists = op && !strcmp(op, "Exists");
	if (te && *te && strcmp(te, effect))
		return 0;
	if (!tk || !*tk)
		return exists;
	if (strcmp(tk, key))
		return 0;
	if (exists)
		return 1;
	const char *tv = json_str(tol, "value");
	return !strcmp(tv ? tv : "", value ? value : "");
}

int taints_tolerated(const cJSON *taints, const cJSON *tolerations)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, taints) {
		const char *k = json_str(t, "key"), *e = json_str(t, "effect");
		if (!k || !e || (strcmp(e, "NoSchedule") && strcmp(e, "NoExecute")))
			continue;
		int ok = 0;
		const cJSON *tol;
		cJSON_ArrayForEach(tol, tolerations)
			ok |= toleration_matches(tol, k, json_str(t, "value"), e);
		if (!ok)
			return 0;
	}
	return 1;
}

int plan_record_has(const cJSON *list, const char *s)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, list)
		if (cJSON_IsString(it) && !strcmp(it->valuestring, s))
			return 1;
	return 0;
}

int plan_label_added(const cJSON *node, const char *key)
{
	cJSON *added = record_read(node, GPUCTL_ADDED_LABELS_KEY, 0);
	int has = plan_record_has(added, key);
	cJSON_Delete(added);
	return has;
}

static int record_add(cJSON *list, const char *s)
{
	if (plan_record_has(list, s))
		return 0;
	cJSON_AddItemToArray(list, cJSON_CreateString(s));
	return 1;
}

static int record_del(cJSON *list, const char *s)
{
	int n = cJSON_GetArraySize(list);
	for (int i = 0; i < n; i++) {
		const cJSON *it = cJSON_GetArrayItem(list, i);
		if (cJSON_IsString(it) && !strcmp(it->valuestring, s)) {
			cJSON_DeleteItemFromArray(list, i);
			return 1;
		}
	}
	return 0;
}

/* JSON patch operations that set the annotations keys[i] to values[i]
 * (compact JSON; an empty list or object, or NULL, removes the annotation).
 * An annotation that exists is tested first, so a concurrent change of the
 * record fails the patch (422) and the node is planned again. */
static void record_patch(cJSON *patch, const cJSON *node, const char *const *keys, const cJSON *const *values, size_t n)
{
	const cJSON *ann = node_annotations(node);
	cJSON *whole = NULL; /* no annotations at all: the whole map is added */
	for (size_t i = 0; i < n; i++) {
		const char *cur = json_str(ann, keys[i]);
		char *v = values[i] && cJSON_GetArraySize(values[i]) ? cJSON_PrintUnformatted(values[i]) : NULL;
		if ((!v && !cur) || (v && cur && !strcmp(v, cur))) {
			free(v);
			continue;
		}
		if (!ann) {
			if (!whole)
				whole = cJSON_CreateObject();
			cJSON_AddStringToObject(whole, keys[i], v);
			free(v);
			continue;
		}
		struct buf path = BUF_INIT;
		buf_adds(&path, "/metadata/annotations/");
		json_pointer_escape(&path, keys[i]);
		if (cur) {
			cJSON *t = cJSON_CreateObject();
			cJSON_AddStringToObject(t, "op", "test");
			cJSON_AddStringToObject(t, "path", path.s);
			cJSON_AddStringToObject(t, "value", cur);
			cJSON_AddItemToArray(patch, t);
		}
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "op", v ? "add" : "remove");
		cJSON_AddStringToObject(o, "path", path.s);
		if (v)
			cJSON_AddStringToObject(o, "value", v);
		cJSON_AddItemToArray(patch, o);
		buf_release(&path);
		free(v);
	}
	if (whole) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "op", "add");
		cJSON_AddStringToObject(o, "path", "/metadata/annotations");
		cJSON_AddItemToObject(o, "value", whole);
		cJSON_AddItemToArray(patch, o);
	}
}


/* A change is kept for every node until the report (20,000 of them on a
 * large cluster): its keys (literals) are not copied, nor is op, always one
 * of the literals "add", "update", "remove". */
static cJSON *change_new(const char *op)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddItemToObjectCS(c, "op", cJSON_CreateStringReference(op));
	return c;
}

static void change_add(cJSON *c, const char *literal_key, const char *value)
{
	cJSON_AddItemToObjectCS(c, literal_key, cJSON_CreateString(value));
}

static void label_change(cJSON *changes, const char *op, const char *key, const char *value, const char *old)
{
	cJSON *c = change_new(op);
	change_add(c, "key", key);
	if (value)
		change_add(c, "value", value);
	if (old)
		change_add(c, "old", old);
	cJSON_AddItemToArray(changes, c);
}

/* "{product}" in a default value becomes the node's GPU product (GFD's
 * nvidia.com/gpu.product without its -SHARED and -MIG-<profile>). */
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
	/* GFD appends -SHARED while time-slicing or MPS shares the GPU (unless
	 * renamed), and -MIG-<profile> while the MIG single strategy advertises MIG
	 * devices as nvidia.com/gpu: states of the node, not the GPU's type */
	struct gfd_product gp;
	gfd_product_parse(product, &gp);
	size_t n = gp.base_len;
	return xasprintf("%.*s%.*s%s", (int)(ph - v), v, (int)n, product, ph + strlen("{product}"));
}

int label_plan_node(void *ud, const cJSON *node, struct edit_result *r)
{
	const struct label_plan *p = ud;
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(node, "metadata");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
	cJSON *after = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, 1) : cJSON_CreateObject();
	cJSON *patch_labels = cJSON_CreateObject();
	cJSON *added = record_read(node, GPUCTL_ADDED_LABELS_KEY, 0);
	cJSON *over = record_read(node, GPUCTL_OVERWRITTEN_LABELS_KEY, 1);
	int changed = 0;
	for (size_t i = 0; i < p->nops; i++) {
		const struct label_op *op = &p->ops[i];
		const char *cur = json_str(labels, op->key);
		if (!op->value) {
			if (cur) {
				/* removed through gpuctl: no longer gpuctl's to undo */
				record_del(added, op->key);
				cJSON_DeleteItemFromObjectCaseSensitive(over, op->key);
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
		/* what gpuctl adds is recorded; a value a person set is never
		 * recorded as gpuctl's: its old value is kept so cleanup restores it */
		if (!cur)
			record_add(added, op->key);
		else if (!plan_record_has(added, op->key) && !cJSON_GetObjectItemCaseSensitive(over, op->key))
			cJSON_AddStringToObject(over, op->key, cur);
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
		static const char *const keys[] = { GPUCTL_ADDED_LABELS_KEY, GPUCTL_OVERWRITTEN_LABELS_KEY };
		const cJSON *const values[] = { added, over };
		record_patch(patch, node, keys, values, 2);
		cJSON_Delete(patch_labels);
		r->patch = cJSON_PrintUnformatted(patch);
		cJSON_Delete(patch);
	} else {
		cJSON_Delete(patch_labels);
	}
	cJSON_Delete(added);
	cJSON_Delete(over);
	return 0;
fail:
	cJSON_Delete(after);
	cJSON_Delete(patch_labels);
	cJSON_Delete(added);
	cJSON_Delete(over);
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
	cJSON *c = change_new(op);
	change_add(c, "key", key);
	change_add(c, "value", value ? value : "");
	change_add(c, "effect", effect);
	if (old)
		change_add(c, "old", old);
	cJSON_AddItemToArray(changes, c);
}

int taint_plan_node(void *ud, const cJSON *node, struct edit_result *r)
{
	const struct taint_plan *p = ud;
	const cJSON *old = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(node, "spec"), "taints");
	int changed = 0;
	/* kubectl's order: the taints being added first, then the old ones they do not replace */
	cJSON *after = cJSON_CreateArray();
	cJSON *added = record_read(node, GPUCTL_ADDED_TAINTS_KEY, 0);
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
			cJSON_Delete(added);
			return -1;
		}
		if (!cur) {
			/* a new taint is gpuctl's; one a person set keeps being theirs */
			char *ke = xasprintf("%s:%s", op->key, op->effect);
			record_add(added, ke);
			free(ke);
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
				char *ke = xasprintf("%s:%s", key, eff ? eff : "");
				record_del(added, ke);
				free(ke);
				cJSON_DeleteItemFromArray(after, k);
				changed = 1;
			}
		}
	}
	if (!changed) {
		/* keep the node's own order when nothing changes */
		cJSON_Delete(after);
		cJSON_Delete(added);
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
	static const char *const keys[] = { GPUCTL_ADDED_TAINTS_KEY };
	const cJSON *const values[] = { added };
	record_patch(patch, node, keys, values, 1);
	cJSON_Delete(added);
	r->patch = cJSON_PrintUnformatted(patch);
	cJSON_Delete(patch);
	return 0;
}


/* ---- cleanup: undo exactly what the record says ---- */

static void cleanup_change(cJSON *changes, const char *kind, const char *op, const char *key, const char *value,
			   const char *effect, const char *old)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "kind", kind);
	cJSON_AddStringToObject(c, "op", op);
	cJSON_AddStringToObject(c, "key", key);
	if (value)
		cJSON_AddStringToObject(c, "value", value);
	if (effect)
		cJSON_AddStringToObject(c, "effect", effect);
	if (old)
		cJSON_AddStringToObject(c, "old", old);
	cJSON_AddItemToArray(changes, c);
}

static void add_test(cJSON *patch, const char *path, const cJSON *value)
{
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "op", "test");
	cJSON_AddStringToObject(t, "path", path);
	cJSON_AddItemToObject(t, "value", cJSON_Duplicate(value, 1));
	cJSON_AddItemToArray(patch, t);
}

int cleanup_plan_node(void *ud, const cJSON *node, struct edit_result *r)
{
	(void)ud;
	const cJSON *labels = json_get2(node, "metadata", "labels");
	const cJSON *taints = json_get2(node, "spec", "taints");
	cJSON *added = record_read(node, GPUCTL_ADDED_LABELS_KEY, 0);
	cJSON *over = record_read(node, GPUCTL_OVERWRITTEN_LABELS_KEY, 1);
	cJSON *tadded = record_read(node, GPUCTL_ADDED_TAINTS_KEY, 0);
	cJSON *lafter = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, 1) : cJSON_CreateObject();
	cJSON *tafter = cJSON_CreateArray();
	cJSON *lops = cJSON_CreateArray();
	int lchanged = 0, tchanged = 0, achanged = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, added) {
		const char *cur = json_str(labels, it->valuestring);
		if (!cur)
			continue;
		cleanup_change(r->changes, "label", "remove", it->valuestring, NULL, NULL, cur);
		cJSON_DeleteItemFromObjectCaseSensitive(lafter, it->valuestring);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "op", "remove");
		cJSON_AddStringToObject(o, "path", it->valuestring); /* escaped below */
		cJSON_AddItemToArray(lops, o);
		lchanged = 1;
	}
	cJSON_ArrayForEach(it, over) {
		const char *cur = json_str(labels, it->string);
		if (cur && !strcmp(cur, it->valuestring))
			continue;
		/* the value the person had set comes back (also when gpuctl's was removed since) */
		cleanup_change(r->changes, "label", cur ? "update" : "add", it->string, it->valuestring, NULL, cur);
		cJSON_DeleteItemFromObjectCaseSensitive(lafter, it->string);
		cJSON_AddStringToObject(lafter, it->string, it->valuestring);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "op", "add");
		cJSON_AddStringToObject(o, "path", it->string);
		cJSON_AddStringToObject(o, "value", it->valuestring);
		cJSON_AddItemToArray(lops, o);
		lchanged = 1;
	}
	cJSON_ArrayForEach(it, taints) {
		const char *key = json_str(it, "key"), *eff = json_str(it, "effect");
		char *ke = xasprintf("%s:%s", key ? key : "", eff ? eff : "");
		if (key && eff && plan_record_has(tadded, ke)) {
			cleanup_change(r->changes, "taint", "remove", key, tval(it), eff, NULL);
			tchanged = 1;
		} else {
			cJSON_AddItemToArray(tafter, cJSON_Duplicate(it, 1));
		}
		free(ke);
	}
	static const char *const keys[] = { GPUCTL_ADDED_LABELS_KEY, GPUCTL_OVERWRITTEN_LABELS_KEY,
					    GPUCTL_ADDED_TAINTS_KEY };
	const cJSON *ann = node_annotations(node);
	for (size_t i = 0; i < 3; i++) {
		const char *cur = json_str(ann, keys[i]);
		if (cur) {
			cleanup_change(r->changes, "annotation", "remove", keys[i], NULL, NULL, cur);
			achanged = 1;
		}
	}
	r->state = cJSON_CreateObject();
	cJSON_AddItemToObject(r->state, "labels", lafter);
	cJSON_AddItemToObject(r->state, "taints", tchanged ? tafter : cJSON_IsArray(taints) ? cJSON_Duplicate(taints, 1)
											     : cJSON_CreateArray());
	if (tchanged)
		tafter = NULL;
	if (lchanged || tchanged || achanged) {
		/* conditional on the labels and taints as read, as label and taint are */
		cJSON *patch = cJSON_CreateArray();
		if (lchanged && cJSON_IsObject(labels)) {
			add_test(patch, "/metadata/labels", labels);
			cJSON_ArrayForEach(it, lops) {
				struct buf path = BUF_INIT;
				buf_adds(&path, "/metadata/labels/");
				json_pointer_escape(&path, json_str(it, "path"));
				cJSON_ReplaceItemInObjectCaseSensitive((cJSON *)it, "path", cJSON_CreateString(path.s));
				buf_release(&path);
			}
			cJSON_ArrayForEach(it, lops)
				cJSON_AddItemToArray(patch, cJSON_Duplicate(it, 1));
		} else if (lchanged) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "op", "add");
			cJSON_AddStringToObject(o, "path", "/metadata/labels");
			cJSON_AddItemToObject(o, "value", cJSON_Duplicate(lafter, 1));
			cJSON_AddItemToArray(patch, o);
		}
		if (tchanged) {
			const cJSON *after = cJSON_GetObjectItemCaseSensitive(r->state, "taints");
			add_test(patch, "/spec/taints", taints);
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "op", cJSON_GetArraySize(after) ? "replace" : "remove");
			cJSON_AddStringToObject(o, "path", "/spec/taints");
			if (cJSON_GetArraySize(after))
				cJSON_AddItemToObject(o, "value", cJSON_Duplicate(after, 1));
			cJSON_AddItemToArray(patch, o);
		}
		const cJSON *const none[] = { NULL, NULL, NULL };
		record_patch(patch, node, keys, none, 3);
		r->patch = cJSON_PrintUnformatted(patch);
		cJSON_Delete(patch);
	}
	cJSON_Delete(tafter);
	cJSON_Delete(lops);
	cJSON_Delete(added);
	cJSON_Delete(over);
	cJSON_Delete(tadded);
	return 0;
}

/* Defaults from the config file (label.defaults: {key: value}) or built in. */
int label_default_ops(const cJSON *config, struct label_op **ops, size_t *nops, struct gerr *err)
{
	const cJSON *defs = NULL;
	const char *path = NULL;
	if (config) {
		defs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(config, "label"),
							"defaults");
		path = json_str(config, "__path");
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

/* Defaults from the config file (taint.defaults: ["KEY=VALUE:EFFECT"]) or built in. */
int taint_default_ops(const cJSON *config, struct taint_op **ops, size_t *nops, struct gerr *err)
{
	const cJSON *defs = NULL;
	const char *path = NULL;
	if (config) {
		defs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(config, "taint"),
							"defaults");
		path = json_str(config, "__path");
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

int edit_add_annotation(const cJSON *node, struct edit_result *r, const char *key, const char *value)
{
	const cJSON *ann = json_get2(node, "metadata", "annotations");
	if (json_str(ann, key))
		return 0; /* there already: nothing to do */
	cJSON *patch = r->patch ? cJSON_Parse(r->patch) : cJSON_CreateArray();
	if (!patch)
		return -1;
	/* the planner's own patch may create the annotations object: add to it */
	cJSON *op, *whole = NULL;
	int keyed = 0;
	cJSON_ArrayForEach(op, patch) {
		const char *path = json_str(op, "path");
		if (path && !strcmp(path, "/metadata/annotations") && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(op, "value")))
			whole = cJSON_GetObjectItemCaseSensitive(op, "value");
		else if (path && !strncmp(path, "/metadata/annotations/", 22))
			keyed = 1;
	}
	if (whole) {
		cJSON_DeleteItemFromObjectCaseSensitive(whole, key);
		cJSON_AddStringToObject(whole, key, value);
	} else {
		op = cJSON_CreateObject();
		cJSON_AddStringToObject(op, "op", "add");
		if (cJSON_IsObject(ann) || keyed) {
			struct buf path = BUF_INIT;
			buf_adds(&path, "/metadata/annotations/");
			json_pointer_escape(&path, key);
			cJSON_AddStringToObject(op, "path", path.s);
			cJSON_AddStringToObject(op, "value", value);
			buf_release(&path);
		} else {
			cJSON_AddStringToObject(op, "path", "/metadata/annotations");
			cJSON_AddStringToObject(cJSON_AddObjectToObject(op, "value"), key, value);
		}
		cJSON_AddItemToArray(patch, op);
	}
	free(r->patch);
	r->patch = cJSON_PrintUnformatted(patch);
	cJSON_Delete(patch);
	cJSON *ch = cJSON_CreateObject();
	cJSON_AddStringToObject(ch, "op", "annotate");
	cJSON_AddStringToObject(ch, "key", key);
	cJSON_AddStringToObject(ch, "value", value);
	cJSON_AddItemToArray(r->changes, ch);
	return 0;
}

int label_taint_plan_node(void *ud, const cJSON *node, struct edit_result *r)
{
	struct label_taint_plan *p = ud;
	if (label_plan_node(&p->labels, node, r) < 0)
		return -1;
	/* the taints are planned from the node as the label patch leaves it:
	 * its record annotations (and the annotations object it may create) */
	cJSON *after = NULL;
	if (r->patch) {
		cJSON *ops = cJSON_Parse(r->patch);
		after = cJSON_Duplicate(node, 1);
		int ok = ops && json_patch_apply(after, ops) == 0;
		cJSON_Delete(ops);
		if (!ok) {
			cJSON_Delete(after);
			gerr_set(&r->err, GERR_INTERNAL, "node %s: the label patch does not apply to the node it was planned from",
				 r->node);
			return -1;
		}
	}
	struct edit_result t = { .node = r->node, .changes = cJSON_CreateArray() };
	int rc = taint_plan_node(&p->taints, after ? after : node, &t);
	cJSON_Delete(after);
	if (rc < 0) {
		/* neither is written: the labels' plan goes too */
		gerr_move(&r->err, &t.err);
		cJSON_Delete(t.changes);
		cJSON_Delete(t.state);
		free(r->patch);
		r->patch = NULL;
		cJSON_Delete(r->state);
		r->state = NULL;
		while (cJSON_GetArraySize(r->changes))
			cJSON_DeleteItemFromArray(r->changes, 0);
		return -1;
	}
	cJSON *ch;
	while ((ch = cJSON_DetachItemFromArray(t.changes, 0)))
		cJSON_AddItemToArray(r->changes, ch);
	cJSON_Delete(t.changes);
	cJSON *state = cJSON_CreateObject();
	cJSON_AddItemToObject(state, "labels", r->state ? r->state : cJSON_CreateObject());
	cJSON_AddItemToObject(state, "taints", t.state ? t.state : cJSON_CreateArray());
	r->state = state;
	if (t.patch && r->patch) {
		/* one patch: the label operations, then the taint operations */
		size_t ln = strlen(r->patch);
		char *both = xasprintf("%.*s,%s", (int)(ln - 1), r->patch, t.patch + 1);
		free(r->patch);
		free(t.patch);
		r->patch = both;
	} else if (t.patch) {
		r->patch = t.patch;
	}
	return 0;
}
