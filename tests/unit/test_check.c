/* The validate report: results, counts, JSON and JUnit XML. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/check.h"
#include "gpuctl/report.h"

Test(check, registry_ids_are_unique_and_grouped)
{
	for (const struct check_def *d = check_defs; d->id; d++) {
		cr_assert(!strcmp(d->group, "cluster") || !strcmp(d->group, "nodes") || !strcmp(d->group, "smoke"), "%s", d->id);
		/* the group names the id's prefix: smoke-test's checks (--smoke) are smoke.* */
		if (!strcmp(d->group, "smoke"))
			cr_assert(!strncmp(d->id, "smoke.", 6), "%s", d->id);
		else
			cr_assert(!strncmp(d->id, "cluster.", 8) || !strncmp(d->id, "node.", 5), "%s", d->id);
		for (const struct check_def *e = d + 1; e->id; e++)
			cr_assert(strcmp(d->id, e->id), "duplicate %s", d->id);
	}
	cr_assert_not_null(check_find("node.driver"));
	cr_assert_null(check_find("node.nope"));
}

static void sample(struct check_report *r)
{
	check_add(r, "cluster.api", "cluster", CHECK_PASS, NULL, "Kubernetes %s", "v1.36.3");
	check_add(r, "node.driver", "gpu-1", CHECK_FAIL, "upgrade <the> driver", "driver %s is older than the minimum %s",
		  "450.248.02", "470");
	check_add(r, "node.nvidia-runtime", "gpu-1", CHECK_WARN, "set \"SystemdCgroup\" & restart",
		  "SystemdCgroup = false but runc has true");
	check_add(r, "node.gpus", "gpu-2", CHECK_SKIP, NULL, "skipped: no working driver");
	check_add(r, "node.ssh", "gpu-2", CHECK_PASS, NULL, "connected\x01 (control characters dropped)");
}

Test(check, counts_and_json)
{
	struct check_report r = { 0 };
	sample(&r);
	size_t n[4];
	check_report_count(&r, n);
	cr_assert_eq(n[CHECK_PASS], 2);
	cr_assert_eq(n[CHECK_WARN], 1);
	cr_assert_eq(n[CHECK_FAIL], 1);
	cr_assert_eq(n[CHECK_SKIP], 1);
	cJSON *doc = check_report_json(&r);
	cr_assert_str_eq(cJSON_GetObjectItem(doc, "kind")->valuestring, "ValidationResult");
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(doc, "ok")));
	cJSON *c1 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "checks"), 1);
	cr_assert_str_eq(cJSON_GetObjectItem(c1, "id")->valuestring, "node.driver");
	cr_assert_str_eq(cJSON_GetObjectItem(c1, "target")->valuestring, "gpu-1");
	cr_assert_str_eq(cJSON_GetObjectItem(c1, "status")->valuestring, "fail");
	cr_assert_str_eq(cJSON_GetObjectItem(c1, "hint")->valuestring, "upgrade <the> driver");
	cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "summary"), "failed")->valueint, 1);
	cJSON_Delete(doc);
	check_report_release(&r);
}

Test(check, junit_suites_per_target_escaped)
{
	struct check_report r = { 0 };
	sample(&r);
	char *x = check_report_junit(&r);
	cr_assert(!strncmp(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"gpuctl validate\" tests=\"5\" failures=\"1\" errors=\"0\" skipped=\"1\"", 118), "%s", x);
	cr_assert(strstr(x, "<testsuite name=\"cluster\" tests=\"1\" failures=\"0\""), "%s", x);
	cr_assert(strstr(x, "<testsuite name=\"node/gpu-1\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\""), "%s", x);
	cr_assert(strstr(x, "<testsuite name=\"node/gpu-2\" tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"1\""), "%s", x);
	cr_assert(strstr(x, "<testcase classname=\"gpuctl.validate.node.gpu-1\" name=\"node.driver\""), "%s", x);
	cr_assert(strstr(x, "<failure type=\"fail\" message=\"driver 450.248.02 is older than the minimum 470\">"
			    "driver 450.248.02 is older than the minimum 470\nhint: upgrade &lt;the&gt; driver</failure>"), "%s", x);
	cr_assert(strstr(x, "<system-out>warning: SystemdCgroup = false but runc has true\nhint: set \"SystemdCgroup\" &amp; restart</system-out>"), "%s", x);
	cr_assert(strstr(x, "<skipped message=\"skipped: no working driver\"/>"), "%s", x);
	cr_assert(strstr(x, "connected (control characters dropped)"), "%s", x);
	cr_assert(strstr(x, "</testsuites>\n"));
	free(x);
	/* take moves everything */
	struct check_report all = { 0 };
	check_report_take(&all, &r);
	cr_assert_eq(all.n, 5);
	cr_assert_eq(r.n, 0);
	cr_assert_null(r.v);
	check_report_release(&all);
}

