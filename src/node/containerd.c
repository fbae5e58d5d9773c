/* Preparing containerd for the NVIDIA runtime: idempotent, atomic, verified,
 * rolled back on failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpuctl/buf.h"
#include "gpuctl/node.h"
#include "gpuctl/toml.h"

#define DROPIN_NAME "99-gpuctl-nvidia.toml"

static const char *cri_plugin(int major)
{
	return major >= 2 ? "io.containerd.cri.v1.runtime" : "io.containerd.grpc.v1.cri";
}

/* Canonical table paths (toml.h) of the CRI plugin's tables. */
static char *pl_table(const char *pl, const char *rest)
{
	return xasprintf("plugins.\"%s\"%s", pl, rest);
}

/* Copy the tables of the CRI plugin out of a `containerd config dump`
 * (the effective configuration, defaults included) verbatim, without any
 * nvidia runtime, with the default runtime switched to nvidia when asked. */
static void copy_plugin_tables(struct buf *b, const char *dump, const char *pl, int default_runtime)
{
	char *top = pl_table(pl, "");
	char *cont = pl_table(pl, ".containerd");
	char *nv = pl_table(pl, ".containerd.runtimes.nvidia");
	const char *p = dump;
	int in = 0, in_containerd = 0;
	while (*p) {
		size_t n = strcspn(p, "\n");
		const char *l = p;
		size_t ind = strspn(l, " \t");
		const char *t = l + ind;
		char *h = n > ind && *t == '[' ? toml_header(t, n - ind) : NULL;
		if (h) {
			in = toml_within(h, top) && !toml_within(h, nv);
			in_containerd = in && !strcmp(h, cont);
			free(h);
		}
		if (in) {
			if (in_containerd && default_runtime && !strncmp(t, "default_runtime_name", 20))
				buf_add(b, l, ind), buf_adds(b, "default_runtime_name = \"nvidia\"");
			else
				buf_add(b, l, n);
			buf_addc(b, '\n');
		}
		p += n;
		if (*p)
			p++;
	}
	free(top);
	free(cont);
	free(nv);
}

/* The runtime the nvidia runtime is modelled on: the default one (usually
 * runc) when it is a runc v2 runtime, as nvidia-ctk does, so that settings
 * such as SystemdCgroup match what the kubelet expects. */
static char *base_runtime(const char *dump, const char *pl)
{
	if (!dump)
		return NULL;
	char *cont = pl_table(pl, ".containerd");
	char *name = toml_get_string(dump, cont, "default_runtime_name");
	free(cont);
	if (!name || !*name || !strcmp(name, "nvidia")) {
		free(name);
		name = xstrdup("runc");
	}
	char *seg = xasprintf(".containerd.runtimes.%s", name);
	char *t = pl_table(pl, seg);
	char *type = toml_get_string(dump, t, "runtime_type");
	int ok = type && !strcmp(type, "io.containerd.runc.v2");
	free(type);
	free(seg);
	free(t);
	if (!ok) {
		free(name);
		return NULL;
	}
	return name;
}

struct copy_keys {
	const char *table;
	const char *skip;
	struct buf *b;
};

static int copy_keys_fn(void *ud, const char *table, const char *key, const char *raw, const char *str)
{
	(void)str;
	struct copy_keys *c = ud;
	if (!strcmp(table, c->table) && strcmp(key, c->skip))
		buf_addf(c->b, "  %s = %s\n", key, raw);
	return 0;
}

/* The keys of the base runtime's table (or its sub-table suffix), but skip, as written. */
static void copy_base_keys(struct buf *b, const char *dump, const char *pl, const char *base, const char *suffix,
			   const char *skip)
{
	if (!base)
		return;
	char *seg = xasprintf(".containerd.runtimes.%s%s", base, suffix);
	char *t = pl_table(pl, seg);
	struct copy_keys ck = { t, skip, b };
	toml_scan(dump, copy_keys_fn, &ck);
	free(t);
	free(seg);
}

