/* Checks of the GPU stack through the API: the device plugin, its sharing
 * configuration, conflicting components, the DCGM exporter, and per GPU
 * node its labels, taints, plugin pod, GPU health and sharing in use.
 *
 * A constant number of requests however many nodes: one LIST of DaemonSets
 * in every namespace, one LIST of pods per NVIDIA DaemonSet found (by its
 * selector; each pod pruned with kube_pod_prune as its page arrives), one
 * GET of the plugin's configurations and, when the DCGM exporter runs, one
 * GET of its metrics (stack_read_metrics, from a pod on a judged node).
 * The judgements are pure functions of what was read (stack_judge), so they
 * are unit-tested without a server. */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/check.h"
#include "gpuctl/gpustack.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/nodes.h"
#include "gpuctl/owned.h"
#include "gpuctl/plan.h"
#include "gpuctl/sharing.h"
#include "gpuctl/yaml.h"


static int ctr_image_has(const cJSON *spec, const char *needle)
{
	static const char *const lists[] = { "containers", "initContainers" };
	for (int l = 0; l < 2; l++) {
		const cJSON *c;
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, lists[l])) {
			const char *img = json_str(c, "image");
			if (img && strstr(img, needle))
				return 1;
		}
	}
	return 0;
}

static const cJSON *pod_spec(const cJSON *ds)
{
	return cJSON_GetObjectItemCaseSensitive(json_get2(ds, "spec", "template"), "spec");
}

/* obj.a.b as a string, or NULL */
static const char *str2(const cJSON *obj, const char *a, const char *b)
{
	return json_str(cJSON_GetObjectItemCaseSensitive(obj, a), b);
}

enum stack_ds_kind stack_ds_classify(const cJSON *ds)
{
	const cJSON *spec = pod_spec(ds);
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
		if (gpustack_runs_plugin(c))
			return STACK_DS_PLUGIN;
	if (ctr_image_has(spec, "gpu-feature-discovery"))
		return STACK_DS_GFD;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers")) {
		const cJSON *a;
		cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(c, "command"))
			if (cJSON_IsString(a) && strstr(a->valuestring, "gpu-feature-discovery"))
				return STACK_DS_GFD;
	}
	if (ctr_image_has(spec, "dcgm-exporter"))
		return STACK_DS_DCGM;
	if (ctr_image_has(spec, "k8s-dra-driver"))
		return STACK_DS_DRA;
	const char *name = json_str(cJSON_GetObjectItemCaseSensitive(ds, "metadata"), "name");
	if (ctr_image_has(spec, "/driver:") || (name && !strcmp(name, "nvidia-driver-daemonset")))
		return STACK_DS_DRIVER;
	return STACK_DS_OTHER;
}

static const char *meta(const cJSON *o, const char *k)
{
	return json_str(cJSON_GetObjectItemCaseSensitive(o, "metadata"), k);
}

/* "ns/name", new */
static char *ds_id(const cJSON *ds)
{
	return xasprintf("%s/%s", meta(ds, "namespace") ? meta(ds, "namespace") : "", meta(ds, "name") ? meta(ds, "name") : "");
}

/* The pod of a DaemonSet on node (borrowed from pods), NULL when none. */
static const cJSON *pod_on(const cJSON *pods, const char *node)
{
	const cJSON *p, *best = NULL;
	cJSON_ArrayForEach(p, pods) {
		const char *n = str2(p, "spec", "nodeName");
		if (!n || strcmp(n, node))
			continue;
		/* a terminating pod loses to its successor */
		if (!best || !json_get2(p, "metadata", "deletionTimestamp"))
			best = p;
	}
	return best;
}

static int pod_ready(const cJSON *pod)
{
	const char *phase = str2(pod, "status", "phase");
	if (!phase || strcmp(phase, "Running"))
		return 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, json_get2(pod, "status", "conditions")) {
		const char *t = json_str(c, "type"), *s = json_str(c, "status");
		if (t && s && !strcmp(t, "Ready"))
			return !strcmp(s, "True");
	}
	return 0;
}

