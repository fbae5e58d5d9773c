/* The engine's node layer: GPU nodes, resolving targets with one LIST, and
 * the conditional edit shared by label, taint, slice and cleanup (plan all
 * nodes before writing any, write concurrently, re-plan on conflict). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/labels.h"
#include "gpuctl/nodes.h"
#include "gpuctl/owned.h"
#include "internal.h"

#define MAX_CONFLICT_ROUNDS 5
#define WRITE_PARALLEL 64

const char *node_name(const cJSON *node)
{
	const cJSON *v = json_get2(node, "metadata", "name");
	return cJSON_IsString(v) ? v->valuestring : "";
}

int kube_quantity_int(const char *s, long *out)
{
	/* sign? digits, an optional exponent or suffix (decimal SI or binary) */
	if (!s || !*s)
		return -1;
	const char *p = s;
	if (*p == '+')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	long v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (LONG_MAX - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	static const struct { const char *suffix; int base, power; } sfx[] = {
		{ "Ki", 1024, 1 }, { "Mi", 1024, 2 }, { "Gi", 1024, 3 }, { "Ti", 1024, 4 }, { "Pi", 1024, 5 },
		{ "Ei", 1024, 6 }, { "k", 1000, 1 }, { "M", 1000, 2 }, { "G", 1000, 3 }, { "T", 1000, 4 },
		{ "P", 1000, 5 }, { "E", 1000, 6 },
	};
	int base = 1, power = 0;
	if (*p == 'e' || *p == 'E') {
		char *end;
		errno = 0;
		long e = strtol(p + 1, &end, 10);
		if (end == p + 1 || *end || errno || e < 0 || e > 18)
			return -1; /* a negative exponent makes a fraction */
		base = 10;
		power = (int)e;
		p = end;
	} else if (*p) {
		size_t k;
		for (k = 0; k < sizeof(sfx) / sizeof(sfx[0]); k++)
			if (!strcmp(p, sfx[k].suffix))
				break;
		if (k == sizeof(sfx) / sizeof(sfx[0]))
			return -1; /* "m" (milli) and anything else: not a whole number */
		base = sfx[k].base;
		power = sfx[k].power;
	}
	for (int i = 0; i < power; i++) {
		if (v > LONG_MAX / base)
			return -1;
		v *= base;
	}
	*out = v;
	return 0;
}

long node_resource(const cJSON *node, const char *field, const char *resource)
{
	const cJSON *q = json_get2(cJSON_GetObjectItemCaseSensitive(node, "status"), field, resource);
	if (!q)
		return 0;
	long v;
	if (cJSON_IsNumber(q))
		return q->valuedouble >= 0 && q->valuedouble == (double)(long)q->valuedouble ? (long)q->valuedouble : -1;
	if (!cJSON_IsString(q) || kube_quantity_int(q->valuestring, &v) < 0)
		return -1;
	return v;
}

int node_is_gpu(const cJSON *node)
{
	if (node_resource(node, "capacity", "nvidia.com/gpu") > 0 ||
	    node_resource(node, "allocatable", "nvidia.com/gpu") > 0)
		return 1;
	const cJSON *labels = json_get2(node, "metadata", "labels");
	const char *nfd = json_str(labels, "feature.node.kubernetes.io/pci-10de.present");
	const char *present = json_str(labels, "nvidia.com/gpu.present");
	return (nfd && !strcmp(nfd, "true")) || (present && !strcmp(present, "true"));
}

const char *node_gpu_resource(const cJSON *node, const char *field)
{
	if (node_resource(node, field, "nvidia.com/gpu") > 0)
		return "nvidia.com/gpu";
	if (node_resource(node, field, "nvidia.com/gpu.shared") > 0)
		return "nvidia.com/gpu.shared";
	const cJSON *r;
	cJSON_ArrayForEach(r, json_get2(node, "status", field))
		if (r->string && !strncmp(r->string, "nvidia.com/mig-", 15) && node_resource(node, field, r->string) > 0)
			return r->string;
	return NULL;
}

const char *node_gpu_product(const cJSON *node)
{
	const char *p = json_str(json_get2(node, "metadata", "labels"), "nvidia.com/gpu.product");
	return p && *p ? p : NULL;
}

