/* gpuctl smoke-test, the whole command, against a small fake API server: a
 * store of nodes and pods with a stand-in for the scheduler and the kubelet
 * that decides each pod's fate when it is created (the single-GPU pod
 * succeeds, the sharing pods run while slots are free, a pod too many stays
 * Unschedulable, or every pod is stuck in ImagePullBackOff), a watch that
 * replays the pods changed after the resourceVersion asked, and logs as
 * nvidia-smi prints them. */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "gpuctl/gpuload.h"
#include "gpuctl/json.h"
#include "gpuctl/sig.h"
#include "gpuctl/util.h"
#include "gpuctl/yaml.h"
#include "tls_server.h"

struct fake {
	cJSON *nodes;
	cJSON *pods;            /* the run's pods, each with its resourceVersion */
	cJSON *busy;            /* other pods (usage list) */
	int rv;
	int ns_exists;
	int ns_created;
	int creates, deletes, log_reads;
	const char *deny;       /* a verb+resource refused by the access review ("create pods"), or NULL */
	int pull_backoff;       /* every pod waits in ImagePullBackOff */
	int free_slots;         /* slots of the node (sharing pods beyond them stay Pending) */
	int running;
	const char *uuid2;      /* a second GPU UUID the second sharing pod sees, or NULL */
	int delete_fails;       /* DELETE answers 500 */
	int interrupts;         /* interrupts that arrive while the first pod is created */
	char *cm_body;          /* the last ConfigMap applied (--measure) */
	int cm_applies;
};

static cJSON *yaml(const char *text)
{
	cJSON *out = NULL;
	struct gerr e = GERR_INIT;
	cr_assert_eq(yaml_parse(text, strlen(text), "test", &out, &e), 0, "%s", e.msg);
	return out;
}

static void reply_json(struct ts_reply *out, int status, const cJSON *obj)
{
	char *s = cJSON_PrintUnformatted(obj);
	ts_reply_set(out, status, "Content-Type: application/json", s);
	free(s);
}

static void reply_list(struct ts_reply *out, cJSON *items, int rv)
{
	cJSON *l = cJSON_CreateObject();
	cJSON_AddStringToObject(l, "kind", "List");
	char v[16];
	snprintf(v, sizeof(v), "%d", rv);
	cJSON_AddItemToObject(cJSON_AddObjectToObject(l, "metadata"), "resourceVersion", cJSON_CreateString(v));
	cJSON_AddItemToObject(l, "items", items);
	reply_json(out, 200, l);
	cJSON_Delete(l);
}

static void not_found(struct ts_reply *out)
{
	ts_reply_set(out, 404, "Content-Type: application/json",
		     "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404,\"message\":\"not found\"}");
}

static void set_rv(struct fake *f, cJSON *pod)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", ++f->rv);
	cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(md, "resourceVersion");
	cJSON_AddStringToObject(md, "resourceVersion", v);
}

/* The scheduler and the kubelet, at once. */
static void decide(struct fake *f, cJSON *pod)
{
	const char *role = json_str(json_get2(pod, "metadata", "labels"), "gpuctl.io/smoke-role");
	const char *node = json_str(json_get2(pod, "spec", "nodeSelector"), "kubernetes.io/hostname");
	cJSON *st = cJSON_AddObjectToObject(pod, "status");
	char text[512];
	if (f->pull_backoff) {
		cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "nodeName", node);
		cJSON_AddStringToObject(st, "phase", "Pending");
		cJSON_AddItemToObject(st, "containerStatuses",
				      yaml("- state: {waiting: {reason: ImagePullBackOff, message: 'Back-off pulling image \"x\"'}}\n"));
		return;
	}
	if (!strcmp(role, "gpu")) {
		cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "nodeName", node);
		cJSON_AddStringToObject(st, "phase", "Succeeded");
		cJSON_AddItemToObject(st, "containerStatuses", yaml("- state: {terminated: {reason: Completed, exitCode: 0}}\n"));
		return;
	}
	if (f->running < f->free_slots) {
		f->running++;
		cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "nodeName", node);
		cJSON_AddStringToObject(st, "phase", "Running");
		cJSON_AddItemToObject(st, "conditions", yaml("- {type: PodScheduled, status: 'True'}\n"));
		return;
	}
	cJSON_AddStringToObject(st, "phase", "Pending");
	snprintf(text, sizeof(text),
		 "- {type: PodScheduled, status: 'False', reason: Unschedulable, message: '0/2 nodes are available: 1 "
		 "Insufficient nvidia.com/gpu, 1 node(s) didn''t match Pod''s node affinity/selector.'}\n");
	cJSON_AddItemToObject(st, "conditions", yaml(text));
}

