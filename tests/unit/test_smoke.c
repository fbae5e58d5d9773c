/* gpuctl smoke-test, the pure half: a pod's log (real nvidia-smi -L lines,
 * MIG too), the product name against GFD's label, the plan of a node (skip
 * when every GPU is in use, N from the free slots), each check's judgement
 * (pass and fail), and the rendered pod. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/smoke.h"
#include "gpuctl/util.h"
#include "gpuctl/yaml.h"

static cJSON *yaml(const char *text)
{
	cJSON *out = NULL;
	struct gerr e = GERR_INIT;
	cr_assert_eq(yaml_parse(text, strlen(text), "test", &out, &e), 0, "%s", e.msg);
	return out;
}

static char *fixture(const char *rel)
{
	struct buf b = BUF_INIT;
	struct gerr e = GERR_INIT;
	char *path = xasprintf("%s/%s", FIXTURES, rel);
	cr_assert_eq(buf_read_file(&b, path, 1 << 20, &e), 0, "%s", e.msg);
	free(path);
	return buf_detach(&b);
}

/* ---- the log ---- */

Test(smoke, log_h100_fixture)
{
	char *l = fixture("nvidia-smi/h100-80gb-hbm3/nvidia-smi-L.txt");
	struct buf text = BUF_INIT;
	buf_adds(&text, l);
	buf_adds(&text, "GPU-f3c1c444-0b96-889d-5c44-d5150de13261, Default\n" SMOKE_READY_MARKER "\n");
	struct smoke_log log;
	smoke_log_parse(text.s, text.len, &log);
	cr_assert_eq(log.ngpus, 1);
	cr_assert_str_eq(log.gpus[0].name, "NVIDIA H100 80GB HBM3");
	cr_assert_str_eq(log.gpus[0].uuid, "GPU-f3c1c444-0b96-889d-5c44-d5150de13261");
	cr_assert_str_eq(log.gpus[0].compute_mode, "Default");
	cr_assert(log.ready);
	cr_assert_null(log.migs);
	smoke_log_release(&log);
	buf_release(&text);
	free(l);
}

Test(smoke, log_h200_fixture_without_marker)
{
	char *l = fixture("nvidia-smi/h200/nvidia-smi-L.txt");
	struct smoke_log log;
	smoke_log_parse(l, strlen(l), &log);
	cr_assert_eq(log.ngpus, 1);
	cr_assert_str_eq(log.gpus[0].name, "NVIDIA H200");
	cr_assert_str_eq(log.gpus[0].uuid, "GPU-4748bf60-93b0-d516-98d4-e5c362b48227");
	cr_assert_null(log.gpus[0].compute_mode);
	cr_assert_not(log.ready, "no marker line: not ready");
	smoke_log_release(&log);
	free(l);
}

Test(smoke, log_mig_and_several_gpus)
{
	/* nvidia-smi -L of a MIG pod (R470+ UUIDs, and the older MIG-GPU-.../gi/ci form), CRLF lines */
	const char *text =
		"GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77)\r\n"
		"  MIG 1g.5gb      Device  0: (UUID: MIG-c7384736-a75d-5afc-978f-d2f1294409fd)\r\n"
		"  MIG 1g.10gb Device 1: (UUID: MIG-GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77/7/0)\n"
		"GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-f3c1c444-0b96-889d-5c44-d5150de13261)\n"
		"GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77, Exclusive_Process\n"
		"GPU-f3c1c444-0b96-889d-5c44-d5150de13261, Default\n"
		"some noise: (UUID: nothing)\n"
		SMOKE_READY_MARKER;
	struct smoke_log log;
	smoke_log_parse(text, strlen(text), &log);
	cr_assert_eq(log.ngpus, 2);
	cr_assert_str_eq(log.gpus[0].name, "NVIDIA A100-SXM4-40GB");
	cr_assert_str_eq(log.gpus[0].compute_mode, "Exclusive_Process");
	cr_assert_str_eq(log.gpus[1].compute_mode, "Default");
	cr_assert_eq(strv_len(log.migs), 2);
	cr_assert_str_eq(log.migs[0], "MIG-c7384736-a75d-5afc-978f-d2f1294409fd");
	cr_assert_str_eq(log.migs[1], "MIG-GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77/7/0");
	cr_assert(log.ready, "the last line without newline counts");
	struct buf u = BUF_INIT;
	cr_assert_eq(smoke_log_uuids(&log, &u), 2);
	cr_assert_str_eq(u.s, "GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77, GPU-f3c1c444-0b96-889d-5c44-d5150de13261");
	buf_release(&u);
	smoke_log_release(&log);
}

Test(smoke, log_only_mig_lines_give_mig_uuids)
{
	const char *text = "  MIG 3g.40gb Device 0: (UUID: MIG-aaaa)\n";
	struct smoke_log log;
	smoke_log_parse(text, strlen(text), &log);
	cr_assert_eq(log.ngpus, 0);
	struct buf u = BUF_INIT;
	cr_assert_eq(smoke_log_uuids(&log, &u), 1);
	cr_assert_str_eq(u.s, "MIG-aaaa");
	buf_release(&u);
	smoke_log_release(&log);
}

Test(smoke, log_errors_name_no_gpu)
{
	const char *text = "sh: 1: nvidia-smi: not found\n"
			   "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n";
	struct smoke_log log;
	smoke_log_parse(text, strlen(text), &log);
	cr_assert_eq(log.ngpus, 0);
	cr_assert_null(log.migs);
	cr_assert_not(log.ready);
	smoke_log_release(&log);
	smoke_log_parse(NULL, 0, &log);
	cr_assert_eq(log.ngpus, 0);
	smoke_log_release(&log);
}

/* ---- product ---- */

