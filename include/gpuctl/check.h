/* check.h - the checks `gpuctl validate` runs and their results.
 *
 * Every check has a stable id (cluster.api, node.driver, ...) listed in the
 * registry below; a run produces one result per check and target (the
 * cluster, or a node).  The terminal table, -o json and JUnit XML are three
 * views of the same report.
 */
#ifndef GPUCTL_CHECK_H
#define GPUCTL_CHECK_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"
#include "gpuctl/node.h"
#include "gpuctl/report.h"

enum check_status { CHECK_PASS, CHECK_WARN, CHECK_FAIL, CHECK_SKIP };

struct check_def {
	const char *id;      /* "node.driver" */
	const char *group;   /* "cluster" (API) or "nodes" (over SSH) */
	const char *title;   /* what it proves, one line */
};
/* The registry, in the order results are reported; ends with a NULL id. */
extern const struct check_def check_defs[];
const struct check_def *check_find(const char *id);

/* The texts are the report's (interned in its pool): a node's name, a hint
 * or a message repeated on thousands of nodes is stored once. */
struct check_result {
	const char *id;      /* from the registry */
	const char *target;  /* "cluster" or the node's name */
	const char *message; /* what was found */
	const char *hint;    /* what to do (failures and warnings), or NULL */
	double seconds;
	enum check_status status;
};

struct strpool;
struct check_report {
	struct check_result *v;
	size_t n, cap;
	struct strpool *pool; /* the results' texts */
};

/* Add a result (message printf-style; target, hint and message are
 * interned in r's pool). */
void check_add(struct check_report *r, const char *id, const char *target, enum check_status st, const char *hint,
	       const char *fmt, ...) GPUCTL_PRINTF(6, 7);
/* Move every result of src to the end of dst (src is left empty). */
void check_report_take(struct check_report *dst, struct check_report *src);
void check_report_release(struct check_report *r);
const char *check_status_name(enum check_status st);
/* Counts by status: out[CHECK_PASS] ... out[CHECK_SKIP]. */
void check_report_count(const struct check_report *r, size_t out[4]);

/* The results as rows of out (a report_init(out, "ValidationResult",
 * "validate")), in order: kind the check id, and the same target, status,
 * message, hint and seconds.  Every view of validate's results (table,
 * -o json|yaml, JUnit) is rendered from those rows. */
void check_report_rows(const struct check_report *r, struct report *out);
/* The same, leaving r empty: the results' texts are handed to the report
 * with its pool (no copy) when the report has no texts yet, so the
 * results and the rows never both hold every text, which on 20,000 nodes
 * (about 150,000 results) would double validate's peak memory. */
void check_report_move_rows(struct check_report *r, struct report *out);
enum report_status check_report_status(enum check_status st);

/* The results as a ValidationResult document (gpuctl.io/v1alpha1), through
 * the report model.  New tree. */
cJSON *check_report_json(const struct check_report *r);
/* The results as JUnit XML (report_junit of validate's report).  New string. */
char *check_report_junit(const struct check_report *r);

/* ---- the checks ---- */

/* Cluster checks through the API: the API answers (the caller has already
 * connected), the GPU nodes (found by the caller; may be empty), the
 * RuntimeClass nvidia; per GPU node its Ready condition and the GPUs it
 * advertises. */
struct kube_client;
void checks_cluster(struct kube_client *kc, const char *server_version, const cJSON *gpu_nodes, struct check_report *r);
/* checks_cluster in two halves: the API, the count of GPU nodes and the
 * RuntimeClass; and one GPU node's Ready condition and GPUs (node borrowed),
 * which a caller may run on each node as it is listed, keeping none. */
void checks_cluster_api(struct kube_client *kc, const char *server_version, int gpu_nodes, struct check_report *r);
void checks_node_object(const cJSON *node, struct check_report *r);

/* The GPU stack through the API (checks_stack.c): cluster.device-plugin,
 * cluster.conflicts, cluster.dcgm-exporter and per GPU node node.labels,
 * node.taints, node.device-plugin, node.gpu-health, node.sharing.  A constant
 * number of requests: stack_read lists DaemonSets once in every namespace,
 * the pods of each NVIDIA DaemonSet once, and GETs the plugin's ConfigMap
 * once, stack_read_metrics the DCGM exporter's metrics once; the judgements
 * below read only that and the nodes (config: gpuctl's config file, for
 * label/taint defaults; may be NULL). */