static int allowed(struct fake *f, const char *body)
{
	cJSON *r = cJSON_Parse(body);
	const cJSON *ra = json_get2(r, "spec", "resourceAttributes");
	char what[128];
	snprintf(what, sizeof(what), "%s %s", json_str(ra, "verb"), json_str(ra, "resource"));
	cJSON_Delete(r);
	return !f->deny || strcmp(f->deny, what);
}

static cJSON *find_pod(struct fake *f, const char *name, size_t len)
{
	cJSON *p;
	cJSON_ArrayForEach(p, f->pods) {
		const char *n = json_str(cJSON_GetObjectItemCaseSensitive(p, "metadata"), "name");
		if (strlen(n) == len && !strncmp(n, name, len))
			return p;
	}
	return NULL;
}

#define NS_PODS "/api/v1/namespaces/gpuctl-smoke-test/pods"

static void route(void *ud, const struct ts_request *req, struct ts_reply *out)
{
	struct fake *f = ud;
	const char *p = req->path;
	if (!strcmp(req->method, "GET") && !strncmp(p, "/api/v1/nodes?", 14)) {
		reply_list(out, cJSON_Duplicate(f->nodes, 1), f->rv);
	} else if (!strcmp(req->method, "POST") && !strncmp(p, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", 54)) {
		char body[64];
		snprintf(body, sizeof(body), "{\"status\":{\"allowed\":%s}}", allowed(f, req->body) ? "true" : "false");
		ts_reply_set(out, 201, "Content-Type: application/json", body);
	} else if (!strcmp(req->method, "GET") && !strcmp(p, "/api/v1/namespaces/gpuctl-smoke-test")) {
		if (f->ns_exists)
			ts_reply_set(out, 200, "Content-Type: application/json", "{\"metadata\":{\"name\":\"gpuctl-smoke-test\"}}");
		else
			not_found(out);
	} else if (!strcmp(req->method, "POST") && !strncmp(p, "/api/v1/namespaces?", 19)) {
		f->ns_exists = f->ns_created = 1;
		ts_reply_set(out, 201, "Content-Type: application/json", req->body);
	} else if (!strcmp(req->method, "PATCH") &&
		   !strncmp(p, "/api/v1/namespaces/gpuctl-smoke-test/configmaps/gpuctl-gpuload?", 63)) {
		cr_assert(strstr(p, "fieldManager=gpuctl"), "%s", p);
		f->cm_applies++;
		free(f->cm_body);
		f->cm_body = xstrdup(req->body);
		ts_reply_set(out, 200, "Content-Type: application/json", req->body);
	} else if (!strcmp(req->method, "GET") && !strncmp(p, "/api/v1/pods?", 13)) {
		cr_assert(strstr(p, "fieldSelector=status.phase"), "%s", p);
		reply_list(out, cJSON_Duplicate(f->busy, 1), f->rv);
	} else if (!strcmp(req->method, "POST") && !strncmp(p, NS_PODS "?", strlen(NS_PODS) + 1)) {
		cJSON *pod = cJSON_Parse(req->body);
		f->creates++;
		for (; f->interrupts > 0; f->interrupts--)
			raise(SIGINT);
		decide(f, pod);
		set_rv(f, pod);
		reply_json(out, 201, pod);
		cJSON_AddItemToArray(f->pods, pod);
	} else if (!strcmp(req->method, "GET") && !strncmp(p, NS_PODS "?", strlen(NS_PODS) + 1)) {
		const char *rvq = strstr(p, "resourceVersion=");
		int from = rvq ? atoi(rvq + 16) : -1;
		cr_assert(strstr(p, "labelSelector=gpuctl.io%2Fsmoke-run%3D"), "%s", p);
		if (!strstr(p, "watch=1")) {
			reply_list(out, cJSON_Duplicate(f->pods, 1), f->rv);
			return;
		}
		/* the events after the version asked, then the stream ends */
		struct buf b = BUF_INIT;
		cJSON *pod;
		cJSON_ArrayForEach(pod, f->pods) {
			if (atoi(json_str(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "resourceVersion")) <= from)
				continue;
			char *s = cJSON_PrintUnformatted(pod);
			buf_addf(&b, "{\"type\":\"MODIFIED\",\"object\":%s}\n", s);
			free(s);
		}
		ts_reply_set(out, 200, "Content-Type: application/json", b.s);
		buf_release(&b);
	} else if (!strncmp(p, NS_PODS "/", strlen(NS_PODS) + 1)) {
		const char *name = p + strlen(NS_PODS) + 1;
		size_t len = strcspn(name, "/?");
		cJSON *pod = find_pod(f, name, len);
		if (!pod)
			return not_found(out);
		if (!strcmp(req->method, "DELETE") && f->delete_fails) {
			ts_reply_set(out, 500, "Content-Type: application/json",
				     "{\"kind\":\"Status\",\"status\":\"Failure\",\"code\":500,\"message\":\"etcd is down\"}");
		} else if (!strcmp(req->method, "DELETE")) {
			cr_assert(strstr(req->body, "\"gracePeriodSeconds\":0"), "%s", req->body);
			f->deletes++;
			reply_json(out, 200, pod);
		} else if (!strncmp(name + len, "/log", 4)) {
			f->log_reads++;
			const char *role = json_str(json_get2(pod, "metadata", "labels"), "gpuctl.io/smoke-role");
			const char *uuid = f->uuid2 && strstr(json_str(cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "name"),
							      "share-1") ? f->uuid2 : "GPU-f3c1c444-0b96-889d-5c44-d5150de13261";
			char text[768];
			int n = snprintf(text, sizeof(text), "GPU 0: NVIDIA H100 80GB HBM3 (UUID: %s)\n%s, %s\ngpuctl-smoke: ready\n",
					 uuid, uuid, strcmp(role, "gpu") ? "Default" : "Default");
			/* --measure: the load's line, from the script the pod runs */
			const cJSON *c0 = cJSON_GetArrayItem(json_get2(pod, "spec", "containers"), 0);
			const char *script = cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(c0, "command"), 2));
			if (script && strstr(script, "gpuctl-gpuload --seconds"))
				snprintf(text + n, sizeof(text) - (size_t)n,
					 "{\"gpuload\":1,\"device\":\"NVIDIA H100 80GB HBM3\",\"uuid\":\"%s\",\"launches\":100,"
					 "\"seconds\":2.0,\"flops\":1,\"gflops\":%s}\n",
					 uuid, !strcmp(role, "gpu") ? "60.0" : "15.0");
			ts_reply_set(out, 200, "Content-Type: text/plain", text);
		} else {
			reply_json(out, 200, pod);
		}
	}
}

