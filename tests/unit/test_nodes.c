/* The node layer (src/kube/nodes.c): node_prune keeps every field a command
 * reads, so each planner and check gives, byte for byte, the same result on
 * a pruned node as on the whole one (real node JSON from tests/fixtures/nodes);
 * and nodes_resolve prunes page by page (kube_list_each) against the scripted
 * HTTPS server. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "gpuctl/buf.h"
#include "gpuctl/check.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/labels.h"
#include "gpuctl/nodes.h"
#include "gpuctl/plan.h"
#include "gpuctl/sharing.h"
#include "gpuctl/smoke.h"
#include "tls_server.h"

/* ---- fixtures ---- */

static cJSON *load(const char *name)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/nodes/%s", FIXTURES, name);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	char *s = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&s, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	cJSON *j = cJSON_Parse(s);
	cr_assert_not_null(j, "%s is not JSON", path);
	free(s);
	return j;
}

static char *compact(const cJSON *j)
{
	return j ? cJSON_PrintUnformatted(j) : strdup("(null)");
}

/* The node fixtures, and variants that take the planners down their other
 * paths: no annotations at all, only annotations that are not gpuctl's, no
 * taints, no labels, no status. */
#define NVARIANTS 6
static cJSON *variant(const char *file, int v)
{
	cJSON *n = load(file);
	cJSON *md = cJSON_GetObjectItemCaseSensitive(n, "metadata");
	switch (v) {
	case 1:
		cJSON_DeleteItemFromObjectCaseSensitive(md, "annotations");
		break;
	case 2: {
		cJSON *a = cJSON_GetObjectItemCaseSensitive(md, "annotations");
		cJSON *k = a ? a->child : NULL;
		while (k) {
			cJSON *next = k->next;
			if (!strncmp(k->string, "gpuctl.io/", 10))
				cJSON_DeleteItemFromObjectCaseSensitive(a, k->string);
			k = next;
		}
		break;
	}
	case 3:
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "spec"), "taints");
		break;
	case 4:
		cJSON_DeleteItemFromObjectCaseSensitive(md, "labels");
		break;
	case 5:
		cJSON_DeleteItemFromObjectCaseSensitive(n, "status");
		break;
	default:
		break;
	}
	return n;
}

static const char *const fixtures[] = { "kwok-gpu-node.json", "gpu-node-gfd.json", NULL };

/* ---- what a pruned node keeps ---- */

Test(nodes, prune_drops_what_no_command_reads)
{
	cJSON *full = load("gpu-node-gfd.json");
	cJSON *p = node_prune(full);
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(p, "metadata");
	cr_assert_null(cJSON_GetObjectItemCaseSensitive(md, "managedFields"));
	cr_assert_null(cJSON_GetObjectItemCaseSensitive(md, "uid"));
	cr_assert_null(json_get2(p, "status", "images"));
	cr_assert_null(cJSON_GetObjectItemCaseSensitive(json_get2(p, "status", "capacity"), "cpu"));
	cr_assert_null(cJSON_GetObjectItemCaseSensitive(json_get2(p, "status", "capacity"), "memory"));
	cr_assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(md, "annotations"),
							 "node.alpha.kubernetes.io/ttl"));
	cr_assert_eq(cJSON_GetArraySize(json_get2(p, "status", "conditions")), 1, "only the Ready condition");
	cr_assert_eq(cJSON_GetArraySize(json_get2(p, "status", "addresses")), 2, "only the InternalIP addresses");
	/* what commands read is there, whole */
	cr_assert_str_eq(node_name(p), "gpu-node-gfd");
	cr_assert(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(md, "labels"), json_get2(full, "metadata", "labels"), 1));
	cr_assert(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(p, "spec"), cJSON_GetObjectItemCaseSensitive(full, "spec"), 1));
	cr_assert_str_eq(json_str(cJSON_GetObjectItemCaseSensitive(md, "annotations"), "gpuctl.io/validated"),
			 "2026-12-01T10:00:00Z");
	cr_assert_str_eq(json_str(json_get2(p, "status", "capacity"), "nvidia.com/mig-1g.10gb"), "7");
	cJSON_Delete(p);
	/* annotations that are none of gpuctl's: an empty map, not none (the
	 * planners add one key to a map, or the whole map) */
	cJSON *other = variant("gpu-node-gfd.json", 2);
	p = node_prune(other);
	const cJSON *a = json_get2(p, "metadata", "annotations");
	cr_assert(cJSON_IsObject(a));
	cr_assert_eq(cJSON_GetArraySize(a), 0);
	cJSON_Delete(p);
	cJSON_Delete(other);
	cJSON_Delete(full);
}

Test(nodes, prune_is_much_smaller)
{
	cJSON *full = load("kwok-gpu-node.json");
	cJSON *p = node_prune(full);
	char *a = cJSON_PrintUnformatted(full), *b = cJSON_PrintUnformatted(p);
	cr_assert_lt(strlen(b) * 3, strlen(a), "pruned %zu bytes of %zu", strlen(b), strlen(a));
	free(a);
	free(b);
	cJSON_Delete(p);
	cJSON_Delete(full);
}

/* ---- the same results on a pruned node ---- */

