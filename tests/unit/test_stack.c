/* validate's checks of the GPU stack (checks_stack.c): the judgement of
 * what was read from the API, on DaemonSets, pods, the plugin's configs and
 * nodes as the API server returns them. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/check.h"
#include "gpuctl/kube.h"
#include "gpuctl/yaml.h"

static cJSON *yaml(const char *text)
{
	cJSON *out = NULL;
	struct gerr e = GERR_INIT;
	cr_assert_eq(yaml_parse(text, strlen(text), "test", &out, &e), 0, "%s", e.msg);
	return out;
}

/* gpuctl's device plugin DaemonSet as deployed (config-manager reading the
 * configs ConfigMap at /available-configs, DEFAULT_CONFIG any) */
static const char plugin_ds[] =
	"metadata: {name: nvidia-device-plugin, namespace: nvidia-device-plugin}\n"
	"spec:\n"
	"  selector: {matchLabels: {app.kubernetes.io/name: nvidia-device-plugin}}\n"
	"  template:\n"
	"    spec:\n"
	"      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]\n"
	"      initContainers:\n"
	"      - name: nvidia-device-plugin-init\n"
	"        image: nvcr.io/nvidia/k8s-device-plugin:v0.19.3\n"
	"        command: [config-manager]\n"
	"        env: [{name: CONFIG_FILE_SRCDIR, value: /available-configs}, {name: DEFAULT_CONFIG, value: any}]\n"
	"        volumeMounts: [{name: available-configs, mountPath: /available-configs}]\n"
	"      containers:\n"
	"      - name: nvidia-device-plugin-sidecar\n"
	"        image: nvcr.io/nvidia/k8s-device-plugin:v0.19.3\n"
	"        command: [config-manager]\n"
	"        env: [{name: CONFIG_FILE_SRCDIR, value: /available-configs}, {name: DEFAULT_CONFIG, value: any}]\n"
	"        volumeMounts: [{name: available-configs, mountPath: /available-configs}]\n"
	"      - name: nvidia-device-plugin-ctr\n"
	"        image: nvcr.io/nvidia/k8s-device-plugin:v0.19.3\n"
	"        command: [nvidia-device-plugin]\n"
	"      volumes: [{name: available-configs, configMap: {name: nvidia-device-plugin-configs}}]\n"
	"status: {desiredNumberScheduled: 2, numberReady: 2}\n";

static const char configs[] = "any: |\n"
			      "  version: v1\n"
			      "  flags: {migStrategy: none}\n"
			      "ts-4: |\n"
			      "  version: v1\n"
			      "  sharing:\n"
			      "    timeSlicing:\n"
			      "      resources:\n"
			      "      - {name: nvidia.com/gpu, replicas: 4}\n"
			      "broken: |\n"
			      "  version: v1\n"
			      "  sharing: {timeSlicing: {resources: [{name: nvidia.com/gpu, replicas: 1}]}}\n";

static cJSON *ready_pod(const char *name, const char *node)
{
	char buf[512];
	snprintf(buf, sizeof(buf),
		 "metadata: {name: %s, namespace: nvidia-device-plugin}\n"
		 "spec: {nodeName: %s}\n"
		 "status: {phase: Running, conditions: [{type: Ready, status: 'True'}]}\n",
		 name, node);
	return yaml(buf);
}

static cJSON *gpu_node(const char *name, const char *labels, long cap, long alloc, const char *taints)
{
	char buf[1024];
	snprintf(buf, sizeof(buf),
		 "metadata: {name: %s, labels: {%s}}\n"
		 "spec: {taints: [%s]}\n"
		 "status: {capacity: {nvidia.com/gpu: '%ld'}, allocatable: {nvidia.com/gpu: '%ld'}}\n",
		 name, labels, taints, cap, alloc);
	return yaml(buf);
}

struct world {
	struct stack_view sv;
	cJSON *nodes;
	struct check_report r;
};

static void world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	w->sv.daemonsets = cJSON_CreateArray();
	w->sv.v = calloc(8, sizeof(*w->sv.v));
	w->nodes = cJSON_CreateArray();
}

static struct stack_ds *add_ds(struct world *w, const char *text)
{
	cJSON *ds = yaml(text);
	cJSON_AddItemToArray(w->sv.daemonsets, ds);
	struct stack_ds *d = &w->sv.v[w->sv.n++];
	d->ds = ds;
	d->kind = stack_ds_classify(ds);
	d->pods = cJSON_CreateArray();
	return d;
}

static void world_free(struct world *w)
{
	stack_view_release(&w->sv);
	cJSON_Delete(w->nodes);
	check_report_release(&w->r);
}

