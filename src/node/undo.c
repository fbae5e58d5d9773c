/* Undoing what deploy did to a node's containerd (gpuctl cleanup): find
 * gpuctl's own work (the conf.d drop-in and the imports line it added, or
 * nvidia-ctk's rewrite of config.toml backed up as <file>.gpuctl-backup-*),
 * put back what was there before, verify with `containerd config dump`,
 * restart, and roll back on failure.  Everything runs in one change set of
 * remote.c (the node's lock, backups, atomic writes, hash-proven rollback);
 * the backups gpuctl made are left in place and reported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/node.h"
#include "gpuctl/owned.h"
#include "gpuctl/toml.h"
#include "prep.h"

/* ---- pure parts ---- */

char *containerd_drop_import(const char *config, const char *glob)
{
	char *q = xasprintf("\"%s\"", glob);
	const char *p = config, *hit = NULL;
	/* the imports line: a top-level key, before the first table */
	while (*p) {
		const char *l = p + strspn(p, " \t");
		if (*l == '[')
			break;
		size_t n = strcspn(p, "\n");
		if (!strncmp(l, "imports", 7) && l[7 + strspn(l + 7, " \t")] == '=') {
			char *line = xstrndup(p, n);
			char *at = strstr(line, q);
			if (at)
				hit = p + (at - line);
			free(line);
			break;
		}
		p += n;
		if (*p)
			p++;
	}
	if (!hit) {
		free(q);
		return NULL;
	}
	const char *line_end = hit + strcspn(hit, "\n");
	const char *start = hit, *end = hit + strlen(q);
	/* take the glob with one separating comma (the one before it, else the one after) */
	const char *b = start;
	while (b > p && (b[-1] == ' ' || b[-1] == '\t'))
		b--;
	if (b > p && b[-1] == ',') {
		start = b - 1;
	} else {
		const char *a = end + strspn(end, " \t");
		if (a < line_end && *a == ',')
			end = a + 1 + strspn(a + 1, " \t");
	}
	struct buf out = BUF_INIT;
	buf_add(&out, config, (size_t)(start - config));
	buf_adds(&out, end);
	free(q);
	/* an imports list left empty goes, line and all */
	const char *ls = out.s + (p - config);
	size_t ll = strcspn(ls, "\n");
	char *line = xstrndup(ls, ll);
	const char *open = strchr(line, '[');
	int empty = open && open[1 + strspn(open + 1, " \t")] == ']';
	free(line);
	if (empty) {
		size_t off = (size_t)(ls - out.s), cut = ll + (ls[ll] == '\n');
		memmove(out.s + off, out.s + off + cut, out.len - off - cut + 1);
		out.len -= cut;
	}
	return buf_detach(&out);
}

char *containerd_dump_without_nvidia(const char *dump, int major)
{
	char *nv = containerd_cri_table(major, ".containerd.runtimes.nvidia");
	char *cont = containerd_cri_table(major, ".containerd");
	struct buf b = BUF_INIT;
	int skip = 0, in_cont = 0;
	for (const char *p = dump; *p;) {
		size_t n = strcspn(p, "\n");
		size_t ind = strspn(p, " \t");
		char *h = n > ind && p[ind] == '[' ? toml_header(p + ind, n - ind) : NULL;
		if (h) {
			/* nvidia, and the nvidia-cdi / nvidia-legacy runtimes some toolkits add beside it */
			size_t nl = strlen(nv);
			skip = !strncmp(h, nv, nl) && strchr(".-_", h[nl]);
			in_cont = !strcmp(h, cont);
			free(h);
		}
		/* blank lines carry nothing (containerd's dump and nvidia-ctk space tables differently) */
		if (!skip && n > ind && !(in_cont && !strncmp(p + ind, "default_runtime_name", 20))) {
			buf_add(&b, p, n);
			buf_addc(&b, '\n');
		}
		p += n;
		if (*p)
			p++;
	}
	free(nv);
	free(cont);
	return buf_detach(&b);
}

/* ---- the node ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The gpuctl backups of path on the node, oldest first (the names carry the
 * UTC time); *n of them. */
