/* gpuctl cleanup: take out exactly what gpuctl put in, in order: the cluster
 * objects it created (by its managed-by label; waited for until gone), the
 * node labels and taints it recorded adding, then, over SSH, containerd's
 * configuration as it was before deploy (and a compute mode MPS left).
 * What it cannot or must not remove is reported, never touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cmd.h"
#include "gpuctl/gpustack.h"
#include "gpuctl/apply.h"
#include "gpuctl/buf.h"
#include "gpuctl/fanout.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/node.h"
#include "gpuctl/out.h"
#include "gpuctl/owned.h"
#include "gpuctl/plan.h"
#include "gpuctl/report.h"
#include "gpuctl/sig.h"
#include "gpuctl/util.h"

static const char usage[] =
	"gpuctl cleanup [NODE...] [-l SELECTOR] [--only GROUP] [--skip GROUP] [--force KIND/NAME|nodes] [--inventory FILE] "
	"[--ssh-user USER] [-i KEY] [--ssh-port PORT] [--ssh-timeout SECONDS] [--ssh-accept-new] [-J JUMP] "
	"[--known-hosts FILE] [--parallel N] [--from-inventory] [--restart-command CMD] [--check-command CMD] "
	"[--timeout DURATION] [--dry-run] [-o json|yaml]";
static const char summary[] =
	"Remove what gpuctl created, and nothing else. Groups, in order:\n"
	"  cluster  every object carrying gpuctl's managed-by label (DaemonSets, RBAC, the RuntimeClass,\n"
	"           its namespace...), waiting until they are gone\n"
	"  labels   the labels and taints gpuctl added to nodes (recorded in the node's gpuctl.io/added-*\n"
	"           annotations), and the values of labels it overwrote put back; a person's labels stay\n"
	"  nodes    over SSH: containerd's configuration as before deploy (drop-in and import removed, or\n"
	"           restored from gpuctl's backup), containerd restarted; a compute mode MPS left at\n"
	"           EXCLUSIVE_PROCESS reset where gpuctl recorded configuring MPS\n"
	"What gpuctl did not create is reported, never removed: CRDs such as the GPU Operator's, loaded\n"
	"kernel modules. --force KIND/NAME also deletes that object; --force nodes restores containerd's\n"
	"configuration even where a person changed it since gpuctl wrote it.";

static const char *const groups[] = { "cluster", "labels", "nodes", NULL };

/* CRDs gpuctl never creates but users expect to see named */
static const char *const foreign_crds[] = { "clusterpolicies.nvidia.com", "nvidiadrivers.nvidia.com", NULL };

struct cjob {
	struct node_spec spec;
	const char *talos_os;
	int mps_record;          /* the node carries gpuctl's record of configuring MPS */
	struct probe_result probe;
	int probed;
	struct prep_result prep;
	int prepared;
	cJSON *left;             /* what stays on the node, said in words */
	int mode_reset;          /* GPUs whose compute mode was (or would be) reset */
	int mode_warn;           /* EXCLUSIVE_PROCESS without gpuctl's record: left */
	struct gerr err;
	int failed;
	int started;
	struct report_row row;
};

struct cleanup {
	struct gctx *g;
	struct node_access *a;
	struct cjob *jobs;
	size_t n;
	struct containerd_opts copts;
	int force_nodes;
	struct report rep;
};