static void fake_init(struct fake *f, const char *nodes_yaml)
{
	memset(f, 0, sizeof(*f));
	f->nodes = yaml(nodes_yaml);
	f->pods = cJSON_CreateArray();
	f->busy = cJSON_CreateArray();
	f->rv = 10;
}

static void fake_release(struct fake *f)
{
	cJSON_Delete(f->nodes);
	cJSON_Delete(f->pods);
	cJSON_Delete(f->busy);
	free(f->cm_body);
}

struct run {
	int code;
	cJSON *doc;
	char *out;
	char *err;
};

static const char *run_output = "json";

static struct run run_smoke(struct tls_server *ts, const char *const *args)
{
	char kcfg[PATH_MAX];
	ts_write_kubeconfig(kcfg, ts_url(ts), ts_ca_pem(ts));
	struct gctx g = { .prog = "gpuctl smoke-test", .output = run_output };
	g.kopts.kubeconfig = kcfg;
	g.kopts.max_retries = 0;
	g.kopts.request_timeout_ms = 10000;
	char *argv[32];
	int argc = 0;
	argv[argc++] = (char *)"smoke-test";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	FILE *o = tmpfile(), *er = tmpfile();
	int so = dup(1), se = dup(2);
	dup2(fileno(o), 1);
	dup2(fileno(er), 2);
	struct run r = { 0 };
	r.code = cmd_smoke_test(&g, argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;
	rewind(o);
	while ((n = fread(chunk, 1, sizeof(chunk), o)) > 0)
		buf_add(&b, chunk, n);
	r.doc = cJSON_Parse(b.s);
	r.out = xstrdup(b.s);
	buf_reset(&b);
	rewind(er);
	while ((n = fread(chunk, 1, sizeof(chunk), er)) > 0)
		buf_add(&b, chunk, n);
	r.err = buf_detach(&b);
	fclose(o);
	fclose(er);
	unlink(kcfg);
	gctx_release(&g);
	return r;
}

static void run_free(struct run *r)
{
	cJSON_Delete(r->doc);
	free(r->out);
	free(r->err);
}

static const cJSON *check(const struct run *r, const char *id, const char *target)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r->doc, "checks"))
		if (!strcmp(json_str(c, "id"), id) && !strcmp(json_str(c, "target"), target))
			return c;
	cr_assert_fail("no check %s of %s in the document; stderr: %s", id, target, r->err);
	return NULL;
}

