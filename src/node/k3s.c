/* k3s and rke2 generate containerd's config.toml at every start, from
 * config.toml.tmpl when it exists: the nvidia runtime goes into the
 * template, through the same change set (lock, backup, checked write,
 * proven rollback) as every other file gpuctl changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/render.h"
#include "gpuctl/buf.h"
#include "gpuctl/node.h"
#include "prep.h"

static const char k3s_base_line[] = "{{ template \"base\" . }}";

/* The unit of a k3s/rke2 node: the first of FLAVOUR-agent, FLAVOUR-server,
 * FLAVOUR that is active.  Only those three names are taken from the node's
 * answer (it reaches systemctl quoted all the same). */
char *k3s_active_unit(struct prep_ctx *x, const char *fl)
{
	char *cand[3] = { xasprintf("%s-agent", fl), xasprintf("%s-server", fl), xstrdup(fl) };
	struct buf cmd = BUF_INIT, u = BUF_INIT;
	buf_adds(&cmd, "for u in");
	for (int i = 0; i < 3; i++) {
		buf_addc(&cmd, ' ');
		sh_quote(&cmd, cand[i]);
	}
	buf_adds(&cmd, "; do systemctl is-active --quiet \"$u\" && { echo \"$u\"; break; }; done");
	int status = 0;
	struct gerr keep = GERR_INIT;
	gerr_move(&keep, &x->r->err);
	prep_run(x, cmd.s, &u, NULL, &status);
	gerr_clear(&x->r->err);
	gerr_move(&x->r->err, &keep);
	u.s[strcspn(u.s, "\n")] = '\0';
	char *found = NULL;
	for (int i = 0; i < 3; i++) {
		if (!found && !strcmp(u.s, cand[i]))
			found = cand[i];
		else
			free(cand[i]);
	}
	buf_release(&cmd);
	buf_release(&u);
	return found;
}

/* A word of safe characters stays bare (the step reads "systemctl restart
 * k3s-agent"); anything else is quoted. */
