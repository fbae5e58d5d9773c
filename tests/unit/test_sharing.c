/* Sharing: the device plugin's config validator (a table of accepted and
 * rejected configs), the config builder, profiles, the node rejections and
 * the capacity a node must advertise. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/sharing.h"
#include "gpuctl/yaml.h"

static cJSON *yaml(const char *text)
{
	cJSON *out = NULL;
	struct gerr e = GERR_INIT;
	cr_assert_eq(yaml_parse(text, strlen(text), "test", &out, &e), 0, "%s", e.msg);
	return out;
}

/* ---- the validator ---- */

struct vcase {
	const char *yaml;
	const char *error; /* NULL: accepted; else a part of the message (the field and why) */
};

static const struct vcase cases[] = {
	/* accepted */
	{ "version: v1\nflags:\n  migStrategy: none\n", NULL },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 4\n", NULL },
	{ "version: v1\nsharing:\n  timeSlicing:\n    renameByDefault: true\n    failRequestsGreaterThanOne: true\n"
	  "    resources:\n    - name: gpu\n      replicas: 10\n      devices: all\n", NULL },
	{ "version: v1\nflags:\n  migStrategy: mixed\nsharing:\n  timeSlicing:\n    resources:\n"
	  "    - name: nvidia.com/mig-1g.5gb\n      replicas: 2\n    - name: nvidia.com/gpu\n      replicas: 3\n", NULL },
	{ "version: v1\nflags:\n  migStrategy: single\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n"
	  "      replicas: 48\n", NULL },
	{ "version: v1\nflags:\n  failOnInitError: true\n  mpsRoot: /run/nvidia/mps\n  deviceDiscoveryStrategy: nvml\n"
	  "  plugin:\n    deviceListStrategy: [envvar, cdi-cri]\n    deviceIDStrategy: index\n"
	  "  gfd:\n    oneshot: false\n    sleepInterval: 60s\nimex:\n  channelIDs: [0]\n  required: false\n", NULL },
	/* rejected: the plugin's own rules */
	{ "version: v2\n", "version: unknown version v2" },
	{ "flags:\n  migStrategy: none\n", "version: missing" },
	{ "version: v1\nflags:\n  migStrategy: some\n", "flags.migStrategy: some is not one of none, single, mixed" },
	{ "version: v1\nflags:\n  deviceDiscoveryStrategy: pci\n", "flags.deviceDiscoveryStrategy: pci" },
	{ "version: v1\nflags:\n  plugin:\n    deviceListStrategy: files\n", "flags.plugin.deviceListStrategy: files" },
	{ "version: v1\nflags:\n  plugin:\n    deviceIDStrategy: serial\n", "flags.plugin.deviceIDStrategy: serial" },
	{ "version: v1\nflags:\n  failOnInitError: yes-please\n", "flags.failOnInitError: must be true or false" },
	{ "version: v1\nsharing:\n  timeSlicing: {}\n", "sharing.timeSlicing.resources: missing: no resources specified" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources: []\n", "sharing.timeSlicing.resources: empty" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - replicas: 4\n",
	  "sharing.timeSlicing.resources[0].name: missing: no resource name specified" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n",
	  "sharing.timeSlicing.resources[0].replicas: missing: no replicas specified" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 1\n",
	  "sharing.timeSlicing.resources[0].replicas: 1: the number of replicas must be >= 2" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 0\n",
	  "replicas: 0: the number of replicas must be >= 2" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2.5\n",
	  "sharing.timeSlicing.resources[0].replicas: must be a whole number" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: \"4\"\n",
	  "replicas: must be a whole number" },
	{ "version: v1\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 49\n",
	  "sharing.mps.resources[0].replicas: 49: MPS allows at most 48" },
	{ "version: v1\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/mig-1g.5gb\n      replicas: 2\n",
	  "sharing.mps.resources[0].name: nvidia.com/mig-1g.5gb: MPS shares only nvidia.com/gpu" },
	{ "version: v1\nflags:\n  migStrategy: mixed\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n"
	  "      replicas: 2\n", "flags.migStrategy: mixed is not supported with MPS" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n"
	  "  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n", "sharing: timeSlicing and mps together" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/Bad_Name\n      replicas: 2\n",
	  "sharing.timeSlicing.resources[0]: nvidia.com/Bad_Name: not a resource name" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
	  "    - name: nvidia.com/gpu-with-a-name-much-too-long-for-any-resource-name-at-all\n      replicas: 2\n",
	  "a resource name is 63 characters or less" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/tpu\n      replicas: 2\n",
	  "time-slicing shares only nvidia.com/gpu and the MIG resources" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    renameByDefault: maybe\n    resources:\n    - name: gpu\n      replicas: 2\n",
	  "sharing.timeSlicing.renameByDefault: must be true or false" },
	/* rejected: stricter than the plugin (it ignores these with a warning, or silently) */
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n"
	  "      rename: gpu.small\n", "sharing.timeSlicing.resources[0].rename: not supported" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n"
	  "      devices: [0, 1]\n", "sharing.timeSlicing.resources[0].devices: only \"all\"" },
	{ "version: v1\nresources:\n  gpus:\n  - pattern: '*'\n    name: gpu\n", "resources: not supported" },
	{ "version: v1\nsharing:\n  timeslicing:\n    resources: []\n", "sharing.timeslicing: unknown key" },
	{ "version: v1\nmigStrategy: none\n", "migStrategy: unknown key" },
	{ "version: v1\nflags:\n  replicas: 4\n", "flags.replicas: unknown key" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    replicas: 4\n    resources:\n    - name: gpu\n      replicas: 2\n",
	  "sharing.timeSlicing.replicas: unknown key" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n"
	  "      replica: 3\n", "sharing.timeSlicing.resources[0].replica: unknown key" },
	{ "version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: gpu\n      replicas: 2\n"
	  "    - name: nvidia.com/gpu\n      replicas: 4\n", "sharing.timeSlicing.resources[1].name: nvidia.com/gpu is named twice" },
	{ "- version: v1\n", "must be a mapping" },
	{ "version: v1\nsharing: [timeSlicing]\n", "sharing: must be a mapping" },
	{ "version: v1\nimex:\n  channelIDs: [-1]\n", "imex.channelIDs" },
};