Test(smoke, product_matching)
{
	cr_assert(smoke_product_matches("NVIDIA H100 80GB HBM3", "NVIDIA-H100-80GB-HBM3"));
	cr_assert(smoke_product_matches("NVIDIA H100 80GB HBM3", "NVIDIA-H100-80GB-HBM3-SHARED"));
	cr_assert(smoke_product_matches("NVIDIA A100-SXM4-40GB", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"));
	cr_assert(smoke_product_matches("NVIDIA H200", "NVIDIA-H200"));
	cr_assert_not(smoke_product_matches("NVIDIA H200", "NVIDIA-H100-80GB-HBM3"));
	cr_assert_not(smoke_product_matches("NVIDIA H100 80GB HBM3", "NVIDIA-H100"));
	cr_assert_not(smoke_product_matches("NVIDIA H100", "NVIDIA-H100-80GB-HBM3"), "a prefix is not a match");
	cr_assert_not(smoke_product_matches(NULL, "NVIDIA-H200"));
}

/* ---- plans ---- */

static const char *const gpu_node =
	"metadata: {name: gpu-1, labels: {kubernetes.io/hostname: gpu-1.example, nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}}\n"
	"status: {capacity: {nvidia.com/gpu: '2'}, allocatable: {nvidia.com/gpu: '2'}}\n";

static const char *const shared_node =
	"metadata: {name: gpu-2, labels: {nvidia.com/gpu.count: '1', nvidia.com/gpu.replicas: '4',\n"
	"  nvidia.com/gpu.sharing-strategy: time-slicing, nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3-SHARED}}\n"
	"status: {capacity: {nvidia.com/gpu: '4'}, allocatable: {nvidia.com/gpu: '4'}}\n";

static cJSON *usage_with(const char *pods_yaml)
{
	cJSON *pods = yaml(pods_yaml);
	cJSON *u = smoke_usage(pods);
	cJSON_Delete(pods);
	return u;
}

Test(smoke, pod_gpus_limits_requests_and_init)
{
	cJSON *pod = yaml("spec:\n  containers:\n  - resources: {limits: {nvidia.com/gpu: '1'}}\n"
			  "  - resources: {requests: {nvidia.com/gpu: 2}}\n"
			  "  initContainers:\n  - resources: {limits: {nvidia.com/gpu: '4'}}\n");
	cr_assert_eq(smoke_pod_gpus(pod, SMOKE_RESOURCE), 4, "the largest init container wins over the sum 3");
	cJSON_Delete(pod);
	pod = yaml("spec:\n  containers:\n  - resources: {limits: {nvidia.com/gpu: '1'}}\n  - resources: {limits: {nvidia.com/gpu: '2'}}\n");
	cr_assert_eq(smoke_pod_gpus(pod, SMOKE_RESOURCE), 3);
	cJSON_Delete(pod);
}

Test(smoke, plan_plain_node_runs_check1_only)
{
	cJSON *node = yaml(gpu_node);
	struct smoke_plan_opts o = { 0 };
	struct smoke_plan p;
	smoke_plan_node(node, NULL, &o, &p);
	cr_assert_str_eq(p.node, "gpu-1");
	cr_assert_str_eq(p.hostname, "gpu-1.example", "the nodeSelector uses the hostname label");
	cr_assert(p.gpu_run);
	cr_assert_eq(p.free, 2);
	cr_assert_not(p.sharing);
	cr_assert_not(p.share_run);
	cr_assert_eq(p.share.status, REPORT_SKIP);
	cr_assert_eq(p.allocatable_v.status, REPORT_SKIP);
	cr_assert_eq(p.mig_v.status, REPORT_SKIP);
	smoke_plan_release(&p);
	cJSON_Delete(node);
}

Test(smoke, plan_skips_a_node_whose_gpus_are_all_in_use)
{
	cJSON *node = yaml(gpu_node);
	cJSON *u = usage_with("- spec: {nodeName: gpu-1, containers: [{resources: {limits: {nvidia.com/gpu: '1'}}}]}\n"
			      "  status: {phase: Running}\n"
			      "- spec: {nodeName: gpu-1, containers: [{resources: {limits: {nvidia.com/gpu: '1'}}}]}\n"
			      "  status: {phase: Pending}\n"
			      "- spec: {nodeName: gpu-1, containers: [{resources: {limits: {nvidia.com/gpu: '1'}}}]}\n"
			      "  status: {phase: Succeeded}\n"
			      "- spec: {containers: [{resources: {limits: {nvidia.com/gpu: '1'}}}]}\n");
	struct smoke_plan_opts o = { 0 };
	struct smoke_plan p;
	smoke_plan_node(node, u, &o, &p);
	cr_assert_eq(p.used, 2, "finished and unscheduled pods do not count");
	cr_assert_not(p.gpu_run);
	cr_assert_eq(p.gpu.status, REPORT_SKIP, "a busy node is skipped, never failed");
	cr_assert(strstr(p.gpu.message, "in use (2 of 2)"), "%s", p.gpu.message);
	smoke_plan_release(&p);
	cJSON_Delete(u);
	cJSON_Delete(node);
}

Test(smoke, plan_fails_a_node_without_allocatable_gpus)
{
	cJSON *node = yaml("metadata: {name: gpu-3, labels: {nvidia.com/gpu.present: 'true'}}\nstatus: {}\n");
	struct smoke_plan_opts o = { 0 };
	struct smoke_plan p;
	smoke_plan_node(node, NULL, &o, &p);
	cr_assert_not(p.gpu_run);
	cr_assert_eq(p.gpu.status, REPORT_FAIL);
	cr_assert(strstr(p.gpu.hint, "gpuctl deploy"), "%s", p.gpu.hint);
	smoke_plan_release(&p);
	cJSON_Delete(node);
}

Test(smoke, plan_sharing_from_the_plugin_config_without_gfd)
{
	/* the device plugin alone (no gpu-feature-discovery): no replicas label;
	 * the config the node uses (its nvidia.com/device-plugin.config label,
	 * else the default key) says it shares 2 GPUs 4 ways */
	cJSON *node = yaml("metadata: {name: k-1, labels: {nvidia.com/gpu.present: 'true', "
			   "nvidia.com/device-plugin.config: ts-4}}\n"
			   "status: {allocatable: {nvidia.com/gpu: '8'}, capacity: {nvidia.com/gpu: '8'}}\n");
	cJSON *cfg = yaml("any: |\n  version: v1\n"
			  "ts-4: |\n  version: v1\n  sharing:\n    timeSlicing:\n      resources:\n"
			  "      - name: nvidia.com/gpu\n        replicas: 4\n"
			  "mps-2: |\n  version: v1\n  sharing:\n    mps:\n      resources:\n"
			  "      - name: nvidia.com/gpu\n        replicas: 2\n");
	struct smoke_plan_opts o = { .configs = cfg, .default_key = "any" };
	struct smoke_plan p;
	smoke_plan_node(node, NULL, &o, &p);
	cr_assert(p.sharing);
	cr_assert_eq(p.replicas, 4);
	cr_assert_eq(p.physical, 2);
	cr_assert_eq(p.n, 8);
	cr_assert_eq(p.allocatable_v.status, REPORT_PASS, "%s", p.allocatable_v.message);
	cr_assert_not(p.mps);
	smoke_plan_release(&p);
	/* MPS by its config */
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(node, "metadata"), "labels",
				  cJSON_Parse("{\"nvidia.com/gpu.present\": \"true\", \"nvidia.com/device-plugin.config\": \"mps-2\"}"));
	smoke_plan_node(node, NULL, &o, &p);
	cr_assert(p.mps);
	smoke_plan_release(&p);
	/* the default key shares nothing: no sharing checks */
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(node, "metadata"), "labels",
				  cJSON_Parse("{\"nvidia.com/gpu.present\": \"true\"}"));
	smoke_plan_node(node, NULL, &o, &p);
	cr_assert_not(p.sharing);
	smoke_plan_release(&p);
	cJSON_Delete(cfg);
	cJSON_Delete(node);
}

