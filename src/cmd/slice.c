/* gpuctl slice: share GPUs (time-slicing, MPS), partition them (MIG) or
 * stop sharing, through the NVIDIA device plugin's ConfigMap and the
 * per-node label nvidia.com/device-plugin.config, then wait until the nodes
 * advertise what was asked.  The engine is src/kube/sharing.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "deployset.h"
#include "gpuctl/apply.h"
#include "gpuctl/gpustack.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/labels.h"
#include "gpuctl/out.h"
#include "gpuctl/owned.h"
#include "gpuctl/plan.h"
#include "gpuctl/report.h"
#include "gpuctl/sharing.h"
#include "gpuctl/util.h"

static const char usage[] =
	"gpuctl slice [time-slicing|mps|mig|none] [NODE...] [-l SELECTOR] [--replicas N | --profile NAME] [--rename] "
	"[--fail-requests-greater-than-one] [--mig-strategy single|mixed] [--mig-config NAME] [--timeout DURATION] "
	"[--no-wait] [--dry-run[=client|server]] [-o json|yaml]";
static const char summary[] =
	"Share the GPUs of nodes (time-slicing, the default, or MPS), use MIG devices, or stop sharing\n"
	"(none), through the NVIDIA device plugin's configurations. With NODE or -l, those nodes get\n"
	"their own configuration (the label nvidia.com/device-plugin.config); otherwise the default one\n"
	"changes for every GPU node that has no label of its own. Then waits until each node advertises\n"
	"its GPUs times the replicas. Time-slicing gives no memory or fault isolation.";

#define REPLICAS_UNSET (-1000000)
#define OPERATOR_PLUGIN_SELECTOR "app=nvidia-device-plugin-daemonset"
#define GPUCTL_PLUGIN_SELECTOR "app.kubernetes.io/name=" DEPLOY_PLUGIN_NAME

struct slice_node {
	const cJSON *node;        /* borrowed from the resolved nodes */
	struct sharing_expect exp;
	char *key_before;         /* its nvidia.com/device-plugin.config label, or NULL */
	const char *key_after;    /* the ConfigMap key it uses after */
	int own_config;           /* default mode: it has a label of its own and is left alone */
	int labeled;              /* its labels changed (or would) */
	int restarted;            /* plugin pods deleted on it */
	int done;                 /* advertises what is expected */
	long after;
	char *why;                /* what is still different */
	char *notes;              /* what could not be checked */
	struct gerr err;
};

struct slice {
	struct gctx *g;
	struct kube_client *kc;
	struct sharing_spec spec;
	enum dry_run dry;
	int per_node;             /* NODE or -l: per-node configurations */
	char *key;                /* the configuration's key: ts-4 */
	char *config_yaml;
	/* the device plugin */
	cJSON *policy;            /* the GPU Operator's ClusterPolicy, or NULL */
	const char *ns, *cm_name, *default_key;
	cJSON *cm;                /* the ConfigMap as read, or NULL when absent */
	enum apply_status cm_status;
	struct gerr cm_err;
	struct slice_node *v;
	size_t n;
	size_t waiting;
	int aborted;              /* stopped before changing the nodes: the others are skipped */
};

static const char *label_of(const cJSON *node, const char *key)
{
	return json_str(json_get2(node, "metadata", "labels"), key);
}

/* The GPU Operator's ClusterPolicy, when the CRD is there and one exists
 * (a cluster without the CRD, or that does not let us list it, has none). */
static int find_policy(struct slice *s, struct gerr *err)
{
	int forbidden = 0;
	return gpustack_cluster_policy(s->kc, &s->policy, &forbidden, err);
}

static void plugin_location(struct slice *s)
{
	if (s->policy) {
		const char *ons = json_str(cJSON_GetObjectItemCaseSensitive(s->policy, "status"), "namespace");
		const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(json_get2(s->policy, "spec", "devicePlugin"), "config");
		const char *name = json_str(cfg, "name"), *def = json_str(cfg, "default");
		s->ns = ons && *ons ? ons : "gpu-operator";
		s->cm_name = name && *name ? name : DEPLOY_CONFIG_NAME;
		s->default_key = def && *def ? def : DEPLOY_CONFIG_DEFAULT;
	} else {
		s->ns = s->g->kopts.namespace_ ? s->g->kopts.namespace_ : DEPLOY_NAMESPACE;
		s->cm_name = DEPLOY_CONFIG_NAME;
		s->default_key = DEPLOY_CONFIG_DEFAULT;
	}
}