Test(sharing, validator_table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *c = yaml(cases[i].yaml);
		struct gerr e = GERR_INIT;
		int rc = sharing_config_validate(c, &e);
		if (!cases[i].error) {
			cr_expect_eq(rc, 0, "case %zu must be accepted: %s\n%s", i, e.msg, cases[i].yaml);
		} else {
			cr_expect_eq(rc, -1, "case %zu must be rejected:\n%s", i, cases[i].yaml);
			cr_expect_eq(e.code, GERR_INVALID, "case %zu", i);
			cr_expect(e.msg && strstr(e.msg, cases[i].error), "case %zu: want '%s' in '%s'", i, cases[i].error,
				  e.msg ? e.msg : "(none)");
		}
		gerr_clear(&e);
		cJSON_Delete(c);
	}
}

/* ---- profiles and the spec ---- */

Test(sharing, builtin_profiles)
{
	int r = 0;
	struct gerr e = GERR_INIT;
	cr_assert_eq(sharing_profile_replicas(NULL, "any", &r, &e), 0);
	cr_expect_eq(r, 4);
	cr_assert_eq(sharing_profile_replicas(NULL, "high-memory", &r, &e), 0);
	cr_expect_eq(r, 2);
	cr_assert_eq(sharing_profile_replicas(NULL, "high-density", &r, &e), 0);
	cr_expect_eq(r, 8);
	cr_assert_eq(sharing_profile_replicas(NULL, "huge", &r, &e), -1);
	cr_expect_eq(e.code, GERR_USAGE);
	cr_expect(strstr(e.msg, "--profile huge: no such profile (known: any=4, high-memory=2, high-density=8)"), "%s",
		  e.msg);
	gerr_clear(&e);
}

