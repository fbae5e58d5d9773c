/* Reading what a cluster already runs of an NVIDIA GPU stack. */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/apply.h"
#include "gpuctl/buf.h"
#include "gpuctl/gpustack.h"
#include "gpuctl/owned.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"

int gpustack_runs_plugin(const cJSON *ctr)
{
	const char *img = json_str(ctr, "image");
	if (!img || !strstr(img, "k8s-device-plugin"))
		return 0;
	static const char *const others[] = { "gpu-feature-discovery", "config-manager", "mps-control-daemon" };
	const char *lists[] = { "command", "args" };
	for (int l = 0; l < 2; l++) {
		const cJSON *a;
		cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(ctr, lists[l]))
			for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
				if (cJSON_IsString(a) && strstr(a->valuestring, others[i]))
					return 0;
	}
	return 1;
}

int gpustack_foreign_plugins(struct kube_client *kc, char **names, char **image, struct gerr *err)
{
	*names = *image = NULL;
	cJSON *items = NULL;
	char *path = kube_path("apps/v1", NULL, "daemonsets", NULL);
	int rc = kube_list(kc, path, NULL, &items, NULL, err);
	free(path);
	if (rc < 0)
		return gerr_prefix(err, "list daemonsets");
	struct buf found = BUF_INIT;
	const cJSON *ds;
	cJSON_ArrayForEach(ds, items) {
		if (apply_is_owned(ds))
			continue;
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(ds, "metadata"), *ctr;
		cJSON_ArrayForEach(ctr, json_get2(json_get2(ds, "spec", "template"), "spec", "containers"))
			if (gpustack_runs_plugin(ctr)) {
				buf_addf(&found, "%s%s/%s", found.len ? ", " : "", json_str(md, "namespace") ? json_str(md, "namespace") : "",
					 json_str(md, "name") ? json_str(md, "name") : "");
				if (!*image)
					*image = xstrdup(json_str(ctr, "image"));
				break;
			}
	}
	cJSON_Delete(items);
	if (found.len)
		*names = buf_detach(&found);
	buf_release(&found);
	return 0;
}

int gpustack_cluster_policy(struct kube_client *kc, cJSON **policy, int *forbidden, struct gerr *err)
{
	*policy = NULL;
	*forbidden = 0;
	cJSON *items = NULL;
	struct gerr e = GERR_INIT;
	char *path = kube_path("nvidia.com/v1", NULL, "clusterpolicies", NULL);
	int rc = kube_list(kc, path, NULL, &items, NULL, &e);
	free(path);
	if (rc < 0) {
		if (e.code == GERR_FORBIDDEN) {
			*forbidden = 1;
		} else if (e.code != GERR_NOTFOUND) { /* 404: the CRD is not installed */
			gerr_move(err, &e);
			return gerr_prefix(err, "list clusterpolicies");
		}
		gerr_clear(&e);
	}
	if (cJSON_GetArraySize(items) > 0)
		*policy = cJSON_DetachItemFromArray(items, 0);
	cJSON_Delete(items);
	return 0;
}

static int policy_merge_patch(struct kube_client *kc, const char *name, const cJSON *patch, int dry_server,
			      struct gerr *err)
{
	char *path = kube_path("nvidia.com/v1", NULL, "clusterpolicies", name);
	char *body = cJSON_PrintUnformatted(patch);
	int rc = kube_patch(kc, path, KUBE_PATCH_MERGE, body, dry_server, 0, NULL, err);
	free(body);
	free(path);
	return rc < 0 ? gerr_prefix(err, "clusterpolicy %s", name ? name : "?") : 0;
}

int gpustack_policy_patch(struct kube_client *kc, const cJSON *policy, const cJSON *patch, int dry_server,
			  struct gerr *err)
{
	const char *name = json_str(cJSON_GetObjectItemCaseSensitive(policy, "metadata"), "name");
	cJSON *body_obj = cJSON_Duplicate(patch, 1);
	/* the first time gpuctl changes spec.devicePlugin.config, the value before
	 * goes into an annotation, so that gpuctl cleanup can put it back */
	if (cJSON_GetObjectItemCaseSensitive(json_get2(patch, "spec", "devicePlugin"), "config")) {
		const cJSON *ann = json_get2(policy, "metadata", "annotations");
		if (!json_str(ann, GPUCTL_POLICY_RECORD_KEY)) {
			const cJSON *before = cJSON_GetObjectItemCaseSensitive(json_get2(policy, "spec", "devicePlugin"), "config");
			char *was = before ? cJSON_PrintUnformatted(before) : xstrdup("null");
			cJSON *md = cJSON_GetObjectItemCaseSensitive(body_obj, "metadata");
			if (!md)
				md = cJSON_AddObjectToObject(body_obj, "metadata");
			cJSON *a = cJSON_GetObjectItemCaseSensitive(md, "annotations");
			if (!a)
				a = cJSON_AddObjectToObject(md, "annotations");
			cJSON_AddStringToObject(a, GPUCTL_POLICY_RECORD_KEY, was);
			free(was);
		}
	}
	int rc = policy_merge_patch(kc, name, body_obj, dry_server, err);
	cJSON_Delete(body_obj);
	return rc;
}

