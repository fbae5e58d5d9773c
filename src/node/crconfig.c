/* Pure transforms of containerd configuration text: the drop-in, the
 * imports line, whether the nvidia runtime is there, what else changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/containerd.h"
#include "gpuctl/render.h"
#include "gpuctl/toml.h"

const char *containerd_cri_plugin(int major)
{
	return major >= 2 ? "io.containerd.cri.v1.runtime" : "io.containerd.grpc.v1.cri";
}

char *containerd_cri_table(int major, const char *rest)
{
	return xasprintf("plugins.\"%s\"%s", containerd_cri_plugin(major), rest);
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

char *containerd_base_runtime(const char *dump, int major)
{
	return base_runtime(dump, containerd_cri_plugin(major));
}

struct copy_keys {
	const char *table;
	const char *skip;
	const char *dump;
	const char *over;   /* keys this table has are not copied (NULL: none) */
	struct buf *b;
};

static int copy_keys_fn(void *ud, const char *table, const char *key, const char *raw, const char *str)
{
	(void)str;
	struct copy_keys *c = ud;
	if (strcmp(table, c->table) || !strcmp(key, c->skip))
		return 0;
	char *had = c->over ? toml_get_raw(c->dump, c->over, key) : NULL;
	if (!had)
		buf_addf(c->b, "  %s = %s\n", key, raw);
	free(had);
	return 0;
}

/* The keys of runtime name's table (or its sub-table suffix), but skip, as
 * written; with over, only those that runtime over's table lacks. */
static void copy_runtime_keys(struct buf *b, const char *dump, const char *pl, const char *name, const char *suffix,
			      const char *skip, const char *over)
{
	if (!name || !dump)
		return;
	char *seg = xasprintf(".containerd.runtimes.%s%s", name, suffix);
	char *t = pl_table(pl, seg);
	char *oseg = over ? xasprintf(".containerd.runtimes.%s%s", over, suffix) : NULL;
	char *ot = oseg ? pl_table(pl, oseg) : NULL;
	struct copy_keys ck = { t, skip, dump, ot, b };
	toml_scan(dump, copy_keys_fn, &ck);
	free(t);
	free(seg);
	free(ot);
	free(oseg);
}

/* The dump has a runc v2 runtime named nvidia already (EKS nodeadm and
 * nvidia-ctk write one, often without any runc table). */
static int has_nvidia_runtime(const char *dump, const char *pl)
{
	if (!dump)
		return 0;
	char *t = pl_table(pl, ".containerd.runtimes.nvidia");
	char *type = toml_get_string(dump, t, "runtime_type");
	int ok = type && !strcmp(type, "io.containerd.runc.v2");
	free(type);
	free(t);
	return ok;
}

