/* smoke.h - gpuctl smoke-test: prove that GPUs work in pods.
 *
 * Per GPU node: one pod asks for one GPU and prints what nvidia-smi sees
 * (check smoke.gpu); where the node shares its GPUs (time-slicing, MPS), N
 * pods run at once (smoke.concurrent), land on at most the node's physical
 * GPUs (smoke.same-gpu), one pod more stays Pending (smoke.overcommit), MPS
 * puts the GPUs in Exclusive_Process (smoke.mps); the node advertises
 * GPUs x replicas (smoke.allocatable); a MIG node has its MIG devices
 * (smoke.mig).
 *
 * The first half is pure: reading a pod's log, planning a node from its
 * Node object and the GPUs in use, judging each check from what was
 * observed.  The second half (smoke_run) does it in the cluster: one watch
 * on the run's pods drives every node at once.
 *
 * Ownership: cJSON arguments are borrowed; structs are released with their
 * _release function; strings in them are owned.
 */
#ifndef GPUCTL_SMOKE_H
#define GPUCTL_SMOKE_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "gpuctl/err.h"
#include "gpuctl/labels.h"
#include "gpuctl/owned.h"
#include "gpuctl/render.h"
#include "gpuctl/report.h"

struct kube_client;

#define SMOKE_RESOURCE "nvidia.com/gpu"
#define SMOKE_SHARED_RESOURCE "nvidia.com/gpu.shared"
#define SMOKE_DEFAULT_NAMESPACE GPUCTL_SMOKE_NAMESPACE
#define SMOKE_TEMPLATE "smoke-test-pod.yaml.tmpl"
#define SMOKE_RUNTIME_CLASS "nvidia"
/* The line a pod prints after nvidia-smi's output (then it exits or sleeps). */
#define SMOKE_READY_MARKER "gpuctl-smoke: ready"
#define SMOKE_PRODUCT_LABEL "nvidia.com/gpu.product"
#define SMOKE_MIG_STRATEGY_LABEL "nvidia.com/mig.strategy"
/* --measure: the ConfigMap that carries gpuctl-gpuload (binaryData, one key
 * of that name), mounted read-only and executable at SMOKE_LOAD_DIR. */
#define SMOKE_LOAD_CONFIGMAP "gpuctl-gpuload"
#define SMOKE_LOAD_DIR "/opt/gpuctl"
/* The sharing pods start their load this long after they are created, all at
 * the same moment, so that they run at once. */
#define SMOKE_LOAD_DELAY_S 20
#define SMOKE_MEASURE_DEFAULT_S 10
#define SMOKE_MEASURE_MAX_S 600

/* ---- a pod's log ---- */

struct smoke_gpu {
	char *name;          /* "NVIDIA H100 80GB HBM3" (nvidia-smi -L), or NULL when only the CSV named it */
	char *uuid;          /* "GPU-f3c1..." */
	char *compute_mode;  /* "Default", "Exclusive_Process" (the CSV line), or NULL */
};

struct smoke_log {
	struct smoke_gpu *gpus;  /* "GPU n: NAME (UUID: GPU-...)" lines, in order */
	size_t ngpus;
	char **migs;             /* UUIDs of "  MIG 1g.10gb Device 0: (UUID: MIG-...)" lines (strv), or NULL */
	int ready;               /* the marker line was printed */
	/* the first {"gpuload":1,...} line (--measure) */
	int measured;            /* it was printed (a result or an error) */
	char *load_error;        /* its "error", or NULL */
	double gflops, seconds;  /* its "gflops" and "seconds" */
	long launches;
};

/* Read the output of the pod script (nvidia-smi -L, then the CSV
 * uuid,compute_mode lines, then the marker, then with --measure the JSON line
 * of gpuctl-gpuload); lines it does not know are ignored.  Never fails; out is filled from zero. */
