/* GPU sharing: the device plugin's configuration, its validation by the
 * plugin's rules (NVIDIA/k8s-device-plugin api/config/v1, v0.19.3), the
 * nodes it may not go to and what a node advertises afterwards. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/json.h"
#include "gpuctl/nodes.h"
#include "gpuctl/sharing.h"
#include "gpuctl/util.h"
#include "gpuctl/yaml.h"

static const char *const model_names[] = { "time-slicing", "mps", "mig", "none" };

const char *sharing_model_name(enum sharing_model m)
{
	return (unsigned)m < 4 ? model_names[m] : "?";
}

int sharing_model_parse(const char *s, enum sharing_model *m, struct gerr *err)
{
	for (int i = 0; i < 4; i++)
		if (s && !strcmp(s, model_names[i])) {
			*m = (enum sharing_model)i;
			return 0;
		}
	return gerr_set(err, GERR_USAGE, "%s: not a sharing model (time-slicing, mps, mig or none)", s ? s : "(none)");
}

static const char *const mig_names[] = { "unset", "none", "single", "mixed" };

const char *sharing_mig_name(enum sharing_mig m)
{
	return (unsigned)m < 4 ? mig_names[m] : "?";
}

int sharing_mig_parse(const char *s, enum sharing_mig *m, struct gerr *err)
{
	for (int i = 1; i < 4; i++)
		if (s && !strcmp(s, mig_names[i])) {
			*m = (enum sharing_mig)i;
			return 0;
		}
	return gerr_set(err, GERR_USAGE, "--mig-strategy %s: must be none, single or mixed", s ? s : "");
}

/* ---- profiles ---- */

static const struct {
	const char *name;
	int replicas;
} builtin_profiles[] = { { "any", 4 }, { "high-memory", 2 }, { "high-density", 8 } };

int sharing_profile_replicas(const cJSON *profiles, const char *name, int *replicas, struct gerr *err)
{
	const cJSON *p = cJSON_IsObject(profiles) ? cJSON_GetObjectItemCaseSensitive(profiles, name) : NULL;
	if (p) {
		const cJSON *r = cJSON_IsObject(p) ? cJSON_GetObjectItemCaseSensitive(p, "replicas") : p;
		if (!cJSON_IsNumber(r) || r->valuedouble != floor(r->valuedouble) || r->valuedouble < 2 ||
		    r->valuedouble > 1000)
			return gerr_set(err, GERR_CONFIG,
					"config file: slice.profiles.%s: replicas must be a whole number from 2 to 1000",
					name);
		*replicas = (int)r->valuedouble;
		return 0;
	}
	for (size_t i = 0; i < sizeof(builtin_profiles) / sizeof(builtin_profiles[0]); i++)
		if (!strcmp(builtin_profiles[i].name, name)) {
			*replicas = builtin_profiles[i].replicas;
			return 0;
		}
	struct buf known = BUF_INIT;
	for (size_t i = 0; i < sizeof(builtin_profiles) / sizeof(builtin_profiles[0]); i++)
		buf_addf(&known, "%s%s=%d", known.len ? ", " : "", builtin_profiles[i].name, builtin_profiles[i].replicas);
	const cJSON *it, *list = cJSON_IsObject(profiles) ? profiles : NULL;
	cJSON_ArrayForEach(it, list)
		buf_addf(&known, ", %s", it->string);
	gerr_set(err, GERR_USAGE, "--profile %s: no such profile (known: %s)", name, known.s);
	gerr_hint(err, "add it to the config file under slice.profiles (NAME: REPLICAS), or give --replicas N");
	buf_release(&known);
	return -1;
}