enum stack_ds_kind { STACK_DS_OTHER, STACK_DS_PLUGIN, STACK_DS_GFD, STACK_DS_DCGM, STACK_DS_DRA, STACK_DS_DRIVER };
struct stack_ds {
	const cJSON *ds;          /* borrowed from stack_view.daemonsets */
	enum stack_ds_kind kind;
	cJSON *pods;              /* its pods, NULL when not listed */
};
struct stack_view {
	cJSON *daemonsets;        /* every DaemonSet */
	struct stack_ds *v;       /* the NVIDIA ones */
	size_t n;
	cJSON *cm;                /* the device plugin's configurations (ConfigMap) */
	const cJSON *configs;     /* its data (in cm) */
	char *cm_error;           /* why it could not be read */
	const cJSON *metrics_pod; /* the DCGM exporter pod to read: a ready one on a judged node */
	char *metrics;            /* the DCGM exporter's /metrics text, or NULL */
	char *metrics_error;
	char *metrics_node;       /* the node whose exporter was read */
	struct buf driver_on_host; /* stack_judge_node: nodes where the operator's driver meets a host driver */
};
enum stack_ds_kind stack_ds_classify(const cJSON *ds);
int stack_read(struct kube_client *kc, struct stack_view *sv, struct gerr *err);
/* After the nodes were judged: one GET of the DCGM exporter's /metrics
 * through the API server (pods/proxy), from a ready pod on a judged node,
 * else any ready one; nothing when no exporter pod is ready. */
void stack_read_metrics(struct kube_client *kc, struct stack_view *sv);
/* The checks of one GPU node (node.labels, node.taints, node.device-plugin,
 * node.gpu-health, node.sharing), as the node is listed; then, once every
 * node was judged, the cluster's (cluster.device-plugin, cluster.conflicts,
 * cluster.dcgm-exporter).  stack_judge does both for an array of nodes. */
void stack_judge_node(struct stack_view *sv, const cJSON *config, const cJSON *node, struct check_report *r);
void stack_judge_cluster(const struct stack_view *sv, struct check_report *r);
void stack_judge(struct stack_view *sv, const cJSON *config, const cJSON *gpu_nodes, struct check_report *r);
void stack_view_release(struct stack_view *sv);

/* Node checks over SSH on a connected node: driver, GPUs, kernel modules,
 * containerd, the NVIDIA container toolkit, and the nvidia runtime in
 * containerd's effective configuration.  spec: the node's name and what the
 * inventory says of its containerd (flavour, config path); node is the
 * cluster's Node (for the GPU count its labels say), or NULL. */
struct ssh_conn;
void checks_node(struct ssh_conn *c, const struct node_spec *spec, const cJSON *node, const char *min_driver,
		 struct check_report *r);
/* node.plugin-config (group nodes): the configuration the device plugin on
 * the node really loaded.  Its config-manager sidecar links config.yaml in
 * the pod's emptyDir to /available-configs/<key> (or /dev/null); nothing of
 * that reaches the API, so it is read on the node.  stack_plugin_expect
 * (from the stack read through the API) gives the node's plugin pod's UID,
 * the emptyDir's volume name and the key the node's label (or the default)
 * names: 1, all three new; 0 when the plugin has no configurations or no pod
 * there.  plugin_config_judge judges what readlink printed (status: its exit
 * status); checks_plugin_config runs it over SSH under kubelet_root (NULL:
 * /var/lib/kubelet). */
int stack_plugin_expect(const struct stack_view *sv, const cJSON *node, char **pod_uid, char **volume, char **key);
void plugin_config_judge(const char *name, const char *key, const char *path, int status, const char *out,
			 struct check_report *r);
void checks_plugin_config(struct ssh_conn *c, const char *name, const char *pod_uid, const char *volume,
			  const char *key, const char *kubelet_root, struct check_report *r);
/* A node that could not be reached: node.ssh fails, the rest are skipped. */
void checks_node_unreachable(const char *name, const struct gerr *why, struct check_report *r);

#endif