void smoke_log_parse(const char *text, size_t len, struct smoke_log *out);
void smoke_log_release(struct smoke_log *l);
/* The UUIDs the pod saw (the GPUs', else the MIG devices'), ", "-joined,
 * appended to out; returns how many. */
size_t smoke_log_uuids(const struct smoke_log *l, struct buf *out);

/* Whether nvidia-smi's GPU name matches the node's nvidia.com/gpu.product
 * label: GFD writes the name with spaces as '-', and may add "-SHARED"
 * (shared GPUs) or "-MIG-<profile>" (MIG single strategy) after it. */
int smoke_product_matches(const char *gpu_name, const char *product);

/* ---- the script of a pod ---- */

/* What a pod does; new fields (a measurement) go here. */
struct smoke_script_opts {
	long sleep_s;   /* > 0: sleep this long after the marker (a sharing pod, deleted by gpuctl); 0: exit */
	long measure_s; /* > 0: after the marker, run SMOKE_LOAD_DIR/gpuctl-gpuload this long (--measure) */
	double start_at; /* the load's --start-at (Unix time); 0: at once */
};
/* The sh -c script (new string): nvidia-smi -L, the CSV query, the marker,
 * the load (its JSON line, or one with "error" when it exits without
 * success), the sleep. */
char *smoke_script(const struct smoke_script_opts *o);

/* ---- planning a node ---- */

/* The GPUs (resource) a Pod asks for: the larger of the sum over its
 * containers and the largest init container, limits over requests. */
long smoke_pod_gpus(const cJSON *pod, const char *resource);
/* The GPUs in use per node from a list of non-terminated pods: a new
 * object {node: {resource: n}} for every nvidia.com/ resource the pods ask
 * for (pods without spec.nodeName, and finished pods, are not counted). */
cJSON *smoke_usage(const cJSON *pods);
/* Add one pod (borrowed) to such an object u: smoke_usage one pod at a
 * time, for a list read page by page. */
void smoke_usage_add(cJSON *u, const cJSON *pod);

struct smoke_plan_opts {
	int pods;        /* --pods N; 0: the free slots */
	int no_sharing;  /* --no-sharing */
	/* The device plugin's config files (the data of gpuctl's ConfigMap, key
	 * -> YAML) and the key a node without the nvidia.com/device-plugin.config
	 * label uses: a node gpu-feature-discovery does not label (no
	 * nvidia.com/gpu.replicas) shares as the config it uses says.  NULL: not
	 * known.  smoke_run fills configs from the cluster when plugin_ns is set. */
	const cJSON *configs;
	const char *default_key;
	const char *plugin_ns, *configs_name;
};

/* A verdict decided before anything runs (or after): status, one-line
 * message, hint.  status REPORT_PASS with run set means "to be run". */
struct smoke_verdict {
	enum report_status status;
	char *message;
	char *hint;
};
void smoke_verdict_set(struct smoke_verdict *v, enum report_status st, const char *hint, const char *fmt, ...)
	GPUCTL_PRINTF(4, 5);
void smoke_verdict_release(struct smoke_verdict *v);

struct smoke_plan {
	char *node;
	char *hostname;           /* its kubernetes.io/hostname label (the nodeSelector), else its name */
	char *resource;           /* nvidia.com/gpu; nvidia.com/gpu.shared for a renamed shared GPU; the first
				     allocatable nvidia.com/mig-<profile> on a node that advertises only those */
	long allocatable, used, free;
	char *product;            /* nvidia.com/gpu.product, or NULL */
	/* check 1 */
	int gpu_run;              /* run the single-GPU pod; otherwise gpu says why not (skip or fail) */
	struct smoke_verdict gpu;
	/* check 2: sharing */
	int sharing;              /* the node shares its GPUs (and --no-sharing was not given) */
	char *strategy;           /* nvidia.com/gpu.sharing-strategy, or NULL */
	long physical;            /* P: nvidia.com/gpu.count; 0 unknown */
	long replicas;            /* R: nvidia.com/gpu.replicas; 0 unknown */
	int share_run;            /* run the sharing pods (N of them) */
	long n;
	int overcommit_run;       /* run the extra pod (only when N is every free slot) */
	struct smoke_verdict share; /* why the sharing pods do not run (skip), when !share_run */
	struct smoke_verdict overcommit; /* why the extra pod does not run, when !overcommit_run */
	struct smoke_verdict allocatable_v; /* smoke.allocatable, decided from the Node */
	int mps;                  /* strategy mps: smoke.mps is a row */
	/* MIG */
	int mig;
	struct smoke_verdict mig_v; /* smoke.mig, decided from the Node */
};