int sharing_spec_complete(struct sharing_spec *s, const cJSON *profiles, struct gerr *err)
{
	int shares = s->model == SHARING_TIME_SLICING || s->model == SHARING_MPS;
	const char *m = sharing_model_name(s->model);
	if (s->replicas && s->profile)
		return gerr_set(err, GERR_USAGE, "--replicas and --profile: give one of them");
	if (!shares && (s->replicas || s->profile))
		return gerr_set(err, GERR_USAGE, "%s shares no GPU: --replicas and --profile go with time-slicing or mps",
				m);
	if (!shares && (s->rename || s->fail_gt1))
		return gerr_set(err, GERR_USAGE,
				"%s shares no GPU: --rename and --fail-requests-greater-than-one go with time-slicing or mps", m);
	if (s->mig_config && s->model != SHARING_MIG)
		return gerr_set(err, GERR_USAGE, "--mig-config goes with the model mig");
	if (s->model == SHARING_MIG) {
		if (s->mig == SHARING_MIG_UNSET)
			s->mig = SHARING_MIG_SINGLE;
		if (s->mig == SHARING_MIG_NONE)
			return gerr_set(err, GERR_USAGE, "mig --mig-strategy none: a MIG strategy is single or mixed "
							 "(to stop using MIG devices, slice none)");
	} else if (s->mig == SHARING_MIG_UNSET) {
		s->mig = SHARING_MIG_NONE;
	}
	if (s->model == SHARING_MPS && s->mig == SHARING_MIG_MIXED)
		return gerr_set(err, GERR_USAGE, "mps with --mig-strategy mixed: the device plugin does not support MPS "
						 "with the mixed MIG strategy");
	if (!shares)
		return 0;
	if (s->replicas < 0)
		return gerr_set(err, GERR_USAGE, "--replicas %d: must be 2 or more", s->replicas);
	if (!s->replicas && sharing_profile_replicas(profiles, s->profile ? s->profile : "any", &s->replicas, err) < 0)
		return -1;
	if (s->replicas < 2) {
		gerr_set(err, GERR_USAGE, "--replicas %d: the device plugin needs 2 or more replicas to share a GPU",
			 s->replicas);
		gerr_hint(err, "to stop sharing, run gpuctl slice none");
		return -1;
	}
	if (s->model == SHARING_MPS && s->replicas > SHARING_MPS_MAX_REPLICAS)
		return gerr_set(err, GERR_USAGE, "--replicas %d: MPS allows at most %d clients per GPU", s->replicas,
				SHARING_MPS_MAX_REPLICAS);
	if (s->replicas > 1000)
		return gerr_set(err, GERR_USAGE, "--replicas %d: at most 1000", s->replicas);
	return 0;
}

/* ---- the configuration ---- */

char *sharing_config_key(const struct sharing_spec *s)
{
	switch (s->model) {
	case SHARING_NONE:
		return xstrdup("none");
	case SHARING_MIG:
		return xasprintf("mig-%s", sharing_mig_name(s->mig));
	default:
		break;
	}
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s-%d", s->model == SHARING_MPS ? "mps" : "ts", s->replicas);
	if (s->rename)
		buf_adds(&b, "-rename");
	if (s->fail_gt1)
		buf_adds(&b, "-max1");
	if (s->mig == SHARING_MIG_SINGLE)
		buf_adds(&b, "-mig-single");
	else if (s->mig == SHARING_MIG_MIXED)
		buf_adds(&b, "-mig-mixed");
	return buf_detach(&b);
}

cJSON *sharing_config_build(const struct sharing_spec *s)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "version", "v1");
	cJSON *f = cJSON_AddObjectToObject(c, "flags");
	enum sharing_mig mig = s->mig == SHARING_MIG_UNSET ? SHARING_MIG_NONE : s->mig;
	cJSON_AddStringToObject(f, "migStrategy", sharing_mig_name(mig));
	if (s->model != SHARING_TIME_SLICING && s->model != SHARING_MPS)
		return c;
	cJSON *sh = cJSON_AddObjectToObject(c, "sharing");
	cJSON *rr = cJSON_AddObjectToObject(sh, s->model == SHARING_MPS ? "mps" : "timeSlicing");
	if (s->rename)
		cJSON_AddTrueToObject(rr, "renameByDefault");
	if (s->fail_gt1)
		cJSON_AddTrueToObject(rr, "failRequestsGreaterThanOne");
	cJSON *res = cJSON_AddArrayToObject(rr, "resources");
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "name", "nvidia.com/gpu");
	cJSON_AddNumberToObject(r, "replicas", s->replicas);
	cJSON_AddItemToArray(res, r);
	return c;
}

void sharing_config_yaml(const cJSON *cfg, struct buf *out)
{
	yaml_emit(cfg, out);
	if (out->len && out->s[out->len - 1] != '\n')
		buf_addc(out, '\n');
}

/* ---- validation ---- */

static int is_in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(s, *set))
			return 1;
	return 0;
}

/* Every key of obj (at path) must be one of keys. */
static int known_keys(const cJSON *obj, const char *path, const char *const *keys, struct gerr *err)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, obj)
		if (!is_in(it->string, keys)) {
			struct buf k = BUF_INIT;
			for (const char *const *p = keys; *p; p++)
				buf_addf(&k, "%s%s", k.len ? ", " : "", *p);
			gerr_set(err, GERR_INVALID, "%s%s%s: unknown key (known: %s)", path, *path ? "." : "", it->string,
				 k.s);
			buf_release(&k);
			return -1;
		}
	return 0;
}

static int want_object(const cJSON *v, const char *path, struct gerr *err)
{
	if (!cJSON_IsObject(v))
		return gerr_set(err, GERR_INVALID, "%s: must be a mapping", path);
	return 0;
}