static const struct check_result *find(const struct check_report *r, const char *id, const char *target)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].id, id) && !strcmp(r->v[i].target, target))
			return &r->v[i];
	cr_assert_fail("no result %s for %s", id, target);
	return NULL;
}

#define EXPECT(w, id, target, st, text)                                                                              \
	do {                                                                                                         \
		const struct check_result *res_ = find(&(w)->r, id, target);                                         \
		cr_expect_eq(res_->status, st, "%s %s: %s (%s)", id, target, check_status_name(res_->status),        \
			     res_->message);                                                                         \
		cr_expect(strstr(res_->message, text), "%s %s: want '%s' in '%s'", id, target, text, res_->message); \
	} while (0)

Test(stack, classify_the_nvidia_daemonsets)
{
	cJSON *ds = yaml(plugin_ds);
	cr_expect_eq(stack_ds_classify(ds), STACK_DS_PLUGIN);
	cJSON_Delete(ds);
	ds = yaml("metadata: {name: gfd}\nspec: {template: {spec: {containers: [{name: gfd, image: "
		  "nvcr.io/nvidia/k8s-device-plugin:v0.19.3, command: [gpu-feature-discovery]}]}}}\n");
	cr_expect_eq(stack_ds_classify(ds), STACK_DS_GFD);
	cJSON_Delete(ds);
	ds = yaml("metadata: {name: x}\nspec: {template: {spec: {containers: [{name: e, image: "
		  "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04}]}}}\n");
	cr_expect_eq(stack_ds_classify(ds), STACK_DS_DCGM);
	cJSON_Delete(ds);
	ds = yaml("metadata: {name: nvidia-dra-driver-gpu-kubelet-plugin}\nspec: {template: {spec: {containers: [{name: "
		  "p, image: nvcr.io/nvidia/k8s-dra-driver-gpu:v25.3.0}]}}}\n");
	cr_expect_eq(stack_ds_classify(ds), STACK_DS_DRA);
	cJSON_Delete(ds);
	ds = yaml("metadata: {name: nvidia-driver-daemonset}\nspec: {template: {spec: {containers: [{name: d, image: "
		  "nvcr.io/nvidia/driver:570.86.15-ubuntu22.04}]}}}\n");
	cr_expect_eq(stack_ds_classify(ds), STACK_DS_DRIVER);
	cJSON_Delete(ds);
	ds = yaml("metadata: {name: kube-proxy}\nspec: {template: {spec: {containers: [{name: k, image: "
		  "registry.k8s.io/kube-proxy:v1.36.3}]}}}\n");
	cr_expect_eq(stack_ds_classify(ds), STACK_DS_OTHER);
	cJSON_Delete(ds);
}

Test(stack, gpu_health_leaves_out_the_mig_resources_of_an_earlier_layout)
{
	/* MIG turned off a minute ago: GFD labels no MIG strategy, the kubelet still
	 * lists the MIG resources the plugin no longer advertises, 0 allocatable */
	struct world w;
	world_init(&w);
	struct stack_ds *p = add_ds(&w, plugin_ds);
	cJSON_AddItemToArray(p->pods, ready_pod("dp-a", "gpu-1"));
	cJSON_AddItemToArray(p->pods, ready_pod("dp-b", "gpu-2"));
	w.sv.cm = yaml(configs);
	w.sv.configs = w.sv.cm;
	const char *n = "metadata: {name: %s, labels: {nvidia.com/gfd.timestamp: '1', nvidia.com/gpu.count: '2'%s}}\n"
			"status: {capacity: {nvidia.com/gpu: '2', nvidia.com/mig-1g.10gb: '2', nvidia.com/mig-3g.40gb: '2'},\n"
			"  allocatable: {nvidia.com/gpu: '2', nvidia.com/mig-1g.10gb: '0', nvidia.com/mig-3g.40gb: '%s'}}\n";
	char buf[1024];
	snprintf(buf, sizeof(buf), n, "gpu-1", "", "0");
	cJSON_AddItemToArray(w.nodes, yaml(buf));
	/* mixed, 3g.40gb in use but unhealthy, 1g.10gb of the earlier layout */
	snprintf(buf, sizeof(buf), n, "gpu-2", ", nvidia.com/mig.strategy: mixed, nvidia.com/mig-3g.40gb.count: '2'", "0");
	cJSON_AddItemToArray(w.nodes, yaml(buf));
	stack_judge(&w.sv, NULL, w.nodes, &w.r);
	EXPECT(&w, "node.gpu-health", "gpu-1", CHECK_PASS,
	       "all allocatable: nvidia.com/gpu 2 (not judged, no longer in use by GFD's labels: nvidia.com/mig-1g.10gb, "
	       "nvidia.com/mig-3g.40gb)");
	EXPECT(&w, "node.gpu-health", "gpu-2", CHECK_FAIL, "nvidia.com/mig-3g.40gb 0 of 2 allocatable");
	const struct check_result *res = find(&w.r, "node.gpu-health", "gpu-2");
	cr_expect_null(strstr(res->message, "1g.10gb"), "%s", res->message);
	world_free(&w);
}