/* Plan one node from its Node object and the usage object of smoke_usage
 * (may be NULL: nothing in use).  Pure; never fails. */
void smoke_plan_node(const cJSON *node, const cJSON *usage, const struct smoke_plan_opts *o, struct smoke_plan *p);
void smoke_plan_release(struct smoke_plan *p);

/* ---- what was observed of a pod, and the judgements ---- */

enum smoke_role { SMOKE_ROLE_GPU, SMOKE_ROLE_SHARE, SMOKE_ROLE_OVER };
const char *smoke_role_name(enum smoke_role r);

/* One pod of the run and what was seen of it; new fields (measurements)
 * go here. */
struct smoke_pod {
	char *name;
	size_t node;              /* index of its plan */
	enum smoke_role role;
	int created;              /* the API accepted it */
	int deleted;
	struct gerr create_err;
	/* from the watch (smoke_pod_observe) */
	char *phase;              /* Pending, Running, Succeeded, Failed; NULL: not seen */
	char *reason;             /* the last waiting/terminated reason or the PodScheduled reason */
	char *message;            /* and its message */
	int scheduled;            /* bound to a node */
	int unschedulable;        /* PodScheduled False, reason Unschedulable */
	int exit_code;            /* of a terminated container; -1 unknown */
	double t_created, t_running, t_done;  /* mono_s(); 0: not yet */
	/* the log (once ready or finished) */
	int log_fetched;          /* holds the marker, or the pod is finished */
	double t_log;             /* when it was last read */
	struct smoke_log log;
	char *log_tail;           /* the last lines, for a hint when it failed */
	struct gerr log_err;
};
void smoke_pod_release(struct smoke_pod *p);

/* Take in the Pod object (from the watch): phase, scheduling, the container
 * state's reason and message.  Times are stamped with now. */
void smoke_pod_observe(struct smoke_pod *p, const cJSON *pod, double now);
/* Whether the pod is finished (Succeeded or Failed). */
int smoke_pod_done(const struct smoke_pod *p);
/* "Pending (ImagePullBackOff: Back-off pulling image ...)": its last state
 * (new string). */
char *smoke_pod_state(const struct smoke_pod *p);

/* smoke.gpu from the single-GPU pod (finished, log read): Succeeded, a GPU
 * in the log, its name matching the product label (product may be NULL). */
void smoke_judge_gpu(const struct smoke_pod *p, const char *product, struct smoke_verdict *v);
/* smoke.allocatable: allocatable == P x R (skipped when P or R is unknown). */
void smoke_judge_allocatable(const struct smoke_plan *p, struct smoke_verdict *v);
/* smoke.concurrent: most is the most pods seen Running at once, n wanted;
 * seconds the time it took to get there. */
void smoke_judge_concurrent(long n, long most, double seconds, struct smoke_verdict *v);
/* smoke.same-gpu over the sharing pods (logs read): each printed a UUID and
 * there are at most physical distinct GPU UUIDs (0: unknown, not bounded);
 * details (may be NULL) gets {pod: [uuids]}. */
void smoke_judge_same_gpu(struct smoke_pod *const *pods, size_t n, long physical, cJSON *details,
			  struct smoke_verdict *v);
/* smoke.overcommit from the extra pod: 1 judged (v set), 0 not yet
 * (Pending without the Unschedulable condition). */
