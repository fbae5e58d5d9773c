/* gpuctl validate: check the cluster and its GPU nodes and report each
 * check's result as a table, JSON/YAML or JUnit XML (for CI). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "gpuctl/buf.h"
#include "gpuctl/check.h"
#include "gpuctl/fanout.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/out.h"
#include "gpuctl/owned.h"
#include "gpuctl/plan.h"
#include "gpuctl/sig.h"
#include "gpuctl/smoke.h"
#include "gpuctl/util.h"
#include "deployset.h"
#include "gpuctl/report.h"

static const char usage[] =
	"gpuctl validate [NODE...] [-l SELECTOR] [--only GROUP] [--skip GROUP] [--junit FILE] [--list] [--strict] [--admit] [--smoke] [--inventory FILE] "
	"[--ssh-user USER] [-i KEY] [--ssh-port PORT] [--ssh-timeout SECONDS] [--ssh-accept-new] [-J JUMP] "
	"[--known-hosts FILE] [--parallel N] [--min-driver VERSION] [--from-inventory] [-o json|yaml|junit]";
static const char summary[] =
	"Check that the cluster is a working GPU platform; change nothing. Groups of checks:\n"
	"  cluster  through the API: it answers, GPU nodes exist, the RuntimeClass nvidia, the device plugin\n"
	"           and conflicting components, the DCGM exporter, and per GPU node its Ready condition, labels,\n"
	"           taints, plugin pod, GPU health and the sharing config in use\n"
	"  nodes    over SSH on every GPU node at once: driver, GPUs, product, compute mode, kernel modules,\n"
	"           containerd, the NVIDIA container toolkit and the nvidia runtime in containerd's configuration\n"
	"`gpuctl validate --list` lists every check. Exit status: 0 every check passed (warnings allowed),\n"
	"1 a check failed, 2 usage error, 3 the cluster cannot be reached or refuses the credentials.";

static const char *const groups[] = { "cluster", "nodes", NULL };

struct vjob {
	struct node_spec spec;
	const char *talos_os;
	const cJSON *node;
	struct check_report rep;
	int started;
	/* node.plugin-config: what the plugin should have loaded (from the API), or why not checked */
	char *plugin_uid, *plugin_volume, *plugin_key;
	const char *plugin_skip;
};

struct validate {
	struct gctx *g;
	struct node_access *a;
	struct vjob *jobs;
	size_t n;
	struct report_progress progress;
};

static void vjob_run(void *ud, size_t i)
{
	struct validate *v = ud;
	struct vjob *j = &v->jobs[i];
	j->started = 1;
	if (j->talos_os) {
		check_add(&j->rep, "node.ssh", j->spec.name, CHECK_SKIP,
			  "check the node with talosctl; `gpuctl deploy` prints the machine-config patch for the NVIDIA extensions",
			  "skipped: the node runs %s, which has no SSH", j->talos_os);
		check_add(&j->rep, "node.plugin-config", j->spec.name, CHECK_SKIP, NULL,
			  "skipped: the node runs %s, which has no SSH", j->talos_os);
		return;
	}
	struct ssh_conn *c = NULL;
	struct gerr err = GERR_INIT;
	if (node_access_connect(v->a, &j->spec, &c, &err) < 0) {
		checks_node_unreachable(j->spec.name, &err, &j->rep);
		gerr_clear(&err);
		return;
	}
	checks_node(c, &j->spec, j->node, v->a->min_driver, &j->rep);
	if (j->plugin_uid)
		checks_plugin_config(c, j->spec.name, j->plugin_uid, j->plugin_volume, j->plugin_key, NULL, &j->rep);
	else
		check_add(&j->rep, "node.plugin-config", j->spec.name, CHECK_SKIP, NULL, "skipped: %s", j->plugin_skip);
	ssh_close(c);
}

static void vjob_done(void *ud, size_t i)
{
	struct validate *v = ud;
	size_t n[4];
	check_report_count(&v->jobs[i].rep, n);
	report_progress_step(&v->progress, v->jobs[i].spec.name, n[CHECK_FAIL]);
}

/* Results in a stable order: the cluster, then node by node (as listed),
 * each in registry order.  Each key is computed once (a name lookup by
 * binary search), so thousands of nodes sort in O(n log n). */
struct rank {
	const char *name;
	size_t pos;
};

static int rank_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rank *)a)->name, ((const struct rank *)b)->name);
}

