/* The API operations of src/kube/api.c against a REAL Kubernetes API server:
 * the local cluster of tests/cluster (`env=$(tests/cluster/up) && eval
 * "$env"`, or `. /tmp/gpuctl-cluster/env` for a running one).  Without
 * KUBECONFIG every test is skipped.  Suite 'live' (meson test --suite live).
 *
 * Each test works in a namespace of its own, gpuctl-live-test-<pid>, made at
 * its start and deleted at its end (the suite's .fini, which also runs when
 * an assertion fails); the namespaces carry the label
 * gpuctl-live-test-run=<pid of the criterion runner>, and a hook in the runner
 * deletes any left behind (a test that crashed or timed out).  Nodes are
 * only read; the one pod made (kube_logs) runs on a kwok node. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"
#include "gpuctl/kube.h"
#include "gpuctl/apply.h"

#define RUN_LABEL "gpuctl-live-test-run"

static struct kube_client *kc;
static char ns[64];
static int ns_made;

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static struct kube_opts opts(const char *context)
{
	return (struct kube_opts){
		.context = context,
		.request_timeout_ms = 30000,
		.max_retries = 1,
		.backoff_base_ms = 50,
		.backoff_max_ms = 200,
	};
}

static struct kube_client *new_client(const char *context)
{
	struct kube_opts o = opts(context);
	struct kube_client *c = NULL;
	struct gerr err = GERR_INIT;
	int rc = kube_client_new(&o, &c, &err);
	cr_assert_eq(rc, 0, "kube_client_new(%s): %s", context ? context : "current", err.msg);
	return c;
}

/* ---- JSON helpers ---- */

static const cJSON *jget(const cJSON *o, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
	return b ? cJSON_GetObjectItemCaseSensitive(v, b) : v;
}

static const char *jstr(const cJSON *o, const char *a, const char *b)
{
	const cJSON *v = jget(o, a, b);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static cJSON *parse(const char *s)
{
	cJSON *o = cJSON_Parse(s);
	cr_assert_not_null(o, "bad JSON in the test: %s", s);
	return o;
}

/* A ConfigMap in the test namespace; labels: "k=v,k2=v2" or NULL. */
static cJSON *configmap(const char *name, const char *labels)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "ConfigMap");
	cJSON *md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", ns);
	if (labels) {
		cJSON *l = cJSON_AddObjectToObject(md, "labels");
		char *s = strdup(labels);
		for (char *save = NULL, *kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(kv, '=');
			cr_assert_not_null(eq);
			*eq = '\0';
			cJSON_AddStringToObject(l, kv, eq + 1);
		}
		free(s);
	}
	cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "data"), "k1", "v1");
	return o;
}

static char *cm_path(const char *name)
{
	return kube_path("v1", ns, "configmaps", name);
}

/* Create ConfigMap name (labels may be NULL); returns the server's object. */
static cJSON *create_cm(struct kube_client *c, const char *name, const char *labels)
{
	cJSON *o = configmap(name, labels);
	char *p = cm_path(NULL);
	cJSON *out = NULL;
	struct gerr err = GERR_INIT;
	int rc = kube_create(c, p, o, 0, &out, &err);
	cr_assert_eq(rc, 0, "create configmap %s: %s", name, err.msg);
	free(p);
	cJSON_Delete(o);
	return out;
}

static cJSON *get_cm(const char *name, struct gerr *err)
{
	char *p = cm_path(name);
	cJSON *out = NULL;
	int rc = kube_get(kc, p, &out, err);
	free(p);
	return rc == 0 ? out : NULL;
}

/* Poll until GET path answers 404 (within ms); returns 0 when gone. */
static int wait_gone(const char *path, long ms)
{
	long until = now_ms() + ms;
	for (;;) {
		cJSON *o = NULL;
		struct gerr err = GERR_INIT;
		int rc = kube_get(kc, path, &o, &err);
		cJSON_Delete(o);
		enum gerr_code code = err.code;
		gerr_clear(&err);
		if (rc < 0 && code == GERR_NOTFOUND)
			return 0;
		cr_assert(rc == 0 || code == GERR_NOTFOUND, "GET %s: error %d", path, code);
		if (now_ms() > until)
			return -1;
		sleep_ms(100);
	}
}

/* ---- fixture: a namespace per test ---- */

static void live(void)
{
	const char *k = getenv("KUBECONFIG");
	if (!k || !*k)
		cr_skip_test("KUBECONFIG is not set: no cluster (env=$(tests/cluster/up) && eval \"$env\")");
	kc = new_client(NULL);
	snprintf(ns, sizeof(ns), "gpuctl-live-test-%ld", (long)getpid());
	char run[32];
	snprintf(run, sizeof(run), "%ld", (long)getppid());
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Namespace");
	cJSON *md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", ns);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(md, "labels"), RUN_LABEL, run);
	cJSON *out = NULL;
	struct gerr err = GERR_INIT;
	int rc = kube_create(kc, "/api/v1/namespaces", o, 0, &out, &err);
	cJSON_Delete(o);
	cr_assert_eq(rc, 0, "create namespace %s: %s", ns, err.msg);
	ns_made = 1;
	cr_assert_str_eq(jstr(out, "kind", NULL), "Namespace");
	cr_assert_str_eq(jstr(jget(out, "metadata", NULL), "name", NULL), ns);
	cr_assert_not_null(jstr(jget(out, "metadata", NULL), "uid", NULL));
	cJSON_Delete(out);
}