char *containerd_dropin(int major, const char *runtime_path, int default_runtime, const char *dump)
{
	struct buf b = BUF_INIT;
	const char *pl = cri_plugin(major);
	if (major >= 2)
		buf_addf(&b, "# Written by gpuctl: the NVIDIA container runtime for containerd.\n"
			     "# containerd 2 merges imported files key by key; this file adds the nvidia runtime\n"
			     "# (modelled on the default runc runtime)%s.\n"
			     "version = 3\n\n",
			 default_runtime ? " and makes it the default" : "");
	else
		buf_addf(&b, "# Written by gpuctl: the NVIDIA container runtime for containerd.\n"
			     "# containerd 1.x merges imported files plugin by plugin, so this file carries the whole\n"
			     "# CRI plugin configuration as it was, plus the nvidia runtime.\n"
			     "version = 2\n\n");
	if (dump && major < 2) {
		copy_plugin_tables(&b, dump, pl, default_runtime);
		buf_addc(&b, '\n');
	} else if (default_runtime) {
		buf_addf(&b, "[plugins.\"%s\".containerd]\n  default_runtime_name = \"nvidia\"\n\n", pl);
	}
	char *base = base_runtime(dump, pl);
	buf_addf(&b, "[plugins.\"%s\".containerd.runtimes.nvidia]\n  runtime_type = \"io.containerd.runc.v2\"\n", pl);
	copy_base_keys(&b, dump, pl, base, "", "runtime_type");
	buf_addf(&b, "\n[plugins.\"%s\".containerd.runtimes.nvidia.options]\n", pl);
	copy_base_keys(&b, dump, pl, base, ".options", "BinaryName");
	buf_adds(&b, "  BinaryName = \"");
	for (const char *q = runtime_path; *q; q++) {
		if (*q == '"' || *q == '\\')
			buf_addc(&b, '\\');
		buf_addc(&b, *q);
	}
	buf_adds(&b, "\"\n");
	free(base);
	return buf_detach(&b);
}

/* Find a top-level `imports = [...]` assignment (before the first table). */
static const char *find_imports(const char *cfg, const char **end)
{
	const char *p = cfg;
	while (*p) {
		const char *l = p + strspn(p, " \t");
		if (*l == '[')
			return NULL; /* tables start: top-level keys are over */
		if (!strncmp(l, "imports", 7)) {
			const char *q = l + 7 + strspn(l + 7, " \t");
			if (*q == '=') {
				const char *close = strchr(q, ']');
				if (!close)
					return NULL;
				*end = close;
				return l;
			}
		}
		p += strcspn(p, "\n");
		if (*p)
			p++;
	}
	return NULL;
}

char *containerd_add_import(const char *config, const char *glob, int config_version)
{
	const char *end = NULL;
	const char *imp = find_imports(config, &end);
	struct buf b = BUF_INIT;
	if (imp) {
		const char *open = strchr(imp, '[');
		if (!open || open > end)
			return NULL;
		/* already imported? look for the quoted glob inside the brackets */
		char *q = xasprintf("\"%s\"", glob);
		char *inside = xstrndup(open, (size_t)(end - open));
		int has = strstr(inside, q) != NULL;
		int empty = strspn(open + 1, " \t\r\n") == (size_t)(end - open - 1);
		free(inside);
		free(q);
		if (has)
			return NULL;
		buf_add(&b, config, (size_t)(end - config));
		buf_addf(&b, "%s\"%s\"", empty ? "" : ", ", glob);
		buf_adds(&b, end);
		return buf_detach(&b);
	}
	/* no imports: add one after a top-level version line, else at the top */
	const char *p = config, *after = NULL;
	while (*p) {
		const char *l = p + strspn(p, " \t");
		if (*l == '[')
			break;
		if (!strncmp(l, "version", 7) && strchr(" \t=", l[7])) {
			after = p + strcspn(p, "\n");
			if (*after)
				after++;
			break;
		}
		p += strcspn(p, "\n");
		if (*p)
			p++;
	}
	if (after) {
		buf_add(&b, config, (size_t)(after - config));
		if (after > config && after[-1] != '\n')
			buf_addc(&b, '\n');
		buf_addf(&b, "imports = [\"%s\"]\n", glob);
		buf_adds(&b, after);
	} else {
		buf_addf(&b, "version = %d\nimports = [\"%s\"]\n", config_version, glob);
		buf_adds(&b, config);
	}
	return buf_detach(&b);
}

void prep_result_release(struct prep_result *r)
{
	free(r->method);
	free(r->backup);
	cJSON_Delete(r->steps);
	gerr_clear(&r->err);
	memset(r, 0, sizeof(*r));
}

struct ctx {
	struct ssh_conn *c;
	struct prep_result *r;
};

static void step(struct ctx *x, const char *fmt, const char *a)
{
	char *m = xasprintf(fmt, a ? a : "");
	cJSON_AddItemToArray(x->r->steps, cJSON_CreateString(m));
	free(m);
}

/* Run a command line; *status and output returned; -1 on transport errors (err set in r). */
static int run(struct ctx *x, const char *cmd, const char *in, struct buf *out, struct buf *errb, int *status)
{
	struct gerr e = GERR_INIT;
	if (ssh_exec(x->c, cmd, in, in ? strlen(in) : 0, out, errb, status, &e) < 0) {
		gerr_move(&x->r->err, &e);
		return -1;
	}
	return 0;
}