/* A result's place: 12 bytes each (the results themselves are not copied:
 * on 20,000 nodes a sorted copy would be validate's peak). */
struct keyed {
	uint32_t target, def, index;
};

static int keyed_cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	if (x->target != y->target)
		return x->target < y->target ? -1 : 1;
	if (x->def != y->def)
		return x->def < y->def ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static size_t def_rank(const char *id)
{
	size_t k = 0;
	for (const struct check_def *d = check_defs; d->id; d++, k++)
		if (!strcmp(d->id, id))
			return k;
	return k;
}

/* The checks of each GPU node through the API, and what they need of the
 * GPU stack (read once, before the nodes are listed). */
struct vobjects {
	struct check_report rep;
	struct stack_view sv;
	int sv_read;           /* sv is there; else sv_err says why not */
	struct gerr sv_err;
	const cJSON *config;
};

static void node_api_checks(struct vobjects *o, const cJSON *node)
{
	checks_node_object(node, &o->rep);
	if (o->sv_read)
		stack_judge_node(&o->sv, o->config, node, &o->rep);
}

/* node_target.each: the object checks of one GPU node as its page arrives
 * (NULL: the list starts again) */
static void object_checks(void *ud, const cJSON *node)
{
	struct vobjects *o = ud;
	if (!node) {
		check_report_release(&o->rep);
		buf_release(&o->sv.driver_on_host);
		o->sv.metrics_pod = NULL;
	} else {
		node_api_checks(o, node);
	}
}

/* The cluster's stack checks, after every node's. */
static void stack_cluster_checks(struct kube_client *kc, struct vobjects *o)
{
	if (o->sv_read) {
		stack_read_metrics(kc, &o->sv);
		stack_judge_cluster(&o->sv, &o->rep);
		return;
	}
	const char *m = o->sv_err.msg ? o->sv_err.msg : "error";
	check_add(&o->rep, "cluster.device-plugin", "cluster", CHECK_FAIL, o->sv_err.hint, "cannot read the GPU stack: %.*s",
		  (int)strcspn(m, "\n"), m);
	check_add(&o->rep, "cluster.conflicts", "cluster", CHECK_SKIP, NULL, "skipped: the GPU stack could not be read");
	check_add(&o->rep, "cluster.dcgm-exporter", "cluster", CHECK_SKIP, NULL, "skipped: the GPU stack could not be read");
}

static void sort_report(struct check_report *r, const cJSON *nodes)
{
	size_t nn = (size_t)cJSON_GetArraySize(nodes), k = 0;
	struct rank *names = xcalloc(nn ? nn : 1, sizeof(*names));
	const cJSON *n;
	cJSON_ArrayForEach(n, nodes) {
		const char *name = json_str(cJSON_GetObjectItemCaseSensitive(n, "metadata"), "name");
		names[k].name = name ? name : "";
		names[k].pos = k + 1; /* 0: the cluster */
		k++;
	}
	qsort(names, nn, sizeof(*names), rank_cmp);
	struct keyed *v = xcalloc(r->n ? r->n : 1, sizeof(*v));
	for (size_t i = 0; i < r->n; i++) {
		struct rank key = { r->v[i].target, 0 };
		const struct rank *hit = strcmp(key.name, "cluster") ? bsearch(&key, names, nn, sizeof(*names), rank_cmp) : NULL;
		v[i].target = (uint32_t)(!strcmp(key.name, "cluster") ? 0 : hit ? hit->pos : nn + 1);
		v[i].def = (uint32_t)def_rank(r->v[i].id);
		v[i].index = (uint32_t)i;
	}
	qsort(v, r->n, sizeof(*v), keyed_cmp);
	/* the results into that order in place, cycle by cycle: position i
	 * takes the result at v[i].index; a done position is marked UINT32_MAX */
	for (size_t i = 0; i < r->n; i++) {
		if (v[i].index == UINT32_MAX || v[i].index == i) {
			v[i].index = UINT32_MAX;
			continue;
		}
		struct check_result first = r->v[i];
		size_t j = i;
		for (;;) {
			size_t from = v[j].index;
			v[j].index = UINT32_MAX;
			if (from == i) {
				r->v[j] = first;
				break;
			}
			r->v[j] = r->v[from];
			j = from;
		}
	}
	free(v);
	free(names);
}

static void list_checks(void)
{
	printf("%-22s  %-7s  %s\n", "CHECK", "GROUP", "WHAT IT PROVES");
	for (const struct check_def *d = check_defs; d->id; d++)
		printf("%-22s  %-7s  %s\n", d->id, d->group, d->title);
}