/* Why a pod is not ready, as the kubelet says it: "CrashLoopBackOff: ...". */
static void pod_why(const cJSON *pod, struct buf *b)
{
	static const char *const lists[] = { "initContainerStatuses", "containerStatuses" };
	for (int l = 0; l < 2; l++) {
		const cJSON *cs;
		cJSON_ArrayForEach(cs, json_get2(pod, "status", lists[l])) {
			const cJSON *w = json_get2(cs, "state", "waiting");
			const cJSON *t = json_get2(cs, "state", "terminated");
			const cJSON *st = w ? w : t;
			if (st && !(t && json_str(t, "reason") && !strcmp(json_str(t, "reason"), "Completed"))) {
				buf_addf(b, "container %s %s%s%s", json_str(cs, "name") ? json_str(cs, "name") : "?",
					 json_str(st, "reason") ? json_str(st, "reason") : (w ? "waiting" : "terminated"),
					 json_str(st, "message") ? ": " : "", json_str(st, "message") ? json_str(st, "message") : "");
				return;
			}
		}
	}
	buf_addf(b, "phase %s", str2(pod, "status", "phase") ? str2(pod, "status", "phase") : "unknown");
}

/* The plugin DaemonSet's configurations: the ConfigMap mounted where the
 * config-manager reads them, and its DEFAULT_CONFIG. */
static void plugin_configs(const cJSON *ds, const char **cm, const char **def)
{
	const cJSON *spec = pod_spec(ds);
	const char *vol = NULL;
	static const char *const lists[] = { "containers", "initContainers" };
	*cm = *def = NULL;
	for (int l = 0; l < 2; l++) {
		const cJSON *c;
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, lists[l])) {
			const cJSON *e, *srcdir = NULL;
			cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "env")) {
				const char *n = json_str(e, "name");
				if (n && !strcmp(n, "DEFAULT_CONFIG") && json_str(e, "value"))
					*def = json_str(e, "value");
				if (n && !strcmp(n, "CONFIG_FILE_SRCDIR"))
					srcdir = e;
			}
			const cJSON *m;
			cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(c, "volumeMounts"))
				if (srcdir && json_str(m, "mountPath") && json_str(srcdir, "value") &&
				    !strcmp(json_str(m, "mountPath"), json_str(srcdir, "value")))
					vol = json_str(m, "name");
		}
	}
	const cJSON *v;
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(spec, "volumes")) {
		const char *n = json_str(v, "name");
		if (n && vol && !strcmp(n, vol))
			*cm = str2(v, "configMap", "name");
	}
}

/* ---- the judgements ---- */

static size_t count_kind(const struct stack_view *sv, enum stack_ds_kind k)
{
	size_t n = 0;
	for (size_t i = 0; i < sv->n; i++)
		n += sv->v[i].kind == k;
	return n;
}

static const struct stack_ds *first_kind(const struct stack_view *sv, enum stack_ds_kind k)
{
	for (size_t i = 0; i < sv->n; i++)
		if (sv->v[i].kind == k)
			return &sv->v[i];
	return NULL;
}

static long ds_status(const cJSON *ds, const char *k)
{
	const cJSON *v = json_get2(ds, "status", k);
	return cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
}

static void judge_plugin(const struct stack_view *sv, struct check_report *r)
{
	size_t n = count_kind(sv, STACK_DS_PLUGIN);
	if (!n) {
		check_add(r, "cluster.device-plugin", "cluster", CHECK_FAIL,
			  "gpuctl deploy installs it (or install the GPU Operator)",
			  "no NVIDIA device plugin DaemonSet in any namespace");
		return;
	}
	struct buf b = BUF_INIT;
	int bad = 0;
	for (size_t i = 0; i < sv->n; i++) {
		if (sv->v[i].kind != STACK_DS_PLUGIN)
			continue;
		char *id = ds_id(sv->v[i].ds);
		long want = ds_status(sv->v[i].ds, "desiredNumberScheduled"), ready = ds_status(sv->v[i].ds, "numberReady");
		bad |= want == 0 || ready < want;
		buf_addf(&b, "%s%s ready on %ld of %ld node%s", b.len ? "; " : "", id, ready, want, want == 1 ? "" : "s");
		free(id);
	}
	if (bad)
		check_add(r, "cluster.device-plugin", "cluster", CHECK_FAIL,
			  "see the node.device-plugin results for each node, and the pods' logs", "%s", b.s);
	else
		check_add(r, "cluster.device-plugin", "cluster", CHECK_PASS, NULL, "%s", b.s);
	buf_release(&b);
}

/* Nodes on which a pod of each of two kinds runs, as "a, b" (new), or NULL. */
static char *both_on(const struct stack_view *sv, enum stack_ds_kind x, enum stack_ds_kind y)
{
	struct buf b = BUF_INIT;
	const struct stack_ds *a = first_kind(sv, x), *c = first_kind(sv, y);
	if (!a || !c)
		return NULL;
	const cJSON *p;
	cJSON_ArrayForEach(p, a->pods) {
		const char *n = str2(p, "spec", "nodeName");
		if (n && pod_on(c->pods, n) && !strstr(b.s ? b.s : "", n))
			buf_addf(&b, "%s%s", b.len ? ", " : "", n);
	}
	return b.len ? buf_detach(&b) : (buf_release(&b), NULL);
}