static int read_configmap(struct slice *s, struct gerr *err)
{
	static const struct kube_kind configmaps = { "v1", "ConfigMap", "configmaps", 1 };
	struct gerr e = GERR_INIT;
	int rc = 0;
	if (apply_get_named(s->kc, &configmaps, s->ns, s->cm_name, &s->cm, &e) < 0) {
		if (e.code == GERR_NOTFOUND && s->policy) {
			s->cm = NULL; /* created for the operator */
		} else if (e.code == GERR_NOTFOUND) {
			gerr_set(err, GERR_NOTFOUND,
				 "the device plugin's configurations (configmap %s/%s) do not exist: is the device plugin "
				 "deployed?", s->ns, s->cm_name);
			gerr_hint(err, "deploy it first: gpuctl deploy (or -n NAMESPACE where it runs)");
			rc = -1;
		} else {
			gerr_move(err, &e);
			rc = gerr_prefix(err, "configmap %s/%s", s->ns, s->cm_name);
		}
	}
	gerr_clear(&e);
	return rc;
}

/* Plan the nodes: rejections (all of them, before anything changes) and expectations. */
static int plan_nodes(struct slice *s, const cJSON *nodes, struct report *rep)
{
	s->n = (size_t)cJSON_GetArraySize(nodes);
	s->v = xcalloc(s->n ? s->n : 1, sizeof(*s->v));
	size_t i = 0, failed = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, nodes) {
		struct slice_node *sn = &s->v[i++];
		sn->node = it;
		const char *l = label_of(it, SHARING_CONFIG_LABEL);
		sn->key_before = l ? xstrdup(l) : NULL;
		if (!s->per_node && l && strcmp(l, s->default_key)) {
			sn->own_config = 1;
			sn->key_after = sn->key_before;
			continue;
		}
		sn->key_after = s->per_node ? s->key : s->default_key;
		/* the replicas of the config the plugin uses on this node now, for a
		 * node without GFD's replicas label */
		long hint = 0;
		const char *now = json_str(cJSON_GetObjectItemCaseSensitive(s->cm, "data"),
					   sn->key_before ? sn->key_before : s->default_key);
		if (sharing_config_model(now, &hint, NULL) < 0)
			hint = 0;
		struct buf notes = BUF_INIT;
		if (sharing_node_check(&s->spec, it, &notes, &sn->err) < 0 ||
		    sharing_expect_node(&s->spec, it, hint, &sn->exp, &sn->err) < 0)
			failed++;
		sn->notes = notes.len ? buf_detach(&notes) : NULL;
		buf_release(&notes);
		sn->after = sn->exp.before;
	}
	(void)rep;
	return failed ? -1 : 0;
}

/* ---- the ConfigMap and the ClusterPolicy ---- */

static void apply_configmap(struct slice *s)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(s->cm, "data");
	const char *have = json_str(data, s->per_node ? s->key : s->default_key);
	if (have && !strcmp(have, s->config_yaml)) {
		s->cm_status = APPLY_UNCHANGED;
		return;
	}
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "apiVersion", "v1");
	cJSON_AddStringToObject(doc, "kind", "ConfigMap");
	cJSON *md = cJSON_AddObjectToObject(doc, "metadata");
	cJSON_AddStringToObject(md, "name", s->cm_name);
	cJSON_AddStringToObject(md, "namespace", s->ns);
	const cJSON *labels = json_get2(s->cm, "metadata", "labels");
	cJSON *ml = labels ? cJSON_Duplicate(labels, 1) : cJSON_CreateObject();
	if (!labels)
		cJSON_AddStringToObject(ml, "app.kubernetes.io/name", DEPLOY_PLUGIN_NAME);
	cJSON_AddItemToObject(md, "labels", ml);
	/* every key already there is sent again: server-side apply would
	 * otherwise drop the keys gpuctl wrote before */
	cJSON *nd = data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject();
	const char *key = s->per_node ? s->key : s->default_key;
	cJSON_DeleteItemFromObjectCaseSensitive(nd, key);
	cJSON_AddStringToObject(nd, key, s->config_yaml);
	cJSON_AddItemToObject(doc, "data", nd);
	cJSON *docs = cJSON_CreateArray();
	cJSON_AddItemToArray(docs, doc);
	struct apply_opts o = { .dry = s->dry, .owner = json_str(labels, GPUCTL_COMPONENT_KEY) ? NULL : "slice" };
	struct apply_result *r = NULL;
	size_t n = 0;
	apply_objects(s->kc, docs, &o, &r, &n);
	if (n) {
		s->cm_status = r[0].status;
		if (r[0].status == APPLY_FAILED)
			gerr_copy(&s->cm_err, &r[0].err);
	}
	apply_results_free(r, n);
	cJSON_Delete(docs);
}

