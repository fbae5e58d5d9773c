/* The report model: the same rows give the same facts in the table, JSON,
 * YAML and JUnit; each kind keeps its documented document; hostile text
 * cannot break any view; the atomic writer and the progress line. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpuctl/buf.h"
#include "gpuctl/report.h"
#include "gpuctl/yaml.h"

/* What a renderer printed to a FILE. */
typedef void (*render_fn)(FILE *f, const struct report *r);

static char *capture(render_fn fn, const struct report *r)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	cr_assert_not_null(f);
	fn(f, r);
	fclose(f);
	return s;
}

static void table_plain(FILE *f, const struct report *r)
{
	report_print_table(f, r, 0);
}

static void table_color(FILE *f, const struct report *r)
{
	report_print_table(f, r, 1);
}

static void summary(FILE *f, const struct report *r)
{
	report_print_summary(f, r);
}

static void doc_yaml(FILE *f, const struct report *r)
{
	report_print_doc(f, r, "yaml");
}

static void doc_json(FILE *f, const struct report *r)
{
	report_print_doc(f, r, "json");
}

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void validation(struct report *r)
{
	report_init(r, "ValidationResult", "validate");
	report_add(r, "cluster", "cluster.api", REPORT_PASS, NULL, "Kubernetes %s", "v1.36.3");
	report_add(r, "gpu-1", "node.driver", REPORT_FAIL, "upgrade the NVIDIA driver on the node",
		   "driver 450.248.02 is older than the minimum 470")->seconds = 0.412;
	report_add(r, "gpu-1", "node.nvidia-runtime", REPORT_WARN, "set SystemdCgroup", "SystemdCgroup = false but runc has true");
	report_add(r, "gpu-2", "node.gpus", REPORT_SKIP, NULL, "skipped: no working driver");
	report_add(r, "gpu-2", "node.ssh", REPORT_PASS, "not shown: passed", "connected");
}

Test(report, same_facts_in_table_json_yaml_junit)
{
	struct report r;
	validation(&r);

	char *t = capture(table_plain, &r);
	cr_assert_str_eq(t,
			 "CHECK                TARGET   RESULT  MESSAGE\n"
			 "cluster.api          cluster  pass    Kubernetes v1.36.3\n"
			 "node.driver          gpu-1    fail    driver 450.248.02 is older than the minimum 470\n"
			 "                                      hint: upgrade the NVIDIA driver on the node\n"
			 "node.nvidia-runtime  gpu-1    warn    SystemdCgroup = false but runc has true\n"
			 "                                      hint: set SystemdCgroup\n"
			 "node.gpus            gpu-2    skip    skipped: no working driver\n"
			 "node.ssh             gpu-2    pass    connected\n");
	char *s = capture(summary, &r);
	cr_assert_str_eq(s, "5 checks: 2 passed, 1 warning, 1 failed, 1 skipped\n");

	/* JSON: gpuctl-validate(1)'s document, key for key */
	cJSON *doc = report_json(&r);
	char *flat = cJSON_PrintUnformatted(doc);
	cr_assert_str_eq(flat,
			 "{\"apiVersion\":\"gpuctl.io/v1alpha1\",\"kind\":\"ValidationResult\",\"checks\":["
			 "{\"id\":\"cluster.api\",\"target\":\"cluster\",\"status\":\"pass\",\"message\":\"Kubernetes v1.36.3\"},"
			 "{\"id\":\"node.driver\",\"target\":\"gpu-1\",\"status\":\"fail\",\"message\":\"driver 450.248.02 is older than the minimum 470\",\"hint\":\"upgrade the NVIDIA driver on the node\"},"
			 "{\"id\":\"node.nvidia-runtime\",\"target\":\"gpu-1\",\"status\":\"warn\",\"message\":\"SystemdCgroup = false but runc has true\",\"hint\":\"set SystemdCgroup\"},"
			 "{\"id\":\"node.gpus\",\"target\":\"gpu-2\",\"status\":\"skip\",\"message\":\"skipped: no working driver\"},"
			 "{\"id\":\"node.ssh\",\"target\":\"gpu-2\",\"status\":\"pass\",\"message\":\"connected\",\"hint\":\"not shown: passed\"}],"
			 "\"summary\":{\"total\":5,\"passed\":2,\"warnings\":1,\"failed\":1,\"skipped\":1},\"ok\":false}");

	/* -o json and -o yaml parse back to the same document */
	char *js = capture(doc_json, &r);
	cJSON *back = cJSON_Parse(js);
	cr_assert(cJSON_Compare(back, doc, 1));
	char *ys = capture(doc_yaml, &r);
	cJSON *yback = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(yaml_parse(ys, strlen(ys), "report", &yback, &err), 0, "%s", err.msg);
	cr_assert(cJSON_Compare(yback, doc, 1), "%s", ys);

	/* JUnit: one testcase per row, failures and skips as the summary says */
	char *x = report_junit(&r);
	cr_assert(strstr(x, "<testsuites name=\"gpuctl validate\" tests=\"5\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"0.412\">"), "%s", x);
	cr_assert_eq(count(x, "<testcase "), 5);
	cr_assert_eq(count(x, "<failure "), 1);
	cr_assert_eq(count(x, "<skipped "), 1);
	cr_assert_eq(count(x, "<testsuite "), 3);
	cr_assert(strstr(x, "<testsuite name=\"node/gpu-1\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"0.412\">"), "%s", x);
	cr_assert(strstr(x, "<testcase classname=\"gpuctl.validate.node.gpu-1\" name=\"node.driver\" time=\"0.412\">\n"
			    "      <failure type=\"fail\" message=\"driver 450.248.02 is older than the minimum 470\">"
			    "driver 450.248.02 is older than the minimum 470\nhint: upgrade the NVIDIA driver on the node</failure>"), "%s", x);
	cr_assert(strstr(x, "<system-out>warning: SystemdCgroup = false but runc has true\nhint: set SystemdCgroup</system-out>"), "%s", x);
	cr_assert(strstr(x, "<testcase classname=\"gpuctl.validate.cluster\" name=\"cluster.api\""), "%s", x);

	free(x);
	free(t);
	free(s);
	free(flat);
	free(js);
	free(ys);
	cJSON_Delete(doc);
	cJSON_Delete(back);
	cJSON_Delete(yback);
	report_release(&r);
}

