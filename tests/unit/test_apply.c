/* The pure parts of src/kube/apply.c: containment (what makes a second
 * apply send nothing), the diff shown for changes, and the kinds table. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/apply.h"
#include "gpuctl/buf.h"
#include "gpuctl/kube.h"

static int contains(const char *have, const char *want)
{
	cJSON *h = cJSON_Parse(have), *w = cJSON_Parse(want);
	cr_assert(h && w);
	int r = json_contains(h, w);
	cJSON_Delete(h);
	cJSON_Delete(w);
	return r;
}

Test(apply, server_defaults_and_status_do_not_count_as_changes)
{
	/* the server adds defaults, status and metadata: still as wanted */
	cr_assert(contains("{\"metadata\":{\"name\":\"nvidia\",\"uid\":\"u\",\"resourceVersion\":\"7\",\"labels\":{\"a\":\"1\",\"x\":\"y\"}},"
			   "\"handler\":\"nvidia\"}",
			   "{\"metadata\":{\"name\":\"nvidia\",\"labels\":{\"a\":\"1\"}},\"handler\":\"nvidia\"}"));
	cr_assert(contains("{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\",\"imagePullPolicy\":\"IfNotPresent\"}]}}",
			   "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}"));
}

Test(apply, real_changes_are_seen)
{
	cr_assert_not(contains("{\"handler\":\"runc\"}", "{\"handler\":\"nvidia\"}"));
	cr_assert_not(contains("{\"data\":{}}", "{\"data\":{\"k\":\"v\"}}"));
	/* a list that lost or gained an element */
	cr_assert_not(contains("{\"args\":[\"a\",\"b\"]}", "{\"args\":[\"a\"]}"));
	cr_assert_not(contains("{\"args\":[\"a\"]}", "{\"args\":[\"a\",\"b\"]}"));
	/* types matter: "1" is not 1 */
	cr_assert_not(contains("{\"replicas\":\"1\"}", "{\"replicas\":1}"));
	cr_assert_not(contains("{}", "{\"a\":null}"));
}

Test(apply, diff_names_the_paths)
{
	cJSON *h = cJSON_Parse("{\"data\":{\"k1\":\"v1\",\"k2\":\"same\"},\"spec\":{\"c\":[{\"image\":\"a:1\"}]}}");
	cJSON *w = cJSON_Parse("{\"data\":{\"k1\":\"v2\",\"k2\":\"same\",\"k3\":\"new\"},\"spec\":{\"c\":[{\"image\":\"a:2\"}]}}");
	struct buf out = BUF_INIT;
	size_t n = json_diff(h, w, NULL, &out, 10);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(out.s, "data.k1: \"v1\" -> \"v2\"\ndata.k3: (none) -> \"new\"\nspec.c[0].image: \"a:1\" -> \"a:2\"\n");
	buf_reset(&out);
	/* counted beyond the listing limit */
	cr_assert_eq(json_diff(h, w, "x", &out, 1), 3);
	cr_assert_str_eq(out.s, "x.data.k1: \"v1\" -> \"v2\"\n");
	buf_release(&out);
	cJSON_Delete(h);
	cJSON_Delete(w);
}

Test(apply, kinds_and_paths)
{
	struct gerr err = GERR_INIT;
	cJSON *ds = cJSON_Parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"metadata\":{\"name\":\"nvidia-device-plugin\",\"namespace\":\"gpu\"}}");
	const struct kube_kind *k = kube_kind_of(ds, &err);
	cr_assert_not_null(k);
	char *p = kube_object_path(k, ds);
	cr_assert_str_eq(p, "/apis/apps/v1/namespaces/gpu/daemonsets/nvidia-device-plugin");
	free(p);
	cJSON *rc = cJSON_Parse("{\"apiVersion\":\"node.k8s.io/v1\",\"kind\":\"RuntimeClass\",\"metadata\":{\"name\":\"nvidia\",\"namespace\":\"ignored\"}}");
	k = kube_kind_of(rc, &err);
	p = kube_object_path(k, rc);
	cr_assert_str_eq(p, "/apis/node.k8s.io/v1/runtimeclasses/nvidia");
	free(p);
	cJSON *bad = cJSON_Parse("{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\"}");
	cr_assert_null(kube_kind_of(bad, &err));
	cr_assert(strstr(err.msg, "example.com/v1 Widget"), "%s", err.msg);
	gerr_clear(&err);
	/* namespaces are deleted last: their deletion takes the rest with them */
	const struct kube_kind *last = NULL;
	for (const struct kube_kind *x = kube_owned_kinds; x->kind; x++)
		last = x;
	cr_assert_str_eq(last->kind, "Namespace");
	cJSON_Delete(ds);
	cJSON_Delete(rc);
	cJSON_Delete(bad);
}

Test(apply, daemonset_readiness)
{
	static const struct { const char *obj; int ready; const char *last; } cases[] = {
		{ "{\"metadata\":{\"generation\":2},\"status\":{\"observedGeneration\":1,\"desiredNumberScheduled\":1,\"updatedNumberScheduled\":1,\"numberAvailable\":1}}",
		  0, "the controller has not seen the new spec yet" },
		{ "{\"metadata\":{\"generation\":2},\"status\":{\"observedGeneration\":2,\"desiredNumberScheduled\":3,\"updatedNumberScheduled\":2,\"numberAvailable\":3}}",
		  0, "2 of 3 pods updated, 3 available" },
		{ "{\"metadata\":{\"generation\":2},\"status\":{\"observedGeneration\":2,\"desiredNumberScheduled\":3,\"updatedNumberScheduled\":3,\"numberAvailable\":3}}",
		  1, "3 of 3 pods updated, 3 available" },
		{ "{\"metadata\":{\"generation\":1},\"status\":{\"observedGeneration\":1}}", 1, "0 of 0 pods updated, 0 available" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *o = cJSON_Parse(cases[i].obj);
		char *last = NULL;
		struct gerr err = GERR_INIT;
		cr_assert_eq(apply_daemonset_ready(NULL, o, &last, &err), cases[i].ready, "case %zu", i);
		cr_assert_str_eq(last, cases[i].last);
		free(last);
		cJSON_Delete(o);
	}
}

/* cleanup lists gpuctl's objects pruned with kube_meta_prune: what it reads
 * (owned or not, kind, name, namespace) survives; the rest is gone. */
Test(apply, meta_prune_keeps_ownership_and_names)
{
	cJSON *pod = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\","
				 "\"labels\":{\"app.kubernetes.io/managed-by\":\"gpuctl\"},\"annotations\":{\"a\":\"b\"},"
				 "\"managedFields\":[{}]},\"spec\":{\"nodeName\":\"n\"},\"status\":{\"phase\":\"Running\"}}");
	cr_assert(apply_is_owned(pod));
	cJSON *m = kube_meta_prune(pod);
	cr_assert(apply_is_owned(m));
	char *s = cJSON_PrintUnformatted(m);
	cr_assert_str_eq(s, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\","
			    "\"labels\":{\"app.kubernetes.io/managed-by\":\"gpuctl\"}}}");
	free(s);
	cJSON_Delete(m);
	cJSON_Delete(pod);
}