/* Admission of one node: the gate's taint removed and the node marked
 * admitted (annotation gpuctl.io/validated), in one conditional patch. */
struct admit_plan {
	struct taint_plan taints;
	const char *when;  /* RFC 3339 */
};

static int admit_plan_node(void *ud, const cJSON *node, struct edit_result *r)
{
	struct admit_plan *a = ud;
	if (taint_plan_node(&a->taints, node, r) < 0)
		return -1;
	return edit_add_annotation(node, r, GPUCTL_VALIDATED_ANNOTATION, a->when);
}

/* The validation gate: every node whose checks all passed (no failure;
 * with --strict, warnings count as failures) loses the taint
 * gpuctl.io/unvalidated; the others keep it.  What happened, as the
 * document's "admission": {admitted: [...], kept: [...], failed: [...]}. */
static cJSON *admit_nodes(struct gctx *g, struct kube_client *kc, const cJSON *nodes, const struct check_report *rep)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON *admitted = cJSON_AddArrayToObject(doc, "admitted"), *kept = cJSON_AddArrayToObject(doc, "kept");
	cJSON *pass = cJSON_CreateArray();
	const cJSON *n;
	cJSON_ArrayForEach(n, nodes) {
		const char *name = node_name(n);
		int ok = 0;
		for (size_t i = 0; i < rep->n; i++)
			if (!strcmp(rep->v[i].target, name)) {
				ok = ok >= 0 ? 1 : ok;
				if (rep->v[i].status == CHECK_FAIL)
					ok = -1;
			}
		if (ok > 0)
			cJSON_AddItemToArray(pass, cJSON_Duplicate(n, 1));
		else
			cJSON_AddItemToArray(kept, cJSON_CreateString(name));
	}
	struct taint_op op;
	char when[32];
	utc_now_rfc3339(when);
	struct admit_plan ap = { .taints = { .ops = &op, .nops = 1 }, .when = when };
	struct gerr err = GERR_INIT;
	struct edit_result *res = NULL;
	size_t nres = 0;
	taint_op_parse(GPUCTL_UNVALIDATED_TAINT_KEY "-", &op, &err);
	if (cJSON_GetArraySize(pass) && nodes_edit(kc, pass, admit_plan_node, &ap, DRY_NONE, &res, &nres, &err) == 0) {
		cJSON *failed = cJSON_AddArrayToObject(doc, "failed");
		for (size_t i = 0; i < nres; i++) {
			if (res[i].status == EDIT_FAILED) {
				cJSON *f = cJSON_CreateObject();
				cJSON_AddStringToObject(f, "name", res[i].node);
				cJSON_AddStringToObject(f, "message", res[i].err.msg ? res[i].err.msg : "");
				cJSON_AddItemToArray(failed, f);
				gctx_print_error(g, &res[i].err);
			} else {
				cJSON_AddItemToArray(admitted, cJSON_CreateString(res[i].node));
			}
		}
	} else if (err.code != GERR_OK) {
		gctx_print_error(g, &err);
	}
	if (!g->output) {
		char *a = cJSON_PrintUnformatted(admitted), *k = cJSON_PrintUnformatted(kept);
		fprintf(stderr, "admitted (taint %s removed): %s; kept: %s\n", GPUCTL_UNVALIDATED_TAINT_KEY, a, k);
		free(a);
		free(k);
	}
	edit_results_free(res, nres);
	taint_op_release(&op);
	gerr_clear(&err);
	cJSON_Delete(pass);
	return doc;
}

/* --smoke: gpuctl smoke-test on the nodes, its per-node checks added to the
 * results (its per-pod rows stay in smoke-test's own report).  A run that
 * cannot start fails smoke.gpu on every node with the reason. */
