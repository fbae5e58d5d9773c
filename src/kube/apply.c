/* Applying gpuctl's objects, waiting for them, and deleting what gpuctl
 * owns.  Reads are batched and concurrent; nothing is written that is
 * already as wanted, so a second run sends no write. */
#include <stdlib.h>
#include <string.h>

#include "gpuctl/apply.h"
#include "gpuctl/buf.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/owned.h"

#define APPLY_PARALLEL 32

/* Workloads before what they use, namespaces last: the order deletion goes in. */
const struct kube_kind kube_owned_kinds[] = {
	{ "apps/v1", "DaemonSet", "daemonsets", 1 },
	{ "apps/v1", "Deployment", "deployments", 1 },
	{ "batch/v1", "Job", "jobs", 1 },
	{ "v1", "Pod", "pods", 1 },
	{ "v1", "Service", "services", 1 },
	{ "v1", "ConfigMap", "configmaps", 1 },
	{ "v1", "ServiceAccount", "serviceaccounts", 1 },
	{ "rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", 1 },
	{ "rbac.authorization.k8s.io/v1", "Role", "roles", 1 },
	{ "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", 0 },
	{ "rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", 0 },
	{ "scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", 0 },
	{ "node.k8s.io/v1", "RuntimeClass", "runtimeclasses", 0 },
	{ "v1", "Namespace", "namespaces", 0 },
	{ NULL, NULL, NULL, 0 },
};

const struct kube_kind *kube_kind_of(const cJSON *obj, struct gerr *err)
{
	const char *gv = json_str(obj, "apiVersion"), *kind = json_str(obj, "kind");
	if (!gv || !kind) {
		gerr_set(err, GERR_INVALID, "an object without apiVersion or kind");
		return NULL;
	}
	for (const struct kube_kind *k = kube_owned_kinds; k->kind; k++)
		if (!strcmp(k->kind, kind) && !strcmp(k->group_version, gv))
			return k;
	gerr_set(err, GERR_INVALID, "%s %s is not a kind gpuctl manages", gv, kind);
	return NULL;
}

static const char *obj_ns(const struct kube_kind *k, const cJSON *obj)
{
	if (!k->namespaced)
		return NULL;
	const char *ns = json_str(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "namespace");
	return ns && *ns ? ns : "default";
}