static void judge_conflicts(const struct stack_view *sv, struct check_report *r)
{
	struct buf b = BUF_INIT, hint = BUF_INIT;
	if (count_kind(sv, STACK_DS_PLUGIN) > 1) {
		buf_adds(&b, "device plugins in");
		for (size_t i = 0, k = 0; i < sv->n; i++)
			if (sv->v[i].kind == STACK_DS_PLUGIN) {
				char *id = ds_id(sv->v[i].ds);
				buf_addf(&b, "%s %s", k++ ? "," : "", id);
				free(id);
			}
		buf_adds(&b, " (each advertises nvidia.com/gpu; the last to register wins on each node)");
		buf_adds(&hint, "keep one: delete the other DaemonSet (gpuctl deploy refuses to add a second)");
	}
	char *dra = both_on(sv, STACK_DS_DRA, STACK_DS_PLUGIN);
	if (dra) {
		char *id = ds_id(first_kind(sv, STACK_DS_DRA)->ds);
		buf_addf(&b, "%sthe DRA driver %s and the device plugin both run on %s", b.len ? "; " : "", id, dra);
		buf_addf(&hint, "%sgive each node one of them: keep the device plugin off the DRA nodes (nodeSelector, or "
				"nvidia.com/gpu.deploy.device-plugin=false with the GPU Operator)",
			 hint.len ? "; " : "");
		free(id);
		free(dra);
	}
	/* the operator's driver container on a node whose driver is the host's:
	 * the operator labels such nodes nvidia.com/gpu.deploy.driver=pre-installed */
	const struct stack_ds *drv = first_kind(sv, STACK_DS_DRIVER);
	if (drv && sv->driver_on_host.len) {
		char *id = ds_id(drv->ds);
		buf_addf(&b, "%sthe GPU Operator's driver %s runs on %s, whose driver is installed on the host",
			 b.len ? "; " : "", id, sv->driver_on_host.s);
		buf_addf(&hint, "%sset driver.enabled=false in the ClusterPolicy, or label those nodes "
				"nvidia.com/gpu.deploy.driver=false",
			 hint.len ? "; " : "");
		free(id);
	}
	if (b.len) {
		check_add(r, "cluster.conflicts", "cluster", CHECK_FAIL, hint.s, "%s", b.s);
	} else {
		const struct stack_ds *p = first_kind(sv, STACK_DS_PLUGIN);
		char *id = p ? ds_id(p->ds) : NULL;
		check_add(r, "cluster.conflicts", "cluster", CHECK_PASS, NULL, "%s%s%s", p ? "one device plugin (" : "no device plugin",
			  id ? id : "", p ? ")" : "");
		free(id);
	}
	buf_release(&b);
	buf_release(&hint);
}

static void judge_dcgm(const struct stack_view *sv, struct check_report *r)
{
	const struct stack_ds *d = first_kind(sv, STACK_DS_DCGM);
	if (!d) {
		check_add(r, "cluster.dcgm-exporter", "cluster", CHECK_SKIP, NULL,
			  "skipped: the DCGM exporter is not deployed (gpuctl deploy --with dcgm-exporter)");
		return;
	}
	char *id = ds_id(d->ds);
	long want = ds_status(d->ds, "desiredNumberScheduled"), ready = ds_status(d->ds, "numberReady");
	if (ready == 0)
		check_add(r, "cluster.dcgm-exporter", "cluster", CHECK_FAIL, "see its pods' logs (it needs a GPU and DCGM)",
			  "%s ready on 0 of %ld nodes: no metrics", id, want);
	else if (!sv->metrics)
		check_add(r, "cluster.dcgm-exporter", "cluster", CHECK_FAIL,
			  "see the exporter's log; Prometheus cannot scrape GPU metrics either",
			  "%s ready on %ld of %ld nodes, but its metrics cannot be read%s%s: %s", id, ready, want,
			  sv->metrics_node ? " on " : "", sv->metrics_node ? sv->metrics_node : "",
			  sv->metrics_error ? sv->metrics_error : "no answer");
	else if (!strstr(sv->metrics, "DCGM_FI_"))
		check_add(r, "cluster.dcgm-exporter", "cluster", CHECK_FAIL, "see the exporter's log and its collectors file",
			  "%s answers%s%s but reports no DCGM_FI_* metric", id, sv->metrics_node ? " on " : "",
			  sv->metrics_node ? sv->metrics_node : "");
	else
		check_add(r, "cluster.dcgm-exporter", "cluster", ready < want ? CHECK_WARN : CHECK_PASS,
			  ready < want ? "see the pods that are not ready" : NULL, "%s ready on %ld of %ld nodes; metrics answer%s%s",
			  id, ready, want, sv->metrics_node ? " on " : "", sv->metrics_node ? sv->metrics_node : "");
	free(id);
}