static void fini(void)
{
	if (kc && ns_made) {
		char *p = kube_path("v1", NULL, "namespaces", ns);
		struct gerr err = GERR_INIT;
		if (kube_delete(kc, p, "Background", 0, &err) < 0 && err.code != GERR_NOTFOUND)
			fprintf(stderr, "test_api_live: cannot delete namespace %s: %s\n", ns, err.msg);
		gerr_clear(&err);
		free(p);
		ns_made = 0;
	}
	kube_client_free(kc);
	kc = NULL;
}

TestSuite(api_live, .fini = fini, .timeout = 120);

/* In the runner, after all tests: delete the namespaces of this run that a
 * crashed or timed-out test left behind. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	const char *k = getenv("KUBECONFIG");
	if (!k || !*k)
		return;
	struct kube_opts o = opts(NULL);
	struct kube_client *c = NULL;
	struct gerr err = GERR_INIT;
	if (kube_client_new(&o, &c, &err) < 0) {
		gerr_clear(&err);
		return;
	}
	char sel[64];
	snprintf(sel, sizeof(sel), RUN_LABEL "=%ld", (long)getpid());
	struct kube_list_opts lo = { .label_selector = sel };
	cJSON *items = NULL;
	if (kube_list(c, "/api/v1/namespaces", &lo, &items, NULL, &err) == 0) {
		const cJSON *it;
		cJSON_ArrayForEach(it, items) {
			const char *name = jstr(jget(it, "metadata", NULL), "name", NULL);
			if (!name || jget(it, "metadata", "deletionTimestamp"))
				continue;
			char *p = kube_path("v1", NULL, "namespaces", name);
			fprintf(stderr, "test_api_live: deleting namespace %s left behind\n", name);
			kube_delete(c, p, "Background", 0, &err);
			gerr_clear(&err);
			free(p);
		}
	}
	gerr_clear(&err);
	cJSON_Delete(items);
	kube_client_free(c);
}

/* ---- tests ---- */

Test(api_live, server_version)
{
	live();
	char *v = NULL;
	struct gerr err = GERR_INIT;
	int rc = kube_server_version(kc, &v, &err);
	cr_assert_eq(rc, 0, "kube_server_version: %s", err.msg);
	cr_assert_str_eq(v, "v1.36.3");
	free(v);
}

Test(api_live, create_get)
{
	live();
	cJSON *made = create_cm(kc, "c1", "app=gpuctl");
	cr_assert_str_eq(jstr(jget(made, "metadata", NULL), "name", NULL), "c1");
	cr_assert_str_eq(jstr(jget(made, "metadata", NULL), "namespace", NULL), ns);
	const char *uid = jstr(jget(made, "metadata", NULL), "uid", NULL);
	cr_assert_not_null(uid);
	struct gerr err = GERR_INIT;
	cJSON *got = get_cm("c1", &err);
	cr_assert_not_null(got, "get c1: %s", err.msg);
	cr_assert_str_eq(jstr(jget(got, "metadata", NULL), "uid", NULL), uid);
	cr_assert_str_eq(jstr(got, "data", "k1"), "v1");
	cr_assert_str_eq(jstr(jget(got, "metadata", "labels"), "app", NULL), "gpuctl");
	/* the create went with fieldManager=gpuctl */
	const cJSON *mf;
	int found = 0;
	cJSON_ArrayForEach(mf, jget(got, "metadata", "managedFields")) {
		const char *m = jstr(mf, "manager", NULL);
		found |= m && !strcmp(m, "gpuctl");
	}
	cr_assert(found, "no managedFields entry of manager gpuctl");
	/* creating it again: a conflict */
	cJSON *again = configmap("c1", NULL);
	char *p = cm_path(NULL);
	cJSON *out = NULL;
	int rc = kube_create(kc, p, again, 0, &out, &err);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_CONFLICT, "code %d: %s", err.code, err.msg);
	cr_assert_eq(err.http_status, 409);
	gerr_clear(&err);
	/* a missing one */
	cJSON *none = get_cm("nope", &err);
	cr_assert_null(none);
	cr_assert_eq(err.code, GERR_NOTFOUND, "code %d: %s", err.code, err.msg);
	gerr_clear(&err);
	free(p);
	cJSON_Delete(again);
	cJSON_Delete(got);
	cJSON_Delete(made);
}

static int count_names(const cJSON *items, const char *prefix)
{
	int n = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, items) {
		const char *name = jstr(jget(it, "metadata", NULL), "name", NULL);
		n += name && !strncmp(name, prefix, strlen(prefix));
	}
	return n;
}

