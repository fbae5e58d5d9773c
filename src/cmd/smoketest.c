/* gpuctl smoke-test: prove that GPUs work in pods, node by node, and that
 * shared GPUs are shared as advertised.  The engine is src/kube/smokerun.c
 * (the pure logic src/kube/smoke.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "deployset.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/labels.h"
#include "gpuctl/out.h"
#include "gpuctl/owned.h"
#include "gpuctl/render.h"
#include "gpuctl/report.h"
#include "gpuctl/smoke.h"
#include "gpuctl/util.h"

static const char usage[] =
	"gpuctl smoke-test [NODE...] [-l SELECTOR] [--image IMAGE] [--namespace NS] [--toleration KEY[=VALUE]:EFFECT]... "
	"[--pods N] [--no-sharing] [--measure [--measure-seconds N]] [--keep] [--timeout DURATION] [-o json|yaml] [--junit FILE]";
static const char summary[] =
	"Run pods that ask for a GPU on each GPU node and check that they work: one pod per node gets a\n"
	"GPU and nvidia-smi names it (smoke.gpu). Where a node shares its GPUs (time-slicing, MPS), N pods\n"
	"run at once on the node's free slots (smoke.concurrent) on at most its physical GPUs\n"
	"(smoke.same-gpu), one pod more stays Pending (smoke.overcommit), MPS GPUs are in Exclusive_Process\n"
	"(smoke.mps), and the node advertises GPUs x replicas (smoke.allocatable); MIG nodes have their MIG\n"
	"devices (smoke.mig). --measure runs gpuctl's own compute load in each pod, the sharing pods at the\n"
	"same moment, and reports each pod's GFLOP/s, its share, the sum and the fairness (smoke.measure). The pods run in the namespace " GPUCTL_SMOKE_NAMESPACE " (-n changes it) and are\n"
	"deleted at the end. Exit status: 0 every check passed (skips allowed), 1 a check failed or timed\n"
	"out, 2 usage error, 3 the cluster cannot be reached or refuses the credentials.";

/* The pinned image: smokeTest.image of versions.yaml.tmpl (--templates may replace it). */
int smoke_default_image(const struct gctx *g, char **image, struct gerr *err)
{
	cJSON *ver = NULL;
	if (deploy_versions(g->templates_dir, &ver, err) < 0)
		return -1;
	const char *img = json_str(cJSON_GetObjectItemCaseSensitive(ver, "smokeTest"), "image");
	if (!img || !*img) {
		cJSON_Delete(ver);
		return gerr_set(err, GERR_CONFIG, "versions.yaml.tmpl: no smokeTest.image (give one with --image)");
	}
	*image = xstrdup(img);
	cJSON_Delete(ver);
	return 0;
}

static void progress_line(void *ud, const char *line)
{
	(void)ud;
	fprintf(stderr, "smoke-test: %s\n", line);
}

/* What the run left in the cluster, and how to remove it, on stderr. */
void smoke_print_left(const struct gctx *g, const char *ns, const struct smoke_left *left)
{
	if (!left->pods)
		return;
	char *cmd = smoke_cleanup_command(ns, left->run_id);
	if (left->kept) {
		fprintf(stderr, "kept %zu pod(s) in namespace %s (--keep); remove them with:\n  %s\n", strv_len(left->pods),
			ns, cmd);
	} else {
		if (left->err.code)
			gctx_print_error(g, &left->err);
		fprintf(stderr, "left in namespace %s:", ns);
		for (size_t i = 0; left->pods[i]; i++)
			fprintf(stderr, " pod/%s", left->pods[i]);
		fprintf(stderr, "\nremove them with:\n  %s\n", cmd);
	}
	free(cmd);
}

/* -l selects among the GPU nodes (nodes_resolve keeps only GPU nodes when
 * neither names nor -l are given); named nodes stay whatever they are (a
 * node without GPUs then fails smoke.gpu, with the hint to deploy). */