static char *edit_text(edit_plan_fn plan, void *ud, const cJSON *node)
{
	struct edit_result r = { .node = strdup(node_name(node)), .changes = cJSON_CreateArray() };
	int rc = plan(ud, node, &r);
	char *ch = compact(r.changes), *st = compact(r.state);
	char *s = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&s, &len);
	fprintf(m, "rc=%d code=%d err=%s hint=%s\nchanges=%s\nstate=%s\npatch=%s", rc, r.err.code,
		r.err.msg ? r.err.msg : "", r.err.hint ? r.err.hint : "", ch, st, r.patch ? r.patch : "(none)");
	fclose(m);
	free(ch);
	free(st);
	struct edit_result *rp = malloc(sizeof(*rp));
	*rp = r;
	edit_results_free(rp, 1);
	return s;
}

/* The same edit from the whole node, from node_prune's copy and from the
 * parts the command asks nodes_resolve for (label.c, taint.c). */
static void same_edit(edit_plan_fn plan, void *ud, const cJSON *full, unsigned parts, const char *what)
{
	cJSON *p = node_prune(full), *pp = node_prune_parts(full, parts);
	char *a = edit_text(plan, ud, full), *b = edit_text(plan, ud, p), *c = edit_text(plan, ud, pp);
	cr_assert_str_eq(b, a, "%s: pruned %s\nwhole %s", what, b, a);
	cr_assert_str_eq(c, a, "%s: the command's parts %s\nwhole %s", what, c, a);
	free(a);
	free(b);
	free(c);
	cJSON_Delete(p);
	cJSON_Delete(pp);
}

static void label_plan_of(struct label_plan *lp, const char *ops, int defaults, int overwrite)
{
	memset(lp, 0, sizeof(*lp));
	lp->defaults = defaults;
	lp->overwrite = overwrite;
	char *s = strdup(ops), *save = NULL;
	for (char *a = strtok_r(s, " ", &save); a; a = strtok_r(NULL, " ", &save)) {
		lp->ops = realloc(lp->ops, (lp->nops + 1) * sizeof(*lp->ops));
		if (defaults) {
			char *eq = strchr(a, '=');
			lp->ops[lp->nops++] = (struct label_op){ strndup(a, (size_t)(eq - a)), strdup(eq + 1) };
		} else {
			struct gerr e = GERR_INIT;
			cr_assert_eq(label_op_parse(a, &lp->ops[lp->nops++], &e), 0, "%s: %s", a, e.msg);
		}
	}
	free(s);
}

static void label_plan_free(struct label_plan *lp)
{
	for (size_t i = 0; i < lp->nops; i++)
		label_op_release(&lp->ops[i]);
	free(lp->ops);
}

static void taint_plan_of(struct taint_plan *tp, const char *ops, int overwrite)
{
	memset(tp, 0, sizeof(*tp));
	tp->overwrite = overwrite;
	char *s = strdup(ops), *save = NULL;
	for (char *a = strtok_r(s, " ", &save); a; a = strtok_r(NULL, " ", &save)) {
		struct gerr e = GERR_INIT;
		tp->ops = realloc(tp->ops, (tp->nops + 1) * sizeof(*tp->ops));
		cr_assert_eq(taint_op_parse(a, &tp->ops[tp->nops++], &e), 0, "%s: %s", a, e.msg);
	}
	free(s);
}

static void taint_plan_free(struct taint_plan *tp)
{
	for (size_t i = 0; i < tp->nops; i++)
		taint_op_release(&tp->ops[i]);
	free(tp->ops);
}

static const struct {
	const char *ops;
	int defaults, overwrite;
} label_cases[] = {
	{ "accelerator=nvidia gpu-type={product}", 1, 0 }, /* gpuctl label's defaults */
	{ "accelerator=nvidia gpu-type={product}", 1, 1 },
	{ "type=gpu", 0, 0 },                               /* a conflict */
	{ "type=gpu", 0, 1 },
	{ "nvidia.com/gpu.product- accelerator-", 0, 0 },
	{ "nvidia.com/device-plugin.config=any-8", 0, 1 },
	{ "new=1", 0, 0 },
	{ "bad=not/valid", 1, 0 },                          /* refused by the planner */
};

static const struct {
	const char *ops;
	int overwrite;
} taint_cases[] = {
	{ "nvidia.com/gpu=true:NoSchedule", 0 },            /* gpuctl taint's default */
	{ "nvidia.com/gpu=false:NoSchedule", 0 },
	{ "nvidia.com/gpu=false:NoSchedule", 1 },
	{ "gpuctl.io/unvalidated=true:NoSchedule", 0 },
	{ "dedicated:NoExecute- nvidia.com/gpu-", 0 },
	{ "absent-", 0 },
};