static int want_bool(const cJSON *obj, const char *key, const char *path, struct gerr *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (v && !cJSON_IsBool(v))
		return gerr_set(err, GERR_INVALID, "%s.%s: must be true or false", path, key);
	return 0;
}

static int want_string(const cJSON *obj, const char *key, const char *path, const char *const *values, struct gerr *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v)
		return 0;
	if (!cJSON_IsString(v))
		return gerr_set(err, GERR_INVALID, "%s.%s: must be a string", path, key);
	if (values && !is_in(v->valuestring, values)) {
		struct buf k = BUF_INIT;
		for (const char *const *p = values; *p; p++)
			buf_addf(&k, "%s%s", k.len ? ", " : "", *p);
		gerr_set(err, GERR_INVALID, "%s.%s: %s is not one of %s", path, key, v->valuestring, k.s);
		buf_release(&k);
		return -1;
	}
	return 0;
}

/* Kubernetes' DNS subdomain (RFC 1123): lowercase alphanumerics, '-' and
 * '.', labels starting and ending alphanumeric, 253 characters at most. */
static int dns_subdomain(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 253)
		return 0;
	char prev = '.';
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int an = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!an && c != '-' && c != '.')
			return 0;
		if (c == '.' && (prev == '.' || prev == '-'))
			return 0;
		if (c == '-' && prev == '.')
			return 0;
		prev = c;
	}
	return prev != '-' && prev != '.';
}

/* The plugin's NewResourceName: nvidia.com/ added when missing; the full
 * name <= 63 characters; the part after the slash a DNS subdomain.  *full
 * (new string) is the name as the plugin uses it. */
static int resource_name(const char *n, const char *path, char **full, struct gerr *err)
{
	char *f = strncmp(n, "nvidia.com/", 11) ? xasprintf("nvidia.com/%s", n) : xstrdup(n);
	if (strlen(f) > 63) {
		gerr_set(err, GERR_INVALID, "%s: %s: a resource name is 63 characters or less", path, f);
		free(f);
		return -1;
	}
	if (!dns_subdomain(f + 11)) {
		gerr_set(err, GERR_INVALID,
			 "%s: %s: not a resource name (after nvidia.com/: lowercase letters, digits, '-' and '.')", path, f);
		free(f);
		return -1;
	}
	*full = f;
	return 0;
}

static int validate_replicated(const cJSON *rr, const char *path, int mps, struct gerr *err)
{
	static const char *const keys[] = { "renameByDefault", "failRequestsGreaterThanOne", "resources", NULL };
	static const char *const rkeys[] = { "name", "replicas", "rename", "devices", NULL };
	if (want_object(rr, path, err) < 0 || known_keys(rr, path, keys, err) < 0 ||
	    want_bool(rr, "renameByDefault", path, err) < 0 || want_bool(rr, "failRequestsGreaterThanOne", path, err) < 0)
		return -1;
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(rr, "resources");
	if (!res)
		return gerr_set(err, GERR_INVALID, "%s.resources: missing: no resources specified", path);
	if (!cJSON_IsArray(res))
		return gerr_set(err, GERR_INVALID, "%s.resources: must be a list", path);
	if (!cJSON_GetArraySize(res))
		return gerr_set(err, GERR_INVALID, "%s.resources: empty: no resources specified", path);
	char **seen = NULL;
	int i = 0, rc = 0;
	const cJSON *r;
	cJSON_ArrayForEach(r, res) {
		char *p = xasprintf("%s.resources[%d]", path, i++);
		char *full = NULL;
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");
		const cJSON *rep = cJSON_GetObjectItemCaseSensitive(r, "replicas");
		const cJSON *dev = cJSON_GetObjectItemCaseSensitive(r, "devices");
		if (want_object(r, p, err) < 0 || known_keys(r, p, rkeys, err) < 0)
			rc = -1;
		else if (!name)
			rc = gerr_set(err, GERR_INVALID, "%s.name: missing: no resource name specified", p);
		else if (!cJSON_IsString(name))
			rc = gerr_set(err, GERR_INVALID, "%s.name: must be a string", p);
		else if (resource_name(name->valuestring, p, &full, err) < 0)
			rc = gerr_prefix(err, "name");
		else if (strv_has(seen, full))
			rc = gerr_set(err, GERR_INVALID, "%s.name: %s is named twice", p, full);
		else if (mps && strcmp(full, "nvidia.com/gpu"))
			rc = gerr_set(err, GERR_INVALID, "%s.name: %s: MPS shares only nvidia.com/gpu (full GPUs)", p, full);
		else if (!mps && strcmp(full, "nvidia.com/gpu") && strncmp(full, "nvidia.com/mig-", 15))
			rc = gerr_set(err, GERR_INVALID,
				      "%s.name: %s: time-slicing shares only nvidia.com/gpu and the MIG resources "
				      "nvidia.com/mig-*", p, full);
		else if (!rep)
			rc = gerr_set(err, GERR_INVALID, "%s.replicas: missing: no replicas specified", p);
		else if (!cJSON_IsNumber(rep) || rep->valuedouble != floor(rep->valuedouble) ||
			 fabs(rep->valuedouble) > INT_MAX)
			rc = gerr_set(err, GERR_INVALID, "%s.replicas: must be a whole number", p);
		else if (rep->valuedouble < 2)
			rc = gerr_set(err, GERR_INVALID, "%s.replicas: %d: the number of replicas must be >= 2", p,
				      (int)rep->valuedouble);
		else if (mps && rep->valuedouble > SHARING_MPS_MAX_REPLICAS)
			rc = gerr_set(err, GERR_INVALID, "%s.replicas: %d: MPS allows at most %d replicas per GPU", p,
				      (int)rep->valuedouble, SHARING_MPS_MAX_REPLICAS);
		else if (cJSON_GetObjectItemCaseSensitive(r, "rename"))
			rc = gerr_set(err, GERR_INVALID,
				      "%s.rename: not supported: the device plugin ignores it (use renameByDefault)", p);
		else if (dev && !(cJSON_IsString(dev) && !strcmp(dev->valuestring, "all")))
			rc = gerr_set(err, GERR_INVALID,
				      "%s.devices: only \"all\" is supported: the device plugin shares every GPU and "
				      "ignores any other value", p);
		if (full && rc == 0)
			seen = strv_add(seen, full);
		free(full);
		free(p);
		if (rc < 0)
			break;
	}
	strv_free(seen);
	return rc;
}