Test(report, junit_suites_in_first_appearance_order_named_by_command)
{
	struct report r;
	report_init(&r, "DeployResult", "deploy");
	report_add(&r, "zeta", "containerd", REPORT_CHANGED, NULL, "ok");
	report_add(&r, "alpha", "containerd", REPORT_ROLLED_BACK, "look at the backup", "restart failed");
	report_add(&r, "cluster", "runtimeclass", REPORT_CREATED, NULL, "%s", "");
	report_add(&r, "zeta", "extra", REPORT_SKIPPED, NULL, "not done");
	char *x = report_junit(&r);
	cr_assert(strstr(x, "<testsuites name=\"gpuctl deploy\" tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"1\""), "%s", x);
	const char *z = strstr(x, "name=\"node/zeta\" tests=\"2\"");
	const char *a = strstr(x, "name=\"node/alpha\" tests=\"1\" failures=\"1\"");
	const char *c = strstr(x, "<testsuite name=\"cluster\" tests=\"1\"");
	cr_assert(z && a && c && z < a && a < c, "%s", x);
	cr_assert(strstr(x, "<testcase classname=\"gpuctl.deploy.node.alpha\" name=\"containerd\" time=\"0.000\">\n"
			    "      <failure type=\"rolled-back\" message=\"restart failed\">restart failed\nhint: look at the backup</failure>"), "%s", x);
	cr_assert(strstr(x, "<testcase classname=\"gpuctl.deploy.cluster\" name=\"runtimeclass\""), "%s", x);
	free(x);
	report_release(&r);
}

#define HOSTILE "say \"hi\" <b>&amp;</b> 'x'\x01\x1b[31mred\x7f\nsecond\tline\r\xc2\x9b" "2J \xff end"
/* as every view carries it: what is not UTF-8 replaced */
#define HOSTILE_UTF8 "say \"hi\" <b>&amp;</b> 'x'\x01\x1b[31mred\x7f\nsecond\tline\r\xc2\x9b" "2J \xef\xbf\xbd end"