void gfd_product_parse(const char *product, struct gfd_product *out)
{
	memset(out, 0, sizeof(*out));
	if (!product)
		return;
	size_t n = strlen(product), sfx = strlen("-SHARED");
	if (n > sfx && !strcmp(product + n - sfx, "-SHARED")) {
		n -= sfx;
		out->shared = 1;
	}
	out->base_len = n;
	/* the last -MIG-, not at the start: a product name never ends in one */
	for (size_t i = n; i-- > 1;) {
		if (i + 5 < n && !strncmp(product + i, "-MIG-", 5)) {
			out->base_len = i;
			out->mig = product + i + 5;
			out->mig_len = n - i - 5;
			break;
		}
	}
}

int gfd_product_mig_invalid(const struct gfd_product *p)
{
	return p->mig && p->mig_len == strlen("INVALID") && !strncmp(p->mig, "INVALID", p->mig_len);
}

int gfd_mig_count_label(const char *key, char *res, size_t cap)
{
	size_t n = key ? strlen(key) : 0, pre = strlen("nvidia.com/mig-"), sfx = strlen(".count");
	if (n <= pre + sfx || strncmp(key, "nvidia.com/mig-", pre) || strcmp(key + n - sfx, ".count") ||
	    n - sfx >= cap)
		return 0;
	snprintf(res, cap, "%.*s", (int)(n - sfx), key);
	return 1;
}

int parse_dry_run(const char *s, enum dry_run *out, struct gerr *err)
{
	if (!s || !strcmp(s, "none") || !strcmp(s, "false"))
		*out = DRY_NONE;
	else if (!strcmp(s, "client") || !strcmp(s, "true"))
		*out = DRY_CLIENT;
	else if (!strcmp(s, "server"))
		*out = DRY_SERVER;
	else
		return gerr_set(err, GERR_USAGE, "--dry-run: \"%s\" is not one of none, client, server", s);
	return 0;
}

const char *dry_run_name(enum dry_run d)
{
	return d == DRY_CLIENT ? "client" : d == DRY_SERVER ? "server" : "none";
}

int node_target_check(const struct node_target *t, struct gerr *err)
{
	struct selector sel = { 0 };
	if (t->selector && selector_parse(t->selector, &sel, err) < 0)
		return -1;
	selector_release(&sel);
	return 0;
}

cJSON *node_prune(const cJSON *node)
{
	return node_prune_parts(node, NODE_PARTS_ALL);
}

cJSON *node_prune_parts(const cJSON *node, unsigned parts)
{
	/* the Ready condition's message is in no output: only status and reason */
	static const char *const cond_fields[] = { "type", "status", "reason", NULL };
	static const char *const addr_fields[] = { "type", "address", NULL };
	static const char *const info_fields[] = { "osImage", NULL };
	cJSON *out = cJSON_CreateObject();
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(node, "metadata");
	if (md) {
		cJSON *m = prune_add(out, "metadata", cJSON_CreateObject());
		prune_keep_one(m, md, "name");
		if (parts & NODE_PART_LABELS)
			prune_keep_one(m, md, "labels");
		else if (parts & NODE_PART_NVIDIA_LABELS)
			prune_keep_prefixed(m, md, "labels", NODE_PRUNE_RESOURCE_PREFIX);
		/* only gpuctl's own records are read (owned.h), but whether there
		 * are annotations at all decides the patch (add one key or the map) */
		if (parts & NODE_PART_ANNOTATIONS)
			prune_keep_prefixed(m, md, "annotations", NODE_PRUNE_ANNOTATION_PREFIX);
	}
	/* the taint planner tests the whole spec when there are no taints */
	if (parts & NODE_PART_SPEC)
		prune_keep_one(out, node, "spec");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(node, "status");
	if (st && (parts & (NODE_PART_STATUS | NODE_PART_ADDRESS))) {
		cJSON *s = prune_add(out, "status", cJSON_CreateObject());
		if (parts & NODE_PART_STATUS) {
			prune_keep_prefixed(s, st, "capacity", NODE_PRUNE_RESOURCE_PREFIX);
			prune_keep_prefixed(s, st, "allocatable", NODE_PRUNE_RESOURCE_PREFIX);
			prune_keep_each(s, st, "conditions", "type", "Ready", cond_fields);
		}
		if (parts & NODE_PART_ADDRESS)
			prune_keep_each(s, st, "addresses", "type", "InternalIP", addr_fields);
		const cJSON *ni = (parts & NODE_PART_ADDRESS) ? cJSON_GetObjectItemCaseSensitive(st, "nodeInfo") : NULL;
		if (cJSON_IsObject(ni))
			prune_keep(prune_add(s, "nodeInfo", cJSON_CreateObject()), ni, info_fields);
		else if (ni)
			prune_add(s, "nodeInfo", cJSON_Duplicate(ni, 1));
	}
	return out;
}