Test(sharing, config_file_profiles)
{
	cJSON *p = yaml("inference: 6\nhigh-memory: {replicas: 3}\nbad: 1\nworse: many\n");
	int r = 0;
	struct gerr e = GERR_INIT;
	cr_assert_eq(sharing_profile_replicas(p, "inference", &r, &e), 0);
	cr_expect_eq(r, 6);
	cr_assert_eq(sharing_profile_replicas(p, "high-memory", &r, &e), 0, "the config file overrides a built-in");
	cr_expect_eq(r, 3);
	cr_assert_eq(sharing_profile_replicas(p, "bad", &r, &e), -1);
	cr_expect_eq(e.code, GERR_CONFIG);
	cr_expect(strstr(e.msg, "slice.profiles.bad"), "%s", e.msg);
	cr_assert_eq(sharing_profile_replicas(p, "worse", &r, &e), -1);
	cr_assert_eq(sharing_profile_replicas(p, "nope", &r, &e), -1);
	cr_expect(strstr(e.msg, "inference"), "the config file's profiles are listed: %s", e.msg);
	gerr_clear(&e);
	cJSON_Delete(p);
}

Test(sharing, spec_complete)
{
	struct gerr e = GERR_INIT;
	struct sharing_spec s = { .model = SHARING_TIME_SLICING };
	cr_assert_eq(sharing_spec_complete(&s, NULL, &e), 0);
	cr_expect_eq(s.replicas, 4, "the default profile is any=4");
	s = (struct sharing_spec){ .model = SHARING_TIME_SLICING, .profile = "high-density" };
	cr_assert_eq(sharing_spec_complete(&s, NULL, &e), 0);
	cr_expect_eq(s.replicas, 8);
	static const struct {
		struct sharing_spec s;
		const char *msg;
	} bad[] = {
		{ { .model = SHARING_TIME_SLICING, .replicas = 1 }, "--replicas 1: the device plugin needs 2 or more" },
		{ { .model = SHARING_TIME_SLICING, .replicas = 4, .profile = "any" }, "give one of them" },
		{ { .model = SHARING_MPS, .replicas = 49 }, "MPS allows at most 48" },
		{ { .model = SHARING_MPS, .replicas = 2, .mig = SHARING_MIG_MIXED }, "mixed" },
		{ { .model = SHARING_NONE, .replicas = 4 }, "none shares no GPU" },
		{ { .model = SHARING_MIG, .rename = 1 }, "mig shares no GPU" },
		{ { .model = SHARING_MIG, .mig = SHARING_MIG_NONE }, "a MIG strategy is single or mixed" },
		{ { .model = SHARING_TIME_SLICING, .mig_config = "all-1g.10gb" }, "--mig-config goes with the model mig" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = bad[i].s;
		cr_expect_eq(sharing_spec_complete(&s, NULL, &e), -1, "case %zu", i);
		cr_expect_eq(e.code, GERR_USAGE, "case %zu", i);
		cr_expect(e.msg && strstr(e.msg, bad[i].msg), "case %zu: %s", i, e.msg);
		gerr_clear(&e);
	}
	s = (struct sharing_spec){ .model = SHARING_MIG };
	cr_assert_eq(sharing_spec_complete(&s, NULL, &e), 0);
	cr_expect_eq(s.mig, SHARING_MIG_SINGLE, "mig defaults to the single strategy");
}

/* ---- the builder ---- */

static char *built(struct sharing_spec s, char **key)
{
	struct gerr e = GERR_INIT;
	cr_assert_eq(sharing_spec_complete(&s, NULL, &e), 0, "%s", e.msg);
	cJSON *c = sharing_config_build(&s);
	cr_assert_eq(sharing_config_validate(c, &e), 0, "what the builder makes passes the validator: %s", e.msg);
	struct buf y = BUF_INIT;
	sharing_config_yaml(c, &y);
	cJSON_Delete(c);
	*key = sharing_config_key(&s);
	return buf_detach(&y);
}

Test(sharing, builder_keys_and_configs)
{
	char *key, *y;
	y = built((struct sharing_spec){ .model = SHARING_TIME_SLICING, .replicas = 4 }, &key);
	cr_expect_str_eq(key, "ts-4");
	cr_expect_str_eq(y, "version: v1\nflags:\n  migStrategy: none\nsharing:\n  timeSlicing:\n    resources:\n"
			    "    - name: nvidia.com/gpu\n      replicas: 4\n");
	free(key);
	free(y);
	y = built((struct sharing_spec){ .model = SHARING_TIME_SLICING, .profile = "high-density", .rename = 1,
					 .fail_gt1 = 1 }, &key);
	cr_expect_str_eq(key, "ts-8-rename-max1");
	cr_expect(strstr(y, "renameByDefault: true\n"), "%s", y);
	cr_expect(strstr(y, "failRequestsGreaterThanOne: true\n"), "%s", y);
	cr_expect(strstr(y, "replicas: 8\n"), "%s", y);
	free(key);
	free(y);
	y = built((struct sharing_spec){ .model = SHARING_MPS, .replicas = 2 }, &key);
	cr_expect_str_eq(key, "mps-2");
	cr_expect(strstr(y, "  mps:\n"), "%s", y);
	free(key);
	free(y);
	y = built((struct sharing_spec){ .model = SHARING_NONE }, &key);
	cr_expect_str_eq(key, "none");
	cr_expect_str_eq(y, "version: v1\nflags:\n  migStrategy: none\n", "none is a real config without sharing");
	free(key);
	free(y);
	y = built((struct sharing_spec){ .model = SHARING_MIG, .mig = SHARING_MIG_MIXED }, &key);
	cr_expect_str_eq(key, "mig-mixed");
	cr_expect_str_eq(y, "version: v1\nflags:\n  migStrategy: mixed\n");
	free(key);
	free(y);
	y = built((struct sharing_spec){ .model = SHARING_TIME_SLICING, .replicas = 3, .mig = SHARING_MIG_SINGLE }, &key);
	cr_expect_str_eq(key, "ts-3-mig-single");
	free(key);
	free(y);
}

/* ---- nodes: rejections ---- */

static cJSON *node(const char *labels_yaml, const char *capacity_yaml)
{
	cJSON *n = cJSON_CreateObject();
	cJSON *md = cJSON_AddObjectToObject(n, "metadata");
	cJSON_AddStringToObject(md, "name", "gpu-1");
	cJSON_AddItemToObject(md, "labels", labels_yaml ? yaml(labels_yaml) : cJSON_CreateObject());
	cJSON *st = cJSON_AddObjectToObject(n, "status");
	cJSON_AddItemToObject(st, "capacity", capacity_yaml ? yaml(capacity_yaml) : cJSON_CreateObject());
	/* a healthy node: every device the plugin lists is allocatable */
	cJSON_AddItemToObject(st, "allocatable", cJSON_Duplicate(cJSON_GetObjectItem(st, "capacity"), 1));
	return n;
}

static int check(enum sharing_model m, const char *labels, char **msg, char **notes)
{
	struct sharing_spec s = { .model = m, .replicas = m == SHARING_MPS || m == SHARING_TIME_SLICING ? 2 : 0 };
	cJSON *n = node(labels, NULL);
	struct gerr e = GERR_INIT;
	struct buf nb = BUF_INIT;
	int rc = sharing_node_check(&s, n, &nb, &e);
	*msg = e.msg ? strdup(e.msg) : NULL;
	*notes = buf_detach(&nb);
	if (rc < 0)
		cr_expect_eq(e.code, GERR_INVALID);
	gerr_clear(&e);
	cJSON_Delete(n);
	return rc;
}

Test(sharing, node_rejections)
{
	static const struct {
		enum sharing_model m;
		const char *labels;
		const char *msg; /* NULL: allowed */
	} t[] = {
		{ SHARING_MPS, "nvidia.com/mig.strategy: single\nnvidia.com/gpu.compute.major: '9'\n",
		  "node gpu-1: MPS with MIG enabled (nvidia.com/mig.strategy=single)" },
		{ SHARING_MPS, "nvidia.com/mig.config: all-1g.10gb\n", "MPS with MIG enabled (nvidia.com/mig.config=all-1g.10gb)" },
		{ SHARING_MPS, "nvidia.com/mig.config: all-disabled\nnvidia.com/gpu.compute.major: '8'\n", NULL },
		{ SHARING_MPS, "nvidia.com/gpu.compute.major: '6'\n", "MPS needs Volta or newer GPUs" },
		{ SHARING_MPS, "nvidia.com/gpu.compute.major: '7'\n", NULL },
		{ SHARING_TIME_SLICING, "gpuctl.io/compute-mode: Exclusive_Process\n", "compute mode EXCLUSIVE_PROCESS" },
		{ SHARING_TIME_SLICING, "gpuctl.io/compute-mode: Default\n", NULL },
		{ SHARING_MPS, "gpuctl.io/compute-mode: Exclusive_Process\nnvidia.com/gpu.compute.major: '8'\n", NULL },
		{ SHARING_TIME_SLICING, "gpuctl.io/compute-mode: Prohibited\n", "PROHIBITED" },
		{ SHARING_TIME_SLICING, "nvidia.com/gpu.compute.major: '6'\n", NULL },
		{ SHARING_MIG, "nvidia.com/mig.capable: 'false'\n", "cannot be partitioned" },
		{ SHARING_MIG, "nvidia.com/mig.capable: 'true'\n", NULL },
		{ SHARING_NONE, "nvidia.com/gpu.compute.major: '3'\n", NULL },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *msg, *notes;
		int rc = check(t[i].m, t[i].labels, &msg, &notes);
		if (t[i].msg) {
			cr_expect_eq(rc, -1, "case %zu", i);
			cr_expect(msg && strstr(msg, t[i].msg), "case %zu: want '%s' in '%s'", i, t[i].msg, msg);
		} else {
			cr_expect_eq(rc, 0, "case %zu: %s", i, msg);
		}
		free(msg);
		free(notes);
	}
}

Test(sharing, node_unknowns_are_noted)
{
	char *msg, *notes;
	cr_assert_eq(check(SHARING_TIME_SLICING, NULL, &msg, &notes), 0);
	cr_expect(strstr(notes, "compute mode not checked (no gpuctl.io/compute-mode label or annotation)"), "%s", notes);
	free(msg);
	free(notes);
	cr_assert_eq(check(SHARING_MPS, NULL, &msg, &notes), 0);
	cr_expect(strstr(notes, "GPU architecture not checked"), "%s", notes);
	free(msg);
	free(notes);
}

/* ---- the capacity a node must advertise ---- */

Test(sharing, expect_from_gpu_count)
{
	struct sharing_spec s = { .model = SHARING_TIME_SLICING, .replicas = 4 };
	cJSON *n = node("nvidia.com/gpu.count: '2'\nnvidia.com/gpu.replicas: '8'\n", "nvidia.com/gpu: '16'\n");
	struct sharing_expect e;
	struct gerr err = GERR_INIT;
	cr_assert_eq(sharing_expect_node(&s, n, 0, &e, &err), 0);
	cr_expect_str_eq(e.resource, "nvidia.com/gpu");
	cr_expect_eq(e.physical, 2);
	cr_expect_eq(e.before, 16);
	cr_expect_eq(e.count, 8);
	cr_expect_eq(e.replicas, 4);
	cr_expect_str_eq(e.strategy, "time-slicing");
	char *why = NULL;
	cr_expect_eq(sharing_node_ready(&e, n, &why), 0);
	cr_expect(strstr(why, "nvidia.com/gpu 16, want 8"), "%s", why);
	cr_expect(strstr(why, "nvidia.com/gpu.replicas=8, want 4"), "%s", why);
	free(why);
	cJSON_Delete(n);
	/* the plugin's answer */
	n = node("nvidia.com/gpu.count: '2'\nnvidia.com/gpu.replicas: '4'\nnvidia.com/gpu.sharing-strategy: time-slicing\n",
		 "nvidia.com/gpu: '8'\n");
	cr_expect_eq(sharing_node_ready(&e, n, &why), 1);
	cr_expect_null(why);
	cJSON_Delete(n);
}

Test(sharing, ready_needs_the_devices_allocatable_not_only_counted)
{
	/* after a plugin restart the kubelet may show the new capacity while
	 * the devices are still unhealthy: nothing can be scheduled yet */
	struct sharing_spec s = { .model = SHARING_NONE };
	cJSON *n = node("nvidia.com/gpu.present: 'true'\n", "nvidia.com/gpu: '1'\n");
	struct sharing_expect e;
	struct gerr err = GERR_INIT;
	cr_assert_eq(sharing_expect_node(&s, n, 0, &e, &err), 0);
	cr_expect_eq(e.count, 1);
	cr_expect_eq(sharing_node_ready(&e, n, NULL), 1);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(n, "status"), "allocatable", yaml("nvidia.com/gpu: '0'\n"));
	char *why = NULL;
	cr_expect_eq(sharing_node_ready(&e, n, &why), 0);
	cr_expect(why && strstr(why, "nvidia.com/gpu allocatable 0 of capacity 1"), "%s", why);
	free(why);
	cJSON_Delete(n);
}