Test(report, hostile_text_in_every_view)
{
	struct report r;
	report_init(&r, "ValidationResult", "validate");
	report_add(&r, "gpu-<1>", "node.driver", REPORT_FAIL, HOSTILE, "%s", HOSTILE);
	report_add(&r, "gpu-<1>", "node.gpus", REPORT_PASS, NULL, "%s", HOSTILE);

	/* the table: each row one line, no control character reaches the terminal */
	char *t = capture(table_plain, &r);
	cr_assert_eq(count(t, "\n"), 4, "%s", t); /* header, row, hint, row */
	for (const unsigned char *p = (const unsigned char *)t; *p; p++)
		cr_assert(*p == '\n' || (*p >= 0x20 && *p != 0x7f), "control character 0x%02x in the table", *p);
	cr_assert_null(strstr(t, "\xc2\x9b"));
	/* escaped as out_add_printable does everywhere: visible, inert */
	cr_assert(strstr(t, "say \"hi\" <b>&amp;</b> 'x'\\x01\\x1b[31mred\\x7f second line \\x9b2J"), "%s", t);

	/* JSON and YAML carry the text exactly */
	cJSON *doc = report_json(&r);
	char *js = capture(doc_json, &r);
	cJSON *back = cJSON_Parse(js);
	cr_assert_not_null(back);
	const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(back, "checks"), 0);
	cr_assert_str_eq(cJSON_GetObjectItem(c0, "message")->valuestring, HOSTILE_UTF8);
	cr_assert_str_eq(cJSON_GetObjectItem(c0, "hint")->valuestring, HOSTILE_UTF8);
	cr_assert_str_eq(cJSON_GetObjectItem(c0, "target")->valuestring, "gpu-<1>");
	char *ys = capture(doc_yaml, &r);
	cJSON *yback = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(yaml_parse(ys, strlen(ys), "report", &yback, &err), 0, "%s\n%s", err.msg, ys);
	cr_assert(cJSON_Compare(yback, doc, 1), "%s", ys);

	/* JUnit: escaped, forbidden characters dropped, invalid UTF-8 replaced */
	char *x = report_junit(&r);
	for (const unsigned char *p = (const unsigned char *)x; *p; p++)
		cr_assert(*p == '\n' || *p == '\t' || *p >= 0x20, "control character 0x%02x in the XML", *p);
	cr_assert_null(strstr(x, "<b>"));
	cr_assert_null(strstr(x, "\xff"));
	cr_assert(strstr(x, "<testsuite name=\"node/gpu-&lt;1&gt;\""), "%s", x);
	cr_assert(strstr(x, "classname=\"gpuctl.validate.node.gpu-&lt;1&gt;\""), "%s", x);
	/* the attribute keeps the newline and tab as character references */
	cr_assert(strstr(x, "message=\"say &quot;hi&quot; &lt;b&gt;&amp;amp;&lt;/b&gt; &apos;x&apos;[31mred\x7f&#10;second&#9;line&#13;\xc2\x9b"
			    "2J \xef\xbf\xbd end\">"), "%s", x);
	cr_assert(strstr(x, ">say \"hi\" &lt;b&gt;&amp;amp;&lt;/b&gt; 'x'[31mred\x7f\nsecond\tline&#13;\xc2\x9b" "2J \xef\xbf\xbd end\nhint: say"),
		  "%s", x);
	cr_assert_eq(count(x, "<failure "), 1);
	cr_assert_eq(count(x, "</failure>"), 1);

	free(t);
	free(js);
	free(ys);
	free(x);
	cJSON_Delete(doc);
	cJSON_Delete(back);
	cJSON_Delete(yback);
	report_release(&r);
}

Test(report, colour_only_when_enabled)
{
	struct report r;
	validation(&r);
	char *plain = capture(table_plain, &r);
	char *col = capture(table_color, &r);
	cr_assert_null(strchr(plain, '\033'));
	cr_assert(strstr(col, "\033[31mfail\033[0m"), "%s", col);
	cr_assert(strstr(col, "\033[32mpass\033[0m"), "%s", col);
	free(plain);
	free(col);
	report_release(&r);
}

/* ---- the documents of deploy, label and taint ---- */

static void deploy_report(struct report *r)
{
	report_init(r, "DeployResult", "deploy");
	report_set(r, "dryRun", cJSON_CreateString("none"));
	struct report_row *row = report_add(r, "gpu-node-2", "containerd", REPORT_CHANGED, NULL,
					    "driver 580.159.04, 8 GPUs NVIDIA H100 80GB HBM3, containerd 1.7.24: nvidia runtime added (drop-in), containerd restarted");
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "address", "10.0.0.12");
	cJSON_AddItemToObject(d, "probe", cJSON_Parse("{\"os\":\"Ubuntu\"}"));
	cJSON_AddItemToObject(d, "containerd", cJSON_Parse("{\"result\":\"changed\",\"method\":\"drop-in\"}"));
	report_row_details(row, d);
	struct report_row mine = { 0 };
	report_row_set(&mine, "gpu-node-4", "containerd", REPORT_ROLLED_BACK, "see the backup", "node gpu-node-4: restart failed");
	struct gerr e = GERR_INIT;
	gerr_set(&e, GERR_TIMEOUT, "node gpu-node-4: restart failed\nmore");
	gerr_hint(&e, "see the backup");
	d = cJSON_CreateObject();
	cJSON_AddItemToObject(d, "error", report_error_json(&e));
	report_row_details(&mine, d);
	report_add_row(r, &mine);
	cr_assert_null(mine.target);
	gerr_clear(&e);
	row = report_add(r, "cluster", "runtimeclass", REPORT_CREATED, NULL, "%s", "");
	row->object = xstrdup("runtimeclass/nvidia");
	d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", "nvidia");
	cJSON_AddStringToObject(d, "handler", "nvidia");
	report_row_details(row, d);
}

