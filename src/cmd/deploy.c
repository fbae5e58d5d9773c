/* gpuctl deploy: prepare the GPU nodes over SSH (probe the driver, add the
 * nvidia runtime to containerd), create the nvidia RuntimeClass, and put the
 * NVIDIA device plugin (and, asked for, GFD and the DCGM exporter) into the
 * cluster from templates/, by server-side apply, then wait for them.  With
 * the GPU Operator, configure its device plugin instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "deployset.h"
#include "gpuctl/owned.h"
#include "gpuctl/plan.h"
#include "gpuctl/util.h"
#include "gpuctl/json.h"
#include "gpuctl/buf.h"
#include "gpuctl/apply.h"
#include "gpuctl/fanout.h"
#include "gpuctl/gpustack.h"
#include "gpuctl/kube.h"
#include "gpuctl/node.h"
#include "gpuctl/out.h"
#include "gpuctl/render.h"
#include "gpuctl/report.h"
#include "gpuctl/sig.h"
#include "gpuctl/util.h"

static const char usage[] =
	"gpuctl deploy [NODE...] [-l SELECTOR] [--only PHASE] [--skip PHASE] [--with gfd,dcgm-exporter] [--inventory FILE] [--ssh-user USER] "
	"[-i KEY] [--ssh-port PORT] [--ssh-timeout SECONDS] [--ssh-accept-new] [-J JUMP] [--known-hosts FILE] [--parallel N] "
	"[--default-runtime] [--min-driver VERSION] [--from-inventory] [--restart-command CMD] [--check-command CMD] "
	"[--plugin-version VERSION] [--registry REGISTRY] [--operator] [--timeout DURATION] [--render | --diff | --dry-run] [-o json|yaml]";
static const char summary[] =
	"Prepare the GPU nodes and the cluster for GPU workloads. Phases, in order:\n"
	"  nodes         over SSH on every GPU node at once: probe the driver, kernel modules, containerd and\n"
	"                the NVIDIA container toolkit; add the nvidia runtime to containerd (backup, verify,\n"
	"                restart, roll back on failure); an already prepared node is left alone\n"
	"  runtimeclass  create the RuntimeClass nvidia (handler nvidia)\n"
	"  plugin        the NVIDIA device plugin: namespace, RBAC, its ConfigMap of sharing configurations and\n"
	"                its DaemonSet (with the GPU Operator: its ClusterPolicy's device plugin configuration)\n"
	"  gfd           gpu-feature-discovery (with --with gfd)\n"
	"  dcgm-exporter the DCGM exporter and its Service (with --with dcgm-exporter)\n"
	"Nodes are the cluster's GPU nodes (or NODE names, or -l), reached at their InternalIP unless the\n"
	"inventory says otherwise. --render prints the cluster phases' objects as YAML and contacts nothing.";

static const char *const phases[] = { "nodes", "runtimeclass", "plugin", "gfd", "dcgm-exporter", NULL };

struct node_job {
	struct node_spec spec;
	const char *talos_os;   /* set: the node runs Talos (no SSH) */
	struct probe_result probe;
	int probed;
	struct prep_result prep;
	int prepared;
	struct gerr err;
	int failed;
	int started;            /* job_run ran (an interrupt stops the others from starting) */
	struct report_row row;  /* the node's result, once done */
};

struct deploy {
	struct gctx *g;
	struct node_job *jobs;
	size_t n;
	struct node_access *a;
	struct containerd_opts copts;
	struct report rep;
};

static void job_run(void *ud, size_t i)
{
	struct deploy *d = ud;
	struct node_job *j = &d->jobs[i];
	j->started = 1;
	if (j->talos_os) {
		gerr_set(&j->err, GERR_CONFIG,
			 "node %s runs %s, which has no SSH: apply the machine-config patch printed below with talosctl",
			 j->spec.name, j->talos_os);
		j->failed = 1;
		return;
	}
	struct ssh_conn *c = NULL;
	if (node_access_probe(d->a, &j->spec, &c, &j->probe, &j->err) < 0) {
		j->failed = 1;
		return;
	}
	j->probed = 1;
	struct gerr why = GERR_INIT;
	if (!node_ready_for_runtime(&j->probe, &why)) {
		gerr_set(&j->err, GERR_CONFIG, "node %s is not ready for the nvidia runtime: %s", j->spec.name, why.msg);
		if (why.hint)
			gerr_hint(&j->err, "%s", why.hint);
		gerr_clear(&why);
		j->failed = 1;
		ssh_close(c);
		return;
	}
	struct node_access_ref ref = { d->a, &j->spec };
	struct containerd_opts co = node_access_containerd_opts(&d->copts, &j->spec, &j->probe, &ref);
	j->prepared = 1;
	if (containerd_prepare(c, &j->probe, &co, &j->prep) < 0) {
		gerr_move(&j->err, &j->prep.err);
		gerr_prefix(&j->err, "node %s: containerd", j->spec.name);
		j->failed = 1;
	}
	ssh_close(c);
}

static enum report_status job_status(const struct node_job *j)
{
	if (j->failed)
		return !j->prepared ? REPORT_FAILED
		       : j->prep.status == PREP_ROLLED_BACK ? REPORT_ROLLED_BACK
		       : j->prep.status == PREP_ROLLBACK_FAILED ? REPORT_ROLLBACK_FAILED
							      : REPORT_FAILED;
	return j->prep.status == PREP_CHANGED ? REPORT_CHANGED : REPORT_UNCHANGED;
}

/* The node's row: its line's text, and the fields of its nodes[] entry
 * (gpuctl-deploy(1)) as details. */
