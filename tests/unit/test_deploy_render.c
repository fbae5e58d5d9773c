/* gpuctl deploy's objects (src/cmd/deployset.c): every template renders and
 * parses, carries gpuctl's labels and namespace and the pinned images;
 * --registry rewrites every image; --render's YAML is byte-stable. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/deployset.h"
#include "gpuctl/json.h"
#include "gpuctl/yaml.h"

static const char *const all_phases[] = { "plugin", "gfd", "dcgm-exporter" };

static cJSON *objects(const struct deploy_set_opts *o)
{
	struct gerr err = GERR_INIT;
	cJSON *values = NULL;
	cr_assert_eq(deploy_values(o, &values, &err), 0, "%s", err.msg);
	cJSON *docs = cJSON_CreateArray();
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(deploy_phase_objects(o, values, all_phases[i], docs, &err), 0, "%s", err.msg);
	cJSON_Delete(values);
	return docs;
}

/* every image of every container (init containers too) */
static void images(const cJSON *docs, void (*fn)(const char *img, void *ud), void *ud)
{
	const cJSON *d;
	cJSON_ArrayForEach(d, docs) {
		const cJSON *spec = json_get2(cJSON_GetObjectItemCaseSensitive(d, "spec"), "template", "spec");
		const char *lists[] = { "containers", "initContainers" };
		for (int l = 0; l < 2; l++) {
			const cJSON *c;
			cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, lists[l]))
				fn(json_str(c, "image"), ud);
		}
	}
}

static void count_image(const char *img, void *ud)
{
	(void)img;
	(*(int *)ud)++;
}