Test(check, move_rows_gives_the_same_rows_and_empties_the_results)
{
	struct check_report a = { 0 }, b = { 0 };
	for (int k = 0; k < 2; k++) {
		struct check_report *r = k ? &b : &a;
		check_add(r, "node.ready", "gpu-1", CHECK_PASS, NULL, "Ready");
		check_add(r, "node.taints", "gpu-2", CHECK_WARN, "gpuctl taint", "missing: %s", "nvidia.com/gpu=true:NoSchedule");
		r->v[1].seconds = 0.25;
	}
	struct report ra, rb;
	report_init(&ra, "ValidationResult", "validate");
	report_init(&rb, "ValidationResult", "validate");
	check_report_rows(&a, &ra);
	check_report_move_rows(&b, &rb);
	cr_assert_eq(b.n, 0);
	cr_assert_null(b.v);
	cr_assert_eq(ra.n, rb.n);
	for (size_t i = 0; i < ra.n; i++) {
		cr_expect_str_eq(ra.v[i].target, rb.v[i].target);
		cr_expect_str_eq(ra.v[i].kind, rb.v[i].kind);
		cr_expect_str_eq(ra.v[i].message, rb.v[i].message);
		cr_expect_eq(ra.v[i].status, rb.v[i].status);
		cr_expect_eq(ra.v[i].seconds, rb.v[i].seconds);
	}
	cr_expect_str_eq(rb.v[1].hint, "gpuctl taint");
	check_report_release(&a);
	check_report_release(&b);
	report_release(&ra);
	report_release(&rb);
}

#include "gpuctl/strpool.h"

Test(check, results_share_texts_and_hand_them_to_the_report)
{
	/* the node checks of many nodes, as validate makes them */
	struct check_report nodes = { 0 };
	char name[32];
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "gpu-%03d", i);
		check_add(&nodes, "node.ready", name, CHECK_PASS, NULL, "Ready");
		check_add(&nodes, "node.labels", name, CHECK_WARN, "run gpuctl label", "missing %s", "a=b");
	}
	cr_assert_eq(strpool_count(nodes.pool), 300 + 3);
	cr_assert_eq(nodes.v[0].target, nodes.v[1].target);
	cr_assert_eq(nodes.v[1].hint, nodes.v[599].hint);
	/* the cluster's few results first, then the nodes': one pool, the larger one */
	struct check_report rep = { 0 };
	check_add(&rep, "cluster.api", "cluster", CHECK_PASS, NULL, "Kubernetes v1.36.3");
	check_add(&rep, "node.ready", "bad \xff", CHECK_FAIL, "run gpuctl label", "Ready");
	struct strpool *big = nodes.pool;
	check_report_take(&rep, &nodes);
	cr_assert_eq(rep.pool, big);
	cr_assert_null(nodes.pool);
	cr_assert_eq(rep.n, 602);
	cr_assert_str_eq(rep.v[0].message, "Kubernetes v1.36.3");
	cr_assert_eq(rep.v[1].hint, rep.v[3].hint);
	cr_assert_str_eq(rep.v[601].target, "gpu-299");
	/* a small report taken into a larger one: copied into it */
	struct check_report one = { 0 };
	check_add(&one, "node.ssh", "gpu-007", CHECK_FAIL, "check the key", "refused");
	check_report_take(&rep, &one);
	cr_assert_eq(rep.pool, big);
	cr_assert_eq(rep.v[602].target, rep.v[2 + 14].target);
	cr_assert_str_eq(rep.v[602].hint, "check the key");

	/* into the report: its rows are the same texts, not copies */
	const char *msg = rep.v[3].message, *target = rep.v[3].target;
	struct report out;
	report_init(&out, "ValidationResult", "validate");
	check_report_move_rows(&rep, &out);
	cr_assert_eq(rep.n, 0);
	cr_assert_null(rep.pool);
	cr_assert_eq(out.pool, big);
	cr_assert_eq(out.n, 603);
	cr_assert_eq(out.v[3].message, msg);
	cr_assert_eq(out.v[3].target, target);
	cr_assert_str_eq(out.v[3].kind, "node.labels");
	cr_assert_eq(out.v[3].status, REPORT_WARN);
	/* ...but made UTF-8 as report_add does */
	cr_assert_str_eq(out.v[1].target, "bad \xef\xbf\xbd");
	check_report_release(&rep);
	report_release(&out);

	/* a report that has texts already keeps its pool: the results are copied */
	struct check_report more = { 0 };
	check_add(&more, "node.ready", "gpu-1", CHECK_PASS, NULL, "Ready");
	report_init(&out, "ValidationResult", "validate");
	report_add(&out, "cluster", "cluster.api", REPORT_PASS, NULL, "ok");
	struct strpool *own = out.pool;
	check_report_move_rows(&more, &out);
	cr_assert_eq(out.pool, own);
	cr_assert_str_eq(out.v[1].target, "gpu-1");
	cr_assert_null(more.pool);
	report_release(&out);
}