static const char *status_of(const struct run *r, const char *id, const char *target)
{
	return json_str(check(r, id, target), "status");
}

static size_t pod_rows(const struct run *r, const char *role, const char *status)
{
	size_t n = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r->doc, "checks"))
		if (!strcmp(json_str(c, "id"), "pod") && !strcmp(json_str(c, "role"), role) &&
		    !strcmp(json_str(c, "status"), status))
			n++;
	return n;
}

static const char *const shared_node =
	"- metadata: {name: gpu-1, labels: {kubernetes.io/hostname: gpu-1, nvidia.com/gpu.present: 'true',\n"
	"    nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3-SHARED, nvidia.com/gpu.count: '1',\n"
	"    nvidia.com/gpu.replicas: '4', nvidia.com/gpu.sharing-strategy: time-slicing}}\n"
	"  status: {capacity: {nvidia.com/gpu: '4'}, allocatable: {nvidia.com/gpu: '4'}}\n";

Test(smoke_cmd, shared_node_passes_every_check_and_pods_are_deleted)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.free_slots = 4;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	static const char *const args[] = { "--timeout", "20s", NULL };
	struct run r = run_smoke(ts, args);
	cr_assert_not_null(r.doc, "stderr: %s", r.err);
	cr_assert_eq(r.code, 0, "stderr: %s", r.err);
	cr_assert_str_eq(json_str(r.doc, "kind"), "SmokeTestReport");
	cr_assert(f.ns_created, "the namespace is created when missing");
	const char *ids[] = { "smoke.gpu", "smoke.allocatable", "smoke.concurrent", "smoke.same-gpu", "smoke.overcommit" };
	for (size_t i = 0; i < 5; i++)
		cr_assert_str_eq(status_of(&r, ids[i], "gpu-1"), "pass", "%s: %s", ids[i],
				 json_str(check(&r, ids[i], "gpu-1"), "message"));
	cr_assert_str_eq(status_of(&r, "smoke.mig", "gpu-1"), "skip");
	cr_assert_eq(f.creates, 6, "1 single-GPU pod, 4 sharing pods, 1 too many");
	cr_assert_eq(f.deletes, 6, "every pod deleted");
	cr_assert_eq(pod_rows(&r, "share", "pass"), 4);
	cr_assert_eq(pod_rows(&r, "gpu", "pass"), 1);
	cr_assert_eq(pod_rows(&r, "overcommit", "pass"), 1);
	cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.doc, "deleted")));
	cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.doc, "ok")));
	cr_assert_eq(strlen(json_str(r.doc, "runId")), 8);
	/* every pod: the run's labels, the scheduler decides */
	const cJSON *p;
	cJSON_ArrayForEach(p, f.pods) {
		const cJSON *l = json_get2(p, "metadata", "labels");
		cr_assert_str_eq(json_str(l, "app.kubernetes.io/managed-by"), "gpuctl");
		cr_assert_str_eq(json_str(l, "gpuctl.io/smoke-run"), json_str(r.doc, "runId"));
		cr_assert_str_eq(json_str(l, "gpuctl.io/smoke-node"), "gpu-1");
	}
	const cJSON *same = check(&r, "smoke.same-gpu", "gpu-1");
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(same, "pods")), 4);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, two_gpus_on_a_one_gpu_node_fail_same_gpu)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.free_slots = 4;
	f.uuid2 = "GPU-00000000-0000-0000-0000-000000000002";
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	static const char *const args[] = { "--timeout", "20s", NULL };
	struct run r = run_smoke(ts, args);
	cr_assert_eq(r.code, 1, "stderr: %s", r.err);
	cr_assert_str_eq(status_of(&r, "smoke.same-gpu", "gpu-1"), "fail");
	cr_assert_eq(f.deletes, f.creates);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, busy_node_is_skipped_and_no_pod_is_created)
{
	struct fake f;
	fake_init(&f, shared_node);
	cJSON_Delete(f.busy);
	f.busy = yaml("- metadata: {name: train, namespace: ml}\n"
		      "  spec: {nodeName: gpu-1, containers: [{resources: {limits: {nvidia.com/gpu: '4'}}}]}\n"
		      "  status: {phase: Running}\n");
	f.ns_exists = 1;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	static const char *const args[] = { "gpu-1", NULL };
	struct run r = run_smoke(ts, args);
	cr_assert_eq(r.code, 0, "skips are allowed; stderr: %s", r.err);
	cr_assert_str_eq(status_of(&r, "smoke.gpu", "gpu-1"), "skip");
	cr_assert(strstr(json_str(check(&r, "smoke.gpu", "gpu-1"), "message"), "in use (4 of 4)"));
	cr_assert_eq(f.creates, 0);
	cr_assert_not(f.ns_created);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, image_pull_backoff_times_out_with_the_reason_and_cleans_up)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.pull_backoff = 1;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	static const char *const args[] = { "--timeout", "3s", "--image", "registry.invalid/cuda:1", NULL };
	struct run r = run_smoke(ts, args);
	cr_assert_eq(r.code, 1, "stderr: %s", r.err);
	const cJSON *c = check(&r, "smoke.gpu", "gpu-1");
	cr_assert_str_eq(json_str(c, "status"), "fail");
	cr_assert(strstr(json_str(c, "message"), "timed out"), "%s", json_str(c, "message"));
	cr_assert(strstr(json_str(c, "hint"), "ImagePullBackOff"), "%s", json_str(c, "hint"));
	cr_assert_str_eq(json_str(r.doc, "image"), "registry.invalid/cuda:1");
	const cJSON *p = cJSON_GetArrayItem(f.pods, 0);
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(json_get2(p, "spec", "containers"), 0), "image"),
			 "registry.invalid/cuda:1");
	cr_assert_eq(f.creates, 1, "the sharing pods wait for the single-GPU pod");
	cr_assert_eq(f.deletes, 1, "deleted on timeout too");
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, keep_leaves_the_pods_and_prints_the_command)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.free_slots = 4;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	static const char *const args[] = { "--keep", "--no-sharing", NULL };
	struct run r = run_smoke(ts, args);
	cr_assert_eq(r.code, 0, "stderr: %s", r.err);
	cr_assert_eq(f.creates, 1);
	cr_assert_eq(f.deletes, 0);
	char want[128];
	snprintf(want, sizeof(want), "kubectl delete pods -n gpuctl-smoke-test -l gpuctl.io/smoke-run=%s",
		 json_str(r.doc, "runId"));
	cr_assert(strstr(r.err, want), "%s", r.err);
	cr_assert_str_eq(status_of(&r, "smoke.concurrent", "gpu-1"), "skip");
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, missing_permission_stops_before_any_pod)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.deny = "create pods";
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	static const char *const args[] = { NULL };
	struct run r = run_smoke(ts, args);
	cr_assert_eq(r.code, 3, "stderr: %s", r.err);
	cr_assert(strstr(r.err, "create pods in namespace gpuctl-smoke-test"), "%s", r.err);
	cr_assert_eq(f.creates, 0);
	cr_assert_not(f.ns_created);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, interrupt_deletes_the_pods)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.pull_backoff = 1;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	sig_install();
	f.interrupts = 1;
	static const char *const args[] = { "--timeout", "30s", NULL };
	struct run r = run_smoke(ts, args);
	sig_raise_for_test(0);
	cr_assert_eq(r.code, 1, "stderr: %s", r.err);
	cr_assert(strstr(json_str(check(&r, "smoke.gpu", "gpu-1"), "message"), "interrupted"));
	cr_assert_eq(f.creates, 1);
	cr_assert_eq(f.deletes, 1);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, usage_errors)
{
	struct tls_server *ts = ts_start();
	static const char *const a1[] = { "--toleration", "x-", NULL };
	struct run r = run_smoke(ts, a1);
	cr_assert_eq(r.code, 2, "stderr: %s", r.err);
	run_free(&r);
	static const char *const a2[] = { "--pods", "-1", NULL };
	r = run_smoke(ts, a2);
	cr_assert_eq(r.code, 2);
	run_free(&r);
	cr_assert_eq(ts_nrequests(ts), 0, "no request on a usage error");
	ts_stop(ts);
}

