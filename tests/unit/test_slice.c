/* gpuctl slice, the whole command, against a small fake API server: an
 * in-memory store of nodes, the device plugin's ConfigMap and its pods,
 * with a stand-in for the device plugin and GFD that answers every write at
 * once (the node's capacity and its nvidia.com/gpu.* labels follow the
 * configuration its label or the default key names), so the wait ends at
 * the first LIST. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "gpuctl/json.h"
#include "gpuctl/yaml.h"
#include "tls_server.h"

struct fake {
	cJSON *nodes;    /* array */
	cJSON *cm;       /* or NULL */
	int plugin;      /* the stand-in answers */
	int cm_writes, node_writes, pod_deletes;
	int rv;
	cJSON *policy;           /* the GPU Operator's ClusterPolicy, or NULL */
	int policy_patches;
	const char *mig_result;  /* the MIG manager's answer to nvidia.com/mig.config: success, failed */
	char *cm_path;           /* where the ConfigMap was written */
	const char *foreign_image; /* a DaemonSet not gpuctl's runs this image, or NULL */
};

static cJSON *make_node(const char *name, int gpus, const char *extra_labels)
{
	char text[512];
	snprintf(text, sizeof(text),
		 "metadata: {name: %s, resourceVersion: '1', labels: {nvidia.com/gpu.present: 'true'%s}}\n"
		 "status: {capacity: {nvidia.com/gpu: '%d'}, allocatable: {nvidia.com/gpu: '%d'}}\n",
		 name, extra_labels ? extra_labels : "", gpus, gpus);
	cJSON *n = NULL;
	struct gerr e = GERR_INIT;
	cr_assert_eq(yaml_parse(text, strlen(text), "node", &n, &e), 0, "%s", e.msg);
	cJSON_AddNumberToObject(n, "physical", gpus); /* the stand-in's truth, never read by gpuctl */
	return n;
}

static cJSON *labels_of(cJSON *node)
{
	cJSON *md = cJSON_GetObjectItemCaseSensitive(node, "metadata");
	cJSON *l = cJSON_GetObjectItemCaseSensitive(md, "labels");
	if (!l)
		l = cJSON_AddObjectToObject(md, "labels");
	return l;
}

static void set_str(cJSON *obj, const char *key, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	if (v)
		cJSON_AddStringToObject(obj, key, v);
}

/* The kubelet's node status: every device the plugin lists is healthy. */
static void healthy(cJSON *n)
{
	cJSON *st = cJSON_GetObjectItemCaseSensitive(n, "status");
	cJSON_ReplaceItemInObjectCaseSensitive(st, "allocatable",
					       cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(st, "capacity"), 1));
}

