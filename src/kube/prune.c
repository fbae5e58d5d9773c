/* What gpuctl keeps of the items of a list that grows with the cluster
 * (pods above all: one per node for each DaemonSet, and the nodes
 * themselves: node_prune_parts in nodes.c), as each page arrives, and the
 * helpers both use. */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/kube.h"
#include "internal.h"

cJSON *prune_add(cJSON *to, const char *key, cJSON *item)
{
	cJSON_AddItemToObjectCS(to, key, item);
	return item;
}

void prune_keep_one(cJSON *to, const cJSON *from, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
	if (v)
		prune_add(to, key, cJSON_Duplicate(v, 1));
}

void prune_keep(cJSON *to, const cJSON *from, const char *const *keys)
{
	for (size_t i = 0; keys[i]; i++)
		prune_keep_one(to, from, keys[i]);
}

void prune_keep_prefixed(cJSON *to, const cJSON *from, const char *key, const char *prefix)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
	if (!v)
		return;
	if (!cJSON_IsObject(v)) {
		prune_add(to, key, cJSON_Duplicate(v, 1));
		return;
	}
	cJSON *o = prune_add(to, key, cJSON_CreateObject());
	const cJSON *m;
	cJSON_ArrayForEach(m, v)
		if (m->string && !strncmp(m->string, prefix, strlen(prefix)))
			cJSON_AddItemToObject(o, m->string, cJSON_Duplicate(m, 1));
}

void prune_keep_each(cJSON *to, const cJSON *from, const char *key, const char *match_key, const char *match_value,
		     const char *const *fields)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, key);
	if (!v)
		return;
	if (!cJSON_IsArray(v)) {
		prune_add(to, key, cJSON_Duplicate(v, 1));
		return;
	}
	cJSON *a = prune_add(to, key, cJSON_CreateArray());
	const cJSON *e;
	cJSON_ArrayForEach(e, v) {
		if (!cJSON_IsObject(e)) {
			cJSON_AddItemToArray(a, cJSON_Duplicate(e, 1));
			continue;
		}
		if (match_key) {
			const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, match_key);
			if (!cJSON_IsString(m) || strcmp(m->valuestring, match_value))
				continue;
		}
		cJSON *o = cJSON_CreateObject();
		prune_keep(o, e, fields);
		cJSON_AddItemToArray(a, o);
	}
}

cJSON *prune_sub(cJSON *to, const cJSON *obj, const char *key, const cJSON **from)
{
	*from = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!*from)
		return NULL;
	if (!cJSON_IsObject(*from)) {
		prune_add(to, key, cJSON_Duplicate(*from, 1));
		return NULL;
	}
	return prune_add(to, key, cJSON_CreateObject());
}

cJSON *kube_meta_prune(const cJSON *obj)
{
	static const char *const md_fields[] = { "name", "namespace", "labels", NULL };
	static const char *const top[] = { "apiVersion", "kind", NULL };
	cJSON *out = cJSON_CreateObject();
	prune_keep(out, obj, top);
	const cJSON *md;
	cJSON *m = prune_sub(out, obj, "metadata", &md);
	if (m)
		prune_keep(m, md, md_fields);
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
	cJSON *m = prune_sub(out, pod, "metadata", &from);
	if (m)
		prune_keep(m, from, md_fields);
	cJSON *s = prune_sub(out, pod, "spec", &from);
	if (s) {
		prune_keep(s, from, spec_fields);
		prune_keep_each(s, from, "initContainers", NULL, NULL, ctr_fields);
		prune_keep_each(s, from, "containers", NULL, NULL, ctr_fields);
	}
	s = prune_sub(out, pod, "status", &from);
	if (s) {
		prune_keep(s, from, status_fields);
		prune_keep_each(s, from, "conditions", NULL, NULL, cond_fields);
		prune_keep_each(s, from, "initContainerStatuses", NULL, NULL, cs_fields);
		prune_keep_each(s, from, "containerStatuses", NULL, NULL, cs_fields);
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