Test(api_live, list_selector_and_pages)
{
	live();
	const char *labels[5] = { "page=yes,group=a", "page=yes,group=b", "page=yes,group=a", "page=yes,group=b",
				  "page=yes,group=b" };
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		cJSON_Delete(create_cm(kc, name, labels[i]));
	}
	cJSON_Delete(create_cm(kc, "other", "page=no"));
	char *p = cm_path(NULL);
	struct gerr err = GERR_INIT;

	/* label selector */
	struct kube_list_opts lo = { .label_selector = "group=a" };
	cJSON *items = NULL;
	char *rv = NULL;
	int rc = kube_list(kc, p, &lo, &items, &rv, &err);
	cr_assert_eq(rc, 0, "list group=a: %s", err.msg);
	cr_assert_eq(cJSON_GetArraySize(items), 2);
	cr_assert_not_null(rv);
	const cJSON *it;
	cJSON_ArrayForEach(it, items) {
		const char *g = jstr(jget(it, "metadata", "labels"), "group", NULL);
		cr_assert_str_eq(g, "a");
	}
	cJSON_Delete(items);
	free(rv);

	/* a set-based selector */
	lo = (struct kube_list_opts){ .label_selector = "page in (yes),group!=a" };
	rc = kube_list(kc, p, &lo, &items, NULL, &err);
	cr_assert_eq(rc, 0, "list: %s", err.msg);
	cr_assert_eq(cJSON_GetArraySize(items), 3);
	cJSON_Delete(items);

	/* pages of 2 over the 5 with page=yes: 3 list requests, every item once */
	long lists0 = kube_client_stats(kc)->lists;
	lo = (struct kube_list_opts){ .label_selector = "page=yes", .limit = 2 };
	rv = NULL;
	rc = kube_list(kc, p, &lo, &items, &rv, &err);
	cr_assert_eq(rc, 0, "paged list: %s", err.msg);
	long pages = kube_client_stats(kc)->lists - lists0;
	cr_assert_eq(cJSON_GetArraySize(items), 5);
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		cr_assert_eq(count_names(items, name), 1, "%s appears %d times", name, count_names(items, name));
	}
	cr_assert_eq(pages, 3, "%ld list pages for 5 items with limit 2", pages);
	cr_assert_not_null(rv);
	cJSON_Delete(items);
	free(rv);

	/* limit 1 over the 6 labelled ones: 6 pages (a last page can come empty) */
	lists0 = kube_client_stats(kc)->lists;
	lo = (struct kube_list_opts){ .label_selector = "page", .limit = 1 };
	rc = kube_list(kc, p, &lo, &items, NULL, &err);
	cr_assert_eq(rc, 0, "paged list: %s", err.msg);
	cr_assert_eq(cJSON_GetArraySize(items), 6);
	pages = kube_client_stats(kc)->lists - lists0;
	cr_assert(pages == 6 || pages == 7, "%ld pages", pages);
	cJSON_Delete(items);
	free(p);
}

Test(api_live, patches_and_apply)
{
	live();
	cJSON_Delete(create_cm(kc, "pt", "app=gpuctl"));
	char *p = cm_path("pt");
	struct gerr err = GERR_INIT;
	cJSON *out = NULL;

	int rc = kube_patch(kc, p, KUBE_PATCH_MERGE, "{\"data\":{\"k2\":\"v2\"},\"metadata\":{\"labels\":{\"app\":null}}}", 0,
			    0, &out, &err);
	cr_assert_eq(rc, 0, "merge patch: %s", err.msg);
	cr_assert_str_eq(jstr(out, "data", "k1"), "v1");
	cr_assert_str_eq(jstr(out, "data", "k2"), "v2");
	cr_assert_null(jget(jget(out, "metadata", "labels"), "app", NULL));
	cJSON_Delete(out);

	rc = kube_patch(kc, p, KUBE_PATCH_STRATEGIC, "{\"metadata\":{\"labels\":{\"s\":\"1\"}},\"data\":{\"k3\":\"v3\"}}", 0, 0,
			&out, &err);
	cr_assert_eq(rc, 0, "strategic merge patch: %s", err.msg);
	cr_assert_str_eq(jstr(jget(out, "metadata", "labels"), "s", NULL), "1");
	cr_assert_str_eq(jstr(out, "data", "k3"), "v3");
	cr_assert_str_eq(jstr(out, "data", "k2"), "v2");
	cJSON_Delete(out);

	rc = kube_patch(kc, p, KUBE_PATCH_JSON,
			"[{\"op\":\"test\",\"path\":\"/data/k1\",\"value\":\"v1\"},"
			"{\"op\":\"remove\",\"path\":\"/data/k1\"},"
			"{\"op\":\"replace\",\"path\":\"/data/k2\",\"value\":\"v2b\"},"
			"{\"op\":\"add\",\"path\":\"/data/k4\",\"value\":\"v4\"}]",
			0, 0, &out, &err);
	cr_assert_eq(rc, 0, "json patch: %s", err.msg);
	cr_assert_null(jget(out, "data", "k1"));
	cr_assert_str_eq(jstr(out, "data", "k2"), "v2b");
	cr_assert_str_eq(jstr(out, "data", "k4"), "v4");
	cJSON_Delete(out);

	/* a JSON patch whose test fails: nothing changes, 422 */
	rc = kube_patch(kc, p, KUBE_PATCH_JSON, "[{\"op\":\"test\",\"path\":\"/data/k2\",\"value\":\"nope\"}]", 0, 0, &out,
			&err);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_INVALID, "code %d: %s", err.code, err.msg);
	gerr_clear(&err);

	/* dry-run patch: the answer has the change, the object does not */
	rc = kube_patch(kc, p, KUBE_PATCH_MERGE, "{\"data\":{\"dry\":\"yes\"}}", 1, 0, &out, &err);
	cr_assert_eq(rc, 0, "dry-run patch: %s", err.msg);
	cr_assert_str_eq(jstr(out, "data", "dry"), "yes");
	cJSON_Delete(out);
	out = get_cm("pt", &err);
	cr_assert_not_null(out, "get: %s", err.msg);
	cr_assert_null(jget(out, "data", "dry"));
	cJSON_Delete(out);
	free(p);

	/* server-side apply: creates, then updates; fieldManager gpuctl */
	p = cm_path("applied");
	cJSON *obj = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"applied\"},\"data\":{\"a\":\"1\"}}");
	cJSON_AddStringToObject((cJSON *)jget(obj, "metadata", NULL), "namespace", ns);
	rc = kube_apply(kc, p, obj, 0, 0, &out, &err);
	cr_assert_eq(rc, 0, "apply: %s", err.msg);
	cr_assert_str_eq(jstr(out, "data", "a"), "1");
	cJSON_Delete(out);
	cJSON_ReplaceItemInObjectCaseSensitive(obj, "data", parse("{\"a\":\"2\",\"b\":\"3\"}"));
	rc = kube_apply(kc, p, obj, 0, 0, &out, &err);
	cr_assert_eq(rc, 0, "apply again: %s", err.msg);
	cr_assert_str_eq(jstr(out, "data", "a"), "2");
	cr_assert_str_eq(jstr(out, "data", "b"), "3");
	int apply_by_gpuctl = 0;
	const cJSON *mf;
	cJSON_ArrayForEach(mf, jget(out, "metadata", "managedFields")) {
		const char *m = jstr(mf, "manager", NULL), *op = jstr(mf, "operation", NULL);
		if (m && op && !strcmp(m, "gpuctl") && !strcmp(op, "Apply"))
			apply_by_gpuctl = 1;
	}
	cr_assert(apply_by_gpuctl, "no managedFields entry {manager: gpuctl, operation: Apply}");
	cJSON_Delete(out);

	/* another manager applies field a; applying a different value of a then
	 * conflicts (409), and force takes it over */
	{
		struct buf op = BUF_INIT;
		buf_adds(&op, p);
		kube_query_add(&op, "fieldManager", "someone-else");
		kube_query_add(&op, "force", "true");
		char body[512];
		snprintf(body, sizeof(body),
			 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"applied\",\"namespace\":\"%s\"},\"data\":{\"a\":\"other\"}}",
			 ns);
		struct kube_call call = { .method = "PATCH", .path = op.s, .body = body,
					  .content_type = "application/apply-patch+yaml", .idempotent = 1 };
		rc = kube_do(kc, &call, &err);
		cr_assert_eq(rc, 0, "apply as someone-else: %s", err.msg);
		kube_call_release(&call);
		buf_release(&op);
	}
	cJSON_ReplaceItemInObjectCaseSensitive(obj, "data", parse("{\"a\":\"4\",\"b\":\"3\"}"));
	rc = kube_apply(kc, p, obj, 0, 0, &out, &err);
	cr_assert_eq(rc, -1, "apply over another manager's field did not conflict");
	cr_assert_eq(err.code, GERR_CONFLICT, "code %d: %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "someone-else"), "message: %s", err.msg);
	gerr_clear(&err);
	rc = kube_apply(kc, p, obj, 0, 1, &out, &err);
	cr_assert_eq(rc, 0, "forced apply: %s", err.msg);
	cr_assert_str_eq(jstr(out, "data", "a"), "4");
	cJSON_Delete(out);
	cJSON_Delete(obj);
	free(p);
}