Test(stack, a_healthy_sliced_platform_passes)
{
	struct world w;
	world_init(&w);
	struct stack_ds *p = add_ds(&w, plugin_ds);
	cJSON_AddItemToArray(p->pods, ready_pod("dp-a", "gpu-1"));
	cJSON_AddItemToArray(p->pods, ready_pod("dp-b", "gpu-2"));
	w.sv.cm = yaml(configs);
	w.sv.configs = w.sv.cm;
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-1",
					       "nvidia.com/device-plugin.config: ts-4, nvidia.com/gpu.count: '2', "
					       "nvidia.com/gpu.replicas: '4', nvidia.com/gpu.sharing-strategy: time-slicing, "
					       "nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3, "
					       "accelerator: nvidia, gpu-type: NVIDIA-H100-80GB-HBM3",
					       8, 8, "{key: nvidia.com/gpu, value: 'true', effect: NoSchedule}"));
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-2", "accelerator: nvidia", 1, 1, ""));
	stack_judge(&w.sv, NULL, w.nodes, &w.r);
	EXPECT(&w, "cluster.device-plugin", "cluster", CHECK_PASS, "nvidia-device-plugin/nvidia-device-plugin ready on 2 of 2");
	EXPECT(&w, "cluster.conflicts", "cluster", CHECK_PASS, "one device plugin");
	EXPECT(&w, "cluster.dcgm-exporter", "cluster", CHECK_SKIP, "not deployed");
	EXPECT(&w, "node.labels", "gpu-1", CHECK_PASS, "labelled as configured");
	EXPECT(&w, "node.taints", "gpu-1", CHECK_PASS, "tainted as configured");
	EXPECT(&w, "node.device-plugin", "gpu-1", CHECK_PASS, "pod dp-a ready and registered (nvidia.com/gpu 8)");
	EXPECT(&w, "node.gpu-health", "gpu-1", CHECK_PASS, "all allocatable");
	EXPECT(&w, "node.sharing", "gpu-1", CHECK_PASS, "config \"ts-4\" (its label nvidia.com/device-plugin.config) in use: time-slicing x4");
	/* gpu-2: the default config, no sharing; not labelled with its product (none known), not tainted */
	EXPECT(&w, "node.sharing", "gpu-2", CHECK_PASS, "config \"any\" (the default config) in use: no sharing x1");
	EXPECT(&w, "node.labels", "gpu-2", CHECK_PASS, "labelled as configured");
	EXPECT(&w, "node.taints", "gpu-2", CHECK_WARN, "missing: nvidia.com/gpu=true:NoSchedule");
	world_free(&w);
}

