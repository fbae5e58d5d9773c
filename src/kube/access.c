/* What the caller may do: SelfSubjectAccessReview, asked for many actions at
 * once (kubectl auth can-i, concurrently). */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/util.h"

#define SSAR_PATH "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

static char *ssar_body(const struct kube_access *a)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", "authorization.k8s.io/v1");
	cJSON_AddStringToObject(o, "kind", "SelfSubjectAccessReview");
	cJSON *ra = cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "spec"), "resourceAttributes");
	cJSON_AddStringToObject(ra, "verb", a->verb);
	cJSON_AddStringToObject(ra, "group", a->group ? a->group : "");
	cJSON_AddStringToObject(ra, "resource", a->resource);
	if (a->subresource)
		cJSON_AddStringToObject(ra, "subresource", a->subresource);
	if (a->ns)
		cJSON_AddStringToObject(ra, "namespace", a->ns);
	if (a->name)
		cJSON_AddStringToObject(ra, "name", a->name);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

int kube_can_i_many(struct kube_client *kc, struct kube_access *a, size_t n, struct gerr *err)
{
	struct kube_call *calls = xcalloc(n ? n : 1, sizeof(*calls));
	char **bodies = xcalloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		bodies[i] = ssar_body(&a[i]);
		/* a review changes nothing: asking again is safe */
		calls[i] = (struct kube_call){ .method = "POST", .path = SSAR_PATH, .body = bodies[i], .idempotent = 1,
					       .what = "selfsubjectaccessreview" };
	}
	kube_do_many(kc, calls, n, 0);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (calls[i].err.code != GERR_OK && !rc) {
			gerr_move(err, &calls[i].err);
			gerr_prefix(err, "can-i %s %s", a[i].verb, a[i].resource);
			rc = -1;
		}
		const cJSON *allowed = json_get2(calls[i].response, "status", "allowed");
		a[i].allowed = cJSON_IsTrue(allowed);
		kube_call_release(&calls[i]);
		free(bodies[i]);
	}
	free(calls);
	free(bodies);
	return rc;
}

int kube_can_i(struct kube_client *kc, const char *verb, const char *group, const char *resource, const char *ns,
	       int *allowed, struct gerr *err)
{
	struct kube_access a = { .verb = verb, .group = group, .resource = resource, .ns = ns };
	if (kube_can_i_many(kc, &a, 1, err) < 0)
		return -1;
	*allowed = a.allowed;
	return 0;
}