Test(smoke, plan_sharing_n_from_free_slots)
{
	cJSON *node = yaml(shared_node);
	cJSON *u = usage_with("- spec: {nodeName: gpu-2, containers: [{resources: {limits: {nvidia.com/gpu: '1'}}}]}\n"
			      "  status: {phase: Running}\n");
	struct smoke_plan_opts o = { 0 };
	struct smoke_plan p;
	smoke_plan_node(node, u, &o, &p);
	cr_assert(p.sharing);
	cr_assert(p.share_run);
	cr_assert_eq(p.n, 3, "4 allocatable - 1 in use");
	cr_assert(p.overcommit_run);
	cr_assert_eq(p.physical, 1);
	cr_assert_eq(p.replicas, 4);
	cr_assert_eq(p.allocatable_v.status, REPORT_PASS, "%s", p.allocatable_v.message);
	cr_assert_not(p.mps);
	smoke_plan_release(&p);

	o.pods = 2;
	smoke_plan_node(node, u, &o, &p);
	cr_assert_eq(p.n, 2);
	cr_assert_not(p.overcommit_run, "a free slot is left: one more pod would fit");
	cr_assert_eq(p.overcommit.status, REPORT_SKIP);
	smoke_plan_release(&p);

	o.pods = 5;
	smoke_plan_node(node, u, &o, &p);
	cr_assert_not(p.share_run);
	cr_assert_eq(p.share.status, REPORT_SKIP);
	smoke_plan_release(&p);

	o.pods = 0;
	o.no_sharing = 1;
	smoke_plan_node(node, u, &o, &p);
	cr_assert_not(p.share_run);
	cr_assert(strstr(p.share.message, "--no-sharing"));
	smoke_plan_release(&p);
	cJSON_Delete(u);
	cJSON_Delete(node);
}

Test(smoke, plan_mps_and_wrong_allocatable)
{
	cJSON *node = yaml("metadata: {name: gpu-4, labels: {nvidia.com/gpu.count: '2', nvidia.com/gpu.replicas: '4',\n"
			   "  nvidia.com/gpu.sharing-strategy: mps}}\n"
			   "status: {allocatable: {nvidia.com/gpu: '6'}}\n");
	struct smoke_plan_opts o = { 0 };
	struct smoke_plan p;
	smoke_plan_node(node, NULL, &o, &p);
	cr_assert(p.mps);
	cr_assert_eq(p.allocatable_v.status, REPORT_FAIL);
	cr_assert(strstr(p.allocatable_v.message, "expected 2 GPU(s) x 4 replicas = 8"), "%s", p.allocatable_v.message);
	smoke_plan_release(&p);
	cJSON_Delete(node);
	/* P unknown: skipped with the reason */
	node = yaml("metadata: {name: gpu-5, labels: {nvidia.com/gpu.replicas: '4'}}\nstatus: {allocatable: {nvidia.com/gpu: '4'}}\n");
	smoke_plan_node(node, NULL, &o, &p);
	cr_assert(p.sharing);
	cr_assert_eq(p.allocatable_v.status, REPORT_SKIP);
	cr_assert(strstr(p.allocatable_v.message, "nvidia.com/gpu.count"));
	smoke_plan_release(&p);
	cJSON_Delete(node);
}

/* ---- judgements ---- */

static struct smoke_pod pod_with_log(const char *name, const char *phase, const char *log)
{
	struct smoke_pod p = { 0 };
	p.name = xstrdup(name);
	p.phase = phase ? xstrdup(phase) : NULL;
	p.created = 1;
	p.exit_code = -1;
	smoke_log_parse(log, strlen(log), &p.log);
	return p;
}

Test(smoke, judge_gpu)
{
	const char *log = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-f3c1)\nGPU-f3c1, Default\n" SMOKE_READY_MARKER "\n";
	struct smoke_pod p = pod_with_log("p", "Succeeded", log);
	struct smoke_verdict v = { 0 };
	smoke_judge_gpu(&p, "NVIDIA-H100-80GB-HBM3", &v);
	cr_assert_eq(v.status, REPORT_PASS, "%s", v.message);
	smoke_judge_gpu(&p, NULL, &v);
	cr_assert_eq(v.status, REPORT_PASS, "no product label: not compared");
	smoke_judge_gpu(&p, "NVIDIA-A100-SXM4-40GB", &v);
	cr_assert_eq(v.status, REPORT_FAIL);
	cr_assert(strstr(v.message, "NVIDIA-A100-SXM4-40GB"), "%s", v.message);
	smoke_pod_release(&p);

	p = pod_with_log("p", "Succeeded", "hello\n");
	smoke_judge_gpu(&p, NULL, &v);
	cr_assert_eq(v.status, REPORT_FAIL);
	cr_assert(strstr(v.message, "named no GPU"));
	smoke_pod_release(&p);

	p = pod_with_log("p", "Pending", "");
	p.reason = xstrdup("ImagePullBackOff");
	p.message = xstrdup("Back-off pulling image \"nvcr.io/x\"");
	smoke_judge_gpu(&p, NULL, &v);
	cr_assert_eq(v.status, REPORT_FAIL);
	cr_assert(strstr(v.hint, "ImagePullBackOff: Back-off pulling image"), "%s", v.hint);
	smoke_pod_release(&p);
	smoke_verdict_release(&v);
}

Test(smoke, judge_concurrent)
{
	struct smoke_verdict v = { 0 };
	smoke_judge_concurrent(4, 4, 3.25, &v);
	cr_assert_eq(v.status, REPORT_PASS);
	cr_assert(strstr(v.message, "4 pods Running at once after 3.2 s") || strstr(v.message, "after 3.3 s"), "%s",
		  v.message);
	smoke_judge_concurrent(4, 3, 0, &v);
	cr_assert_eq(v.status, REPORT_FAIL);
	cr_assert(strstr(v.message, "at most 3 of 4"));
	smoke_verdict_release(&v);
}