Test(deploy_render, every_object_is_labelled_namespaced_and_pinned)
{
	struct deploy_set_opts o = { 0 };
	cJSON *docs = objects(&o);
	cr_assert_eq(cJSON_GetArraySize(docs), 13, "namespace, 4+1+1 plugin, 4 gfd, 2 dcgm: %d", cJSON_GetArraySize(docs));
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(docs, 0), "kind"), "Namespace", "the namespace comes first");
	int namespaces = 0, daemonsets = 0;
	const cJSON *d;
	cJSON_ArrayForEach(d, docs) {
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(d, "metadata");
		const char *kind = json_str(d, "kind");
		cr_assert_str_eq(json_str(json_get2(d, "metadata", "labels"), "app.kubernetes.io/managed-by"), "gpuctl",
				 "%s %s", kind, json_str(md, "name"));
		cr_assert_str_eq(json_str(json_get2(d, "metadata", "labels"), "gpuctl.io/component"), "deploy");
		namespaces += !strcmp(kind, "Namespace");
		if (strcmp(kind, "Namespace") && strcmp(kind, "ClusterRole") && strcmp(kind, "ClusterRoleBinding"))
			cr_assert_str_eq(json_str(md, "namespace"), DEPLOY_NAMESPACE, "%s", kind);
		if (!strcmp(kind, "DaemonSet")) {
			daemonsets++;
			const cJSON *spec = json_get2(cJSON_GetObjectItemCaseSensitive(d, "spec"), "template", "spec");
			cr_assert_str_eq(json_str(spec, "runtimeClassName"), "nvidia");
			const cJSON *tol = cJSON_GetObjectItemCaseSensitive(spec, "tolerations"), *t;
			int gpu_taint = 0;
			cJSON_ArrayForEach(t, tol)
				gpu_taint |= !strcmp(json_str(t, "key"), "nvidia.com/gpu") && !strcmp(json_str(t, "operator"), "Exists");
			cr_assert(gpu_taint, "%s tolerates the GPU taint", json_str(md, "name"));
			char *aff = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(spec, "affinity"));
			cr_assert(strstr(aff, "\"accelerator\"") && strstr(aff, "nvidia.com/gpu.present"), "%s", aff);
			free(aff);
		}
	}
	cr_assert_eq(namespaces, 1, "the namespace once, though three phases need it");
	cr_assert_eq(daemonsets, 4);
	/* the device plugin: the chart's containers, per-node configurations */
	const cJSON *ds = cJSON_GetArrayItem(docs, 4);
	cr_assert_str_eq(json_str(ds, "kind"), "DaemonSet");
	const cJSON *spec = json_get2(cJSON_GetObjectItemCaseSensitive(ds, "spec"), "template", "spec");
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(spec, "initContainers"), 0), "name"),
			 "nvidia-device-plugin-init");
	const cJSON *ctrs = cJSON_GetObjectItemCaseSensitive(spec, "containers");
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(ctrs, 0), "name"), "nvidia-device-plugin-sidecar");
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(ctrs, 1), "name"), "nvidia-device-plugin-ctr");
	cr_assert_str_eq(json_str(cJSON_GetArrayItem(ctrs, 1), "image"), "nvcr.io/nvidia/k8s-device-plugin:v0.19.3");
	char *env = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ctrs, 0), "env"));
	cr_assert(strstr(env, "\"nvidia.com/device-plugin.config\"") && strstr(env, "\"DEFAULT_CONFIG\",\"value\":\"any\""),
		  "%s", env);
	free(env);
	cr_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "shareProcessNamespace")));
	/* the MPS control daemon the plugin waits for under an MPS config: only on
	 * nodes labelled nvidia.com/mps.capable=true, with the plugin's MPS root */
	const cJSON *mps = cJSON_GetArrayItem(docs, 5);
	cr_assert_str_eq(json_str(mps, "kind"), "DaemonSet");
	cr_assert_str_eq(json_str(cJSON_GetObjectItemCaseSensitive(mps, "metadata"), "name"),
			 "nvidia-device-plugin-mps-control-daemon");
	const cJSON *mspec = json_get2(cJSON_GetObjectItemCaseSensitive(mps, "spec"), "template", "spec");
	cr_assert_str_eq(json_str(cJSON_GetObjectItemCaseSensitive(mspec, "nodeSelector"), "nvidia.com/mps.capable"), "true");
	const cJSON *mctr = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(mspec, "containers"), 1);
	cr_assert_str_eq(json_str(mctr, "name"), "mps-control-daemon-ctr");
	cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(mctr, "command"), 0)->valuestring,
			 "mps-control-daemon");
	cr_assert_str_eq(json_str(mctr, "image"), "nvcr.io/nvidia/k8s-device-plugin:v0.19.3", "the plugin's image");
	cr_assert(cJSON_IsTrue(json_get2(mctr, "securityContext", "privileged")));
	char *vols = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(mspec, "volumes"));
	cr_assert(strstr(vols, "\"path\":\"/run/nvidia/mps\"") && strstr(vols, "\"path\":\"/run/nvidia/mps/shm\""),
		  "the plugin's MPS_ROOT: %s", vols);
	free(vols);
	/* the ConfigMap: key any, no sharing */
	const cJSON *cm = cJSON_GetArrayItem(docs, 6);
	cr_assert_str_eq(json_str(cm, "kind"), "ConfigMap");
	cr_assert_str_eq(json_str(cJSON_GetObjectItemCaseSensitive(cm, "data"), "any"), "version: v1\nflags:\n  migStrategy: none\n");
	int n = 0;
	images(docs, count_image, &n);
	cr_assert_eq(n, 11, "3+4+3 plugin, MPS daemon and GFD containers (init(s), sidecar, main), 1 exporter: %d", n);
	cJSON_Delete(docs);
}

static void from_mirror(const char *img, void *ud)
{
	(void)ud;
	cr_assert(!strncmp(img, "mirror.example.com:5000/nv/", 27), "%s", img);
	cr_assert(!strstr(img, "nvcr.io"), "%s", img);
}

Test(deploy_render, registry_rewrites_every_image)
{
	struct deploy_set_opts o = { .registry = "mirror.example.com:5000/nv" };
	cJSON *docs = objects(&o);
	images(docs, from_mirror, NULL);
	cJSON_Delete(docs);
	char *s = deploy_image_rewrite("nvcr.io/nvidia/k8s/dcgm-exporter:4.6.0-4.8.3-ubuntu22.04", "reg.local");
	cr_assert_str_eq(s, "reg.local/nvidia/k8s/dcgm-exporter:4.6.0-4.8.3-ubuntu22.04");
	free(s);
	s = deploy_image_rewrite("busybox:1.36", "reg.local");
	cr_assert_str_eq(s, "reg.local/busybox:1.36", "an image without a registry part gets one");
	free(s);
	s = deploy_image_rewrite("localhost/x/y:1", "reg.local");
	cr_assert_str_eq(s, "reg.local/x/y:1");
	free(s);
	s = deploy_image_rewrite("nvcr.io/nvidia/k8s-device-plugin:v0.19.3", NULL);
	cr_assert_str_eq(s, "nvcr.io/nvidia/k8s-device-plugin:v0.19.3");
	free(s);
}

