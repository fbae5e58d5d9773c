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
#include "gpuctl/report.h"

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
		struct report_row *row = report_add(&rep, r[i].node, rep.command, statuses[r[i].status], r[i].err.hint, "%s",
						    line.len ? line.s + 1 : "");
		row->code = r[i].status == EDIT_FAILED ? r[i].err.code : GERR_OK;
		buf_release(&line);
		if (!g->output) {
			/* the table shows the message only: on 20,000 nodes the
			 * details would be most of the memory */
			cJSON_Delete(r[i].changes);
			cJSON_Delete(r[i].state);
			r[i].changes = r[i].state = NULL;
			continue;
		}
		cJSON *d = cJSON_CreateObject();
		/* moved, not copied: on thousands of nodes a second copy is most of the memory */
		cJSON_AddItemToObject(d, "changes", r[i].changes ? r[i].changes : cJSON_CreateArray());
		r[i].changes = NULL;
		if (r[i].state && r[i].status != EDIT_FAILED && state_field) {
			cJSON_AddItemToObject(d, state_field, r[i].state);
			r[i].state = NULL;
		} else if (r[i].state && r[i].status != EDIT_FAILED) {
			/* no state_field: the state is an object of them (label --taint) */
			cJSON *m;
			while ((m = r[i].state->child)) {
				cJSON_DetachItemViaPointer(r[i].state, m);
				cJSON_AddItemToObject(d, m->string, m);
			}
		}
		if (r[i].err.code != GERR_OK)
			cJSON_AddItemToObject(d, "error", report_error_json(&r[i].err));
		report_row_details(row, d);
	}
	int code = report_exit_status(&rep, NULL);
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
	return code;
}

/* The planner of a command whose report is the table: the state after the
 * edit is only in -o json/yaml, so it goes as soon as a node is planned (on
 * 20,000 nodes it would be a third of the memory). */
struct tabled {
	edit_plan_fn plan;
	void *ud;
};

static int plan_for_table(void *ud, const cJSON *node, struct edit_result *r)
{
	const struct tabled *t = ud;
	int rc = t->plan(t->ud, node, r);
	cJSON_Delete(r->state);
	r->state = NULL;
	return rc;
}

int edit_run(struct gctx *g, const struct node_target *t, edit_plan_fn plan, void *ud, enum dry_run dry,
	     const char *kind, const char *state_field, const char *verb)
{
	struct tabled tab = { plan, ud };
	if (!g->output) {
		plan = plan_for_table;
		ud = &tab;
	}
	struct gerr err = GERR_INIT;
	struct kube_client *kc;
	cJSON *nodes = NULL;
	struct edit_result *r = NULL;
	size_t n = 0;
	if (gctx_kube(g, &kc, &err) < 0 || nodes_resolve(kc, t, &nodes, &err) < 0 ||
	    nodes_edit_consume(kc, nodes, plan, ud, dry, &r, &n, &err) < 0) {
		gctx_print_error(g, &err);
		int code = report_exit_status(NULL, &err);
		gerr_clear(&err);
		cJSON_Delete(nodes);
		return code;
	}
	cJSON_Delete(nodes); /* the results say all the report needs */
	int code = edit_report(g, kind, state_field, verb, dry, r, n);
	edit_results_free(r, n);
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
		OPT_END, OPT_END, OPT_END,
	};
	for (size_t i = 0, at = 4; c->extra && c->extra[i].long_name && i < 2; i++)
		opts[at++] = c->extra[i];
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
	t.parts = c->parts;
	if (c->check_ops(plan, &err) < 0 || node_target_check(&t, &err) < 0)
		goto usage_error;
	if (c->count_ops(plan) == 0 && (gctx_load_config(g, &err) < 0 || c->default_ops(g, plan, &err) < 0)) {
		gctx_print_error(g, &err);
		code = 2;
		goto out;
	}
	if (c->complete && c->complete(g, plan, &err) < 0) {
		if (err.code == GERR_USAGE)
			goto usage_error;
		gctx_print_error(g, &err);
		code = 2;
		goto out;
	}
	if (c->complete && c->check_ops(plan, &err) < 0)
		goto usage_error;
	unsigned more = c->more_parts ? c->more_parts(plan) : 0;
	t.parts |= more;
	c->set_overwrite(plan, overwrite);
	/* a flag that adds another kind of edit makes the state an object of both */
	code = edit_run(g, &t, c->plan, plan, dry, c->kind, more ? NULL : c->state_field, c->verb);
	goto out;
usage_error:
	code = gctx_usage_error(g, &err, c->usage, c->name);
out:
	gerr_clear(&err);
	free(t.names);
	return code;
}