Test(report, deploy_document_and_lines)
{
	struct report r;
	deploy_report(&r);
	cJSON *doc = report_json(&r);
	char *flat = cJSON_PrintUnformatted(doc);
	cr_assert_str_eq(flat,
			 "{\"apiVersion\":\"gpuctl.io/v1alpha1\",\"kind\":\"DeployResult\",\"dryRun\":\"none\",\"nodes\":["
			 "{\"name\":\"gpu-node-2\",\"address\":\"10.0.0.12\",\"result\":\"changed\",\"probe\":{\"os\":\"Ubuntu\"},"
			 "\"containerd\":{\"result\":\"changed\",\"method\":\"drop-in\"}},"
			 "{\"name\":\"gpu-node-4\",\"result\":\"rolled-back\",\"error\":{\"reason\":\"timeout\",\"message\":\"node gpu-node-4: restart failed\\nmore\",\"hint\":\"see the backup\"}}],"
			 "\"runtimeClass\":{\"name\":\"nvidia\",\"handler\":\"nvidia\",\"result\":\"created\"},"
			 "\"summary\":{\"nodes\":2,\"changed\":1,\"unchanged\":0,\"failed\":1}}");
	char *t = capture(table_plain, &r);
	cr_assert_str_eq(t,
			 "node/gpu-node-2  changed  driver 580.159.04, 8 GPUs NVIDIA H100 80GB HBM3, containerd 1.7.24: nvidia runtime added (drop-in), containerd restarted\n"
			 "node/gpu-node-4  rolled-back  node gpu-node-4: restart failed\n"
			 "runtimeclass/nvidia  created\n");
	char *s = capture(summary, &r);
	cr_assert_str_eq(s, "2 node(s): 1 changed, 0 unchanged, 1 failed\n");
	cr_assert_eq(report_failed(&r), 1);
	/* the nodes phase did not run: no "nodes", the summary still there */
	r.no_items = 1;
	cJSON *d2 = report_json(&r);
	cr_assert_null(cJSON_GetObjectItem(d2, "nodes"));
	cr_assert_not_null(cJSON_GetObjectItem(d2, "runtimeClass"));
	free(flat);
	free(t);
	free(s);
	cJSON_Delete(doc);
	cJSON_Delete(d2);
	report_release(&r);
}

static void edit_row(struct report *r, const char *node, enum report_status st, const char *msg, const char *state_key)
{
	struct report_row *row = report_add(r, node, r->command, st, NULL, "%s", msg);
	cJSON *d = cJSON_CreateObject();
	cJSON_AddItemToObject(d, "changes", cJSON_Parse(st == REPORT_CHANGED ? "[{\"op\":\"add\",\"key\":\"a\",\"value\":\"b\"}]" : "[]"));
	if (st != REPORT_FAILED)
		cJSON_AddItemToObject(d, state_key, cJSON_Parse(!strcmp(state_key, "labels") ? "{\"a\":\"b\"}" : "[]"));
	if (st == REPORT_FAILED || st == REPORT_SKIPPED) {
		struct gerr e = GERR_INIT;
		gerr_set(&e, GERR_FORBIDDEN, "nodes \"%s\" is forbidden", node);
		e.http_status = 403;
		cJSON_AddItemToObject(d, "error", report_error_json(&e));
		gerr_clear(&e);
	}
	report_row_details(row, d);
}

Test(report, label_document_and_lines)
{
	struct report r;
	report_init(&r, "NodeLabelResult", "label");
	r.changed_word = "labeled";
	report_set(&r, "dryRun", cJSON_CreateString("client"));
	edit_row(&r, "gpu-node-1", REPORT_CHANGED, "(dry run: client) +a=b", "labels");
	edit_row(&r, "gpu-node-22", REPORT_UNCHANGED, "", "labels");
	edit_row(&r, "n3", REPORT_FAILED, "nodes \"n3\" is forbidden", "labels");
	edit_row(&r, "n4", REPORT_SKIPPED, "not changed because other nodes failed validation", "labels");
	char *t = capture(table_plain, &r);
	cr_assert_str_eq(t,
			 "node/gpu-node-1   labeled   (dry run: client) +a=b\n"
			 "node/gpu-node-22  unchanged\n"
			 "node/n3           failed    nodes \"n3\" is forbidden\n"
			 "node/n4           skipped   not changed because other nodes failed validation\n");
	char *s = capture(summary, &r);
	cr_assert_str_eq(s, "4 node(s): 1 labeled, 1 unchanged, 1 failed, others skipped\n");
	cJSON *doc = report_json(&r);
	char *flat = cJSON_PrintUnformatted(doc);
	cr_assert_str_eq(flat,
			 "{\"apiVersion\":\"gpuctl.io/v1alpha1\",\"kind\":\"NodeLabelResult\",\"dryRun\":\"client\",\"nodes\":["
			 "{\"name\":\"gpu-node-1\",\"result\":\"changed\",\"changes\":[{\"op\":\"add\",\"key\":\"a\",\"value\":\"b\"}],\"labels\":{\"a\":\"b\"}},"
			 "{\"name\":\"gpu-node-22\",\"result\":\"unchanged\",\"changes\":[],\"labels\":{\"a\":\"b\"}},"
			 "{\"name\":\"n3\",\"result\":\"failed\",\"changes\":[],\"error\":{\"reason\":\"forbidden\",\"httpStatus\":403,\"message\":\"nodes \\\"n3\\\" is forbidden\"}},"
			 "{\"name\":\"n4\",\"result\":\"skipped\",\"changes\":[],\"labels\":{\"a\":\"b\"},\"error\":{\"reason\":\"forbidden\",\"httpStatus\":403,\"message\":\"nodes \\\"n4\\\" is forbidden\"}}],"
			 "\"summary\":{\"total\":4,\"changed\":1,\"unchanged\":1,\"failed\":1,\"skipped\":1}}");
	free(t);
	free(s);
	free(flat);
	cJSON_Delete(doc);
	report_release(&r);
}