static int validate_flags(const cJSON *f, struct gerr *err)
{
	static const char *const keys[] = { "migStrategy", "failOnInitError", "mpsRoot", "nvidiaDriverRoot",
					    "nvidiaDevRoot", "gdrcopyEnabled", "gdsEnabled", "mofedEnabled",
					    "useNodeFeatureAPI", "deviceDiscoveryStrategy", "plugin", "gfd", NULL };
	static const char *const mig[] = { "none", "single", "mixed", NULL };
	static const char *const discovery[] = { "auto", "nvml", "tegra", NULL };
	static const char *const bools[] = { "failOnInitError", "gdrcopyEnabled", "gdsEnabled", "mofedEnabled",
					     "useNodeFeatureAPI", NULL };
	static const char *const strings[] = { "mpsRoot", "nvidiaDriverRoot", "nvidiaDevRoot", NULL };
	if (want_object(f, "flags", err) < 0 || known_keys(f, "flags", keys, err) < 0 ||
	    want_string(f, "migStrategy", "flags", mig, err) < 0 ||
	    want_string(f, "deviceDiscoveryStrategy", "flags", discovery, err) < 0)
		return -1;
	for (const char *const *b = bools; *b; b++)
		if (want_bool(f, *b, "flags", err) < 0)
			return -1;
	for (const char *const *s = strings; *s; s++)
		if (want_string(f, *s, "flags", NULL, err) < 0)
			return -1;
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "plugin");
	if (p) {
		static const char *const pkeys[] = { "passDeviceSpecs", "deviceListStrategy", "deviceIDStrategy",
						     "cdiAnnotationPrefix", "nvidiaCTKPath", "containerDriverRoot", NULL };
		static const char *const lists[] = { "envvar", "volume-mounts", "cdi-annotations", "cdi-cri", NULL };
		static const char *const ids[] = { "uuid", "index", NULL };
		if (want_object(p, "flags.plugin", err) < 0 || known_keys(p, "flags.plugin", pkeys, err) < 0 ||
		    want_bool(p, "passDeviceSpecs", "flags.plugin", err) < 0 ||
		    want_string(p, "deviceIDStrategy", "flags.plugin", ids, err) < 0 ||
		    want_string(p, "cdiAnnotationPrefix", "flags.plugin", NULL, err) < 0 ||
		    want_string(p, "nvidiaCTKPath", "flags.plugin", NULL, err) < 0 ||
		    want_string(p, "containerDriverRoot", "flags.plugin", NULL, err) < 0)
			return -1;
		const cJSON *dl = cJSON_GetObjectItemCaseSensitive(p, "deviceListStrategy");
		if (cJSON_IsString(dl)) {
			if (want_string(p, "deviceListStrategy", "flags.plugin", lists, err) < 0)
				return -1;
		} else if (cJSON_IsArray(dl)) {
			const cJSON *s;
			cJSON_ArrayForEach(s, dl)
				if (!cJSON_IsString(s) || !is_in(s->valuestring, lists))
					return gerr_set(err, GERR_INVALID,
							"flags.plugin.deviceListStrategy: %s is not one of envvar, "
							"volume-mounts, cdi-annotations, cdi-cri",
							cJSON_IsString(s) ? s->valuestring : "a non-string");
		} else if (dl) {
			return gerr_set(err, GERR_INVALID, "flags.plugin.deviceListStrategy: a strategy or a list of them");
		}
	}
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(f, "gfd");
	if (g) {
		static const char *const gkeys[] = { "oneshot", "noTimestamp", "sleepInterval", "outputFile",
						     "machineTypeFile", NULL };
		if (want_object(g, "flags.gfd", err) < 0 || known_keys(g, "flags.gfd", gkeys, err) < 0 ||
		    want_bool(g, "oneshot", "flags.gfd", err) < 0 || want_bool(g, "noTimestamp", "flags.gfd", err) < 0 ||
		    want_string(g, "sleepInterval", "flags.gfd", NULL, err) < 0 ||
		    want_string(g, "outputFile", "flags.gfd", NULL, err) < 0 ||
		    want_string(g, "machineTypeFile", "flags.gfd", NULL, err) < 0)
			return -1;
	}
	return 0;
}