/* The device plugin and GFD, simulated: what each node advertises. */
static void plugin_answer(struct fake *f)
{
	if (!f->plugin)
		return;
	cJSON *n;
	cJSON_ArrayForEach(n, f->nodes) {
		const char *key = json_str(labels_of(n), "nvidia.com/device-plugin.config");
		const char *text = json_str(cJSON_GetObjectItemCaseSensitive(f->cm, "data"), key ? key : "any");
		const char *mig = json_str(labels_of(n), "nvidia.com/mig.config");
		if (mig && f->mig_result) {
			/* the MIG manager: every GPU cut into 7 1g.10gb devices */
			set_str(labels_of(n), "nvidia.com/mig.config.state", f->mig_result);
			cJSON *cfg0 = NULL;
			struct gerr e0 = GERR_INIT;
			if (text && yaml_parse(text, strlen(text), "cfg", &cfg0, &e0) == 0)
				set_str(labels_of(n), "nvidia.com/mig.strategy",
					json_str(cJSON_GetObjectItemCaseSensitive(cfg0, "flags"), "migStrategy"));
			gerr_clear(&e0);
			cJSON_Delete(cfg0);
			if (!strcmp(f->mig_result, "success")) {
				cJSON *cap = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "status"),
									      "capacity");
				set_str(cap, "nvidia.com/gpu", NULL);
				char c[16];
				snprintf(c, sizeof(c), "%d", 7 * cJSON_GetObjectItemCaseSensitive(n, "physical")->valueint);
				set_str(cap, "nvidia.com/mig-1g.10gb", c);
				healthy(n);
			}
			continue;
		}
		cJSON *cfg = NULL;
		struct gerr e = GERR_INIT;
		if (!text || yaml_parse(text, strlen(text), "cfg", &cfg, &e) < 0) {
			gerr_clear(&e);
			continue;
		}
		const cJSON *sh = cJSON_GetObjectItemCaseSensitive(cfg, "sharing");
		const cJSON *rr = cJSON_GetObjectItemCaseSensitive(sh, "mps");
		const char *strategy = rr ? "mps" : "time-slicing";
		if (!rr)
			rr = cJSON_GetObjectItemCaseSensitive(sh, "timeSlicing");
		int replicas = 1;
		if (rr)
			replicas = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(
						   cJSON_GetObjectItemCaseSensitive(rr, "resources"), 0), "replicas")->valueint;
		else
			strategy = "none";
		int rename = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rr, "renameByDefault"));
		char count[32], rep[16];
		snprintf(count, sizeof(count), "%d", cJSON_GetObjectItemCaseSensitive(n, "physical")->valueint * replicas);
		snprintf(rep, sizeof(rep), "%d", replicas);
		cJSON *cap = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "status"), "capacity");
		set_str(cap, "nvidia.com/gpu", rename ? NULL : count);
		set_str(cap, "nvidia.com/gpu.shared", rename ? count : NULL);
		set_str(labels_of(n), "nvidia.com/gpu.replicas", rep);
		set_str(labels_of(n), "nvidia.com/gpu.sharing-strategy", strategy);
		healthy(n);
		cJSON_Delete(cfg);
	}
}

static cJSON *find_node(struct fake *f, const char *name)
{
	cJSON *n;
	cJSON_ArrayForEach(n, f->nodes)
		if (!strcmp(node_name(n), name))
			return n;
	return NULL;
}

static void reply_json(struct ts_reply *out, int status, const cJSON *obj)
{
	char *s = cJSON_PrintUnformatted(obj);
	ts_reply_set(out, status, "Content-Type: application/json", s);
	free(s);
}

static void reply_list(struct ts_reply *out, cJSON *items)
{
	cJSON *l = cJSON_CreateObject();
	cJSON_AddStringToObject(l, "kind", "List");
	cJSON_AddItemToObject(cJSON_AddObjectToObject(l, "metadata"), "resourceVersion", cJSON_CreateString("5"));
	cJSON_AddItemToObject(l, "items", items);
	reply_json(out, 200, l);
	cJSON_Delete(l);
}

static void not_found(struct ts_reply *out)
{
	ts_reply_set(out, 404, "Content-Type: application/json",
		     "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404,\"message\":\"not found\"}");
}

/* A JSON patch on a node's labels and annotations: test ops pass,
 * add/replace/remove of the whole map or of one key. */
static void patch_labels(cJSON *node, const cJSON *ops)
{
	const cJSON *op;
	cJSON *md = cJSON_GetObjectItemCaseSensitive(node, "metadata");
	cJSON_ArrayForEach(op, ops) {
		const char *o = json_str(op, "op"), *p = json_str(op, "path");
		if (!strcmp(o, "test"))
			continue;
		const char *map = !strncmp(p, "/metadata/labels", 16) ? "labels" : "annotations";
		size_t plen = strlen("/metadata/") + strlen(map);
		cr_assert(!strncmp(p, "/metadata/", 10) && !strncmp(p + 10, map, strlen(map)), "patch path %s", p);
		if (!p[plen]) {
			cJSON_DeleteItemFromObjectCaseSensitive(md, map);
			if (strcmp(o, "remove"))
				cJSON_AddItemToObject(md, map, cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(op, "value"), 1));
			continue;
		}
		cr_assert(p[plen] == '/', "patch path %s", p);
		char key[256];
		size_t k = 0;
		for (const char *c = p + plen + 1; *c && k < sizeof(key) - 1; c++) {
			if (c[0] == '~' && c[1] == '1') {
				key[k++] = '/';
				c++;
			} else if (c[0] == '~' && c[1] == '0') {
				key[k++] = '~';
				c++;
			} else {
				key[k++] = *c;
			}
		}
		key[k] = 0;
		cJSON *m = cJSON_GetObjectItemCaseSensitive(md, map);
		cr_assert(cJSON_IsObject(m), "patch %s under a missing %s", p, map);
		set_str(m, key, strcmp(o, "remove") ? json_str(op, "value") : NULL);
	}
}