/* What nodes_resolve keeps of each listed Node, page by page. */
struct resolve {
	const struct node_target *t;
	cJSON *kept;  /* pruned nodes */
	int total;    /* nodes listed */
};

static int resolve_item(void *ud, cJSON *node, struct gerr *err)
{
	(void)err;
	struct resolve *r = ud;
	if (!node) {
		/* the list starts again */
		cJSON_Delete(r->kept);
		r->kept = cJSON_CreateArray();
		r->total = 0;
		if (r->t->each)
			r->t->each(r->t->each_ud, NULL);
		return 0;
	}
	r->total++;
	int want;
	if (r->t->nnames) {
		want = 0;
		for (size_t i = 0; i < r->t->nnames && !want; i++)
			want = !strcmp(node_name(node), r->t->names[i]);
	} else {
		want = r->t->selector || r->t->all || node_is_gpu(node);
	}
	if (want && r->t->each)
		r->t->each(r->t->each_ud, node);
	if (want)
		cJSON_AddItemToArray(r->kept, node_prune_parts(node, r->t->parts ? r->t->parts : NODE_PARTS_ALL));
	cJSON_Delete(node);
	return 0;
}

int node_target_metadata_only(const struct node_target *t)
{
	/* the GPU nodes are told by their capacity (status), and each gets whole nodes */
	return t->parts && !(t->parts & (NODE_PART_SPEC | NODE_PART_STATUS | NODE_PART_ADDRESS)) &&
	       (t->nnames || t->selector || t->all) && !t->each;
}

int nodes_resolve(struct kube_client *kc, const struct node_target *t, cJSON **nodes, struct gerr *err)
{
	if (node_target_check(t, err) < 0)
		return -1;
	struct kube_list_opts lo = { .label_selector = t->selector, .metadata_only = node_target_metadata_only(t) };
	char *fs = NULL;
	if (t->nnames == 1 && !t->selector) {
		fs = xasprintf("metadata.name=%s", t->names[0]);
		lo.field_selector = fs;
	}
	/* Each node is pruned to what gpuctl reads as its page arrives: a list
	 * of 20,000 nodes never sits whole in memory. */
	struct resolve res = { .t = t, .kept = cJSON_CreateArray() };
	int rc = kube_list_each(kc, "/api/v1/nodes", &lo, resolve_item, &res, NULL, err);
	free(fs);
	if (rc < 0) {
		cJSON_Delete(res.kept);
		return gerr_prefix(err, "list nodes");
	}
	cJSON *items = res.kept;
	if (t->nnames) {
		cJSON *out = cJSON_CreateArray();
		struct buf missing = BUF_INIT;
		for (size_t i = 0; i < t->nnames; i++) {
			cJSON *found = NULL, *it;
			cJSON_ArrayForEach(it, items)
				if (!strcmp(node_name(it), t->names[i]))
					found = it;
			int dup = 0;
			for (size_t j = 0; j < i; j++)
				dup |= !strcmp(t->names[j], t->names[i]);
			if (dup)
				continue;
			if (!found)
				buf_addf(&missing, "%s\"%s\"", missing.len ? ", " : "", t->names[i]);
			else
				cJSON_AddItemToArray(out, cJSON_Duplicate(found, 1));
		}
		cJSON_Delete(items);
		if (missing.len) {
			if (t->selector)
				gerr_set(err, GERR_NOTFOUND, "node(s) %s not found among the nodes matching -l %s",
					 missing.s, t->selector);
			else
				gerr_set(err, GERR_NOTFOUND, "node(s) %s not found", missing.s);
			gerr_hint(err, "list the nodes with: kubectl get nodes");
			buf_release(&missing);
			cJSON_Delete(out);
			return -1;
		}
		buf_release(&missing);
		items = out;
	} else if (!t->selector && !t->all && cJSON_GetArraySize(items) == 0) {
		cJSON_Delete(items);
		gerr_set(err, GERR_NOTFOUND,
			 "no GPU nodes found among %d node(s): none has nvidia.com/gpu capacity, the label feature.node.kubernetes.io/pci-10de.present=true or nvidia.com/gpu.present=true",
			 res.total);
		gerr_hint(err, "name the nodes, or select them with -l SELECTOR");
		return -1;
	}
	*nodes = items;
	return 0;
}