Test(nodes, planners_give_the_same_result_on_a_pruned_node)
{
	for (size_t f = 0; fixtures[f]; f++)
		for (int v = 0; v < NVARIANTS; v++) {
			cJSON *full = variant(fixtures[f], v);
			char what[256];
			for (size_t i = 0; i < sizeof(label_cases) / sizeof(label_cases[0]); i++) {
				struct label_plan lp;
				label_plan_of(&lp, label_cases[i].ops, label_cases[i].defaults, label_cases[i].overwrite);
				snprintf(what, sizeof(what), "%s variant %d: label %s", fixtures[f], v, label_cases[i].ops);
				same_edit(label_plan_node, &lp, full, NODE_PART_LABELS | NODE_PART_ANNOTATIONS, what);
				label_plan_free(&lp);
			}
			for (size_t i = 0; i < sizeof(taint_cases) / sizeof(taint_cases[0]); i++) {
				struct taint_plan tp;
				taint_plan_of(&tp, taint_cases[i].ops, taint_cases[i].overwrite);
				snprintf(what, sizeof(what), "%s variant %d: taint %s", fixtures[f], v, taint_cases[i].ops);
				same_edit(taint_plan_node, &tp, full, NODE_PART_SPEC | NODE_PART_ANNOTATIONS, what);
				taint_plan_free(&tp);
			}
			snprintf(what, sizeof(what), "%s variant %d: cleanup", fixtures[f], v);
			same_edit(cleanup_plan_node, NULL, full, NODE_PARTS_ALL, what);
			cJSON_Delete(full);
		}
}

/* Everything the other commands ask of a Node, as one text. */
static char *node_reads(const cJSON *node)
{
	char *s = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&s, &len);
	fprintf(m, "name=%s gpu=%d product=%s\n", node_name(node), node_is_gpu(node),
		node_gpu_product(node) ? node_gpu_product(node) : "-");
	static const char *const fields[] = { "capacity", "allocatable" };
	static const char *const res[] = { "nvidia.com/gpu", "nvidia.com/gpu.shared", "nvidia.com/mig-1g.10gb",
					   "nvidia.com/mig-3g.40gb" };
	for (size_t i = 0; i < 2; i++) {
		const char *r = node_gpu_resource(node, fields[i]);
		fprintf(m, "%s: resource=%s", fields[i], r ? r : "-");
		for (size_t k = 0; k < sizeof(res) / sizeof(res[0]); k++)
			fprintf(m, " %s=%ld", res[k], node_resource(node, fields[i], res[k]));
		fputc('\n', m);
	}
	/* deploy: may the device plugin run there */
	cJSON *tol = cJSON_Parse("[{\"key\":\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}]");
	fprintf(m, "tolerated=%d\n", taints_tolerated(json_get2(node, "spec", "taints"), tol));
	cJSON_Delete(tol);
	/* smoke-test */
	cJSON *usage = cJSON_Parse("{}");
	struct smoke_plan_opts so = { 0 };
	struct smoke_plan sp;
	smoke_plan_node(node, usage, &so, &sp);
	fprintf(m, "smoke: node=%s host=%s product=%s resource=%s alloc=%ld used=%ld free=%ld gpu_run=%d gpu=%d:%s sharing=%d strategy=%s physical=%ld replicas=%ld share_run=%d n=%ld over=%d allocv=%d:%s mps=%d mig=%d migv=%d:%s\n",
		sp.node, sp.hostname, sp.product ? sp.product : "-", sp.resource, sp.allocatable, sp.used, sp.free,
		sp.gpu_run, sp.gpu.status, sp.gpu.message ? sp.gpu.message : "", sp.sharing,
		sp.strategy ? sp.strategy : "-", sp.physical, sp.replicas, sp.share_run, sp.n, sp.overcommit_run,
		sp.allocatable_v.status, sp.allocatable_v.message ? sp.allocatable_v.message : "", sp.mps, sp.mig,
		sp.mig_v.status, sp.mig_v.message ? sp.mig_v.message : "");
	smoke_plan_release(&sp);
	cJSON_Delete(usage);
	struct smoke_verdict mv = { 0 };
	smoke_judge_mig(node, &mv);
	fprintf(m, "mig verdict %d %s %s\n", mv.status, mv.message ? mv.message : "", mv.hint ? mv.hint : "");
	smoke_verdict_release(&mv);
	/* slice */
	static const enum sharing_model models[] = { SHARING_TIME_SLICING, SHARING_MPS, SHARING_MIG, SHARING_NONE };
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		struct sharing_spec ss = { .model = models[i],
					   .replicas = models[i] == SHARING_MIG || models[i] == SHARING_NONE ? 0 : 2 };
		struct buf notes = BUF_INIT;
		struct gerr e = GERR_INIT;
		int rc = sharing_node_check(&ss, node, &notes, &e);
		fprintf(m, "sharing %d check rc=%d %s notes=%s\n", (int)models[i], rc, e.msg ? e.msg : "", notes.s);
		gerr_clear(&e);
		buf_release(&notes);
		struct sharing_expect ex;
		memset(&ex, 0, sizeof(ex));
		rc = sharing_expect_node(&ss, node, 0, &ex, &e);
		fprintf(m, "expect rc=%d %s: %s %ld %ld %ld %d %d %s %s %d\n", rc, e.msg ? e.msg : "", ex.resource,
			ex.physical, ex.before, ex.count, ex.at_least, ex.replicas, ex.strategy ? ex.strategy : "-",
			ex.mig_strategy ? ex.mig_strategy : "-", ex.gfd);
		gerr_clear(&e);
		if (rc == 0) {
			char *why = NULL;
			rc = sharing_node_ready(&ex, node, &why);
			fprintf(m, "ready %d %s\n", rc, why ? why : "");
			free(why);
		}
	}
	/* validate / deploy over SSH: the address and the OS */
	struct node_access a = { 0 };
	struct node_spec spec;
	const char *talos = NULL;
	node_access_spec(&a, node, &spec, &talos);
	fprintf(m, "ssh: %s %s talos=%s\n", spec.name, spec.address ? spec.address : "-", talos ? talos : "-");
	node_spec_release(&spec);
	fclose(m);
	return s;
}