Test(report, taint_document_has_taints)
{
	struct report r;
	report_init(&r, "NodeTaintResult", "taint");
	r.changed_word = "tainted";
	report_set(&r, "dryRun", cJSON_CreateString("none"));
	edit_row(&r, "gpu-node-1", REPORT_CHANGED, "+a=b:NoSchedule", "taints");
	cJSON *doc = report_json(&r);
	const cJSON *n = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "nodes"), 0);
	cr_assert(cJSON_IsArray(cJSON_GetObjectItem(n, "taints")));
	cr_assert_null(cJSON_GetObjectItem(n, "labels"));
	char *t = capture(table_plain, &r);
	cr_assert_str_eq(t, "node/gpu-node-1  tainted   +a=b:NoSchedule\n");
	free(t);
	cJSON_Delete(doc);
	report_release(&r);
}

Test(report, counts_by_status_and_class)
{
	struct report r;
	report_init(&r, "Other", "other");
	for (int st = 0; st < REPORT_STATUS_COUNT; st++)
		report_add(&r, "n", report_status_name((enum report_status)st), (enum report_status)st, NULL, "x");
	size_t n[REPORT_STATUS_COUNT], c[4];
	report_count(&r, n);
	report_count_classes(&r, c);
	for (int st = 0; st < REPORT_STATUS_COUNT; st++)
		cr_assert_eq(n[st], 1);
	cr_assert_eq(c[REPORT_CLASS_OK], 4);   /* pass changed unchanged created */
	cr_assert_eq(c[REPORT_CLASS_WARN], 1);
	cr_assert_eq(c[REPORT_CLASS_FAIL], 4); /* fail failed rolled-back rollback-failed */
	cr_assert_eq(c[REPORT_CLASS_SKIP], 2);
	cr_assert_eq(report_failed(&r), 4);
	cr_assert_str_eq(report_status_name(REPORT_ROLLBACK_FAILED), "rollback-failed");
	/* an unknown kind: a generic document */
	cJSON *doc = report_json(&r);
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "results")), REPORT_STATUS_COUNT);
	cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "summary"), "failed")->valueint, 4);
	cJSON_Delete(doc);
	report_release(&r);
}

/* ---- the atomic writer ---- */

static char *tmpdir(void)
{
	char *d = xstrdup("/tmp/gpuctl-test-report-XXXXXX");
	cr_assert_not_null(mkdtemp(d));
	return d;
}

static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			char *p = xasprintf("%s/%s", dir, e->d_name);
			if (unlink(p) < 0)
				rmdir(p);
			free(p);
		}
	closedir(d);
	rmdir(dir);
}

Test(report, atomic_write_replaces_the_file_and_leaves_nothing_else)
{
	char *dir = tmpdir();
	char *path = xasprintf("%s/report.xml", dir);
	struct gerr err = GERR_INIT;
	mode_t old = umask(022);
	cr_assert_eq(report_write_file(path, "old", 3, &err), 0, "%s", err.msg);
	cr_assert_eq(report_write_file(path, "<new/>\n", 7, &err), 0, "%s", err.msg);
	umask(old);
	struct buf b = BUF_INIT;
	cr_assert_eq(buf_read_file(&b, path, 1024, &err), 0);
	cr_assert_str_eq(b.s, "<new/>\n");
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0644);
	cr_assert_eq(entries(dir), 1, "a temporary file was left behind");
	buf_release(&b);
	rm_dir(dir);
	free(path);
	free(dir);
}

Test(report, atomic_write_never_follows_a_symlink_at_the_temp_path)
{
	char *dir = tmpdir();
	char *path = xasprintf("%s/report.xml", dir);
	char *tmp = xasprintf("%s/.report.xml.tmp", dir);
	char *victim = xasprintf("%s/victim", dir);
	FILE *f = fopen(victim, "w");
	fputs("precious", f);
	fclose(f);
	cr_assert_eq(symlink(victim, tmp), 0);
	struct gerr err = GERR_INIT;
	cr_assert_eq(report_write_file_via(path, tmp, "<evil/>", 7, &err), -1);
	cr_assert_eq(err.code, GERR_IO);
	cr_assert(strstr(err.msg, path), "%s", err.msg);
	struct buf b = BUF_INIT;
	cr_assert_eq(buf_read_file(&b, victim, 1024, &err), 0);
	cr_assert_str_eq(b.s, "precious", "the write went through the symlink");
	cr_assert_eq(access(path, F_OK), -1, "the report appeared although the write failed");
	/* a dangling symlink is refused too (O_EXCL), and the file it names never created */
	char *nowhere = xasprintf("%s/nowhere", dir);
	cr_assert_eq(unlink(tmp), 0);
	cr_assert_eq(symlink(nowhere, tmp), 0);
	gerr_clear(&err);
	cr_assert_eq(report_write_file_via(path, tmp, "<evil/>", 7, &err), -1);
	cr_assert_eq(access(nowhere, F_OK), -1);
	gerr_clear(&err);
	buf_release(&b);
	rm_dir(dir);
	free(nowhere);
	free(victim);
	free(tmp);
	free(path);
	free(dir);
}