/* Operator mode: the ClusterPolicy must name the ConfigMap (as deploy sets it). */
static int configure_policy(struct slice *s, struct gerr *err)
{
	cJSON *want = cJSON_CreateObject();
	cJSON *cfg = cJSON_AddObjectToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(want, "spec"), "devicePlugin"),
					     "config");
	cJSON_AddStringToObject(cfg, "name", s->cm_name);
	cJSON_AddStringToObject(cfg, "default", s->default_key);
	int rc = 0;
	if (!json_contains(s->policy, want) && s->dry != DRY_CLIENT) {
		rc = gpustack_policy_patch(s->kc, s->policy, want, s->dry == DRY_SERVER, err);
		if (rc < 0)
			gerr_prefix(err, "set spec.devicePlugin.config");
	}
	cJSON_Delete(want);
	return rc;
}

/* ---- node labels ---- */

/* The config labels, and for MPS the record gpuctl.io/mps: MPS leaves the
 * GPUs in EXCLUSIVE_PROCESS, which gpuctl cleanup resets only on the nodes
 * that carry it (a compute mode a person chose stays).  With gpuctl's own
 * plugin also nvidia.com/mps.capable, as GFD sets it: "true" where the
 * config shares by MPS (the plugin's MPS control daemon runs only there, and
 * the plugin fails without it), "false" on a node moved off MPS; only where
 * no one else labels it: a node that has the label and not from gpuctl is
 * GFD's (through NFD), which follows the node's config by itself, and a
 * value gpuctl wrote over it would be put back by cleanup after NFD took
 * its own labels away. */
struct slice_plan {
	struct label_plan labels;
	int mps;
	int mps_label;     /* keep nvidia.com/mps.capable in step (not with the operator: its GFD does) */
	const char *when;  /* the record's value: when (RFC 3339) */
};

static int slice_plan_node(void *ud, const cJSON *node, struct edit_result *r)
{
	struct slice_plan *p = ud;
	struct label_op ops[3];
	struct label_plan lp = p->labels;
	if (p->mps_label) {
		const char *capable = label_of(node, SHARING_MPS_CAPABLE_LABEL);
		int ours = !capable || plan_label_added(node, SHARING_MPS_CAPABLE_LABEL);
		int want = ours && (p->mps || (capable && !strcmp(capable, "true")));
		if (want && lp.nops < sizeof(ops) / sizeof(ops[0])) {
			memcpy(ops, lp.ops, lp.nops * sizeof(ops[0]));
			ops[lp.nops++] = (struct label_op){ (char *)SHARING_MPS_CAPABLE_LABEL, p->mps ? (char *)"true" : (char *)"false" };
			lp.ops = ops;
		}
	}
	if (lp.nops && label_plan_node(&lp, node, r) < 0)
		return -1;
	if (p->mps && edit_add_annotation(node, r, GPUCTL_MPS_RECORD_KEY, p->when) < 0) {
		gerr_set(&r->err, GERR_INTERNAL, "node %s: cannot add the annotation %s", node_name(node), GPUCTL_MPS_RECORD_KEY);
		return -1;
	}
	return 0;
}