Test(sharing, expect_without_gfd_is_capacity_alone)
{
	/* a node no gpu-feature-discovery labels (the device plugin alone):
	 * nobody writes nvidia.com/gpu.replicas, so capacity is the proof */
	struct sharing_spec s = { .model = SHARING_TIME_SLICING, .replicas = 4 };
	cJSON *n = node("nvidia.com/gpu.present: 'true'\n", "nvidia.com/gpu: '2'\n");
	struct sharing_expect e;
	struct gerr err = GERR_INIT;
	cr_assert_eq(sharing_expect_node(&s, n, 0, &e, &err), 0);
	cr_expect_eq(e.gfd, 0);
	cr_expect_eq(e.count, 8);
	char *why = NULL;
	cr_expect_eq(sharing_node_ready(&e, n, &why), 0);
	cr_expect(strstr(why, "nvidia.com/gpu 2, want 8"), "%s", why);
	cr_expect_null(strstr(why, "replicas"), "%s", why);
	free(why);
	cJSON_Delete(n);
	n = node("nvidia.com/gpu.present: 'true'\n", "nvidia.com/gpu: '8'\n");
	cr_expect_eq(sharing_node_ready(&e, n, NULL), 1);
	cJSON_Delete(n);
	/* with GFD's labels they must agree */
	n = node("nvidia.com/gfd.timestamp: '1'\n", "nvidia.com/gpu: '2'\n");
	cr_assert_eq(sharing_expect_node(&s, n, 0, &e, &err), 0);
	cr_expect_eq(e.gfd, 1);
	cJSON_Delete(n);
	n = node("nvidia.com/gfd.timestamp: '1'\n", "nvidia.com/gpu: '8'\n");
	cr_expect_eq(sharing_node_ready(&e, n, &why), 0);
	cr_expect(strstr(why, "nvidia.com/gpu.replicas=(none), want 4"), "%s", why);
	free(why);
	cJSON_Delete(n);
}

