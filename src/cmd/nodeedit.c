/* The output of the node edit engine shared by label and taint (the engine
 * itself is src/kube/nodes.c), and their shared command body. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "gpuctl/json.h"
#include "gpuctl/buf.h"
#include "gpuctl/kube.h"
#include "gpuctl/labels.h"
#include "gpuctl/out.h"

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
	size_t changed = 0, unchanged = 0, failed = 0, skipped = 0;
	int access = 0;
	for (size_t i = 0; i < n; i++) {
		switch (r[i].status) {
		case EDIT_CHANGED: changed++; break;
		case EDIT_UNCHANGED: unchanged++; break;
		case EDIT_SKIPPED: skipped++; break;
		case EDIT_FAILED:
			failed++;
			access |= gerr_is_cluster_access(&r[i].err);
			break;
		}
	}
	static const char *const status_names[] = { "unchanged", "changed", "failed", "skipped" };
	if (g->output) {
		cJSON *doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "apiVersion", "gpuctl.io/v1alpha1");
		cJSON_AddStringToObject(doc, "kind", kind);
		cJSON_AddStringToObject(doc, "dryRun", dry_run_name(dry));
		cJSON *arr = cJSON_AddArrayToObject(doc, "nodes");
		for (size_t i = 0; i < n; i++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", r[i].node);
			cJSON_AddStringToObject(o, "result", status_names[r[i].status]);
			cJSON_AddItemToObject(o, "changes",
					      r[i].changes ? cJSON_Duplicate(r[i].changes, 1) : cJSON_CreateArray());
			if (r[i].state && r[i].status != EDIT_FAILED)
				cJSON_AddItemToObject(o, state_field, cJSON_Duplicate(r[i].state, 1));
			if (r[i].err.code != GERR_OK) {
				cJSON *e = cJSON_AddObjectToObject(o, "error");
				cJSON_AddStringToObject(e, "reason", gerr_code_name(r[i].err.code));
				if (r[i].err.http_status)
					cJSON_AddNumberToObject(e, "httpStatus", (double)r[i].err.http_status);
				cJSON_AddStringToObject(e, "message", r[i].err.msg);
				if (r[i].err.hint)
					cJSON_AddStringToObject(e, "hint", r[i].err.hint);
			}
			cJSON_AddItemToArray(arr, o);
		}
		cJSON *s = cJSON_AddObjectToObject(doc, "summary");
		cJSON_AddNumberToObject(s, "total", (double)n);
		cJSON_AddNumberToObject(s, "changed", (double)changed);
		cJSON_AddNumberToObject(s, "unchanged", (double)unchanged);
		cJSON_AddNumberToObject(s, "failed", (double)failed);
		cJSON_AddNumberToObject(s, "skipped", (double)skipped);
		out_doc(stdout, doc, g->output);
		cJSON_Delete(doc);
	} else {
		size_t w = 4;
		for (size_t i = 0; i < n; i++)
			if (strlen(r[i].node) > w)
				w = strlen(r[i].node);
		for (size_t i = 0; i < n; i++) {
			struct buf line = BUF_INIT;
			buf_addf(&line, "node/%-*s  ", (int)w, r[i].node);
			fputs(line.s, stdout);
			buf_reset(&line);
			enum out_color c = r[i].status == EDIT_CHANGED ? OUT_GREEN
					   : r[i].status == EDIT_FAILED ? OUT_RED
					   : r[i].status == EDIT_SKIPPED ? OUT_YELLOW : OUT_DIM;
			const char *word = r[i].status == EDIT_CHANGED ? verb : status_names[r[i].status];
			char *padded = xasprintf("%-9s", word);
			out_colored(stdout, g->color, c, padded);
			free(padded);
			if (r[i].status == EDIT_CHANGED && dry != DRY_NONE)
				buf_addf(&line, " (dry run: %s)", dry_run_name(dry));
			const cJSON *ch;
			if (r[i].status != EDIT_FAILED)
				cJSON_ArrayForEach(ch, r[i].changes)
					describe_change(&line, ch);
			if (r[i].err.code != GERR_OK) {
				/* one line per node: the first line of the message */
				const char *nl = strchr(r[i].err.msg, '\n');
				buf_adds(&line, " ");
				buf_add(&line, r[i].err.msg, nl ? (size_t)(nl - r[i].err.msg) : strlen(r[i].err.msg));
			}
			fputs(line.s, stdout);
			fputc('\n', stdout);
			buf_release(&line);
		}
		fprintf(stderr, "%zu node(s): %zu %s, %zu unchanged, %zu failed%s\n", n, changed, verb,
			unchanged, failed, skipped ? ", others skipped" : "");
		/* the full message (with its hint) once, for the first failure */
		for (size_t i = 0; i < n; i++)
			if (r[i].status == EDIT_FAILED && (r[i].err.hint || strchr(r[i].err.msg, '\n'))) {
				gctx_print_error(g, &r[i].err);
				break;
			}
	}
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