static void judge_labels_taints(const cJSON *config, const cJSON *node, struct check_report *r)
{
	const char *name = node_name(node);
	struct label_plan lp = { .defaults = 1 };
	struct gerr err = GERR_INIT;
	if (label_default_ops(config, &lp.ops, &lp.nops, &err) < 0) {
		check_add(r, "node.labels", name, CHECK_FAIL, err.hint, "%s", err.msg ? err.msg : "label.defaults");
	} else {
		struct edit_result er = { .changes = cJSON_CreateArray() };
		struct buf b = BUF_INIT;
		if (label_plan_node(&lp, node, &er) < 0) {
			/* a value differs from the configured one */
			check_add(r, "node.labels", name, CHECK_WARN, "gpuctl label --overwrite sets the configured value", "%s",
				  er.err.msg ? er.err.msg : "not as configured");
		} else {
			const cJSON *ch;
			cJSON_ArrayForEach(ch, er.changes)
				buf_addf(&b, "%s%s=%s", b.len ? ", " : "", json_str(ch, "key") ? json_str(ch, "key") : "?",
					 json_str(ch, "value") ? json_str(ch, "value") : "");
			if (b.len)
				check_add(r, "node.labels", name, CHECK_WARN, "gpuctl label sets them", "missing: %s", b.s);
			else
				check_add(r, "node.labels", name, CHECK_PASS, NULL, "labelled as configured");
		}
		buf_release(&b);
		cJSON_Delete(er.changes);
		cJSON_Delete(er.state);
		free(er.patch);
		gerr_clear(&er.err);
	}
	for (size_t i = 0; i < lp.nops; i++)
		label_op_release(&lp.ops[i]);
	free(lp.ops);
	gerr_clear(&err);

	struct taint_plan tp = { 0 };
	if (taint_default_ops(config, &tp.ops, &tp.nops, &err) < 0) {
		check_add(r, "node.taints", name, CHECK_FAIL, err.hint, "%s", err.msg ? err.msg : "taint.defaults");
	} else {
		struct edit_result er = { .changes = cJSON_CreateArray() };
		if (taint_plan_node(&tp, node, &er) < 0) {
			check_add(r, "node.taints", name, CHECK_WARN, "gpuctl taint --overwrite sets the configured value", "%s",
				  er.err.msg ? er.err.msg : "not as configured");
		} else if (cJSON_GetArraySize(er.changes)) {
			struct buf b = BUF_INIT;
			const cJSON *ch;
			cJSON_ArrayForEach(ch, er.changes) {
				const char *k = json_str(ch, "key"), *v = json_str(ch, "value"), *e = json_str(ch, "effect");
				buf_addf(&b, "%s%s%s%s:%s", b.len ? ", " : "", k ? k : "?", v && *v ? "=" : "", v ? v : "", e ? e : "");
			}
			check_add(r, "node.taints", name, CHECK_WARN,
				  "gpuctl taint adds them (without the taint, pods that ask for no GPU land on the GPU node)",
				  "missing: %s", b.s);
			buf_release(&b);
		} else {
			const cJSON *t;
			int gate = 0;
			cJSON_ArrayForEach(t, json_get2(node, "spec", "taints"))
				gate |= json_str(t, "key") && !strcmp(json_str(t, "key"), "gpuctl.io/unvalidated");
			check_add(r, "node.taints", name, CHECK_PASS, NULL, "tainted as configured%s",
				  gate ? " (and gpuctl.io/unvalidated: not admitted yet)" : "");
		}
		cJSON_Delete(er.changes);
		cJSON_Delete(er.state);
		free(er.patch);
		gerr_clear(&er.err);
	}
	for (size_t i = 0; i < tp.nops; i++)
		taint_op_release(&tp.ops[i]);
	free(tp.ops);
	gerr_clear(&err);
}

