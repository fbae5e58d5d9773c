/* The node edit engine shared by label and taint: resolve the target nodes
 * with one LIST, plan all edits before writing any, write concurrently, and
 * re-plan on 409 Conflict. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "gpuctl/json.h"
#include "gpuctl/buf.h"
#include "gpuctl/kube.h"
#include "gpuctl/labels.h"
#include "gpuctl/out.h"
#include "gpuctl/report.h"

#define MAX_CONFLICT_ROUNDS 5
#define WRITE_PARALLEL 64

static const char *node_name(const cJSON *node)
{
	const cJSON *v = json_get2(node, "metadata", "name");
	return cJSON_IsString(v) ? v->valuestring : "";
}

static long quantity_int(const cJSON *q)
{
	if (cJSON_IsNumber(q))
		return (long)q->valuedouble;
	if (!cJSON_IsString(q))
		return 0;
	char *end;
	long v = strtol(q->valuestring, &end, 10);
	return v;
}

int node_is_gpu(const cJSON *node)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(node, "status");
	if (quantity_int(json_get2(st, "capacity", "nvidia.com/gpu")) > 0 ||
	    quantity_int(json_get2(st, "allocatable", "nvidia.com/gpu")) > 0)
		return 1;
	const cJSON *labels = json_get2(node, "metadata", "labels");
	const char *nfd = json_str(labels, "feature.node.kubernetes.io/pci-10de.present");
	const char *present = json_str(labels, "nvidia.com/gpu.present");
	return (nfd && !strcmp(nfd, "true")) || (present && !strcmp(present, "true"));
}

const char *node_gpu_product(const cJSON *node)
{
	const char *p = json_str(json_get2(node, "metadata", "labels"), "nvidia.com/gpu.product");
	return p && *p ? p : NULL;
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

int nodes_resolve(struct kube_client *kc, const struct node_target *t, cJSON **nodes, struct gerr *err)
{
	if (node_target_check(t, err) < 0)
		return -1;
	struct kube_list_opts lo = { .label_selector = t->selector };
	char *fs = NULL;
	if (t->nnames == 1 && !t->selector) {
		fs = xasprintf("metadata.name=%s", t->names[0]);
		lo.field_selector = fs;
	}
	cJSON *items = NULL;
	int rc = kube_list(kc, "/api/v1/nodes", &lo, &items, NULL, err);
	free(fs);
	if (rc < 0)
		return gerr_prefix(err, "list nodes");
	cJSON *out = cJSON_CreateArray();
	if (t->nnames) {
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
	} else if (t->selector || t->all) {
		cJSON_Delete(out);
		out = items;
	} else {
		cJSON *it;
		cJSON_ArrayForEach(it, items)
			if (node_is_gpu(it))
				cJSON_AddItemToArray(out, cJSON_Duplicate(it, 1));
		int total = cJSON_GetArraySize(items);
		cJSON_Delete(items);
		if (cJSON_GetArraySize(out) == 0) {
			cJSON_Delete(out);
			gerr_set(err, GERR_NOTFOUND,
				 "no GPU nodes found among %d node(s): none has nvidia.com/gpu capacity, the label feature.node.kubernetes.io/pci-10de.present=true or nvidia.com/gpu.present=true",
				 total);
			gerr_hint(err, "name the nodes, or select them with -l SELECTOR");
			return -1;
		}
	}
	*nodes = out;
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

int nodes_edit(struct kube_client *kc, cJSON *nodes, edit_plan_fn plan, void *ud, enum dry_run dry,
	       struct edit_result **results, size_t *nresults, struct gerr *err)
{
	(void)err;
	size_t n = (size_t)cJSON_GetArraySize(nodes);
	struct edit_result *r = xcalloc(n ? n : 1, sizeof(*r));
	cJSON **cur = xcalloc(n ? n : 1, sizeof(cJSON *));
	size_t i = 0;
	cJSON *it;
	int any_failed = 0;
	cJSON_ArrayForEach(it, nodes) {
		r[i].node = xstrdup(node_name(it));
		cur[i] = it;
		run_plan(plan, ud, it, &r[i]);
		any_failed |= r[i].status == EDIT_FAILED;
		i++;
	}
	if (any_failed) {
		/* refuse everything: never leave some nodes changed and others not */
		for (i = 0; i < n; i++)
			if (r[i].status == EDIT_CHANGED) {
				r[i].status = EDIT_SKIPPED;
				gerr_set(&r[i].err, GERR_CONFLICT, "not changed because other nodes failed validation");
			}
		free(cur);
		*results = r;
		*nresults = n;
		return 0;
	}
	if (dry == DRY_CLIENT) {
		free(cur);
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
			kube_query_add(&p, "fieldManager", "gpuctl");
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
	free(cur);
	*results = r;
	*nresults = n;
	return 0;
}