static int label_nodes(struct slice *s, struct gerr *err)
{
	struct label_op ops[2];
	size_t nops = 0;
	if (s->per_node)
		ops[nops++] = (struct label_op){ (char *)SHARING_CONFIG_LABEL, s->key };
	if (s->policy && s->spec.model == SHARING_MIG && s->spec.mig_config)
		ops[nops++] = (struct label_op){ (char *)SHARING_MIG_CONFIG_LABEL, (char *)s->spec.mig_config };
	int mps = s->spec.model == SHARING_MPS;
	int mps_label = !s->policy;
	int capable = 0;
	for (size_t i = 0; mps_label && i < s->n; i++)
		capable |= !s->v[i].own_config && label_of(s->v[i].node, SHARING_MPS_CAPABLE_LABEL) &&
			   !strcmp(label_of(s->v[i].node, SHARING_MPS_CAPABLE_LABEL), "true") &&
			   plan_label_added(s->v[i].node, SHARING_MPS_CAPABLE_LABEL);
	if (!nops && !mps && !capable)
		return 0;
	/* only the nodes that take the config (default mode: not those with their own) */
	cJSON *targets = cJSON_CreateArray();
	for (size_t i = 0; i < s->n; i++)
		if (!s->v[i].own_config)
			cJSON_AddItemToArray(targets, cJSON_Duplicate(s->v[i].node, 1));
	char when[32];
	utc_now_rfc3339(when);
	struct slice_plan plan = { .labels = { .ops = ops, .nops = nops, .overwrite = 1 }, .mps = mps,
				   .mps_label = mps_label, .when = when };
	struct edit_result *r = NULL;
	size_t n = 0;
	int rc = nodes_edit(s->kc, targets, slice_plan_node, &plan, s->dry, &r, &n, err);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < s->n; j++) {
			if (strcmp(node_name(s->v[j].node), r[i].node))
				continue;
			s->v[j].labeled = r[i].status == EDIT_CHANGED;
			if (r[i].status == EDIT_FAILED)
				gerr_copy(&s->v[j].err, &r[i].err);
		}
	edit_results_free(r, n);
	cJSON_Delete(targets);
	return rc;
}

/* ---- restarting the plugin where its config changed under it ---- */

/* The config-manager sidecar follows the node's label, but a ConfigMap
 * change reaches the pod only after the kubelet's sync (up to a minute or
 * more), and the GPU Operator does not watch its ConfigMap at all: delete
 * the plugin's pods on the nodes whose config text changed; the DaemonSet
 * starts them again with it. */
static void restart_plugin(struct slice *s)
{
	if (s->cm_status != APPLY_CONFIGURED && s->cm_status != APPLY_CREATED)
		return;
	const char **names = xcalloc(s->n ? s->n : 1, sizeof(char *));
	int *deleted = xcalloc(s->n ? s->n : 1, sizeof(int));
	for (size_t i = 0; i < s->n; i++)
		/* only the nodes the configuration is for (a node with its own stays) */
		names[i] = s->v[i].own_config || s->v[i].err.code ? "" : node_name(s->v[i].node);
	size_t failed = 0;
	struct gerr e = GERR_INIT;
	if (gpustack_delete_pods_on(s->kc, s->ns, s->policy ? OPERATOR_PLUGIN_SELECTOR : GPUCTL_PLUGIN_SELECTOR, names,
				    s->n, s->dry == DRY_SERVER, deleted, &failed, &e) < 0 || failed)
		gctx_warn(NULL, e.msg ? e.msg : "could not restart the device plugin's pods");
	for (size_t i = 0; i < s->n; i++)
		s->v[i].restarted += deleted[i];
	gerr_clear(&e);
	free(names);
	free(deleted);
}

/* ---- the wait ---- */

static int mig_state(const struct slice *s, const cJSON *node, struct gerr *err)
{
	if (!s->policy || s->spec.model != SHARING_MIG || !s->spec.mig_config)
		return 1;
	const char *st = label_of(node, SHARING_MIG_STATE_LABEL);
	if (st && !strcmp(st, "failed")) {
		gerr_set(err, GERR_API, "node %s: the GPU Operator's MIG manager could not apply %s (%s=failed)",
			 node_name(node), s->spec.mig_config, SHARING_MIG_STATE_LABEL);
		gerr_hint(err, "see its log: kubectl -n %s logs -l app=nvidia-mig-manager --tail 50", s->ns);
		return -1;
	}
	return st && !strcmp(st, "success");
}