Test(report, atomic_write_failure_leaves_no_temp_file)
{
	char *dir = tmpdir();
	/* the target is a folder: the rename fails after the temp file was written */
	char *path = xasprintf("%s/sub", dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	struct gerr err = GERR_INIT;
	cr_assert_eq(report_write_file(path, "x", 1, &err), -1);
	cr_assert_eq(err.code, GERR_IO);
	cr_assert(strstr(err.msg, path), "%s", err.msg);
	cr_assert_eq(entries(dir), 1, "the temporary file was left behind");
	gerr_clear(&err);
	/* a folder that does not exist */
	char *missing = xasprintf("%s/no/such/report.xml", dir);
	cr_assert_eq(report_write_file(missing, "x", 1, &err), -1);
	cr_assert(strstr(err.msg, missing), "%s", err.msg);
	gerr_clear(&err);
	rm_dir(dir);
	free(missing);
	free(path);
	free(dir);
}

Test(report, junit_file_is_the_junit_document)
{
	char *dir = tmpdir();
	char *path = xasprintf("%s/v.xml", dir);
	struct report r;
	validation(&r);
	struct gerr err = GERR_INIT;
	cr_assert_eq(report_write_junit(path, &r, &err), 0, "%s", err.msg);
	struct buf b = BUF_INIT;
	cr_assert_eq(buf_read_file(&b, path, 1 << 20, &err), 0);
	char *x = report_junit(&r);
	cr_assert_str_eq(b.s, x);
	free(x);
	buf_release(&b);
	report_release(&r);
	/* a report of many nodes: written in pieces, the same document */
	report_init(&r, "ValidationResult", "validate");
	char node[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(node, sizeof(node), "gpu-%04d", i % 700);
		report_add(&r, node, i % 2 ? "node.ready" : "node.labels", (enum report_status)(i % 4), i % 3 ? "a <hint>" : NULL,
			   "message %d & more", i);
	}
	x = report_junit(&r);
	cr_assert_gt(strlen(x), 3 * 64 * 1024, "big enough for several pieces");
	cr_assert_eq(report_write_junit(path, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(buf_read_file(&b, path, 1 << 24, &err), 0);
	cr_assert_str_eq(b.s, x);
	char *printed = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&printed, &n);
	report_print_junit(f, &r);
	fclose(f);
	cr_assert_str_eq(printed, x);
	cr_assert_eq(entries(dir), 1, "the temporary file is gone");
	free(printed);
	free(x);
	buf_release(&b);
	report_release(&r);
	rm_dir(dir);
	free(path);
	free(dir);
}

/* ---- the progress line ---- */

Test(report, progress_prints_nothing_when_not_a_terminal)
{
	FILE *f = tmpfile();
	struct report_progress p;
	report_progress_init(&p, f, 1, "validate", "nodes checked", 2);
	cr_assert_eq(p.on, 0);
	report_progress_step(&p, "gpu-1", 1);
	report_progress_step(&p, "gpu-2", 0);
	cr_assert_eq(p.done, 2);
	cr_assert_eq(ftell(f), 0, "progress written to a file");
	fclose(f);
}

Test(report, progress_line_on_a_terminal)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) {
		cr_log_warn("no pseudo-terminal here; skipped");
		if (m >= 0)
			close(m);
		return;
	}
	int s = open(ptsname(m), O_RDWR | O_NOCTTY);
	cr_assert_geq(s, 0);
	FILE *f = fdopen(s, "w");
	struct report_progress p;
	report_progress_init(&p, f, 0, "validate", "nodes checked", 2);
	cr_assert_eq(p.on, 0, "the caller did not want it");
	report_progress_init(&p, f, 1, "validate", "nodes checked", 2);
	cr_assert_eq(p.on, 1);
	report_progress_step(&p, "gpu-1", 1);
	char got[256] = { 0 };
	ssize_t n = read(m, got, sizeof(got) - 1);
	cr_assert_gt(n, 0);
	cr_assert(strstr(got, "\r\033[Kvalidate: 1/2 nodes checked (node/gpu-1: 1 failed)"), "%s", got);
	fclose(f);
	close(m);
}