static void job_run(void *ud, size_t i)
{
	struct cleanup *d = ud;
	struct cjob *j = &d->jobs[i];
	j->started = 1;
	j->left = cJSON_CreateArray();
	if (j->talos_os) {
		gerr_set(&j->err, GERR_CONFIG, "node %s runs %s, which has no SSH: remove gpuctl's machine-config patch with talosctl",
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
	struct node_access_ref ref = { d->a, &j->spec };
	struct containerd_opts co = node_access_containerd_opts(&d->copts, &j->spec, &j->probe, &ref);
	if (node_has_containerd(&j->probe)) {
		j->prepared = 1;
		if (containerd_undo(c, &j->probe, &co, d->force_nodes, &j->prep) < 0) {
			gerr_move(&j->err, &j->prep.err);
			gerr_prefix(&j->err, "node %s: containerd", j->spec.name);
			j->failed = 1;
		}
	}
	/* MPS leaves the GPUs at EXCLUSIVE_PROCESS: reset only what gpuctl set */
	int excl = 0;
	for (size_t k = 0; k < j->probe.gpus.n; k++)
		excl += j->probe.gpus.gpus[k].compute_mode && !strcasecmp(j->probe.gpus.gpus[k].compute_mode, "Exclusive_Process");
	if (excl && !j->mps_record) {
		j->mode_warn = excl;
		cJSON_AddItemToArray(j->left, cJSON_CreateString("compute mode EXCLUSIVE_PROCESS: not set by gpuctl (no record of it "
								 "configuring MPS); reset it with nvidia-smi -c DEFAULT if it should go"));
	} else if (excl && !j->failed) {
		struct gerr e = GERR_INIT;
		if (!co.dry_run && node_compute_mode_reset(c, &e) < 0) {
			gerr_move(&j->err, &e);
			gerr_prefix(&j->err, "node %s: compute mode", j->spec.name);
			j->failed = 1;
		} else {
			j->mode_reset = excl;
		}
	}
	struct nv_modules *m = &j->probe.modules;
	if (m->nvidia || m->nvidia_uvm)
		cJSON_AddItemToArray(j->left, cJSON_CreateString("kernel modules stay loaded (gpuctl neither loads nor unloads them)"));
	ssh_close(c);
}

static enum report_status job_status(const struct cjob *j)
{
	if (j->failed)
		return !j->prepared ? REPORT_FAILED
		       : j->prep.status == PREP_ROLLED_BACK ? REPORT_ROLLED_BACK
		       : j->prep.status == PREP_ROLLBACK_FAILED ? REPORT_ROLLBACK_FAILED
							      : REPORT_FAILED;
	return (j->prepared && j->prep.status == PREP_CHANGED) || j->mode_reset ? REPORT_CHANGED : REPORT_UNCHANGED;
}

static void job_row(const struct cleanup *d, struct cjob *j)
{
	struct buf line = BUF_INIT;
	const char *dry = d->copts.dry_run ? " [dry run]" : "";
	if (!j->failed) {
		if (j->prepared && j->prep.status == PREP_CHANGED)
			buf_addf(&line, "; containerd configuration restored (%s)%s", j->prep.method,
				 d->copts.dry_run ? " [dry run]" : ", containerd restarted");
		else
			buf_adds(&line, "; nothing of gpuctl's in containerd's configuration");
		if (j->mode_reset)
			buf_addf(&line, "; compute mode reset to DEFAULT on %d GPU%s%s", j->mode_reset, j->mode_reset == 1 ? "" : "s",
				 dry);
		if (j->mode_warn)
			buf_adds(&line, "; compute mode EXCLUSIVE_PROCESS left (not gpuctl's)");
	} else {
		const char *m = j->err.msg ? j->err.msg : "failed";
		buf_addf(&line, "; %.*s", (int)strcspn(m, "\n"), m);
	}
	report_row_set(&j->row, j->spec.name, "containerd", job_status(j), j->failed ? j->err.hint : NULL, "%s",
		       line.len ? line.s + 2 : "");
	buf_release(&line);
	cJSON *o = cJSON_CreateObject();
	if (j->prepared) {
		cJSON *c = cJSON_AddObjectToObject(o, "containerd");
		cJSON_AddStringToObject(c, "result", prep_status_name(j->prep.status));
		if (j->prep.method)
			cJSON_AddStringToObject(c, "method", j->prep.method);
		if (j->prep.backup)
			cJSON_AddStringToObject(c, "restoredFrom", j->prep.backup);
		cJSON_AddItemToObject(c, "steps", cJSON_Duplicate(j->prep.steps, 1));
		if (j->prep.manual_steps)
			cJSON_AddItemToObject(c, "manualSteps", cJSON_Duplicate(j->prep.manual_steps, 1));
	}
	if (j->mode_reset)
		cJSON_AddNumberToObject(o, "computeModeReset", j->mode_reset);
	if (j->left)
		cJSON_AddItemToObject(o, "left", cJSON_Duplicate(j->left, 1));
	if (j->failed)
		cJSON_AddItemToObject(o, "error", report_error_json(&j->err));
	report_row_details(&j->row, o);
	j->row.code = j->failed ? j->err.code : GERR_OK;
}

static void job_done(void *ud, size_t i)
{
	struct cleanup *d = ud;
	job_row(d, &d->jobs[i]);
}

static int has_record(const cJSON *node)
{
	const cJSON *a = json_get2(node, "metadata", "annotations");
	return json_str(a, GPUCTL_ADDED_LABELS_KEY) || json_str(a, GPUCTL_OVERWRITTEN_LABELS_KEY) ||
	       json_str(a, GPUCTL_ADDED_TAINTS_KEY) || json_str(a, GPUCTL_MPS_RECORD_KEY);
}

/* The nodes: those named (or -l), else every GPU node and every node with
 * a gpuctl record (a node whose device plugin is gone may no longer look
 * like a GPU node). */
static int resolve(struct kube_client *kc, const struct node_target *t, cJSON **nodes, struct gerr *err)
{
	if (t->nnames || t->selector)
		return nodes_resolve(kc, t, nodes, err);
	struct node_target all = { .all = 1 };
	cJSON *items = NULL;
	if (nodes_resolve(kc, &all, &items, err) < 0)
		return -1;
	*nodes = cJSON_CreateArray();
	const cJSON *it;
	cJSON_ArrayForEach(it, items)
		if (node_is_gpu(it) || has_record(it))
			cJSON_AddItemToArray(*nodes, cJSON_Duplicate(it, 1));
	cJSON_Delete(items);
	return 0;
}

static int phase_nodes(struct cleanup *d, const cJSON *nodes, struct gerr *err)
{
	d->n = (size_t)cJSON_GetArraySize(nodes);
	d->jobs = xcalloc(d->n ? d->n : 1, sizeof(*d->jobs));
	size_t i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, nodes) {
		struct cjob *j = &d->jobs[i++];
		node_access_spec(d->a, it, &j->spec, &j->talos_os);
		j->mps_record = json_str(json_get2(it, "metadata", "annotations"), GPUCTL_MPS_RECORD_KEY) != NULL;
	}
	if (d->n && node_specs_check_addresses(&d->jobs[0].spec, d->n, sizeof(*d->jobs), err) < 0)
		return -1;
	if (fanout_run(d->n, d->a->parallel, job_run, job_done, d) > 0) {
		for (i = 0; i < d->n; i++) {
			struct cjob *j = &d->jobs[i];
			if (j->started)
				continue;
			gerr_set(&j->err, GERR_INTERRUPTED, "not started: gpuctl was interrupted (%s); the node was not touched",
				 sig_name(sig_interrupted()));
			gerr_hint(&j->err, "run the same command again to clean up the remaining nodes");
			j->failed = 1;
			job_done(d, i);
		}
	}
	for (i = 0; i < d->n; i++)
		report_add_row(&d->rep, &d->jobs[i].row);
	return 0;
}

/* ---- the cluster ---- */

static void object_row(struct report *rep, const char *kind, const char *ns, const char *name, enum report_status st,
		       const struct gerr *e, const char *text)
{
	struct buf obj = BUF_INIT;
	buf_addf(&obj, "%s/", kind);
	if (ns)
		buf_addf(&obj, "%s/", ns);
	buf_adds(&obj, name);
	for (char *p = obj.s; *p && *p != '/'; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	/* the table names the target only: the message starts with the object */
	struct report_row *row = report_add(rep, "cluster", "object", st, e ? e->hint : NULL, "%s %s", obj.s, text);
	row->object = xstrdup(obj.s);
	cJSON *dt = cJSON_CreateObject();
	cJSON_AddStringToObject(dt, "kind", kind);
	if (ns)
		cJSON_AddStringToObject(dt, "namespace", ns);
	cJSON_AddStringToObject(dt, "name", name);
	if (e && e->code != GERR_OK)
		cJSON_AddItemToObject(dt, "error", report_error_json(e));
	report_row_details(row, dt);
	row->code = e ? e->code : GERR_OK;
	buf_release(&obj);
}

/* Wait until no object of gpuctl's is left (foreground deletion: the
 * DaemonSets' pods first), listing again once a second up to timeout_ms. */
static int wait_gone(struct kube_client *kc, long timeout_ms, char **left)
{
	long until = mono_ms() + timeout_ms;
	for (;;) {
		struct apply_result *r = NULL;
		size_t n = 0;
		apply_delete_owned(kc, NULL, DRY_CLIENT, &r, &n);
		size_t present = 0;
		struct buf b = BUF_INIT;
		for (size_t i = 0; i < n; i++)
			if (r[i].status == APPLY_DELETED) {
				if (present++ < 5)
					buf_addf(&b, "%s%s/%s", b.len ? ", " : "", r[i].kind, r[i].name);
			}
		apply_results_free(r, n);
		if (!present) {
			buf_release(&b);
			return 0;
		}
		if (mono_ms() + 1000 > until || sig_interrupted()) {
			*left = buf_detach(&b);
			return -1;
		}
		buf_release(&b);
		struct timespec ts = { 1, 0 };
		nanosleep(&ts, NULL);
	}
}

static int is_gpuctls(const cJSON *obj)
{
	const char *v = json_str(json_get2(obj, "metadata", "labels"), GPUCTL_MANAGED_BY_KEY);
	return v && !strcmp(v, GPUCTL_MANAGED_BY_VALUE);
}

/* KIND/NAME of --force: the kind (as Kind, or its resource, any case) among
 * those gpuctl manages; namespaced kinds in the namespace of -n. */
static const struct kube_kind *force_kind(const char *spec, const char **name)
{
	const char *sl = strchr(spec, '/');
	if (!sl || !sl[1] || strchr(sl + 1, '/'))
		return NULL;
	size_t kl = (size_t)(sl - spec);
	*name = sl + 1;
	for (const struct kube_kind *k = kube_owned_kinds; k->kind; k++)
		if ((strlen(k->kind) == kl && !strncasecmp(k->kind, spec, kl)) ||
		    (strlen(k->resource) == kl && !strncasecmp(k->resource, spec, kl)) ||
		    (strlen(k->resource) == kl + 1 && !strncasecmp(k->resource, spec, kl)))
			return k;
	return NULL;
}

static int phase_cluster(struct cleanup *d, struct kube_client *kc, enum dry_run dry, const struct strlist *force,
			 long timeout_ms)
{
	struct report *rep = &d->rep;
	struct apply_result *r = NULL;
	size_t n = 0;
	int failed = 0;
	/* GPU Operator mode first: its plugin goes back to the config it had,
	 * before gpuctl's ConfigMap is deleted under it */
	cJSON *policy = NULL;
	int forbidden = 0;
	struct gerr pe = GERR_INIT;
	if (gpustack_cluster_policy(kc, &policy, &forbidden, &pe) == 0 && policy &&
	    json_str(json_get2(policy, "metadata", "annotations"), GPUCTL_POLICY_RECORD_KEY)) {
		const char *pname = json_str(cJSON_GetObjectItemCaseSensitive(policy, "metadata"), "name");
		const char *was = json_str(json_get2(policy, "metadata", "annotations"), GPUCTL_POLICY_RECORD_KEY);
		int restored = 0;
		char *text = xasprintf("spec.devicePlugin.config %s %s", dry == DRY_NONE ? "put back to" : "would be put back to", was);
		if (dry == DRY_CLIENT || gpustack_policy_restore(kc, policy, dry == DRY_SERVER, &restored, &pe) == 0) {
			object_row(rep, "ClusterPolicy", NULL, pname, REPORT_CHANGED, NULL, text);
		} else {
			object_row(rep, "ClusterPolicy", NULL, pname, REPORT_FAILED, &pe, pe.msg);
			failed = 1;
		}
		free(text);
	}
	gerr_clear(&pe);
	cJSON_Delete(policy);
	apply_delete_owned(kc, NULL, dry, &r, &n);
	for (size_t i = 0; i < n; i++) {
		if (r[i].status == APPLY_FAILED) {
			object_row(rep, r[i].kind, r[i].ns, r[i].name, REPORT_FAILED, &r[i].err, r[i].err.msg);
			failed = 1;
		} else {
			object_row(rep, r[i].kind, r[i].ns, r[i].name, REPORT_CHANGED, NULL,
				   dry == DRY_NONE ? "deleted" : "would be deleted (dry run)");
		}
	}
	/* --force KIND/NAME: objects gpuctl did not create, named by the user */
	const char *ns = d->g->kopts.namespace_;
	for (size_t i = 0; i < force->n; i++) {
		if (!strchr(force->v[i], '/'))
			continue;
		const char *name = NULL;
		const struct kube_kind *k = force_kind(force->v[i], &name);
		const char *ons = k->namespaced ? (ns ? ns : "default") : NULL;
		struct gerr e = GERR_INIT;
		cJSON *have = NULL;
		if (apply_get_named(kc, k, ons, name, &have, &e) < 0) {
			if (e.code == GERR_NOTFOUND)
				object_row(rep, k->kind, ons, name, REPORT_UNCHANGED, NULL, "not there (--force)");
			else
				object_row(rep, k->kind, ons, name, REPORT_FAILED, &e, e.msg), failed = 1;
		} else if (is_gpuctls(have)) {
			/* gpuctl's own: the row above deleted it already */
		} else if (dry == DRY_CLIENT) {
			object_row(rep, k->kind, ons, name, REPORT_CHANGED, NULL, "would be deleted (--force, dry run)");
		} else if (apply_delete_named(kc, k, ons, name, dry == DRY_SERVER, &e) < 0 && e.code != GERR_NOTFOUND) {
			object_row(rep, k->kind, ons, name, REPORT_FAILED, &e, e.msg);
			failed = 1;
		} else {
			object_row(rep, k->kind, ons, name, REPORT_CHANGED, NULL, "deleted (--force: not created by gpuctl)");
		}
		gerr_clear(&e);
		cJSON_Delete(have);
	}
	if (dry == DRY_NONE && n && !failed) {
		char *left = NULL;
		if (wait_gone(kc, timeout_ms, &left) < 0) {
			struct gerr e = GERR_INIT;
			gerr_set(&e, GERR_NOT_READY, "still there after the timeout: %s", left ? left : "?");
			gerr_hint(&e, "they may be waiting on finalizers; run cleanup again, or raise --timeout");
			struct report_row *row = report_add(rep, "cluster", "wait", REPORT_FAILED, e.hint, "%s", e.msg);
			row->code = e.code;
			gerr_clear(&e);
			free(left);
			failed = 1;
		}
	}
	/* what gpuctl never creates, said so that nobody expects it gone */
	for (size_t i = 0; foreign_crds[i]; i++) {
		int exists = 0;
		struct gerr e = GERR_INIT;
		if (gpustack_crd_exists(kc, foreign_crds[i], &exists, &e) == 0 && exists)
			object_row(rep, "CustomResourceDefinition", NULL, foreign_crds[i], REPORT_SKIPPED, NULL,
				   "left: not created by gpuctl (the GPU Operator's)");
		gerr_clear(&e);
	}
	apply_results_free(r, n);
	return failed ? -1 : 0;
}

/* ---- the labels ---- */

static void phase_labels(struct cleanup *d, struct kube_client *kc, cJSON *nodes, enum dry_run dry)
{
	struct edit_result *r = NULL;
	size_t n = 0;
	struct gerr err = GERR_INIT;
	if (!cJSON_GetArraySize(nodes))
		return;
	if (nodes_edit(kc, nodes, cleanup_plan_node, NULL, dry, &r, &n, &err) < 0) {
		struct report_row *row = report_add(&d->rep, "cluster", "labels", REPORT_FAILED, err.hint, "%s", err.msg);
		row->code = err.code;
		gerr_clear(&err);
		return;
	}
	static const enum report_status statuses[] = {
		[EDIT_UNCHANGED] = REPORT_UNCHANGED, [EDIT_CHANGED] = REPORT_CHANGED,
		[EDIT_FAILED] = REPORT_FAILED, [EDIT_SKIPPED] = REPORT_SKIPPED,
	};
	for (size_t i = 0; i < n; i++) {
		struct buf line = BUF_INIT;
		const cJSON *ch;
		cJSON_ArrayForEach(ch, r[i].changes) {
			const char *kind = json_str(ch, "kind"), *op = json_str(ch, "op"), *key = json_str(ch, "key");
			if (!strcmp(kind, "annotation"))
				continue;
			buf_addf(&line, " %c%s", !strcmp(op, "remove") ? '-' : '~', key);
			if (strcmp(op, "remove"))
				buf_addf(&line, "=%s", json_str(ch, "value"));
			if (json_str(ch, "effect"))
				buf_addf(&line, ":%s", json_str(ch, "effect"));
		}
		if (r[i].status == EDIT_CHANGED && !line.len)
			buf_adds(&line, " gpuctl's record removed");
		if (r[i].status == EDIT_UNCHANGED)
			buf_adds(&line, " no labels or taints of gpuctl's");
		if (r[i].status == EDIT_CHANGED && dry != DRY_NONE)
			buf_addf(&line, " (dry run: %s)", dry_run_name(dry));
		if (r[i].err.code != GERR_OK)
			buf_addf(&line, " %.*s", (int)strcspn(r[i].err.msg, "\n"), r[i].err.msg);
		struct report_row *row = report_add(&d->rep, r[i].node, "labels", statuses[r[i].status], r[i].err.hint, "%s",
						    line.len ? line.s + 1 : "");
		row->code = r[i].status == EDIT_FAILED ? r[i].err.code : GERR_OK;
		cJSON *dt = cJSON_CreateObject();
		cJSON_AddItemToObject(dt, "changes", cJSON_Duplicate(r[i].changes, 1));
		if (r[i].err.code != GERR_OK)
			cJSON_AddItemToObject(dt, "error", report_error_json(&r[i].err));
		report_row_details(row, dt);
		buf_release(&line);
	}
	edit_results_free(r, n);
}

/* The MPS record goes once the compute mode is back (or never was changed). */
static int drop_mps_record(void *ud, const cJSON *node, struct edit_result *r)
{
	(void)ud;
	const char *v = json_str(json_get2(node, "metadata", "annotations"), GPUCTL_MPS_RECORD_KEY);
	r->state = cJSON_CreateObject();
	if (!v)
		return 0;
	cJSON *patch = cJSON_CreateArray(), *t = cJSON_CreateObject(), *o = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "op", "test");
	cJSON_AddStringToObject(t, "path", "/metadata/annotations/gpuctl.io~1mps");
	cJSON_AddStringToObject(t, "value", v);
	cJSON_AddStringToObject(o, "op", "remove");
	cJSON_AddStringToObject(o, "path", "/metadata/annotations/gpuctl.io~1mps");
	cJSON_AddItemToArray(patch, t);
	cJSON_AddItemToArray(patch, o);
	r->patch = cJSON_PrintUnformatted(patch);
	cJSON_Delete(patch);
	return 0;
}

static void finish_mps(struct cleanup *d, struct kube_client *kc, const cJSON *nodes, enum dry_run dry)
{
	cJSON *done = cJSON_CreateArray();
	size_t i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, nodes) {
		const struct cjob *j = &d->jobs[i++];
		if (j->mps_record && j->probed && !j->failed)
			cJSON_AddItemToArray(done, cJSON_Duplicate(it, 1));
	}
	struct edit_result *r = NULL;
	size_t n = 0;
	struct gerr err = GERR_INIT;
	if (cJSON_GetArraySize(done) && nodes_edit(kc, done, drop_mps_record, NULL, dry, &r, &n, &err) < 0) {
		struct report_row *row = report_add(&d->rep, "cluster", "mps-record", REPORT_FAILED, err.hint, "%s", err.msg);
		row->code = err.code;
	}
	gerr_clear(&err);
	edit_results_free(r, n);
	cJSON_Delete(done);
}