static int wait_event(void *ud, const char *type, const cJSON *obj, struct gerr *err)
{
	(void)err;
	struct slice *s = ud;
	if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED"))
		return 0;
	const char *name = node_name(obj);
	for (size_t i = 0; i < s->n; i++) {
		struct slice_node *sn = &s->v[i];
		if (sn->own_config || sn->done || sn->err.code || strcmp(node_name(sn->node), name))
			continue;
		free(sn->why);
		sn->why = NULL;
		long have = sn->exp.resource[0] ? node_resource(obj, "capacity", sn->exp.resource) : 0;
		sn->after = have < 0 ? 0 : have;
		int m = mig_state(s, obj, &sn->err);
		if (m < 0) {
			s->waiting--;
		} else if (sharing_node_ready(&sn->exp, obj, &sn->why) == 1 && m == 1) {
			sn->done = 1;
			s->waiting--;
		} else if (m == 0 && !sn->why) {
			sn->why = xasprintf("%s is not success yet", SHARING_MIG_STATE_LABEL);
		}
	}
	return s->waiting == 0 ? 1 : 0;
}

static void wait_nodes(struct slice *s, long timeout_ms, const char *selector)
{
	s->waiting = 0;
	for (size_t i = 0; i < s->n; i++)
		if (!s->v[i].own_config && !s->v[i].err.code)
			s->waiting++;
	if (!s->waiting)
		return;
	struct gerr e = GERR_INIT;
	int rc = nodes_watch(s->kc, selector, wait_event, s, timeout_ms, &e);
	for (size_t i = 0; i < s->n; i++) {
		struct slice_node *sn = &s->v[i];
		if (sn->own_config || sn->done || sn->err.code)
			continue;
		if (rc < 0 && !(e.code == GERR_TIMEOUT && !e.http_status)) {
			gerr_copy(&sn->err, &e);
			continue;
		}
		gerr_set(&sn->err, GERR_NOT_READY, "node %s: not as asked after %ld s: %s", node_name(sn->node),
			 timeout_ms / 1000, sn->why ? sn->why : "no news from the node");
		gerr_hint(&sn->err, "see the device plugin's log: kubectl -n %s logs -l %s --tail 50 (and that GFD runs, "
				    "for the nvidia.com/gpu.* labels)", s->ns,
			  s->policy ? OPERATOR_PLUGIN_SELECTOR : GPUCTL_PLUGIN_SELECTOR);
	}
	gerr_clear(&e);
}

/* ---- the report ---- */