Test(sharing, expect_replicas_from_the_config_in_use)
{
	/* no GFD: 8 advertised under a config of 4 replicas are 2 GPUs */
	long r = 0;
	cr_expect_eq(sharing_config_model("version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
					     "    - name: nvidia.com/gpu\n      replicas: 4\n", &r, NULL), 0);
	cr_expect_eq(r, 4);
	cr_expect_eq(sharing_config_model("version: v1\nflags: {migStrategy: none}\n", &r, NULL), 0);
	cr_expect_eq(r, 1);
	cr_expect_eq(sharing_config_model("version: [", &r, NULL), -1);
	struct sharing_spec s = { .model = SHARING_TIME_SLICING, .replicas = 8 };
	cJSON *n = node("nvidia.com/gpu.present: 'true'\n", "nvidia.com/gpu: '8'\n");
	struct sharing_expect e;
	struct gerr err = GERR_INIT;
	cr_assert_eq(sharing_expect_node(&s, n, 4, &e, &err), 0);
	cr_expect_eq(e.physical, 2);
	cr_expect_eq(e.count, 16);
	cJSON_Delete(n);
}

Test(sharing, expect_from_old_replicas)
{
	/* no gpu.count: 12 advertised at 3 replicas are 4 GPUs */
	struct sharing_spec s = { .model = SHARING_NONE };
	cJSON *n = node("nvidia.com/gpu.replicas: '3'\n", "nvidia.com/gpu: '12'\n");
	struct sharing_expect e;
	struct gerr err = GERR_INIT;
	cr_assert_eq(sharing_expect_node(&s, n, 0, &e, &err), 0);
	cr_expect_eq(e.physical, 4);
	cr_expect_eq(e.count, 4);
	cr_expect_eq(e.replicas, 1);
	cr_expect_str_eq(e.strategy, "none");
	cJSON_Delete(n);
	/* renamed: the shared resource now, and wanted */
	s = (struct sharing_spec){ .model = SHARING_MPS, .replicas = 2, .rename = 1 };
	n = node("nvidia.com/gpu.replicas: '2'\n", "nvidia.com/gpu.shared: '8'\n");
	cr_assert_eq(sharing_expect_node(&s, n, 0, &e, &err), 0);
	cr_expect_str_eq(e.resource, "nvidia.com/gpu.shared");
	cr_expect_eq(e.physical, 4);
	cr_expect_eq(e.before, 8);
	cr_expect_eq(e.count, 8);
	cr_expect_str_eq(e.strategy, "mps");
	cJSON_Delete(n);
	/* nothing known */
	n = node(NULL, NULL);
	cr_expect_eq(sharing_expect_node(&s, n, 0, &e, &err), -1);
	cr_expect(strstr(err.msg, "node gpu-1: how many GPUs it has is unknown"), "%s", err.msg);
	gerr_clear(&err);
	cJSON_Delete(n);
}