static void describe_change(struct buf *b, const cJSON *ch)
{
	const char *op = json_str(ch, "op");
	const char *key = json_str(ch, "key");
	const char *value = json_str(ch, "value");
	const char *effect = json_str(ch, "effect");
	char sign = !strcmp(op, "remove") ? '-' : !strcmp(op, "update") ? '~' : '+';
	buf_addf(b, " %c%s", sign, key);
	if (value && *value && strcmp(op, "remove"))
		buf_addf(b, "=%s", value);
	if (effect && *effect)
		buf_addf(b, ":%s", effect);
}

int edit_report(struct gctx *g, const char *kind, const char *state_field, const char *verb,
		enum dry_run dry, struct edit_result *r, size_t n)
{
	static const enum report_status statuses[] = {
		[EDIT_UNCHANGED] = REPORT_UNCHANGED, [EDIT_CHANGED] = REPORT_CHANGED,
		[EDIT_FAILED] = REPORT_FAILED, [EDIT_SKIPPED] = REPORT_SKIPPED,
	};
	/* the command's name ("label") is the last word of "gpuctl label" */
	const char *prog = g->prog ? strrchr(g->prog, ' ') : NULL;
	struct report rep;
	report_init(&rep, kind, prog ? prog + 1 : verb);
	rep.changed_word = verb;
	report_set(&rep, "dryRun", cJSON_CreateString(dry_run_name(dry)));
	int access = 0;
	for (size_t i = 0; i < n; i++) {
		struct buf line = BUF_INIT;
		if (r[i].status == EDIT_CHANGED && dry != DRY_NONE)
			buf_addf(&line, " (dry run: %s)", dry_run_name(dry));
		const cJSON *ch;
		if (r[i].status != EDIT_FAILED)
			cJSON_ArrayForEach(ch, r[i].changes)
				describe_change(&line, ch);
		if (r[i].err.code != GERR_OK) {
			/* one line per node: the first line of the message */
			const char *m = r[i].err.msg ? r[i].err.msg : "";
			buf_addf(&line, " %.*s", (int)strcspn(m, "\n"), m);
		}
		access |= r[i].status == EDIT_FAILED && gerr_is_cluster_access(&r[i].err);
		struct report_row *row = report_add(&rep, r[i].node, rep.command, statuses[r[i].status], r[i].err.hint, "%s",
						    line.len ? line.s + 1 : "");
		buf_release(&line);
		cJSON *d = cJSON_CreateObject();
		cJSON_AddItemToObject(d, "changes", r[i].changes ? cJSON_Duplicate(r[i].changes, 1) : cJSON_CreateArray());
		if (r[i].state && r[i].status != EDIT_FAILED)
			cJSON_AddItemToObject(d, state_field, cJSON_Duplicate(r[i].state, 1));
		if (r[i].err.code != GERR_OK)
			cJSON_AddItemToObject(d, "error", report_error_json(&r[i].err));
		report_row_details(row, d);
	}
	size_t failed = report_failed(&rep);
	if (g->output) {
		report_print_doc(stdout, &rep, g->output);
	} else {
		report_print_table(stdout, &rep, g->color);
		report_print_summary(stderr, &rep);
		/* the full message (with its hint) once, for the first failure */
		for (size_t i = 0; i < n; i++)
			if (r[i].status == EDIT_FAILED && (r[i].err.hint || strchr(r[i].err.msg, '\n'))) {
				gctx_print_error(g, &r[i].err);
				break;
			}
	}
	report_release(&rep);
	if (failed == 0)
		return 0;
	return access ? 3 : 1;
}

