/* gpustack.h - what is already there of an NVIDIA GPU stack in a cluster:
 * device plugins gpuctl did not deploy, and the GPU Operator's ClusterPolicy
 * (whose devicePlugin.config gpuctl sets in operator mode).  Reads are one
 * LIST each; nothing here prints. */
#ifndef GPUCTL_GPUSTACK_H
#define GPUCTL_GPUSTACK_H

#include <cjson/cJSON.h>

#include "gpuctl/err.h"

struct kube_client;

/* Does a container run the device plugin itself (its image is
 * k8s-device-plugin and it is not GFD, the config-manager or the MPS daemon,
 * which share that image)? */
int gpustack_runs_plugin(const cJSON *container);

/* DaemonSets in any namespace, not created by gpuctl, that run the device
 * plugin: *names ("ns/name, ns/name", new) and *image (the first one's
 * image, new) are set when there is one, else NULL. */
int gpustack_foreign_plugins(struct kube_client *kc, char **names, char **image, struct gerr *err);

/* The GPU Operator's ClusterPolicy: *policy is the first one (new) or NULL
 * when the CRD is not installed or none exists; listing it forbidden sets
 * *forbidden (no error) so that the caller can name every missing permission
 * at once. */
int gpustack_cluster_policy(struct kube_client *kc, cJSON **policy, int *forbidden, struct gerr *err);

/* Merge-patch the ClusterPolicy policy (as read; server dry run with
 * dry_server).  The first patch of spec.devicePlugin.config also records the
 * value before it in the annotation GPUCTL_POLICY_RECORD_KEY (owned.h). */
int gpustack_policy_patch(struct kube_client *kc, const cJSON *policy, const cJSON *patch, int dry_server,
			  struct gerr *err);

/* gpuctl cleanup: put back the spec.devicePlugin.config the record names
 * and drop the record; *restored says whether there was one. */
int gpustack_policy_restore(struct kube_client *kc, const cJSON *policy, int dry_server, int *restored, struct gerr *err);

/* Whether the CustomResourceDefinition name is installed. */
int gpustack_crd_exists(struct kube_client *kc, const char *name, int *exists, struct gerr *err);

/* Delete the pods in ns matching selector that run on one of the nodes
 * (their DaemonSet starts them again, with a new configuration): deleted[i]
 * counts the pods deleted on nodes[i].  Concurrent; a pod gone already
 * counts as deleted; failures are counted in *failed (the first one in err). */
int gpustack_delete_pods_on(struct kube_client *kc, const char *ns, const char *selector, const char *const *nodes,
			    size_t n, int dry_server, int *deleted, size_t *failed, struct gerr *err);

#endif