static char **list_backups(struct prep_ctx *x, const char *path, size_t *n)
{
	struct buf cmd = BUF_INIT, out = BUF_INIT;
	buf_adds(&cmd, "for f in ");
	sh_quote(&cmd, path);
	buf_adds(&cmd, GPUCTL_BACKUP_INFIX "*; do [ -f \"$f\" ] && printf '%s\\n' \"$f\"; done; true");
	int status = 1;
	char **v = NULL;
	*n = 0;
	if (prep_run(x, cmd.s, &out, NULL, &status) == 0 && status == 0) {
		for (const char *p = out.s; *p;) {
			size_t l = strcspn(p, "\n");
			if (l) {
				v = xrealloc(v, (*n + 1) * sizeof(*v));
				v[(*n)++] = xstrndup(p, l);
			}
			p += l;
			if (*p)
				p++;
		}
	}
	if (*n)
		qsort(v, *n, sizeof(*v), cmp_str);
	buf_release(&cmd);
	buf_release(&out);
	return v;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* `containerd --config PATH config dump` into out (reset first); 1 when it
 * worked, 0 when containerd refused, -1 on a transport error. */
static int dump_of(struct prep_ctx *x, const char *path, struct buf *out)
{
	struct buf cmd = BUF_INIT;
	buf_adds(&cmd, "containerd --config ");
	sh_quote(&cmd, path);
	buf_adds(&cmd, " config dump");
	buf_reset(out);
	int status = 1;
	int rc = prep_run(x, cmd.s, out, NULL, &status);
	buf_release(&cmd);
	return rc < 0 ? -1 : status == 0;
}

/* containerd 1.x lists the file it read in the dump's imports: a backup's
 * dump names the backup where the live one names config.toml. */
static void dump_as(struct buf *dump, const char *path, const char *as)
{
	struct buf q = BUF_INIT, with = BUF_INIT, b = BUF_INIT;
	buf_addf(&q, "\"%s\"", path);
	buf_addf(&with, "\"%s\"", as);
	for (const char *p = dump->s, *hit; (hit = strstr(p, q.s)); p = hit + q.len) {
		buf_add(&b, p, (size_t)(hit - p));
		buf_adds(&b, with.s);
		if (!strstr(hit + q.len, q.s)) {
			buf_adds(&b, hit + q.len);
			buf_reset(dump);
			buf_adds(dump, b.s);
			break;
		}
	}
	buf_release(&q);
	buf_release(&with);
	buf_release(&b);
}

static char *default_runtime(const char *dump, int major)
{
	char *t = containerd_cri_table(major, ".containerd");
	char *v = toml_get_string(dump, t, "default_runtime_name");
	free(t);
	return v;
}

/* What gpuctl did, and what puts it back. */
struct undo_plan {
	int dropin;          /* remove the drop-in */
	char *restore;       /* config.toml's content to write back (a backup's), or NULL */
	const char *from;    /* the backup it comes from (NULL: the glob taken out of the imports) */
	int remove_cfg;      /* gpuctl created config.toml: remove it */
	char *before_dump;   /* the dump of what is restored, for the verification; NULL: none known */
};

static void undo_plan_release(struct undo_plan *u)
{
	free(u->restore);
	free(u->before_dump);
}

/* Drop-in method: config.toml back to the backup that differs from it by
 * gpuctl's import only, else the glob taken out of the imports (a person's
 * later changes kept). */
static int plan_dropin(struct prep_ctx *x, const char *cfg, const char *cur, int have_cfg, const char *glob,
		       char **bk, size_t nbk, struct undo_plan *u)
{
	u->dropin = 1;
	for (size_t i = nbk; i-- > 0;) {
		struct buf t = BUF_INIT;
		if (prep_read(x, bk[i], &t, NULL) < 0) {
			buf_release(&t);
			return -1;
		}
		int match = !strcmp(t.s, cur);
		for (int v = 2; !match && v <= 3; v++) {
			char *with = containerd_add_import(t.s, glob, v);
			match = with && !strcmp(with, cur);
			free(with);
		}
		if (match) {
			if (strcmp(t.s, cur)) {
				u->restore = buf_detach(&t);
				u->from = bk[i];
			}
			buf_release(&t);
			return 0;
		}
		buf_release(&t);
	}
	if (!have_cfg)
		return 0;
	for (int v = 2; v <= 3; v++) {
		char *made = containerd_add_import("", glob, v);
		int same = !strcmp(made, cur);
		free(made);
		if (same && !nbk) {
			u->remove_cfg = 1; /* no backup: config.toml did not exist before gpuctl wrote it */
			return 0;
		}
	}
	u->restore = containerd_drop_import(cur, glob);
	(void)cfg;
	return 0;
}

/* nvidia-ctk method: the backups are walked from the newest while their
 * dumps equal the current one but for the nvidia runtime (gpuctl's runs of
 * one series); the oldest of them is what was there before.  When even the
 * newest differs, a person changed the file since: refused unless force. */
static int plan_ctk(struct prep_ctx *x, const char *cfg, const char *cur_dump, int major, int force, char **bk,
		    size_t nbk, struct undo_plan *u)
{
	struct prep_result *r = x->r;
	char *want = containerd_dump_without_nvidia(cur_dump, major);
	ssize_t pick = -1;
	struct buf d = BUF_INIT;
	for (size_t i = nbk; i-- > 0;) {
		int ok = dump_of(x, bk[i], &d);
		if (ok < 0) {
			free(want);
			buf_release(&d);
			return -1;
		}
		if (ok)
			dump_as(&d, bk[i], cfg);
		char *s = ok ? containerd_dump_without_nvidia(d.s, major) : NULL;
		int same = s && !strcmp(s, want);
		free(s);
		if (!same)
			break;
		pick = (ssize_t)i;
	}
	free(want);
	buf_release(&d);
	if (pick < 0 && !force) {
		gerr_set(&r->err, GERR_CONFLICT,
			 "%s was changed since gpuctl wrote it (its configuration differs from the one in %s by more than the "
			 "nvidia runtime); left untouched",
			 cfg, bk[nbk - 1]);
		gerr_hint(&r->err, "restore it by hand from %s, or run cleanup with --force to restore that backup", bk[nbk - 1]);
		return -1;
	}
	if (pick < 0)
		pick = (ssize_t)nbk - 1;
	struct buf t = BUF_INIT;
	if (prep_read(x, bk[pick], &t, NULL) < 0) {
		buf_release(&t);
		return -1;
	}
	u->restore = buf_detach(&t);
	u->from = bk[pick];
	(void)cfg;
	return 0;
}

/* A step with two strings. */
static void step2(struct prep_ctx *x, const char *fmt, const char *a, const char *b)
{
	char *m = xasprintf(fmt, a, b);
	prep_step(x, "%s", m);
	free(m);
}

static void note_backups(struct prep_ctx *x, char **bk, size_t nbk)
{
	if (!nbk)
		return;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < nbk; i++)
		buf_addf(&b, "%s%s", i ? ", " : "", bk[i]);
	prep_step(x, "left gpuctl's backups in place: %s", b.s);
	buf_release(&b);
}

