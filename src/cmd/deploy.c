/* gpuctl deploy: prepare the GPU nodes over SSH (probe the driver, add the
 * nvidia runtime to containerd) and create the nvidia RuntimeClass.  Later
 * phases (device plugin, sharing) come with their issues. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "gpuctl/json.h"
#include "gpuctl/buf.h"
#include "gpuctl/apply.h"
#include "gpuctl/fanout.h"
#include "gpuctl/kube.h"
#include "gpuctl/node.h"
#include "gpuctl/out.h"
#include "gpuctl/render.h"
#include "gpuctl/report.h"
#include "gpuctl/sig.h"
#include "gpuctl/util.h"

static const char usage[] =
	"gpuctl deploy [NODE...] [-l SELECTOR] [--only PHASE] [--skip PHASE] [--inventory FILE] [--ssh-user USER] "
	"[-i KEY] [--ssh-port PORT] [--ssh-timeout SECONDS] [--ssh-accept-new] [-J JUMP] [--known-hosts FILE] [--parallel N] "
	"[--default-runtime] [--min-driver VERSION] [--from-inventory] [--restart-command CMD] [--check-command CMD] [--dry-run] [-o json|yaml]";
static const char summary[] =
	"Prepare the GPU nodes and the cluster for GPU workloads. Phases, in order:\n"
	"  nodes         over SSH on every GPU node at once: probe the driver, kernel modules, containerd and\n"
	"                the NVIDIA container toolkit; add the nvidia runtime to containerd (backup, verify,\n"
	"                restart, roll back on failure); an already prepared node is left alone\n"
	"  runtimeclass  create the RuntimeClass nvidia (handler nvidia)\n"
	"Nodes are the cluster's GPU nodes (or NODE names, or -l), reached at their InternalIP unless the\n"
	"inventory says otherwise.";

static const char *const phases[] = { "nodes", "runtimeclass", NULL };

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

/* A fresh connection to one node, for a rollback after the first broke. */
struct job_ref {
	const struct node_access *a;
	const struct node_spec *spec;
};

/* sshd that just died (a restart, a crash) takes a moment to come back:
 * connection failures are tried again for up to --ssh-timeout, a refused host
 * key or login is not */
static int job_reconnect(void *ud, struct ssh_conn **c, struct gerr *err)
{
	const struct job_ref *ref = ud;
	long until = mono_ms() + ref->a->ssh_timeout * 1000L;
	for (;;) {
		gerr_clear(err);
		if (node_access_connect(ref->a, ref->spec, c, err) == 0)
			return 0;
		if ((err->code != GERR_SSH_CONN && err->code != GERR_SSH_TIMEOUT) || mono_ms() + 1000 >= until)
			return -1;
		struct timespec ts = { 1, 0 };
		nanosleep(&ts, NULL);
	}
}

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
	if (node_access_connect(d->a, &j->spec, &c, &j->err) < 0) {
		j->failed = 1;
		return;
	}
	if (node_probe(c, d->a->min_driver, &j->probe, &j->err) < 0) {
		gerr_prefix(&j->err, "node %s: probe", j->spec.name);
		j->failed = 1;
		ssh_close(c);
		return;
	}
	j->probed = 1;
	struct gerr why = GERR_INIT;
	if (!node_ready_for_runtime(&j->probe, &why)) {
		gerr_set(&j->err, GERR_CONFIG, "node %s is not ready for the nvidia runtime: %s", j->spec.name, why.msg);
		gerr_clear(&why);
		j->failed = 1;
		ssh_close(c);
		return;
	}
	struct containerd_opts co = d->copts;
	if (j->spec.restart_command)
		co.restart_command = j->spec.restart_command;
	if (j->spec.check_command)
		co.check_command = j->spec.check_command;
	if (j->spec.config_path) {
		free(j->probe.config_path);
		j->probe.config_path = xstrdup(j->spec.config_path);
	}
	if (j->spec.flavour != CR_UNKNOWN)
		j->probe.flavour = j->spec.flavour;
	struct job_ref ref = { d->a, &j->spec };
	co.reconnect = job_reconnect;
	co.reconnect_ud = &ref;
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

static int phase_runtimeclass(struct gctx *g, struct kube_client *kc, enum dry_run dry, struct report *rep,
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
	if (!g->output)
		report_print_row(stdout, rep, row, g->color);
	return 0;
}

int cmd_deploy(struct gctx *g, int argc, char **argv)
{
	const char *selector = NULL, *restart_cmd = NULL, *check_cmd = NULL, *dry_s = NULL;
	int default_runtime = 0;
	struct strlist only = { 0 }, skip = { 0 };
	struct node_access a;
	node_access_init(&a);
	struct opt opts[] = {
		{ "selector", 'l', OPT_STRING, &selector, "SELECTOR", "the nodes matching this label selector", NULL },
		{ "only", 0, OPT_LIST, &only, "PHASE", "run only this phase (repeatable): nodes, runtimeclass", NULL },
		{ "skip", 0, OPT_LIST, &skip, "PHASE", "skip this phase (repeatable)", NULL },
		NODE_ACCESS_OPTS(&a),
		{ "default-runtime", 0, OPT_BOOL, &default_runtime, NULL, "make nvidia containerd's default runtime", NULL },
		{ "restart-command", 0, OPT_STRING, &restart_cmd, "CMD", "how to restart containerd (default: systemctl restart containerd)", NULL },
		{ "check-command", 0, OPT_STRING, &check_cmd, "CMD", "how to check containerd runs (default: systemctl is-active --quiet containerd)", NULL },
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
	static const char *const formats[] = { "json", "yaml", NULL };
	if (opt_parse(g, argc, argv, opts, usage, summary, &rest, &nrest, &help, &err) < 0)
		goto usage_error;
	if (help)
		goto out;
	if (parse_dry_run(dry_s, &dry, &err) < 0)
		goto usage_error;
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
	int run_nodes = only_skip_selected("nodes", &only, &skip);
	int run_rc = only_skip_selected("runtimeclass", &only, &skip);
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
	/* nothing new after an interrupt: the exit status says it */
	if (run_rc && !sig_interrupted() && phase_runtimeclass(g, kc, dry, &d.rep, &err) < 0)
		gctx_print_error(g, &err);
	if (g->output)
		report_print_doc(stdout, &d.rep, g->output);
	code = report_exit_status(&d.rep, &err);
	gerr_clear(&err);
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
	gerr_clear(&err);
	return code;
}
