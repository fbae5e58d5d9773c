/* nodes.h - the engine's view of the cluster's Nodes: which are GPU nodes,
 * resolving what the user named with one LIST, and the conditional edit of
 * many nodes at once (plan all, then write concurrently, re-plan on conflict)
 * that label, taint, slice and cleanup share.  Planners for labels and taints
 * are pure functions over a Node object (plan.h).
 *
 * cJSON ownership: Node objects passed in are borrowed; arrays returned
 * through an out-parameter are new and owned by the caller.
 */
#ifndef GPUCTL_NODES_H
#define GPUCTL_NODES_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "gpuctl/err.h"

struct kube_client;

/* metadata.name, or "" (borrowed from node). */
const char *node_name(const cJSON *node);
/* True when the Node says it has NVIDIA GPUs: nvidia.com/gpu capacity or
 * allocatable > 0, the NFD label feature.node.kubernetes.io/pci-10de.present=true,
 * or nvidia.com/gpu.present=true. */
int node_is_gpu(const cJSON *node);
/* The GPU product the node reports (nvidia.com/gpu.product), or NULL. */
const char *node_gpu_product(const cJSON *node);
/* What gpu-feature-discovery writes into a product label, read in one place:
 * <GPU>[-MIG-<profile>|-MIG-INVALID][-SHARED]. base_len: the length of
 * <GPU>, the GPU's type (the MIG layout and sharing are states of the node);
 * mig: the text after -MIG- ("1g.10gb", or "INVALID" when the single
 * strategy meets a layout it cannot advertise), NULL without; shared: GFD
 * saw time-slicing or MPS. Pointers into product. */
struct gfd_product {
	size_t base_len;
	const char *mig;
	size_t mig_len;
	int shared;
};
void gfd_product_parse(const char *product, struct gfd_product *out);
int gfd_product_mig_invalid(const struct gfd_product *p);
/* GFD's per-profile count label of the mixed strategy,
 * nvidia.com/mig-<profile>.count: 1 and the resource it counts
 * (nvidia.com/mig-<profile>) in res, else 0. */
int gfd_mig_count_label(const char *key, char *res, size_t cap);
/* The GPU resource the device plugin advertises in the node's status field
 * ("capacity" or "allocatable"), a count above 0: nvidia.com/gpu, else the
 * renamed shared one nvidia.com/gpu.shared, else the first nvidia.com/mig-*
 * (mixed MIG strategy).  NULL when none (a string of the node, not a copy). */
const char *node_gpu_resource(const cJSON *node, const char *field);

/* A Kubernetes quantity that must be a whole number (extended resources such
 * as nvidia.com/gpu): "8", "1k", "2Ki", "1e3".  0 and *out set when s is
 * one; -1 for a fraction, a negative number, an overflow or bad syntax. */
int kube_quantity_int(const char *s, long *out);
/* status.<field>[resource] of a Node as a whole number ("capacity" or
 * "allocatable"); 0 when absent, -1 when present but not a whole number. */
long node_resource(const cJSON *node, const char *field, const char *resource);

/* A copy of node with only what gpuctl's commands read (a new object, owned
 * by the caller): metadata.name, all labels, the annotations under
 * NODE_PRUNE_ANNOTATION_PREFIX (an empty object when the node has others
 * only), the whole spec, the NODE_PRUNE_RESOURCE_PREFIX entries of
 * status.capacity and status.allocatable, the Ready condition (type, status,
 * reason), the InternalIP addresses and status.nodeInfo.osImage.
 * Every planner and check gives the same result on the copy as on node;
 * tests/unit/test_nodes.c holds that to account.  nodes_resolve returns
 * pruned nodes. */
#define NODE_PRUNE_ANNOTATION_PREFIX "gpuctl.io/"
#define NODE_PRUNE_RESOURCE_PREFIX "nvidia.com/"
cJSON *node_prune(const cJSON *node);
/* The parts of what node_prune keeps; metadata.name is always kept.  A
 * command that reads less asks for less (label: labels and annotations). */
enum node_part {
	NODE_PART_LABELS = 1u << 0,      /* metadata.labels */
	NODE_PART_ANNOTATIONS = 1u << 1, /* gpuctl's metadata.annotations */
	NODE_PART_SPEC = 1u << 2,        /* spec */
	NODE_PART_STATUS = 1u << 3,      /* status: the resources and the Ready condition */
	NODE_PART_ADDRESS = 1u << 4,     /* status: the InternalIP addresses and nodeInfo.osImage */
	NODE_PART_NVIDIA_LABELS = 1u << 5, /* the labels under nvidia.com/ only (without NODE_PART_LABELS) */
	NODE_PART_NAME = 1u << 6,        /* nothing more than the name */
	NODE_PARTS_ALL = 0x3fu,
};
cJSON *node_prune_parts(const cJSON *node, unsigned parts);