static void judge_node_plugin(const struct stack_view *sv, const cJSON *node, struct check_report *r)
{
	const char *name = node_name(node);
	const struct stack_ds *p = first_kind(sv, STACK_DS_PLUGIN);
	if (!p) {
		check_add(r, "node.device-plugin", name, CHECK_SKIP, NULL, "skipped: no device plugin is deployed");
		return;
	}
	const cJSON *pod = NULL;
	for (size_t i = 0; i < sv->n && !pod; i++)
		if (sv->v[i].kind == STACK_DS_PLUGIN)
			pod = pod_on(sv->v[i].pods, name);
	const char *res = node_gpu_resource(node, "capacity");
	long cap = res ? node_resource(node, "capacity", res) : 0;
	if (!pod) {
		char *id = ds_id(p->ds);
		const cJSON *tol = cJSON_GetObjectItemCaseSensitive(pod_spec(p->ds), "tolerations");
		if (!taints_tolerated(json_get2(node, "spec", "taints"), tol))
			check_add(r, "node.device-plugin", name, CHECK_FAIL,
				  "add a toleration for the node's taints to the DaemonSet (gpuctl deploy's tolerates gpuctl's taints)",
				  "no pod of %s on this node: it does not tolerate the node's taints", id);
		else
			check_add(r, "node.device-plugin", name, CHECK_FAIL,
				  "compare the DaemonSet's nodeSelector and affinity with the node's labels (gpuctl label)",
				  "no pod of %s on this node", id);
		free(id);
		return;
	}
	if (!pod_ready(pod)) {
		struct buf b = BUF_INIT;
		pod_why(pod, &b);
		check_add(r, "node.device-plugin", name, CHECK_FAIL, "kubectl -n NAMESPACE logs POD --all-containers",
			  "pod %s/%s not ready: %s", meta(pod, "namespace") ? meta(pod, "namespace") : "",
			  meta(pod, "name") ? meta(pod, "name") : "", b.s);
		buf_release(&b);
		return;
	}
	if (cap <= 0)
		check_add(r, "node.device-plugin", name, CHECK_FAIL,
			  "the plugin runs but the kubelet got no devices from it: see its log (NVML, the socket in /var/lib/kubelet/device-plugins)",
			  "pod %s ready, but the node advertises no nvidia.com/gpu: not registered with the kubelet", meta(pod, "name"));
	else
		check_add(r, "node.device-plugin", name, CHECK_PASS, NULL, "pod %s ready and registered (%s %ld)",
			  meta(pod, "name"), res, cap);
}

/* A MIG resource with nothing allocatable that GFD's labels say the node no
 * longer uses (no MIG strategy, or mixed without that profile's count): the
 * kubelet keeps listing a resource whose plugin stopped advertising it (its
 * last count, 0 allocatable, until a grace period ends), e.g. for minutes
 * after MIG was turned off. Not an unhealthy device. */
static int mig_resource_left_over(const cJSON *node, const char *res, long alloc)
{
	const cJSON *labels = json_get2(node, "metadata", "labels");
	if (alloc > 0 || strncmp(res, "nvidia.com/mig-", 15) || !json_str(labels, "nvidia.com/gfd.timestamp"))
		return 0;
	const char *ms = json_str(labels, "nvidia.com/mig.strategy");
	if (!ms || strcmp(ms, "mixed"))
		return 1;
	char key[160];
	snprintf(key, sizeof(key), "%s.count", res);
	const char *c = json_str(labels, key);
	return !c || !strcmp(c, "0");
}

static void judge_health(const cJSON *node, struct check_report *r)
{
	const char *name = node_name(node);
	struct buf bad = BUF_INIT, good = BUF_INIT, stale = BUF_INIT;
	const cJSON *it;
	cJSON_ArrayForEach(it, json_get2(node, "status", "capacity")) {
		if (strncmp(it->string, "nvidia.com/gpu", 14) && strncmp(it->string, "nvidia.com/mig-", 15))
			continue;
		long cap = node_resource(node, "capacity", it->string), alloc = node_resource(node, "allocatable", it->string);
		if (cap <= 0)
			continue;
		if (alloc < 0)
			alloc = 0;
		if (mig_resource_left_over(node, it->string, alloc))
			buf_addf(&stale, "%s%s", stale.len ? ", " : "", it->string);
		else if (alloc < cap)
			buf_addf(&bad, "%s%s %ld of %ld allocatable", bad.len ? ", " : "", it->string, alloc, cap);
		else
			buf_addf(&good, "%s%s %ld", good.len ? ", " : "", it->string, cap);
	}
	if (bad.len)
		check_add(r, "node.gpu-health", name, CHECK_FAIL,
			  "the device plugin marked devices unhealthy (an Xid error, a GPU fallen off the bus): see nvidia-smi -q and dmesg on the node, and the plugin's log",
			  "%s", bad.s);
	else if (good.len)
		check_add(r, "node.gpu-health", name, CHECK_PASS, NULL, "all allocatable: %s%s%s%s", good.s,
			  stale.len ? " (not judged, no longer in use by GFD's labels: " : "", stale.len ? stale.s : "",
			  stale.len ? ")" : "");
	else
		check_add(r, "node.gpu-health", name, CHECK_SKIP, NULL, "skipped: the node advertises no nvidia.com/gpu*");
	buf_release(&bad);
	buf_release(&good);
	buf_release(&stale);
}