static void job_row(const struct deploy *d, struct node_job *j)
{
	struct buf line = BUF_INIT;
	if (j->probed)
		buf_addf(&line, "  driver %s, %zu GPU%s%s%s, containerd %s", j->probe.driver_version ? j->probe.driver_version : "?",
			 j->probe.gpus.n, j->probe.gpus.n == 1 ? "" : "s", j->probe.gpus.n ? " " : "",
			 j->probe.gpus.n ? j->probe.gpus.gpus[0].name : "",
			 j->probe.containerd_version ? j->probe.containerd_version : "?");
	if (!j->failed && j->prep.status == PREP_CHANGED)
		buf_addf(&line, ": nvidia runtime added (%s)%s", j->prep.method,
			 d->copts.dry_run ? " [dry run]" : ", containerd restarted");
	else if (!j->failed)
		buf_adds(&line, ": nvidia runtime already configured");
	if (j->failed) {
		const char *m = j->err.msg ? j->err.msg : "failed";
		buf_addf(&line, "  %.*s", (int)strcspn(m, "\n"), m);
	}
	/* the line puts two spaces between the result and this text */
	const char *text = !strncmp(line.s, "  ", 2) ? line.s + 2 : line.s;
	report_row_set(&j->row, j->spec.name, "containerd", job_status(j), j->failed ? j->err.hint : NULL, "%s", text);
	buf_release(&line);

	cJSON *o = cJSON_CreateObject();
	if (j->spec.address)
		cJSON_AddStringToObject(o, "address", j->spec.address);
	if (j->probed)
		cJSON_AddItemToObject(o, "probe", probe_result_json(&j->probe));
	if (j->prepared) {
		cJSON *c = cJSON_AddObjectToObject(o, "containerd");
		cJSON_AddStringToObject(c, "result", prep_status_name(j->prep.status));
		if (j->prep.method)
			cJSON_AddStringToObject(c, "method", j->prep.method);
		if (j->prep.backup)
			cJSON_AddStringToObject(c, "backup", j->prep.backup);
		cJSON_AddItemToObject(c, "steps", cJSON_Duplicate(j->prep.steps, 1));
		if (j->prep.manual_steps)
			cJSON_AddItemToObject(c, "manualSteps", cJSON_Duplicate(j->prep.manual_steps, 1));
	}
	if (j->failed)
		cJSON_AddItemToObject(o, "error", report_error_json(&j->err));
	report_row_details(&j->row, o);
	j->row.code = j->failed ? j->err.code : GERR_OK;
}

static void job_done(void *ud, size_t i)
{
	struct deploy *d = ud;
	struct node_job *j = &d->jobs[i];
	job_row(d, j);
	if (!d->g->output)
		report_print_row(stdout, &d->rep, &j->row, d->g->color);
}

static int phase_nodes(struct deploy *d, struct kube_client *kc, const struct node_target *t, struct gerr *err)
{
	cJSON *nodes = NULL;
	if (d->a->from_inventory ? node_access_inventory_nodes(d->a, t->names, t->nnames, &nodes, err) < 0
				 : nodes_resolve(kc, t, &nodes, err) < 0)
		return -1;
	d->n = (size_t)cJSON_GetArraySize(nodes);
	d->jobs = xcalloc(d->n ? d->n : 1, sizeof(*d->jobs));
	size_t i = 0;
	const cJSON *it;
	int any_talos = 0;
	cJSON_ArrayForEach(it, nodes) {
		struct node_job *j = &d->jobs[i++];
		node_access_spec(d->a, it, &j->spec, &j->talos_os);
		any_talos |= j->talos_os != NULL;
	}
	if (node_specs_check_addresses(&d->jobs[0].spec, d->n, sizeof(*d->jobs), err) < 0)
		return cJSON_Delete(nodes), -1;
	if (fanout_run(d->n, d->a->parallel, job_run, job_done, d) > 0) {
		/* interrupted: nodes in flight were brought to a safe end; the rest were never touched */
		for (i = 0; i < d->n; i++) {
			struct node_job *j = &d->jobs[i];
			if (j->started)
				continue;
			gerr_set(&j->err, GERR_INTERRUPTED, "not started: gpuctl was interrupted (%s); the node was not touched",
				 sig_name(sig_interrupted()));
			gerr_hint(&j->err, "run the same command again to prepare the remaining nodes");
			j->failed = 1;
			job_done(d, i);
		}
	}
	if (any_talos && !d->g->output) {
		struct buf patch = BUF_INIT;
		struct gerr perr = GERR_INIT;
		if (talos_patch_render(d->g, &patch, &perr) == 0)
			fputs(patch.s, stderr);
		else
			gctx_print_error(d->g, &perr);
		buf_release(&patch);
		gerr_clear(&perr);
	}
	/* the rows in node order, as the nodes were listed */
	for (i = 0; i < d->n; i++)
		report_add_row(&d->rep, &d->jobs[i].row);
	if (!d->g->output)
		report_print_summary(stderr, &d->rep);
	/* the full message (with its hint) of the first failure */
	for (i = 0; i < d->n && !d->g->output; i++)
		if (d->jobs[i].failed && (d->jobs[i].err.hint || strchr(d->jobs[i].err.msg ? d->jobs[i].err.msg : "", '\n'))) {
			gctx_print_error(d->g, &d->jobs[i].err);
			break;
		}
	cJSON_Delete(nodes);
	return 0;
}

/* The RuntimeClass from templates/runtimeclass.yaml.tmpl: one document, a
 * RuntimeClass named nvidia with handler nvidia (an override of the template
 * may add to it, not change what deploy relies on). */
static int runtimeclass_object(const struct gctx *g, cJSON **out, struct gerr *err)
{
	static const char tmpl[] = "runtimeclass.yaml.tmpl";
	struct render_ctx rctx = { .dir = g->templates_dir };
	cJSON *values = cJSON_CreateObject(), *docs = NULL;
	cJSON_AddStringToObject(values, "name", "nvidia");
	cJSON_AddStringToObject(values, "handler", "nvidia");
	int r = render_yaml_docs(&rctx, tmpl, values, &docs, NULL, err);
	cJSON_Delete(values);
	if (r < 0)
		return -1;
	cJSON *rc = cJSON_GetArraySize(docs) == 1 ? cJSON_DetachItemFromArray(docs, 0) : NULL;
	cJSON_Delete(docs);
	const char *kind = json_str(rc, "kind"), *name = json_str(cJSON_GetObjectItemCaseSensitive(rc, "metadata"), "name"),
		   *handler = json_str(rc, "handler");
	if (!kind || strcmp(kind, "RuntimeClass") || !name || strcmp(name, "nvidia") || !handler ||
	    strcmp(handler, "nvidia")) {
		cJSON_Delete(rc);
		return gerr_set(err, GERR_INVALID,
				"template %s must render one RuntimeClass named nvidia with handler nvidia", tmpl);
	}
	*out = rc;
	return 0;
}

static void print_diff(const struct apply_result *r);