void edit_results_free(struct edit_result *r, size_t n)
{
	for (size_t i = 0; r && i < n; i++) {
		free(r[i].node);
		cJSON_Delete(r[i].changes);
		cJSON_Delete(r[i].state);
		free(r[i].patch);
		gerr_clear(&r[i].err);
	}
	free(r);
}

static void reset_plan(struct edit_result *r)
{
	cJSON_Delete(r->changes);
	cJSON_Delete(r->state);
	free(r->patch);
	r->changes = NULL;
	r->state = NULL;
	r->patch = NULL;
	gerr_clear(&r->err);
}

static void run_plan(edit_plan_fn plan, void *ud, const cJSON *node, struct edit_result *r)
{
	reset_plan(r);
	r->changes = cJSON_CreateArray();
	if (plan(ud, node, r) < 0) {
		r->status = EDIT_FAILED;
		if (r->err.code == GERR_OK)
			gerr_set(&r->err, GERR_INTERNAL, "planning failed");
		return;
	}
	r->status = r->patch ? EDIT_CHANGED : EDIT_UNCHANGED;
}

static int edit(struct kube_client *kc, cJSON *nodes, int consume, edit_plan_fn plan, void *ud, enum dry_run dry,
		struct edit_result **results, size_t *nresults)
{
	size_t n = (size_t)cJSON_GetArraySize(nodes);
	struct edit_result *r = xcalloc(n ? n : 1, sizeof(*r));
	size_t i = 0;
	cJSON *it, *next;
	int any_failed = 0;
	for (it = nodes ? nodes->child : NULL; it; it = next, i++) {
		next = it->next;
		r[i].node = xstrdup(node_name(it));
		run_plan(plan, ud, it, &r[i]);
		any_failed |= r[i].status == EDIT_FAILED;
		if (dry == DRY_CLIENT) {
			/* never sent: on 20,000 nodes the patches alone are 30 MB */
			free(r[i].patch);
			r[i].patch = NULL;
		}
		/* a node planned is not read again (a conflict re-plans from a
		 * fresh GET): the results grow as the nodes go */
		if (consume)
			cJSON_Delete(cJSON_DetachItemViaPointer(nodes, it));
	}
	if (any_failed) {
		/* refuse everything: never leave some nodes changed and others not */
		for (i = 0; i < n; i++)
			if (r[i].status == EDIT_CHANGED) {
				r[i].status = EDIT_SKIPPED;
				gerr_set(&r[i].err, GERR_CONFLICT, "not changed because other nodes failed validation");
			}
		*results = r;
		*nresults = n;
		return 0;
	}
	if (dry == DRY_CLIENT) {
		*results = r;
		*nresults = n;
		return 0;
	}
	cJSON **fresh = xcalloc(n ? n : 1, sizeof(cJSON *));
	for (int round = 0; round < MAX_CONFLICT_ROUNDS; round++) {
		size_t nw = 0;
		size_t *idx = xcalloc(n ? n : 1, sizeof(size_t));
		for (i = 0; i < n; i++)
			if (r[i].status == EDIT_CHANGED && r[i].patch)
				idx[nw++] = i;
		if (!nw) {
			free(idx);
			break;
		}
		struct kube_call *calls = xcalloc(nw, sizeof(*calls));
		char **paths = xcalloc(nw, sizeof(char *));
		char **whats = xcalloc(nw, sizeof(char *));
		for (size_t k = 0; k < nw; k++) {
			struct edit_result *e = &r[idx[k]];
			char *base = kube_path("v1", NULL, "nodes", e->node);
			struct buf p = BUF_INIT;
			buf_adds(&p, base);
			free(base);
			kube_query_add(&p, "fieldManager", GPUCTL_FIELD_MANAGER);
			if (dry == DRY_SERVER)
				kube_query_add(&p, "dryRun", "All");
			paths[k] = buf_detach(&p);
			whats[k] = xasprintf("node %s", e->node);
			calls[k] = (struct kube_call){ .method = "PATCH", .path = paths[k], .body = e->patch,
						       .content_type = "application/json-patch+json",
						       .idempotent = 1, .what = whats[k] };
		}
		kube_do_many(kc, calls, nw, WRITE_PARALLEL);
		/* conflicts: fetch those nodes again (concurrently) and re-plan */
		size_t nc = 0;
		for (size_t k = 0; k < nw; k++) {
			struct edit_result *e = &r[idx[k]];
			if (calls[k].err.code == GERR_OK) {
				free(e->patch);
				e->patch = NULL;
			} else if ((calls[k].err.code == GERR_CONFLICT || calls[k].err.code == GERR_INVALID) &&
				   round + 1 < MAX_CONFLICT_ROUNDS) {
				/* 409, or 422: a test of the JSON patch failed because the
				 * node changed since it was read (or the patch is wrong:
				 * told apart below by planning again from a fresh copy) */
				gerr_move(&e->err, &calls[k].err);
				idx[nc++] = idx[k];
			} else {
				e->status = EDIT_FAILED;
				gerr_move(&e->err, &calls[k].err);
			}
			kube_call_release(&calls[k]);
		}
		for (size_t k = 0; k < nw; k++) {
			free(paths[k]);
			free(whats[k]);
		}
		free(calls);
		free(paths);
		free(whats);
		if (nc) {
			struct kube_call *gets = xcalloc(nc, sizeof(*gets));
			char **gp = xcalloc(nc, sizeof(char *));
			char **gw = xcalloc(nc, sizeof(char *));
			for (size_t k = 0; k < nc; k++) {
				gp[k] = kube_path("v1", NULL, "nodes", r[idx[k]].node);
				gw[k] = xasprintf("node %s", r[idx[k]].node);
				gets[k] = (struct kube_call){ .method = "GET", .path = gp[k], .idempotent = 1,
							      .what = gw[k] };
			}
			kube_do_many(kc, gets, nc, WRITE_PARALLEL);
			for (size_t k = 0; k < nc; k++) {
				struct edit_result *e = &r[idx[k]];
				if (gets[k].err.code != GERR_OK) {
					e->status = EDIT_FAILED;
					gerr_move(&e->err, &gets[k].err);
				} else {
					cJSON_Delete(fresh[idx[k]]);
					fresh[idx[k]] = gets[k].response;
					gets[k].response = NULL;
					char *sent = e->patch;
					struct gerr why = GERR_INIT;
					gerr_move(&why, &e->err);
					e->patch = NULL;
					run_plan(plan, ud, fresh[idx[k]], e);
					/* someone else made the same change meanwhile: reported unchanged.
					 * The same patch again from an unchanged node: the server's
					 * refusal was not about a concurrent change */
					if (e->status == EDIT_CHANGED && sent && e->patch && !strcmp(sent, e->patch) &&
					    why.code == GERR_INVALID) {
						e->status = EDIT_FAILED;
						gerr_move(&e->err, &why);
					}
					gerr_clear(&why);
					free(sent);
				}
				kube_call_release(&gets[k]);
				free(gp[k]);
				free(gw[k]);
			}
			free(gets);
			free(gp);
			free(gw);
		}
		free(idx);
	}
	for (i = 0; i < n; i++)
		cJSON_Delete(fresh[i]);
	free(fresh);
	*results = r;
	*nresults = n;
	return 0;
}

int nodes_edit(struct kube_client *kc, cJSON *nodes, edit_plan_fn plan, void *ud, enum dry_run dry,
	       struct edit_result **results, size_t *nresults, struct gerr *err)
{
	(void)err;
	return edit(kc, nodes, 0, plan, ud, dry, results, nresults);
}

int nodes_edit_consume(struct kube_client *kc, cJSON *nodes, edit_plan_fn plan, void *ud, enum dry_run dry,
		       struct edit_result **results, size_t *nresults, struct gerr *err)
{
	(void)err;
	return edit(kc, nodes, 1, plan, ud, dry, results, nresults);
}

int nodes_watch(struct kube_client *kc, const char *selector, nodes_watch_fn fn, void *ud, long timeout_ms,
		struct gerr *err)
{
	char *path = kube_path("v1", NULL, "nodes", NULL);
	struct kube_watch_opts wo = { .label_selector = selector, .timeout_ms = timeout_ms };
	int rc = kube_watch(kc, path, &wo, fn, ud, err);
	free(path);
	return rc;
}