static void judge_sharing(const struct stack_view *sv, const cJSON *node, struct check_report *r)
{
	const char *name = node_name(node);
	const struct stack_ds *p = first_kind(sv, STACK_DS_PLUGIN);
	const char *cm = NULL, *def = NULL;
	if (p)
		plugin_configs(p->ds, &cm, &def);
	if (!p || !cm) {
		check_add(r, "node.sharing", name, CHECK_SKIP, NULL, "skipped: %s",
			  p ? "the device plugin has no configurations (no sharing configured)" : "no device plugin is deployed");
		return;
	}
	char *id = ds_id(p->ds);
	const cJSON *labels = json_get2(node, "metadata", "labels");
	const char *key = json_str(labels, GPUCTL_DEVICE_PLUGIN_CONFIG_LABEL);
	const char *from = key ? "its label " GPUCTL_DEVICE_PLUGIN_CONFIG_LABEL : "the default config";
	if (!key)
		key = def;
	if (!sv->configs) {
		check_add(r, "node.sharing", name, CHECK_FAIL, "gpuctl slice writes it",
			  "the configurations of %s (configmap %s) cannot be read: %s", id, cm,
			  sv->cm_error ? sv->cm_error : "missing");
		free(id);
		return;
	}
	const char *text = key ? json_str(sv->configs, key) : NULL;
	if (!text) {
		check_add(r, "node.sharing", name, CHECK_FAIL, "gpuctl slice ... NODE sets a config that exists",
			  "%s names config \"%s\", which configmap %s does not have: the plugin falls back or fails",
			  from, key ? key : "(none)", cm);
		free(id);
		return;
	}
	cJSON *cfg = NULL;
	struct gerr err = GERR_INIT;
	if (yaml_parse(text, strlen(text), key, &cfg, &err) < 0 || sharing_config_validate(cfg, &err) < 0) {
		check_add(r, "node.sharing", name, CHECK_FAIL, "fix the config (gpuctl slice validates before it writes)",
			  "config \"%s\" in configmap %s is not valid: %s", key, cm, err.msg ? err.msg : "error");
		gerr_clear(&err);
		cJSON_Delete(cfg);
		free(id);
		return;
	}
	cJSON_Delete(cfg);
	long replicas = 1;
	int mps = 0;
	sharing_config_model(text, &replicas, &mps);
	const char *res = node_gpu_resource(node, "capacity");
	long cap = res ? node_resource(node, "capacity", res) : 0;
	const char *count_s = json_str(labels, "nvidia.com/gpu.count");
	const char *rep_s = json_str(labels, "nvidia.com/gpu.replicas");
	long count = count_s ? strtol(count_s, NULL, 10) : 0;
	struct buf why = BUF_INIT;
	if (res && !strncmp(res, "nvidia.com/mig-", 15)) {
		/* MIG: the per-profile resources are judged by node.gpu-health */
	} else if (cap <= 0) {
		buf_adds(&why, "the node advertises no nvidia.com/gpu");
	} else if (count > 0 && cap != count * replicas) {
		buf_addf(&why, "%s %ld, want %ld GPU(s) x %ld replicas = %ld", res, cap, count, replicas, count * replicas);
	} else if (count <= 0 && cap % replicas) {
		buf_addf(&why, "%s %ld is not a multiple of %ld replicas", res, cap, replicas);
	}
	if (rep_s && strtol(rep_s, NULL, 10) != replicas)
		buf_addf(&why, "%snvidia.com/gpu.replicas=%s (gpu-feature-discovery), want %ld", why.len ? "; " : "", rep_s, replicas);
	/* MPS x4 and time-slicing x4 give the same capacity: GFD's strategy label tells them apart */
	const char *strat = json_str(labels, SHARING_STRATEGY_LABEL);
	const char *want_strat = mps ? "mps" : replicas > 1 ? "time-slicing" : "none";
	if (strat && strcmp(strat, want_strat))
		buf_addf(&why, "%s" SHARING_STRATEGY_LABEL "=%s (gpu-feature-discovery), want %s", why.len ? "; " : "", strat,
			 want_strat);
	if (why.len)
		check_add(r, "node.sharing", name, CHECK_FAIL,
			  "the plugin has not taken the config: gpuctl slice restarts it and waits; see the plugin's log",
			  "config \"%s\" (%s) is %s x%ld, but %s", key, from, mps ? "MPS" : replicas > 1 ? "time-slicing" : "no sharing",
			  replicas, why.s);
	else
		check_add(r, "node.sharing", name, CHECK_PASS, NULL, "config \"%s\" (%s) in use: %s x%ld (%s %ld)", key, from,
			  mps ? "MPS" : replicas > 1 ? "time-slicing" : "no sharing", replicas, res ? res : "nvidia.com/gpu", cap);
	buf_release(&why);
	free(id);
}