/* k3s/rke2: the template loses what follows gpuctl's marker line: back to
 * the backup it was made from, or removed when gpuctl created it. */
static int k3s_undo(struct prep_ctx *x, const struct probe_result *p, const struct containerd_opts *o, int force)
{
	static const char base[] = "{{ template \"base\" . }}\n";
	struct prep_result *r = x->r;
	const char *fl = cr_flavour_name(p->flavour);
	const char *tmpl = p->config_path;
	size_t tl = tmpl ? strlen(tmpl) : 0;
	if (tl < 5 || strcmp(tmpl + tl - 5, ".tmpl")) {
		gerr_set(&r->err, GERR_CONFIG, "%s node: the containerd config path %s should be the .tmpl template", fl,
			 tmpl ? tmpl : "(none)");
		return -1;
	}
	char *gen = xstrndup(tmpl, tl - 5), *dir = prep_dir(tmpl), *unit = NULL, *restart_def = NULL, *check_def = NULL;
	char *restore = NULL, **bk = NULL;
	const char *from = NULL;
	size_t nbk = 0;
	int rc = -1, restarted = 0, remove = 0;
	struct buf t = BUF_INIT, g = BUF_INIT;
	struct gerr e = GERR_INIT;
	r->method = xstrdup("k3s-template");
	if (prep_begin(x, o, dir) < 0)
		goto out;
	int have = prep_read(x, tmpl, &t, NULL);
	if (have < 0)
		goto out;
	const char *m = have ? strstr(t.s, "\n" GPUCTL_K3S_MARKER "\n") : NULL;
	bk = list_backups(x, tmpl, &nbk);
	if (!m) {
		r->status = PREP_UNCHANGED;
		free(r->method);
		r->method = xstrdup("none");
		prep_step(x, "nothing of gpuctl's in %s", tmpl);
		note_backups(x, bk, nbk);
		rc = 0;
		goto out;
	}
	char *prefix = xstrndup(t.s, (size_t)(m - t.s));
	for (size_t i = nbk; !from && i-- > 0;) {
		struct buf b = BUF_INIT;
		if (prep_read(x, bk[i], &b, NULL) < 0) {
			buf_release(&b);
			free(prefix);
			goto out;
		}
		/* deploy wrote the backup's text (a newline added when it lacked one), then the marker */
		if (!strcmp(b.s, prefix) || (b.len && b.s[b.len - 1] != '\n' && !strncmp(b.s, prefix, b.len) &&
					     !strcmp(prefix + b.len, "\n"))) {
			restore = buf_detach(&b);
			from = bk[i];
		}
		buf_release(&b);
	}
	if (!from && !nbk && !strcmp(prefix, base)) {
		remove = 1;
	} else if (!from && !force) {
		gerr_set(&r->err, GERR_CONFLICT, "%s was changed since gpuctl wrote it (no backup matches what precedes \"%s\"); left untouched",
			 tmpl, GPUCTL_K3S_MARKER);
		gerr_hint(&r->err, "remove the nvidia runtime tables after that line by hand, or run cleanup with --force to cut them");
		free(prefix);
		goto out;
	} else if (!from) {
		restore = xstrdup(prefix);
	}
	free(prefix);
	if (from)
		r->backup = xstrdup(from);
	if (o->dry_run) {
		r->status = PREP_CHANGED;
		if (remove)
			prep_step(x, "would remove %s (gpuctl created it) and restart (dry run: nothing changed)", tmpl);
		else if (from)
			step2(x, "would restore %s from %s and restart (dry run: nothing changed)", tmpl, from);
		else
			prep_step(x, "would cut gpuctl's tables out of %s and restart (dry run: nothing changed)", tmpl);
		rc = 0;
		goto out;
	}
	if (!o->restart_command || !o->check_command) {
		unit = k3s_active_unit(x, p->flavour == CR_RKE2 ? "rke2" : "k3s");
		const char *u = unit ? unit : p->flavour == CR_RKE2 ? "rke2-agent" : "k3s";
		struct buf b = BUF_INIT;
		buf_adds(&b, "systemctl restart ");
		sh_quote(&b, u);
		restart_def = buf_detach(&b);
		buf_adds(&b, "systemctl is-active --quiet ");
		sh_quote(&b, u);
		check_def = buf_detach(&b);
	}
	const char *restart = o->restart_command ? o->restart_command : restart_def;
	const char *check = o->check_command ? o->check_command : check_def;
	if (remove ? remote_change_remove(x->chg, tmpl, &e) < 0 : remote_change_write(x->chg, tmpl, restore, strlen(restore),
										 (struct remote_mode){ 0644, 0 }, &e) < 0) {
		gerr_move(&r->err, &e);
		goto rollback;
	}
	if (remove)
		prep_step(x, "removed %s (gpuctl had created it)", tmpl);
	else if (from)
		step2(x, "restored %s from %s", tmpl, from);
	else
		prep_step(x, "cut gpuctl's tables out of %s", tmpl);
	int rs = 1;
	restarted = 1;
	if (prep_run(x, restart, NULL, NULL, &rs) < 0)
		goto rollback;
	prep_step(x, "ran: %s", restart);
	if (rs != 0 || !prep_service_ok(x, check) || prep_read(x, gen, &g, NULL) != 1 ||
	    strstr(g.s, GPUCTL_K3S_MARKER)) {
		if (r->err.code == GERR_OK)
			gerr_set(&r->err, GERR_API, "%s did not come back without gpuctl's tables in %s after `%s` (exit %d)", fl,
				 gen, restart, rs);
		goto rollback;
	}
	prep_step(x, "%s regenerated its containerd config without gpuctl's tables", fl);
	note_backups(x, bk, nbk);
	r->status = PREP_CHANGED;
	rc = 0;
	goto out;
rollback:
	prep_rollback(x, restarted ? restart : NULL, check, "template", fl);
out:
	prep_end(x);
	free_strv(bk, nbk);
	free(restore);
	free(gen);
	free(dir);
	free(unit);
	free(restart_def);
	free(check_def);
	buf_release(&t);
	buf_release(&g);
	return rc;
}