int containerd_dropin(const struct render_ctx *rc, int major, const char *runtime_path, int default_runtime,
		      const char *dump, char **out, struct gerr *err)
{
	static const char tmpl[] = "containerd-dropin.toml.tmpl";
	const char *pl = containerd_cri_plugin(major);
	struct buf cri = BUF_INIT, rt = BUF_INIT, opts = BUF_INIT;
	if (dump && major < 2)
		copy_plugin_tables(&cri, dump, pl, default_runtime);
	char *base = base_runtime(dump, pl);
	/* an existing nvidia runtime keeps its own settings (SystemdCgroup,
	 * base_runtime_spec...); what it lacks comes from the base runtime */
	const char *own = has_nvidia_runtime(dump, pl) ? "nvidia" : NULL;
	if (base && !strcmp(base, "nvidia"))
		base[0] = '\0';
	const char *from = base && *base ? base : NULL;
	copy_runtime_keys(&rt, dump, pl, own, "", "runtime_type", NULL);
	copy_runtime_keys(&rt, dump, pl, from, "", "runtime_type", own);
	copy_runtime_keys(&opts, dump, pl, own, ".options", "BinaryName", NULL);
	copy_runtime_keys(&opts, dump, pl, from, ".options", "BinaryName", own);
	free(base);
	cJSON *v = cJSON_CreateObject();
	cJSON_AddBoolToObject(v, "v2", major >= 2);
	cJSON_AddStringToObject(v, "plugin", pl);
	cJSON_AddBoolToObject(v, "default_runtime", default_runtime);
	cJSON_AddStringToObject(v, "cri_section", cri.s);
	cJSON_AddStringToObject(v, "runtime_keys", rt.s);
	cJSON_AddStringToObject(v, "options_keys", opts.s);
	cJSON_AddStringToObject(v, "binary_name", runtime_path);
	buf_release(&cri);
	buf_release(&rt);
	buf_release(&opts);
	struct buf b = BUF_INIT;
	int rc_ = render_template(rc, tmpl, v, &b, err);
	cJSON_Delete(v);
	if (rc_ < 0) {
		buf_release(&b);
		return -1;
	}
	/* the rendering read back: it must configure what was asked */
	if (!containerd_runtime_configured(b.s, major, runtime_path, default_runtime)) {
		buf_release(&b);
		return gerr_set(err, GERR_INVALID,
				"template %s did not render a runc v2 runtime nvidia with BinaryName %s%s", tmpl, runtime_path,
				default_runtime ? " as the default runtime" : "");
	}
	*out = buf_detach(&b);
	return 0;
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

int containerd_runtime_configured(const char *dump, int major, const char *runtime_path, int want_default)
{
	const char *pl = containerd_cri_plugin(major);
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

struct nv_keep {
	const char *nv, *nvo;
	const char *after;
	struct buf *what;
	int diff;
};

static int nv_keep_fn(void *ud, const char *table, const char *key, const char *raw, const char *str)
{
	(void)str;
	struct nv_keep *k = ud;
	if (k->diff || !toml_within(table, k->nv) || (!strcmp(table, k->nvo) && !strcmp(key, "BinaryName")))
		return 0;
	char *now = toml_get_raw(k->after, table, key);
	if (!now || strcmp(now, raw)) {
		k->diff = 1;
		if (k->what && now)
			buf_addf(k->what, "%s %s = %s, now %s", table, key, raw, now);
		else if (k->what)
			buf_addf(k->what, "lost %s %s = %s", table, key, raw);
	}
	free(now);
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
	const char *pl = containerd_cri_plugin(major);
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
	/* the nvidia runtime may gain settings (copied from runc) but keeps
	 * every one it had, BinaryName aside */
	char *nvo = pl_table(pl, ".containerd.runtimes.nvidia.options");
	struct nv_keep k = { nv, nvo, after, what, 0 };
	if (!diff)
		toml_scan(before, nv_keep_fn, &k);
	diff |= k.diff;
	free(nvo);
	settings_release(&a);
	settings_release(&b);
	free(top);
	free(nv);
	free(cont);
	return diff;
}

/* ---- registry credentials ---- */

struct auth_scan {
	const char *registry;
	int found;
};

static int auth_fn(void *ud, const char *table, const char *key, const char *raw, const char *str)
{
	(void)raw;
	(void)str;
	struct auth_scan *a = ud;
	if (!toml_within(table, a->registry))
		return 0;
	static const char *const secret[] = { "auth", "username", "password", "identitytoken", NULL };
	for (int i = 0; secret[i]; i++)
		if (!strcmp(key, secret[i]))
			a->found = 1;
	/* a table registry.configs."host".auth holds nothing else */
	size_t tl = strlen(table);
	if (tl > 5 && !strcmp(table + tl - 5, ".auth") && strstr(table, ".configs."))
		a->found = 1;
	return 0;
}

int containerd_cri_has_auth(const char *dump, int major)
{
	if (!dump)
		return 0;
	char *reg = pl_table(containerd_cri_plugin(major), ".registry");
	struct auth_scan a = { reg, 0 };
	toml_scan(dump, auth_fn, &a);
	free(reg);
	return a.found;
}

char *containerd_grpc_address(const char *dump)
{
	char *a = toml_get_string(dump, "grpc", "address");
	if (a && !*a) {
		free(a);
		a = NULL;
	}
	return a;
}