void stack_judge_node(struct stack_view *sv, const cJSON *config, const cJSON *node, struct check_report *r)
{
	judge_labels_taints(config, node, r);
	judge_node_plugin(sv, node, r);
	judge_health(node, r);
	judge_sharing(sv, node, r);
	/* the operator's driver container on a node whose driver is the host's:
	 * the operator labels such nodes nvidia.com/gpu.deploy.driver=pre-installed */
	const struct stack_ds *drv = first_kind(sv, STACK_DS_DRIVER);
	const char *d = json_str(json_get2(node, "metadata", "labels"), "nvidia.com/gpu.deploy.driver");
	if (drv && d && !strcmp(d, "pre-installed") && pod_on(drv->pods, node_name(node)))
		buf_addf(&sv->driver_on_host, "%s%s", sv->driver_on_host.len ? ", " : "", node_name(node));
	/* the exporter whose metrics are read: a ready one on a node being validated */
	const struct stack_ds *dcgm = first_kind(sv, STACK_DS_DCGM);
	if (dcgm && !sv->metrics_pod) {
		const cJSON *pod = pod_on(dcgm->pods, node_name(node));
		if (pod && pod_ready(pod))
			sv->metrics_pod = pod;
	}
}

int stack_plugin_expect(const struct stack_view *sv, const cJSON *node, char **pod_uid, char **volume, char **key)
{
	*pod_uid = *volume = *key = NULL;
	const struct stack_ds *p = first_kind(sv, STACK_DS_PLUGIN);
	const char *cm = NULL, *def = NULL;
	if (!p)
		return 0;
	plugin_configs(p->ds, &cm, &def);
	const char *name = node_name(node);
	const cJSON *pod = NULL;
	for (size_t i = 0; i < sv->n && !pod; i++)
		if (sv->v[i].kind == STACK_DS_PLUGIN)
			pod = pod_on(sv->v[i].pods, name);
	const char *uid = pod ? str2(pod, "metadata", "uid") : NULL;
	const char *want = json_str(json_get2(node, "metadata", "labels"), GPUCTL_DEVICE_PLUGIN_CONFIG_LABEL);
	if (!want)
		want = def;
	if (!cm || !uid || !want)
		return 0;
	/* the emptyDir a container mounts at /config (the config-manager's) */
	const char *vol = NULL;
	const cJSON *c, *m;
	cJSON_ArrayForEach(c, json_get2(pod, "spec", "containers")) {
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(c, "volumeMounts")) {
			const char *mp = json_str(m, "mountPath");
			if (mp && !strcmp(mp, "/config"))
				vol = json_str(m, "name");
		}
	}
	if (!vol)
		return 0;
	*pod_uid = xstrdup(uid);
	*volume = xstrdup(vol);
	*key = xstrdup(want);
	return 1;
}

void stack_judge_cluster(const struct stack_view *sv, struct check_report *r)
{
	judge_plugin(sv, r);
	judge_conflicts(sv, r);
	judge_dcgm(sv, r);
}

void stack_judge(struct stack_view *sv, const cJSON *config, const cJSON *gpu_nodes, struct check_report *r)
{
	const cJSON *node;
	cJSON_ArrayForEach(node, gpu_nodes)
		stack_judge_node(sv, config, node, r);
	stack_judge_cluster(sv, r);
}

/* ---- reading ---- */

static char *selector_of(const cJSON *ds)
{
	struct buf b = BUF_INIT;
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(json_get2(ds, "spec", "selector"), "matchLabels"))
		if (cJSON_IsString(it))
			buf_addf(&b, "%s%s=%s", b.len ? "," : "", it->string, it->valuestring);
	return buf_detach(&b);
}