static int phase_runtimeclass(struct gctx *g, struct kube_client *kc, enum dry_run dry, int diff, struct report *rep,
			      struct gerr *err)
{
	cJSON *rc = NULL;
	if (runtimeclass_object(g, &rc, err) < 0)
		return gerr_prefix(err, "runtimeclass nvidia");
	cJSON *docs = cJSON_CreateArray();
	cJSON_AddItemToArray(docs, rc);
	struct apply_opts ao = { .dry = dry };
	struct apply_result *ar = NULL;
	size_t nar = 0;
	apply_objects(kc, docs, &ao, &ar, &nar);
	cJSON_Delete(docs);
	if (ar[0].status == APPLY_FAILED) {
		gerr_move(err, &ar[0].err);
		apply_results_free(ar, nar);
		return gerr_prefix(err, "runtimeclass nvidia");
	}
	if (diff && !g->output)
		print_diff(&ar[0]);
	/* the handler of a RuntimeClass cannot change: configured means labels only */
	const char *result = ar[0].status == APPLY_CREATED ? "created" : "unchanged";
	apply_results_free(ar, nar);
	int created = !strcmp(result, "created");
	struct report_row *row = report_add(rep, "cluster", "runtimeclass", created ? REPORT_CREATED : REPORT_UNCHANGED,
					    NULL, "%s", dry != DRY_NONE && created ? "[dry run]" : "");
	row->object = xstrdup("runtimeclass/nvidia");
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", "nvidia");
	cJSON_AddStringToObject(o, "handler", "nvidia");
	report_row_details(row, o);
	if (!g->output && !diff)
		report_print_row(stdout, rep, row, g->color);
	return 0;
}

/* ---- the cluster phases: plugin, gfd, dcgm-exporter ---- */

/* What the cluster phases need, found before any write (the preflight). */
struct cluster {
	struct gctx *g;
	struct kube_client *kc;
	enum dry_run dry;
	int diff;                 /* --diff: print what would change */
	long timeout_ms;
	const struct deploy_set_opts *so;
	cJSON *values;
	cJSON *docs;              /* the objects of the selected phases, apply order */
	int run_plugin, run_gfd, run_dcgm;
	int operator_mode;        /* a ClusterPolicy exists, or --operator */
	cJSON *policy;            /* the ClusterPolicy (operator mode), owned */
	int policy_forbidden;     /* ClusterPolicies could not be listed: reported with the other permissions */
	cJSON *objects;           /* the document's objects[] */
	struct report *rep;
	size_t failed;
	char **plugin_nodes;      /* GPU nodes the device plugin's DaemonSet selects (preflight), NULL-ended */
	const cJSON *plugin_tolerations; /* of the DaemonSet applied (in docs) */
	size_t unregistered;      /* of those, not advertising a GPU resource yet (the wait) */
	char *registered;         /* per plugin_nodes entry: 1 once it advertises */
	long deadline;            /* mono_ms() when --timeout runs out for the waits */
};

/* Which of --with's names: gfd, dcgm-exporter (repeatable, comma-separated). */
static int with_parse(const struct strlist *with, int *gfd, int *dcgm, struct gerr *err)
{
	for (size_t i = 0; i < with->n; i++) {
		const char *p = with->v[i];
		while (*p) {
			size_t n = strcspn(p, ",");
			if (n == 3 && !strncmp(p, "gfd", 3))
				*gfd = 1;
			else if (n == 13 && !strncmp(p, "dcgm-exporter", 13))
				*dcgm = 1;
			else
				return gerr_set(err, GERR_USAGE, "--with %.*s: unknown (known: gfd, dcgm-exporter)", (int)n, p);
			p += n;
			if (*p == ',')
				p++;
		}
	}
	return 0;
}

static const char *doc_name(const cJSON *d)
{
	return json_str(cJSON_GetObjectItemCaseSensitive(d, "metadata"), "name");
}

static const char *doc_ns(const cJSON *d)
{
	return json_str(cJSON_GetObjectItemCaseSensitive(d, "metadata"), "namespace");
}

/* The objects of the selected cluster phases (runtimeclass not included). */
static int cluster_docs(struct cluster *c, struct gerr *err)
{
	cJSON_Delete(c->docs); /* again once operator mode is known */
	c->docs = cJSON_CreateArray();
	if (c->run_plugin && !c->operator_mode && deploy_phase_objects(c->so, c->values, "plugin", c->docs, err) < 0)
		return gerr_prefix(err, "plugin");
	if (c->run_gfd && !c->operator_mode && deploy_phase_objects(c->so, c->values, "gfd", c->docs, err) < 0)
		return gerr_prefix(err, "gfd");
	if (c->run_dcgm && !c->operator_mode && deploy_phase_objects(c->so, c->values, "dcgm-exporter", c->docs, err) < 0)
		return gerr_prefix(err, "dcgm-exporter");
	return 0;
}

/* "daemonsets" in group "apps" for the access review of a document. */
static const struct kube_kind *doc_kind(const cJSON *d)
{
	struct gerr e = GERR_INIT;
	const struct kube_kind *k = kube_kind_of(d, &e);
	gerr_clear(&e);
	return k;
}

static const char *kind_group(const struct kube_kind *k, char *buf, size_t n)
{
	const char *slash = strchr(k->group_version, '/');
	if (!slash)
		return "";
	size_t len = (size_t)(slash - k->group_version);
	if (len >= n)
		len = n - 1;
	memcpy(buf, k->group_version, len);
	buf[len] = 0;
	return buf;
}

static void access_add(struct kube_access **v, size_t *n, const char *verb, const char *group, const char *resource,
		       const char *ns)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i].verb, verb) && !strcmp((*v)[i].group, group) && !strcmp((*v)[i].resource, resource) &&
		    ((!ns && !(*v)[i].ns) || (ns && (*v)[i].ns && !strcmp(ns, (*v)[i].ns))))
			return;
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[*n] = (struct kube_access){ .verb = xstrdup(verb), .group = xstrdup(group), .resource = xstrdup(resource),
					  .ns = ns ? xstrdup(ns) : NULL };
	(*n)++;
}

/* Every permission the run needs, asked at once; the missing ones in one
 * error (GERR_FORBIDDEN). */