Test(smoke_cmd, table_and_junit)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.free_slots = 4;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	char junit[] = "/tmp/gpuctl-smoke-junit-XXXXXX";
	int fd = mkstemp(junit);
	cr_assert_geq(fd, 0);
	close(fd);
	const char *args[] = { "--junit", junit, NULL };
	run_output = NULL;
	struct run r = run_smoke(ts, args);
	run_output = "json";
	cr_assert_eq(r.code, 0, "stderr: %s", r.err);
	if (getenv("SMOKE_SHOW"))
		fprintf(stderr, "%s", r.out);
	cr_assert(strstr(r.out, "CHECK"), "%s", r.out);
	cr_assert(strstr(r.out, "smoke.concurrent"), "%s", r.out);
	cr_assert(strstr(r.out, "gpu-1/gpuctl-smoke-"), "%s", r.out);
	cr_assert(strstr(r.out, "checks:"), "%s", r.out);
	struct buf x = BUF_INIT;
	struct gerr e = GERR_INIT;
	cr_assert_eq(buf_read_file(&x, junit, 1 << 20, &e), 0);
	cr_assert(strstr(x.s, "gpuctl smoke-test"), "%s", x.s);
	cr_assert(strstr(x.s, "smoke.overcommit"), "%s", x.s);
	buf_release(&x);
	unlink(junit);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, failed_removal_names_what_is_left)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.delete_fails = 1;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	static const char *const args[] = { "--no-sharing", NULL };
	struct run r = run_smoke(ts, args);
	cr_assert_eq(r.code, 1, "checks passed, but pods are left; stderr: %s", r.err);
	cr_assert_str_eq(status_of(&r, "smoke.gpu", "gpu-1"), "pass");
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(r.doc, "deleted")));
	cr_assert(strstr(r.err, "etcd is down"), "%s", r.err);
	const char *pod = json_str(cJSON_GetObjectItem(cJSON_GetArrayItem(f.pods, 0), "metadata"), "name");
	char want[256];
	snprintf(want, sizeof(want), "left in namespace gpuctl-smoke-test: pod/%s\n", pod);
	cr_assert(strstr(r.err, want), "%s", r.err);
	snprintf(want, sizeof(want), "kubectl delete pods -n gpuctl-smoke-test -l gpuctl.io/smoke-run=%s",
		 json_str(r.doc, "runId"));
	cr_assert(strstr(r.err, want), "%s", r.err);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, second_interrupt_leaves_the_pods_and_says_so)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.pull_backoff = 1;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	sig_install();
	f.interrupts = 2;
	static const char *const args[] = { "--timeout", "30s", NULL };
	struct run r = run_smoke(ts, args);
	sig_raise_for_test(0);
	cr_assert_eq(r.code, 1, "stderr: %s", r.err);
	cr_assert_eq(f.deletes, 0);
	cr_assert_eq(f.creates, 1);
	cr_assert(strstr(r.err, "kubectl delete pods -n gpuctl-smoke-test -l gpuctl.io/smoke-run="), "%s", r.err);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, measure_ships_the_load_and_reports_the_throughput)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.free_slots = 4;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	static const char *const args[] = { "--timeout", "20s", "--measure", "--measure-seconds", "2", NULL };
	struct run r = run_smoke(ts, args);
	cr_assert_not_null(r.doc, "stderr: %s", r.err);
	cr_assert_eq(r.code, 0, "stderr: %s", r.err);
	/* the ConfigMap holds gpuctl-gpuload's bytes */
	cr_assert_eq(f.cm_applies, 1);
	cJSON *cm = cJSON_Parse(f.cm_body);
	cr_assert_str_eq(json_str(cm, "kind"), "ConfigMap");
	cr_assert_str_eq(json_str(json_get2(cm, "metadata", "labels"), "app.kubernetes.io/managed-by"), "gpuctl");
	struct buf bin = BUF_INIT;
	cr_assert_eq(base64_decode(json_str(cJSON_GetObjectItem(cm, "binaryData"), "gpuctl-gpuload"), &bin), 0);
	size_t len = 0;
	const unsigned char *want = gpuload_binary(&len);
	cr_assert_gt(len, 0);
	cr_assert_eq(bin.len, len);
	cr_assert(!memcmp(bin.s, want, len), "the ConfigMap carries gpuload_binary()");
	buf_release(&bin);
	cJSON_Delete(cm);
	/* every pod but the extra one mounts it and runs the load; the sharing pods at one moment */
	const cJSON *p;
	const char *start = NULL;
	cJSON_ArrayForEach(p, f.pods) {
		const char *role = json_str(json_get2(p, "metadata", "labels"), "gpuctl.io/smoke-role");
		const cJSON *c = cJSON_GetArrayItem(json_get2(p, "spec", "containers"), 0);
		const char *script = cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "command"), 2));
		if (!strcmp(role, "overcommit"))
			continue;
		const cJSON *vol = cJSON_GetArrayItem(json_get2(p, "spec", "volumes"), 0);
		cr_assert_str_eq(json_str(cJSON_GetObjectItem(vol, "configMap"), "name"), "gpuctl-gpuload");
		cr_assert_not_null(strstr(script, "/opt/gpuctl/gpuctl-gpuload --seconds 2"), "%s", script);
		const char *at = strstr(script, "--start-at ");
		if (!strcmp(role, "gpu")) {
			cr_assert_null(at, "the single-GPU pod measures alone at once");
			continue;
		}
		cr_assert_not_null(at, "%s", script);
		if (!start)
			start = at;
		cr_assert_eq(strcspn(at, " |"), strcspn(start, " |"));
		cr_assert(!strncmp(at, start, strcspn(at + 11, " |") + 11), "the same moment: %s / %s", at, start);
	}
	const cJSON *m = check(&r, "smoke.measure", "gpu-1");
	cr_assert_str_eq(json_str(m, "status"), "pass", "%s", json_str(m, "message"));
	cr_assert_str_eq(json_str(m, "message"), "4 pods at once: 60.0 GFLOP/s in all (100% of one pod alone), each "
						 "15.0-15.0 GFLOP/s (share 25-25%), fairness 1.00");
	cr_assert_float_eq(cJSON_GetObjectItem(m, "fairness")->valuedouble, 1.0, 1e-9);
	cr_assert_float_eq(cJSON_GetObjectItem(m, "solo")->valuedouble, 60.0, 1e-9);
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(m, "pods")), 4);
	const cJSON *c;
	size_t rows = 0;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r.doc, "checks"))
		if (!strcmp(json_str(c, "id"), "pod") && !strcmp(json_str(c, "role"), "share")) {
			cr_assert_float_eq(cJSON_GetObjectItem(c, "gflops")->valuedouble, 15.0, 1e-9);
			cr_assert_eq(cJSON_GetObjectItem(c, "launches")->valueint, 100);
			cr_assert_not_null(strstr(json_str(c, "message"), ", 15.0 GFLOP/s"), "%s", json_str(c, "message"));
			rows++;
		}
	cr_assert_eq(rows, 4);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(smoke_cmd, measure_is_skipped_without_the_flag_and_seconds_are_bounded)
{
	struct fake f;
	fake_init(&f, shared_node);
	f.free_slots = 4;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	static const char *const args[] = { "--timeout", "20s", NULL };
	struct run r = run_smoke(ts, args);
	cr_assert_eq(r.code, 0, "stderr: %s", r.err);
	cr_assert_str_eq(status_of(&r, "smoke.measure", "gpu-1"), "skip");
	cr_assert_eq(f.cm_applies, 0, "no ConfigMap without --measure");
	run_free(&r);
	static const char *const a0[] = { "--measure", "--measure-seconds", "0", NULL };
	r = run_smoke(ts, a0);
	cr_assert_eq(r.code, 2, "stderr: %s", r.err);
	cr_assert_not_null(strstr(r.err, "--measure-seconds"), "%s", r.err);
	run_free(&r);
	static const char *const a1[] = { "--measure", "--measure-seconds", "601", NULL };
	r = run_smoke(ts, a1);
	cr_assert_eq(r.code, 2, "stderr: %s", r.err);
	run_free(&r);
	/* the seconds without --measure: a usage error, not silently ignored */
	static const char *const a2[] = { "--measure-seconds", "5", NULL };
	r = run_smoke(ts, a2);
	cr_assert_eq(r.code, 2, "stderr: %s", r.err);
	cr_assert_not_null(strstr(r.err, "--measure-seconds goes with --measure"), "%s", r.err);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}