Test(nodes, commands_read_the_same_from_a_pruned_node)
{
	for (size_t f = 0; fixtures[f]; f++)
		for (int v = 0; v < NVARIANTS; v++) {
			cJSON *full = variant(fixtures[f], v);
			cJSON *p = node_prune(full);
			char *a = node_reads(full), *b = node_reads(p);
			cr_assert_str_eq(b, a, "%s variant %d: pruned\n%s\nwhole\n%s", fixtures[f], v, b, a);
			free(a);
			free(b);
			cJSON_Delete(p);
			cJSON_Delete(full);
		}
}

/* ---- against the scripted server: validate's cluster checks, nodes_resolve ---- */

static struct tls_server *srv;
static struct kube_client *kc;
static char kcpath[PATH_MAX];

static void setup(void)
{
	setenv("NO_PROXY", "*", 1);
	setenv("no_proxy", "*", 1);
	unsetenv("KUBECONFIG");
	srv = ts_start();
	ts_write_kubeconfig(kcpath, ts_url(srv), ts_ca_pem(srv));
	struct kube_opts o = { .kubeconfig = kcpath, .max_retries = 0, .connect_timeout_ms = 5000 };
	struct gerr e = GERR_INIT;
	cr_assert_eq(kube_client_new(&o, &kc, &e), 0, "kube_client_new: %s", e.msg ? e.msg : "");
}

static void teardown(void)
{
	kube_client_free(kc);
	kc = NULL;
	ts_stop(srv);
	srv = NULL;
	if (kcpath[0])
		unlink(kcpath);
	kcpath[0] = '\0';
}

TestSuite(nodes_api, .init = setup, .fini = teardown, .timeout = 60);

Test(nodes_api, cluster_checks_give_the_same_result_on_pruned_nodes)
{
	ts_set_default(srv, 404, NULL,
		       "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"runtimeclasses.node.k8s.io \\\"nvidia\\\" not found\",\"reason\":\"NotFound\",\"code\":404}");
	cJSON *full = cJSON_CreateArray(), *pruned = cJSON_CreateArray(), *parts = cJSON_CreateArray();
	for (size_t f = 0; fixtures[f]; f++)
		for (int v = 0; v < NVARIANTS; v++) {
			cJSON *n = variant(fixtures[f], v);
			cJSON_AddItemToArray(pruned, node_prune(n));
			/* what validate --only cluster asks for */
			cJSON_AddItemToArray(parts, node_prune_parts(n, NODE_PART_NVIDIA_LABELS | NODE_PART_STATUS));
			cJSON_AddItemToArray(full, n);
		}
	struct check_report a = { 0 }, b = { 0 }, c = { 0 };
	checks_cluster(kc, "v1.36.3", full, &a);
	checks_cluster(kc, "v1.36.3", pruned, &b);
	checks_cluster(kc, "v1.36.3", parts, &c);
	cJSON *ja = check_report_json(&a), *jb = check_report_json(&b), *jc = check_report_json(&c);
	char *sa = cJSON_PrintUnformatted(ja), *sb = cJSON_PrintUnformatted(jb), *sc = cJSON_PrintUnformatted(jc);
	cr_assert_str_eq(sb, sa);
	cr_assert_str_eq(sc, sa);
	cr_assert(strstr(sa, "KubeletNotReady"), "the checks read the Ready condition: %s", sa);
	free(sa);
	free(sb);
	free(sc);
	cJSON_Delete(ja);
	cJSON_Delete(jb);
	cJSON_Delete(jc);
	check_report_release(&a);
	check_report_release(&b);
	check_report_release(&c);
	cJSON_Delete(full);
	cJSON_Delete(pruned);
	cJSON_Delete(parts);
}

/* Pages of 2 nodes: gpu-node-7 (GPU), cpu-1 (no GPU), gpu-node-gfd (GPU),
 * cpu-2, then gpu-node-7 again under another name. */
static char *node_text(const char *fixture, const char *name, int gpu)
{
	cJSON *n = load(fixture);
	cJSON *md = cJSON_GetObjectItemCaseSensitive(n, "metadata");
	cJSON_ReplaceItemInObjectCaseSensitive(md, "name", cJSON_CreateString(name));
	if (!gpu) {
		cJSON_DeleteItemFromObjectCaseSensitive(md, "labels");
		cJSON_DeleteItemFromObjectCaseSensitive(n, "status");
	}
	char *s = cJSON_PrintUnformatted(n);
	cJSON_Delete(n);
	return s;
}

struct pages {
	int items_before_page[8]; /* requests seen when the first item of each page was handed over */
};