int stack_read(struct kube_client *kc, struct stack_view *sv, struct gerr *err)
{
	memset(sv, 0, sizeof(*sv));
	char *path = kube_path("apps/v1", NULL, "daemonsets", NULL);
	int rc = kube_list(kc, path, NULL, &sv->daemonsets, NULL, err);
	free(path);
	if (rc < 0)
		return gerr_prefix(err, "list daemonsets");
	size_t n = (size_t)cJSON_GetArraySize(sv->daemonsets);
	sv->v = xcalloc(n ? n : 1, sizeof(*sv->v));
	const cJSON *ds;
	cJSON_ArrayForEach(ds, sv->daemonsets) {
		enum stack_ds_kind k = stack_ds_classify(ds);
		if (k == STACK_DS_OTHER)
			continue;
		struct stack_ds *d = &sv->v[sv->n++];
		d->ds = ds;
		d->kind = k;
		if (k == STACK_DS_GFD)
			continue;
		char *sel = selector_of(ds);
		struct kube_list_opts lo = { .label_selector = sel };
		char *pp = kube_path("v1", meta(ds, "namespace"), "pods", NULL);
		struct gerr e = GERR_INIT;
		/* one pod per node: each is pruned to what the checks read as its page arrives */
		if (sel && *sel && kube_list_pruned(kc, pp, &lo, kube_pod_prune, &d->pods, NULL, &e) < 0) {
			free(pp);
			free(sel);
			char *id = ds_id(ds);
			gerr_move(err, &e);
			gerr_prefix(err, "list the pods of daemonset %s", id);
			free(id);
			return -1;
		}
		free(pp);
		free(sel);
	}
	/* the plugin's configurations */
	const struct stack_ds *p = first_kind(sv, STACK_DS_PLUGIN);
	const char *cm = NULL, *def = NULL;
	if (p)
		plugin_configs(p->ds, &cm, &def);
	if (cm) {
		char *cp = kube_path("v1", meta(p->ds, "namespace"), "configmaps", cm);
		struct gerr e = GERR_INIT;
		if (kube_get(kc, cp, &sv->cm, &e) == 0)
			sv->configs = cJSON_GetObjectItemCaseSensitive(sv->cm, "data");
		else
			sv->cm_error = xstrdup(e.msg ? e.msg : "error");
		gerr_clear(&e);
		free(cp);
	}
	return 0;
}

void stack_read_metrics(struct kube_client *kc, struct stack_view *sv)
{
	/* the DCGM exporter's metrics, from one ready pod through the API server:
	 * one on a validated node (stack_judge_node chose it), else any */
	const struct stack_ds *d = first_kind(sv, STACK_DS_DCGM);
	const cJSON *pod = sv->metrics_pod, *it;
	if (d && !pod)
		cJSON_ArrayForEach(it, d->pods)
			if (!pod && pod_ready(it))
				pod = it;
	if (!pod)
		return;
	long port = 9400;
	const cJSON *c, *pt;
	cJSON_ArrayForEach(c, json_get2(pod, "spec", "containers"))
		cJSON_ArrayForEach(pt, cJSON_GetObjectItemCaseSensitive(c, "ports"))
			if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(pt, "containerPort")))
				port = (long)cJSON_GetObjectItemCaseSensitive(pt, "containerPort")->valuedouble;
	char *base = kube_path("v1", meta(pod, "namespace"), "pods", NULL);
	char *mp = xasprintf("%s/%s:%ld/proxy/metrics", base, meta(pod, "name"), port);
	char *what = xasprintf("metrics of pod %s/%s", meta(pod, "namespace"), meta(pod, "name"));
	struct kube_call call = { .method = "GET", .path = mp, .idempotent = 1, .raw = 1, .what = what };
	struct gerr e = GERR_INIT;
	free(sv->metrics);
	free(sv->metrics_error);
	free(sv->metrics_node);
	sv->metrics = sv->metrics_error = NULL;
	sv->metrics_node = xstrdup(str2(pod, "spec", "nodeName") ? str2(pod, "spec", "nodeName") : "?");
	if (kube_do(kc, &call, &e) == 0)
		sv->metrics = buf_detach(&call.text);
	else
		sv->metrics_error = xstrdup(e.msg ? e.msg : "error");
	gerr_clear(&e);
	kube_call_release(&call);
	free(what);
	free(mp);
	free(base);
}

void stack_view_release(struct stack_view *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		cJSON_Delete(sv->v[i].pods);
	free(sv->v);
	cJSON_Delete(sv->daemonsets);
	cJSON_Delete(sv->cm);
	free(sv->cm_error);
	free(sv->metrics);
	free(sv->metrics_error);
	free(sv->metrics_node);
	buf_release(&sv->driver_on_host);
	memset(sv, 0, sizeof(*sv));
}