Test(sharing, expect_mig)
{
	struct sharing_spec s = { .model = SHARING_MIG, .mig = SHARING_MIG_MIXED, .mig_config = "all-1g.10gb" };
	cJSON *n = node("nvidia.com/mig.strategy: mixed\n", "nvidia.com/mig-1g.10gb: '14'\n");
	struct sharing_expect e;
	struct gerr err = GERR_INIT;
	cr_assert_eq(sharing_expect_node(&s, n, 0, &e, &err), 0);
	cr_expect_str_eq(e.resource, "nvidia.com/mig-1g.10gb");
	cr_expect_eq(sharing_node_ready(&e, n, NULL), 1);
	cJSON_Delete(n);
	s.mig_config = NULL;
	n = node("nvidia.com/mig.strategy: mixed\n", "nvidia.com/gpu: '2'\n");
	cr_assert_eq(sharing_expect_node(&s, n, 0, &e, &err), 0);
	char *why = NULL;
	cr_expect_eq(sharing_node_ready(&e, n, &why), 0);
	cr_expect(strstr(why, "no nvidia.com/mig-* resource yet"), "%s", why);
	free(why);
	cJSON_Delete(n);
	s = (struct sharing_spec){ .model = SHARING_MIG, .mig = SHARING_MIG_SINGLE };
	n = node("nvidia.com/mig.strategy: single\n", "nvidia.com/gpu: '7'\n");
	cr_assert_eq(sharing_expect_node(&s, n, 0, &e, &err), 0);
	cr_expect_str_eq(e.resource, "nvidia.com/gpu");
	cr_expect_eq(sharing_node_ready(&e, n, NULL), 1);
	cJSON_Delete(n);
}