int sharing_config_validate(const cJSON *cfg, struct gerr *err)
{
	static const char *const keys[] = { "version", "flags", "resources", "sharing", "imex", NULL };
	if (!cJSON_IsObject(cfg))
		return gerr_set(err, GERR_INVALID, "the configuration must be a mapping (version, flags, sharing)");
	if (known_keys(cfg, "", keys, err) < 0)
		return -1;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "version");
	if (!v)
		return gerr_set(err, GERR_INVALID, "version: missing (write version: v1)");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, "v1"))
		return gerr_set(err, GERR_INVALID, "version: unknown version %s (only v1)",
				cJSON_IsString(v) ? v->valuestring : "(not a string)");
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(cfg, "flags");
	if (f && validate_flags(f, err) < 0)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(cfg, "resources"))
		return gerr_set(err, GERR_INVALID,
				"resources: not supported: the device plugin ignores custom resource names");
	const cJSON *im = cJSON_GetObjectItemCaseSensitive(cfg, "imex");
	if (im) {
		static const char *const ikeys[] = { "channelIDs", "required", NULL };
		if (want_object(im, "imex", err) < 0 || known_keys(im, "imex", ikeys, err) < 0 ||
		    want_bool(im, "required", "imex", err) < 0)
			return -1;
		const cJSON *ids = cJSON_GetObjectItemCaseSensitive(im, "channelIDs"), *id;
		if (ids && !cJSON_IsArray(ids))
			return gerr_set(err, GERR_INVALID, "imex.channelIDs: must be a list of channel numbers");
		cJSON_ArrayForEach(id, ids)
			if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble != floor(id->valuedouble))
				return gerr_set(err, GERR_INVALID, "imex.channelIDs: channel numbers are whole numbers >= 0");
	}
	const cJSON *sh = cJSON_GetObjectItemCaseSensitive(cfg, "sharing");
	if (!sh)
		return 0;
	static const char *const skeys[] = { "timeSlicing", "mps", NULL };
	if (want_object(sh, "sharing", err) < 0 || known_keys(sh, "sharing", skeys, err) < 0)
		return -1;
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(sh, "timeSlicing");
	const cJSON *mps = cJSON_GetObjectItemCaseSensitive(sh, "mps");
	if (ts && mps)
		return gerr_set(err, GERR_INVALID,
				"sharing: timeSlicing and mps together: a node shares its GPUs one way (the plugin "
				"would use MPS and drop timeSlicing)");
	if (ts && validate_replicated(ts, "sharing.timeSlicing", 0, err) < 0)
		return -1;
	if (mps) {
		if (validate_replicated(mps, "sharing.mps", 1, err) < 0)
			return -1;
		const char *ms = json_str(f, "migStrategy");
		if (ms && !strcmp(ms, "mixed"))
			return gerr_set(err, GERR_INVALID,
					"flags.migStrategy: mixed is not supported with MPS (sharing.mps)");
	}
	return 0;
}

/* ---- nodes ---- */

static const char *label_of(const cJSON *node, const char *key)
{
	return json_str(json_get2(node, "metadata", "labels"), key);
}

static const char *annotation_of(const cJSON *node, const char *key)
{
	return json_str(json_get2(node, "metadata", "annotations"), key);
}