Test(smoke, judge_same_gpu)
{
	struct smoke_pod a = pod_with_log("a", "Running", "GPU 0: NVIDIA H200 (UUID: GPU-1)\n");
	struct smoke_pod b = pod_with_log("b", "Running", "GPU 0: NVIDIA H200 (UUID: GPU-1)\n");
	struct smoke_pod c = pod_with_log("c", "Running", "GPU 0: NVIDIA H200 (UUID: GPU-2)\n");
	struct smoke_pod d = pod_with_log("d", "Running", "nothing\n");
	struct smoke_pod *ab[] = { &a, &b }, *abc[] = { &a, &b, &c }, *abd[] = { &a, &b, &d };
	struct smoke_verdict v = { 0 };
	cJSON *det = cJSON_CreateObject();
	smoke_judge_same_gpu(ab, 2, 1, det, &v);
	cr_assert_eq(v.status, REPORT_PASS, "%s", v.message);
	cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(det, "b"), 0)->valuestring, "GPU-1");
	cJSON_Delete(det);
	smoke_judge_same_gpu(abc, 3, 1, NULL, &v);
	cr_assert_eq(v.status, REPORT_FAIL, "2 GPUs on a 1-GPU node");
	cr_assert(strstr(v.message, "2 different GPUs"), "%s", v.message);
	smoke_judge_same_gpu(abc, 3, 2, NULL, &v);
	cr_assert_eq(v.status, REPORT_PASS);
	smoke_judge_same_gpu(abd, 3, 1, NULL, &v);
	cr_assert_eq(v.status, REPORT_FAIL);
	cr_assert(strstr(v.message, "no GPU UUID in the log of d"), "%s", v.message);
	smoke_verdict_release(&v);
	smoke_pod_release(&a);
	smoke_pod_release(&b);
	smoke_pod_release(&c);
	smoke_pod_release(&d);
}

Test(smoke, judge_mps)
{
	struct smoke_pod a = pod_with_log("a", "Running", "GPU 0: X (UUID: GPU-1)\nGPU-1, Exclusive_Process\n");
	struct smoke_pod b = pod_with_log("b", "Running", "GPU 0: X (UUID: GPU-1)\nGPU-1, Default\n");
	struct smoke_pod *aa[] = { &a, &a }, *ab[] = { &a, &b };
	struct smoke_verdict v = { 0 };
	smoke_judge_mps(aa, 2, &v);
	cr_assert_eq(v.status, REPORT_PASS, "%s", v.message);
	smoke_judge_mps(ab, 2, &v);
	cr_assert_eq(v.status, REPORT_FAIL);
	cr_assert(strstr(v.message, "b: Default"), "%s", v.message);
	smoke_verdict_release(&v);
	smoke_pod_release(&a);
	smoke_pod_release(&b);
}

Test(smoke, observe_and_judge_overcommit)
{
	struct smoke_pod p = { 0 };
	p.name = xstrdup("over");
	p.created = 1;
	struct smoke_verdict v = { 0 };
	cJSON *o = yaml("status: {phase: Pending}\n");
	smoke_pod_observe(&p, o, 1.0);
	cJSON_Delete(o);
	cr_assert_eq(smoke_judge_overcommit(&p, SMOKE_RESOURCE, &v), 0, "not decided before the scheduler speaks");
	o = yaml("status:\n  phase: Pending\n  conditions:\n  - type: PodScheduled\n    status: 'False'\n"
		 "    reason: Unschedulable\n    message: '0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) "
		 "didn''t match Pod''s node affinity/selector.'\n");
	smoke_pod_observe(&p, o, 2.0);
	cJSON_Delete(o);
	cr_assert(p.unschedulable);
	cr_assert_eq(smoke_judge_overcommit(&p, SMOKE_RESOURCE, &v), 1);
	cr_assert_eq(v.status, REPORT_PASS, "%s", v.message);
	/* another reason */
	free(p.message);
	p.message = xstrdup("0/1 nodes are available: 1 node(s) had untolerated taint {x: y}");
	cr_assert_eq(smoke_judge_overcommit(&p, SMOKE_RESOURCE, &v), 1);
	cr_assert_eq(v.status, REPORT_FAIL);
	/* scheduled after all */
	o = yaml("spec: {nodeName: gpu-2}\nstatus:\n  phase: Running\n  conditions:\n  - {type: PodScheduled, status: 'True'}\n");
	smoke_pod_observe(&p, o, 3.0);
	cJSON_Delete(o);
	cr_assert(p.scheduled);
	cr_assert_eq(smoke_judge_overcommit(&p, SMOKE_RESOURCE, &v), 1);
	cr_assert_eq(v.status, REPORT_FAIL);
	cr_assert_float_eq(p.t_running, 3.0, 1e-9);
	smoke_verdict_release(&v);
	smoke_pod_release(&p);
}

Test(smoke, observe_waiting_reason_in_state)
{
	struct smoke_pod p = { 0 };
	p.name = xstrdup("p");
	p.created = 1;
	cJSON *o = yaml("spec: {nodeName: n}\nstatus:\n  phase: Pending\n  containerStatuses:\n  - state:\n"
			"      waiting: {reason: ErrImageNeverPull, message: 'Container image \"x\" is not present'}\n");
	smoke_pod_observe(&p, o, 1.0);
	cJSON_Delete(o);
	char *s = smoke_pod_state(&p);
	cr_assert_str_eq(s, "Pending (ErrImageNeverPull: Container image \"x\" is not present)");
	free(s);
	o = yaml("status:\n  phase: Running\n  containerStatuses:\n  - state: {running: {startedAt: x}}\n");
	smoke_pod_observe(&p, o, 1.5);
	cJSON_Delete(o);
	s = smoke_pod_state(&p);
	cr_assert_str_eq(s, "Running", "the waiting reason is over");
	free(s);
	o = yaml("status:\n  phase: Failed\n  containerStatuses:\n  - state: {terminated: {reason: Error, exitCode: 127}}\n");
	smoke_pod_observe(&p, o, 2.0);
	cJSON_Delete(o);
	cr_assert(smoke_pod_done(&p));
	cr_assert_eq(p.exit_code, 127);
	s = smoke_pod_state(&p);
	cr_assert_str_eq(s, "Failed (Error)");
	free(s);
	smoke_pod_release(&p);
}