static void node_rows(struct slice *s, struct report *rep, int waited)
{
	for (size_t i = 0; i < s->n; i++) {
		struct slice_node *sn = &s->v[i];
		const char *name = node_name(sn->node);
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "name", name);
		if (sn->key_after)
			cJSON_AddStringToObject(d, "configKey", sn->key_after);
		if (sn->own_config) {
			report_row_details(report_add(rep, name, "node", REPORT_SKIPPED,
						      "name the node or select it with -l to change its configuration",
						      "has its own configuration %s (%s): left as it is", sn->key_before,
						      SHARING_CONFIG_LABEL), d);
			continue;
		}
		long after = waited ? sn->after : sn->exp.count;
		if (sn->exp.resource[0]) {
			cJSON_AddStringToObject(d, "resource", sn->exp.resource);
			cJSON_AddNumberToObject(d, "before", (double)sn->exp.before);
			cJSON_AddNumberToObject(d, "after", (double)after);
		}
		if (sn->exp.replicas)
			cJSON_AddNumberToObject(d, "replicas", sn->exp.replicas);
		cJSON_AddStringToObject(d, "strategy", s->spec.model == SHARING_MIG
							       ? sharing_mig_name(s->spec.mig) : sharing_model_name(s->spec.model));
		if (sn->exp.physical)
			cJSON_AddNumberToObject(d, "gpus", (double)sn->exp.physical);
		if (sn->restarted)
			cJSON_AddNumberToObject(d, "restartedPods", sn->restarted);
		if (sn->notes)
			cJSON_AddStringToObject(d, "notChecked", sn->notes);
		cJSON_AddBoolToObject(d, "gfdLabelsChecked", sn->exp.gfd);
		struct buf msg = BUF_INIT;
		if (sn->exp.resource[0])
			buf_addf(&msg, "%s %ld -> %s%ld", sn->exp.resource, sn->exp.before,
				 !waited && sn->exp.at_least ? ">=" : "", after);
		else
			buf_adds(&msg, "nvidia.com/mig-*");
		if (s->spec.model == SHARING_MIG)
			buf_addf(&msg, " (MIG %s)", sharing_mig_name(s->spec.mig));
		else if (s->spec.model == SHARING_NONE)
			buf_adds(&msg, " (not shared)");
		else
			buf_addf(&msg, " (%s x%d)", sharing_model_name(s->spec.model), sn->exp.replicas);
		buf_addf(&msg, ", config %s", sn->key_after);
		if (!sn->exp.gfd)
			buf_adds(&msg, ", GFD labels not checked (no gpu-feature-discovery labels on the node)");
		if (s->dry != DRY_NONE)
			buf_addf(&msg, " (dry run: %s)", dry_run_name(s->dry));
		else if (!waited)
			buf_adds(&msg, " (not waited for)");
		enum report_status st;
		int changed = sn->labeled || s->cm_status == APPLY_CONFIGURED || s->cm_status == APPLY_CREATED ||
			      sn->exp.before != after;
		if (s->aborted && !sn->err.code) {
			st = REPORT_SKIPPED;
			buf_adds(&msg, ": not changed (the run stopped before the nodes)");
		} else if (sn->err.code) {
			st = REPORT_FAILED;
			buf_addf(&msg, ": %s", sn->err.msg);
			cJSON_AddItemToObject(d, "error", report_error_json(&sn->err));
		} else {
			st = changed ? REPORT_CHANGED : REPORT_UNCHANGED;
		}
		struct report_row *row = report_add(rep, name, "node", st, sn->err.code ? sn->err.hint : NULL, "%s", msg.s);
		row->code = sn->err.code;
		report_row_details(row, d);
		buf_release(&msg);
	}
}

static void config_doc(struct slice *s, struct report *rep)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "namespace", s->ns);
	cJSON_AddStringToObject(c, "name", s->cm_name);
	cJSON_AddStringToObject(c, "key", s->per_node ? s->key : s->default_key);
	cJSON_AddStringToObject(c, "result", apply_status_name(s->cm_status));
	if (s->cm_err.code)
		cJSON_AddItemToObject(c, "error", report_error_json(&s->cm_err));
	report_set(rep, "config", c);
	report_set(rep, "operator", cJSON_CreateBool(s->policy != NULL));
}

static void slice_release(struct slice *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key_before);
		free(s->v[i].why);
		free(s->v[i].notes);
		gerr_clear(&s->v[i].err);
	}
	free(s->v);
	free(s->key);
	free(s->config_yaml);
	cJSON_Delete(s->policy);
	cJSON_Delete(s->cm);
	gerr_clear(&s->cm_err);
}

static void print_rejections(struct slice *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].err.code)
			gctx_print_error(s->g, &s->v[i].err);
}