static int parse_long(const char *s, long *out)
{
	if (!s || !*s)
		return -1;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int strieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
	return !*a && !*b;
}

int sharing_node_check(const struct sharing_spec *s, const cJSON *node, struct buf *notes, struct gerr *err)
{
	const char *name = node_name(node);
#define NOTE(...) (buf_addf(notes, "%s", notes->len ? "; " : ""), buf_addf(notes, __VA_ARGS__))
	if (s->model == SHARING_MPS) {
		const char *ms = label_of(node, "nvidia.com/mig.strategy");
		const char *mc = label_of(node, SHARING_MIG_CONFIG_LABEL);
		if (ms && (!strcmp(ms, "single") || !strcmp(ms, "mixed"))) {
			gerr_set(err, GERR_INVALID, "node %s: MPS with MIG enabled (nvidia.com/mig.strategy=%s): the device "
						    "plugin does not share MIG devices through MPS", name, ms);
			gerr_hint(err, "turn MIG off on the node (nvidia.com/mig.config=all-disabled) or use time-slicing");
			return -1;
		}
		if (mc && *mc && strcmp(mc, "all-disabled")) {
			gerr_set(err, GERR_INVALID, "node %s: MPS with MIG enabled (nvidia.com/mig.config=%s): the device "
						    "plugin does not share MIG devices through MPS", name, mc);
			gerr_hint(err, "turn MIG off on the node (nvidia.com/mig.config=all-disabled) or use time-slicing");
			return -1;
		}
		long major;
		if (parse_long(label_of(node, "nvidia.com/gpu.compute.major"), &major) == 0) {
			if (major < 7) {
				gerr_set(err, GERR_INVALID,
					 "node %s: MPS needs Volta or newer GPUs (compute capability 7.0); this node's are "
					 "%ld.x (nvidia.com/gpu.compute.major)", name, major);
				gerr_hint(err, "use time-slicing on this node");
				return -1;
			}
		} else {
			NOTE("GPU architecture not checked (no nvidia.com/gpu.compute.major label; MPS needs Volta or newer)");
		}
	}
	if (s->model == SHARING_TIME_SLICING || s->model == SHARING_MPS) {
		const char *cm = label_of(node, SHARING_COMPUTE_MODE_KEY);
		if (!cm)
			cm = annotation_of(node, SHARING_COMPUTE_MODE_KEY);
		if (!cm) {
			NOTE("compute mode not checked (no %s label or annotation)", SHARING_COMPUTE_MODE_KEY);
		} else if (s->model == SHARING_TIME_SLICING &&
			   (strieq(cm, "Exclusive_Process") || strieq(cm, "EXCLUSIVE_PROCESS"))) {
			gerr_set(err, GERR_INVALID,
				 "node %s: its GPUs are in compute mode EXCLUSIVE_PROCESS (%s): time-slicing would let only "
				 "one process use each GPU", name, SHARING_COMPUTE_MODE_KEY);
			gerr_hint(err, "set the compute mode back on the node (nvidia-smi -c DEFAULT), e.g. after MPS was "
				       "turned off");
			return -1;
		} else if (strieq(cm, "Prohibited")) {
			gerr_set(err, GERR_INVALID, "node %s: its GPUs are in compute mode PROHIBITED (%s): no process may "
						    "use them", name, SHARING_COMPUTE_MODE_KEY);
			gerr_hint(err, "set the compute mode on the node: nvidia-smi -c DEFAULT");
			return -1;
		}
	}
	if (s->model == SHARING_MIG) {
		const char *cap = label_of(node, "nvidia.com/mig.capable");
		if (cap && !strcmp(cap, "false")) {
			gerr_set(err, GERR_INVALID, "node %s: its GPUs cannot be partitioned (nvidia.com/mig.capable=false)",
				 name);
			gerr_hint(err, "MIG needs A100, A30, H100, H200 or newer data-center GPUs; use time-slicing here");
			return -1;
		}
		if (!cap)
			NOTE("MIG capability not checked (no nvidia.com/mig.capable label)");
	}
#undef NOTE
	return 0;
}

/* The replicas the node has now: GFD's nvidia.com/gpu.replicas, else what the
 * caller knows from the config the node uses (hint), else 1. */
static long replicas_now(const cJSON *node, long hint)
{
	long r;
	if (parse_long(label_of(node, SHARING_REPLICAS_LABEL), &r) < 0 || r < 1)
		return hint > 0 ? hint : 1;
	return r;
}

