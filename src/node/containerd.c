/* Preparing containerd 1.x/2.x for the NVIDIA runtime (a conf.d drop-in, or
 * nvidia-ctk's rewrite of config.toml): idempotent, under the node's lock,
 * atomic, verified, rolled back on failure.  Every file goes through the
 * change set of remote.c; the TOML transforms are in crconfig.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/render.h"
#include "gpuctl/buf.h"
#include "gpuctl/node.h"
#include "gpuctl/toml.h"
#include "prep.h"

#define DROPIN_NAME "99-gpuctl-nvidia.toml"

const char *prep_status_name(enum prep_status s)
{
	static const char *const names[] = { "unchanged", "changed", "failed", "rolled-back", "rollback-failed" };
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "failed";
}

void prep_result_release(struct prep_result *r)
{
	free(r->method);
	free(r->backup);
	cJSON_Delete(r->steps);
	cJSON_Delete(r->manual_steps);
	gerr_clear(&r->err);
	memset(r, 0, sizeof(*r));
}

/* ---- what containerd.c and k3s.c share (prep.h) ---- */

char *prep_dir(const char *path)
{
	const char *sl = strrchr(path, '/');
	return sl && sl > path ? xstrndup(path, (size_t)(sl - path)) : xstrdup(sl ? "/" : ".");
}

int prep_begin(struct prep_ctx *x, const struct containerd_opts *o, const char *lockdir)
{
	struct remote_opts ro = {
		.node = NULL, /* deploy adds "node X: containerd" */
		.lockdir = lockdir,
		.read_only = o->dry_run,
		.reconnect = o->reconnect,
		.reconnect_ud = o->reconnect_ud,
		.exec = o->exec,
		.close = o->close,
	};
	struct gerr e = GERR_INIT;
	if (remote_change_begin(x->c, &ro, &x->chg, &e) < 0) {
		gerr_move(&x->r->err, &e);
		return -1;
	}
	return 0;
}

void prep_end(struct prep_ctx *x)
{
	if (x->chg) {
		struct gerr e = GERR_INIT;
		remote_change_commit(x->chg, &e);
		gerr_clear(&e);
		remote_change_free(x->chg);
		x->chg = NULL;
	}
}

void prep_step(struct prep_ctx *x, const char *fmt, const char *a)
{
	char *m = xasprintf(fmt, a ? a : "");
	cJSON_AddItemToArray(x->r->steps, cJSON_CreateString(m));
	free(m);
}

int prep_run(struct prep_ctx *x, const char *cmd, struct buf *out, struct buf *errb, int *status)
{
	struct gerr e = GERR_INIT;
	if (remote_change_exec(x->chg, cmd, NULL, out, errb, status, &e) < 0) {
		gerr_move(&x->r->err, &e);
		return -1;
	}
	return 0;
}

int prep_read(struct prep_ctx *x, const char *path, struct buf *text, struct remote_stat *st)
{
	struct remote_stat s;
	struct gerr e = GERR_INIT;
	if (remote_change_read(x->chg, path, text, st ? st : &s, &e) < 0) {
		gerr_move(&x->r->err, &e);
		return -1;
	}
	return (st ? st : &s)->exists;
}

int prep_write(struct prep_ctx *x, const char *path, const char *content, struct remote_mode mode)
{
	struct gerr e = GERR_INIT;
	if (remote_change_write(x->chg, path, content, strlen(content), mode, &e) < 0) {
		gerr_move(&x->r->err, &e);
		return -1;
	}
	return 0;
}

int prep_service_ok(struct prep_ctx *x, const char *check)
{
	for (int i = 0; i < 10; i++) {
		int status = 1;
		if (prep_run(x, check, NULL, NULL, &status) < 0)
			return 0;
		if (status == 0)
			return 1;
		prep_run(x, "sleep 1", NULL, NULL, &status);
	}
	return 0;
}