static void route_pages(void *ud, const struct ts_request *r, struct ts_reply *out)
{
	(void)ud;
	if (strcmp(r->method, "GET") || strncmp(r->path, "/api/v1/nodes?", 14))
		return;
	const char *cont = strstr(r->path, "continue=");
	int page = cont ? cont[9] - '0' : 0;
	static const struct { const char *fixture, *name; int gpu; } all[] = {
		{ "kwok-gpu-node.json", "gpu-node-7", 1 }, { "kwok-gpu-node.json", "cpu-1", 0 },
		{ "gpu-node-gfd.json", "gpu-node-gfd", 1 }, { "kwok-gpu-node.json", "cpu-2", 0 },
		{ "kwok-gpu-node.json", "gpu-node-9", 1 },
	};
	struct buf b = BUF_INIT;
	buf_addf(&b, "{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"9\"");
	if (page < 2)
		buf_addf(&b, ",\"continue\":\"%d\"", page + 1);
	buf_adds(&b, "},\"items\":[");
	for (int i = page * 2; i < page * 2 + 2 && i < 5; i++) {
		char *t = node_text(all[i].fixture, all[i].name, all[i].gpu);
		buf_addf(&b, "%s%s", i > page * 2 ? "," : "", t);
		free(t);
	}
	buf_adds(&b, "]}");
	ts_reply_set(out, 200, NULL, b.s);
	buf_release(&b);
}

static int seen_at_item[8];
static int nseen;

static int count_item(void *ud, cJSON *item, struct gerr *err)
{
	(void)ud;
	(void)err;
	if (item && nseen < 8)
		seen_at_item[nseen++] = (int)ts_nrequests(srv);
	cJSON_Delete(item);
	return 0;
}

Test(nodes_api, list_each_hands_items_over_page_by_page)
{
	ts_set_route(srv, route_pages, NULL);
	struct kube_list_opts lo = { .limit = 2 };
	struct gerr err = GERR_INIT;
	nseen = 0;
	char *rv = NULL;
	cr_assert_eq(kube_list_each(kc, "/api/v1/nodes", &lo, count_item, NULL, &rv, &err), 0, "%s", err.msg);
	cr_assert_eq(nseen, 5);
	/* the items of page k arrive before page k+1 is asked for */
	static const int want[] = { 1, 1, 2, 2, 3 };
	for (int i = 0; i < 5; i++)
		cr_assert_eq(seen_at_item[i], want[i], "item %d seen after %d requests", i, seen_at_item[i]);
	cr_assert_str_eq(rv, "9");
	free(rv);
}

static int stop_after_two(void *ud, cJSON *item, struct gerr *err)
{
	int *n = ud;
	cJSON_Delete(item);
	if (++*n == 2)
		return gerr_set(err, GERR_INTERNAL, "enough");
	return 0;
}

Test(nodes_api, list_each_stops_when_the_callback_fails)
{
	ts_set_route(srv, route_pages, NULL);
	struct kube_list_opts lo = { .limit = 2 };
	struct gerr err = GERR_INIT;
	int n = 0;
	cr_assert_eq(kube_list_each(kc, "/api/v1/nodes", &lo, stop_after_two, &n, NULL, &err), -1);
	cr_assert_str_eq(err.msg, "enough");
	cr_assert_eq(ts_nrequests(srv), 1, "no page is fetched after the callback stopped the list");
	gerr_clear(&err);
}

Test(nodes_api, resolve_keeps_pruned_gpu_nodes)
{
	ts_set_route(srv, route_pages, NULL);
	struct node_target t = { 0 };
	cJSON *nodes = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(nodes_resolve(kc, &t, &nodes, &err), 0, "%s", err.msg);
	cr_assert_eq(cJSON_GetArraySize(nodes), 3);
	cr_assert_str_eq(node_name(cJSON_GetArrayItem(nodes, 0)), "gpu-node-7");
	cr_assert_str_eq(node_name(cJSON_GetArrayItem(nodes, 1)), "gpu-node-gfd");
	cr_assert_str_eq(node_name(cJSON_GetArrayItem(nodes, 2)), "gpu-node-9");
	/* pruned: exactly node_prune of the node as listed */
	cJSON *full = load("gpu-node-gfd.json");
	cJSON *want = node_prune(full);
	cr_assert(cJSON_Compare(cJSON_GetArrayItem(nodes, 1), want, 1));
	cr_assert_null(json_get2(cJSON_GetArrayItem(nodes, 1), "metadata", "managedFields"));
	cJSON_Delete(want);
	cJSON_Delete(full);
	cJSON_Delete(nodes);
	/* 2 per page: 3 list requests for 5 nodes */
	cr_assert_eq(ts_nrequests(srv), 3);
	/* a command that reads less keeps less */
	struct node_target tl = { .parts = NODE_PART_LABELS };
	cr_assert_eq(nodes_resolve(kc, &tl, &nodes, &err), 0, "%s", err.msg);
	cr_assert_eq(cJSON_GetArraySize(nodes), 3);
	const cJSON *n1 = cJSON_GetArrayItem(nodes, 1);
	cr_assert_str_eq(node_name(n1), "gpu-node-gfd");
	cr_assert_not_null(json_get2(n1, "metadata", "labels"));
	cr_assert_null(json_get2(n1, "metadata", "annotations"));
	cr_assert_null(cJSON_GetObjectItemCaseSensitive(n1, "status"));
	cr_assert_null(cJSON_GetObjectItemCaseSensitive(n1, "spec"));
	cJSON_Delete(nodes);
}