int sharing_config_model(const char *config, long *replicas, int *mps)
{
	*replicas = 1;
	if (mps)
		*mps = 0;
	if (!config)
		return -1;
	cJSON *doc = NULL;
	struct gerr e = GERR_INIT;
	if (yaml_parse(config, strlen(config), "config", &doc, &e) < 0) {
		gerr_clear(&e);
		return -1;
	}
	const cJSON *sh = cJSON_GetObjectItemCaseSensitive(doc, "sharing");
	static const char *const models[] = { "timeSlicing", "mps" };
	for (size_t m = 0; m < 2; m++) {
		const cJSON *r;
		cJSON_ArrayForEach(r, json_get2(sh, models[m], "resources")) {
			const cJSON *n = cJSON_GetObjectItemCaseSensitive(r, "replicas");
			const char *name = json_str(r, "name");
			if (cJSON_IsNumber(n) && n->valuedouble >= 1 && name &&
			    (!strcmp(name, "nvidia.com/gpu") || !strcmp(name, "nvidia.com/gpu.shared"))) {
				*replicas = (long)n->valuedouble;
				if (mps)
					*mps = m == 1;
			}
		}
	}
	cJSON_Delete(doc);
	return 0;
}

/* gpu-feature-discovery labels this node (any of the labels it always writes). */
static int sharing_node_has_gfd(const cJSON *node)
{
	return label_of(node, "nvidia.com/gfd.timestamp") || label_of(node, SHARING_COUNT_LABEL) ||
	       label_of(node, SHARING_REPLICAS_LABEL) || label_of(node, "nvidia.com/gpu.product") ||
	       label_of(node, "nvidia.com/mig.strategy");
}

int sharing_expect_node(const struct sharing_spec *s, const cJSON *node, long replicas_hint, struct sharing_expect *e,
			struct gerr *err)
{
	memset(e, 0, sizeof(*e));
	long gpu = node_resource(node, "capacity", "nvidia.com/gpu");
	long shared = node_resource(node, "capacity", "nvidia.com/gpu.shared");
	if (gpu < 0)
		gpu = 0;
	if (shared < 0)
		shared = 0;
	if (s->model == SHARING_MIG) {
		e->gfd = sharing_node_has_gfd(node);
		e->at_least = 1;
		e->count = 1;
		e->mig_strategy = sharing_mig_name(s->mig);
		if (s->mig == SHARING_MIG_SINGLE) {
			snprintf(e->resource, sizeof(e->resource), "nvidia.com/gpu");
			e->before = gpu;
		} else if (s->mig_config && !strncmp(s->mig_config, "all-", 4) &&
			   strlen(s->mig_config) < sizeof(e->resource) - 16) {
			/* all-1g.10gb: every GPU cut into nvidia.com/mig-1g.10gb */
			snprintf(e->resource, sizeof(e->resource), "nvidia.com/mig-%s", s->mig_config + 4);
			e->before = node_resource(node, "capacity", e->resource);
			if (e->before < 0)
				e->before = 0;
		}
		return 0;
	}
	long phys;
	if (parse_long(label_of(node, SHARING_COUNT_LABEL), &phys) < 0) {
		long now = gpu ? gpu : shared;
		if (!now)
			return gerr_set(err, GERR_INVALID,
					"node %s: how many GPUs it has is unknown: no %s label and no nvidia.com/gpu "
					"capacity", node_name(node), SHARING_COUNT_LABEL);
		phys = now / replicas_now(node, replicas_hint);
		if (phys < 1)
			phys = 1;
	}
	int rep = s->model == SHARING_NONE ? 1 : s->replicas;
	e->gfd = sharing_node_has_gfd(node);
	snprintf(e->resource, sizeof(e->resource), "%s", s->rename ? "nvidia.com/gpu.shared" : "nvidia.com/gpu");
	e->physical = phys;
	e->before = shared && !gpu ? shared : gpu;
	e->count = phys * rep;
	e->replicas = rep;
	e->strategy = s->model == SHARING_NONE ? "none" : sharing_model_name(s->model);
	return 0;
}

/* GFD counts the MIG devices it sees under the new strategy (single:
 * nvidia.com/gpu.count and the product <GPU>-MIG-<profile>; mixed:
 * nvidia.com/mig-<profile>.count): the capacity must be those counts. Without
 * this, "at least one" is met by the full GPUs the plugin advertised before it
 * restarted with the new strategy, or by the MIG resources of an earlier layout
 * the kubelet still lists. */
