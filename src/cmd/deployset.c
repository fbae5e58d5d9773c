/* What gpuctl deploy applies: values, the objects of each phase, --render's YAML. */
#include <stdlib.h>
#include <string.h>

#include "deployset.h"
#include "gpuctl/apply.h"
#include "gpuctl/json.h"
#include "gpuctl/render.h"
#include "gpuctl/yaml.h"

#define VERSIONS_TMPL "versions.yaml.tmpl"

int deploy_registry_check(const char *r, struct gerr *err)
{
	if (!r)
		return 0;
	if (!*r)
		return gerr_set(err, GERR_USAGE, "--registry: empty");
	if (strstr(r, "://"))
		return gerr_set(err, GERR_USAGE, "--registry %s: give the registry without a scheme (like mirror.example.com:5000/nvidia)", r);
	for (const char *p = r; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == '@' || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7f)
			return gerr_set(err, GERR_USAGE, "--registry %s: not a registry (a host[:port] and an optional path)", r);
	if (*r == '/' || r[strlen(r) - 1] == '/' || strstr(r, "//"))
		return gerr_set(err, GERR_USAGE, "--registry %s: no empty path components", r);
	/* a tag after the last slash would end up in the middle of every image */
	const char *last = strrchr(r, '/');
	if (last && strchr(last, ':'))
		return gerr_set(err, GERR_USAGE, "--registry %s: only the host may carry a :port", r);
	return 0;
}

char *deploy_image_rewrite(const char *image, const char *registry)
{
	if (!registry || !*registry)
		return xstrdup(image);
	const char *slash = strchr(image, '/');
	const char *rest = image;
	if (slash) {
		size_t n = (size_t)(slash - image);
		int has_registry = memchr(image, '.', n) || memchr(image, ':', n) || (n == 9 && !strncmp(image, "localhost", 9));
		if (has_registry)
			rest = slash + 1;
	}
	return xasprintf("%s/%s", registry, rest);
}

int deploy_versions(const char *templates_dir, cJSON **out, struct gerr *err)
{
	struct render_ctx rc = { .dir = templates_dir };
	struct buf text = BUF_INIT;
	cJSON *empty = cJSON_CreateObject();
	int r = render_template(&rc, VERSIONS_TMPL, empty, &text, err);
	cJSON_Delete(empty);
	if (r == 0)
		r = yaml_parse(text.s ? text.s : "", text.len, VERSIONS_TMPL, out, err);
	buf_release(&text);
	return r;
}

static const char *skip_v(const char *v)
{
	return v && (*v == 'v' || *v == 'V') ? v + 1 : v;
}

int deploy_values(const struct deploy_set_opts *o, cJSON **values, struct gerr *err)
{
	cJSON *ver = NULL;
	if (deploy_versions(o->templates_dir, &ver, err) < 0)
		return -1;
	const cJSON *list = json_get2(ver, "devicePlugin", "versions");
	const cJSON *pick = NULL, *it;
	struct buf known = BUF_INIT;
	if (!cJSON_IsArray(list))
		list = NULL;
	cJSON_ArrayForEach(it, list) {
		const char *v = json_str(it, "version");
		if (!v || !json_str(it, "image"))
			continue;
		buf_addf(&known, "%s%s", known.len ? ", " : "", v);
		if (!pick && (!o->plugin_version || !strcmp(skip_v(v), skip_v(o->plugin_version))))
			pick = it;
	}
	const cJSON *dcgm = cJSON_GetObjectItemCaseSensitive(ver, "dcgmExporter");
	if (!known.len || !json_str(dcgm, "image") || !json_str(dcgm, "version")) {
		buf_release(&known);
		cJSON_Delete(ver);
		return gerr_set(err, GERR_INVALID,
				"%s: needs devicePlugin.versions [{version, image}] and dcgmExporter {version, image}",
				VERSIONS_TMPL);
	}
	if (!pick) {
		gerr_set(err, GERR_USAGE, "--plugin-version %s: not a version gpuctl deploys (known: %s)", o->plugin_version,
			 known.s);
		buf_release(&known);
		cJSON_Delete(ver);
		return -1;
	}
	buf_release(&known);
	cJSON *v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "namespace", o->ns ? o->ns : DEPLOY_NAMESPACE);
	cJSON_AddStringToObject(v, "runtimeClassName", DEPLOY_RUNTIME_CLASS);
	cJSON *p = cJSON_AddObjectToObject(v, "plugin");
	cJSON_AddStringToObject(p, "name", DEPLOY_PLUGIN_NAME);
	cJSON_AddStringToObject(p, "version", skip_v(json_str(pick, "version")));
	char *img = deploy_image_rewrite(json_str(pick, "image"), o->registry);
	cJSON_AddStringToObject(p, "image", img);
	free(img);
	cJSON *c = cJSON_AddObjectToObject(v, "config");
	cJSON_AddStringToObject(c, "name", DEPLOY_CONFIG_NAME);
	cJSON_AddStringToObject(c, "default", DEPLOY_CONFIG_DEFAULT);
	cJSON_AddStringToObject(c, "fallbackStrategies", "named,single");
	/* the default configuration: no sharing (gpuctl slice adds keys) */
	cJSON *s = cJSON_AddObjectToObject(v, "sharing");
	cJSON_AddStringToObject(s, DEPLOY_CONFIG_DEFAULT, "version: v1\nflags:\n  migStrategy: none\n");
	cJSON *d = cJSON_AddObjectToObject(v, "dcgmExporter");
	cJSON_AddStringToObject(d, "version", json_str(dcgm, "version"));
	img = deploy_image_rewrite(json_str(dcgm, "image"), o->registry);
	cJSON_AddStringToObject(d, "image", img);
	free(img);
	cJSON_Delete(ver);
	*values = v;
	return 0;
}