Test(stack, each_fault_fails_with_its_reason)
{
	struct world w;
	world_init(&w);
	struct stack_ds *p = add_ds(&w, plugin_ds);
	cJSON *crash = yaml("metadata: {name: dp-c, namespace: nvidia-device-plugin}\nspec: {nodeName: gpu-3}\n"
			    "status: {phase: Running, conditions: [{type: Ready, status: 'False'}], containerStatuses: "
			    "[{name: nvidia-device-plugin-ctr, state: {waiting: {reason: CrashLoopBackOff, message: back-off "
			    "10s}}}]}\n");
	cJSON_AddItemToArray(p->pods, crash);
	cJSON_AddItemToArray(p->pods, ready_pod("dp-a", "gpu-1"));
	cJSON_AddItemToArray(p->pods, ready_pod("dp-e", "gpu-5"));
	/* a second plugin: the operator's */
	struct stack_ds *op = add_ds(&w, "metadata: {name: nvidia-device-plugin-daemonset, namespace: gpu-operator}\n"
				     "spec: {template: {spec: {containers: [{name: nvidia-device-plugin, image: "
				     "nvcr.io/nvidia/k8s-device-plugin:v0.17.2}]}}}\n"
				     "status: {desiredNumberScheduled: 1, numberReady: 0}\n");
	(void)op;
	/* the DRA driver beside the plugin on gpu-1 */
	struct stack_ds *dra = add_ds(&w, "metadata: {name: nvidia-dra-driver-gpu-kubelet-plugin, namespace: dra}\n"
				      "spec: {template: {spec: {containers: [{name: p, image: "
				      "nvcr.io/nvidia/k8s-dra-driver-gpu:v25.3.0}]}}}\n");
	cJSON_AddItemToArray(dra->pods, ready_pod("dra-a", "gpu-1"));
	w.sv.cm = yaml(configs);
	w.sv.configs = w.sv.cm;
	/* gpu-1: one GPU unhealthy, GFD's replicas disagree with the config */
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-1", "nvidia.com/device-plugin.config: ts-4, nvidia.com/gpu.count: '2', "
							"nvidia.com/gpu.replicas: '2', accelerator: amd",
					       8, 4, ""));
	/* gpu-2: tainted, and the plugin does not tolerate it */
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-2", "", 0, 0, "{key: dedicated, value: ml, effect: NoSchedule}"));
	/* gpu-3: the plugin crash-loops */
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-3", "nvidia.com/device-plugin.config: nope", 1, 1, ""));
	/* gpu-6: the capacity of ts-4, but GFD says the plugin shares with MPS */
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-6", "nvidia.com/device-plugin.config: ts-4, nvidia.com/gpu.count: '2', "
							"nvidia.com/gpu.replicas: '4', nvidia.com/gpu.sharing-strategy: mps",
					       8, 8, ""));
	/* gpu-5: an invalid config */
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-5", "nvidia.com/device-plugin.config: broken", 1, 1, ""));
	stack_judge(&w.sv, NULL, w.nodes, &w.r);
	EXPECT(&w, "cluster.device-plugin", "cluster", CHECK_FAIL, "gpu-operator/nvidia-device-plugin-daemonset ready on 0 of 1");
	EXPECT(&w, "cluster.conflicts", "cluster", CHECK_FAIL,
	       "device plugins in nvidia-device-plugin/nvidia-device-plugin, gpu-operator/nvidia-device-plugin-daemonset");
	EXPECT(&w, "cluster.conflicts", "cluster", CHECK_FAIL, "the DRA driver dra/nvidia-dra-driver-gpu-kubelet-plugin and the device plugin both run on gpu-1");
	EXPECT(&w, "node.labels", "gpu-1", CHECK_WARN, "accelerator");
	EXPECT(&w, "node.gpu-health", "gpu-1", CHECK_FAIL, "nvidia.com/gpu 4 of 8 allocatable");
	EXPECT(&w, "node.sharing", "gpu-1", CHECK_FAIL, "nvidia.com/gpu.replicas=2 (gpu-feature-discovery), want 4");
	EXPECT(&w, "node.device-plugin", "gpu-2", CHECK_FAIL, "does not tolerate the node's taints");
	EXPECT(&w, "node.gpu-health", "gpu-2", CHECK_SKIP, "advertises no nvidia.com/gpu");
	EXPECT(&w, "node.device-plugin", "gpu-3", CHECK_FAIL, "not ready: container nvidia-device-plugin-ctr CrashLoopBackOff: back-off 10s");
	EXPECT(&w, "node.sharing", "gpu-3", CHECK_FAIL, "names config \"nope\", which configmap nvidia-device-plugin-configs does not have");
	EXPECT(&w, "node.sharing", "gpu-5", CHECK_FAIL, "config \"broken\" in configmap nvidia-device-plugin-configs is not valid");
	EXPECT(&w, "node.sharing", "gpu-5", CHECK_FAIL, "replicas");
	EXPECT(&w, "node.sharing", "gpu-6", CHECK_FAIL,
	       "is time-slicing x4, but nvidia.com/gpu.sharing-strategy=mps (gpu-feature-discovery), want time-slicing");
	world_free(&w);
}

Test(stack, no_plugin_and_an_unreadable_exporter)
{
	struct world w;
	world_init(&w);
	struct stack_ds *d = add_ds(&w, "metadata: {name: dcgm-exporter, namespace: nvidia-device-plugin}\n"
				    "spec: {template: {spec: {containers: [{name: e, image: nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3}]}}}\n"
				    "status: {desiredNumberScheduled: 2, numberReady: 2}\n");
	(void)d;
	w.sv.metrics_error = strdup("503 Service Unavailable");
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-1", "", 1, 1, ""));
	stack_judge(&w.sv, NULL, w.nodes, &w.r);
	EXPECT(&w, "cluster.device-plugin", "cluster", CHECK_FAIL, "no NVIDIA device plugin DaemonSet");
	EXPECT(&w, "cluster.dcgm-exporter", "cluster", CHECK_FAIL, "its metrics cannot be read: 503 Service Unavailable");
	EXPECT(&w, "node.device-plugin", "gpu-1", CHECK_SKIP, "no device plugin is deployed");
	world_free(&w);
	world_init(&w);
	add_ds(&w, "metadata: {name: dcgm-exporter, namespace: m}\n"
		   "spec: {template: {spec: {containers: [{name: e, image: nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3}]}}}\n"
		   "status: {desiredNumberScheduled: 1, numberReady: 1}\n");
	w.sv.metrics = strdup("# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization\nDCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 0\n");
	stack_judge(&w.sv, NULL, w.nodes, &w.r);
	EXPECT(&w, "cluster.dcgm-exporter", "cluster", CHECK_PASS, "metrics answer");
	world_free(&w);
}