static cJSON *gpu_nodes(cJSON *nodes)
{
	cJSON *out = cJSON_CreateArray();
	cJSON *it;
	cJSON_ArrayForEach(it, nodes)
		if (node_is_gpu(it))
			cJSON_AddItemToArray(out, cJSON_Duplicate(it, 1));
	cJSON_Delete(nodes);
	return out;
}

int cmd_smoke_test(struct gctx *g, int argc, char **argv)
{
	const char *selector = NULL, *image = NULL, *junit = NULL;
	struct strlist tol = { 0 };
	int pods = 0, no_sharing = 0, keep = 0, measure = 0, measure_s = INT_MIN; /* INT_MIN: not given */
	long timeout_ms = 5 * 60 * 1000;
	struct opt opts[] = {
		{ "selector", 'l', OPT_STRING, &selector, "SELECTOR", "the GPU nodes matching this label selector", NULL },
		{ "image", 0, OPT_STRING, &image, "IMAGE", "the pods' image (default the pinned CUDA base image)", NULL },
		{ "toleration", 0, OPT_LIST, &tol, "KEY[=VALUE]:EFFECT", "the pods also tolerate this taint (repeatable)", NULL },
		{ "pods", 0, OPT_INT, &pods, "N", "pods sharing a node's GPUs at once (default: its free slots)", NULL },
		{ "no-sharing", 0, OPT_BOOL, &no_sharing, NULL, "skip the sharing checks", NULL },
		{ "measure", 0, OPT_BOOL, &measure, NULL, "run a compute load in each pod at once and report the throughput", NULL },
		{ "measure-seconds", 0, OPT_INT, &measure_s, "N", "seconds of load per pod with --measure (default 10, at most 600)", NULL },
		{ "keep", 0, OPT_BOOL, &keep, NULL, "leave the pods (prints the command that removes them)", NULL },
		{ "timeout", 0, OPT_DURATION, &timeout_ms, "DURATION", "limit for the whole run (default 5m)", NULL },
		{ "junit", 0, OPT_STRING, &junit, "FILE", "also write the results as JUnit XML to FILE (- for stdout)", NULL },
		OPT_END,
	};
	static const char *const formats[] = { "json", "yaml", NULL };
	struct gerr err = GERR_INIT, stop = GERR_INIT;
	char **rest;
	int nrest, help, code = 0;
	struct taint_op *tops = NULL;
	size_t ntops = 0;
	char *img = NULL;
	cJSON *nodes = NULL;
	struct smoke_left left = { 0 };
	struct report rep;
	report_init(&rep, "SmokeTestReport", "smoke-test");
	if (opt_parse(g, argc, argv, opts, usage, summary, &rest, &nrest, &help, &err) < 0)
		goto usage_error;
	if (help)
		goto out;
	if (gctx_check_output(g, formats, &err) < 0)
		goto usage_error;
	if (timeout_ms <= 0) {
		gerr_set(&err, GERR_USAGE, "--timeout must be more than 0");
		goto usage_error;
	}
	if (pods < 0) {
		gerr_set(&err, GERR_USAGE, "--pods %d: give 1 or more", pods);
		goto usage_error;
	}
	if (measure_s != INT_MIN && !measure) {
		gerr_set(&err, GERR_USAGE, "--measure-seconds goes with --measure");
		goto usage_error;
	}
	if (measure_s == INT_MIN)
		measure_s = SMOKE_MEASURE_DEFAULT_S;
	if (measure && (measure_s < 1 || measure_s > SMOKE_MEASURE_MAX_S)) {
		gerr_set(&err, GERR_USAGE, "--measure-seconds %d: give 1 to %d", measure_s, SMOKE_MEASURE_MAX_S);
		goto usage_error;
	}
	if (junit && !strcmp(junit, "-") && g->output) {
		gerr_set(&err, GERR_USAGE, "--junit - and -o %s would both write to stdout", g->output);
		goto usage_error;
	}
	tops = xcalloc(tol.n ? tol.n : 1, sizeof(*tops));
	for (size_t i = 0; i < tol.n; i++) {
		struct taint_op op = { 0 };
		if (taint_op_parse(tol.v[i], &op, &err) < 0) {
			gerr_prefix(&err, "--toleration");
			err.code = GERR_USAGE;
			goto usage_error;
		}
		if (op.remove) {
			taint_op_release(&op);
			gerr_set(&err, GERR_USAGE, "--toleration %s: give KEY[=VALUE]:EFFECT", tol.v[i]);
			goto usage_error;
		}
		tops[ntops++] = op;
	}
	struct node_target t = { .names = rest, .nnames = (size_t)nrest, .selector = selector };
	if (node_target_check(&t, &err) < 0)
		goto usage_error;
	if (!image) {
		if (smoke_default_image(g, &img, &err) < 0) {
			code = gctx_setup_error(g, &err, usage, "smoke-test");
			goto out;
		}
		image = img;
	}
	const char *ns = g->kopts.namespace_ && *g->kopts.namespace_ ? g->kopts.namespace_ : GPUCTL_SMOKE_NAMESPACE;

	struct kube_client *kc;
	if (gctx_kube(g, &kc, &err) < 0 || nodes_resolve(kc, &t, &nodes, &err) < 0)
		goto fail;
	if (selector && !nrest)
		nodes = gpu_nodes(nodes);
	if (!cJSON_GetArraySize(nodes)) {
		gerr_set(&err, GERR_NOTFOUND, "no GPU node matches %s", selector ? selector : "");
		gerr_hint(&err, "list the nodes with: kubectl get nodes -l %s --show-labels", selector ? selector : "");
		goto fail;
	}
	struct render_ctx rc = { .dir = g->templates_dir };
	struct smoke_run_opts o = {
		.rc = &rc, .ns = ns, .image = image, .tolerations = tops, .ntolerations = ntops,
		.plan = { .pods = pods, .no_sharing = no_sharing, .plugin_ns = DEPLOY_NAMESPACE,
			  .configs_name = DEPLOY_CONFIG_NAME, .default_key = DEPLOY_CONFIG_DEFAULT }, .keep = keep, .timeout_ms = timeout_ms,
		.measure_s = measure ? measure_s : 0,
		.progress = !g->output && isatty(STDERR_FILENO) ? progress_line : NULL,
	};
	if (smoke_run(kc, nodes, &o, &rep, &left, &stop) < 0) {
		gctx_print_error(g, &stop);
		code = report_exit_status(NULL, &stop);
		goto out;
	}
	code = report_exit_status(&rep, NULL);
	if (junit && report_write_junit(junit, &rep, &err) < 0) {
		gctx_print_error(g, &err);
		code = code ? code : 1;
		gerr_clear(&err);
	}
	if (g->output) {
		report_print_doc(stdout, &rep, g->output);
	} else if (!(junit && !strcmp(junit, "-"))) {
		report_print_table(stdout, &rep, g->color);
		report_print_summary(stdout, &rep);
	}
	smoke_print_left(g, ns, &left);
	if (left.pods && !left.kept)
		code = code ? code : 1;
	if (out_finish(&err) < 0) {
		gctx_print_error(g, &err);
		code = code ? code : 1;
	}
	goto out;
usage_error:
	code = gctx_usage_error(g, &err, usage, "smoke-test");
	goto out;
fail:
	gctx_print_error(g, &err);
	code = report_exit_status(NULL, &err);
out:
	for (size_t i = 0; i < ntops; i++)
		taint_op_release(&tops[i]);
	free(tops);
	free(img);
	strlist_release(&tol);
	cJSON_Delete(nodes);
	smoke_left_release(&left);
	report_release(&rep);
	gerr_clear(&err);
	gerr_clear(&stop);
	return code;
}