static int same_object(const cJSON *a, const cJSON *b)
{
	const char *ka = json_str(a, "kind"), *kb = json_str(b, "kind");
	const cJSON *ma = cJSON_GetObjectItemCaseSensitive(a, "metadata"), *mb = cJSON_GetObjectItemCaseSensitive(b, "metadata");
	const char *na = json_str(ma, "name"), *nb = json_str(mb, "name");
	const char *sa = json_str(ma, "namespace"), *sb = json_str(mb, "namespace");
	return ka && kb && na && nb && !strcmp(ka, kb) && !strcmp(na, nb) &&
	       ((!sa && !sb) || (sa && sb && !strcmp(sa, sb)));
}

static int check_object(const char *tmpl, const cJSON *doc, const char *ns, struct gerr *err)
{
	struct gerr kerr = GERR_INIT;
	const struct kube_kind *k = kube_kind_of(doc, &kerr);
	if (!k) {
		gerr_set(err, GERR_INVALID, "template %s: %s", tmpl, kerr.msg ? kerr.msg : "unknown kind");
		gerr_clear(&kerr);
		return -1;
	}
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
	const char *name = json_str(md, "name"), *dns = json_str(md, "namespace");
	if (!name || !*name)
		return gerr_set(err, GERR_INVALID, "template %s: a %s without metadata.name", tmpl, k->kind);
	if (k->namespaced && (!dns || strcmp(dns, ns)))
		return gerr_set(err, GERR_INVALID, "template %s: %s %s must be in the namespace %s (it says %s)", tmpl,
				k->kind, name, ns, dns ? dns : "none");
	if (!k->namespaced && dns)
		return gerr_set(err, GERR_INVALID, "template %s: %s %s is cluster-scoped: no metadata.namespace", tmpl,
				k->kind, name);
	return 0;
}

static int add_template(const struct deploy_set_opts *o, const cJSON *values, const char *tmpl, cJSON *docs,
			struct gerr *err)
{
	struct render_ctx rc = { .dir = o->templates_dir };
	cJSON *got = NULL;
	if (render_yaml_docs(&rc, tmpl, values, &got, NULL, err) < 0)
		return -1;
	const char *ns = json_str(values, "namespace");
	cJSON *doc;
	while ((doc = cJSON_DetachItemFromArray(got, 0))) {
		if (cJSON_IsNull(doc)) { /* an empty document (a trailing ---) */
			cJSON_Delete(doc);
			continue;
		}
		if (check_object(tmpl, doc, ns, err) < 0) {
			cJSON_Delete(doc);
			cJSON_Delete(got);
			return -1;
		}
		int dup = 0;
		const cJSON *have;
		cJSON_ArrayForEach(have, docs)
			dup |= same_object(have, doc);
		if (dup)
			cJSON_Delete(doc);
		else
			cJSON_AddItemToArray(docs, doc);
	}
	cJSON_Delete(got);
	return 0;
}

int deploy_phase_objects(const struct deploy_set_opts *o, const cJSON *values, const char *phase, cJSON *docs,
			 struct gerr *err)
{
	static const struct {
		const char *phase;
		const char *tmpl[4];
	} set[] = {
		/* the MPS control daemon goes with the plugin: the plugin with an MPS config fails without it */
		{ "plugin", { "device-plugin.yaml.tmpl", "mps-control-daemon.yaml.tmpl", "sharing-config.yaml.tmpl", NULL } },
		{ "gfd", { "gfd.yaml.tmpl", NULL, NULL, NULL } },
		{ "dcgm-exporter", { "dcgm-exporter.yaml.tmpl", NULL, NULL, NULL } },
	};
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
		if (strcmp(set[i].phase, phase))
			continue;
		if (add_template(o, values, "namespace.yaml.tmpl", docs, err) < 0)
			return -1;
		for (size_t t = 0; t < 4 && set[i].tmpl[t]; t++)
			if (add_template(o, values, set[i].tmpl[t], docs, err) < 0)
				return -1;
		return 0;
	}
	return gerr_set(err, GERR_INTERNAL, "no objects for the phase %s", phase);
}

void deploy_render_yaml(const cJSON *docs, struct buf *out)
{
	const cJSON *d;
	cJSON_ArrayForEach(d, docs) {
		buf_adds(out, "---\n");
		yaml_emit(d, out);
		if (out->len && out->s[out->len - 1] != '\n')
			buf_adds(out, "\n");
	}
}