Test(stack, the_exporter_read_is_one_on_a_validated_node)
{
	/* pods on nodes outside the validation (listed first) are not the ones read:
	 * the user asked about these nodes, and another node's pod may not answer */
	struct world w;
	world_init(&w);
	struct stack_ds *d = add_ds(&w, "metadata: {name: dcgm-exporter, namespace: m}\n"
				    "spec: {template: {spec: {containers: [{name: e, image: nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3}]}}}\n"
				    "status: {desiredNumberScheduled: 3, numberReady: 3}\n");
	cJSON_AddItemToArray(d->pods, ready_pod("dcgm-other", "other-node"));
	cJSON_AddItemToArray(d->pods, ready_pod("dcgm-b", "gpu-2"));
	cJSON_AddItemToArray(d->pods, ready_pod("dcgm-c", "gpu-3"));
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-1", "", 1, 1, ""));
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-2", "", 1, 1, ""));
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-3", "", 1, 1, ""));
	stack_judge(&w.sv, NULL, w.nodes, &w.r);
	cr_assert_not_null(w.sv.metrics_pod);
	cr_expect_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(w.sv.metrics_pod, "metadata"),
							  "name")->valuestring, "dcgm-b");
	world_free(&w);
	/* the node it was read on is named */
	world_init(&w);
	add_ds(&w, "metadata: {name: dcgm-exporter, namespace: m}\n"
		   "spec: {template: {spec: {containers: [{name: e, image: nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3}]}}}\n"
		   "status: {desiredNumberScheduled: 1, numberReady: 1}\n");
	w.sv.metrics_error = strdup("dial tcp 10.200.1.4:9400: connect: no route to host");
	w.sv.metrics_node = strdup("gpu-1");
	stack_judge(&w.sv, NULL, w.nodes, &w.r);
	EXPECT(&w, "cluster.dcgm-exporter", "cluster", CHECK_FAIL,
	       "its metrics cannot be read on gpu-1: dial tcp 10.200.1.4:9400: connect: no route to host");
	world_free(&w);
}

Test(stack, labels_and_taints_follow_the_config_file)
{
	struct world w;
	world_init(&w);
	cJSON *cfg = yaml("label: {defaults: {team: ml}}\ntaint: {defaults: ['gpu=yes:NoExecute']}\n");
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-1", "team: ml", 1, 1, "{key: gpu, value: 'yes', effect: NoExecute}"));
	cJSON_AddItemToArray(w.nodes, gpu_node("gpu-2", "team: web", 1, 1, ""));
	stack_judge(&w.sv, cfg, w.nodes, &w.r);
	EXPECT(&w, "node.labels", "gpu-1", CHECK_PASS, "labelled as configured");
	EXPECT(&w, "node.taints", "gpu-1", CHECK_PASS, "tainted as configured");
	EXPECT(&w, "node.labels", "gpu-2", CHECK_WARN, "team");
	EXPECT(&w, "node.taints", "gpu-2", CHECK_WARN, "missing: gpu=yes:NoExecute");
	cJSON_Delete(cfg);
	world_free(&w);
}

