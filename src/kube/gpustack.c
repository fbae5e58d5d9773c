/* Reading what a cluster already runs of an NVIDIA GPU stack. */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/apply.h"
#include "gpuctl/buf.h"
#include "gpuctl/gpustack.h"
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

int gpustack_policy_patch(struct kube_client *kc, const char *name, const cJSON *patch, int dry_server,
			  struct gerr *err)
{
	char *path = kube_path("nvidia.com/v1", NULL, "clusterpolicies", name);
	char *body = cJSON_PrintUnformatted(patch);
	int rc = kube_patch(kc, path, KUBE_PATCH_MERGE, body, dry_server, 0, NULL, err);
	free(body);
	free(path);
	return rc < 0 ? gerr_prefix(err, "clusterpolicy %s", name) : 0;
}