static void run_smoke(struct gctx *g, struct kube_client *kc, const cJSON *nodes, const char *image, long timeout_ms,
		      struct smoke_left *left, struct check_report *rep)
{
	const char *ns = g->kopts.namespace_ && *g->kopts.namespace_ ? g->kopts.namespace_ : GPUCTL_SMOKE_NAMESPACE;
	struct render_ctx rc = { .dir = g->templates_dir };
	struct smoke_run_opts o = {
		.rc = &rc, .ns = ns, .image = image,
		.plan = { .plugin_ns = DEPLOY_NAMESPACE, .configs_name = DEPLOY_CONFIG_NAME, .default_key = DEPLOY_CONFIG_DEFAULT },
		.timeout_ms = timeout_ms,
	};
	struct report sr;
	report_init(&sr, "SmokeTestReport", "smoke-test");
	struct gerr err = GERR_INIT;
	double t0 = mono_s();
	if (smoke_run(kc, nodes, &o, &sr, left, &err) < 0) {
		const char *m = err.msg ? err.msg : "error";
		const cJSON *n;
		cJSON_ArrayForEach(n, nodes)
			check_add(rep, "smoke.gpu", node_name(n), CHECK_FAIL, err.hint, "the smoke test could not start: %.*s",
				  (int)strcspn(m, "\n"), m);
		gerr_clear(&err);
		report_release(&sr);
		return;
	}
	static const enum check_status from_report[] = { [REPORT_PASS] = CHECK_PASS, [REPORT_WARN] = CHECK_WARN,
							  [REPORT_FAIL] = CHECK_FAIL, [REPORT_SKIP] = CHECK_SKIP };
	for (size_t i = 0; i < sr.n; i++) {
		const struct report_row *row = &sr.v[i];
		if (!check_find(row->kind))
			continue; /* a pod's row */
		check_add(rep, row->kind, row->target, from_report[row->status], row->hint, "%s", row->message);
		rep->v[rep->n - 1].seconds = row->seconds ? row->seconds : mono_s() - t0;
	}
	report_release(&sr);
	smoke_print_left(g, ns, left);
	if (left->pods && !left->kept) /* pods left behind: say so in the results too */
		check_add(rep, "smoke.gpu", "cluster", CHECK_FAIL, "see above for the command that removes them",
			  "the smoke test left %zu pod(s) in namespace %s", strv_len(left->pods), ns);
}