Test(smoke, judge_mig)
{
	struct smoke_verdict v = { 0 };
	cJSON *n = yaml(gpu_node);
	smoke_judge_mig(n, &v);
	cr_assert_eq(v.status, REPORT_SKIP);
	cJSON_Delete(n);
	n = yaml("metadata: {name: m, labels: {nvidia.com/mig.strategy: mixed, nvidia.com/mig.config.state: success}}\n"
		 "status: {capacity: {nvidia.com/mig-1g.10gb: '7'}, allocatable: {nvidia.com/mig-1g.10gb: '7'}}\n");
	smoke_judge_mig(n, &v);
	cr_assert_eq(v.status, REPORT_PASS, "%s", v.message);
	cJSON_Delete(n);
	n = yaml("metadata: {name: m, labels: {nvidia.com/mig.strategy: mixed, nvidia.com/mig.config.state: failed}}\n"
		 "status: {capacity: {nvidia.com/mig-1g.10gb: '7'}, allocatable: {nvidia.com/mig-1g.10gb: '7'}}\n");
	smoke_judge_mig(n, &v);
	cr_assert_eq(v.status, REPORT_FAIL);
	cJSON_Delete(n);
	n = yaml("metadata: {name: m, labels: {nvidia.com/mig.config.state: success}}\n"
		 "status: {capacity: {nvidia.com/mig-1g.10gb: '7', nvidia.com/mig-3g.40gb: '1'},\n"
		 "  allocatable: {nvidia.com/mig-1g.10gb: '7', nvidia.com/mig-3g.40gb: '0'}}\n");
	smoke_judge_mig(n, &v);
	cr_assert_eq(v.status, REPORT_FAIL, "a MIG resource with nothing allocatable");
	cr_assert(strstr(v.message, "nvidia.com/mig-3g.40gb 0"), "%s", v.message);
	cJSON_Delete(n);
	n = yaml("metadata: {name: m, labels: {nvidia.com/mig.strategy: single, nvidia.com/mig.config.state: success}}\n"
		 "status: {allocatable: {nvidia.com/gpu: '7'}}\n");
	smoke_judge_mig(n, &v);
	cr_assert_eq(v.status, REPORT_PASS, "%s", v.message);
	cJSON_Delete(n);
	/* MIG turned off: GFD labels no strategy, the kubelet still lists the old MIG resources */
	n = yaml("metadata: {name: m, labels: {nvidia.com/gfd.timestamp: '1764780000', nvidia.com/gpu.count: '2'}}\n"
		 "status: {capacity: {nvidia.com/gpu: '2', nvidia.com/mig-1g.10gb: '2'},\n"
		 "  allocatable: {nvidia.com/gpu: '2', nvidia.com/mig-1g.10gb: '0'}}\n");
	smoke_judge_mig(n, &v);
	cr_assert_eq(v.status, REPORT_SKIP, "%s", v.message);
	cJSON_Delete(n);
	/* no GFD: a MIG resource at 0 after its grace period is not MIG either */
	n = yaml("metadata: {name: m}\n"
		 "status: {capacity: {nvidia.com/gpu: '2', nvidia.com/mig-1g.10gb: '0'},\n"
		 "  allocatable: {nvidia.com/gpu: '2', nvidia.com/mig-1g.10gb: '0'}}\n");
	smoke_judge_mig(n, &v);
	cr_assert_eq(v.status, REPORT_SKIP, "%s", v.message);
	cJSON_Delete(n);
	/* mixed: a profile of an earlier layout listed at 0 is not a fault */
	n = yaml("metadata: {name: m, labels: {nvidia.com/mig.strategy: mixed}}\n"
		 "status: {capacity: {nvidia.com/mig-1g.10gb: '0', nvidia.com/mig-3g.40gb: '2'},\n"
		 "  allocatable: {nvidia.com/mig-1g.10gb: '0', nvidia.com/mig-3g.40gb: '2'}}\n");
	smoke_judge_mig(n, &v);
	cr_assert_eq(v.status, REPORT_PASS, "%s", v.message);
	cr_assert(!strstr(v.message, "1g.10gb"), "%s", v.message);
	cJSON_Delete(n);
	/* GFD (mig-strategy single) on GPUs whose MIG devices differ: the plugin does not start */
	n = yaml("metadata: {name: m, labels: {nvidia.com/mig.strategy: single,\n"
		 "  nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3-MIG-INVALID, nvidia.com/gpu.count: '0'}}\n"
		 "status: {capacity: {nvidia.com/gpu: '6'}, allocatable: {nvidia.com/gpu: '0'}}\n");
	smoke_judge_mig(n, &v);
	cr_assert_eq(v.status, REPORT_FAIL, "%s", v.message);
	cr_assert_str_eq(v.message, "the single MIG strategy found MIG devices of more than one profile, a GPU in MIG "
				    "mode without MIG devices, or MIG on only some GPUs "
				    "(nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3-MIG-INVALID)");
	cr_assert(strstr(v.hint, "--mig-strategy mixed"), "%s", v.hint);
	cJSON_Delete(n);
	smoke_verdict_release(&v);
}

/* ---- names, script, the rendered pod ---- */

Test(smoke, names)
{
	char *n = smoke_pod_name("ab12cd34", "ip-10-0-0-1.ec2.internal", "gpu");
	cr_assert_str_eq(n, "gpuctl-smoke-ab12cd34-ip-10-0-0-1-ec2-internal-gpu");
	free(n);
	char *l = smoke_label_value("a-very-long-node-name-that-goes-on-and-on-and-on-beyond-sixty-three-chars");
	cr_assert_leq(strlen(l), 63);
	cr_assert(l[strlen(l) - 1] != '-');
	free(l);
	char *id = smoke_run_id();
	cr_assert_eq(strlen(id), 8);
	cr_assert_eq(strspn(id, "0123456789abcdef"), 8);
	free(id);
	char *c = smoke_cleanup_command("gpuctl-smoke-test", "ab12cd34");
	cr_assert_str_eq(c, "kubectl delete pods -n gpuctl-smoke-test -l gpuctl.io/smoke-run=ab12cd34");
	free(c);
}

Test(smoke, script)
{
	struct smoke_script_opts o = { 0 };
	char *s = smoke_script(&o);
	cr_assert(strstr(s, "nvidia-smi -L\n"));
	cr_assert(strstr(s, "nvidia-smi --query-gpu=uuid,compute_mode --format=csv,noheader\n"));
	cr_assert(strstr(s, "echo '" SMOKE_READY_MARKER "'\n"));
	cr_assert_null(strstr(s, "sleep"));
	free(s);
	o.sleep_s = 300;
	s = smoke_script(&o);
	cr_assert(strstr(s, "exec sleep 300\n"));
	free(s);
}