int cmd_slice(struct gctx *g, int argc, char **argv)
{
	const char *selector = NULL, *profile = NULL, *mig_s = NULL, *mig_config = NULL, *dry_s = NULL;
	int replicas = REPLICAS_UNSET, rename = 0, fail_gt1 = 0, no_wait = 0;
	long timeout_ms = 5 * 60 * 1000;
	struct opt opts[] = {
		{ "selector", 'l', OPT_STRING, &selector, "SELECTOR", "give the nodes matching this selector their own configuration", NULL },
		{ "replicas", 0, OPT_INT, &replicas, "N", "share each GPU N ways (2 or more; MPS at most 48)", NULL },
		{ "profile", 0, OPT_STRING, &profile, "NAME", "replicas from a profile: any=4 (default), high-memory=2, high-density=8, or slice.profiles in the config file", NULL },
		{ "rename", 0, OPT_BOOL, &rename, NULL, "advertise the shared GPUs as nvidia.com/gpu.shared", NULL },
		{ "fail-requests-greater-than-one", 0, OPT_BOOL, &fail_gt1, NULL, "refuse pods that ask for more than one shared GPU", NULL },
		{ "mig-strategy", 0, OPT_STRING, &mig_s, "single|mixed", "how MIG devices are advertised (default single for mig, none otherwise)", NULL },
		{ "mig-config", 0, OPT_STRING, &mig_config, "NAME", "with the GPU Operator: the MIG manager's layout (nvidia.com/mig.config), e.g. all-1g.10gb", NULL },
		{ "timeout", 0, OPT_DURATION, &timeout_ms, "DURATION", "how long to wait for the nodes (default 5m)", NULL },
		{ "no-wait", 0, OPT_BOOL, &no_wait, NULL, "change the configuration and return without waiting", NULL },
		{ "dry-run", 0, OPT_OPTARG, &dry_s, "MODE", "show what would change; change nothing", "client" },
		OPT_END,
	};
	static const char *const formats[] = { "json", "yaml", NULL };
	struct gerr err = GERR_INIT;
	char **rest;
	int nrest, help, code = 0;
	struct slice s = { .g = g };
	struct report rep;
	report_init(&rep, "SliceResult", "slice");
	rep.changed_word = "sliced";
	cJSON *nodes = NULL;
	if (opt_parse(g, argc, argv, opts, usage, summary, &rest, &nrest, &help, &err) < 0)
		goto usage_error;
	if (help)
		goto out;
	if (gctx_check_output(g, formats, &err) < 0 || parse_dry_run(dry_s, &s.dry, &err) < 0)
		goto usage_error;
	if (timeout_ms <= 0) {
		gerr_set(&err, GERR_USAGE, "--timeout must be more than 0");
		goto usage_error;
	}
	s.spec.model = SHARING_TIME_SLICING;
	if (nrest > 0 && sharing_model_parse(rest[0], &s.spec.model, NULL) == 0) {
		rest++;
		nrest--;
	}
	if (replicas != REPLICAS_UNSET && replicas < 2) {
		gerr_set(&err, GERR_USAGE, "--replicas %d: the device plugin needs 2 or more replicas to share a GPU",
			 replicas);
		gerr_hint(&err, "to stop sharing, run gpuctl slice none");
		goto usage_error;
	}
	s.spec.replicas = replicas == REPLICAS_UNSET ? 0 : replicas;
	s.spec.profile = profile;
	s.spec.rename = rename;
	s.spec.fail_gt1 = fail_gt1;
	s.spec.mig_config = mig_config;
	if (mig_s && sharing_mig_parse(mig_s, &s.spec.mig, &err) < 0)
		goto usage_error;
	struct node_target t = { .names = rest, .nnames = (size_t)nrest, .selector = selector };
	if (node_target_check(&t, &err) < 0)
		goto usage_error;
	s.per_node = nrest > 0 || selector;
	/* everything that can fail without the cluster fails before it is contacted */
	if (gctx_load_config(g, &err) < 0) {
		code = gctx_setup_error(g, &err, usage, "slice");
		goto out;
	}
	const cJSON *profiles = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g->config, "slice"),
								 "profiles");
	if (sharing_spec_complete(&s.spec, profiles, &err) < 0) {
		code = err.code == GERR_USAGE ? gctx_usage_error(g, &err, usage, "slice") : (gctx_print_error(g, &err), 2);
		goto out;
	}
	s.key = sharing_config_key(&s.spec);
	cJSON *cfg = sharing_config_build(&s.spec);
	struct buf y = BUF_INIT;
	sharing_config_yaml(cfg, &y);
	s.config_yaml = buf_detach(&y);
	int bad = sharing_config_validate(cfg, &err);
	cJSON_Delete(cfg);
	if (bad < 0) {
		gerr_prefix(&err, "configuration %s", s.key);
		gctx_print_error(g, &err);
		code = 1;
		goto out;
	}
	if (s.spec.model == SHARING_TIME_SLICING)
		fprintf(stderr, "note: time-slicing gives no memory or fault isolation: the pods sharing a GPU share its "
				"memory, and one that crashes the GPU takes the others with it\n");
	else if (s.spec.model == SHARING_MPS)
		fprintf(stderr, "note: MPS limits each client's memory, but its clients share one fault domain\n");

	if (gctx_kube(g, &s.kc, &err) < 0 || nodes_resolve(s.kc, &t, &nodes, &err) < 0 || find_policy(&s, &err) < 0)
		goto fail;
	plugin_location(&s);
	if (s.spec.model == SHARING_MIG && s.policy && !s.spec.mig_config) {
		gerr_set(&err, GERR_USAGE, "mig with the GPU Operator: give the MIG manager's layout with --mig-config "
					   "(e.g. all-1g.10gb, all-balanced)");
		goto usage_error;
	}
	if (s.spec.model == SHARING_MIG && !s.policy)
		fprintf(stderr, "note: without the GPU Operator's MIG manager gpuctl does not partition GPUs: the GPUs "
				"must be in MIG mode already (nvidia-smi mig)\n");
	if (read_configmap(&s, &err) < 0)
		goto fail;
	if (plan_nodes(&s, nodes, &rep) < 0) {
		/* a rejected node: nothing was changed anywhere */
		s.cm_status = APPLY_UNCHANGED;
		print_rejections(&s);
		gerr_set(&err, GERR_INVALID, "nothing was changed: the configuration %s cannot go to every node asked",
			 s.key);
		goto report_it;
	}
	/* a second device plugin (not gpuctl's, not the operator's) would keep
	 * advertising its own count: refuse before changing anything */
	if (!s.policy) {
		char *foreign = NULL, *img = NULL;
		if (gpustack_foreign_plugins(s.kc, &foreign, &img, &err) < 0)
			goto report_it;
		if (foreign) {
			gerr_set(&err, GERR_CONFLICT,
				 "a device plugin gpuctl did not deploy runs (daemonset %s, image %s): it would not follow "
				 "this configuration; nothing was changed",
				 foreign, img ? img : "?");
			gerr_hint(&err, "configure that plugin yourself, or delete it and run gpuctl deploy");
			free(foreign);
			free(img);
			goto report_it;
		}
	}
	apply_configmap(&s);
	if (s.cm_status == APPLY_FAILED) {
		gerr_copy(&err, &s.cm_err);
		gerr_prefix(&err, "configmap %s/%s", s.ns, s.cm_name);
		goto report_it;
	}
	if (s.policy && configure_policy(&s, &err) < 0)
		goto report_it;
	if (label_nodes(&s, &err) < 0)
		goto report_it;
	if (s.dry != DRY_CLIENT)
		restart_plugin(&s);
	int waited = !no_wait && s.dry == DRY_NONE;
	if (waited)
		wait_nodes(&s, timeout_ms, selector);
	node_rows(&s, &rep, waited);
	goto print;