int cmd_validate(struct gctx *g, int argc, char **argv)
{
	const char *selector = NULL, *junit = NULL;
	int list = 0, admit = 0, strict = 0, smoke = 0;
	long smoke_timeout_ms = 5 * 60 * 1000;
	const char *smoke_image = NULL;
	char *smoke_img = NULL;
	struct smoke_left left = { 0 };
	cJSON *admission = NULL;
	struct strlist only = { 0 }, skip = { 0 };
	struct node_access a;
	node_access_init(&a);
	struct opt opts[] = {
		{ "selector", 'l', OPT_STRING, &selector, "SELECTOR", "the nodes matching this label selector", NULL },
		{ "only", 0, OPT_LIST, &only, "GROUP", "run only this group of checks (repeatable): cluster, nodes", NULL },
		{ "skip", 0, OPT_LIST, &skip, "GROUP", "skip this group of checks (repeatable)", NULL },
		{ "junit", 0, OPT_STRING, &junit, "FILE", "also write the results as JUnit XML to FILE (- for stdout)", NULL },
		{ "list", 0, OPT_BOOL, &list, NULL, "list the checks and exit", NULL },
		{ "strict", 0, OPT_BOOL, &strict, NULL, "warnings fail too", NULL },
		{ "admit", 0, OPT_BOOL, &admit, NULL, "remove the taint " GPUCTL_UNVALIDATED_TAINT_KEY " from every node whose checks passed", NULL },
		{ "smoke", 0, OPT_BOOL, &smoke, NULL, "also run gpuctl smoke-test on the nodes (pods that use their GPUs)", NULL },
		{ "smoke-image", 0, OPT_STRING, &smoke_image, "IMAGE", "the smoke test pods' image (default the pinned CUDA base image)", NULL },
		{ "smoke-timeout", 0, OPT_DURATION, &smoke_timeout_ms, "DURATION", "limit for the smoke test (default 5m)", NULL },
		NODE_ACCESS_OPTS(&a),
		OPT_END,
	};
	struct gerr err = GERR_INIT;
	char **rest;
	int nrest, help, code = 0;
	struct gerr stop = GERR_INIT;  /* what stopped the checks early (the cluster unreachable) */
	struct node_target t = { 0 };
	struct validate v = { .g = g, .a = &a };
	struct check_report rep = { 0 };
	struct vobjects objects = { .sv_err = GERR_INIT, .config = g->config }; /* the nodes' checks through the API */
	struct report out;
	report_init(&out, "ValidationResult", "validate");
	cJSON *nodes = NULL;
	char *server_version = NULL;
	static const char *const formats[] = { "json", "yaml", "junit", NULL };
	if (opt_parse(g, argc, argv, opts, usage, summary, &rest, &nrest, &help, &err) < 0)
		goto usage_error;
	if (help)
		goto out;
	if (list) {
		list_checks();
		code = out_finish(&err) < 0 ? 1 : 0;
		goto out;
	}
	const struct node_cmd nc = { .formats = formats, .groups = groups, .group_word = "group", .node_group = "nodes",
				     .only = &only, .skip = &skip, .selector = selector, .rest = rest, .nrest = nrest };
	if (node_cmd_complete(g, &nc, &a, &t, &err) < 0) {
		code = gctx_setup_error(g, &err, usage, "validate");
		goto out;
	}
	if (smoke && a.from_inventory) {
		gerr_set(&err, GERR_USAGE, "--smoke runs pods in the cluster: not with --from-inventory");
		goto usage_error;
	}
	if ((smoke_image || smoke_timeout_ms != 5 * 60 * 1000) && !smoke) {
		gerr_set(&err, GERR_USAGE, "--smoke-image and --smoke-timeout go with --smoke");
		goto usage_error;
	}
	if (smoke && smoke_timeout_ms <= 0) {
		gerr_set(&err, GERR_USAGE, "--smoke-timeout must be more than 0");
		goto usage_error;
	}
	if (smoke && !smoke_image) {
		if (smoke_default_image(g, &smoke_img, &err) < 0) {
			code = gctx_setup_error(g, &err, usage, "validate");
			goto out;
		}
		smoke_image = smoke_img;
	}
	if (admit && a.from_inventory) {
		gerr_set(&err, GERR_USAGE, "--admit changes the nodes' taints in the cluster: not with --from-inventory");
		goto usage_error;
	}
	int run_cluster = only_skip_selected("cluster", &only, &skip);
	int run_nodes = only_skip_selected("nodes", &only, &skip);
	/* the cluster checks read a node's labels and status; the node checks
	 * (over SSH) and --admit more */
	if (!run_nodes && !admit && !smoke && run_cluster) {
		/* each node's object checks run as its page arrives: only names are kept */
		t.parts = NODE_PART_NAME;
		t.each = object_checks;
		t.each_ud = &objects;
	}
	if (!run_cluster && !run_nodes) {
		gerr_set(&err, GERR_USAGE, "--skip cluster --skip nodes leaves nothing to check");
		goto usage_error;
	}
	if (junit && !strcmp(junit, "-") && g->output) {
		gerr_set(&err, GERR_USAGE, "--junit - and -o %s would both write to stdout; use -o junit", g->output);
		goto usage_error;
	}
	struct kube_client *kc = NULL;
	if (a.from_inventory) {
		if (node_access_inventory_nodes(&a, t.names, t.nnames, &nodes, &err) < 0) {
			gctx_print_error(g, &err);
			code = 1;
			goto out;
		}
		goto run_nodes;
	}
	if (gctx_kube(g, &kc, &err) < 0 || kube_server_version(kc, &server_version, &err) < 0) {
		/* no cluster, no nodes to check: still a report CI can read */
		const char *m = err.msg ? err.msg : "error";
		check_add(&rep, "cluster.api", "cluster", CHECK_FAIL, NULL, "%.*s", (int)strcspn(m, "\n"), m);
		gctx_print_error(g, &err);
		gerr_move(&stop, &err);
		goto report;
	}
	/* the nodes group reads it too, for node.plugin-config: a constant number of requests */
	objects.sv_read = stack_read(kc, &objects.sv, &objects.sv_err) == 0;
	if (nodes_resolve(kc, &t, &nodes, &err) < 0) {
		if (err.code != GERR_NOTFOUND) {
			const char *m = err.msg ? err.msg : "error";
			check_add(&rep, "cluster.api", "cluster", CHECK_FAIL, NULL, "listing nodes: %.*s", (int)strcspn(m, "\n"), m);
			gctx_print_error(g, &err);
			gerr_move(&stop, &err);
			goto report;
		}
		/* no GPU nodes, or a named node missing: the API works, the platform does not */
		const char *m = err.msg ? err.msg : "no GPU nodes";
		check_add(&rep, "cluster.api", "cluster", CHECK_PASS, NULL, "Kubernetes %s", server_version);
		check_add(&rep, "cluster.gpu-nodes", "cluster", CHECK_FAIL, err.hint, "%.*s", (int)strcspn(m, "\n"), m);
		gerr_clear(&err);
		goto report;
	}
	if (run_cluster) {
		checks_cluster_api(kc, server_version, cJSON_GetArraySize(nodes), &rep);
		if (!t.each) {
			const cJSON *it;
			cJSON_ArrayForEach(it, nodes)
				node_api_checks(&objects, it);
		}
		stack_cluster_checks(kc, &objects);
		check_report_take(&rep, &objects.rep);
	}
run_nodes:
	if (run_nodes) {
		v.n = (size_t)cJSON_GetArraySize(nodes);
		v.jobs = xcalloc(v.n ? v.n : 1, sizeof(*v.jobs));
		report_progress_init(&v.progress, stderr, !g->output && v.n > 1, "validate", "nodes checked", v.n);
		size_t i = 0;
		const cJSON *it;
		cJSON_ArrayForEach(it, nodes) {
			struct vjob *j = &v.jobs[i++];
			j->node = it;
			node_access_spec(&a, it, &j->spec, &j->talos_os);
			if (a.from_inventory)
				j->plugin_skip = "the nodes come from the inventory, not the cluster";
			else if (!objects.sv_read)
				j->plugin_skip = "the device plugin could not be read through the API";
			else if (!stack_plugin_expect(&objects.sv, it, &j->plugin_uid, &j->plugin_volume, &j->plugin_key))
				j->plugin_skip = "no device plugin pod with sharing configurations on the node";
		}
		if (fanout_run(v.n, a.parallel, vjob_run, vjob_done, &v) > 0) {
			/* interrupted: the nodes not reached yet are reported as not checked */
			for (i = 0; i < v.n; i++)
				if (!v.jobs[i].started)
					check_add(&v.jobs[i].rep, "node.ssh", v.jobs[i].spec.name, CHECK_SKIP,
						  "run gpuctl validate again", "not checked: gpuctl was interrupted (%s)",
						  sig_name(sig_interrupted()));
		}
		for (i = 0; i < v.n; i++) {
			check_report_take(&rep, &v.jobs[i].rep);
			free(v.jobs[i].plugin_uid);
			free(v.jobs[i].plugin_volume);
			free(v.jobs[i].plugin_key);
		}
	}
	if (smoke && kc && !sig_interrupted())
		run_smoke(g, kc, nodes, smoke_image, smoke_timeout_ms, &left, &rep);
	sort_report(&rep, nodes);
	if (strict)
		for (size_t k = 0; k < rep.n; k++)
			if (rep.v[k].status == CHECK_WARN)
				rep.v[k].status = CHECK_FAIL; /* --strict: a warning is a failure */
	if (admit && !sig_interrupted())
		admission = admit_nodes(g, kc, nodes, &rep);
report:
	/* the rows say everything from here on: on 20,000 nodes the results and
	 * the nodes would double the memory while the report is written (the
	 * nodes go first: the results hold copies of their names) */
	cJSON_Delete(nodes);
	nodes = NULL;
	check_report_move_rows(&rep, &out);
	check_report_release(&rep);
	if (admission)
		report_set(&out, "admission", admission);
	admission = NULL;
	code = report_exit_status(&out, &stop);
	if (junit && report_write_junit(junit, &out, &err) < 0) {
		gctx_print_error(g, &err);
		code = code ? code : 1;
		gerr_clear(&err);
	}
	if (g->output && !strcmp(g->output, "junit")) {
		report_print_junit(stdout, &out);
	} else if (g->output) {
		report_print_doc(stdout, &out, g->output);
	} else if (out.n && !(junit && !strcmp(junit, "-"))) {
		report_print_table(stdout, &out, g->color);
		report_print_summary(stdout, &out);
	}
	gerr_clear(&err);
	if (out_finish(&err) < 0) {
		gctx_print_error(g, &err);
		code = code ? code : 1;
	}
	goto out;
usage_error:
	code = gctx_usage_error(g, &err, usage, "validate");
out:
	check_report_release(&objects.rep);
	stack_view_release(&objects.sv);
	gerr_clear(&objects.sv_err);
	cJSON_Delete(admission);
	smoke_left_release(&left);
	free(smoke_img);
	gerr_clear(&stop);
	for (size_t i = 0; i < v.n; i++) {
		node_spec_release(&v.jobs[i].spec);
		check_report_release(&v.jobs[i].rep);
	}
	free(v.jobs);
	check_report_release(&rep);
	report_release(&out);
	cJSON_Delete(nodes);
	free(server_version);
	node_access_release(&a);
	strlist_release(&only);
	strlist_release(&skip);
	gerr_clear(&err);
	return code;
}