Test(smoke, render_pod)
{
	struct taint_op tol = { .key = (char *)"dedicated", .value = (char *)"ml", .effect = (char *)"NoExecute" };
	struct smoke_pod_spec s = {
		.name = "gpuctl-smoke-ab12cd34-gpu-1-share-0", .ns = "gpuctl-smoke-test", .run_id = "ab12cd34",
		.node = "gpu-1", .hostname = "gpu-1.example", .image = "nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04",
		.resource = SMOKE_RESOURCE, .role = SMOKE_ROLE_SHARE, .tolerations = &tol, .ntolerations = 1,
		.script = { .sleep_s = 60 },
	};
	struct render_ctx rc = { .dir = NULL };
	cJSON *pod = NULL;
	struct gerr e = GERR_INIT;
	cr_assert_eq(smoke_pod_render(&rc, &s, &pod, &e), 0, "%s", e.msg);
	cr_assert_str_eq(json_str(pod, "kind"), "Pod");
	const cJSON *md = cJSON_GetObjectItem(pod, "metadata");
	cr_assert_str_eq(json_str(md, "namespace"), "gpuctl-smoke-test");
	const cJSON *labels = cJSON_GetObjectItem(md, "labels");
	cr_assert_str_eq(json_str(labels, "app.kubernetes.io/managed-by"), "gpuctl");
	cr_assert_str_eq(json_str(labels, "gpuctl.io/smoke-run"), "ab12cd34");
	cr_assert_str_eq(json_str(labels, "gpuctl.io/smoke-node"), "gpu-1");
	const cJSON *spec = cJSON_GetObjectItem(pod, "spec");
	cr_assert_str_eq(json_str(spec, "restartPolicy"), "Never");
	cr_assert_str_eq(json_str(spec, "runtimeClassName"), "nvidia");
	cr_assert_null(cJSON_GetObjectItem(spec, "nodeName"), "the scheduler must decide");
	cr_assert_str_eq(json_str(cJSON_GetObjectItem(spec, "nodeSelector"), "kubernetes.io/hostname"), "gpu-1.example");
	cr_assert_eq(cJSON_GetObjectItem(spec, "terminationGracePeriodSeconds")->valueint, 1);
	const cJSON *tols = cJSON_GetObjectItem(spec, "tolerations");
	cr_assert_eq(cJSON_GetArraySize(tols), 3);
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(tols, 0), "key"), "nvidia.com/gpu");
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(tols, 0), "operator"), "Exists");
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(tols, 0), "effect"), "NoSchedule");
	/* the validation gate's taint: smoke-test runs before a node is admitted */
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(tols, 1), "key"), "gpuctl.io/unvalidated");
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(tols, 1), "effect"), "NoSchedule");
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(tols, 2), "key"), "dedicated");
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(tols, 2), "value"), "ml");
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(tols, 2), "effect"), "NoExecute");
	const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(spec, "containers"), 0);
	cr_assert_str_eq(json_str(c, "image"), "nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04");
	const cJSON *lim = json_get2(cJSON_GetObjectItem(c, "resources"), "limits", "nvidia.com/gpu");
	cr_assert(cJSON_IsNumber(lim) && lim->valueint == 1);
	const cJSON *cmd = cJSON_GetObjectItem(c, "command");
	cr_assert_str_eq(cJSON_GetArrayItem(cmd, 0)->valuestring, "sh");
	cr_assert_str_eq(cJSON_GetArrayItem(cmd, 1)->valuestring, "-c");
	cr_assert(strstr(cJSON_GetArrayItem(cmd, 2)->valuestring, "exec sleep 60\n"));
	const cJSON *env = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "env"), 0);
	cr_assert_str_eq(json_str(env, "name"), "NVIDIA_DRIVER_CAPABILITIES");
	cr_assert_str_eq(json_str(env, "value"), "compute,utility");
	cr_assert(cJSON_IsFalse(json_get2(c, "securityContext", "allowPrivilegeEscalation")));
	cJSON_Delete(pod);
}

Test(smoke, versions_pin_the_image)
{
	const struct render_embedded *t = render_embedded_find("versions.yaml.tmpl");
	cr_assert_not_null(t);
	cJSON *v = NULL;
	struct gerr e = GERR_INIT;
	cr_assert_eq(yaml_parse(t->text, t->len, "versions", &v, &e), 0, "%s", e.msg);
	cr_assert_str_eq(json_str(cJSON_GetObjectItem(v, "smokeTest"), "image"), "nvcr.io/nvidia/cuda:12.8.1-base-ubuntu24.04");
	cJSON_Delete(v);
}

Test(smoke, plan_mixed_mig_node_asks_for_a_mig_device)
{
	cJSON *node = yaml("metadata: {name: m, labels: {nvidia.com/mig.strategy: mixed, nvidia.com/mig.config.state: success}}\n"
			   "status: {capacity: {nvidia.com/mig-1g.10gb: '7'}, allocatable: {nvidia.com/gpu: '0', nvidia.com/mig-1g.10gb: '7'}}\n");
	cJSON *u = usage_with("- spec: {nodeName: m, containers: [{resources: {limits: {nvidia.com/mig-1g.10gb: '2'}}}]}\n"
			      "  status: {phase: Running}\n");
	struct smoke_plan_opts o = { 0 };
	struct smoke_plan p;
	smoke_plan_node(node, u, &o, &p);
	cr_assert_str_eq(p.resource, "nvidia.com/mig-1g.10gb");
	cr_assert(p.gpu_run, "%s", p.gpu.message ? p.gpu.message : "");
	cr_assert_eq(p.used, 2);
	cr_assert_eq(p.free, 5);
	cr_assert(p.mig);
	cr_assert_eq(p.mig_v.status, REPORT_PASS, "%s", p.mig_v.message);
	smoke_plan_release(&p);
	cJSON_Delete(u);
	cJSON_Delete(node);
}

Test(smoke, plan_renamed_shared_gpu)
{
	cJSON *node = yaml("metadata: {name: s, labels: {nvidia.com/gpu.replicas: '2', nvidia.com/gpu.count: '1'}}\n"
			   "status: {allocatable: {nvidia.com/gpu.shared: '2'}}\n");
	struct smoke_plan_opts o = { 0 };
	struct smoke_plan p;
	smoke_plan_node(node, NULL, &o, &p);
	cr_assert_str_eq(p.resource, SMOKE_SHARED_RESOURCE);
	cr_assert_eq(p.n, 2);
	cr_assert_eq(p.allocatable_v.status, REPORT_PASS, "%s", p.allocatable_v.message);
	smoke_plan_release(&p);
	cJSON_Delete(node);
}