Test(nodes_api, resolve_names_and_all)
{
	ts_set_route(srv, route_pages, NULL);
	char n1[] = "gpu-node-9", n2[] = "cpu-1", n3[] = "gpu-node-9", n4[] = "nope";
	char *names[] = { n1, n2, n3 };
	struct node_target t = { .names = names, .nnames = 3 };
	cJSON *nodes = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(nodes_resolve(kc, &t, &nodes, &err), 0, "%s", err.msg);
	cr_assert_eq(cJSON_GetArraySize(nodes), 2);
	cr_assert_str_eq(node_name(cJSON_GetArrayItem(nodes, 0)), "gpu-node-9");
	cr_assert_str_eq(node_name(cJSON_GetArrayItem(nodes, 1)), "cpu-1");
	cJSON_Delete(nodes);
	char *missing[] = { n1, n4 };
	struct node_target tm = { .names = missing, .nnames = 2 };
	cr_assert_eq(nodes_resolve(kc, &tm, &nodes, &err), -1);
	cr_assert_eq(err.code, GERR_NOTFOUND);
	cr_assert(strstr(err.msg, "\"nope\""), "%s", err.msg);
	gerr_clear(&err);
	struct node_target all = { .all = 1 };
	cr_assert_eq(nodes_resolve(kc, &all, &nodes, &err), 0, "%s", err.msg);
	cr_assert_eq(cJSON_GetArraySize(nodes), 5);
	cJSON_Delete(nodes);
}

/* ---- kube_list_each reads a page's text member by member ---- */

static const char *scripted_page;

static void route_one_page(void *ud, const struct ts_request *r, struct ts_reply *out)
{
	(void)ud;
	(void)r;
	ts_reply_set(out, 200, NULL, scripted_page);
}

static int gather_names(void *ud, cJSON *item, struct gerr *err)
{
	(void)err;
	struct buf *b = ud;
	if (item) {
		char *s = cJSON_PrintUnformatted(item);
		buf_addf(b, "%s%s", b->len ? "," : "", s);
		free(s);
	}
	cJSON_Delete(item);
	return 0;
}