static int nothing_done(const struct report *rep)
{
	for (size_t i = 0; i < rep->n; i++)
		if (rep->v[i].status != REPORT_UNCHANGED && rep->v[i].status != REPORT_SKIPPED)
			return 0;
	return 1;
}

int cmd_cleanup(struct gctx *g, int argc, char **argv)
{
	const char *selector = NULL, *restart_cmd = NULL, *check_cmd = NULL, *dry_s = NULL;
	long timeout_ms = 5 * 60 * 1000;
	struct strlist only = { 0 }, skip = { 0 }, force = { 0 };
	struct node_access a;
	node_access_init(&a);
	struct opt opts[] = {
		{ "selector", 'l', OPT_STRING, &selector, "SELECTOR", "the nodes matching this label selector", NULL },
		{ "only", 0, OPT_LIST, &only, "GROUP", "run only this group (repeatable): cluster, labels, nodes", NULL },
		{ "skip", 0, OPT_LIST, &skip, "GROUP", "skip this group (repeatable)", NULL },
		{ "force", 0, OPT_LIST, &force, "KIND/NAME|nodes",
		  "also delete this object gpuctl did not create; nodes: restore containerd's configuration a person changed since", NULL },
		NODE_ACCESS_OPTS(&a),
		{ "restart-command", 0, OPT_STRING, &restart_cmd, "CMD", "how to restart containerd (default: systemctl restart containerd)", NULL },
		{ "check-command", 0, OPT_STRING, &check_cmd, "CMD", "how to check containerd runs (default: systemctl is-active --quiet containerd)", NULL },
		{ "timeout", 0, OPT_DURATION, &timeout_ms, "DURATION", "how long to wait for the objects to be gone (default 5m)", NULL },
		{ "dry-run", 0, OPT_OPTARG, &dry_s, "MODE", "list what would be removed; change nothing", "client" },
		OPT_END,
	};
	struct gerr err = GERR_INIT;
	char **rest;
	int nrest, help, code = 0;
	struct node_target t = { 0 };
	struct cleanup d = { .g = g, .a = &a };
	report_init(&d.rep, "CleanupResult", "cleanup");
	enum dry_run dry = DRY_NONE;
	cJSON *nodes = NULL;
	static const char *const formats[] = { "json", "yaml", NULL };
	if (opt_parse(g, argc, argv, opts, usage, summary, &rest, &nrest, &help, &err) < 0)
		goto usage_error;
	if (help)
		goto out;
	if (parse_dry_run(dry_s, &dry, &err) < 0)
		goto usage_error;
	if (timeout_ms <= 0) {
		gerr_set(&err, GERR_USAGE, "--timeout must be more than 0");
		goto usage_error;
	}
	for (size_t i = 0; i < force.n; i++) {
		const char *name;
		if (!strcmp(force.v[i], "nodes"))
			d.force_nodes = 1;
		else if (!force_kind(force.v[i], &name)) {
			gerr_set(&err, GERR_USAGE, "--force %s: give KIND/NAME of a kind gpuctl manages (e.g. runtimeclass/nvidia), or nodes",
				 force.v[i]);
			goto usage_error;
		}
	}
	const struct node_cmd nc = { .formats = formats, .groups = groups, .group_word = "group", .node_group = "nodes",
				     .only = &only, .skip = &skip, .selector = selector, .rest = rest, .nrest = nrest };
	if (node_cmd_complete(g, &nc, &a, &t, &err) < 0) {
		code = gctx_setup_error(g, &err, usage, "cleanup");
		goto out;
	}
	if (restart_cmd)
		a.flags.restart_command = xstrdup(restart_cmd);
	if (check_cmd)
		a.flags.check_command = xstrdup(check_cmd);
	d.copts.dry_run = dry != DRY_NONE;
	int run_cluster = only_skip_selected("cluster", &only, &skip);
	int run_labels = only_skip_selected("labels", &only, &skip);
	int run_nodes = only_skip_selected("nodes", &only, &skip);
	struct kube_client *kc = NULL;
	if (!a.from_inventory && gctx_kube(g, &kc, &err) < 0) {
		gctx_print_error(g, &err);
		code = report_exit_status(NULL, &err);
		goto out;
	}
	report_set(&d.rep, "dryRun", cJSON_CreateString(dry_run_name(dry)));
	/* the nodes as they are before anything changes: the MPS record is read here */
	if ((run_labels || run_nodes) &&
	    (a.from_inventory ? node_access_inventory_nodes(&a, t.names, t.nnames, &nodes, &err) < 0
			      : resolve(kc, &t, &nodes, &err) < 0)) {
		gctx_print_error(g, &err);
		code = report_exit_status(NULL, &err);
		goto out;
	}
	/* 1. the cluster objects, waited for until gone: nothing of gpuctl's runs
	 * on a node whose containerd is put back */
	if (run_cluster && phase_cluster(&d, kc, dry, &force, timeout_ms) < 0 && dry == DRY_NONE) {
		/* objects still there: the nodes' runtime stays until they are gone */
		if (run_nodes)
			report_add(&d.rep, "cluster", "nodes", REPORT_SKIPPED,
				   "run cleanup again once the objects above are gone",
				   "nodes not cleaned up: gpuctl's objects are not all gone from the cluster");
		run_nodes = 0;
	}
	if (run_labels && !sig_interrupted())
		phase_labels(&d, kc, nodes, dry);
	if (run_nodes && !sig_interrupted()) {
		if (phase_nodes(&d, nodes, &err) < 0) {
			gctx_print_error(g, &err);
			code = report_exit_status(NULL, &err);
			goto out;
		}
		if (kc)
			finish_mps(&d, kc, nodes, dry);
	}
	code = report_exit_status(&d.rep, &err);
	if (g->output) {
		report_print_doc(stdout, &d.rep, g->output);
	} else {
		report_print_table(stdout, &d.rep, g->color);
		if (nothing_done(&d.rep))
			fputs("cleanup: nothing to do\n", stderr);
		for (size_t i = 0; i < d.n; i++)
			if (d.jobs[i].failed && (d.jobs[i].err.hint || strchr(d.jobs[i].err.msg ? d.jobs[i].err.msg : "", '\n'))) {
				gctx_print_error(g, &d.jobs[i].err);
				break;
			}
	}
	if (out_finish(&err) < 0) {
		gctx_print_error(g, &err);
		code = code ? code : 1;
	}
	goto out;
usage_error:
	code = gctx_usage_error(g, &err, usage, "cleanup");
out:
	for (size_t i = 0; i < d.n; i++) {
		node_spec_release(&d.jobs[i].spec);
		if (d.jobs[i].probed)
			probe_result_release(&d.jobs[i].probe);
		if (d.jobs[i].prepared)
			prep_result_release(&d.jobs[i].prep);
		cJSON_Delete(d.jobs[i].left);
		gerr_clear(&d.jobs[i].err);
		report_row_release(&d.jobs[i].row);
	}
	free(d.jobs);
	report_release(&d.rep);
	node_access_release(&a);
	strlist_release(&only);
	strlist_release(&skip);
	strlist_release(&force);
	cJSON_Delete(nodes);
	gerr_clear(&err);
	return code;
}