int containerd_undo(struct ssh_conn *c, const struct probe_result *p, const struct containerd_opts *o, int force,
		    struct prep_result *r)
{
	memset(r, 0, sizeof(*r));
	r->steps = cJSON_CreateArray();
	r->status = PREP_FAILED;
	struct prep_ctx x = { c, r, NULL };
	if (cr_flavour_embedded(p->flavour))
		return k3s_undo(&x, p, o, force);
	const char *restart = o->restart_command ? o->restart_command : "systemctl restart containerd";
	const char *check = o->check_command ? o->check_command : "systemctl is-active --quiet containerd";
	const char *cfg = p->config_path ? p->config_path : "/etc/containerd/config.toml";
	int major = p->containerd_major ? p->containerd_major : 1;
	char *dir = prep_dir(cfg);
	char *dropin = xasprintf("%s/conf.d/%s", dir, GPUCTL_DROPIN_NAME);
	char *glob = xasprintf("%s/conf.d/*.toml", dir);
	struct buf ptext = BUF_INIT, dtext = BUF_INIT, dump = BUF_INIT;
	struct undo_plan u = { 0 };
	char **bk = NULL;
	size_t nbk = 0;
	int rc = -1, restarted = 0;
	struct gerr e = GERR_INIT;

	if (prep_begin(&x, o, dir) < 0)
		goto out;
	int have_cfg = prep_read(&x, cfg, &ptext, NULL);
	int have_dropin = have_cfg < 0 ? -1 : prep_read(&x, dropin, &dtext, NULL);
	if (have_cfg < 0 || have_dropin < 0)
		goto out;
	bk = list_backups(&x, cfg, &nbk);
	if (have_dropin) {
		r->method = xstrdup("drop-in");
		if (plan_dropin(&x, cfg, ptext.s, have_cfg, glob, bk, nbk, &u) < 0)
			goto out;
	} else {
		int ok = have_cfg ? dump_of(&x, cfg, &dump) : 0;
		if (ok < 0)
			goto out;
		if (!ok || !nbk || !containerd_runtime_configured(dump.s, major, NULL, 0)) {
			r->status = PREP_UNCHANGED;
			r->method = xstrdup("none");
			if (ok && containerd_runtime_configured(dump.s, major, NULL, 0))
				prep_step(&x, "an nvidia runtime is configured but no gpuctl backup of %s exists: left as it is "
					      "(not gpuctl's, or the file did not exist before gpuctl wrote it)", cfg);
			else
				prep_step(&x, "nothing of gpuctl's in containerd's configuration%s", "");
			note_backups(&x, bk, nbk);
			rc = 0;
			goto out;
		}
		r->method = xstrdup("nvidia-ctk");
		if (plan_ctk(&x, cfg, dump.s, major, force, bk, nbk, &u) < 0)
			goto out;
		if (!strcmp(u.restore, ptext.s)) {
			/* what was there before is what is there: the nvidia runtime was not gpuctl's */
			r->status = PREP_UNCHANGED;
			free(r->method);
			r->method = xstrdup("none");
			prep_step(&x, "%s is as it was before gpuctl: nothing to restore", cfg);
			note_backups(&x, bk, nbk);
			rc = 0;
			goto out;
		}
	}
	if (u.from)
		r->backup = xstrdup(u.from);
	if (o->dry_run) {
		r->status = PREP_CHANGED;
		if (u.dropin)
			prep_step(&x, "would remove %s", dropin);
		if (u.remove_cfg)
			prep_step(&x, "would remove %s (gpuctl created it)", cfg);
		else if (u.restore && u.from)
			step2(&x, "would restore %s from %s", cfg, u.from);
		else if (u.restore)
			prep_step(&x, "would take gpuctl's import out of %s", cfg);
		prep_step(&x, "would restart containerd (dry run: nothing changed)%s", "");
		rc = 0;
		goto out;
	}
	/* the changes, each backed up first by the change set */
	if (u.dropin) {
		if (remote_change_remove(x.chg, dropin, &e) < 0) {
			gerr_move(&r->err, &e);
			goto rollback;
		}
		prep_step(&x, "removed %s", dropin);
	}
	if (u.remove_cfg) {
		if (remote_change_remove(x.chg, cfg, &e) < 0) {
			gerr_move(&r->err, &e);
			goto rollback;
		}
		prep_step(&x, "removed %s (gpuctl had created it)", cfg);
	} else if (u.restore) {
		if (prep_write(&x, cfg, u.restore, (struct remote_mode){ 0644, 0 }) < 0)
			goto rollback;
		if (u.from)
			step2(&x, "restored %s from %s", cfg, u.from);
		else
			prep_step(&x, "took gpuctl's import out of %s", cfg);
	}
	/* verify: the configuration parses, no nvidia runtime of gpuctl's is left
	 * and the default runtime is the one from before */
	if (u.from) {
		struct buf bd = BUF_INIT;
		if (dump_of(&x, u.from, &bd) == 1)
			u.before_dump = buf_detach(&bd);
		buf_release(&bd);
	}
	int ok = 1;
	if (!u.remove_cfg) {
		ok = dump_of(&x, cfg, &dump);
		if (ok < 0)
			goto rollback;
	}
	if (ok) {
		const char *after = u.remove_cfg ? "" : dump.s;
		int nv_before = u.before_dump && containerd_runtime_configured(u.before_dump, major, NULL, 0);
		char *d_after = default_runtime(after, major), *d_before = u.before_dump ? default_runtime(u.before_dump, major)
											: NULL;
		int def_ok = u.before_dump ? (!d_after) == (!d_before) && (!d_after || !strcmp(d_after, d_before))
					   : !d_after || strcmp(d_after, "nvidia");
		if (!nv_before && containerd_runtime_configured(after, major, NULL, 0))
			gerr_set(&r->err, GERR_CONFIG, "after the cleanup `containerd config dump` still shows an nvidia runtime; nothing was restarted");
		else if (!def_ok)
			gerr_set(&r->err, GERR_CONFIG,
				 "after the cleanup the default runtime is %s, not %s as before; nothing was restarted",
				 d_after ? d_after : "(unset)", d_before ? d_before : "the one before gpuctl");
		free(d_after);
		free(d_before);
	} else {
		gerr_set(&r->err, GERR_CONFIG, "after the cleanup `containerd config dump` fails; nothing was restarted");
	}
	if (r->err.code != GERR_OK)
		goto rollback;
	prep_step(&x, "verified with containerd config dump: no nvidia runtime of gpuctl's, the default runtime as before%s", "");
	int rs = 1;
	restarted = 1;
	if (prep_run(&x, restart, NULL, NULL, &rs) < 0)
		goto rollback;
	prep_step(&x, "ran: %s", restart);
	if (rs != 0 || !prep_service_ok(&x, check)) {
		if (r->err.code == GERR_OK)
			gerr_set(&r->err, GERR_API, "containerd did not come back after `%s` (exit %d)", restart, rs);
		goto rollback;
	}
	prep_step(&x, "containerd is running%s", "");
	note_backups(&x, bk, nbk);
	r->status = PREP_CHANGED;
	rc = 0;
	goto out;
rollback:
	prep_rollback(&x, restarted ? restart : NULL, check, "configuration", "containerd");
out:
	prep_end(&x);
	undo_plan_release(&u);
	free_strv(bk, nbk);
	buf_release(&ptext);
	buf_release(&dtext);
	buf_release(&dump);
	free(dir);
	free(dropin);
	free(glob);
	return rc;
}

int node_compute_mode_reset(struct ssh_conn *c, struct gerr *err)
{
	struct buf out = BUF_INIT, errb = BUF_INIT;
	int status = -1;
	int rc = ssh_exec(c, "nvidia-smi -c DEFAULT", NULL, 0, &out, &errb, &status, err);
	if (rc == 0 && status != 0) {
		const char *m = errb.len ? errb.s : out.s;
		rc = gerr_set(err, GERR_API, "nvidia-smi -c DEFAULT failed (exit %d): %.*s", status, (int)strcspn(m, "\n"), m);
	}
	buf_release(&out);
	buf_release(&errb);
	return rc;
}