Test(stack, which_config_the_plugin_loaded)
{
	struct world w;
	world_init(&w);
	struct stack_ds *p = add_ds(&w, plugin_ds);
	/* as validate lists it: pruned (kube_pod_prune keeps the uid and the mounts) */
	cJSON *raw = yaml("metadata: {name: dp-a, namespace: nvidia-device-plugin, uid: 1f2e-33}\n"
					   "spec:\n"
					   "  nodeName: gpu-1\n"
					   "  containers:\n"
					   "  - {name: nvidia-device-plugin-sidecar, volumeMounts: [{name: available-configs, "
					   "mountPath: /available-configs}, {name: cfg, mountPath: /config}]}\n"
					   "  - {name: nvidia-device-plugin-ctr, volumeMounts: [{name: cfg, mountPath: /config}]}\n"
					   "status: {phase: Running, conditions: [{type: Ready, status: 'True'}]}\n");
	cJSON_AddItemToArray(p->pods, kube_pod_prune(raw));
	cJSON_Delete(raw);
	cJSON_AddItemToArray(p->pods, ready_pod("dp-b", "gpu-2")); /* no /config mount: not checked */
	cJSON *n1 = gpu_node("gpu-1", "nvidia.com/device-plugin.config: ts-4", 8, 8, "");
	cJSON *n2 = gpu_node("gpu-2", "", 1, 1, "");
	cJSON *n3 = gpu_node("gpu-3", "", 1, 1, ""); /* no plugin pod */
	char *uid, *vol, *key;
	cr_assert_eq(stack_plugin_expect(&w.sv, n1, &uid, &vol, &key), 1);
	cr_expect_str_eq(uid, "1f2e-33");
	cr_expect_str_eq(vol, "cfg");
	cr_expect_str_eq(key, "ts-4");
	free(uid);
	free(vol);
	free(key);
	cr_expect_eq(stack_plugin_expect(&w.sv, n2, &uid, &vol, &key), 0);
	cr_expect_null(uid);
	cr_expect_eq(stack_plugin_expect(&w.sv, n3, &uid, &vol, &key), 0);
	/* a node without a label wants the default config */
	cJSON *n1d = gpu_node("gpu-1", "", 8, 8, "");
	cr_assert_eq(stack_plugin_expect(&w.sv, n1d, &uid, &vol, &key), 1);
	cr_expect_str_eq(key, "any");
	free(uid);
	free(vol);
	free(key);
	cJSON_Delete(n1);
	cJSON_Delete(n2);
	cJSON_Delete(n3);
	cJSON_Delete(n1d);

	const char *path = "/var/lib/kubelet/pods/1f2e-33/volumes/kubernetes.io~empty-dir/cfg/config.yaml";
	plugin_config_judge("a", "ts-4", path, 0, "/available-configs/ts-4\n", &w.r);
	plugin_config_judge("b", "ts-4", path, 0, "/available-configs/ts-8\n", &w.r);
	plugin_config_judge("c", "ts-4", path, 0, "/dev/null\n", &w.r);
	plugin_config_judge("d", "ts-4", path, 1, "", &w.r);
	plugin_config_judge("e", "ts-4", path, 0, "/available-configs/ts-40\n", &w.r);
	EXPECT(&w, "node.plugin-config", "a", CHECK_PASS, "the device plugin loaded config \"ts-4\"");
	EXPECT(&w, "node.plugin-config", "b", CHECK_FAIL, "loaded config \"ts-8\", the node wants \"ts-4\"");
	EXPECT(&w, "node.plugin-config", "c", CHECK_FAIL, "runs without a config (its link points to /dev/null)");
	EXPECT(&w, "node.plugin-config", "d", CHECK_SKIP, "no link at /var/lib/kubelet/pods/1f2e-33/");
	EXPECT(&w, "node.plugin-config", "e", CHECK_FAIL, "loaded config \"ts-40\"");
	world_free(&w);
}

/* A device plugin pod as the API server returns it: managed fields, volumes,
 * env, tolerations, a container waiting, an old terminated state. */