static const char *obj_name(const cJSON *obj)
{
	const char *n = json_str(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name");
	return n ? n : "";
}

char *kube_object_path(const struct kube_kind *k, const cJSON *obj)
{
	return kube_path(k->group_version, obj_ns(k, obj), k->resource, obj_name(obj));
}

int json_contains(const cJSON *have, const cJSON *want)
{
	if (!want)
		return 1;
	if (!have)
		return 0;
	if (cJSON_IsObject(want)) {
		if (!cJSON_IsObject(have))
			return 0;
		const cJSON *w;
		cJSON_ArrayForEach(w, want)
			if (!json_contains(cJSON_GetObjectItemCaseSensitive(have, w->string), w))
				return 0;
		return 1;
	}
	if (cJSON_IsArray(want)) {
		if (!cJSON_IsArray(have) || cJSON_GetArraySize(have) != cJSON_GetArraySize(want))
			return 0;
		const cJSON *h = have->child, *w = want->child;
		for (; w; w = w->next, h = h->next)
			if (!json_contains(h, w))
				return 0;
		return 1;
	}
	/* scalars: the server may write a whole number as 1 where we wrote "1"? no:
	 * it keeps the JSON type, so types must agree */
	return cJSON_Compare(have, want, 1);
}

static void diff_value(struct buf *out, const cJSON *v)
{
	if (!v) {
		buf_adds(out, "(none)");
		return;
	}
	char *s = cJSON_PrintUnformatted(v);
	if (strlen(s) > 80)
		buf_addf(out, "%.77s...", s);
	else
		buf_adds(out, s);
	free(s);
}

static void diff_rec(const cJSON *have, const cJSON *want, struct buf *path, struct buf *out, size_t max, size_t *n)
{
	if (json_contains(have, want))
		return;
	size_t keep = path->len;
	if (cJSON_IsObject(want) && cJSON_IsObject(have)) {
		const cJSON *w;
		cJSON_ArrayForEach(w, want) {
			buf_addf(path, "%s%s", path->len ? "." : "", w->string);
			diff_rec(cJSON_GetObjectItemCaseSensitive(have, w->string), w, path, out, max, n);
			buf_truncate(path, keep);
		}
		return;
	}
	if (cJSON_IsArray(want) && cJSON_IsArray(have) && cJSON_GetArraySize(have) == cJSON_GetArraySize(want)) {
		const cJSON *h = have->child, *w = want->child;
		for (int i = 0; w; w = w->next, h = h->next, i++) {
			buf_addf(path, "[%d]", i);
			diff_rec(h, w, path, out, max, n);
			buf_truncate(path, keep);
		}
		return;
	}
	if ((*n)++ < max) {
		buf_addf(out, "%s: ", path->len ? path->s : "(object)");
		diff_value(out, have);
		buf_adds(out, " -> ");
		diff_value(out, want);
		buf_adds(out, "\n");
	}
}

size_t json_diff(const cJSON *have, const cJSON *want, const char *prefix, struct buf *out, size_t max)
{
	struct buf path = BUF_INIT;
	buf_adds(&path, prefix ? prefix : "");
	size_t n = 0;
	diff_rec(have, want, &path, out, max, &n);
	buf_release(&path);
	return n;
}

const char *apply_status_name(enum apply_status s)
{
	static const char *const names[] = { "created", "configured", "unchanged", "deleted", "failed" };
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

void apply_results_free(struct apply_result *r, size_t n)
{
	for (size_t i = 0; r && i < n; i++) {
		free(r[i].kind);
		free(r[i].ns);
		free(r[i].name);
		free(r[i].diff);
		gerr_clear(&r[i].err);
	}
	free(r);
}

/* The object as gpuctl applies it: with the managed-by (and component) label. */
static cJSON *owned_copy(const cJSON *doc, const char *owner)
{
	cJSON *o = cJSON_Duplicate(doc, 1);
	cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	if (!cJSON_IsObject(md))
		md = cJSON_AddObjectToObject(o, "metadata");
	cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels");
	if (!cJSON_IsObject(labels)) {
		cJSON_DeleteItemFromObjectCaseSensitive(md, "labels");
		labels = cJSON_AddObjectToObject(md, "labels");
	}
	cJSON_DeleteItemFromObjectCaseSensitive(labels, GPUCTL_MANAGED_BY_KEY);
	cJSON_AddStringToObject(labels, GPUCTL_MANAGED_BY_KEY, GPUCTL_MANAGED_BY_VALUE);
	if (owner) {
		cJSON_DeleteItemFromObjectCaseSensitive(labels, GPUCTL_COMPONENT_KEY);
		cJSON_AddStringToObject(labels, GPUCTL_COMPONENT_KEY, owner);
	}
	return o;
}

int apply_is_owned(const cJSON *obj)
{
	const char *v = json_str(json_get2(obj, "metadata", "labels"), GPUCTL_MANAGED_BY_KEY);
	return v && !strcmp(v, GPUCTL_MANAGED_BY_VALUE);
}

int apply_get_named(struct kube_client *kc, const struct kube_kind *k, const char *ns, const char *name, cJSON **obj,
		    struct gerr *err)
{
	char *path = kube_path(k->group_version, k->namespaced ? ns : NULL, k->resource, name);
	int rc = kube_get(kc, path, obj, err);
	free(path);
	return rc;
}

int apply_delete_named(struct kube_client *kc, const struct kube_kind *k, const char *ns, const char *name,
		       int dry_server, struct gerr *err)
{
	char *path = kube_path(k->group_version, k->namespaced ? ns : NULL, k->resource, name);
	int rc = kube_delete(kc, path, "Foreground", dry_server, err);
	free(path);
	return rc;
}

int apply_get_live(struct kube_client *kc, const cJSON *doc, cJSON **live, struct gerr *err)
{
	const struct kube_kind *k = kube_kind_of(doc, err);
	if (!k)
		return -1;
	char *path = kube_object_path(k, doc);
	int rc = kube_get(kc, path, live, err);
	free(path);
	return rc;
}

/* want without gpuctl's own labels: what a foreign object must hold to count as already done */
static cJSON *without_our_labels(const cJSON *want)
{
	cJSON *o = cJSON_Duplicate(want, 1);
	cJSON *labels = (cJSON *)json_get2(o, "metadata", "labels");
	cJSON_DeleteItemFromObjectCaseSensitive(labels, GPUCTL_MANAGED_BY_KEY);
	cJSON_DeleteItemFromObjectCaseSensitive(labels, GPUCTL_COMPONENT_KEY);
	if (labels && !labels->child)
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels");
	return o;
}

static char *describe(const struct apply_result *r)
{
	return r->ns ? xasprintf("%s %s/%s", r->kind, r->ns, r->name) : xasprintf("%s %s", r->kind, r->name);
}

size_t apply_objects(struct kube_client *kc, const cJSON *docs, const struct apply_opts *o,
		     struct apply_result **results, size_t *nresults)
{
	size_t n = (size_t)cJSON_GetArraySize(docs), failed = 0;
	struct apply_result *r = xcalloc(n ? n : 1, sizeof(*r));
	cJSON **want = xcalloc(n ? n : 1, sizeof(cJSON *));
	char **paths = xcalloc(n ? n : 1, sizeof(char *));
	char **whats = xcalloc(n ? n : 1, sizeof(char *));
	struct kube_call *gets = xcalloc(n ? n : 1, sizeof(*gets));
	int *todo = xcalloc(n ? n : 1, sizeof(int));
	size_t i = 0;
	const cJSON *doc;
	cJSON_ArrayForEach(doc, docs) {
		const struct kube_kind *k = kube_kind_of(doc, &r[i].err);
		r[i].kind = xstrdup(json_str(doc, "kind") ? json_str(doc, "kind") : "?");
		r[i].name = xstrdup(obj_name(doc));
		if (!k) {
			r[i].status = APPLY_FAILED;
			i++;
			continue;
		}
		r[i].ns = obj_ns(k, doc) ? xstrdup(obj_ns(k, doc)) : NULL;
		want[i] = owned_copy(doc, o->owner);
		paths[i] = kube_object_path(k, doc);
		whats[i] = describe(&r[i]);
		gets[i] = (struct kube_call){ .method = "GET", .path = paths[i], .idempotent = 1, .what = whats[i] };
		todo[i] = 1;
		i++;
	}
	/* one concurrent round of reads */
	struct kube_call *batch = xcalloc(n ? n : 1, sizeof(*batch));
	size_t *idx = xcalloc(n ? n : 1, sizeof(size_t)), nb = 0;
	for (i = 0; i < n; i++)
		if (todo[i]) {
			idx[nb] = i;
			batch[nb++] = gets[i];
		}
	kube_do_many(kc, batch, nb, APPLY_PARALLEL);
	size_t nw = 0;
	struct kube_call *writes = xcalloc(n ? n : 1, sizeof(*writes));
	char **wpaths = xcalloc(n ? n : 1, sizeof(char *));
	char **bodies = xcalloc(n ? n : 1, sizeof(char *));
	size_t *widx = xcalloc(n ? n : 1, sizeof(size_t));
	for (size_t b = 0; b < nb; b++) {
		i = idx[b];
		struct apply_result *x = &r[i];
		const cJSON *have = batch[b].err.code == GERR_OK ? batch[b].response : NULL;
		if (!have && batch[b].err.code != GERR_NOTFOUND) {
			x->status = APPLY_FAILED;
			gerr_move(&x->err, &batch[b].err);
			continue;
		}
		struct buf d = BUF_INIT;
		if (!have) {
			x->status = APPLY_CREATED;
		} else if (json_contains(have, want[i])) {
			x->status = APPLY_UNCHANGED;
		} else if (!apply_is_owned(have)) {
			cJSON *bare = without_our_labels(want[i]);
			int done = json_contains(have, bare);
			if (!done)
				json_diff(have, bare, NULL, &d, 8);
			cJSON_Delete(bare);
			x->foreign = 1;
			if (done) {
				x->status = APPLY_UNCHANGED;
			} else if (!o->adopt) {
				x->status = APPLY_FAILED;
				gerr_set(&x->err, GERR_CONFLICT,
					 "%s exists and was not created by gpuctl (no label %s): gpuctl will not change it",
					 whats[i], GPUCTL_MANAGED_BY_SELECTOR);
				gerr_hint(&x->err, "it differs in %.*s; delete it to let gpuctl create its own, or change it by hand",
					  (int)strcspn(d.s ? d.s : "", "\n"), d.s ? d.s : "");
			} else {
				x->status = APPLY_CONFIGURED;
			}
		} else {
			json_diff(have, want[i], NULL, &d, 8);
			x->status = APPLY_CONFIGURED;
		}
		if (d.len)
			x->diff = buf_detach(&d);
		buf_release(&d);
		if ((x->status == APPLY_CREATED || x->status == APPLY_CONFIGURED) && o->dry != DRY_CLIENT) {
			struct buf p = BUF_INIT;
			buf_adds(&p, paths[i]);
			kube_query_add(&p, "fieldManager", GPUCTL_FIELD_MANAGER);
			/* fields another manager (kubectl, an earlier tool) set on an
			 * object gpuctl owns are taken over, as kubectl apply --server-side --force-conflicts */
			kube_query_add(&p, "force", "true");
			if (o->dry == DRY_SERVER)
				kube_query_add(&p, "dryRun", "All");
			wpaths[nw] = buf_detach(&p);
			bodies[nw] = cJSON_PrintUnformatted(want[i]);
			writes[nw] = (struct kube_call){ .method = "PATCH", .path = wpaths[nw], .body = bodies[nw],
							 .content_type = kube_patch_content_type(KUBE_PATCH_APPLY),
							 .idempotent = 1, .what = whats[i] };
			widx[nw++] = i;
		}
	}
	kube_do_many(kc, writes, nw, APPLY_PARALLEL);
	for (size_t w = 0; w < nw; w++) {
		if (writes[w].err.code != GERR_OK) {
			r[widx[w]].status = APPLY_FAILED;
			gerr_move(&r[widx[w]].err, &writes[w].err);
		}
		kube_call_release(&writes[w]);
		free(wpaths[w]);
		free(bodies[w]);
	}
	for (size_t b = 0; b < nb; b++)
		kube_call_release(&batch[b]);
	for (i = 0; i < n; i++) {
		failed += r[i].status == APPLY_FAILED;
		cJSON_Delete(want[i]);
		free(paths[i]);
		free(whats[i]);
	}
	free(writes);
	free(wpaths);
	free(bodies);
	free(widx);
	free(batch);
	free(idx);
	free(gets);
	free(todo);
	free(want);
	free(paths);
	free(whats);
	*results = r;
	*nresults = n;
	return failed;
}

struct wait_state {
	apply_ready_fn pred;
	void *ud;
	char *last;
	int done;
};

static int wait_event(void *ud, const char *type, const cJSON *obj, struct gerr *err)
{
	struct wait_state *w = ud;
	if (!strcmp(type, "DELETED")) {
		free(w->last);
		w->last = xstrdup("deleted");
		return 0;
	}
	if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED"))
		return 0;
	char *last = NULL;
	int rc = w->pred(w->ud, obj, &last, err);
	if (last) {
		free(w->last);
		w->last = last;
	}
	if (rc < 0)
		return -1;
	if (rc > 0) {
		w->done = 1;
		return 1;
	}
	return 0;
}

int apply_wait(struct kube_client *kc, const struct kube_kind *k, const char *ns, const char *name,
	       apply_ready_fn pred, void *ud, long timeout_ms, struct gerr *err)
{
	char *path = kube_path(k->group_version, k->namespaced ? ns : NULL, k->resource, NULL);
	char *fs = xasprintf("metadata.name=%s", name);
	struct kube_watch_opts wo = { .field_selector = fs, .timeout_ms = timeout_ms };
	struct wait_state w = { .pred = pred, .ud = ud };
	struct gerr werr = GERR_INIT;
	int rc = kube_watch(kc, path, &wo, wait_event, &w, &werr);
	if (rc < 0 && !w.done && werr.code == GERR_TIMEOUT && !werr.http_status) {
		/* the watch ran out of time: the object is not ready, the cluster answered */
		gerr_clear(&werr);
		gerr_set(err, GERR_NOT_READY, "%s %s%s%s: not ready after %ld s%s%s", k->kind, ns && k->namespaced ? ns : "",
			 ns && k->namespaced ? "/" : "", name, timeout_ms / 1000, w.last ? ": " : "", w.last ? w.last : "");
	} else if (rc < 0) {
		gerr_move(err, &werr);
	}
	free(w.last);
	free(fs);
	free(path);
	return rc < 0 ? -1 : 0;
}

static long num(const cJSON *o, const char *a, const char *b)
{
	const cJSON *v = json_get2(o, a, b);
	return cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
}

int apply_daemonset_ready(void *ud, const cJSON *obj, char **last, struct gerr *err)
{
	(void)ud;
	(void)err;
	long gen = num(obj, "metadata", "generation"), seen = num(obj, "status", "observedGeneration");
	long want = num(obj, "status", "desiredNumberScheduled"), updated = num(obj, "status", "updatedNumberScheduled");
	long avail = num(obj, "status", "numberAvailable");
	if (seen < gen) {
		*last = xstrdup("the controller has not seen the new spec yet");
		return 0;
	}
	*last = xasprintf("%ld of %ld pods updated, %ld available", updated, want, avail);
	return updated >= want && avail >= want;
}

size_t apply_delete_owned(struct kube_client *kc, const char *owner, enum dry_run dry, struct apply_result **results,
			  size_t *nresults)
{
	char *sel = owner ? xasprintf("%s,%s=%s", GPUCTL_MANAGED_BY_SELECTOR, GPUCTL_COMPONENT_KEY, owner)
			  : xstrdup(GPUCTL_MANAGED_BY_SELECTOR);
	struct apply_result *r = NULL;
	size_t n = 0, failed = 0;
	/* two rounds: everything but namespaces, then namespaces (deleting one
	 * deletes its content, which would then read as failures) */
	for (int round = 0; round < 2; round++) {
		size_t first = n;
		for (const struct kube_kind *k = kube_owned_kinds; k->kind; k++) {
			int is_ns = !strcmp(k->kind, "Namespace");
			if (is_ns != round)
				continue;
			char *path = kube_path(k->group_version, NULL, k->resource, NULL);
			struct kube_list_opts lo = { .label_selector = sel };
			cJSON *items = NULL;
			struct gerr e = GERR_INIT;
			/* the names and labels are all that is read (smoke-test's pods can be one per node) */
			if (kube_list_pruned(kc, path, &lo, kube_meta_prune, &items, NULL, &e) < 0) {
				r = xrealloc(r, (n + 1) * sizeof(*r));
				memset(&r[n], 0, sizeof(*r));
				r[n].kind = xstrdup(k->kind);
				r[n].name = xstrdup("*");
				r[n].status = APPLY_FAILED;
				gerr_move(&r[n].err, &e);
				gerr_prefix(&r[n].err, "list %s", k->resource);
				n++;
				failed++;
				free(path);
				continue;
			}
			free(path);
			const cJSON *it;
			cJSON_ArrayForEach(it, items) {
				if (!apply_is_owned(it))
					continue; /* never trust the selector alone */
				r = xrealloc(r, (n + 1) * sizeof(*r));
				memset(&r[n], 0, sizeof(*r));
				r[n].kind = xstrdup(k->kind);
				r[n].name = xstrdup(obj_name(it));
				const char *ns = json_str(cJSON_GetObjectItemCaseSensitive(it, "metadata"), "namespace");
				r[n].ns = k->namespaced && ns ? xstrdup(ns) : NULL;
				r[n].status = APPLY_DELETED;
				/* remember the kind for the path below */
				r[n].diff = kube_path(k->group_version, r[n].ns, k->resource, r[n].name);
				n++;
			}
			cJSON_Delete(items);
		}
		if (dry == DRY_CLIENT)
			continue;
		size_t nd = n - first;
		struct kube_call *calls = xcalloc(nd ? nd : 1, sizeof(*calls));
		char **whats = xcalloc(nd ? nd : 1, sizeof(char *));
		const char *body = dry == DRY_SERVER
					   ? "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":\"Foreground\",\"dryRun\":[\"All\"]}"
					   : "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":\"Foreground\"}";
		size_t nc = 0;
		size_t *ci = xcalloc(nd ? nd : 1, sizeof(size_t));
		for (size_t j = first; j < n; j++) {
			if (r[j].status != APPLY_DELETED)
				continue;
			whats[nc] = describe(&r[j]);
			calls[nc] = (struct kube_call){ .method = "DELETE", .path = r[j].diff, .body = body, .idempotent = 1,
							.what = whats[nc] };
			ci[nc++] = j;
		}
		kube_do_many(kc, calls, nc, APPLY_PARALLEL);
		for (size_t c = 0; c < nc; c++) {
			/* gone already (another run, the namespace's deletion): fine */
			if (calls[c].err.code != GERR_OK && calls[c].err.code != GERR_NOTFOUND) {
				r[ci[c]].status = APPLY_FAILED;
				gerr_move(&r[ci[c]].err, &calls[c].err);
				failed++;
			}
			kube_call_release(&calls[c]);
			free(whats[c]);
		}
		free(calls);
		free(whats);
		free(ci);
	}
	for (size_t j = 0; j < n; j++) {
		free(r[j].diff);
		r[j].diff = NULL;
	}
	free(sel);
	*results = r;
	*nresults = n;
	return failed;
}