report_it:
	s.aborted = 1;
	node_rows(&s, &rep, 0);
print:
	report_set(&rep, "dryRun", cJSON_CreateString(dry_run_name(s.dry)));
	report_set(&rep, "model", cJSON_CreateString(sharing_model_name(s.spec.model)));
	config_doc(&s, &rep);
	if (g->output) {
		report_print_doc(stdout, &rep, g->output);
	} else {
		printf("configmap/%s  %s  key %s%s\n", s.cm_name, apply_status_name(s.cm_status),
		       s.per_node ? s.key : s.default_key, s.policy ? " (GPU Operator)" : "");
		report_print_table(stdout, &rep, g->color);
		report_print_summary(stderr, &rep);
		/* the full message (with its hint) once, for the first node that
		 * failed after the checks (the rejections were printed already) */
		for (size_t i = 0; !s.aborted && i < s.n; i++)
			if (s.v[i].err.code) {
				gctx_print_error(g, &s.v[i].err);
				break;
			}
	}
	if (err.code) {
		gctx_print_error(g, &err);
		code = report_exit_status(&rep, &err);
	} else {
		code = report_exit_status(&rep, NULL);
	}
	if (out_finish(&err) < 0) {
		gctx_print_error(g, &err);
		code = 1;
	}
	goto out;
usage_error:
	code = gctx_usage_error(g, &err, usage, "slice");
	goto out;
fail:
	gctx_print_error(g, &err);
	code = report_exit_status(NULL, &err);
out:
	gerr_clear(&err);
	cJSON_Delete(nodes);
	slice_release(&s);
	report_release(&rep);
	return code;
}