int gpustack_policy_restore(struct kube_client *kc, const cJSON *policy, int dry_server, int *restored, struct gerr *err)
{
	*restored = 0;
	const char *name = json_str(cJSON_GetObjectItemCaseSensitive(policy, "metadata"), "name");
	const char *was = json_str(json_get2(policy, "metadata", "annotations"), GPUCTL_POLICY_RECORD_KEY);
	if (!was)
		return 0;
	cJSON *before = cJSON_Parse(was);
	if (!before)
		return gerr_set(err, GERR_PARSE, "clusterpolicy %s: annotation %s is not JSON: %s", name ? name : "?",
				GPUCTL_POLICY_RECORD_KEY, was);
	cJSON *patch = cJSON_CreateObject();
	/* merge patch: null removes the config gpuctl added */
	cJSON_AddItemToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(patch, "spec"), "devicePlugin"), "config", before);
	cJSON_AddNullToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(patch, "metadata"), "annotations"),
			      GPUCTL_POLICY_RECORD_KEY);
	int rc = policy_merge_patch(kc, name, patch, dry_server, err);
	cJSON_Delete(patch);
	if (rc < 0)
		return -1;
	*restored = 1;
	return 0;
}

int gpustack_crd_exists(struct kube_client *kc, const char *name, int *exists, struct gerr *err)
{
	char *path = kube_path("apiextensions.k8s.io/v1", NULL, "customresourcedefinitions", name);
	cJSON *crd = NULL;
	struct gerr e = GERR_INIT;
	int rc = kube_get(kc, path, &crd, &e);
	free(path);
	cJSON_Delete(crd);
	*exists = rc == 0;
	if (rc < 0 && e.code != GERR_NOTFOUND) {
		gerr_move(err, &e);
		return -1;
	}
	gerr_clear(&e);
	return 0;
}

int gpustack_delete_pods_on(struct kube_client *kc, const char *ns, const char *selector, const char *const *nodes,
			    size_t n, int dry_server, int *deleted, size_t *failed, struct gerr *err)
{
	*failed = 0;
	char *path = kube_path("v1", ns, "pods", NULL);
	struct kube_list_opts lo = { .label_selector = selector };
	cJSON *pods = NULL;
	/* the plugin's pods on every node: only their names and nodes are read */
	int rc = kube_list_pruned(kc, path, &lo, kube_pod_prune, &pods, NULL, err);
	free(path);
	if (rc < 0)
		return gerr_prefix(err, "list pods in %s", ns);
	size_t m = 0, cap = (size_t)cJSON_GetArraySize(pods);
	struct kube_call *calls = xcalloc(cap ? cap : 1, sizeof(*calls));
	char **paths = xcalloc(cap ? cap : 1, sizeof(*paths));
	size_t *owner = xcalloc(cap ? cap : 1, sizeof(*owner));
	const cJSON *p;
	cJSON_ArrayForEach(p, pods) {
		const char *on = json_str(cJSON_GetObjectItemCaseSensitive(p, "spec"), "nodeName");
		for (size_t i = 0; on && i < n; i++) {
			if (strcmp(nodes[i], on))
				continue;
			struct buf b = BUF_INIT;
			char *pp = kube_path("v1", ns, "pods", json_str(cJSON_GetObjectItemCaseSensitive(p, "metadata"), "name"));
			buf_adds(&b, pp);
			free(pp);
			if (dry_server)
				kube_query_add(&b, "dryRun", "All");
			paths[m] = buf_detach(&b);
			calls[m] = (struct kube_call){ .method = "DELETE", .path = paths[m], .idempotent = 1, .what = "pod" };
			owner[m++] = i;
		}
	}
	if (m)
		kube_do_many(kc, calls, m, 0);
	for (size_t k = 0; k < m; k++) {
		if (calls[k].err.code == GERR_OK || calls[k].err.code == GERR_NOTFOUND) {
			deleted[owner[k]]++;
		} else {
			if (!*failed)
				gerr_copy(err, &calls[k].err);
			(*failed)++;
		}
		kube_call_release(&calls[k]);
		free(paths[k]);
	}
	free(calls);
	free(paths);
	free(owner);
	cJSON_Delete(pods);
	return 0;
}