/* ---- --measure ---- */

Test(smoke, log_gpuload_result_line)
{
	static const char text[] = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\ngpuctl-smoke: ready\n"
				   "{\"gpuload\":1,\"device\":\"NVIDIA H100\",\"uuid\":\"GPU-1\",\"launches\":1200,"
				   "\"seconds\":10.02,\"flops\":150000000000,\"gflops\":14.97}\r\n";
	struct smoke_log l;
	smoke_log_parse(text, strlen(text), &l);
	cr_assert(l.ready);
	cr_assert(l.measured);
	cr_assert_null(l.load_error);
	cr_assert_float_eq(l.gflops, 14.97, 1e-9);
	cr_assert_float_eq(l.seconds, 10.02, 1e-9);
	cr_assert_eq(l.launches, 1200);
	smoke_log_release(&l);
}

Test(smoke, log_gpuload_error_line_first_one_counts)
{
	static const char text[] = "gpuctl-smoke: ready\n{\"gpuload\":1,\"error\":\"cuInit: CUDA_ERROR_NO_DEVICE\"}\n"
				   "{\"gpuload\":1,\"error\":\"gpuctl-gpuload exited with status 1\"}\n";
	struct smoke_log l;
	smoke_log_parse(text, strlen(text), &l);
	cr_assert(l.measured);
	cr_assert_str_eq(l.load_error, "cuInit: CUDA_ERROR_NO_DEVICE");
	smoke_log_release(&l);
}

Test(smoke, log_gpuload_garbage_is_ignored)
{
	static const char text[] = "gpuctl-smoke: ready\n{\"gpuload\":1,\"gflops\":\n{\"gpuload\":2,\"gflops\":3}\n"
				   "{\"other\":1}\n{\"gpuload\"\n";
	struct smoke_log l;
	smoke_log_parse(text, strlen(text), &l);
	cr_assert(l.ready);
	cr_assert_not(l.measured, "a cut or foreign line is no result");
	cr_assert_null(l.load_error);
	smoke_log_release(&l);
	/* a gpuload line without gflops nor error is an error */
	static const char t2[] = "{\"gpuload\":1,\"device\":\"x\"}\n";
	smoke_log_parse(t2, strlen(t2), &l);
	cr_assert(l.measured);
	cr_assert_not_null(l.load_error);
	smoke_log_release(&l);
}

Test(smoke, script_measures)
{
	struct smoke_script_opts o = { .sleep_s = 60, .measure_s = 10, .start_at = 1764735600.5 };
	char *s = smoke_script(&o);
	const char *load = strstr(s, "/opt/gpuctl/gpuctl-gpuload --seconds 10 --start-at 1764735600.500 || echo ");
	cr_assert_not_null(load, "%s", s);
	cr_assert_lt(strstr(s, SMOKE_READY_MARKER) - s, load - s, "after the marker");
	cr_assert_gt(strstr(s, "exec sleep 60") - s, load - s, "then the sleep");
	free(s);
	struct smoke_script_opts solo = { .measure_s = 5 };
	s = smoke_script(&solo);
	cr_assert_not_null(strstr(s, "gpuctl-gpuload --seconds 5 || "), "%s", s);
	cr_assert_null(strstr(s, "--start-at"), "the single-GPU pod starts at once");
	free(s);
	struct smoke_script_opts none = { .sleep_s = 60 };
	s = smoke_script(&none);
	cr_assert_null(strstr(s, "gpuload"), "no load without --measure");
	free(s);
}

static const cJSON *pod_volume(const cJSON *pod)
{
	return cJSON_GetArrayItem(json_get2(pod, "spec", "volumes"), 0);
}

Test(smoke, render_pod_mounts_the_load_when_measuring)
{
	struct smoke_pod_spec s = {
		.name = "p", .ns = "gpuctl-smoke-test", .run_id = "ab12cd34", .node = "gpu-1", .hostname = "gpu-1",
		.image = "img", .resource = SMOKE_RESOURCE, .role = SMOKE_ROLE_SHARE,
		.script = { .sleep_s = 60, .measure_s = 10, .start_at = 100 },
	};
	struct render_ctx rc = { .dir = NULL };
	cJSON *pod = NULL;
	struct gerr e = GERR_INIT;
	cr_assert_eq(smoke_pod_render(&rc, &s, &pod, &e), 0, "%s", e.msg);
	const cJSON *v = pod_volume(pod);
	cr_assert_str_eq(json_str(v, "name"), "gpuload");
	cr_assert_str_eq(json_str(cJSON_GetObjectItem(v, "configMap"), "name"), SMOKE_LOAD_CONFIGMAP);
	cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "configMap"), "defaultMode")->valueint, 0555);
	const cJSON *c = cJSON_GetArrayItem(json_get2(pod, "spec", "containers"), 0);
	const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "volumeMounts"), 0);
	cr_assert_str_eq(json_str(m, "name"), "gpuload");
	cr_assert_str_eq(json_str(m, "mountPath"), SMOKE_LOAD_DIR);
	cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(m, "readOnly")));
	cr_assert_not_null(json_get2(c, "securityContext", "allowPrivilegeEscalation"));
	cJSON_Delete(pod);
	s.script.measure_s = 0;
	cr_assert_eq(smoke_pod_render(&rc, &s, &pod, &e), 0, "%s", e.msg);
	cr_assert_null(json_get2(pod, "spec", "volumes"), "no volume without --measure");
	c = cJSON_GetArrayItem(json_get2(pod, "spec", "containers"), 0);
	cr_assert_null(cJSON_GetObjectItem(c, "volumeMounts"));
	cJSON_Delete(pod);
}

static struct smoke_pod measured(const char *name, const char *line)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "gpuctl-smoke: ready\n%s\n", line ? line : "");
	struct smoke_pod p = { .name = xstrdup(name), .exit_code = -1 };
	smoke_log_parse(b.s, b.len, &p.log);
	buf_release(&b);
	return p;
}

static struct smoke_pod gf(const char *name, double g)
{
	char line[128];
	snprintf(line, sizeof(line), "{\"gpuload\":1,\"launches\":10,\"seconds\":10,\"gflops\":%g}", g);
	return measured(name, line);
}