void prep_rollback(struct prep_ctx *x, const char *restart, const char *check, const char *what, const char *service)
{
	struct prep_result *r = x->r;
	struct gerr rb = GERR_INIT;
	cJSON *manual = NULL;
	if (remote_change_rollback(x->chg, &manual, &rb) < 0) {
		/* not proven restored: say exactly how to finish by hand */
		r->status = PREP_ROLLBACK_FAILED;
		if (restart)
			cJSON_AddItemToArray(manual, cJSON_CreateString(restart));
		r->manual_steps = manual;
		prep_step(x, "rollback failed: %s", gerr_cause(&rb));
		gerr_prefix(&r->err, "ROLLBACK FAILED (%s); the change had failed", gerr_cause(&rb));
		remote_manual_hint(&r->err, manual);
		gerr_clear(&rb);
		return;
	}
	r->status = PREP_ROLLED_BACK;
	prep_step(x, "restored the original files (each proven equal to its backup by SHA-256, or removed)%s", "");
	if (!restart) {
		gerr_prefix(&r->err, "rolled back (nothing restarted)");
		return;
	}
	/* the first failure is the one to report; the restart's own errors only decide the wording */
	struct gerr keep = GERR_INIT;
	gerr_move(&keep, &r->err);
	int s2 = 1;
	int back = prep_run(x, restart, NULL, NULL, &s2) == 0 && s2 == 0 && prep_service_ok(x, check);
	gerr_clear(&r->err);
	gerr_move(&r->err, &keep);
	if (back) {
		gerr_prefix(&r->err, "rolled back (original %s restored, %s running again)", what, service);
		char *m = xasprintf("restarted %s with the original %s", service, what);
		prep_step(x, "%s", m);
		free(m);
	} else {
		gerr_prefix(&r->err, "ROLLBACK INCOMPLETE: the original %s is restored but %s does not run; check the node", what,
			    service);
	}
}

/* The last non-empty line of s (tools print their error last). */
static const char *last_line(const char *s, size_t *len)
{
	const char *best = s;
	size_t blen = 0;
	for (const char *p = s; *p;) {
		size_t n = strcspn(p, "\n");
		if (n) {
			best = p;
			blen = n;
		}
		p += n;
		if (*p)
			p++;
	}
	*len = blen;
	return best;
}

/* Find the CRI plugin's row of `ctr plugins ls` (TYPE ID PLATFORMS STATUS):
 * plugin id "io.containerd.grpc.v1.cri" is type io.containerd.grpc.v1, id cri.
 * Returns 1 ok, 0 present but not ok, -1 absent. */
static int cri_row(const char *out, const char *pl, struct buf *detail)
{
	const char *dot = strrchr(pl, '.');
	size_t tl = (size_t)(dot - pl);
	const char *id = dot + 1;
	const char *p = out;
	while (*p) {
		size_t n = strcspn(p, "\n");
		char *line = xstrndup(p, n);
		char *save = NULL;
		char *type = strtok_r(line, " \t", &save);
		char *pid = type ? strtok_r(NULL, " \t", &save) : NULL;
		char *last = pid, *w;
		while ((w = strtok_r(NULL, " \t", &save)))
			last = w;
		int hit = type && pid && strlen(type) == tl && !strncmp(type, pl, tl) && !strcmp(pid, id);
		int ok = hit && !strcmp(last, "ok");
		if (hit) {
			buf_reset(detail);
			buf_add(detail, p, n);
		}
		free(line);
		if (hit)
			return ok;
		p += n;
		if (*p)
			p++;
	}
	return -1;
}

/* After a restart: the CRI plugin must have loaded (containerd runs without
 * it when its configuration is wrong, and only the plugin list shows it). */
static int cri_loaded(struct prep_ctx *x, const char *pl, const char *dump, struct buf *detail)
{
	struct buf cmd = BUF_INIT;
	char *addr = containerd_grpc_address(dump);
	buf_adds(&cmd, "ctr ");
	if (addr) {
		buf_adds(&cmd, "--address ");
		sh_quote(&cmd, addr);
		buf_addc(&cmd, ' ');
	}
	buf_adds(&cmd, "plugins ls 2>&1");
	free(addr);
	int result = 0;
	for (int i = 0; i < 10; i++) {
		struct buf out = BUF_INIT;
		int status = 1;
		if (prep_run(x, cmd.s, &out, NULL, &status) < 0) {
			buf_release(&out);
			break;
		}
		int row = status == 0 ? cri_row(out.s, pl, detail) : -1;
		buf_release(&out);
		if (row >= 0) {
			result = row;
			break;
		}
		prep_run(x, "sleep 1", NULL, NULL, &status);
	}
	buf_release(&cmd);
	return result;
}

int containerd_prepare(struct ssh_conn *c, const struct probe_result *p, const struct containerd_opts *o,
		       struct prep_result *r)
{
	memset(r, 0, sizeof(*r));
	r->steps = cJSON_CreateArray();
	r->status = PREP_FAILED;
	struct prep_ctx x = { c, r, NULL };
	const char *rt = o->runtime_path ? o->runtime_path : p->nvidia_runtime ? p->nvidia_runtime
										  : "/usr/bin/nvidia-container-runtime";
	if (cr_flavour_embedded(p->flavour))
		return k3s_prepare(&x, p, o, rt);
	const char *restart = o->restart_command ? o->restart_command : "systemctl restart containerd";
	const char *check = o->check_command ? o->check_command : "systemctl is-active --quiet containerd";
	const char *cfg = p->config_path ? p->config_path : "/etc/containerd/config.toml";
	int major = p->containerd_major ? p->containerd_major : 1;
	struct buf ptext = BUF_INIT, dtext = BUF_INIT, out = BUF_INIT, errb = BUF_INIT, cmd = BUF_INIT;
	char *dump_cmd = NULL, *dump0 = NULL, *dropin = NULL, *glob = NULL, *dir = prep_dir(cfg), *newp = NULL;
	struct remote_stat cst = { 0 };
	int status = 0, rc = -1, have_cfg = 0, restarted = 0;