static const char full_pod_fmt[] =
	"apiVersion: v1\nkind: Pod\n"
	"metadata:\n"
	"  name: %s\n  namespace: nvidia-device-plugin\n  generateName: nvidia-device-plugin-\n"
	"  uid: 7f9c0b2e-1111-2222-3333-444455556666\n  resourceVersion: '123456'\n%s"
	"  labels: {app.kubernetes.io/name: nvidia-device-plugin, controller-revision-hash: 6d7f8, pod-template-generation: '3'}\n"
	"  annotations: {kubectl.kubernetes.io/restartedAt: '2026-01-01T00:00:00Z'}\n"
	"  ownerReferences: [{apiVersion: apps/v1, kind: DaemonSet, name: nvidia-device-plugin, uid: x, controller: true}]\n"
	"  managedFields: [{manager: kube-controller-manager, operation: Update, apiVersion: v1, fieldsType: FieldsV1,\n"
	"    fieldsV1: {'f:metadata': {'f:labels': {'.': {}}}, 'f:spec': {'f:containers': {}}}}]\n"
	"spec:\n"
	"  nodeName: %s\n  serviceAccountName: nvidia-device-plugin\n  priorityClassName: system-node-critical\n"
	"  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]\n"
	"  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchFields: "
	"[{key: metadata.name, operator: In, values: [%s]}]}]}}}\n"
	"  initContainers:\n"
	"  - {name: nvidia-device-plugin-init, image: 'nvcr.io/nvidia/k8s-device-plugin:v0.19.3', command: [config-manager],\n"
	"     env: [{name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]}\n"
	"  containers:\n"
	"  - name: nvidia-device-plugin-ctr\n    image: 'nvcr.io/nvidia/k8s-device-plugin:v0.19.3'\n"
	"    command: [nvidia-device-plugin]\n    env: [{name: FAIL_ON_INIT_ERROR, value: 'false'}]\n"
	"    ports: [{containerPort: 9400, name: metrics, protocol: TCP}]\n"
	"    resources: {requests: {cpu: 10m}}\n"
	"    volumeMounts: [{name: device-plugin, mountPath: /var/lib/kubelet/device-plugins}]\n"
	"  volumes: [{name: device-plugin, hostPath: {path: /var/lib/kubelet/device-plugins}}]\n"
	"status:\n"
	"  phase: %s\n  hostIP: 10.0.0.1\n  podIP: 10.1.0.1\n  startTime: '2026-01-01T00:00:00Z'\n  qosClass: Burstable\n"
	"  conditions:\n"
	"  - {type: PodReadyToStartContainers, status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z'}\n"
	"  - {type: Ready, status: '%s', lastTransitionTime: '2026-01-01T00:00:00Z', reason: ContainersNotReady}\n"
	"  initContainerStatuses:\n"
	"  - {name: nvidia-device-plugin-init, ready: true, restartCount: 0, image: x, imageID: y, containerID: z,\n"
	"     state: {terminated: {reason: Completed, exitCode: 0}}}\n"
	"  containerStatuses:\n"
	"  - {name: nvidia-device-plugin-ctr, ready: false, restartCount: 7, image: x, imageID: y, containerID: z,\n"
	"     lastState: {terminated: {reason: Error, exitCode: 1, message: 'old failure'}},\n"
	"     state: %s}\n";

static cJSON *full_pod(const char *name, const char *node, int ready, const char *extra_md)
{
	char buf[8192];
	snprintf(buf, sizeof(buf), full_pod_fmt, name, extra_md, node, node, "Running",
		 ready ? "True" : "False",
		 ready ? "{running: {startedAt: '2026-01-01T00:00:00Z'}}"
		       : "{waiting: {reason: CrashLoopBackOff, message: 'back-off 5m0s restarting failed container'}}");
	return yaml(buf);
}

/* The checks judge the pods kube_pod_prune keeps exactly as the whole pods:
 * same results, same messages (validate lists the plugin's pods pruned). */
Test(stack, pruned_pods_are_judged_as_whole_ones)
{
	char *outs[2];
	for (int pruned = 0; pruned < 2; pruned++) {
		struct world w;
		world_init(&w);
		struct stack_ds *p = add_ds(&w, plugin_ds);
		struct stack_ds *dcgm = add_ds(&w, "metadata: {name: dcgm-exporter, namespace: gpu-operator}\n"
					       "spec: {template: {spec: {containers: [{name: e, image: "
					       "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3}]}}}\n"
					       "status: {desiredNumberScheduled: 2, numberReady: 1}\n");
		struct stack_ds *drv = add_ds(&w, "metadata: {name: nvidia-driver-daemonset, namespace: gpu-operator}\n"
					      "spec: {template: {spec: {containers: [{name: d, image: "
					      "nvcr.io/nvidia/driver:550}]}}}\n");
		cJSON *pods[] = {
			full_pod("dp-1", "gpu-1", 1, ""),
			full_pod("dp-2", "gpu-2", 0, ""),
			/* gpu-3: a terminating pod and its successor, the successor crash-looping */
			full_pod("dp-3-old", "gpu-3", 1, "  deletionTimestamp: '2026-01-01T00:00:00Z'\n"),
			full_pod("dp-3", "gpu-3", 0, ""),
		};
		for (size_t i = 0; i < 4; i++) {
			cJSON_AddItemToArray(p->pods, pruned ? kube_pod_prune(pods[i]) : cJSON_Duplicate(pods[i], 1));
			cJSON_Delete(pods[i]);
		}
		cJSON *e = full_pod("dcgm-1", "gpu-1", 1, "");
		cJSON_AddItemToArray(dcgm->pods, pruned ? kube_pod_prune(e) : cJSON_Duplicate(e, 1));
		cJSON_Delete(e);
		e = full_pod("driver-1", "gpu-2", 1, "");
		cJSON_AddItemToArray(drv->pods, pruned ? kube_pod_prune(e) : cJSON_Duplicate(e, 1));
		cJSON_Delete(e);
		w.sv.cm = yaml(configs);
		w.sv.configs = w.sv.cm;
		cJSON_AddItemToArray(w.nodes, gpu_node("gpu-1", "nvidia.com/device-plugin.config: ts-4", 4, 4, ""));
		cJSON_AddItemToArray(w.nodes, gpu_node("gpu-2", "nvidia.com/gpu.deploy.driver: pre-installed", 1, 1, ""));
		cJSON_AddItemToArray(w.nodes, gpu_node("gpu-3", "", 2, 2, ""));
		cJSON_AddItemToArray(w.nodes, gpu_node("gpu-4", "", 2, 2, ""));
		stack_judge(&w.sv, NULL, w.nodes, &w.r);
		struct buf b = BUF_INIT;
		for (size_t i = 0; i < w.r.n; i++)
			buf_addf(&b, "%s %s %s %s | %s\n", w.r.v[i].id, w.r.v[i].target, check_status_name(w.r.v[i].status),
				 w.r.v[i].message, w.r.v[i].hint ? w.r.v[i].hint : "");
		outs[pruned] = buf_detach(&b);
		if (!pruned) {
			EXPECT(&w, "node.device-plugin", "gpu-1", CHECK_PASS, "pod dp-1 ready");
			EXPECT(&w, "node.device-plugin", "gpu-2", CHECK_FAIL,
			       "pod nvidia-device-plugin/dp-2 not ready: container nvidia-device-plugin-ctr CrashLoopBackOff: back-off 5m0s");
			EXPECT(&w, "node.device-plugin", "gpu-3", CHECK_FAIL, "pod nvidia-device-plugin/dp-3 not ready");
			EXPECT(&w, "node.device-plugin", "gpu-4", CHECK_FAIL, "no pod of nvidia-device-plugin/nvidia-device-plugin");
			EXPECT(&w, "cluster.conflicts", "cluster", CHECK_FAIL, "driver gpu-operator/nvidia-driver-daemonset runs on gpu-2");
		}
		world_free(&w);
	}
	cr_assert_str_eq(outs[1], outs[0]);
	free(outs[0]);
	free(outs[1]);
}