Test(api_live, dry_run_create_leaves_nothing)
{
	live();
	cJSON *o = configmap("dry", NULL);
	char *p = cm_path(NULL);
	cJSON *out = NULL;
	struct gerr err = GERR_INIT;
	int rc = kube_create(kc, p, o, 1, &out, &err);
	cr_assert_eq(rc, 0, "dry-run create: %s", err.msg);
	cr_assert_str_eq(jstr(jget(out, "metadata", NULL), "name", NULL), "dry");
	cJSON_Delete(out);
	out = get_cm("dry", &err);
	cr_assert_null(out, "the dry-run create made the object");
	cr_assert_eq(err.code, GERR_NOTFOUND, "code %d: %s", err.code, err.msg);
	gerr_clear(&err);
	/* and a dry-run delete (no DeleteOptions body) leaves it */
	cJSON_Delete(create_cm(kc, "dry", NULL));
	char *dp = cm_path("dry");
	rc = kube_delete(kc, dp, NULL, 1, &err);
	cr_assert_eq(rc, 0, "dry-run delete: %s", err.msg);
	out = get_cm("dry", &err);
	cr_assert_not_null(out, "the dry-run delete deleted: %s", err.msg);
	cJSON_Delete(out);
	free(dp);
	free(p);
	cJSON_Delete(o);
}

/* A dry-run delete with a propagation policy must leave the object too.
 * (kube_delete sends the policy in a DeleteOptions body; the API server then
 * reads the options from the body only and ignores ?dryRun=All.) */
Test(api_live, dry_run_delete_with_propagation_leaves_object)
{
	live();
	cJSON_Delete(create_cm(kc, "dry", NULL));
	char *dp = cm_path("dry");
	struct gerr err = GERR_INIT;
	const char *policies[] = { "Background", "Foreground", "Orphan" };
	for (int i = 0; i < 3; i++) {
		int rc = kube_delete(kc, dp, policies[i], 1, &err);
		cr_assert_eq(rc, 0, "dry-run delete (%s): %s", policies[i], err.msg);
		cJSON *out = get_cm("dry", &err);
		cr_assert_not_null(out, "the dry-run delete with propagationPolicy %s deleted the object: %s", policies[i],
				   err.msg);
		cr_assert_null(jget(jget(out, "metadata", NULL), "deletionTimestamp", NULL),
			       "the dry-run delete (%s) started a deletion", policies[i]);
		cJSON_Delete(out);
	}
	free(dp);
}

