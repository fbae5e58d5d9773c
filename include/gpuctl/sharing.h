/* sharing.h - GPU sharing as gpuctl slice sets it up: the device plugin's
 * configuration (api/config/v1 of NVIDIA/k8s-device-plugin) built from what
 * the user asked, checked by the plugin's own rules (stricter where the
 * plugin only warns or ignores), the nodes it may not go to, and what a node
 * must advertise once the plugin has taken it.  Pure functions: no cluster
 * contact, no printing.
 *
 * cJSON ownership: configs and nodes passed in are borrowed; configs
 * returned are new trees owned by the caller.
 */
#ifndef GPUCTL_SHARING_H
#define GPUCTL_SHARING_H

#include <cjson/cJSON.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"

/* The node label the plugin's config-manager reads to pick a ConfigMap key. */
#define SHARING_CONFIG_LABEL "nvidia.com/device-plugin.config"
/* GFD's labels of what the plugin advertises. */
#define SHARING_REPLICAS_LABEL "nvidia.com/gpu.replicas"
#define SHARING_STRATEGY_LABEL "nvidia.com/gpu.sharing-strategy"
#define SHARING_COUNT_LABEL "nvidia.com/gpu.count"
/* GFD's "this node's config shares by MPS": the plugin's MPS control daemon
 * runs only on nodes that carry it as "true". */
#define SHARING_MPS_CAPABLE_LABEL "nvidia.com/mps.capable"
/* The GPU Operator's MIG manager: the layout asked for and how it went. */
#define SHARING_MIG_CONFIG_LABEL "nvidia.com/mig.config"
#define SHARING_MIG_STATE_LABEL "nvidia.com/mig.config.state"
/* A node's GPU compute mode (Default, Exclusive_Process, Prohibited), as a
 * label or annotation; nothing standard publishes it, so it is often unknown. */
#define SHARING_COMPUTE_MODE_KEY "gpuctl.io/compute-mode"
/* Most MPS replicas per GPU the plugin's MPS daemon accepts. */
#define SHARING_MPS_MAX_REPLICAS 48

enum sharing_model { SHARING_TIME_SLICING, SHARING_MPS, SHARING_MIG, SHARING_NONE };
enum sharing_mig { SHARING_MIG_UNSET, SHARING_MIG_NONE, SHARING_MIG_SINGLE, SHARING_MIG_MIXED };

/* What the user asked for. */
struct sharing_spec {
	enum sharing_model model;
	int replicas;             /* 0: from the profile (or the default profile "any") */
	const char *profile;      /* --profile, or NULL */
	int rename;               /* --rename: nvidia.com/gpu.shared */
	int fail_gt1;             /* --fail-requests-greater-than-one */
	enum sharing_mig mig;     /* --mig-strategy (UNSET: none, single for the mig model) */
	const char *mig_config;   /* --mig-config: the MIG manager's layout (operator mode) */
};

/* "time-slicing", "mps", "mig", "none". */
const char *sharing_model_name(enum sharing_model m);
/* The model named s: 0, or -1 (GERR_USAGE) when s is none of the four. */
int sharing_model_parse(const char *s, enum sharing_model *m, struct gerr *err);
/* --mig-strategy's value: single or mixed (none as well). */
int sharing_mig_parse(const char *s, enum sharing_mig *m, struct gerr *err);
const char *sharing_mig_name(enum sharing_mig m);

/* The replicas of a profile: the gpuctl config file's slice.profiles
 * ({name: N} or {name: {replicas: N}}; profiles may be NULL) first, then the
 * built-in any=4, high-memory=2, high-density=8.  GERR_USAGE for an unknown
 * name (listing the known ones), GERR_CONFIG for a bad entry. */
int sharing_profile_replicas(const cJSON *profiles, const char *name, int *replicas, struct gerr *err);

/* Fill in the spec's defaults and check the combination of flags (GERR_USAGE):
 * replicas or a profile only for time-slicing and MPS (the profile resolved
 * through profiles), --rename/--fail-requests-greater-than-one likewise,
 * --mig-strategy none/single/mixed for MIG, --mig-config only with mig. */
int sharing_spec_complete(struct sharing_spec *s, const cJSON *profiles, struct gerr *err);

/* The ConfigMap key of the spec's configuration: "ts-4", "ts-4-rename",
 * "ts-4-max1", "mps-2", "mig-single", "mig-mixed", "none" (new string). */