Test(smoke, judge_measure_pass_with_shares_aggregate_and_fairness)
{
	struct smoke_pod p[4] = { gf("a", 14.2), gf("b", 15.7), gf("c", 15.0), gf("d", 14.9) };
	struct smoke_pod solo = gf("solo", 62.3);
	struct smoke_pod *pp[4] = { &p[0], &p[1], &p[2], &p[3] };
	struct smoke_verdict v = { 0 };
	cJSON *d = cJSON_CreateObject();
	smoke_judge_measure(pp, 4, &solo, d, &v);
	cr_assert_eq(v.status, REPORT_PASS, "%s", v.message);
	cr_assert_str_eq(v.message, "4 pods at once: 59.8 GFLOP/s in all (96% of one pod alone), each 14.2-15.7 GFLOP/s "
				    "(share 24-26%), fairness 0.90");
	cr_assert_float_eq(cJSON_GetObjectItem(d, "gflops")->valuedouble, 59.8, 1e-9);
	cr_assert_float_eq(cJSON_GetObjectItem(d, "solo")->valuedouble, 62.3, 1e-9);
	cr_assert_float_eq(cJSON_GetObjectItem(d, "fairness")->valuedouble, 14.2 / 15.7, 1e-9);
	const cJSON *b = json_get2(d, "pods", "b");
	cr_assert_float_eq(cJSON_GetObjectItem(b, "gflops")->valuedouble, 15.7, 1e-9);
	cr_assert_float_eq(cJSON_GetObjectItem(b, "share")->valuedouble, 15.7 / 59.8, 1e-9);
	cJSON_Delete(d);
	smoke_verdict_release(&v);
	/* without the baseline: no percentage of one pod alone */
	smoke_judge_measure(pp, 4, NULL, NULL, &v);
	cr_assert_eq(v.status, REPORT_PASS);
	cr_assert_null(strstr(v.message, "alone"), "%s", v.message);
	smoke_verdict_release(&v);
	for (int i = 0; i < 4; i++)
		smoke_pod_release(&p[i]);
	smoke_pod_release(&solo);
}

Test(smoke, judge_measure_warns_when_unfair)
{
	struct smoke_pod p[2] = { gf("a", 40), gf("b", 10) };
	struct smoke_pod *pp[2] = { &p[0], &p[1] };
	struct smoke_verdict v = { 0 };
	smoke_judge_measure(pp, 2, NULL, NULL, &v);
	cr_assert_eq(v.status, REPORT_WARN, "%s", v.message);
	cr_assert_not_null(strstr(v.message, "fairness 0.25"), "%s", v.message);
	cr_assert_not_null(strstr(v.message, "share 20-80%"), "%s", v.message);
	cr_assert_not_null(strstr(v.hint, "no fairness guarantee"), "%s", v.hint);
	smoke_verdict_release(&v);
	for (int i = 0; i < 2; i++)
		smoke_pod_release(&p[i]);
}

Test(smoke, judge_measure_fails_on_error_or_missing_line)
{
	struct smoke_pod p[3] = { gf("a", 10), measured("b", "{\"gpuload\":1,\"error\":\"cuInit: CUDA_ERROR_NO_DEVICE\"}"),
				  measured("c", NULL) };
	struct smoke_pod *pp[3] = { &p[0], &p[1], &p[2] };
	struct smoke_verdict v = { 0 };
	cJSON *d = cJSON_CreateObject();
	smoke_judge_measure(pp, 2, NULL, d, &v);
	cr_assert_eq(v.status, REPORT_FAIL);
	cr_assert_not_null(strstr(v.hint, "b: cuInit: CUDA_ERROR_NO_DEVICE"), "%s", v.hint);
	cr_assert_str_eq(json_str(json_get2(d, "pods", "b"), "error"), "cuInit: CUDA_ERROR_NO_DEVICE");
	cr_assert_null(cJSON_GetObjectItem(d, "fairness"));
	cJSON_Delete(d);
	smoke_verdict_release(&v);
	smoke_judge_measure(pp + 2, 1, NULL, NULL, &v);
	cr_assert_eq(v.status, REPORT_FAIL);
	cr_assert_not_null(strstr(v.message, "no result in time"), "%s", v.message);
	cr_assert_not_null(strstr(v.hint, "c: no gpuctl-gpuload line"), "%s", v.hint);
	smoke_verdict_release(&v);
	for (int i = 0; i < 3; i++)
		smoke_pod_release(&p[i]);
}

/* usage_of counts each pod as its page arrives (smoke_usage_add), and
 * kube_pod_prune keeps what smoke_pod_gpus reads: the same usage as the
 * whole list at once. */
Test(smoke, usage_pod_by_pod_and_pruned_is_the_same)
{
	cJSON *pods = yaml("- metadata: {name: a, managedFields: [{manager: x}]}\n"
			   "  spec: {nodeName: gpu-1, volumes: [{name: v}], containers: [{name: c, image: i, env: [{name: E}],\n"
			   "    resources: {limits: {nvidia.com/gpu: '1', cpu: '2'}, requests: {nvidia.com/gpu: '1'}}},\n"
			   "    {name: d, resources: {requests: {nvidia.com/mig-1g.10gb: 2}}}],\n"
			   "    initContainers: [{name: i, resources: {limits: {nvidia.com/gpu: '3'}}}]}\n"
			   "  status: {phase: Running, podIP: 1.2.3.4}\n"
			   "- spec: {nodeName: gpu-2, containers: [{resources: {limits: {nvidia.com/gpu: '2'}}}]}\n"
			   "  status: {phase: Pending}\n"
			   "- spec: {nodeName: gpu-2, containers: [{resources: {limits: {nvidia.com/gpu: '4'}}}]}\n"
			   "  status: {phase: Failed}\n"
			   "- spec: {nodeName: gpu-1, containers: [{resources: {limits: {cpu: '1'}}}]}\n"
			   "- spec: {containers: [{resources: {limits: {nvidia.com/gpu: '1'}}}]}\n");
	cJSON *whole = smoke_usage(pods);
	cJSON *u = cJSON_CreateObject();
	const cJSON *p;
	cJSON_ArrayForEach(p, pods) {
		cJSON *pruned = kube_pod_prune(p);
		smoke_usage_add(u, pruned);
		cJSON_Delete(pruned);
	}
	char *a = cJSON_PrintUnformatted(whole), *b = cJSON_PrintUnformatted(u);
	cr_assert_str_eq(a, "{\"gpu-1\":{\"nvidia.com/gpu\":3,\"nvidia.com/mig-1g.10gb\":2},\"gpu-2\":{\"nvidia.com/gpu\":2}}");
	cr_assert_str_eq(b, a);
	free(a);
	free(b);
	cJSON_Delete(whole);
	cJSON_Delete(u);
	cJSON_Delete(pods);
}