Test(sharing, mig_waits_for_what_gfd_counts)
{
	/* single: GFD already relabelled (14 MIG devices), the plugin still advertises
	 * the 2 full GPUs of before its restart: not ready (was: "at least 1" met) */
	struct sharing_spec s = { .model = SHARING_MIG, .mig = SHARING_MIG_SINGLE };
	const char *single = "nvidia.com/mig.strategy: single\nnvidia.com/gpu.count: '14'\n"
			     "nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3-MIG-1g.10gb\n";
	cJSON *n = node(single, "nvidia.com/gpu: '2'\n");
	struct sharing_expect e;
	struct gerr err = GERR_INIT;
	char *why = NULL;
	cr_assert_eq(sharing_expect_node(&s, n, 0, &e, &err), 0);
	cr_expect_eq(sharing_node_ready(&e, n, &why), 0);
	cr_expect_str_eq(why, "nvidia.com/gpu 2, GFD counts 14 MIG devices");
	free(why);
	cJSON_Delete(n);
	n = node(single, "nvidia.com/gpu: '14'\n");
	cr_expect_eq(sharing_node_ready(&e, n, NULL), 1);
	cJSON_Delete(n);
	/* GPUs not in MIG mode: GFD's product names no MIG profile */
	n = node("nvidia.com/mig.strategy: single\nnvidia.com/gpu.count: '2'\nnvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3\n",
		 "nvidia.com/gpu: '2'\n");
	cr_expect_eq(sharing_node_ready(&e, n, &why), 0);
	cr_expect(strstr(why, "GFD sees no MIG device (nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3)"), "%s", why);
	free(why);
	cJSON_Delete(n);
	/* MIG devices of several profiles under the single strategy */
	n = node("nvidia.com/mig.strategy: single\nnvidia.com/gpu.count: '0'\n"
		 "nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3-MIG-INVALID\n", "nvidia.com/gpu: '2'\n");
	cr_expect_eq(sharing_node_ready(&e, n, &why), 0);
	cr_expect(strstr(why, "GFD finds the MIG devices unfit for the single strategy"), "%s", why);
	free(why);
	cJSON_Delete(n);
	/* mixed: every profile GFD counts, at its count */
	s.mig = SHARING_MIG_MIXED;
	const char *mixed = "nvidia.com/mig.strategy: mixed\nnvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3\n"
			    "nvidia.com/mig-3g.40gb.count: '2'\nnvidia.com/mig-1g.10gb.count: '2'\n";
	cr_assert_eq(sharing_expect_node(&s, n = node(mixed, "nvidia.com/mig-1g.10gb: '14'\n"), 0, &e, &err), 0);
	cr_expect_eq(sharing_node_ready(&e, n, &why), 0);
	cr_expect_str_eq(why, "nvidia.com/mig-3g.40gb 0, GFD counts 2; nvidia.com/mig-1g.10gb 14, GFD counts 2");
	free(why);
	cJSON_Delete(n);
	n = node(mixed, "nvidia.com/mig-1g.10gb: '2'\nnvidia.com/mig-3g.40gb: '2'\n");
	cr_expect_eq(sharing_node_ready(&e, n, NULL), 1);
	cJSON_Delete(n);
}