static void route(void *ud, const struct ts_request *req, struct ts_reply *out)
{
	struct fake *f = ud;
	const char *p = req->path;
	if (!strcmp(req->method, "GET") && !strncmp(p, "/api/v1/nodes?", 14)) {
		cJSON *items = cJSON_CreateArray();
		cJSON *n;
		const char *fs = strstr(p, "fieldSelector=metadata.name%3D");
		cJSON_ArrayForEach(n, f->nodes) {
			if (fs) {
				const char *want = fs + strlen("fieldSelector=metadata.name%3D");
				size_t len = strcspn(want, "&");
				if (strlen(node_name(n)) != len || strncmp(want, node_name(n), len))
					continue;
			}
			cJSON_AddItemToArray(items, cJSON_Duplicate(n, 1));
		}
		reply_list(out, items);
		return;
	}
	if (!strncmp(p, "/api/v1/nodes/", 14)) {
		char name[128];
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(p + 14, "?"), p + 14);
		cJSON *n = find_node(f, name);
		if (!n)
			return not_found(out);
		if (!strcmp(req->method, "PATCH")) {
			cJSON *ops = cJSON_Parse(req->body);
			if (!strstr(p, "dryRun=All")) {
				patch_labels(n, ops);
				f->node_writes++;
				plugin_answer(f);
			}
			cJSON_Delete(ops);
		}
		return reply_json(out, 200, n);
	}
	if (!strcmp(req->method, "GET") && !strncmp(p, "/apis/apps/v1/daemonsets", 24)) {
		cJSON *items = cJSON_CreateArray();
		if (f->foreign_image) {
			char text[512];
			snprintf(text, sizeof(text),
				 "{\"metadata\":{\"name\":\"nvidia-device-plugin-daemonset\",\"namespace\":\"kube-system\"},"
				 "\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"p\",\"image\":\"%s\"}]}}}}",
				 f->foreign_image);
			cJSON_AddItemToArray(items, cJSON_Parse(text));
		}
		reply_list(out, items);
		return;
	}
	if (!strncmp(p, "/apis/nvidia.com/v1/clusterpolicies", 35)) {
		if (!f->policy)
			return not_found(out);
		if (!strcmp(req->method, "PATCH")) {
			cJSON *want = cJSON_Parse(req->body);
			cJSON *dp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(f->policy, "spec"),
								    "devicePlugin");
			cJSON_DeleteItemFromObjectCaseSensitive(dp, "config");
			cJSON_AddItemToObject(dp, "config",
					      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
								      json_get2(want, "spec", "devicePlugin"), "config"), 1));
			cJSON_Delete(want);
			f->policy_patches++;
			return reply_json(out, 200, f->policy);
		}
		cJSON *items = cJSON_CreateArray();
		cJSON_AddItemToArray(items, cJSON_Duplicate(f->policy, 1));
		return reply_list(out, items);
	}
	if (strstr(p, "/configmaps/nvidia-device-plugin-configs")) {
		if (!strcmp(req->method, "PATCH")) {
			cJSON *want = cJSON_Parse(req->body);
			cr_assert(want, "apply body is JSON: %s", req->body);
			if (!strstr(p, "dryRun=All")) {
				cJSON_Delete(f->cm);
				f->cm = want;
				f->cm_writes++;
				free(f->cm_path);
				f->cm_path = xstrndup(p, strcspn(p, "?"));
				plugin_answer(f);
				return reply_json(out, 200, f->cm);
			}
			reply_json(out, 200, want);
			cJSON_Delete(want);
			return;
		}
		if (!f->cm)
			return not_found(out);
		return reply_json(out, 200, f->cm);
	}
	if (strstr(p, "/pods?")) {
		cJSON *items = cJSON_CreateArray();
		const char *text = "[{metadata: {name: dp-1, namespace: nvidia-device-plugin}, spec: {nodeName: gpu-1}},"
				   " {metadata: {name: dp-2, namespace: nvidia-device-plugin}, spec: {nodeName: gpu-2}}]";
		cJSON *pods = NULL;
		struct gerr e = GERR_INIT;
		cr_assert_eq(yaml_parse(text, strlen(text), "pods", &pods, &e), 0);
		cJSON_Delete(items);
		reply_list(out, pods);
		return;
	}
	if (!strcmp(req->method, "DELETE") && strstr(p, "/pods/")) {
		f->pod_deletes++;
		ts_reply_set(out, 200, "Content-Type: application/json", "{\"kind\":\"Status\",\"status\":\"Success\"}");
		return;
	}
}