static int preflight_access(struct cluster *c, const cJSON *extra_doc, struct gerr *err)
{
	struct kube_access *v = NULL;
	size_t n = 0;
	int writes = c->dry != DRY_CLIENT;
	const char *verbs[] = { "get", "create", "patch" };
	const cJSON *d;
	for (int pass = 0; pass < 2; pass++) {
		const cJSON *list = pass == 0 ? c->docs : NULL;
		cJSON_ArrayForEach(d, list) {
			const struct kube_kind *k = doc_kind(d);
			char g[128];
			for (int i = 0; k && i < (writes ? 3 : 1); i++)
				access_add(&v, &n, verbs[i], kind_group(k, g, sizeof g), k->resource,
					   k->namespaced ? doc_ns(d) : NULL);
		}
	}
	if (extra_doc) {
		const struct kube_kind *k = doc_kind(extra_doc);
		char g[128];
		for (int i = 0; k && i < (writes ? 3 : 1); i++)
			access_add(&v, &n, verbs[i], kind_group(k, g, sizeof g), k->resource, doc_ns(extra_doc));
	}
	if (c->operator_mode)
		access_add(&v, &n, writes ? "patch" : "get", "nvidia.com", "clusterpolicies", NULL);
	if (c->policy_forbidden)
		access_add(&v, &n, "list", "nvidia.com", "clusterpolicies", NULL);
	if (c->run_plugin && !c->operator_mode)
		access_add(&v, &n, "list", "apps", "daemonsets", NULL);
	if (c->dry == DRY_NONE && !c->diff)
		access_add(&v, &n, "watch", "apps", "daemonsets", json_str(c->values, "namespace"));
	int rc = kube_can_i_many(c->kc, v, n, err);
	struct buf miss = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && !v[i].allowed)
			buf_addf(&miss, "\n  %s %s%s%s%s%s", v[i].verb, v[i].resource, *v[i].group ? "." : "", v[i].group,
				 v[i].ns ? " in namespace " : "", v[i].ns ? v[i].ns : "");
		free((char *)v[i].verb);
		free((char *)v[i].group);
		free((char *)v[i].resource);
		free((char *)v[i].ns);
	}
	free(v);
	if (rc == 0 && miss.len) {
		gerr_set(err, GERR_FORBIDDEN, "deploy needs permissions the caller lacks (nothing was changed):%s", miss.s);
		gerr_hint(err, "ask a cluster administrator, or check one with: kubectl auth can-i VERB RESOURCE [-n NAMESPACE]");
		rc = -1;
	}
	buf_release(&miss);
	return rc;
}

/* The DaemonSets' node affinity terms (templates), as label key=value. */
static int node_selected(const cJSON *node)
{
	static const char *const terms[][2] = {
		{ "feature.node.kubernetes.io/pci-10de.present", "true" },
		{ "feature.node.kubernetes.io/cpu-model.vendor_id", "NVIDIA" },
		{ "nvidia.com/gpu.present", "true" },
		{ "accelerator", "nvidia" },
	};
	const cJSON *labels = json_get2(node, "metadata", "labels");
	for (size_t i = 0; i < sizeof(terms) / sizeof(terms[0]); i++) {
		const char *v = json_str(labels, terms[i][0]);
		if (v && !strcmp(v, terms[i][1]))
			return 1;
	}
	return 0;
}

static int node_tainted(const cJSON *node)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, json_get2(node, "spec", "taints")) {
		const char *k = json_str(t, "key"), *e = json_str(t, "effect");
		if (k && e && !strcmp(k, "nvidia.com/gpu") && !strcmp(e, "NoSchedule"))
			return 1;
	}
	return 0;
}

/* Warnings about the GPU nodes: none found, not selected by the DaemonSets,
 * not tainted; each with the command that fixes it.  Sets *advertised when a
 * node already advertises nvidia.com/gpu. */
static int preflight_nodes(struct cluster *c, int *advertised, struct gerr *err)
{
	cJSON *nodes = NULL;
	const struct node_target every = { .all = 1 };
	if (nodes_resolve(c->kc, &every, &nodes, err) < 0)
		return -1;
	struct buf unlabelled = BUF_INIT, untainted = BUF_INIT;
	size_t gpus = 0;
	const cJSON *n;
	cJSON_ArrayForEach(n, nodes) {
		if (node_resource(n, "capacity", "nvidia.com/gpu") > 0)
			*advertised = 1;
		if (!node_is_gpu(n))
			continue;
		gpus++;
		if (!node_selected(n))
			buf_addf(&unlabelled, " %s", node_name(n));
		else
			c->plugin_nodes = strv_add(c->plugin_nodes, node_name(n));
		if (!node_tainted(n))
			buf_addf(&untainted, " %s", node_name(n));
	}
	cJSON_Delete(nodes);
	if (!gpus)
		gctx_warn(NULL, "no GPU node found: the DaemonSets will run on none until nodes have GPUs and gpuctl's "
				"labels (gpuctl label NODE...)");
	if (unlabelled.len && !c->operator_mode) {
		struct buf m = BUF_INIT;
		buf_addf(&m, "GPU nodes the device plugin will not run on (no label accelerator=nvidia, "
			     "nvidia.com/gpu.present=true or NFD's pci-10de):%s; fix: gpuctl label%s",
			 unlabelled.s, unlabelled.s);
		gctx_warn(NULL, m.s);
		buf_release(&m);
	}
	if (untainted.len) {
		struct buf m = BUF_INIT;
		buf_addf(&m, "GPU nodes without the taint nvidia.com/gpu:NoSchedule (any pod may land there):%s; fix: "
			     "gpuctl taint%s",
			 untainted.s, untainted.s);
		gctx_warn(NULL, m.s);
		buf_release(&m);
	}
	buf_release(&unlabelled);
	buf_release(&untainted);
	return 0;
}

/* Refuse a second device plugin: a DaemonSet gpuctl did not create runs one. */
static int preflight_foreign(struct cluster *c, struct gerr *err)
{
	char *found = NULL, *img = NULL;
	if (gpustack_foreign_plugins(c->kc, &found, &img, err) < 0)
		return -1;
	int rc = 0;
	if (found) {
		gerr_set(err, GERR_CONFLICT,
			 "a device plugin gpuctl did not deploy already runs (daemonset %s, image %s) and nodes advertise "
			 "nvidia.com/gpu: a second one would register the same resource; nothing was changed",
			 found, img ? img : "?");
		gerr_hint(err, "keep it and leave gpuctl's out (--skip plugin), or delete it (kubectl -n NAMESPACE delete "
			       "daemonset NAME) and run gpuctl deploy again");
		rc = -1;
	}
	free(found);
	free(img);
	return rc;
}

/* The GPU Operator: its ClusterPolicy, when the CRD is there and one exists. */
static int find_policy(struct cluster *c, int forced, struct gerr *err)
{
	int forbidden = 0;
	if (gpustack_cluster_policy(c->kc, &c->policy, &forbidden, err) < 0)
		return -1;
	/* one error lists every missing permission (preflight_access) */
	c->policy_forbidden = forbidden && !forced;
	if (forbidden && forced)
		return gerr_set(err, GERR_FORBIDDEN, "--operator: listing clusterpolicies (nvidia.com/v1) is forbidden");
	c->operator_mode = c->policy != NULL;
	if (forced && !c->policy) {
		gerr_set(err, GERR_NOTFOUND, "--operator: the cluster has no ClusterPolicy (nvidia.com/v1)");
		gerr_hint(err, "install the GPU Operator first, or deploy gpuctl's own device plugin without --operator");
		return -1;
	}
	return 0;
}