static void mig_counts_ready(const struct sharing_expect *e, const cJSON *node, struct buf *b)
{
	const char *sep = b->len ? "; " : "";
	if (!strcmp(e->mig_strategy, "single")) {
		const char *product = label_of(node, "nvidia.com/gpu.product");
		long count, have = node_resource(node, "capacity", "nvidia.com/gpu");
		struct gfd_product gp;
		gfd_product_parse(product, &gp);
		if (gfd_product_mig_invalid(&gp)) {
			buf_addf(b, "%sGFD finds the MIG devices unfit for the single strategy (nvidia.com/gpu.product=%s: "
				    "more than one profile, a GPU in MIG mode without MIG devices, or MIG on only some GPUs)",
				 sep, product);
		} else if (product && !gp.mig) {
			buf_addf(b, "%sGFD sees no MIG device (nvidia.com/gpu.product=%s): are the GPUs in MIG mode with "
				    "MIG devices made (nvidia-smi -L lists them)?", sep, product);
		} else if (parse_long(label_of(node, SHARING_COUNT_LABEL), &count) == 0 && have != count) {
			buf_addf(b, "%snvidia.com/gpu %ld, GFD counts %ld MIG devices", sep, have < 0 ? 0 : have, count);
		}
		return;
	}
	const cJSON *it;
	int profiles = 0;
	cJSON_ArrayForEach(it, json_get2(node, "metadata", "labels")) {
		long count;
		char res[128];
		if (!gfd_mig_count_label(it->string, res, sizeof(res)) || !cJSON_IsString(it) ||
		    parse_long(it->valuestring, &count) < 0 || count <= 0)
			continue;
		long have = node_resource(node, "capacity", res);
		profiles++;
		if (have != count) {
			buf_addf(b, "%s%s %ld, GFD counts %ld", sep, res, have < 0 ? 0 : have, count);
			sep = "; ";
		}
	}
	if (!profiles && !strcmp(e->mig_strategy, "mixed") && label_of(node, "nvidia.com/gpu.product"))
		buf_addf(b, "%sGFD counts no MIG device of any profile: are the GPUs in MIG mode with MIG devices made "
			    "(nvidia-smi -L lists them)?", sep);
}

int sharing_node_ready(const struct sharing_expect *e, const cJSON *node, char **why)
{
	struct buf b = BUF_INIT;
	if (e->resource[0]) {
		long have = node_resource(node, "capacity", e->resource);
		if (have < 0)
			have = 0;
		/* Capacity counts every device the plugin listed; allocatable only the
		 * healthy ones. Right after a plugin restart the kubelet can show the new
		 * capacity with the devices still marked unhealthy (allocatable 0), and
		 * nothing can be scheduled until they are not: wait for both. */
		long alloc = node_resource(node, "allocatable", e->resource);
		if (alloc < 0)
			alloc = 0;
		if (e->at_least ? have < e->count : have != e->count)
			buf_addf(&b, "%s %ld, want %s%ld", e->resource, have, e->at_least ? "at least " : "", e->count);
		else if (alloc != have)
			buf_addf(&b, "%s allocatable %ld of capacity %ld (devices the plugin reports unhealthy, or the kubelet "
				     "has not taken the new list yet)",
				 e->resource, alloc, have);
	} else {
		/* mixed MIG without a known layout: any MIG resource will do */
		int any = 0;
		const cJSON *it;
		cJSON_ArrayForEach(it, json_get2(node, "status", "capacity"))
			if (!strncmp(it->string, "nvidia.com/mig-", 15) && node_resource(node, "capacity", it->string) > 0)
				any = 1;
		if (!any)
			buf_adds(&b, "no nvidia.com/mig-* resource yet");
	}
	if (e->replicas && e->gfd) {
		const char *r = label_of(node, SHARING_REPLICAS_LABEL);
		char want[24];
		snprintf(want, sizeof(want), "%d", e->replicas);
		if (!r || strcmp(r, want))
			buf_addf(&b, "%s%s=%s, want %s", b.len ? "; " : "", SHARING_REPLICAS_LABEL, r ? r : "(none)", want);
	}
	if (e->strategy && e->gfd) {
		const char *st = label_of(node, SHARING_STRATEGY_LABEL);
		if (!st || strcmp(st, e->strategy))
			buf_addf(&b, "%s%s=%s, want %s", b.len ? "; " : "", SHARING_STRATEGY_LABEL, st ? st : "(none)",
				 e->strategy);
	}
	if (e->mig_strategy && e->gfd) {
		const char *ms = label_of(node, "nvidia.com/mig.strategy");
		if (!ms || strcmp(ms, e->mig_strategy))
			buf_addf(&b, "%snvidia.com/mig.strategy=%s, want %s", b.len ? "; " : "", ms ? ms : "(none)",
				 e->mig_strategy);
		else
			mig_counts_ready(e, node, &b);
	}
	if (!b.len) {
		buf_release(&b);
		if (why)
			*why = NULL;
		return 1;
	}
	if (why)
		*why = buf_detach(&b);
	else
		buf_release(&b);
	return 0;
}