/* A ConfigMap "child" owned by "parent" (blockOwnerDeletion). */
static void parent_and_child(const char *parent, const char *child)
{
	cJSON *pm = create_cm(kc, parent, NULL);
	const char *uid = jstr(jget(pm, "metadata", NULL), "uid", NULL);
	cr_assert_not_null(uid);
	cJSON *c = configmap(child, NULL);
	cJSON *refs = cJSON_AddArrayToObject((cJSON *)jget(c, "metadata", NULL), "ownerReferences");
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "apiVersion", "v1");
	cJSON_AddStringToObject(r, "kind", "ConfigMap");
	cJSON_AddStringToObject(r, "name", parent);
	cJSON_AddStringToObject(r, "uid", uid);
	cJSON_AddBoolToObject(r, "blockOwnerDeletion", 1);
	cJSON_AddItemToArray(refs, r);
	char *p = cm_path(NULL);
	struct gerr err = GERR_INIT;
	cJSON *out = NULL;
	int rc = kube_create(kc, p, c, 0, &out, &err);
	cr_assert_eq(rc, 0, "create %s: %s", child, err.msg);
	cJSON_Delete(out);
	cJSON_Delete(c);
	cJSON_Delete(pm);
	free(p);
}

static void delete_with(const char *policy, const char *parent, const char *child)
{
	parent_and_child(parent, child);
	char *pp = cm_path(parent), *cp = cm_path(child);
	struct gerr err = GERR_INIT;
	long t0 = now_ms();
	int rc = kube_delete(kc, pp, policy, 0, &err);
	cr_assert_eq(rc, 0, "delete %s (%s): %s", parent, policy, err.msg);
	/* both go: the child by the garbage collector (Background: after the
	 * parent; Foreground: before it) */
	cr_assert_eq(wait_gone(pp, 60000), 0, "%s still there 60 s after a %s delete", parent, policy);
	cr_assert_eq(wait_gone(cp, 60000), 0, "%s (child) still there 60 s after a %s delete", child, policy);
	fprintf(stderr, "delete %s: parent and child gone after %ld ms\n", policy, now_ms() - t0);
	rc = kube_delete(kc, pp, policy, 0, &err);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_NOTFOUND, "second delete: code %d: %s", err.code, err.msg);
	cr_assert_eq(err.http_status, 404);
	gerr_clear(&err);
	free(pp);
	free(cp);
}

Test(api_live, delete_foreground)
{
	live();
	delete_with("Foreground", "fg-parent", "fg-child");
}

Test(api_live, delete_background)
{
	live();
	delete_with("Background", "bg-parent", "bg-child");
}

Test(api_live, delete_orphan)
{
	live();
	parent_and_child("or-parent", "or-child");
	char *pp = cm_path("or-parent");
	struct gerr err = GERR_INIT;
	int rc = kube_delete(kc, pp, "Orphan", 0, &err);
	cr_assert_eq(rc, 0, "delete: %s", err.msg);
	cr_assert_eq(wait_gone(pp, 60000), 0);
	/* the child stays, without its owner reference */
	long until = now_ms() + 30000;
	for (;;) {
		cJSON *c = get_cm("or-child", &err);
		cr_assert_not_null(c, "the orphaned child went: %s", err.msg);
		int owned = cJSON_GetArraySize(jget(c, "metadata", "ownerReferences")) > 0;
		cJSON_Delete(c);
		if (!owned)
			break;
		cr_assert_lt(now_ms(), until, "the child still has its ownerReference after 30 s");
		sleep_ms(100);
	}
	free(pp);
}

/* ---- watch ---- */

struct watch_rec {
	char ev[32][80];
	int n;
	int bookmarks;
	int started;
	pthread_t th;
	/* the changer's result */
	int changer_rc;
	char changer_err[512];
};

/* From a second client: create w1 (matching), x1 (not matching), patch w1,
 * delete w1. */
static void *changer(void *arg)
{
	struct watch_rec *w = arg;
	struct kube_opts o = opts(NULL);
	struct kube_client *c = NULL;
	struct gerr err = GERR_INIT;
	w->changer_rc = -1;
	sleep_ms(200);
	if (kube_client_new(&o, &c, &err) < 0)
		goto out;
	char *p = cm_path(NULL), *w1 = cm_path("w1");
	cJSON *obj = configmap("w1", "watch=yes");
	cJSON *x = configmap("x1", "watch=no");
	int rc = kube_create(c, p, obj, 0, NULL, &err);
	if (rc == 0)
		rc = kube_create(c, p, x, 0, NULL, &err);
	if (rc == 0) {
		sleep_ms(100);
		rc = kube_patch(c, w1, KUBE_PATCH_MERGE, "{\"data\":{\"k1\":\"changed\"}}", 0, 0, NULL, &err);
	}
	if (rc == 0) {
		sleep_ms(100);
		rc = kube_delete(c, w1, NULL, 0, &err);
	}
	w->changer_rc = rc;
	cJSON_Delete(obj);
	cJSON_Delete(x);
	free(p);
	free(w1);
out:
	if (err.msg)
		snprintf(w->changer_err, sizeof(w->changer_err), "%s", err.msg);
	gerr_clear(&err);
	kube_client_free(c);
	return NULL;
}