/* Which nodes a command acts on: names given, else -l, else --all, else the
 * GPU nodes. */
struct node_target {
	char **names;          /* nodes named on the command line (borrowed) */
	size_t nnames;
	const char *selector;  /* -l */
	int all;               /* --all: every node, GPU or not */
	unsigned parts;        /* enum node_part bits: what nodes_resolve keeps of each node; 0: all */
	/* When set: called with each node kept, whole, as its page arrives
	 * (before it is pruned), and with NULL when the list starts again
	 * (forget what was seen): for what a command reads once and need not
	 * keep.  A name that turns out missing still fails nodes_resolve. */
	void (*each)(void *ud, const cJSON *node);
	void *each_ud;
};

/* Whether nodes_resolve can list only the nodes' metadata (a
 * PartialObjectMetadataList, a third less to send and parse): when t->parts
 * asks for nothing beyond metadata, the nodes are named, selected or all (no
 * GPU detection, which reads the capacity), and there is no t->each. */
int node_target_metadata_only(const struct node_target *t);

/* Validate the target (the selector's syntax) before any request. */
int node_target_check(const struct node_target *t, struct gerr *err);

/* List the target nodes with as few API calls as possible (one paginated
 * LIST; a field selector for a single name).  With neither names nor
 * selector: the GPU nodes.  Named nodes that do not exist, or no GPU node,
 * are GERR_NOTFOUND naming them (with a hint).  *nodes is a new array of
 * pruned nodes (node_prune_parts with t->parts), gathered page by page: memory grows with the
 * nodes kept, not with the pages listed. */
int nodes_resolve(struct kube_client *kc, const struct node_target *t, cJSON **nodes, struct gerr *err);

/* Watch the Nodes (those matching selector, or all) until fn stops it or
 * timeout_ms passes (GERR_TIMEOUT with no HTTP status then); fn gets
 * kube_watch's events. */
typedef int (*nodes_watch_fn)(void *ud, const char *type, const cJSON *node, struct gerr *err);
int nodes_watch(struct kube_client *kc, const char *selector, nodes_watch_fn fn, void *ud, long timeout_ms,
		struct gerr *err);

enum dry_run { DRY_NONE, DRY_CLIENT, DRY_SERVER };
/* --dry-run's value: none/false, client/true, server; NULL is none. */
int parse_dry_run(const char *s, enum dry_run *out, struct gerr *err);
const char *dry_run_name(enum dry_run d);

enum edit_status { EDIT_UNCHANGED, EDIT_CHANGED, EDIT_FAILED, EDIT_SKIPPED };

/* The edit of one node; all fields owned. */
struct edit_result {
	char *node;
	enum edit_status status;
	cJSON *changes;   /* array of {op, key, value[, effect][, old]} */
	cJSON *state;     /* labels object or taints array after the edit */
	char *patch;      /* JSON patch body, NULL when unchanged */
	struct gerr err;
};

/* Compute the edit of one node: fill r->changes (an empty array on entry),
 * r->state and r->patch (NULL when nothing changes), or return -1 with r->err
 * set (GERR_CONFLICT when an overwrite is refused, GERR_INVALID for a bad
 * value).  Must not depend on anything but ud and node. */
typedef int (*edit_plan_fn)(void *ud, const cJSON *node, struct edit_result *r);

/* Plan every node; if any plan fails nothing is written (the others are
 * EDIT_SKIPPED).  Then send one JSON patch per changed node, concurrently
 * (fieldManager gpuctl; dryRun=All for DRY_SERVER; nothing for DRY_CLIENT,
 * whose results keep no patch);
 * nodes whose patch failed its test or conflicted (409/422) are fetched
 * again and re-planned, up to 5 rounds.  *results (new, node order) is
 * freed with edit_results_free. */
int nodes_edit(struct kube_client *kc, cJSON *nodes, edit_plan_fn plan, void *ud, enum dry_run dry,
	       struct edit_result **results, size_t *nresults, struct gerr *err);
/* nodes_edit that deletes each node from nodes as soon as it is planned
 * (nodes is left an empty array, still the caller's): the results grow as
 * the nodes go. */
int nodes_edit_consume(struct kube_client *kc, cJSON *nodes, edit_plan_fn plan, void *ud, enum dry_run dry,
		       struct edit_result **results, size_t *nresults, struct gerr *err);
void edit_results_free(struct edit_result *r, size_t n);

#endif