static const char any_none[] = "version: v1\nflags:\n  migStrategy: none\n";

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->nodes = cJSON_CreateArray();
	/* gpu-1 with GFD's count label; gpu-2 without: its 4 GPUs come from the capacity */
	cJSON_AddItemToArray(f->nodes, make_node("gpu-1", 2, ", nvidia.com/gpu.count: '2'"));
	cJSON_AddItemToArray(f->nodes, make_node("gpu-2", 4, NULL));
	const char *cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nvidia-device-plugin-configs\n"
			 "  namespace: nvidia-device-plugin\n  labels: {app.kubernetes.io/managed-by: gpuctl, "
			 "gpuctl.io/component: deploy}\n";
	struct gerr e = GERR_INIT;
	cr_assert_eq(yaml_parse(cm, strlen(cm), "cm", &f->cm, &e), 0);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(f->cm, "data"), "any", any_none);
	f->plugin = 1;
}

static void fake_release(struct fake *f);

struct run {
	int code;
	cJSON *doc;
	char *out; /* stdout as text */
	char *err;
};

static const char *run_output = "json";

/* Run gpuctl slice ARGS... -o json against the fake; stdout parsed, stderr kept. */
static struct run run_slice(struct tls_server *ts, const char *profiles_yaml, const char *const *args)
{
	char kcfg[PATH_MAX];
	ts_write_kubeconfig(kcfg, ts_url(ts), ts_ca_pem(ts));
	struct gctx g = { .prog = "gpuctl slice", .output = run_output };
	g.kopts.kubeconfig = kcfg;
	g.kopts.max_retries = 0;
	g.kopts.request_timeout_ms = 10000;
	struct gerr e = GERR_INIT;
	if (profiles_yaml)
		cr_assert_eq(yaml_parse(profiles_yaml, strlen(profiles_yaml), "config", &g.config, &e), 0);
	else
		g.config = cJSON_CreateObject();
	char *argv[32];
	int argc = 0;
	argv[argc++] = (char *)"slice";
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
	r.code = cmd_slice(&g, argc, argv);
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

static const cJSON *item(const struct run *r, const char *name)
{
	const cJSON *n;
	cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(r->doc, "nodes"))
		if (!strcmp(json_str(n, "name"), name))
			return n;
	cr_assert_fail("no item %s in the document", name);
	return NULL;
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	cr_assert(cJSON_IsNumber(v), "%s is a number", k);
	return v->valuedouble;
}

static const char *cm_data(struct fake *f, const char *key)
{
	return json_str(cJSON_GetObjectItemCaseSensitive(f->cm, "data"), key);
}