static int on_watch(void *ud, const char *type, const cJSON *obj, struct gerr *err)
{
	(void)err;
	struct watch_rec *w = ud;
	if (!strcmp(type, "BOOKMARK")) {
		w->bookmarks++;
		return 0;
	}
	const char *name = jstr(jget(obj, "metadata", NULL), "name", NULL);
	if (w->n < 32)
		snprintf(w->ev[w->n++], sizeof(w->ev[0]), "%s %s", type, name ? name : "?");
	/* the list has been read when the first ADDED comes: now change things */
	if (!w->started && !strcmp(type, "ADDED")) {
		w->started = 1;
		if (pthread_create(&w->th, NULL, changer, w) != 0)
			return gerr_set(err, GERR_INTERNAL, "pthread_create");
	}
	return !strcmp(type, "DELETED") && name && !strcmp(name, "w1");
}

Test(api_live, watch_sees_changes)
{
	live();
	cJSON_Delete(create_cm(kc, "w0", "watch=yes"));
	cJSON_Delete(create_cm(kc, "x0", "watch=no"));
	char *p = cm_path(NULL);
	struct watch_rec w = { 0 };
	struct kube_watch_opts wo = { .label_selector = "watch=yes", .timeout_ms = 60000, .bookmarks = 1 };
	struct gerr err = GERR_INIT;
	long t0 = now_ms();
	int rc = kube_watch(kc, p, &wo, on_watch, &w, &err);
	long took = now_ms() - t0;
	if (w.started)
		pthread_join(w.th, NULL);
	cr_assert(w.started, "no ADDED event from the list");
	cr_assert_eq(w.changer_rc, 0, "changer: %s", w.changer_err);
	cr_assert_eq(rc, 0, "kube_watch: %s", err.msg);
	char all[2048] = "";
	for (int i = 0; i < w.n; i++)
		snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s", i ? "," : "", w.ev[i]);
	fprintf(stderr, "watch: %s (%d bookmarks) in %ld ms\n", all, w.bookmarks, took);
	cr_assert_str_eq(all, "ADDED w0,ADDED w1,MODIFIED w1,DELETED w1");
	cr_assert_lt(took, 30000);
	free(p);
}

/* A watch from a resourceVersion that is long gone: the server answers 410
 * (an ERROR event: "too old resource version") and kube_watch relists and
 * delivers the current objects as ADDED.  Leases in kube-system change every
 * few seconds (leader election), so their watch cache no longer holds rv 1
 * (configmaps' may: the server then replays from rv 1 instead).  Read only. */
static int on_lease(void *ud, const char *type, const cJSON *obj, struct gerr *err)
{
	(void)obj;
	(void)err;
	int *added = ud;
	if (!strcmp(type, "ADDED"))
		++*added;
	return *added > 0;
}

Test(api_live, watch_too_old_resource_version_relists)
{
	live();
	const char *p = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";
	int added = 0;
	struct kube_watch_opts wo = { .resource_version = "1", .timeout_ms = 30000 };
	struct gerr err = GERR_INIT;
	long lists0 = kube_client_stats(kc)->lists;
	long req0 = kube_client_stats(kc)->requests;
	int rc = kube_watch(kc, p, &wo, on_lease, &added, &err);
	cr_assert_eq(rc, 0, "kube_watch: %s", err.msg);
	cr_assert_eq(added, 1);
	long lists = kube_client_stats(kc)->lists - lists0;
	if (lists == 0)
		cr_skip_test("the server still served leases from resourceVersion 1 (no 410 to test)");
	/* a watch (410), a list, then the callback stopped */
	cr_assert_eq(lists, 1, "%ld lists", lists);
	cr_assert_eq(kube_client_stats(kc)->requests - req0, 2);
}

/* ---- logs ---- */