Test(stack, pod_prune_keeps_only_what_is_read)
{
	cJSON *pod = full_pod("dp-1", "gpu-1", 0, "  deletionTimestamp: '2026-01-01T00:00:00Z'\n");
	cJSON *p = kube_pod_prune(pod);
	char *got = cJSON_PrintUnformatted(p);
	cr_assert_str_eq(got,
			 "{\"metadata\":{\"name\":\"dp-1\",\"namespace\":\"nvidia-device-plugin\","
			 "\"uid\":\"7f9c0b2e-1111-2222-3333-444455556666\",\"deletionTimestamp\":"
			 "\"2026-01-01T00:00:00Z\"},\"spec\":{\"nodeName\":\"gpu-1\",\"initContainers\":[{\"name\":"
			 "\"nvidia-device-plugin-init\"}],\"containers\":[{\"name\":\"nvidia-device-plugin-ctr\",\"ports\":"
			 "[{\"containerPort\":9400,\"name\":\"metrics\",\"protocol\":\"TCP\"}],\"resources\":{\"requests\":"
			 "{\"cpu\":\"10m\"}},\"volumeMounts\":[{\"name\":\"device-plugin\",\"mountPath\":"
			 "\"/var/lib/kubelet/device-plugins\"}]}]},\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":"
			 "\"PodReadyToStartContainers\",\"status\":\"True\"},{\"type\":\"Ready\",\"status\":\"False\"}],"
			 "\"initContainerStatuses\":[{\"name\":\"nvidia-device-plugin-init\",\"state\":{\"terminated\":"
			 "{\"reason\":\"Completed\",\"exitCode\":0}}}],\"containerStatuses\":[{\"name\":"
			 "\"nvidia-device-plugin-ctr\",\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\",\"message\":"
			 "\"back-off 5m0s restarting failed container\"}}}]}}");
	char *whole = cJSON_PrintUnformatted(pod);
	cr_assert_lt(strlen(got) * 3, strlen(whole), "pruned %zu bytes of %zu", strlen(got), strlen(whole));
	free(whole);
	free(got);
	cJSON_Delete(p);
	cJSON_Delete(pod);
	/* what is not an object stays as it is; nothing is invented */
	pod = yaml("metadata: x\nspec: {containers: [7]}\n");
	p = kube_pod_prune(pod);
	got = cJSON_PrintUnformatted(p);
	cr_assert_str_eq(got, "{\"metadata\":\"x\",\"spec\":{\"containers\":[7]}}");
	free(got);
	cJSON_Delete(p);
	cJSON_Delete(pod);
}