static void quote_word(struct buf *b, const char *w)
{
	if (*w && strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@") == strlen(w))
		buf_adds(b, w);
	else
		sh_quote(b, w);
}

int k3s_prepare(struct prep_ctx *x, const struct probe_result *p, const struct containerd_opts *o, const char *rt)
{
	struct prep_result *r = x->r;
	const char *fl = cr_flavour_name(p->flavour);
	const char *tmpl = p->config_path;
	size_t tl = tmpl ? strlen(tmpl) : 0;
	r->status = PREP_FAILED;
	if (tl < 5 || strcmp(tmpl + tl - 5, ".tmpl")) {
		gerr_set(&r->err, GERR_CONFIG, "%s node: the containerd config path %s should be the .tmpl template", fl,
			 tmpl ? tmpl : "(none)");
		return -1;
	}
	char *gen = xstrndup(tmpl, tl - 5);
	char *dir = prep_dir(tmpl);
	char *restart_def = NULL, *check_def = NULL, *unit = NULL;
	struct buf gtext = BUF_INIT, ttext = BUF_INIT;
	int rc = -1;
	r->method = xstrdup("k3s-template");
	if (prep_begin(x, o, dir) < 0)
		goto out;
	if (!o->restart_command || !o->check_command) {
		/* a k3s agent node runs k3s-agent, a server k3s (rke2: rke2-agent / rke2-server) */
		unit = k3s_active_unit(x, p->flavour == CR_RKE2 ? "rke2" : "k3s");
		struct buf b = BUF_INIT;
		buf_adds(&b, "systemctl restart ");
		quote_word(&b, unit ? unit : p->flavour == CR_RKE2 ? "rke2-agent" : "k3s");
		restart_def = buf_detach(&b);
		buf_adds(&b, "systemctl is-active --quiet ");
		quote_word(&b, unit ? unit : p->flavour == CR_RKE2 ? "rke2-agent" : "k3s");
		check_def = buf_detach(&b);
	}
	const char *restart = o->restart_command ? o->restart_command : restart_def;
	const char *check = o->check_command ? o->check_command : check_def;
	int gen_ok = prep_read(x, gen, &gtext, NULL);
	int have_tmpl = gen_ok < 0 ? -1 : prep_read(x, tmpl, &ttext, NULL);
	if (gen_ok < 0 || have_tmpl < 0)
		goto out;
	int v3 = gen_ok && strstr(gtext.s, "version = 3") != NULL;
	int major = v3 ? 2 : 1;
	if (gen_ok && containerd_runtime_configured(gtext.s, major, rt, o->default_runtime)) {
		r->status = PREP_UNCHANGED;
		free(r->method);
		r->method = xstrdup("none");
		prep_step(x, "the nvidia runtime is already in %s", gen);
		rc = 0;
		goto out;
	}
	if (have_tmpl && !strstr(ttext.s, k3s_base_line)) {
		gerr_set(&r->err, GERR_CONFIG,
			 "%s is a custom template (without %s); gpuctl will not rewrite it: add the nvidia runtime there yourself",
			 tmpl, k3s_base_line);
		goto out;
	}
	if (o->dry_run) {
		r->status = PREP_CHANGED;
		prep_step(x, "would add the nvidia runtime to %s (dry run: nothing written)", tmpl);
		rc = 0;
		goto out;
	}
	const char *bak = NULL;
	struct gerr e = GERR_INIT;
	if (remote_change_backup(x->chg, tmpl, &bak, &e) < 0) {
		gerr_move(&r->err, &e);
		goto out;
	}
	if (bak) {
		r->backup = xstrdup(bak);
		prep_step(x, "backed up to %s", bak);
	}
	struct buf content = BUF_INIT;
	if (have_tmpl) {
		buf_add(&content, ttext.s, ttext.len);
		if (content.len && content.s[content.len - 1] != '\n')
			buf_addc(&content, '\n');
	} else {
		buf_addf(&content, "%s\n", k3s_base_line);
	}
	/* the nvidia tables only: the base config keeps everything else */
	struct render_ctx rctx = { .dir = o->templates_dir };
	char *tables = NULL;
	if (containerd_dropin(&rctx, major, rt, 0, NULL, &tables, &r->err) < 0) {
		buf_release(&content);
		goto rollback;
	}
	const char *t = strstr(tables, "[plugins.");
	buf_addf(&content, "\n# Added by gpuctl: the NVIDIA container runtime.\n%s", t ? t : tables);
	if (o->default_runtime)
		buf_addf(&content, "\n[plugins.\"%s\".containerd]\n  default_runtime_name = \"nvidia\"\n",
			 containerd_cri_plugin(major));
	free(tables);
	int wrc = prep_write(x, tmpl, content.s, (struct remote_mode){ 0644, 0 });
	buf_release(&content);
	if (wrc < 0)
		goto rollback;
	prep_step(x, "wrote %s", tmpl);
	int rs = 1;
	if (prep_run(x, restart, NULL, NULL, &rs) < 0)
		goto rollback;
	prep_step(x, "ran: %s", restart);
	buf_reset(&gtext);
	if (rs != 0 || !prep_service_ok(x, check) || prep_read(x, gen, &gtext, NULL) != 1 ||
	    !containerd_runtime_configured(gtext.s, major, rt, o->default_runtime)) {
		if (r->err.code == GERR_OK)
			gerr_set(&r->err, GERR_API, "%s did not come back with the nvidia runtime in %s after `%s` (exit %d)", fl,
				 gen, restart, rs);
		goto rollback;
	}
	prep_step(x, "%s regenerated its containerd config with the nvidia runtime", fl);
	r->status = PREP_CHANGED;
	rc = 0;
	goto out;
rollback:
	/* k3s regenerates config.toml at start: restart it on the old template */
	prep_rollback(x, restart, check, "template", fl);
out:
	prep_end(x);
	free(gen);
	free(dir);
	free(unit);
	free(restart_def);
	free(check_def);
	buf_release(&gtext);
	buf_release(&ttext);
	return rc;
}