	/* everything from the first read to the last check holds the node's lock
	 * (a dry run only reads: no lock, nothing written) */
	if (prep_begin(&x, o, dir) < 0)
		goto out;
	have_cfg = prep_read(&x, cfg, &ptext, &cst);
	if (have_cfg < 0)
		goto out;
	/* 1. the current configuration must parse: one containerd cannot read is never touched */
	buf_adds(&cmd, "containerd --config ");
	sh_quote(&cmd, cfg);
	buf_adds(&cmd, " config dump");
	dump_cmd = buf_detach(&cmd);
	if (prep_run(&x, dump_cmd, &out, &errb, &status) < 0)
		goto out;
	if (status != 0 && have_cfg) {
		const char *e = errb.len ? errb.s : out.s;
		gerr_set(&r->err, GERR_CONFIG, "containerd cannot parse %s (left untouched): %.*s", cfg,
			 (int)strcspn(e, "\n"), e);
		goto out;
	}
	if (status == 0) {
		dump0 = xstrdup(out.s);
	} else {
		/* no configuration file yet: containerd runs on its defaults */
		buf_reset(&out);
		if (prep_run(&x, "containerd config default", &out, NULL, &status) < 0)
			goto out;
		if (status == 0)
			dump0 = xstrdup(out.s);
	}
	/* 2. already configured: nothing to do, no restart */
	if (dump0 && containerd_runtime_configured(dump0, major, rt, o->default_runtime)) {
		r->status = PREP_UNCHANGED;
		r->method = xstrdup("none");
		prep_step(&x, "the nvidia runtime is already configured%s", "");
		rc = 0;
		goto out;
	}
	/* prefer nvidia-ctk where installed: it reads what `containerd config dump`
	 * shows, which is the default configuration path's */
	int use_ctk = p->nvidia_ctk && !strcmp(cfg, "/etc/containerd/config.toml");
	r->method = xstrdup(use_ctk ? "nvidia-ctk" : "drop-in");
	if (o->dry_run) {
		r->status = PREP_CHANGED;
		prep_step(&x, "would add the nvidia runtime (dry run: nothing written)%s", "");
		rc = 0;
		goto out;
	}
	/* 3. back up what changes (unique names; a file that was absent is recorded as such) */
	dropin = xasprintf("%s/conf.d/%s", dir, DROPIN_NAME);
	glob = xasprintf("%s/conf.d/*.toml", dir);
	const char *bak = NULL;
	struct gerr e = GERR_INIT;
	if (remote_change_backup(x.chg, cfg, &bak, &e) < 0) {
		gerr_move(&r->err, &e);
		goto out;
	}
	if (bak) {
		r->backup = xstrdup(bak);
		prep_step(&x, "backed up to %s", bak);
	}
	if (!use_ctk && remote_change_backup(x.chg, dropin, &bak, &e) < 0) {
		gerr_move(&r->err, &e);
		goto out;
	}
	if (use_ctk) {
		/* 4. nvidia-ctk writes the whole effective configuration plus the
		 * runtime into a scratch file; gpuctl reads it back and installs it
		 * like any other file (checked, atomic, mode and owner kept) */
		newp = remote_change_scratch(x.chg, cfg);
		buf_reset(&cmd);
		sh_quote(&cmd, p->nvidia_ctk);
		buf_adds(&cmd, " runtime configure --runtime=containerd --config-source=command --config=");
		sh_quote(&cmd, newp);
		buf_adds(&cmd, " --nvidia-runtime-path=");
		sh_quote(&cmd, rt);
		if (o->default_runtime)
			buf_adds(&cmd, " --set-as-default");
		buf_reset(&errb);
		int crc = prep_run(&x, cmd.s, NULL, &errb, &status);
		struct buf ctk = BUF_INIT;
		if (crc == 0 && status == 0)
			crc = prep_read(&x, newp, &ctk, NULL) == 1 ? 0 : -1;
		buf_reset(&cmd);
		buf_adds(&cmd, "rm -f -- ");
		sh_quote(&cmd, newp);
		int s2;
		struct gerr keep = GERR_INIT;
		gerr_move(&keep, &r->err);
		prep_run(&x, cmd.s, NULL, NULL, &s2);
		gerr_clear(&r->err);
		gerr_move(&r->err, &keep);
		if (crc == 0 && status != 0) {
			size_t ll;
			const char *l = last_line(errb.s, &ll);
			gerr_set(&r->err, GERR_API, "nvidia-ctk runtime configure failed (exit %d): %.*s", status, (int)ll, l);
			crc = -1;
		} else if (crc < 0 && r->err.code == GERR_OK) {
			gerr_set(&r->err, GERR_API, "nvidia-ctk runtime configure wrote no file");
		}
		if (crc == 0)
			crc = prep_write(&x, cfg, ctk.s, (struct remote_mode){ 0644, 0 });
		buf_release(&ctk);
		if (crc < 0)
			goto rollback;
		prep_step(&x, "nvidia-ctk runtime configure rewrote %s", cfg);
	} else {
		/* 4. write the drop-in, then the import in the main configuration.
		 * On 1.x the drop-in copies the CRI section, registry credentials
		 * included: then it is never more readable than config.toml. */
		struct render_ctx rctx = { .dir = o->templates_dir };
		char *content = NULL;
		if (containerd_dropin(&rctx, major, rt, o->default_runtime, dump0, &content, &r->err) < 0)
			goto rollback;
		struct remote_mode dm = { 0644, 0 };
		if (major < 2 && containerd_cri_has_auth(dump0, major))
			dm.cap = have_cfg ? (cst.mode & 0777) : 0600;
		int wrc = prep_write(&x, dropin, content, dm);
		free(content);
		if (wrc < 0)
			goto rollback;
		prep_step(&x, "wrote %s", dropin);
		char *newcfg = containerd_add_import(ptext.s, glob, major >= 2 ? 3 : 2);
		if (newcfg) {
			wrc = prep_write(&x, cfg, newcfg, (struct remote_mode){ 0644, 0 });
			free(newcfg);
			if (wrc < 0)
				goto rollback;
			prep_step(&x, "added the conf.d import to %s", cfg);
		}
	}
	/* 5. verify the merged configuration before restarting anything */
	buf_reset(&out);
	buf_reset(&errb);
	if (prep_run(&x, dump_cmd, &out, &errb, &status) < 0)
		goto rollback;
	if (status != 0 || !containerd_runtime_configured(out.s, major, rt, o->default_runtime)) {
		gerr_set(&r->err, GERR_CONFIG, "after the change `containerd config dump` %s; nothing was restarted",
			 status != 0 ? "failed" : "does not show the nvidia runtime");
		goto rollback;
	}
	/* nothing else of the CRI plugin may change, nor any setting the nvidia
	 * runtime had (containerd's import merging differs between versions; a
	 * drop-in that drops a setting is refused) */
	struct buf what = BUF_INIT;
	if (dump0 && containerd_cri_settings_diff(dump0, out.s, major, &what)) {
		gerr_set(&r->err, GERR_CONFIG,
			 "after the change `containerd config dump` shows other CRI settings changed (%s); nothing was restarted",
			 what.s);
		buf_release(&what);
		goto rollback;
	}
	buf_release(&what);
	prep_step(&x, "verified with containerd config dump: the nvidia runtime is there, the other CRI settings unchanged%s", "");
	/* 6. restart, check the service and its CRI plugin */
	int rs = 0;
	restarted = 1;
	if (prep_run(&x, restart, NULL, &errb, &rs) < 0)
		goto rollback;
	prep_step(&x, "ran: %s", restart);
	if (rs != 0 || !prep_service_ok(&x, check)) {
		if (r->err.code == GERR_OK)
			gerr_set(&r->err, GERR_API, "containerd did not come back after `%s` (exit %d)", restart, rs);
		goto rollback;
	}
	struct buf detail = BUF_INIT;
	if (!cri_loaded(&x, containerd_cri_plugin(major), dump0, &detail)) {
		if (r->err.code == GERR_OK)
			gerr_set(&r->err, GERR_API, "containerd runs but its CRI plugin did not load with the new configuration%s%s",
				 detail.len ? ": " : "", detail.s);
		buf_release(&detail);
		goto rollback;
	}
	buf_release(&detail);
	prep_step(&x, "containerd is running with the CRI plugin loaded%s", "");
	r->status = PREP_CHANGED;
	rc = 0;
	goto out;

rollback:
	prep_rollback(&x, restarted ? restart : NULL, check, "configuration", "containerd");
out:
	prep_end(&x);
	buf_release(&ptext);
	buf_release(&dtext);
	buf_release(&out);
	buf_release(&errb);
	buf_release(&cmd);
	free(dump_cmd);
	free(dump0);
	free(dropin);
	free(glob);
	free(dir);
	free(newp);
	return rc;
}