/* One object's result: a row for the terminal and an entry of objects[]. */
static void object_result(struct cluster *c, const char *kind, const char *ns, const char *name,
			  enum apply_status st, const char *diff, const struct gerr *e, const char *note)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "kind", kind);
	if (ns)
		cJSON_AddStringToObject(o, "namespace", ns);
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "result", apply_status_name(st));
	if (diff)
		cJSON_AddStringToObject(o, "diff", diff);
	if (e && e->code != GERR_OK)
		cJSON_AddItemToObject(o, "error", report_error_json(e));
	cJSON_AddItemToArray(c->objects, o);
	if (st == APPLY_FAILED)
		c->failed++;

	enum report_status rs = st == APPLY_CREATED ? REPORT_CREATED : st == APPLY_CONFIGURED ? REPORT_CHANGED
				: st == APPLY_UNCHANGED				 ? REPORT_UNCHANGED
										 : REPORT_FAILED;
	struct buf msg = BUF_INIT;
	if (st == APPLY_CONFIGURED)
		buf_adds(&msg, "configured");
	if (diff && st == APPLY_CONFIGURED)
		buf_addf(&msg, ": %.*s", (int)strcspn(diff, "\n"), diff);
	if (note)
		buf_addf(&msg, "%s%s", msg.len ? "; " : "", note);
	if (e && e->code != GERR_OK)
		buf_addf(&msg, "%s%.*s", msg.len ? "  " : "", (int)strcspn(e->msg ? e->msg : "", "\n"), e->msg ? e->msg : "");
	if (c->dry != DRY_NONE && (st == APPLY_CREATED || st == APPLY_CONFIGURED))
		buf_addf(&msg, "%s[dry run]", msg.len ? " " : "");
	struct report_row *row = report_add(c->rep, "cluster", "object", rs, e ? e->hint : NULL, "%s", msg.s ? msg.s : "");
	char *lower = xstrdup(kind);
	for (char *p = lower; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	row->object = xasprintf("%s/%s", lower, name);
	free(lower);
	report_row_details(row, cJSON_Duplicate(o, 1));
	if (!c->g->output && !c->diff)
		report_print_row(stdout, c->rep, row, c->g->color);
	buf_release(&msg);
}