Test(api_live, logs_of_kwok_pod_fail)
{
	live();
	char *pods = kube_path("v1", ns, "pods", NULL);
	cJSON *pod = parse("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"logpod\"},"
			   "\"spec\":{\"nodeSelector\":{\"type\":\"kwok\"},\"tolerations\":[{\"operator\":\"Exists\"}],"
			   "\"terminationGracePeriodSeconds\":0,"
			   "\"containers\":[{\"name\":\"main\",\"image\":\"busybox\",\"command\":[\"sh\",\"-c\",\"echo hi\"]}]}}");
	cJSON_AddStringToObject((cJSON *)jget(pod, "metadata", NULL), "namespace", ns);
	struct gerr err = GERR_INIT;
	int rc = kube_create(kc, pods, pod, 0, NULL, &err);
	cr_assert_eq(rc, 0, "create pod: %s", err.msg);
	char *pp = kube_path("v1", ns, "pods", "logpod");
	const char *phase = NULL;
	char node[128] = "";
	long until = now_ms() + 60000;
	for (;;) {
		cJSON *o = NULL;
		rc = kube_get(kc, pp, &o, &err);
		cr_assert_eq(rc, 0, "get pod: %s", err.msg);
		phase = jstr(o, "status", "phase");
		const char *nn = jstr(o, "spec", "nodeName");
		snprintf(node, sizeof(node), "%s", nn ? nn : "");
		int running = phase && !strcmp(phase, "Running");
		cJSON_Delete(o);
		if (running)
			break;
		cr_assert_lt(now_ms(), until, "pod not Running after 60 s");
		sleep_ms(200);
	}
	struct buf out = BUF_INIT;
	rc = kube_logs(kc, ns, "logpod", NULL, 10, &out, &err);
	fprintf(stderr, "kube_logs of a pod on kwok node %s: rc %d, HTTP %ld, code %d: %s\n", node, rc,
		err.http_status, err.code, err.msg ? err.msg : "");
	cr_assert_eq(rc, -1, "kube_logs succeeded: '%s'", out.s ? out.s : "");
	cr_assert_not_null(err.msg);
	cr_assert(strstr(err.msg, "logpod"), "the error does not name the pod: %s", err.msg);
	cr_assert(strstr(err.msg, ns), "the error does not name the namespace: %s", err.msg);
	cr_assert_geq(err.http_status, 400, "HTTP %ld", err.http_status);
	char code[32];
	snprintf(code, sizeof(code), "HTTP %ld", err.http_status);
	cr_assert(strstr(err.msg, code), "the error lacks '%s': %s", code, err.msg);

	/* the server's own message, from the same request made by hand */
	struct kube_opts o = opts(NULL);
	o.max_retries = 0;
	struct kube_client *raw = NULL;
	struct gerr e2 = GERR_INIT;
	cr_assert_eq(kube_client_new(&o, &raw, &e2), 0);
	char *lp = NULL;
	{
		struct buf b = BUF_INIT;
		buf_addf(&b, "%s/log", pp);
		kube_query_add(&b, "tailLines", "10");
		lp = buf_detach(&b);
	}
	struct kube_call call = { .method = "GET", .path = lp, .idempotent = 1, .raw = 1 };
	kube_do(raw, &call, &e2);
	cr_assert_eq(call.status, err.http_status, "by hand: HTTP %ld", call.status);
	cJSON *st = cJSON_ParseWithLength(call.text.s, call.text.len);
	const char *smsg = jstr(st, "message", NULL);
	cr_assert_not_null(smsg, "no Status message in: %s", call.text.s ? call.text.s : "");
	fprintf(stderr, "the server's Status: %.*s\n", (int)call.text.len, call.text.s);
	cr_assert(strstr(err.msg, smsg), "the error lacks the server's message '%s': %s", smsg, err.msg);
	cJSON_Delete(st);
	kube_call_release(&call);
	gerr_clear(&e2);
	kube_client_free(raw);
	free(lp);
	gerr_clear(&err);
	buf_release(&out);

	/* the pod goes now, so the namespace goes quickly */
	rc = kube_delete(kc, pp, "Background", 0, &err);
	cr_assert_eq(rc, 0, "delete pod: %s", err.msg);
	free(pp);
	free(pods);
	cJSON_Delete(pod);
}

/* ---- RBAC ---- */

Test(api_live, reader_cannot_create)
{
	live();
	struct kube_client *rd = new_client("reader");
	struct gerr err = GERR_INIT;
	/* the reader may list nodes */
	cJSON *items = NULL;
	struct kube_list_opts lo = { .limit = 1 };
	long lists0 = kube_client_stats(rd)->lists;
	int rc = kube_list(rd, "/api/v1/nodes", &lo, &items, NULL, &err);
	cr_assert_eq(rc, 0, "reader: list nodes: %s", err.msg);
	cr_assert_geq(cJSON_GetArraySize(items), 1);
	cr_assert_geq(kube_client_stats(rd)->lists - lists0, 2, "limit 1 over several nodes: pages");
	cJSON_Delete(items);
	/* but not create a ConfigMap */
	cJSON *o = configmap("forbidden", NULL);
	char *p = cm_path(NULL);
	rc = kube_create(rd, p, o, 0, NULL, &err);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_FORBIDDEN, "code %d: %s", err.code, err.msg);
	cr_assert_eq(err.http_status, 403);
	cr_assert(strstr(err.msg, "forbidden"), "message: %s", err.msg);
	gerr_clear(&err);
	/* nor patch a node (a dry run, to be safe) */
	char *np = kube_path("v1", NULL, "nodes", "gpu-node-1");
	rc = kube_patch(rd, np, KUBE_PATCH_MERGE, "{\"metadata\":{\"labels\":{\"x\":\"y\"}}}", 1, 0, NULL, &err);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_FORBIDDEN, "code %d: %s", err.code, err.msg);
	gerr_clear(&err);
	/* and admin sees nothing made */
	cJSON *none = get_cm("forbidden", &err);
	cr_assert_null(none);
	cr_assert_eq(err.code, GERR_NOTFOUND);
	gerr_clear(&err);
	free(np);
	free(p);
	cJSON_Delete(o);
	kube_client_free(rd);
}

/* ---- the apply layer (src/kube/apply.c) ---- */

static cJSON *cm_doc(const char *name, const char *value)
{
	cJSON *o = configmap(name, NULL);
	cJSON_ReplaceItemInObjectCaseSensitive(o, "data", cJSON_CreateObject());
	cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(o, "data"), "k1", value);
	return o;
}

static struct apply_result *apply_docs(cJSON *docs, enum dry_run dry, const char *owner, size_t *failed)
{
	struct apply_opts o = { .dry = dry, .owner = owner };
	struct apply_result *r = NULL;
	size_t n = 0;
	*failed = apply_objects(kc, docs, &o, &r, &n);
	cr_assert_eq(n, (size_t)cJSON_GetArraySize(docs));
	return r;
}

static int ready_now(void *ud, const cJSON *obj, char **last, struct gerr *err)
{
	(void)err;
	*last = xasprintf("k1=%s", jstr(obj, "data", "k1") ? jstr(obj, "data", "k1") : "");
	return ud ? 0 : 1;
}