char *sharing_config_key(const struct sharing_spec *s);
/* The plugin configuration of a completed spec (new tree). */
cJSON *sharing_config_build(const struct sharing_spec *s);
/* The configuration as the ConfigMap holds it (YAML), appended to out. */
void sharing_config_yaml(const cJSON *cfg, struct buf *out);

/* Check a configuration by the device plugin's rules (api/config/v1 and its
 * startup checks): version v1; flags' known keys and values (migStrategy
 * none|single|mixed, deviceDiscoveryStrategy, plugin.deviceListStrategy,
 * deviceIDStrategy ...); sharing.timeSlicing / sharing.mps with a non-empty
 * resources list whose entries have a valid name (nvidia.com/ added when
 * missing, 63 characters at most, a DNS subdomain) and integer replicas >= 2
 * (MPS: at most 48, nvidia.com/gpu only, not with migStrategy mixed); not
 * both time-slicing and MPS.  Stricter than the plugin: an unknown or
 * misplaced key, a top-level resources, a per-resource rename or devices
 * other than "all" (all of which the plugin ignores with a warning), and a
 * resource named twice are errors too.  GERR_INVALID with a message that
 * names the field (sharing.timeSlicing.resources[0].replicas) and why. */
int sharing_config_validate(const cJSON *cfg, struct gerr *err);

/* May the spec go to this node?  -1 (GERR_INVALID, naming the node and the
 * label) for MPS on a node with MIG enabled (nvidia.com/mig.strategy single
 * or mixed, or a nvidia.com/mig.config other than all-disabled), MPS on GPUs
 * older than Volta (nvidia.com/gpu.compute.major < 7), time-slicing or MPS
 * on GPUs in EXCLUSIVE_PROCESS compute mode (SHARING_COMPUTE_MODE_KEY), MIG
 * on a node whose GPUs are not MIG-capable (nvidia.com/mig.capable=false).
 * What could not be checked for lack of a label is appended to notes as
 * "; "-separated phrases ("compute mode not checked ..."). */
int sharing_node_check(const struct sharing_spec *s, const cJSON *node, struct buf *notes, struct gerr *err);

/* What a node must advertise once the plugin has taken the config. */
struct sharing_expect {
	char resource[64];      /* nvidia.com/gpu, nvidia.com/gpu.shared, nvidia.com/mig-1g.10gb; "" (mixed MIG: any nvidia.com/mig-*) */
	long physical;          /* physical GPUs (0 for MIG) */
	long before;            /* what the node advertises now (capacity of resource, or of the old shared resource) */
	long count;             /* physical x replicas; for MIG: at least 1 */
	int at_least;           /* count is a floor (MIG), not exact */
	int replicas;           /* nvidia.com/gpu.replicas to expect (0: not checked) */
	const char *strategy;   /* nvidia.com/gpu.sharing-strategy to expect (NULL: not checked) */
	const char *mig_strategy; /* nvidia.com/mig.strategy to expect (NULL: not checked) */
	int gfd;                /* the node carries GFD's labels: the three label checks above apply */
};

/* The expectation for node under spec s: physical GPUs from nvidia.com/gpu.count,
 * The label expectations (replicas, strategy, MIG strategy) apply only to a
 * node that gpu-feature-discovery labels (e->gfd: it carries
 * nvidia.com/gfd.timestamp, gpu.count, gpu.replicas, gpu.product or mig.strategy);
 * without GFD no one writes them, and capacity alone is the proof.
 * else the capacity now (nvidia.com/gpu or nvidia.com/gpu.shared) divided by
 * the replicas now (nvidia.com/gpu.replicas; else replicas_hint when > 0; else 1).  -1 (GERR_INVALID
 * naming the node) when the node says nothing about its GPUs. */
int sharing_expect_node(const struct sharing_spec *s, const cJSON *node, long replicas_hint, struct sharing_expect *e,
			struct gerr *err);

/* The replicas of nvidia.com/gpu (or .shared) in a device plugin config (YAML
 * text, as in the ConfigMap): 1 when it shares nothing; *mps (may be NULL)
 * set when the sharing is MPS.  -1 when it cannot be read.  slice passes the
 * replicas of the config a node uses now as sharing_expect_node's
 * replicas_hint, and smoke-test reads sharing from it, for nodes without
 * GFD's nvidia.com/gpu.replicas label. */
int sharing_config_model(const char *config, long *replicas, int *mps);

/* Does node advertise what e says?  1 yes, 0 not yet (*why, new string,
 * says what is still different: "nvidia.com/gpu 4, want 16"). */
int sharing_node_ready(const struct sharing_expect *e, const cJSON *node, char **why);

#endif