int smoke_judge_overcommit(const struct smoke_pod *p, const char *resource, struct smoke_verdict *v);
/* smoke.mps: every GPU of every pod in compute mode Exclusive_Process. */
void smoke_judge_mps(struct smoke_pod *const *pods, size_t n, struct smoke_verdict *v);
/* smoke.measure over the sharing pods (logs read) that ran the load at once;
 * solo (may be NULL) is the single-GPU pod that ran it alone (the baseline).
 * Fails when a pod printed an error or no line, warns when the fairness
 * (slowest / fastest) is below 0.5.  details (may be NULL) gets pods {pod:
 * {gflops, share}}, gflops (the aggregate), solo, fairness. */
void smoke_judge_measure(struct smoke_pod *const *pods, size_t n, const struct smoke_pod *solo, cJSON *details,
			 struct smoke_verdict *v);
/* smoke.mig from the Node: not MIG (skip), or the MIG manager's state is
 * success, GFD did not find the layout invalid for the single strategy
 * (product <GPU>-MIG-INVALID), and every nvidia.com/mig-* resource (mixed) or
 * nvidia.com/gpu (single) is allocatable. */
void smoke_judge_mig(const cJSON *node, struct smoke_verdict *v);

/* ---- rendering a pod ---- */

struct smoke_pod_spec {
	const char *name, *ns, *run_id, *node, *hostname, *image, *resource;
	enum smoke_role role;
	const struct taint_op *tolerations;  /* --toleration, besides gpuctl's GPU taint */
	size_t ntolerations;
	struct smoke_script_opts script;
};
/* Render templates/smoke-test-pod.yaml.tmpl (rc may be NULL) into one Pod
 * object (*pod new); errors name the template. */
int smoke_pod_render(const struct render_ctx *rc, const struct smoke_pod_spec *s, cJSON **pod, struct gerr *err);
/* A pod name: gpuctl-smoke-<run>-<node>-<suffix>, the node's dots as '-'
 * and cut so the name stays a DNS label-friendly subdomain (new string). */
char *smoke_pod_name(const char *run_id, const char *node, const char *suffix);
/* A label value for the node's name (at most 63 characters, ending in an
 * alphanumeric); new string. */
char *smoke_label_value(const char *s);
/* A new run id: 8 random hex characters (new string). */
char *smoke_run_id(void);

/* ---- the run ---- */

struct smoke_run_opts {
	const struct render_ctx *rc;
	const char *ns;                 /* namespace of the pods (created when missing) */
	const char *image;
	const struct taint_op *tolerations;
	size_t ntolerations;
	struct smoke_plan_opts plan;
	int keep;                       /* leave the pods */
	long measure_s;                 /* --measure: seconds of load per pod; 0: no measurement */
	long timeout_ms;                /* overall */
	/* progress (may be NULL): one line per step, for a terminal */
	void (*progress)(void *ud, const char *line);
	void *progress_ud;
};

/* What the run left in the cluster. */
struct smoke_left {
	char *run_id;
	char **pods;                    /* names still there (strv), NULL when none */
	int deleted_all;                /* the removal ran and every pod is gone */
	int kept;                       /* --keep */
	struct gerr err;                /* why the removal failed */
};
void smoke_left_release(struct smoke_left *l);
/* The command that removes the run's pods (new string). */
char *smoke_cleanup_command(const char *ns, const char *run_id);

/* Run the smoke test on nodes (Node objects, each a target): permission
 * preflight (GERR_FORBIDDEN listing every missing one), the namespace, the
 * pods in use, the pods, one watch driving every node, the logs, the rows
 * (appended to rep: per node its checks then its pods), the removal.
 * Returns 0 when the run happened (rows say what passed), -1 with err when
 * it could not start (nothing was created then, left->pods NULL). */
int smoke_run(struct kube_client *kc, const cJSON *nodes, const struct smoke_run_opts *o, struct report *rep,
	      struct smoke_left *left, struct gerr *err);

#endif
