/* owned.h - how gpuctl marks what it creates, in the cluster and on nodes,
 * so that later runs (and `gpuctl cleanup`) find exactly that and nothing
 * else.  Every literal of these lives here. */
#ifndef GPUCTL_OWNED_H
#define GPUCTL_OWNED_H

/* Label on every object gpuctl creates in the cluster. */
#define GPUCTL_MANAGED_BY_KEY "app.kubernetes.io/managed-by"
#define GPUCTL_MANAGED_BY_VALUE "gpuctl"
/* The selector that finds them. */
#define GPUCTL_MANAGED_BY_SELECTOR GPUCTL_MANAGED_BY_KEY "=" GPUCTL_MANAGED_BY_VALUE
/* Which part of gpuctl created an object (deploy, slice, smoke-test). */
#define GPUCTL_COMPONENT_KEY "gpuctl.io/component"
/* fieldManager of every write (server-side apply owns fields by it). */
#define GPUCTL_FIELD_MANAGER "gpuctl"

/* The taint `gpuctl taint` puts on GPU nodes by default (nvidia.com/gpu=true:NoSchedule):
 * gpuctl's own pods (smoke-test) tolerate it. */
#define GPUCTL_GPU_TAINT_KEY "nvidia.com/gpu"
#define GPUCTL_GPU_TAINT_EFFECT "NoSchedule"
/* gpuctl smoke-test's pods: the run they belong to (8 hex characters), the
 * node they test and their role (gpu, share, overcommit); the namespace they
 * run in by default. */
#define GPUCTL_SMOKE_RUN_KEY "gpuctl.io/smoke-run"
#define GPUCTL_SMOKE_NODE_KEY "gpuctl.io/smoke-node"
#define GPUCTL_SMOKE_ROLE_KEY "gpuctl.io/smoke-role"
#define GPUCTL_SMOKE_NAMESPACE "gpuctl-smoke-test"

/* The validation gate: `gpuctl taint --until-validated` puts this taint on
 * GPU nodes, `gpuctl validate --admit` removes it from each node that passed. */
#define GPUCTL_UNVALIDATED_TAINT_KEY "gpuctl.io/unvalidated"
#define GPUCTL_UNVALIDATED_TAINT GPUCTL_UNVALIDATED_TAINT_KEY "=true:NoSchedule"
/* Set by `validate --admit` on a node it admitted (the time, RFC 3339): such a
 * node is no longer new, and `taint --until-validated` leaves it alone. */
#define GPUCTL_VALIDATED_ANNOTATION "gpuctl.io/validated"
/* Node annotations recording what gpuctl's label/taint edits added, so that
 * `gpuctl cleanup` removes exactly that and never what a person set:
 * added-labels: a JSON list of the label keys gpuctl added (absent before);
 * overwritten-labels: a JSON object {key: value before} of labels a person had
 * set that gpuctl changed with --overwrite (cleanup puts that value back);
 * added-taints: a JSON list of "key:effect" of the taints gpuctl added.
 * Removing a label or taint through gpuctl removes it from the record. */
#define GPUCTL_ADDED_LABELS_KEY "gpuctl.io/added-labels"
#define GPUCTL_OVERWRITTEN_LABELS_KEY "gpuctl.io/overwritten-labels"
#define GPUCTL_ADDED_TAINTS_KEY "gpuctl.io/added-taints"
/* Node annotation gpuctl slice sets when it configures MPS on the node (any
 * value): cleanup resets a compute mode left at EXCLUSIVE_PROCESS only where
 * it is present, and removes it afterwards. */
#define GPUCTL_MPS_RECORD_KEY "gpuctl.io/mps"
/* ClusterPolicy annotation: the spec.devicePlugin.config (JSON, "null" when
 * unset) before gpuctl deploy/slice first changed it; gpuctl cleanup puts
 * it back. */
#define GPUCTL_POLICY_RECORD_KEY "gpuctl.io/previous-device-plugin-config"
/* The device plugin's per-node config label (gpuctl slice sets it). */
#define GPUCTL_DEVICE_PLUGIN_CONFIG_LABEL "nvidia.com/device-plugin.config"
/* Marker line gpuctl writes before the tables it adds to a k3s/rke2 config.toml.tmpl. */
#define GPUCTL_K3S_MARKER "# Added by gpuctl: the NVIDIA container runtime."

/* On nodes: the containerd drop-in gpuctl writes (in the conf.d next to config.toml). */
#define GPUCTL_DROPIN_NAME "99-gpuctl-nvidia.toml"
/* Backups of files gpuctl replaced: <file>.gpuctl-backup-<time>[-<unique>]. */
#define GPUCTL_BACKUP_INFIX ".gpuctl-backup-"

#endif