Test(deploy_render, bad_registries_are_usage_errors)
{
	const char *bad[] = { "", "https://reg.local", "reg.local/", "/reg", "reg local", "reg.local/nv:tag", "a//b",
			      "user@reg" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gerr err = GERR_INIT;
		cr_assert_eq(deploy_registry_check(bad[i], &err), -1, "%s", bad[i]);
		cr_assert_eq(err.code, GERR_USAGE);
		cr_assert(strstr(err.msg, "--registry"), "%s", err.msg);
		gerr_clear(&err);
	}
	struct gerr err = GERR_INIT;
	cr_assert_eq(deploy_registry_check("reg.local:5000/mirror/nvidia", &err), 0);
	cr_assert_eq(deploy_registry_check(NULL, &err), 0);
}

Test(deploy_render, plugin_version_picks_the_pinned_image)
{
	struct gerr err = GERR_INIT;
	cJSON *v = NULL;
	struct deploy_set_opts o = { .plugin_version = "0.17.2" };
	cr_assert_eq(deploy_values(&o, &v, &err), 0, "%s", err.msg);
	cr_assert_str_eq(json_str(cJSON_GetObjectItemCaseSensitive(v, "plugin"), "image"),
			 "nvcr.io/nvidia/k8s-device-plugin:v0.17.2");
	cr_assert_str_eq(json_str(cJSON_GetObjectItemCaseSensitive(v, "plugin"), "version"), "0.17.2");
	cJSON_Delete(v);
	v = NULL;
	o.plugin_version = "v0.99.0";
	cr_assert_eq(deploy_values(&o, &v, &err), -1);
	cr_assert_eq(err.code, GERR_USAGE);
	cr_assert(strstr(err.msg, "v0.19.3, v0.17.2"), "the known versions are listed: %s", err.msg);
	gerr_clear(&err);
}

Test(deploy_render, render_is_byte_stable_and_parses_back)
{
	struct deploy_set_opts o = { .ns = "gpu" };
	cJSON *a = objects(&o), *b = objects(&o);
	struct buf ya = BUF_INIT, yb = BUF_INIT;
	deploy_render_yaml(a, &ya);
	deploy_render_yaml(b, &yb);
	cr_assert_str_eq(ya.s, yb.s, "two renderings are the same bytes");
	cr_assert(!strncmp(ya.s, "---\n", 4));
	cJSON *back = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(yaml_parse_all(ya.s, ya.len, "render", &back, &err), 0, "%s", err.msg);
	/* a leading --- gives no empty document */
	cr_assert(cJSON_Compare(back, a, 1), "what --render prints is what deploy applies");
	cr_assert_str_eq(json_str(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(back, 1), "metadata"), "namespace"),
			 "gpu", "-n moves every namespaced object");
	cJSON_Delete(back);
	buf_release(&ya);
	buf_release(&yb);
	cJSON_Delete(a);
	cJSON_Delete(b);
}

Test(deploy_render, an_override_may_not_move_objects_to_another_namespace)
{
	char dir[] = "/tmp/gpuctl-deploy-render-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char *path = xasprintf("%s/dcgm-exporter.yaml.tmpl", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  namespace: elsewhere\n", f);
	fclose(f);
	struct deploy_set_opts o = { .templates_dir = dir };
	struct gerr err = GERR_INIT;
	cJSON *v = NULL, *docs = cJSON_CreateArray();
	cr_assert_eq(deploy_values(&o, &v, &err), 0, "%s", err.msg);
	cr_assert_eq(deploy_phase_objects(&o, v, "dcgm-exporter", docs, &err), -1);
	cr_assert(strstr(err.msg, "must be in the namespace nvidia-device-plugin"), "%s", err.msg);
	gerr_clear(&err);
	unlink(path);
	rmdir(dir);
	free(path);
	cJSON_Delete(v);
	cJSON_Delete(docs);
}
