/* What gpuctl keeps of the items of a list that grows with the cluster
 * (pods above all: one per node for each DaemonSet), as each page arrives. */
#include <stdlib.h>

#include "gpuctl/kube.h"

/* key must be a static string (cJSON_AddItemToObjectCS) */
static cJSON *add_static(cJSON *to, const char *key, cJSON *item)
{
	cJSON_AddItemToObjectCS(to, key, item);
	return item;
}

/* Copy the members of from named in keys (static, NULL-terminated), deep. */
static void keep(cJSON *to, const cJSON *from, const char *const *keys)
{
	for (size_t i = 0; keys[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, keys[i]);
		if (v)
			add_static(to, keys[i], cJSON_Duplicate(v, 1));
	}
}

/* from[key], an array of objects, as an array of the same length holding
 * only the members named in fields; any other value is copied whole. */
static void keep_each(cJSON *to, const cJSON *from, const char *key, const char *const *fields)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
	if (!v)
		return;
	if (!cJSON_IsArray(v)) {
		add_static(to, key, cJSON_Duplicate(v, 1));
		return;
	}
	cJSON *a = add_static(to, key, cJSON_CreateArray());
	const cJSON *e;
	cJSON_ArrayForEach(e, v) {
		if (!cJSON_IsObject(e)) {
			cJSON_AddItemToArray(a, cJSON_Duplicate(e, 1));
			continue;
		}
		cJSON *o = cJSON_CreateObject();
		keep(o, e, fields);
		cJSON_AddItemToArray(a, o);
	}
}

/* obj[key] when it is an object, copied as a new object with keep/keep_each
 * applied by the caller; NULL (nothing added) when absent. */
static cJSON *sub(cJSON *to, const cJSON *obj, const char *key, const cJSON **from)
{
	*from = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!*from)
		return NULL;
	if (!cJSON_IsObject(*from)) {
		add_static(to, key, cJSON_Duplicate(*from, 1));
		return NULL;
	}
	return add_static(to, key, cJSON_CreateObject());
}

cJSON *kube_meta_prune(const cJSON *obj)
{
	static const char *const md_fields[] = { "name", "namespace", "labels", NULL };
	static const char *const top[] = { "apiVersion", "kind", NULL };
	cJSON *out = cJSON_CreateObject();
	keep(out, obj, top);
	const cJSON *md;
	cJSON *m = sub(out, obj, "metadata", &md);
	if (m)
		keep(m, md, md_fields);
	return out;
}

cJSON *kube_pod_prune(const cJSON *pod)
{
	/* uid and the containers' volumeMounts: validate's node.plugin-config finds
	 * the plugin pod's /config volume on the node by them */
	static const char *const md_fields[] = { "name", "namespace", "uid", "deletionTimestamp", NULL };
	static const char *const spec_fields[] = { "nodeName", NULL };
	static const char *const ctr_fields[] = { "name", "ports", "resources", "volumeMounts", NULL };
	static const char *const status_fields[] = { "phase", NULL };
	static const char *const cond_fields[] = { "type", "status", NULL };
	static const char *const cs_fields[] = { "name", "state", NULL };
	cJSON *out = cJSON_CreateObject();
	const cJSON *from;
	cJSON *m = sub(out, pod, "metadata", &from);
	if (m)
		keep(m, from, md_fields);
	cJSON *s = sub(out, pod, "spec", &from);
	if (s) {
		keep(s, from, spec_fields);
		keep_each(s, from, "initContainers", ctr_fields);
		keep_each(s, from, "containers", ctr_fields);
	}
	s = sub(out, pod, "status", &from);
	if (s) {
		keep(s, from, status_fields);
		keep_each(s, from, "conditions", cond_fields);
		keep_each(s, from, "initContainerStatuses", cs_fields);
		keep_each(s, from, "containerStatuses", cs_fields);
	}
	return out;
}

/* kube_list_pruned's gatherer */
struct pruned {
	kube_prune_fn prune;
	cJSON *items;
};

static int gather_pruned(void *ud, cJSON *item, struct gerr *err)
{
	(void)err;
	struct pruned *p = ud;
	if (!item) {
		/* the list starts again */
		cJSON_Delete(p->items);
		p->items = cJSON_CreateArray();
		return 0;
	}
	cJSON *kept = p->prune(item);
	cJSON_Delete(item);
	if (kept)
		cJSON_AddItemToArray(p->items, kept);
	return 0;
}

int kube_list_pruned(struct kube_client *c, const char *path, const struct kube_list_opts *lo, kube_prune_fn prune,
		     cJSON **items, char **rv, struct gerr *err)
{
	struct pruned p = { .prune = prune, .items = cJSON_CreateArray() };
	if (kube_list_each(c, path, lo, gather_pruned, &p, rv, err) < 0) {
		cJSON_Delete(p.items);
		return -1;
	}
	*items = p.items;
	return 0;
}