Test(api_live, apply_create_unchanged_configure_foreign_wait_delete)
{
	live();
	char owner[64];
	snprintf(owner, sizeof(owner), "live-test-%ld", (long)getpid());
	cJSON *docs = cJSON_CreateArray();
	cJSON_AddItemToArray(docs, cm_doc("a", "v1"));
	cJSON_AddItemToArray(docs, cm_doc("b", "v1"));
	size_t failed;
	struct apply_result *r = apply_docs(docs, DRY_NONE, owner, &failed);
	cr_assert_eq(failed, 0, "%s", r[0].err.msg ? r[0].err.msg : r[1].err.msg);
	cr_assert_eq(r[0].status, APPLY_CREATED);
	cr_assert_eq(r[1].status, APPLY_CREATED);
	apply_results_free(r, 2);
	struct gerr err = GERR_INIT;
	cJSON *a = get_cm("a", &err);
	cr_assert_not_null(a, "%s", err.msg);
	cr_assert_str_eq(jstr(jget(a, "metadata", "labels"), "app.kubernetes.io/managed-by", NULL), "gpuctl");
	cr_assert_str_eq(jstr(jget(a, "metadata", "labels"), "gpuctl.io/component", NULL), owner);
	cJSON_Delete(a);

	/* a second apply reads and writes nothing */
	long writes0 = kube_client_stats(kc)->writes;
	r = apply_docs(docs, DRY_NONE, owner, &failed);
	cr_assert_eq(r[0].status, APPLY_UNCHANGED);
	cr_assert_eq(r[1].status, APPLY_UNCHANGED);
	cr_assert_eq(kube_client_stats(kc)->writes, writes0, "an unchanged object was written");
	apply_results_free(r, 2);

	/* a change: configured, the diff says what */
	cJSON_ReplaceItemInArray(docs, 0, cm_doc("a", "v2"));
	r = apply_docs(docs, DRY_NONE, owner, &failed);
	cr_assert_eq(r[0].status, APPLY_CONFIGURED);
	cr_assert_str_eq(r[0].diff, "data.k1: \"v1\" -> \"v2\"\n");
	cr_assert_eq(r[1].status, APPLY_UNCHANGED);
	apply_results_free(r, 2);
	a = get_cm("a", &err);
	cr_assert_str_eq(jstr(a, "data", "k1"), "v2");
	cJSON_Delete(a);

	/* an object gpuctl did not create: never changed; as wanted already: unchanged, foreign */
	cJSON_Delete(create_cm(kc, "foreign", NULL));
	cJSON *fd = cJSON_CreateArray();
	cJSON_AddItemToArray(fd, cm_doc("foreign", "other"));
	cJSON_AddItemToArray(fd, cm_doc("foreign", "v1"));
	r = apply_docs(fd, DRY_NONE, owner, &failed);
	cr_assert_eq(failed, 1);
	cr_assert_eq(r[0].status, APPLY_FAILED);
	cr_assert_eq(r[0].err.code, GERR_CONFLICT);
	cr_assert(strstr(r[0].err.msg, "not created by gpuctl"), "%s", r[0].err.msg);
	cr_assert_eq(r[1].status, APPLY_UNCHANGED);
	cr_assert(r[1].foreign);
	apply_results_free(r, 2);
	cJSON *f = get_cm("foreign", &err);
	cr_assert_str_eq(jstr(f, "data", "k1"), "v1");
	cr_assert_null(jget(jget(f, "metadata", "labels"), "app.kubernetes.io/managed-by", NULL));
	cJSON_Delete(f);
	cJSON_Delete(fd);

	/* server dry run: validated, nothing saved */
	cJSON *dd = cJSON_CreateArray();
	cJSON_AddItemToArray(dd, cm_doc("dry", "v1"));
	r = apply_docs(dd, DRY_SERVER, owner, &failed);
	cr_assert_eq(failed, 0, "%s", r[0].err.msg);
	cr_assert_eq(r[0].status, APPLY_CREATED);
	apply_results_free(r, 1);
	cJSON_Delete(dd);
	cr_assert_null(get_cm("dry", &err));
	cr_assert_eq(err.code, GERR_NOTFOUND);
	gerr_clear(&err);

	/* wait: done at once; and a condition that never holds ends with what it last saw */
	const struct kube_kind cmk = { "v1", "ConfigMap", "configmaps", 1 };
	cr_assert_eq(apply_wait(kc, &cmk, ns, "a", ready_now, NULL, 10000, &err), 0, "%s", err.msg);
	cr_assert_eq(apply_wait(kc, &cmk, ns, "a", ready_now, (void *)1, 1500, &err), -1);
	cr_assert_eq(err.code, GERR_NOT_READY, "%s", err.msg);
	cr_assert(strstr(err.msg, "k1=v2"), "%s", err.msg);
	cr_assert_eq(gerr_exit_status(&err, 0), 1, "a wait that ran out is not the cluster refusing us");
	gerr_clear(&err);

	/* delete what this owner made, nothing else */
	struct apply_result *dr = NULL;
	size_t dn = 0;
	cr_assert_eq(apply_delete_owned(kc, owner, DRY_NONE, &dr, &dn), 0);
	cr_assert_eq(dn, 2, "deleted %zu objects", dn);
	for (size_t i = 0; i < dn; i++)
		cr_assert_eq(dr[i].status, APPLY_DELETED);
	apply_results_free(dr, dn);
	char *pa = cm_path("a");
	cr_assert_eq(wait_gone(pa, 10000), 0);
	free(pa);
	f = get_cm("foreign", &err);
	cr_assert_not_null(f, "the object gpuctl did not create was deleted");
	cJSON_Delete(f);
	cJSON_Delete(docs);
}