/* Write content to path atomically: temp file in the same folder, then rename. */
static int write_atomic(struct ctx *x, const char *path, const char *content)
{
	struct buf cmd = BUF_INIT, tmp = BUF_INIT;
	buf_addf(&tmp, "%s.gpuctl-tmp", path);
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	buf_adds(&cmd, "umask 022 && mkdir -p ");
	sh_quote(&cmd, slash ? dir : ".");
	buf_adds(&cmd, " && cat > ");
	sh_quote(&cmd, tmp.s);
	buf_adds(&cmd, " && sync ");
	sh_quote(&cmd, tmp.s);
	buf_adds(&cmd, " && mv -f ");
	sh_quote(&cmd, tmp.s);
	buf_addc(&cmd, ' ');
	sh_quote(&cmd, path);
	int status = 0;
	struct buf errb = BUF_INIT;
	int rc = run(x, cmd.s, content, NULL, &errb, &status);
	if (rc == 0 && status != 0)
		rc = gerr_set(&x->r->err, GERR_IO, "writing %s failed: %s", path, errb.s);
	buf_release(&errb);
	buf_release(&cmd);
	buf_release(&tmp);
	free(dir);
	return rc;
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

int containerd_runtime_configured(const char *dump, int major, const char *runtime_path, int want_default)
{
	const char *pl = cri_plugin(major);
	char *t = pl_table(pl, ".containerd.runtimes.nvidia");
	char *o = pl_table(pl, ".containerd.runtimes.nvidia.options");
	char *c = pl_table(pl, ".containerd");
	char *type = toml_get_string(dump, t, "runtime_type");
	char *bin = toml_get_string(dump, o, "BinaryName");
	char *def = want_default ? toml_get_string(dump, c, "default_runtime_name") : NULL;
	int ok = type && !strcmp(type, "io.containerd.runc.v2") && bin &&
		 (runtime_path ? !strcmp(bin, runtime_path) : *bin != '\0') && (!want_default || (def && !strcmp(def, "nvidia")));
	free(t);
	free(o);
	free(c);
	free(type);
	free(bin);
	free(def);
	return ok;
}

/* The CRI plugin's settings other than the nvidia runtime and the default
 * runtime's name, one "table key = value" line each, sorted. */
struct settings {
	const char *top, *nv, *cont;
	char **v;
	size_t n, cap;
};

static int settings_fn(void *ud, const char *table, const char *key, const char *raw, const char *str)
{
	(void)str;
	struct settings *s = ud;
	if (!toml_within(table, s->top) || toml_within(table, s->nv) ||
	    (!strcmp(table, s->cont) && !strcmp(key, "default_runtime_name")))
		return 0;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = xasprintf("%s %s = %s", table, key, raw);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void settings_load(struct settings *s, const char *dump)
{
	toml_scan(dump, settings_fn, s);
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
}

static void settings_release(struct settings *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

int containerd_cri_settings_diff(const char *before, const char *after, int major, struct buf *what)
{
	const char *pl = cri_plugin(major);
	char *top = pl_table(pl, ""), *nv = pl_table(pl, ".containerd.runtimes.nvidia"), *cont = pl_table(pl, ".containerd");
	struct settings a = { top, nv, cont, NULL, 0, 0 }, b = { top, nv, cont, NULL, 0, 0 };
	settings_load(&a, before);
	settings_load(&b, after);
	size_t i = 0, j = 0;
	int diff = 0;
	while (!diff && (i < a.n || j < b.n)) {
		int c = i >= a.n ? 1 : j >= b.n ? -1 : strcmp(a.v[i], b.v[j]);
		if (c == 0) {
			i++, j++;
			continue;
		}
		diff = 1;
		if (!what)
			break;
		const char *ea = i < a.n ? strstr(a.v[i], " = ") : NULL, *eb = j < b.n ? strstr(b.v[j], " = ") : NULL;
		if (ea && eb && ea - a.v[i] == eb - b.v[j] && !strncmp(a.v[i], b.v[j], (size_t)(ea - a.v[i])))
			buf_addf(what, "%s, now %s", a.v[i], eb + 3);
		else
			buf_addf(what, "%s %s", c < 0 ? "lost" : "gained", c < 0 ? a.v[i] : b.v[j]);
	}
	settings_release(&a);
	settings_release(&b);
	free(top);
	free(nv);
	free(cont);
	return diff;
}

/* Restore the files as they were: byte for byte, or absent. */
static void restore(struct ctx *x, const char *path, const char *backup, int existed)
{
	struct buf cmd = BUF_INIT;
	if (existed) {
		buf_adds(&cmd, "cp -p ");
		sh_quote(&cmd, backup);
		buf_addc(&cmd, ' ');
		sh_quote(&cmd, path);
		buf_adds(&cmd, ".gpuctl-tmp && mv -f ");
		sh_quote(&cmd, path);
		buf_adds(&cmd, ".gpuctl-tmp ");
		sh_quote(&cmd, path);
	} else {
		buf_adds(&cmd, "rm -f ");
		sh_quote(&cmd, path);
	}
	int status = 0;
	struct gerr keep = GERR_INIT;
	gerr_move(&keep, &x->r->err); /* keep the original failure */
	run(x, cmd.s, NULL, NULL, NULL, &status);
	gerr_clear(&x->r->err);
	gerr_move(&x->r->err, &keep);
	step(x, existed ? "restored %s from its backup" : "removed %s", path);
	buf_release(&cmd);
}

static int service_ok(struct ctx *x, const char *check)
{
	for (int i = 0; i < 10; i++) {
		int status = 1;
		if (run(x, check, NULL, NULL, NULL, &status) < 0)
			return 0;
		if (status == 0)
			return 1;
		run(x, "sleep 1", NULL, NULL, NULL, &status);
	}
	return 0;
}

static int exists(struct ctx *x, const char *path, struct buf *content)
{
	struct buf cmd = BUF_INIT;
	buf_adds(&cmd, "test -f ");
	sh_quote(&cmd, path);
	buf_adds(&cmd, " && cat ");
	sh_quote(&cmd, path);
	int status = 1;
	run(x, cmd.s, NULL, content, NULL, &status);
	buf_release(&cmd);
	return status == 0;
}

/* After a restart: the CRI plugin must have loaded (containerd runs without
 * it when its configuration is wrong, and only the plugin list shows it). */
static char *grpc_address(const char *dump)
{
	char *a = toml_get_string(dump, "grpc", "address");
	if (a && !*a) {
		free(a);
		a = NULL;
	}
	return a;
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

static int cri_loaded(struct ctx *x, const char *pl, const char *dump, struct buf *detail)
{
	struct buf cmd = BUF_INIT;
	char *addr = grpc_address(dump);
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
		if (run(x, cmd.s, NULL, &out, NULL, &status) < 0) {
			buf_release(&out);
			break;
		}
		int row = status == 0 ? cri_row(out.s, pl, detail) : -1;
		buf_release(&out);
		if (row >= 0) {
			result = row;
			break;
		}
		run(x, "sleep 1", NULL, NULL, NULL, &status);
	}
	buf_release(&cmd);
	return result;
}

/* ---- k3s / rke2: they generate containerd's config.toml at every start,
 * from config.toml.tmpl when it exists; the runtime goes into the template. */

static const char k3s_base_line[] = "{{ template \"base\" . }}";

static int k3s_prepare(struct ctx *x, const struct probe_result *p, const struct containerd_opts *o, const char *rt)
{
	struct prep_result *r = x->r;
	const char *tmpl = p->config_path;
	size_t tl = strlen(tmpl);
	if (tl < 5 || strcmp(tmpl + tl - 5, ".tmpl")) {
		gerr_set(&r->err, GERR_CONFIG, "%s node: the containerd config path %s should be the .tmpl template", p->flavour,
			 tmpl);
		r->status = PREP_FAILED;
		return -1;
	}
	char *gen = xstrndup(tmpl, tl - 5);
	const char *unit = !strcmp(p->flavour, "rke2") ? "rke2-agent" : "k3s";
	char *restart_def = NULL, *check_def = NULL;
	struct buf gtext = BUF_INIT, ttext = BUF_INIT, cmd = BUF_INIT, errb = BUF_INIT;
	char *bak = NULL;
	int rc = -1, have_tmpl = 0, status = 0;
	r->status = PREP_FAILED;
	r->method = xstrdup("k3s-template");
	if (!o->restart_command || !o->check_command) {
		/* a k3s agent node runs k3s-agent, a server k3s (rke2: rke2-agent / rke2-server) */
		struct buf u = BUF_INIT;
		char *probe = xasprintf("for u in %s-agent %s-server %s; do systemctl is-active --quiet $u && { echo $u; break; }; done",
					!strcmp(p->flavour, "rke2") ? "rke2" : "k3s", !strcmp(p->flavour, "rke2") ? "rke2" : "k3s",
					!strcmp(p->flavour, "rke2") ? "rke2" : "k3s");
		run(x, probe, NULL, &u, NULL, &status);
		free(probe);
		size_t n = strcspn(u.s, "\n");
		if (n)
			u.s[n] = '\0';
		if (n)
			unit = NULL;
		restart_def = xasprintf("systemctl restart %s", n ? u.s : unit);
		check_def = xasprintf("systemctl is-active --quiet %s", n ? u.s : unit);
		buf_release(&u);
	}
	const char *restart = o->restart_command ? o->restart_command : restart_def;
	const char *check = o->check_command ? o->check_command : check_def;
	int gen_ok = exists(x, gen, &gtext);
	have_tmpl = exists(x, tmpl, &ttext);
	if (r->err.code != GERR_OK)
		goto out;
	int v3 = gen_ok && strstr(gtext.s, "version = 3") != NULL;
	int major = v3 ? 2 : 1;
	if (gen_ok && containerd_runtime_configured(gtext.s, major, rt, o->default_runtime)) {
		r->status = PREP_UNCHANGED;
		free(r->method);
		r->method = xstrdup("none");
		step(x, "the nvidia runtime is already in %s", gen);
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
		step(x, "would add the nvidia runtime to %s (dry run: nothing written)", tmpl);
		rc = 0;
		goto out;
	}
	struct buf content = BUF_INIT;
	if (have_tmpl) {
		char stamp[32];
		snprintf(stamp, sizeof(stamp), "%ld", (long)time(NULL));
		bak = xasprintf("%s.gpuctl-backup-%s", tmpl, stamp);
		buf_adds(&cmd, "cp -p ");
		sh_quote(&cmd, tmpl);
		buf_addc(&cmd, ' ');
		sh_quote(&cmd, bak);
		if (run(x, cmd.s, NULL, NULL, &errb, &status) < 0 || status != 0) {
			if (r->err.code == GERR_OK)
				gerr_set(&r->err, GERR_IO, "cannot back up %s: %s", tmpl, errb.s);
			buf_release(&content);
			goto out;
		}
		r->backup = xstrdup(bak);
		step(x, "backed up to %s", bak);
		buf_add(&content, ttext.s, ttext.len);
		if (content.len && content.s[content.len - 1] != '\n')
			buf_addc(&content, '\n');
	} else {
		buf_addf(&content, "%s\n", k3s_base_line);
	}
	/* the nvidia tables only: the base config keeps everything else */
	char *tables = containerd_dropin(major, rt, 0, NULL);
	const char *t = strstr(tables, "[plugins.");
	buf_addf(&content, "\n# Added by gpuctl: the NVIDIA container runtime.\n%s", t ? t : tables);
	if (o->default_runtime)
		buf_addf(&content, "\n[plugins.\"%s\".containerd]\n  default_runtime_name = \"nvidia\"\n", cri_plugin(major));
	free(tables);
	int wrc = write_atomic(x, tmpl, content.s);
	buf_release(&content);
	if (wrc < 0)
		goto rollback;
	step(x, "wrote %s", tmpl);
	int rs = 1;
	if (run(x, restart, NULL, NULL, NULL, &rs) < 0)
		goto rollback;
	step(x, "ran: %s", restart);
	buf_reset(&gtext);
	if (rs != 0 || !service_ok(x, check) || !exists(x, gen, &gtext) ||
	    !containerd_runtime_configured(gtext.s, major, rt, o->default_runtime)) {
		if (r->err.code == GERR_OK)
			gerr_set(&r->err, GERR_API, "%s did not come back with the nvidia runtime in %s after `%s` (exit %d)",
				 p->flavour, gen, restart, rs);
		goto rollback;
	}
	step(x, "%s regenerated its containerd config with the nvidia runtime", p->flavour);
	r->status = PREP_CHANGED;
	rc = 0;
	goto out;
rollback:
	restore(x, tmpl, bak, have_tmpl);
	{
		int s2 = 1;
		struct gerr keep = GERR_INIT;
		gerr_move(&keep, &r->err);
		run(x, restart, NULL, NULL, NULL, &s2);
		int back = s2 == 0 && service_ok(x, check);
		gerr_clear(&r->err);
		gerr_move(&r->err, &keep);
		gerr_prefix(&r->err, back ? "rolled back (original template restored, %s running again)"
					  : "ROLLBACK INCOMPLETE: the original template is restored but %s does not run; check the node",
			    p->flavour);
	}
	r->status = PREP_ROLLED_BACK;
out:
	(void)unit;
	free(gen);
	free(bak);
	free(restart_def);
	free(check_def);
	buf_release(&gtext);
	buf_release(&ttext);
	buf_release(&cmd);
	buf_release(&errb);
	return rc;
}

int containerd_prepare(struct ssh_conn *c, const struct probe_result *p, const struct containerd_opts *o,
		       struct prep_result *r)
{
	memset(r, 0, sizeof(*r));
	r->steps = cJSON_CreateArray();
	struct ctx x = { c, r };
	const char *rt = o->runtime_path ? o->runtime_path : p->nvidia_runtime ? p->nvidia_runtime
										  : "/usr/bin/nvidia-container-runtime";
	const char *restart = o->restart_command ? o->restart_command : "systemctl restart containerd";
	const char *check = o->check_command ? o->check_command : "systemctl is-active --quiet containerd";
	const char *cfg = p->config_path ? p->config_path : "/etc/containerd/config.toml";
	int major = p->containerd_major ? p->containerd_major : 1;
	if (p->flavour && (!strcmp(p->flavour, "k3s") || !strcmp(p->flavour, "rke2")))
		return k3s_prepare(&x, p, o, rt);
	struct buf ptext = BUF_INIT, dtext = BUF_INIT, out = BUF_INIT, errb = BUF_INIT, cmd = BUF_INIT;
	char *dump_cmd = NULL, *dump0 = NULL, *dropin = NULL, *glob = NULL, *cfg_bak = NULL, *dropin_bak = NULL;
	int status = 0, rc = -1, have_cfg = 0, have_dropin = 0, touched = 0, restarted = 0;
	r->status = PREP_FAILED;

	have_cfg = exists(&x, cfg, &ptext);
	if (r->err.code != GERR_OK)
		goto out;
	/* 1. the current configuration must parse: one containerd cannot read is never touched */
	buf_adds(&cmd, "containerd --config ");
	sh_quote(&cmd, cfg);
	buf_adds(&cmd, " config dump");
	dump_cmd = buf_detach(&cmd);
	if (run(&x, dump_cmd, NULL, &out, &errb, &status) < 0)
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
		if (run(&x, "containerd config default", NULL, &out, NULL, &status) < 0)
			goto out;
		if (status == 0)
			dump0 = xstrdup(out.s);
	}
	/* 2. already configured: nothing to do, no restart */
	if (dump0 && containerd_runtime_configured(dump0, major, rt, o->default_runtime)) {
		r->status = PREP_UNCHANGED;
		r->method = xstrdup("none");
		step(&x, "the nvidia runtime is already configured%s", "");
		rc = 0;
		goto out;
	}
	/* prefer nvidia-ctk where installed: it reads what `containerd config dump`
	 * shows, which is the default configuration path's */
	int use_ctk = p->nvidia_ctk && !strcmp(cfg, "/etc/containerd/config.toml");
	r->method = xstrdup(use_ctk ? "nvidia-ctk" : "drop-in");
	if (o->dry_run) {
		r->status = PREP_CHANGED;
		step(&x, "would add the nvidia runtime (dry run: nothing written)%s", "");
		rc = 0;
		goto out;
	}
	/* 3. back up what changes */
	char stamp[32];
	snprintf(stamp, sizeof(stamp), "%ld", (long)time(NULL));
	char *dir = xstrdup(cfg);
	char *sl = strrchr(dir, '/');
	if (sl)
		*sl = '\0';
	dropin = xasprintf("%s/conf.d/%s", sl ? dir : ".", DROPIN_NAME);
	glob = xasprintf("%s/conf.d/*.toml", sl ? dir : ".");
	free(dir);
	have_dropin = exists(&x, dropin, &dtext);
	cfg_bak = xasprintf("%s.gpuctl-backup-%s", cfg, stamp);
	dropin_bak = xasprintf("%s.gpuctl-backup-%s", dropin, stamp);
	if (have_cfg || have_dropin) {
		buf_reset(&cmd);
		buf_adds(&cmd, "true");
		if (have_cfg) {
			buf_adds(&cmd, " && cp -p ");
			sh_quote(&cmd, cfg);
			buf_addc(&cmd, ' ');
			sh_quote(&cmd, cfg_bak);
		}
		if (have_dropin) {
			buf_adds(&cmd, " && cp -p ");
			sh_quote(&cmd, dropin);
			buf_addc(&cmd, ' ');
			sh_quote(&cmd, dropin_bak);
		}
		if (run(&x, cmd.s, NULL, NULL, &errb, &status) < 0)
			goto out;
		if (status != 0) {
			gerr_set(&r->err, GERR_IO, "cannot back up %s: %s", cfg, errb.s);
			goto out;
		}
		if (have_cfg) {
			r->backup = xstrdup(cfg_bak);
			step(&x, "backed up to %s", cfg_bak);
		}
	}
	touched = 1;
	if (use_ctk) {
		/* 4. nvidia-ctk writes the whole effective configuration plus the
		 * runtime into a new file, which then replaces config.toml */
		char *newp = xasprintf("%s.gpuctl-new", cfg);
		buf_reset(&cmd);
		sh_quote(&cmd, p->nvidia_ctk);
		buf_adds(&cmd, " runtime configure --runtime=containerd --config-source=command --config=");
		sh_quote(&cmd, newp);
		buf_adds(&cmd, " --nvidia-runtime-path=");
		sh_quote(&cmd, rt);
		if (o->default_runtime)
			buf_adds(&cmd, " --set-as-default");
		buf_adds(&cmd, " && chmod 644 ");
		sh_quote(&cmd, newp);
		buf_adds(&cmd, " && mv -f ");
		sh_quote(&cmd, newp);
		buf_addc(&cmd, ' ');
		sh_quote(&cmd, cfg);
		buf_reset(&errb);
		int crc = run(&x, cmd.s, NULL, NULL, &errb, &status);
		free(newp);
		if (crc < 0)
			goto rollback;
		if (status != 0) {
			size_t ll;
			const char *l = last_line(errb.s, &ll);
			gerr_set(&r->err, GERR_API, "nvidia-ctk runtime configure failed (exit %d): %.*s", status, (int)ll, l);
			goto rollback;
		}
		step(&x, "nvidia-ctk runtime configure rewrote %s", cfg);
	} else {
		/* 4. write the drop-in, then the import in the main configuration */
		char *content = containerd_dropin(major, rt, o->default_runtime, dump0);
		int wrc = write_atomic(&x, dropin, content);
		free(content);
		if (wrc < 0)
			goto rollback;
		step(&x, "wrote %s", dropin);
		char *newcfg = containerd_add_import(ptext.s, glob, major >= 2 ? 3 : 2);
		if (newcfg) {
			wrc = write_atomic(&x, cfg, newcfg);
			free(newcfg);
			if (wrc < 0)
				goto rollback;
			step(&x, "added the conf.d import to %s", cfg);
		}
	}
	/* 5. verify the merged configuration before restarting anything */
	buf_reset(&out);
	buf_reset(&errb);
	if (run(&x, dump_cmd, NULL, &out, &errb, &status) < 0)
		goto rollback;
	if (status != 0 || !containerd_runtime_configured(out.s, major, rt, o->default_runtime)) {
		gerr_set(&r->err, GERR_CONFIG, "after the change `containerd config dump` %s; nothing was restarted",
			 status != 0 ? "failed" : "does not show the nvidia runtime");
		goto rollback;
	}
	/* nothing else of the CRI plugin may change (containerd's import merging
	 * differs between versions; a drop-in that drops a setting is refused) */
	struct buf what = BUF_INIT;
	if (dump0 && containerd_cri_settings_diff(dump0, out.s, major, &what)) {
		gerr_set(&r->err, GERR_CONFIG,
			 "after the change `containerd config dump` shows other CRI settings changed (%s); nothing was restarted",
			 what.s);
		buf_release(&what);
		goto rollback;
	}
	buf_release(&what);
	step(&x, "verified with containerd config dump: the nvidia runtime is there, the other CRI settings unchanged%s", "");
	/* 6. restart, check the service and its CRI plugin */
	int rs = 0;
	restarted = 1;
	if (run(&x, restart, NULL, NULL, &errb, &rs) < 0)
		goto rollback;
	step(&x, "ran: %s", restart);
	if (rs != 0 || !service_ok(&x, check)) {
		gerr_set(&r->err, GERR_API, "containerd did not come back after `%s` (exit %d)", restart, rs);
		goto rollback;
	}
	struct buf detail = BUF_INIT;
	if (!cri_loaded(&x, cri_plugin(major), dump0, &detail)) {
		gerr_set(&r->err, GERR_API, "containerd runs but its CRI plugin did not load with the new configuration%s%s",
			 detail.len ? ": " : "", detail.s);
		buf_release(&detail);
		goto rollback;
	}
	buf_release(&detail);
	step(&x, "containerd is running with the CRI plugin loaded%s", "");
	r->status = PREP_CHANGED;
	rc = 0;
	goto out;

rollback:
	if (touched) {
		restore(&x, cfg, cfg_bak, have_cfg);
		restore(&x, dropin, dropin_bak, have_dropin);
	}
	r->status = PREP_ROLLED_BACK;
	if (restarted) {
		int s2 = 1;
		struct gerr keep = GERR_INIT;
		gerr_move(&keep, &r->err);
		run(&x, restart, NULL, NULL, NULL, &s2);
		int back = s2 == 0 && service_ok(&x, check);
		gerr_clear(&r->err);
		gerr_move(&r->err, &keep);
		if (back) {
			gerr_prefix(&r->err, "rolled back (original configuration restored, containerd running again)");
			step(&x, "restarted containerd with the original configuration%s", "");
		} else {
			gerr_prefix(&r->err,
				    "ROLLBACK INCOMPLETE: the original configuration is restored but containerd does not run; check the node");
		}
	} else {
		gerr_prefix(&r->err, "rolled back (nothing restarted)");
	}
out:
	buf_release(&ptext);
	buf_release(&dtext);
	buf_release(&out);
	buf_release(&errb);
	buf_release(&cmd);
	free(dump_cmd);
	free(dump0);
	free(dropin);
	free(glob);
	free(cfg_bak);
	free(dropin_bak);
	return rc;
}

/* ---- read-only inspection, for validate ---- */

void containerd_state_release(struct containerd_state *st)
{
	free(st->dump_error);
	free(st->server_version);
	free(st->binary);
	free(st->cgroup_mismatch);
	memset(st, 0, sizeof(*st));
}

int containerd_inspect(struct ssh_conn *c, const struct probe_result *p, struct containerd_state *st, struct gerr *err)
{
	memset(st, 0, sizeof(*st));
	int major = p->containerd_major ? p->containerd_major : 1;
	const char *pl = cri_plugin(major);
	/* k3s/rke2 run containerd on the config.toml they generate from the template */
	char *cfg = xstrdup(p->config_path ? p->config_path : "/etc/containerd/config.toml");
	size_t cl = strlen(cfg);
	if (cl > 5 && !strcmp(cfg + cl - 5, ".tmpl"))
		cfg[cl - 5] = '\0';
	int embedded = p->flavour && (!strcmp(p->flavour, "k3s") || !strcmp(p->flavour, "rke2"));
	struct buf cmd = BUF_INIT, out = BUF_INIT, errb = BUF_INIT;
	if (embedded) {
		/* their containerd is not on PATH, and the file they generate is the whole configuration */
		buf_adds(&cmd, "cat ");
		sh_quote(&cmd, cfg);
	} else {
		buf_adds(&cmd, "containerd --config ");
		sh_quote(&cmd, cfg);
		buf_adds(&cmd, " config dump");
	}
	free(cfg);
	int status = 0, rc = -1;
	if (ssh_exec(c, cmd.s, NULL, 0, &out, &errb, &status, err) < 0)
		goto out;
	if (status != 0) {
		const char *e = errb.len ? errb.s : out.s;
		st->dump_error = xstrndup(e, strcspn(e, "\n"));
		rc = 0;
		goto out;
	}
	st->dump_ok = 1;
	char *dump = buf_detach(&out);
	char *t = pl_table(pl, ".containerd.runtimes.nvidia.options");
	st->configured = containerd_runtime_configured(dump, major, NULL, 0);
	st->binary = toml_get_string(dump, t, "BinaryName");
	st->is_default = containerd_runtime_configured(dump, major, NULL, 1);
	char *base = base_runtime(dump, pl);
	if (st->configured && base) {
		char *seg = xasprintf(".containerd.runtimes.%s.options", base);
		char *bt = pl_table(pl, seg);
		char *a = toml_get_raw(dump, t, "SystemdCgroup"), *b = toml_get_raw(dump, bt, "SystemdCgroup");
		if (strcmp(a ? a : "false", b ? b : "false"))
			st->cgroup_mismatch = xasprintf("the nvidia runtime has SystemdCgroup = %s but %s has %s", a ? a : "false",
							base, b ? b : "false");
		free(a);
		free(b);
		free(bt);
		free(seg);
	}
	free(base);
	free(t);
	/* does it run and answer, and is the runtime binary there */
	char *addr = grpc_address(dump);
	free(dump);
	/* k3s and rke2 give containerd its socket on the command line (the dump shows the default) */
	if (p->flavour && (!strcmp(p->flavour, "k3s") || !strcmp(p->flavour, "rke2"))) {
		free(addr);
		addr = xstrdup("/run/k3s/containerd/containerd.sock");
	}
	buf_reset(&cmd);
	if (embedded) /* where k3s and rke2 keep their ctr */
		buf_adds(&cmd, "PATH=$PATH:/var/lib/rancher/rke2/bin:/var/lib/rancher/k3s/data/current/bin ");
	buf_adds(&cmd, "ctr --connect-timeout 5s --timeout 10s ");
	if (addr) {
		buf_adds(&cmd, "--address ");
		sh_quote(&cmd, addr);
		buf_addc(&cmd, ' ');
	}
	free(addr);
	buf_adds(&cmd, "version 2>&1; printf '\\n@@rc:%s\\n' $?");
	if (st->binary && *st->binary) {
		buf_adds(&cmd, "; test -x ");
		sh_quote(&cmd, st->binary);
		buf_adds(&cmd, " && echo @@binary-ok");
	}
	buf_reset(&out);
	if (ssh_exec(c, cmd.s, NULL, 0, &out, NULL, &status, err) < 0)
		goto out;
	st->running = strstr(out.s, "\n@@rc:0\n") != NULL;
	st->binary_ok = strstr(out.s, "@@binary-ok") != NULL;
	const char *srv = strstr(out.s, "Server:");
	const char *v = srv ? strstr(srv, "Version:") : NULL;
	if (st->running && v) {
		v += 8;
		v += strspn(v, " \t");
		st->server_version = xstrndup(v, strcspn(v, " \t\n"));
	}
	rc = 0;
out:
	buf_release(&cmd);
	buf_release(&out);
	buf_release(&errb);
	return rc;
}