int edit_run(struct gctx *g, const struct node_target *t, edit_plan_fn plan, void *ud, enum dry_run dry,
	     const char *kind, const char *state_field, const char *verb)
{
	struct gerr err = GERR_INIT;
	struct kube_client *kc;
	cJSON *nodes = NULL;
	struct edit_result *r = NULL;
	size_t n = 0;
	if (gctx_kube(g, &kc, &err) < 0 || nodes_resolve(kc, t, &nodes, &err) < 0 ||
	    nodes_edit(kc, nodes, plan, ud, dry, &r, &n, &err) < 0) {
		gctx_print_error(g, &err);
		int code = err.code == GERR_NOTFOUND ? 1 : gerr_exit_code(&err);
		gerr_clear(&err);
		cJSON_Delete(nodes);
		return code;
	}
	int code = edit_report(g, kind, state_field, verb, dry, r, n);
	edit_results_free(r, n);
	cJSON_Delete(nodes);
	if (out_finish(&err) < 0) {
		gctx_print_error(g, &err);
		gerr_clear(&err);
		return 1;
	}
	return code;
}

int edit_cmd_main(struct gctx *g, int argc, char **argv, const struct edit_cmd *c, void *plan)
{
	const char *selector = NULL, *dry_s = NULL;
	int overwrite = 0, all = 0;
	struct opt opts[] = {
		{ "selector", 'l', OPT_STRING, &selector, "SELECTOR", "act on the nodes matching this label selector", NULL },
		{ "all", 0, OPT_BOOL, &all, NULL, "act on every node, GPU or not", NULL },
		{ "overwrite", 0, OPT_BOOL, &overwrite, NULL, c->overwrite_help, NULL },
		{ "dry-run", 0, OPT_OPTARG, &dry_s, "MODE", "client (nothing sent) or server (validated, not saved)", "client" },
		OPT_END,
	};
	struct gerr err = GERR_INIT;
	char **rest;
	int nrest, help, code = 0;
	struct node_target t = { 0 };
	enum dry_run dry = DRY_NONE;
	static const char *const formats[] = { "json", "yaml", NULL };
	if (opt_parse(g, argc, argv, opts, c->usage, c->summary, &rest, &nrest, &help, &err) < 0)
		goto usage_error;
	if (help)
		goto out;
	if (gctx_check_output(g, formats, &err) < 0 || parse_dry_run(dry_s, &dry, &err) < 0)
		goto usage_error;
	t.names = xcalloc((size_t)nrest + 1, sizeof(char *));
	for (int i = 0; i < nrest; i++) {
		if (!c->is_op(rest[i]))
			t.names[t.nnames++] = rest[i];
		else if (c->add_op(plan, rest[i], &err) < 0)
			goto usage_error;
	}
	if (all && (t.nnames || selector)) {
		gerr_set(&err, GERR_USAGE, "--all cannot be combined with node names or -l");
		goto usage_error;
	}
	t.selector = selector;
	t.all = all;
	if (c->check_ops(plan, &err) < 0 || node_target_check(&t, &err) < 0)
		goto usage_error;
	if (c->count_ops(plan) == 0 && (gctx_load_config(g, &err) < 0 || c->default_ops(g, plan, &err) < 0)) {
		gctx_print_error(g, &err);
		code = 2;
		goto out;
	}
	c->set_overwrite(plan, overwrite);
	code = edit_run(g, &t, c->plan, plan, dry, c->kind, c->state_field, c->verb);
	goto out;
usage_error:
	gctx_print_error(g, &err);
	fprintf(stderr, "usage: %s\nRun 'gpuctl help %s' for details.\n", c->usage, c->name);
	code = 2;
out:
	gerr_clear(&err);
	free(t.names);
	return code;
}