Test(report, exit_status_is_decided_in_one_place)
{
	struct report r;
	report_init(&r, "NodeLabelResult", "label");
	struct gerr usage = GERR_INIT, api = GERR_INIT;
	cr_assert_eq(report_exit_status(&r, NULL), 0);
	report_add(&r, "gpu-1", "label", REPORT_CHANGED, NULL, "accelerator=nvidia");
	cr_assert_eq(report_exit_status(&r, NULL), 0);
	struct report_row *f = report_add(&r, "gpu-2", "label", REPORT_FAILED, NULL, "conflict");
	f->code = GERR_CONFLICT;
	cr_assert_eq(report_exit_status(&r, NULL), 1, "a node failed");
	struct report_row *x = report_add(&r, "gpu-3", "label", REPORT_FAILED, NULL, "forbidden");
	x->code = GERR_FORBIDDEN;
	cr_assert_eq(report_exit_status(&r, NULL), 3, "the cluster refused us");
	gerr_set(&usage, GERR_USAGE, "bad flag");
	cr_assert_eq(report_exit_status(&r, &usage), 2, "the error that stopped the command decides");
	gerr_set(&api, GERR_CONN, "cannot connect");
	cr_assert_eq(report_exit_status(NULL, &api), 3);
	struct report ok;
	report_init(&ok, "DeployResult", "deploy");
	report_add(&ok, "gpu-1", "containerd", REPORT_ROLLBACK_FAILED, NULL, "ROLLBACK FAILED")->code = GERR_SSH_CONN;
	cr_assert_eq(report_exit_status(&ok, NULL), 1, "a node that cannot be reached is not the cluster refusing us");
	gerr_clear(&usage);
	gerr_clear(&api);
	report_release(&r);
	report_release(&ok);
}

/* ---- rows that share their texts; documents written item by item ---- */

#include "gpuctl/out.h"
#include "gpuctl/strpool.h"

Test(report, rows_share_repeated_texts)
{
	/* validate holds about nine rows per GPU node until it prints: each is
	 * pointers, and a text repeated on every node is stored once */
	cr_assert_leq(sizeof(struct report_row), 64);
	struct report r;
	report_init(&r, "ValidationResult", "validate");
	char node[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(node, sizeof(node), "gpu-node-%04d", i);
		report_add(&r, node, "node.ready", REPORT_PASS, NULL, "Ready");
		report_add(&r, node, "node.labels", REPORT_WARN, "gpuctl label --all", "missing: %s", "nvidia.com/gpu.present");
	}
	cr_assert_eq(r.n, 2000);
	/* 1000 names, 2 ids, 2 messages, 1 hint */
	cr_assert_eq(strpool_count(r.pool), 1005);
	for (size_t i = 2; i < r.n; i++) {
		cr_assert_eq(r.v[i].kind, r.v[i % 2].kind);
		cr_assert_eq(r.v[i].message, r.v[i % 2].message);
		cr_assert_eq(r.v[i].hint, r.v[i % 2].hint);
	}
	cr_assert_eq(r.v[0].target, r.v[1].target);
	cr_assert_str_eq(r.v[1998].target, "gpu-node-0999");
	cr_assert_str_eq(r.v[1].message, "missing: nvidia.com/gpu.present");
	cr_assert_null(r.v[0].hint);
	/* a row built apart brings its texts into the pool */
	struct report_row mine = { 0 };
	report_row_set(&mine, "gpu-node-0001", "node.ready", REPORT_FAIL, "gpuctl label --all", "not %s", "Ready");
	report_add_row(&r, &mine);
	cr_assert_null(mine.target);
	cr_assert_eq(r.v[r.n - 1].target, r.v[2].target);
	cr_assert_eq(r.v[r.n - 1].hint, r.v[1].hint);
	cr_assert_str_eq(r.v[r.n - 1].message, "not Ready");
	/* texts that live as long as the report are not copied, unless they are not UTF-8 */
	const char *t = strpool_intern(report_pool(&r), "gpu-node-9999");
	const char *bad = strpool_intern(report_pool(&r), "bad \xff byte");
	struct report_row *row = report_add_texts(&r, t, "node.gpus", REPORT_FAIL, NULL, bad);
	cr_assert_eq(row->target, t);
	cr_assert_str_eq(row->kind, "node.gpus");
	cr_assert_str_eq(row->message, "bad \xef\xbf\xbd byte");
	row = report_add_texts(&r, NULL, NULL, REPORT_SKIP, NULL, NULL);
	cr_assert_str_eq(row->target, "");
	cr_assert_str_eq(row->message, "");
	report_release(&r);
}

/* The documents as they were built whole: out_doc of report_json. */
static char *whole_doc(const struct report *r, const char *format)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	cJSON *doc = report_json(r);
	out_doc(f, doc, format);
	cJSON_Delete(doc);
	fclose(f);
	return s;
}