Test(nodes_api, list_each_reads_any_member_order_and_spacing)
{
	static const struct {
		const char *page, *items, *rv;
	} cases[] = {
		/* metadata after the items, whitespace everywhere, nested arrays and strings with brackets */
		{ " {\n \"items\" : [ {\"a\":[1,{\"b\":\"]}\"}]} , {\"c\":null} ] ,\r\n\t\"kind\":\"NodeList\", \"metadata\" : {\"resourceVersion\":\"7\"} } \n",
		  "{\"a\":[1,{\"b\":\"]}\"}]},{\"c\":null}", "7" },
		{ "{\"metadata\":{\"resourceVersion\":\"8\"},\"items\":[]}", "", "8" },
		{ "{\"metadata\":{\"resourceVersion\":\"9\"},\"items\":null}", "", "9" },
		{ "{}", "", NULL },
		{ "", "", NULL },
		/* as cJSON's lookup: the first member of a name counts */
		{ "{\"items\":[1],\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[2],\"metadata\":{\"resourceVersion\":\"2\"}}",
		  "1", "1" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		scripted_page = cases[i].page;
		ts_set_route(srv, route_one_page, NULL);
		struct buf b = BUF_INIT;
		struct gerr err = GERR_INIT;
		char *rv = NULL;
		cr_assert_eq(kube_list_each(kc, "/api/v1/nodes", NULL, gather_names, &b, &rv, &err), 0, "case %zu: %s", i,
			     err.msg);
		cr_assert_str_eq(b.s, cases[i].items, "case %zu", i);
		if (cases[i].rv)
			cr_assert(rv && !strcmp(rv, cases[i].rv), "case %zu: rv %s", i, rv ? rv : "(null)");
		else
			cr_assert_null(rv, "case %zu", i);
		free(rv);
		buf_release(&b);
	}
}

Test(nodes_api, list_each_refuses_a_page_that_is_not_json)
{
	static const char *const bad[] = {
		"{\"items\":[{\"a\":1},]}", "{\"items\":[{\"a\":1}", "{\"items\":[{\"a\":1}]} x", "[1,2]", "nope",
		"{\"items\" [1]}", "{\"metadata\":{},}", "{\"items\":[1] \"metadata\":{}}", "{1:2}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		scripted_page = bad[i];
		ts_set_route(srv, route_one_page, NULL);
		struct buf b = BUF_INIT;
		struct gerr err = GERR_INIT;
		cr_assert_eq(kube_list_each(kc, "/api/v1/nodes", NULL, gather_names, &b, NULL, &err), -1, "case %zu: %s",
			     i, bad[i]);
		cr_assert_eq(err.code, GERR_API, "case %zu", i);
		cr_assert(strstr(err.msg, "not JSON"), "case %zu: %s", i, err.msg);
		gerr_clear(&err);
		buf_release(&b);
	}
}

/* ---- nodes_edit_consume: the same results, the nodes gone as they are planned ---- */

static int seen_left;

static int count_left(void *ud, const cJSON *node, struct edit_result *r)
{
	const cJSON *nodes = ud;
	(void)node;
	seen_left = seen_left * 10 + cJSON_GetArraySize(nodes);
	r->state = cJSON_CreateObject();
	return 0;
}

Test(nodes, edit_consume_frees_each_node_once_planned)
{
	for (int consume = 0; consume < 2; consume++) {
		cJSON *nodes = cJSON_CreateArray();
		for (size_t f = 0; fixtures[f]; f++) {
			cJSON *whole = variant(fixtures[f], 0);
			cJSON_AddItemToArray(nodes, node_prune(whole));
			cJSON_Delete(whole);
		}
		cJSON_AddItemToArray(nodes, cJSON_Parse("{\"metadata\":{\"name\":\"n3\"}}"));
		struct edit_result *r = NULL;
		size_t n = 0;
		struct gerr err = GERR_INIT;
		seen_left = 0;
		int rc = consume ? nodes_edit_consume(NULL, nodes, count_left, nodes, DRY_CLIENT, &r, &n, &err)
				 : nodes_edit(NULL, nodes, count_left, nodes, DRY_CLIENT, &r, &n, &err);
		cr_assert_eq(rc, 0);
		cr_assert_eq(n, 3);
		cr_assert_str_eq(r[0].node, "gpu-node-7");
		cr_assert_str_eq(r[1].node, "gpu-node-gfd");
		cr_assert_str_eq(r[2].node, "n3");
		/* nodes left when each was planned: all three, or fewer each time */
		cr_assert_eq(seen_left, consume ? 321 : 333, "%d", seen_left);
		cr_assert_eq(cJSON_GetArraySize(nodes), consume ? 0 : 3);
		edit_results_free(r, n);
		cJSON_Delete(nodes);
	}
}

/* The metadata of the nodes only (a PartialObjectMetadataList, a third less
 * to send, measured in tests/bench/README.md) where nothing else is read:
 * label's parts with names, -l or --all; never for the GPU nodes (their
 * capacity tells them), taint (spec), validate (status, each). */
static void noop_each(void *ud, const cJSON *node)
{
	(void)ud;
	(void)node;
}

Test(nodes_api, metadata_only_lists_where_only_metadata_is_read)
{
	char n1[] = "gpu-node-9";
	char *names[] = { n1 };
	const unsigned label = NODE_PART_LABELS | NODE_PART_ANNOTATIONS;
	const struct {
		struct node_target t;
		int want;
	} cases[] = {
		{ { .names = names, .nnames = 1, .parts = label }, 1 },
		{ { .selector = "a=b", .parts = label }, 1 },
		{ { .all = 1, .parts = label }, 1 },
		{ { .all = 1, .parts = NODE_PART_NAME }, 1 },
		{ { .parts = label }, 0 },                                            /* the GPU nodes */
		{ { .all = 1 }, 0 },                                                  /* parts 0: everything */
		{ { .all = 1, .parts = NODE_PART_SPEC | NODE_PART_ANNOTATIONS }, 0 }, /* taint */
		{ { .all = 1, .parts = NODE_PART_NVIDIA_LABELS | NODE_PART_STATUS }, 0 },
		{ { .all = 1, .parts = NODE_PART_LABELS | NODE_PART_ADDRESS }, 0 },
		{ { .all = 1, .parts = NODE_PART_NAME, .each = noop_each }, 0 },       /* validate */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(node_target_metadata_only(&cases[i].t), cases[i].want, "case %zu", i);

	/* and the list asks for it, as kubectl does; the nodes are the same */
	ts_set_route(srv, route_pages, NULL);
	struct node_target t = { .all = 1, .parts = label };
	cJSON *nodes = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(nodes_resolve(kc, &t, &nodes, &err), 0, "%s", err.msg);
	cr_assert_eq(cJSON_GetArraySize(nodes), 5);
	cJSON_Delete(nodes);
	const char *acc = ts_req_header(ts_request(srv, 0), "Accept");
	cr_assert_not_null(acc);
	cr_assert_str_eq(acc, "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
			      "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1,application/json");
	size_t before = ts_nrequests(srv);
	struct node_target gpu = { .parts = label };
	cr_assert_eq(nodes_resolve(kc, &gpu, &nodes, &err), 0, "%s", err.msg);
	cJSON_Delete(nodes);
	cr_assert_str_eq(ts_req_header(ts_request(srv, before), "Accept"), "application/json");
}

/* The pruners of nodes (node_prune_parts) and pods (kube_pod_prune) share
 * one set of helpers (prune.c): what each keeps, odd shapes included
 * (elements that are not objects, values that are not arrays or objects,
 * a type that is not a string), exactly. */
Test(nodes, pruners_keep_exactly_their_fields_odd_shapes_included)
{
	cJSON *node = cJSON_Parse(
		"{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\",\"uid\":\"u\",\"labels\":{\"a\":\"1\",\"nvidia.com/x\":\"2\"},"
		"\"annotations\":{\"gpuctl.io/validated\":\"t\",\"other\":\"o\"}},\"spec\":{\"taints\":[{\"key\":\"k\",\"effect\":\"NoSchedule\"}]},"
		"\"status\":{\"capacity\":{\"cpu\":\"8\",\"nvidia.com/gpu\":\"4\"},\"allocatable\":\"odd\","
		"\"conditions\":[{\"type\":\"MemoryPressure\",\"status\":\"False\"},\"text\",{\"type\":1,\"status\":\"x\"},"
		"{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"message\":\"long\"}],"
		"\"addresses\":{\"not\":\"an array\"},\"nodeInfo\":{\"osImage\":\"Ubuntu\",\"kernelVersion\":\"6\"}}}");
	cJSON *p = node_prune(node);
	char *s = cJSON_PrintUnformatted(p);
	cr_assert_str_eq(s, "{\"metadata\":{\"name\":\"n1\",\"labels\":{\"a\":\"1\",\"nvidia.com/x\":\"2\"},"
			    "\"annotations\":{\"gpuctl.io/validated\":\"t\"}},\"spec\":{\"taints\":[{\"key\":\"k\",\"effect\":\"NoSchedule\"}]},"
			    "\"status\":{\"capacity\":{\"nvidia.com/gpu\":\"4\"},\"allocatable\":\"odd\","
			    "\"conditions\":[\"text\",{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\"}],"
			    "\"addresses\":{\"not\":\"an array\"},\"nodeInfo\":{\"osImage\":\"Ubuntu\"}}}");
	free(s);
	cJSON_Delete(p);
	p = node_prune_parts(node, NODE_PART_NAME | NODE_PART_NVIDIA_LABELS);
	s = cJSON_PrintUnformatted(p);
	cr_assert_str_eq(s, "{\"metadata\":{\"name\":\"n1\",\"labels\":{\"nvidia.com/x\":\"2\"}}}");
	free(s);
	cJSON_Delete(p);
	cJSON_Delete(node);

	cJSON *pod = cJSON_Parse(
		"{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"u\",\"labels\":{\"a\":\"b\"}},"
		"\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"volumeMounts\":[{\"name\":\"v\"}]},7],"
		"\"initContainers\":\"odd\"},\"status\":\"odd\"}");
	p = kube_pod_prune(pod);
	s = cJSON_PrintUnformatted(p);
	cr_assert_str_eq(s, "{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"u\"},"
			    "\"spec\":{\"nodeName\":\"n1\",\"initContainers\":\"odd\",\"containers\":[{\"name\":\"c\",\"volumeMounts\":[{\"name\":\"v\"}]},7]},"
			    "\"status\":\"odd\"}");
	free(s);
	cJSON_Delete(p);
	p = kube_meta_prune(pod);
	s = cJSON_PrintUnformatted(p);
	cr_assert_str_eq(s, "{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"labels\":{\"a\":\"b\"}}}");
	free(s);
	cJSON_Delete(p);
	cJSON_Delete(pod);
}

static void expect_product(const char *product, const char *base, const char *mig, int shared)
{
	struct gfd_product gp;
	gfd_product_parse(product, &gp);
	cr_expect_eq(gp.base_len, strlen(base), "%s: base %zu, want %s", product, gp.base_len, base);
	cr_expect_eq(strncmp(product, base, strlen(base)), 0, "%s", product);
	if (mig) {
		cr_assert_not_null(gp.mig, "%s", product);
		cr_expect_eq(gp.mig_len, strlen(mig), "%s", product);
		cr_expect_eq(strncmp(gp.mig, mig, gp.mig_len), 0, "%s: mig %.*s", product, (int)gp.mig_len, gp.mig);
	} else {
		cr_expect_null(gp.mig, "%s", product);
	}
	cr_expect_eq(gp.shared, shared, "%s", product);
}

Test(nodes, gfd_product_labels_read_in_one_place)
{
	expect_product("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-80GB-HBM3", NULL, 0);
	expect_product("NVIDIA-H100-80GB-HBM3-SHARED", "NVIDIA-H100-80GB-HBM3", NULL, 1);
	expect_product("NVIDIA-H100-80GB-HBM3-MIG-1g.10gb", "NVIDIA-H100-80GB-HBM3", "1g.10gb", 0);
	expect_product("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb-SHARED", "NVIDIA-A100-SXM4-40GB", "1g.5gb", 1);
	expect_product("NVIDIA-H200-MIG-INVALID", "NVIDIA-H200", "INVALID", 0);
	/* not GFD's suffixes: a name that merely contains the words */
	expect_product("-MIG-x", "-MIG-x", NULL, 0);
	expect_product("NVIDIA-H100-MIG-", "NVIDIA-H100-MIG-", NULL, 0);
	expect_product("-SHARED", "-SHARED", NULL, 0);
	struct gfd_product gp;
	gfd_product_parse("NVIDIA-H200-MIG-INVALID", &gp);
	cr_expect(gfd_product_mig_invalid(&gp));
	gfd_product_parse("NVIDIA-H200-MIG-INVALIDx", &gp);
	cr_expect_not(gfd_product_mig_invalid(&gp));
	gfd_product_parse(NULL, &gp);
	cr_expect_eq(gp.base_len, 0);
	cr_expect_null(gp.mig);

	char res[64];
	cr_expect(gfd_mig_count_label("nvidia.com/mig-1g.10gb.count", res, sizeof(res)));
	cr_expect_str_eq(res, "nvidia.com/mig-1g.10gb");
	cr_expect_not(gfd_mig_count_label("nvidia.com/mig-.count", res, sizeof(res)));
	cr_expect_not(gfd_mig_count_label("nvidia.com/mig-1g.10gb.memory", res, sizeof(res)));
	cr_expect_not(gfd_mig_count_label("nvidia.com/gpu.count", res, sizeof(res)));
	cr_expect_not(gfd_mig_count_label(NULL, res, sizeof(res)));
	cr_expect_not(gfd_mig_count_label("nvidia.com/mig-1g.10gb.count", res, 8));
}