/* --diff: what would change, as text on stdout. */
static void print_diff(const struct apply_result *r)
{
	const char *what = r->status == APPLY_CREATED ? "would be created" : r->status == APPLY_CONFIGURED ? "would change"
							: r->status == APPLY_FAILED ? "cannot be applied"
										    : NULL;
	if (!what)
		return;
	printf("%s %s%s%s: %s\n", r->kind, r->ns ? r->ns : "", r->ns ? "/" : "", r->name, what);
	if (r->status == APPLY_FAILED && r->err.msg)
		printf("  %s\n", r->err.msg);
	for (const char *p = r->diff; p && *p;) {
		size_t n = strcspn(p, "\n");
		printf("  %.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

static void apply_batch(struct cluster *c, cJSON *docs, enum dry_run dry)
{
	if (!cJSON_GetArraySize(docs))
		return;
	struct apply_opts ao = { .dry = dry, .owner = "deploy" };
	struct apply_result *ar = NULL;
	size_t n = 0;
	apply_objects(c->kc, docs, &ao, &ar, &n);
	for (size_t i = 0; i < n; i++) {
		if (ar[i].foreign && !strcmp(ar[i].kind, "Namespace")) {
			/* a namespace of the cluster's own (-n): used, never taken over */
			ar[i].status = APPLY_UNCHANGED;
			gerr_clear(&ar[i].err);
			free(ar[i].diff);
			ar[i].diff = NULL;
		}
		if (c->diff && !c->g->output)
			print_diff(&ar[i]);
		object_result(c, ar[i].kind, ar[i].ns, ar[i].name, ar[i].status, ar[i].diff, &ar[i].err,
			      ar[i].foreign && ar[i].status == APPLY_UNCHANGED ? "exists without gpuctl's label: used, left as it is"
									      : NULL);
	}
	apply_results_free(ar, n);
}

/* The sharing ConfigMap belongs to gpuctl slice once it exists: a later
 * deploy leaves its data alone.  Takes it out of docs when it exists and is
 * gpuctl's (reported unchanged). */
static void keep_configmap(struct cluster *c, cJSON *docs)
{
	int i = 0;
	cJSON *d = docs->child;
	for (; d; d = d->next, i++) {
		const char *k = json_str(d, "kind");
		if (k && !strcmp(k, "ConfigMap") && doc_name(d) && !strcmp(doc_name(d), DEPLOY_CONFIG_NAME))
			break;
	}
	if (!d)
		return;
	cJSON *have = NULL;
	struct gerr e = GERR_INIT;
	if (apply_get_live(c->kc, d, &have, &e) == 0 && apply_is_owned(have)) {
		object_result(c, "ConfigMap", doc_ns(d), doc_name(d), APPLY_UNCHANGED, NULL, NULL,
			      "exists: its configurations are left as they are (gpuctl slice changes them)");
		cJSON_DeleteItemFromArray(docs, i);
	}
	gerr_clear(&e);
	cJSON_Delete(have);
}

static int apply_cluster_objects(struct cluster *c)
{
	cJSON *ns_docs = cJSON_CreateArray(), *rest = cJSON_CreateArray();
	cJSON *d;
	while ((d = cJSON_DetachItemFromArray(c->docs, 0))) {
		const char *k = json_str(d, "kind");
		cJSON_AddItemToArray(k && !strcmp(k, "Namespace") ? ns_docs : rest, d);
	}
	keep_configmap(c, rest);
	size_t before = cJSON_GetArraySize(c->objects);
	apply_batch(c, ns_docs, c->dry);
	/* the namespace must exist before what is in it; a server dry run of a
	 * namespace that is not there yet can only check the rest by reading */
	enum dry_run rest_dry = c->dry;
	const cJSON *o;
	int ns_failed = 0;
	cJSON_ArrayForEach(o, c->objects) {
		if (before-- > 0)
			continue;
		const char *r = json_str(o, "result");
		if (r && !strcmp(r, "created") && c->dry == DRY_SERVER)
			rest_dry = DRY_CLIENT;
		ns_failed |= r && !strcmp(r, "failed");
	}
	if (!ns_failed)
		apply_batch(c, rest, rest_dry);
	/* keep the objects applied, for the wait */
	cJSON_Delete(c->docs);
	c->docs = rest;
	cJSON_Delete(ns_docs);
	return 0;
}

/* Wait for every DaemonSet applied, by watch, within --timeout in all. */
static void wait_daemonsets(struct cluster *c)
{
	size_t total = 0;
	const cJSON *d;
	cJSON_ArrayForEach(d, c->docs) {
		const char *k = json_str(d, "kind");
		total += k && !strcmp(k, "DaemonSet");
	}
	if (!total)
		return;
	struct report_progress p;
	report_progress_init(&p, stderr, !c->g->output, "deploy", "DaemonSets ready", total);
	const struct kube_kind *ds = NULL;
	long deadline = c->deadline = mono_ms() + c->timeout_ms;
	size_t failed = 0;
	cJSON_ArrayForEach(d, c->docs) {
		const char *k = json_str(d, "kind");
		if (!k || strcmp(k, "DaemonSet"))
			continue;
		if (!ds)
			ds = doc_kind(d);
		long left = deadline - mono_ms();
		struct gerr e = GERR_INIT;
		if (left <= 0 ? gerr_set(&e, GERR_NOT_READY, "DaemonSet %s/%s: not ready: --timeout ran out", doc_ns(d),
					 doc_name(d))
			      : apply_wait(c->kc, ds, doc_ns(d), doc_name(d), apply_daemonset_ready, NULL, left, &e) < 0) {
			failed++;
			c->failed++;
			gerr_hint(&e, "see why: kubectl -n %s describe daemonset %s; kubectl -n %s get pods -o wide", doc_ns(d),
				  doc_name(d), doc_ns(d));
			struct report_row *row = report_add(c->rep, "cluster", "wait", REPORT_FAILED, e.hint, "%s", e.msg);
			row->object = xasprintf("daemonset/%s", doc_name(d));
			cJSON *o = cJSON_CreateObject();
			cJSON_AddItemToObject(o, "error", report_error_json(&e));
			report_row_details(row, o);
			/* the object's entry says it is not ready */
			const cJSON *x;
			cJSON_ArrayForEach(x, c->objects)
				if (!strcmp(json_str(x, "kind"), "DaemonSet") && !strcmp(json_str(x, "name"), doc_name(d)))
					cJSON_AddBoolToObject((cJSON *)x, "ready", 0);
			if (p.on)
				fputs("\r\033[K", stderr);
			if (!c->g->output)
				report_print_row(stdout, c->rep, row, c->g->color);
		} else {
			const cJSON *x;
			cJSON_ArrayForEach(x, c->objects)
				if (!strcmp(json_str(x, "kind"), "DaemonSet") && !strcmp(json_str(x, "name"), doc_name(d)))
					cJSON_AddBoolToObject((cJSON *)x, "ready", 1);
		}
		gerr_clear(&e);
		report_progress_step(&p, doc_name(d), failed);
	}
}

static int registered_event(void *ud, const char *type, const cJSON *node, struct gerr *err)
{
	(void)err;
	struct cluster *c = ud;
	if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED"))
		return 0;
	/* a node whose taints the DaemonSet does not tolerate gets no plugin pod:
	 * nothing to wait for there */
	for (size_t i = 0; c->plugin_nodes[i]; i++)
		if (!c->registered[i] && !strcmp(c->plugin_nodes[i], node_name(node)) &&
		    (node_gpu_resource(node, "capacity") ||
		     !taints_tolerated(json_get2(node, "spec", "taints"), c->plugin_tolerations))) {
			c->registered[i] = 1;
			c->unregistered--;
		}
	return c->unregistered == 0;
}

/* A plugin pod Running is not yet a plugin registered with its kubelet: wait
 * (by one watch, within what --timeout leaves) until every node the
 * DaemonSet selects advertises its GPUs, so that GPU pods can be scheduled
 * as soon as deploy returns.  A node that does not is a failed row. */
static void wait_registered(struct cluster *c)
{
	size_t n = strv_len(c->plugin_nodes);
	const cJSON *ds = NULL, *d;
	cJSON_ArrayForEach(d, c->docs)
		if (!strcmp(json_str(d, "kind") ? json_str(d, "kind") : "", "DaemonSet") &&
		    !strcmp(doc_name(d), DEPLOY_PLUGIN_NAME))
			ds = d;
	if (!n || !ds)
		return;
	c->plugin_tolerations = json_get2(json_get2(ds, "spec", "template"), "spec", "tolerations");
	c->registered = xcalloc(n, 1);
	c->unregistered = n;
	long left = c->deadline - mono_ms();
	struct gerr e = GERR_INIT;
	int rc = left > 0 ? nodes_watch(c->kc, NULL, registered_event, c, left, &e) : 0;
	if (c->unregistered) {
		for (size_t i = 0; i < n; i++) {
			if (c->registered[i])
				continue;
			c->failed++;
			char *hint = xasprintf("see the plugin's log on that node: kubectl -n %s logs -l app.kubernetes.io/name="
					       DEPLOY_PLUGIN_NAME " --all-containers --tail 30 (and gpuctl validate)",
					       doc_ns(ds));
			struct report_row *row = report_add(
				c->rep, c->plugin_nodes[i], "wait", REPORT_FAILED, hint,
				"the device plugin runs but the node advertises no GPU (nvidia.com/gpu) %s",
				rc < 0 && !(e.code == GERR_TIMEOUT && !e.http_status) ? e.msg : "before --timeout ran out");
			free(hint);
			row->object = xasprintf("node/%s", c->plugin_nodes[i]);
			if (!c->g->output)
				report_print_row(stdout, c->rep, row, c->g->color);
		}
	}
	gerr_clear(&e);
}

/* GPU Operator mode: the ClusterPolicy's devicePlugin.config {name, default}
 * names gpuctl's ConfigMap (created in the operator's namespace); no plugin
 * of gpuctl's own. */
static int operator_configure(struct cluster *c)
{
	const char *pname = doc_name(c->policy);
	const char *ons = json_str(cJSON_GetObjectItemCaseSensitive(c->policy, "status"), "namespace");
	if (!ons || !*ons)
		ons = "gpu-operator";
	/* the ConfigMap, in the operator's namespace */
	cJSON *vals = cJSON_Duplicate(c->values, 1);
	cJSON_ReplaceItemInObjectCaseSensitive(vals, "namespace", cJSON_CreateString(ons));
	struct render_ctx rctx = { .dir = c->so->templates_dir };
	cJSON *cm = NULL;
	struct gerr e = GERR_INIT;
	if (render_yaml_docs(&rctx, "sharing-config.yaml.tmpl", vals, &cm, NULL, &e) == 0) {
		keep_configmap(c, cm);
		apply_batch(c, cm, c->dry);
	} else {
		object_result(c, "ConfigMap", ons, DEPLOY_CONFIG_NAME, APPLY_FAILED, NULL, &e, NULL);
	}
	gerr_clear(&e);
	cJSON_Delete(cm);
	cJSON_Delete(vals);

	cJSON *want = cJSON_CreateObject();
	cJSON *cfg = cJSON_AddObjectToObject(cJSON_AddObjectToObject(cJSON_AddObjectToObject(want, "spec"), "devicePlugin"),
					     "config");
	cJSON_AddStringToObject(cfg, "name", DEPLOY_CONFIG_NAME);
	cJSON_AddStringToObject(cfg, "default", DEPLOY_CONFIG_DEFAULT);
	enum apply_status st = APPLY_UNCHANGED;
	struct buf diff = BUF_INIT;
	if (!json_contains(c->policy, want)) {
		json_diff(c->policy, want, NULL, &diff, 8);
		st = APPLY_CONFIGURED;
		if (c->dry != DRY_CLIENT) {
			if (gpustack_policy_patch(c->kc, c->policy, want, c->dry == DRY_SERVER, &e) < 0)
				st = APPLY_FAILED;
		}
	}
	if (c->diff && !c->g->output && st != APPLY_UNCHANGED) {
		struct apply_result r = { .kind = (char *)"ClusterPolicy", .name = (char *)pname, .status = st,
					  .diff = diff.s };
		print_diff(&r);
	}
	const char *state = json_str(cJSON_GetObjectItemCaseSensitive(c->policy, "status"), "state");
	char *note = xasprintf("GPU Operator mode: its device plugin uses %s (default %s); state %s", DEPLOY_CONFIG_NAME,
			       DEPLOY_CONFIG_DEFAULT, state ? state : "unknown");
	object_result(c, "ClusterPolicy", NULL, pname, st, diff.len ? diff.s : NULL, &e, note);
	/* the operator's own state, for the document */
	cJSON *last = cJSON_GetArrayItem(c->objects, cJSON_GetArraySize(c->objects) - 1);
	if (last)
		cJSON_AddStringToObject(last, "state", state ? state : "unknown");
	if (state && strcmp(state, "ready"))
		gctx_warn(NULL, "the GPU Operator's ClusterPolicy is not ready (status.state): its operands are still "
				"being deployed or failed; see kubectl get clusterpolicy -o yaml");
	free(note);
	gerr_clear(&e);
	buf_release(&diff);
	cJSON_Delete(want);
	if (c->run_gfd || c->run_dcgm) {
		struct report_row *row = report_add(c->rep, "cluster", "object", REPORT_SKIPPED, NULL, "%s",
						    "the GPU Operator deploys GFD and the DCGM exporter (ClusterPolicy "
						    "spec.gfd, spec.dcgmExporter)");
		row->object = xstrdup("gfd,dcgm-exporter");
		if (!c->g->output && !c->diff)
			report_print_row(stdout, c->rep, row, c->g->color);
	}
	return 0;
}

/* --render: the YAML of every selected cluster phase's objects on stdout,
 * nothing else, no cluster contact. */
static int render_only(struct gctx *g, struct cluster *c, int run_rc, struct gerr *err)
{
	cJSON *all = cJSON_CreateArray();
	if (run_rc) {
		cJSON *rc = NULL;
		if (runtimeclass_object(g, &rc, err) < 0) {
			cJSON_Delete(all);
			return gerr_prefix(err, "runtimeclass nvidia");
		}
		cJSON_AddItemToArray(all, rc);
	}
	cJSON *d;
	while ((d = cJSON_DetachItemFromArray(c->docs, 0)))
		cJSON_AddItemToArray(all, d);
	struct buf out = BUF_INIT;
	deploy_render_yaml(all, &out);
	fwrite(out.s ? out.s : "", 1, out.len, stdout);
	buf_release(&out);
	cJSON_Delete(all);
	return 0;
}

int cmd_deploy(struct gctx *g, int argc, char **argv)
{
	const char *selector = NULL, *restart_cmd = NULL, *check_cmd = NULL, *dry_s = NULL;
	const char *registry = NULL, *plugin_version = NULL;
	int default_runtime = 0, render = 0, diff = 0, operator_flag = 0;
	long timeout_ms = 5 * 60 * 1000;
	struct strlist only = { 0 }, skip = { 0 }, with = { 0 };
	struct node_access a;
	node_access_init(&a);
	struct opt opts[] = {
		{ "selector", 'l', OPT_STRING, &selector, "SELECTOR", "the nodes matching this label selector", NULL },
		{ "only", 0, OPT_LIST, &only, "PHASE", "run only this phase (repeatable): nodes, runtimeclass, plugin, gfd, dcgm-exporter", NULL },
		{ "skip", 0, OPT_LIST, &skip, "PHASE", "skip this phase (repeatable)", NULL },
		{ "with", 0, OPT_LIST, &with, "gfd,dcgm-exporter", "also deploy gpu-feature-discovery and/or the DCGM exporter", NULL },
		NODE_ACCESS_OPTS(&a),
		{ "default-runtime", 0, OPT_BOOL, &default_runtime, NULL, "make nvidia containerd's default runtime", NULL },
		{ "restart-command", 0, OPT_STRING, &restart_cmd, "CMD", "how to restart containerd (default: systemctl restart containerd)", NULL },
		{ "check-command", 0, OPT_STRING, &check_cmd, "CMD", "how to check containerd runs (default: systemctl is-active --quiet containerd)", NULL },
		{ "plugin-version", 0, OPT_STRING, &plugin_version, "VERSION", "the device plugin's version: v0.19.3 (default) or v0.17.2", NULL },
		{ "registry", 0, OPT_STRING, &registry, "REGISTRY", "pull every image from this registry (a mirror) instead of nvcr.io", NULL },
		{ "operator", 0, OPT_BOOL, &operator_flag, NULL, "configure the GPU Operator's device plugin (ClusterPolicy), deploy none", NULL },
		{ "timeout", 0, OPT_DURATION, &timeout_ms, "DURATION", "how long to wait for the DaemonSets to be ready (default 5m)", NULL },
		{ "render", 0, OPT_BOOL, &render, NULL, "print the cluster phases' objects as YAML and exit; contact nothing", NULL },
		{ "diff", 0, OPT_BOOL, &diff, NULL, "show what would change in the cluster; change nothing", NULL },
		{ "dry-run", 0, OPT_OPTARG, &dry_s, "MODE", "probe and show what would change; change nothing", "client" },
		OPT_END,
	};
	struct gerr err = GERR_INIT;
	char **rest;
	int nrest, help, code = 0;
	struct node_target t = { 0 };
	struct deploy d = { .g = g, .a = &a };
	report_init(&d.rep, "DeployResult", "deploy");
	enum dry_run dry = DRY_NONE;
	struct deploy_set_opts so = { 0 };
	struct cluster c = { .g = g, .so = &so };
	static const char *const formats[] = { "json", "yaml", NULL };
	if (opt_parse(g, argc, argv, opts, usage, summary, &rest, &nrest, &help, &err) < 0)
		goto usage_error;
	if (help)
		goto out;
	if (parse_dry_run(dry_s, &dry, &err) < 0)
		goto usage_error;
	if (with_parse(&with, &c.run_gfd, &c.run_dcgm, &err) < 0)
		goto usage_error;
	if (render && (diff || dry_s || g->output)) {
		gerr_set(&err, GERR_USAGE, "--render prints YAML only: it goes with neither --diff, --dry-run nor -o");
		goto usage_error;
	}
	if (timeout_ms <= 0) {
		gerr_set(&err, GERR_USAGE, "--timeout must be more than 0");
		goto usage_error;
	}
	if (deploy_registry_check(registry, &err) < 0)
		goto usage_error;
	if (diff && dry == DRY_NONE)
		dry = DRY_CLIENT; /* --diff changes nothing, on the nodes either */
	const struct node_cmd nc = { .formats = formats, .groups = phases, .group_word = "phase", .node_group = "nodes",
				     .only = &only, .skip = &skip, .selector = selector, .rest = rest, .nrest = nrest };
	if (node_cmd_complete(g, &nc, &a, &t, &err) < 0) {
		code = gctx_setup_error(g, &err, usage, "deploy");
		goto out;
	}
	if (restart_cmd)
		a.flags.restart_command = xstrdup(restart_cmd);
	if (check_cmd)
		a.flags.check_command = xstrdup(check_cmd);
	d.copts.default_runtime = default_runtime;
	d.copts.templates_dir = g->templates_dir;
	d.copts.dry_run = dry != DRY_NONE;
	int run_nodes = only_skip_selected("nodes", &only, &skip) && !render;
	int run_rc = only_skip_selected("runtimeclass", &only, &skip);
	c.run_plugin = only_skip_selected("plugin", &only, &skip);
	c.run_gfd = c.run_gfd && only_skip_selected("gfd", &only, &skip);
	c.run_dcgm = c.run_dcgm && only_skip_selected("dcgm-exporter", &only, &skip);
	int run_cluster = c.run_plugin || c.run_gfd || c.run_dcgm;
	/* everything that can fail without the cluster fails before it is contacted */
	so.templates_dir = g->templates_dir;
	so.ns = g->kopts.namespace_;
	so.plugin_version = plugin_version;
	so.registry = registry;
	if (deploy_values(&so, &c.values, &err) < 0) {
		code = err.code == GERR_USAGE ? gctx_usage_error(g, &err, usage, "deploy") : (gctx_print_error(g, &err), 1);
		goto out;
	}
	c.operator_mode = operator_flag;
	if (cluster_docs(&c, &err) < 0) {
		gctx_print_error(g, &err);
		code = 1;
		goto out;
	}
	if (render) {
		c.operator_mode = 0;
		if (render_only(g, &c, run_rc, &err) < 0) {
			gctx_print_error(g, &err);
			code = 1;
		} else if (out_finish(&err) < 0) {
			gctx_print_error(g, &err);
			code = 1;
		}
		goto out;
	}
	struct kube_client *kc = NULL;
	if (!a.from_inventory && gctx_kube(g, &kc, &err) < 0) {
		gctx_print_error(g, &err);
		code = report_exit_status(NULL, &err);
		goto out;
	}
	report_set(&d.rep, "dryRun", cJSON_CreateString(dry_run_name(dry)));
	d.rep.no_items = !run_nodes; /* "nodes": when the nodes phase ran */
	if (run_nodes && phase_nodes(&d, kc, &t, &err) < 0) {
		gctx_print_error(g, &err);
		code = report_exit_status(NULL, &err);
		goto out;
	}
	c.kc = kc;
	c.dry = dry;
	c.diff = diff;
	c.timeout_ms = timeout_ms;
	c.rep = &d.rep;
	c.objects = cJSON_CreateArray();
	/* nothing new after an interrupt: the exit status says it */
	if (sig_interrupted())
		goto done;
	if (run_cluster) {
		/* preflight: nothing is written unless all of it passes */
		int advertised = 0;
		if (find_policy(&c, operator_flag, &err) < 0 || (c.operator_mode && cluster_docs(&c, &err) < 0) ||
		    preflight_access(&c, NULL, &err) < 0 || preflight_nodes(&c, &advertised, &err) < 0 ||
		    (c.run_plugin && !c.operator_mode && advertised && preflight_foreign(&c, &err) < 0)) {
			gctx_print_error(g, &err);
			goto done;
		}
	}
	if (run_rc && phase_runtimeclass(g, kc, dry, diff, &d.rep, &err) < 0) {
		gctx_print_error(g, &err);
		goto done;
	}
	if (run_cluster && !sig_interrupted()) {
		if (c.operator_mode && c.run_plugin)
			operator_configure(&c);
		if (!c.operator_mode)
			apply_cluster_objects(&c);
		if (dry == DRY_NONE && !c.failed && !sig_interrupted()) {
			c.deadline = mono_ms() + c.timeout_ms;
			wait_daemonsets(&c);
			if (c.run_plugin && !c.operator_mode && !c.failed && !sig_interrupted())
				wait_registered(&c);
		}
		report_set(&d.rep, "objects", cJSON_Duplicate(c.objects, 1));
	}
done:
	code = report_exit_status(&d.rep, &err);
	if (!code && c.failed)
		code = 1; /* an object that failed (its row says why) */
	gerr_clear(&err);
	if (g->output)
		report_print_doc(stdout, &d.rep, g->output);
	else if (diff && run_cluster && !c.failed && !code) {
		int any = 0;
		const cJSON *o;
		cJSON_ArrayForEach(o, c.objects)
			any |= strcmp(json_str(o, "result"), "unchanged") != 0;
		if (!any)
			fputs("no differences\n", stderr);
	}
	if (out_finish(&err) < 0) {
		gctx_print_error(g, &err);
		code = code ? code : 1;
	}
	goto out;
usage_error:
	code = gctx_usage_error(g, &err, usage, "deploy");
out:
	for (size_t i = 0; i < d.n; i++) {
		node_spec_release(&d.jobs[i].spec);
		if (d.jobs[i].probed)
			probe_result_release(&d.jobs[i].probe);
		if (d.jobs[i].prepared)
			prep_result_release(&d.jobs[i].prep);
		gerr_clear(&d.jobs[i].err);
		report_row_release(&d.jobs[i].row);
	}
	free(d.jobs);
	report_release(&d.rep);
	node_access_release(&a);
	strlist_release(&only);
	strlist_release(&skip);
	strlist_release(&with);
	cJSON_Delete(c.values);
	cJSON_Delete(c.docs);
	cJSON_Delete(c.policy);
	cJSON_Delete(c.objects);
	strv_free(c.plugin_nodes);
	free(c.registered);
	gerr_clear(&err);
	return code;
}