Test(slice_cmd, default_key_4_then_8_then_none_then_unchanged)
{
	struct fake f;
	fake_init(&f);
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	static const struct {
		const char *args[4];
		int replicas;
		const char *strategy;
	} steps[] = {
		{ { "--replicas", "4", NULL }, 4, "time-slicing" },
		{ { "--profile", "high-density", NULL }, 8, "time-slicing" },
		{ { "none", NULL }, 1, "none" },
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct run r = run_slice(ts, NULL, steps[i].args);
		cr_assert_eq(r.code, 0, "step %zu: %s", i, r.err);
		cr_assert(r.doc, "step %zu: a JSON document", i);
		cr_expect_str_eq(json_str(r.doc, "kind"), "SliceResult");
		const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(r.doc, "config");
		cr_expect_str_eq(json_str(cfg, "key"), "any", "the default key changes");
		cr_expect_str_eq(json_str(cfg, "result"), "configured");
		const cJSON *g1 = item(&r, "gpu-1"), *g2 = item(&r, "gpu-2");
		cr_expect_str_eq(json_str(g1, "result"), "changed");
		cr_expect_eq(num(g1, "after"), 2 * steps[i].replicas);
		cr_expect_eq(num(g2, "after"), 4 * steps[i].replicas, "gpu-2's GPUs from its capacity and replicas before");
		cr_expect_eq(num(g2, "replicas"), steps[i].replicas);
		cr_expect_str_eq(json_str(g2, "strategy"), steps[i].strategy);
		cr_expect_eq(num(g1, "restartedPods"), 1, "the plugin's pod on the node restarted: its config text changed");
		if (!strcmp(steps[i].strategy, "time-slicing"))
			cr_expect(strstr(r.err, "no memory or fault isolation"), "%s", r.err);
		run_free(&r);
	}
	cr_expect_str_eq(cm_data(&f, "any"), any_none, "none is the plugin's unshared config");
	cr_expect_null(json_str(labels_of(find_node(&f, "gpu-1")), "nvidia.com/device-plugin.config"));
	/* again: nothing written */
	int writes = f.cm_writes + f.node_writes, deletes = f.pod_deletes;
	const char *none_args[] = { "none", NULL };
	struct run r = run_slice(ts, NULL, none_args);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_expect_str_eq(json_str(cJSON_GetObjectItemCaseSensitive(r.doc, "config"), "result"), "unchanged");
	cr_expect_str_eq(json_str(item(&r, "gpu-1"), "result"), "unchanged");
	cr_expect_str_eq(json_str(item(&r, "gpu-2"), "result"), "unchanged");
	cr_expect_eq(f.cm_writes + f.node_writes, writes, "a second run writes nothing");
	cr_expect_eq(f.pod_deletes, deletes, "and restarts nothing");
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(slice_cmd, per_node_key_and_label)
{
	struct fake f;
	fake_init(&f);
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	const char *args[] = { "mps", "--replicas", "3", "gpu-2", NULL };
	cJSON_AddStringToObject(labels_of(find_node(&f, "gpu-2")), "nvidia.com/gpu.compute.major", "8");
	struct run r = run_slice(ts, NULL, args);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_expect_str_eq(json_str(cJSON_GetObjectItemCaseSensitive(r.doc, "config"), "key"), "mps-3");
	cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r.doc, "nodes")), 1, "only the node named");
	cr_expect_eq(num(item(&r, "gpu-2"), "after"), 12);
	cr_expect_str_eq(json_str(labels_of(find_node(&f, "gpu-2")), "nvidia.com/device-plugin.config"), "mps-3");
	cr_expect_null(json_str(labels_of(find_node(&f, "gpu-1")), "nvidia.com/device-plugin.config"));
	/* MPS is recorded on the node (cleanup resets the compute mode only there) */
	const cJSON *ann2 = json_get2(find_node(&f, "gpu-2"), "metadata", "annotations");
	cr_expect(json_str(ann2, "gpuctl.io/mps") && strlen(json_str(ann2, "gpuctl.io/mps")) == 20, "gpuctl.io/mps: %s",
		  json_str(ann2, "gpuctl.io/mps"));
	cr_expect(json_str(ann2, "gpuctl.io/added-labels") && strstr(json_str(ann2, "gpuctl.io/added-labels"), "device-plugin.config"),
		  "the label record is kept beside it");
	cr_expect_null(json_str(json_get2(find_node(&f, "gpu-1"), "metadata", "annotations"), "gpuctl.io/mps"));
	cr_expect_str_eq(cm_data(&f, "any"), any_none, "the default key is kept");
	cr_expect(strstr(cm_data(&f, "mps-3"), "mps:"), "%s", cm_data(&f, "mps-3"));
	run_free(&r);
	/* the default now: gpu-2 has its own config and is left alone */
	const char *def[] = { "--replicas", "2", NULL };
	r = run_slice(ts, NULL, def);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_expect_str_eq(json_str(item(&r, "gpu-2"), "result"), "skipped");
	cr_expect_str_eq(json_str(item(&r, "gpu-1"), "result"), "changed");
	cr_expect_str_eq(json_str(labels_of(find_node(&f, "gpu-2")), "nvidia.com/gpu.replicas"), "3");
	run_free(&r);
	/* a profile from the config file, renamed */
	const char *prof[] = { "--profile", "inference", "--rename", "gpu-1", NULL };
	r = run_slice(ts, "slice: {profiles: {inference: 6}}", prof);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_expect_str_eq(json_str(cJSON_GetObjectItemCaseSensitive(r.doc, "config"), "key"), "ts-6-rename");
	cr_expect_str_eq(json_str(item(&r, "gpu-1"), "resource"), "nvidia.com/gpu.shared");
	cr_expect_eq(num(item(&r, "gpu-1"), "after"), 12);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(slice_cmd, rejected_node_changes_nothing)
{
	struct fake f;
	fake_init(&f);
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	cJSON_AddStringToObject(labels_of(find_node(&f, "gpu-1")), "nvidia.com/mig.strategy", "mixed");
	const char *args[] = { "mps", "--replicas", "2", NULL };
	struct run r = run_slice(ts, NULL, args);
	cr_expect_eq(r.code, 1);
	cr_expect(strstr(r.err, "node gpu-1: MPS with MIG enabled"), "%s", r.err);
	cr_expect(strstr(r.err, "nothing was changed"), "%s", r.err);
	cr_expect_str_eq(json_str(item(&r, "gpu-1"), "result"), "failed");
	cr_expect_str_eq(json_str(item(&r, "gpu-2"), "result"), "skipped");
	cr_expect_eq(f.cm_writes + f.node_writes + f.pod_deletes, 0, "nothing written");
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(slice_cmd, dry_runs_write_nothing)
{
	struct fake f;
	fake_init(&f);
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	const char *modes[] = { "--dry-run=client", "--dry-run=server" };
	for (int i = 0; i < 2; i++) {
		const char *args[] = { "--replicas", "4", "gpu-1", modes[i], NULL };
		struct run r = run_slice(ts, NULL, args);
		cr_assert_eq(r.code, 0, "%s", r.err);
		cr_expect_str_eq(json_str(item(&r, "gpu-1"), "result"), "changed");
		cr_expect_eq(num(item(&r, "gpu-1"), "after"), 8, "what is expected");
		run_free(&r);
	}
	cr_expect_eq(f.cm_writes + f.node_writes, 0);
	cr_expect_null(cm_data(&f, "ts-4"));
	ts_stop(ts);
	fake_release(&f);
}

Test(slice_cmd, no_configmap_means_no_plugin)
{
	struct fake f;
	fake_init(&f);
	cJSON_Delete(f.cm);
	f.cm = NULL;
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	const char *args[] = { "--replicas", "4", NULL };
	struct run r = run_slice(ts, NULL, args);
	cr_expect_eq(r.code, 1);
	cr_expect(strstr(r.err, "is the device plugin deployed?"), "%s", r.err);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(slice_cmd, lines_for_a_person)
{
	struct fake f;
	fake_init(&f);
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	run_output = NULL;
	const char *args[] = { "--replicas", "4", NULL };
	struct run r = run_slice(ts, NULL, args);
	run_output = "json";
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_expect(strstr(r.out, "configmap/nvidia-device-plugin-configs  configured  key any\n"), "%s", r.out);
	cr_expect(strstr(r.out, "node/gpu-1  sliced    nvidia.com/gpu 2 -> 8 (time-slicing x4), config any\n"), "%s", r.out);
	cr_expect(strstr(r.out, "node/gpu-2  sliced    nvidia.com/gpu 4 -> 16 (time-slicing x4), config any, GFD labels not checked (no "
			   "gpu-feature-discovery labels on the node)\n"), "%s", r.out);
	cr_expect(strstr(r.err, "2 node(s): 2 sliced, 0 unchanged, 0 failed"), "%s", r.err);
	cr_expect(strstr(r.err, "note: time-slicing gives no memory or fault isolation"), "%s", r.err);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

static void fake_operator(struct fake *f, const char *mig_result)
{
	fake_init(f);
	cJSON_Delete(f->cm);
	f->cm = NULL; /* the operator's namespace has none yet */
	const char *pol = "metadata: {name: cluster-policy}\nspec: {devicePlugin: {enabled: true}}\n"
			  "status: {namespace: gpu-operator, state: ready}\n";
	struct gerr e = GERR_INIT;
	cr_assert_eq(yaml_parse(pol, strlen(pol), "policy", &f->policy, &e), 0);
	f->mig_result = mig_result;
}

static void fake_release(struct fake *f)
{
	cJSON_Delete(f->nodes);
	cJSON_Delete(f->cm);
	cJSON_Delete(f->policy);
	free(f->cm_path);
}

Test(slice_cmd, operator_mig_mixed_waits_for_the_mig_manager)
{
	struct fake f;
	fake_operator(&f, "success");
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	const char *args[] = { "mig", "--mig-strategy", "mixed", "--mig-config", "all-1g.10gb", "gpu-1", NULL };
	struct run r = run_slice(ts, NULL, args);
	cr_assert_eq(r.code, 0, "%s", r.err);
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.doc, "operator")));
	const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(r.doc, "config");
	cr_expect_str_eq(json_str(cfg, "namespace"), "gpu-operator");
	cr_expect_str_eq(json_str(cfg, "key"), "mig-mixed");
	cr_expect_str_eq(json_str(cfg, "result"), "created");
	cr_expect_str_eq(f.cm_path, "/api/v1/namespaces/gpu-operator/configmaps/nvidia-device-plugin-configs");
	cr_expect_eq(f.policy_patches, 1, "the ClusterPolicy names the ConfigMap");
	const cJSON *pc = cJSON_GetObjectItemCaseSensitive(json_get2(f.policy, "spec", "devicePlugin"), "config");
	cr_expect_str_eq(json_str(pc, "name"), "nvidia-device-plugin-configs");
	cr_expect_str_eq(json_str(pc, "default"), "any");
	cJSON *n = find_node(&f, "gpu-1");
	cr_expect_str_eq(json_str(labels_of(n), "nvidia.com/mig.config"), "all-1g.10gb");
	cr_expect_str_eq(json_str(labels_of(n), "nvidia.com/device-plugin.config"), "mig-mixed");
	const cJSON *it = item(&r, "gpu-1");
	cr_expect_str_eq(json_str(it, "resource"), "nvidia.com/mig-1g.10gb");
	cr_expect_eq(num(it, "after"), 14);
	cr_expect_str_eq(json_str(it, "strategy"), "mixed");
	run_free(&r);
	/* MIG needs the layout with the operator */
	const char *bad[] = { "mig", "gpu-1", NULL };
	r = run_slice(ts, NULL, bad);
	cr_expect_eq(r.code, 2);
	cr_expect(strstr(r.err, "--mig-config"), "%s", r.err);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(slice_cmd, operator_mig_failed_is_an_error)
{
	struct fake f;
	fake_operator(&f, "failed");
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	const char *args[] = { "mig", "--mig-config", "all-1g.10gb", "gpu-2", NULL };
	run_output = NULL;
	struct run r = run_slice(ts, NULL, args);
	run_output = "json";
	cr_expect_eq(r.code, 1);
	cr_expect(strstr(r.out, "node/gpu-2  failed"), "%s", r.out);
	cr_expect(strstr(r.err, "could not apply all-1g.10gb (nvidia.com/mig.config.state=failed)"), "%s", r.err);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}

Test(slice_cmd, a_foreign_device_plugin_is_refused_and_nothing_changes)
{
	struct fake f;
	fake_init(&f);
	f.foreign_image = "nvcr.io/nvidia/k8s-device-plugin:v0.17.2";
	struct tls_server *ts = ts_start();
	ts_set_route(ts, route, &f);
	const char *args[] = { "--replicas", "4", NULL };
	struct run r = run_slice(ts, NULL, args);
	cr_assert_eq(r.code, 1, "%s", r.err);
	cr_expect(strstr(r.err, "kube-system/nvidia-device-plugin-daemonset"), "%s", r.err);
	cr_expect_eq(f.cm_writes, 0);
	cr_expect_eq(f.node_writes, 0);
	run_free(&r);
	ts_stop(ts);
	fake_release(&f);
}
