/* Checks through the Kubernetes API: one GET for the RuntimeClass; the
 * Nodes come listed by the caller (one LIST for all). */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/check.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/nodes.h"

/* -1 when absent or not a whole number */
static long gpu_quantity(const cJSON *node, const char *field)
{
	if (!json_get2(cJSON_GetObjectItemCaseSensitive(node, "status"), field, "nvidia.com/gpu"))
		return -1;
	return node_resource(node, field, "nvidia.com/gpu");
}

void checks_node_object(const cJSON *node, struct check_report *r)
{
	const char *name = json_str(cJSON_GetObjectItemCaseSensitive(node, "metadata"), "name");
	if (!name)
		return;
	/* Ready */
	const cJSON *c, *ready = NULL;
	cJSON_ArrayForEach(c, json_get2(node, "status", "conditions")) {
		const char *ty = json_str(c, "type");
		if (ty && !strcmp(ty, "Ready"))
			ready = c;
	}
	const char *st = json_str(ready, "status");
	if (st && !strcmp(st, "True"))
		check_add(r, "node.ready", name, CHECK_PASS, NULL, "Ready");
	else
		check_add(r, "node.ready", name, CHECK_FAIL, "see `kubectl describe node` for the kubelet's reason",
			  "not Ready (%s%s%s)", st ? st : "no Ready condition", json_str(ready, "reason") ? ": " : "",
			  json_str(ready, "reason") ? json_str(ready, "reason") : "");
	/* the extended resource the device plugin advertises */
	long cap = gpu_quantity(node, "capacity"), alloc = gpu_quantity(node, "allocatable");
	const char *replicas = json_str(json_get2(node, "metadata", "labels"), "nvidia.com/gpu.replicas");
	if (alloc > 0)
		check_add(r, "node.gpu-resource", name, CHECK_PASS, NULL, "nvidia.com/gpu: %ld allocatable of %ld%s%s%s", alloc,
			  cap, replicas ? " (" : "", replicas ? replicas : "", replicas ? " replicas per GPU)" : "");
	else
		check_add(r, "node.gpu-resource", name, CHECK_FAIL,
			  "the NVIDIA device plugin (or the GPU Operator) is not running on this node, or cannot see its GPUs",
			  "the node advertises no nvidia.com/gpu%s", cap == 0 ? " (capacity 0)" : "");
}

void checks_cluster(struct kube_client *kc, const char *server_version, const cJSON *gpu_nodes, struct check_report *r)
{
	checks_cluster_api(kc, server_version, cJSON_GetArraySize(gpu_nodes), r);
	const cJSON *node;
	cJSON_ArrayForEach(node, gpu_nodes)
		checks_node_object(node, r);
}

void checks_cluster_api(struct kube_client *kc, const char *server_version, int n, struct check_report *r)
{
	check_add(r, "cluster.api", "cluster", CHECK_PASS, NULL, "Kubernetes %s", server_version ? server_version : "(version unknown)");
	if (n > 0)
		check_add(r, "cluster.gpu-nodes", "cluster", CHECK_PASS, NULL, "%d GPU node%s", n, n == 1 ? "" : "s");
	else
		check_add(r, "cluster.gpu-nodes", "cluster", CHECK_FAIL,
			  "label GPU nodes (gpuctl label) or install Node Feature Discovery; gpuctl finds GPU nodes by nvidia.com/gpu capacity, the NFD label feature.node.kubernetes.io/pci-10de.present or nvidia.com/gpu.present",
			  "no GPU nodes found");
	/* RuntimeClass nvidia */
	char *path = kube_path("node.k8s.io/v1", NULL, "runtimeclasses", "nvidia");
	cJSON *rc = NULL;
	struct gerr err = GERR_INIT;
	if (kube_get(kc, path, &rc, &err) == 0) {
		const char *h = json_str(rc, "handler");
		if (h && !strcmp(h, "nvidia"))
			check_add(r, "cluster.runtimeclass", "cluster", CHECK_PASS, NULL, "RuntimeClass nvidia (handler nvidia)");
		else
			check_add(r, "cluster.runtimeclass", "cluster", CHECK_FAIL,
				  "pods with runtimeClassName: nvidia would run with another containerd runtime; fix or delete the RuntimeClass, then run gpuctl deploy",
				  "RuntimeClass nvidia has handler \"%s\", not nvidia", h ? h : "");
	} else if (err.code == GERR_NOTFOUND) {
		check_add(r, "cluster.runtimeclass", "cluster", CHECK_FAIL, "gpuctl deploy creates it",
			  "RuntimeClass nvidia does not exist");
	} else {
		check_add(r, "cluster.runtimeclass", "cluster", CHECK_FAIL, NULL, "cannot read RuntimeClass nvidia: %s",
			  err.msg ? err.msg : "error");
	}
	gerr_clear(&err);
	cJSON_Delete(rc);
	free(path);
}