static void assert_streamed_as_whole(const struct report *r, const char *what)
{
	char *js = capture(doc_json, r), *jw = whole_doc(r, "json");
	cr_assert_str_eq(js, jw, "%s: JSON written item by item differs\n--- streamed\n%s\n--- whole\n%s", what, js, jw);
	char *ys = capture(doc_yaml, r), *yw = whole_doc(r, "yaml");
	cr_assert_str_eq(ys, yw, "%s: YAML written item by item differs\n--- streamed\n%s\n--- whole\n%s", what, ys, yw);
	free(js);
	free(jw);
	free(ys);
	free(yw);
}

Test(report, documents_written_item_by_item_are_the_whole_ones_byte_for_byte)
{
	struct report r;
	validation(&r);
	assert_streamed_as_whole(&r, "validate");
	report_set(&r, "admission", cJSON_Parse("{\"admitted\":[\"gpu-1\"],\"kept\":[],\"failed\":[{\"name\":\"x\"}]}"));
	assert_streamed_as_whole(&r, "validate with admission");
	report_release(&r);

	/* no rows; no items at all */
	report_init(&r, "ValidationResult", "validate");
	assert_streamed_as_whole(&r, "empty");
	report_release(&r);
	deploy_report(&r);
	assert_streamed_as_whole(&r, "deploy");
	r.no_items = 1;
	assert_streamed_as_whole(&r, "deploy without nodes");
	report_release(&r);
	/* deploy with only the RuntimeClass row: not an item */
	report_init(&r, "DeployResult", "deploy");
	report_add(&r, "cluster", "runtimeclass", REPORT_UNCHANGED, NULL, "%s", "");
	assert_streamed_as_whole(&r, "deploy, runtimeclass only");
	/* ...and an item after it */
	report_add(&r, "gpu-9", "containerd", REPORT_UNCHANGED, NULL, "ok");
	assert_streamed_as_whole(&r, "deploy, item after runtimeclass");
	report_release(&r);

	/* label and taint, with nested, empty and odd values in the details */
	report_init(&r, "NodeLabelResult", "label");
	report_set(&r, "dryRun", cJSON_CreateString("client"));
	edit_row(&r, "gpu-node-1", REPORT_CHANGED, "+a=b", "labels");
	edit_row(&r, "gpu-node-2", REPORT_UNCHANGED, "", "labels");
	edit_row(&r, "n3", REPORT_FAILED, "forbidden", "labels");
	edit_row(&r, "n4", REPORT_SKIPPED, "skipped", "labels");
	struct report_row *row = report_add(&r, "odd\n\"node\"\t", "label", REPORT_CHANGED, NULL, "%s", HOSTILE);
	report_row_details(row, cJSON_Parse("{\"changes\":[[],{},[1,2.5,-3e-7,true,false,null],{\"a\":{\"b\":{}}}],"
					    "\"labels\":{\"k\\u007f\\u0085\":\"v\\u0001\\n\\u2028\",\"\":\"\",\"yes\":\"on\"},"
					    "\"extra\":123456789012345}"));
	assert_streamed_as_whole(&r, "label");
	report_release(&r);
	report_init(&r, "NodeTaintResult", "taint");
	edit_row(&r, "gpu-node-1", REPORT_CHANGED, "+a=b:NoSchedule", "taints");
	assert_streamed_as_whole(&r, "taint");
	report_release(&r);

	/* hostile text; a generic kind; smoke-test's */
	report_init(&r, "ValidationResult", "validate");
	report_add(&r, "gpu-<1>", "node.driver", REPORT_FAIL, HOSTILE, "%s", HOSTILE);
	report_add(&r, HOSTILE, HOSTILE, REPORT_PASS, NULL, "%s", "");
	assert_streamed_as_whole(&r, "hostile");
	report_release(&r);
	report_init(&r, "Other", "other");
	for (int st = 0; st < REPORT_STATUS_COUNT; st++)
		report_add(&r, "n", report_status_name((enum report_status)st), (enum report_status)st, NULL, "x");
	assert_streamed_as_whole(&r, "generic");
	report_release(&r);
	report_init(&r, "SliceResult", "slice");
	report_add(&r, "cluster", "configmap", REPORT_CHANGED, NULL, "not an item");
	row = report_add(&r, "gpu-1", "node", REPORT_CHANGED, NULL, "4 -> 8");
	report_row_details(row, cJSON_Parse("{\"before\":4,\"after\":8,\"replicas\":2,\"strategy\":\"time-slicing\"}"));
	assert_streamed_as_whole(&r, "slice");
	report_release(&r);

	/* many items */
	report_init(&r, "ValidationResult", "validate");
	for (int i = 0; i < 500; i++)
		report_add(&r, i % 2 ? "gpu-a" : "gpu-b", "node.ready", (enum report_status)(i % 4), i % 3 ? "h" : NULL, "m%d", i);
	assert_streamed_as_whole(&r, "500 rows");
	report_release(&r);
}
