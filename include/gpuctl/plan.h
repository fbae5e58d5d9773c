/* plan.h - the label and taint planners, pure functions usable by every
 * command that edits nodes (label, taint, slice, cleanup).
 *
 * Each has the edit_plan_fn shape (nodes.h): given the plan (ud) and a Node
 * object (borrowed), fill r->changes, r->state and r->patch, or fail with
 * r->err.  The patch is a JSON patch that first tests the labels (or the
 * spec, for taints) as read, so a concurrent change fails with 422 and
 * nodes_edit re-plans from a fresh read.
 */
#ifndef GPUCTL_PLAN_H
#define GPUCTL_PLAN_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "gpuctl/labels.h"
#include "gpuctl/nodes.h"

/* Both planners record what they add in node annotations (owned.h): a
 * label or taint that was not there goes into gpuctl.io/added-labels /
 * gpuctl.io/added-taints; a label a person set that --overwrite changes is
 * never recorded as gpuctl's, its old value goes into
 * gpuctl.io/overwritten-labels; removing through gpuctl drops the entry.  The
 * record is written by the same JSON patch, tested like the labels. */

/* Labels to set (KEY=VALUE) or remove (KEY-).  With defaults set, the text
 * "{product}" in a value is the node's nvidia.com/gpu.product, and a node
 * without one does not get that label.  Changing an existing value needs
 * overwrite (else GERR_CONFLICT); a bad value is GERR_INVALID. */
struct label_plan {
	struct label_op *ops;
	size_t nops;
	int defaults;  /* ops came from the defaults: "{product}" is substituted per node */
	int overwrite;
};

int label_plan_node(void *ud, const cJSON *node, struct edit_result *r);
/* The labels `gpuctl label` sets without arguments: the config file's
 * label.defaults ({key: value}; config may be NULL) or accelerator=nvidia and
 * gpu-type={product}.  *ops is new (label_op_release each, then free). */
int label_default_ops(const cJSON *config, struct label_op **ops, size_t *nops, struct gerr *err);

/* Taints to add (KEY[=VALUE]:EFFECT) or remove (KEY[:EFFECT]-).  Adding a
 * taint whose key and effect exist with another value needs overwrite.
 * kubectl's order: taints added first, then the old ones they do not replace;
 * timeAdded of an unchanged taint is kept; no taints left removes the field. */
struct taint_plan {
	struct taint_op *ops;
	size_t nops;
	int overwrite;
};

int taint_plan_node(void *ud, const cJSON *node, struct edit_result *r);
/* The taints `gpuctl taint` adds without arguments: taint.defaults of the
 * config file or nvidia.com/gpu=true:NoSchedule.  *ops is new. */
int taint_default_ops(const cJSON *config, struct taint_op **ops, size_t *nops, struct gerr *err);

/* gpuctl label --taint: the labels and the taints of a node in one JSON
 * patch (one write per node, both or neither): the label plan, then the
 * taint plan of the node as the label patch leaves it (its records), the
 * taint operations after the label ones.  r->changes holds both kinds (a
 * taint's carries "effect"); r->state is {"labels": {...}, "taints": [...]}. */
struct label_taint_plan {
	struct label_plan labels;
	struct taint_plan taints;
};
int label_taint_plan_node(void *ud, const cJSON *node, struct edit_result *r);

/* gpuctl cleanup's planner (ud unused, may be NULL): undo what the record
 * says gpuctl did to the node: remove the recorded labels and taints that
 * are still there, put back the values of labels gpuctl overwrote, remove
 * the record annotations.  Nothing else is touched.  r->changes entries
 * carry "kind" ("label", "taint", "annotation"); r->state is
 * {"labels": {...}, "taints": [...]} after the edit. */
int cleanup_plan_node(void *ud, const cJSON *node, struct edit_result *r);

/* A pod with these tolerations (a JSON array, as in a PodSpec) may be placed
 * on a node with these taints (spec.taints): every NoSchedule and NoExecute
 * taint is tolerated, by the Kubernetes rules (an empty key with Exists
 * tolerates every taint; Exists ignores the value, Equal, the default,
 * compares it; an empty effect matches every effect).  PreferNoSchedule
 * never keeps a pod off. */
int taints_tolerated(const cJSON *taints, const cJSON *tolerations);

/* Add to a planned edit (r, from a planner above, or empty) the annotation
 * key=value, unless the node has that annotation already: one more JSON
 * patch op (into the annotations object the patch creates, if it does) and a
 * change {op: annotate, key, value}.  For records such as gpuctl.io/mps and
 * gpuctl.io/validated.  -1 when r->patch cannot be read. */
int edit_add_annotation(const cJSON *node, struct edit_result *r, const char *key, const char *value);

/* list (a JSON array) holds the string s. */
int plan_record_has(const cJSON *list, const char *s);

/* The node's label key was added by gpuctl (its gpuctl.io/added-labels
 * record names it): gpuctl may change or remove it without taking it from
 * whoever else set it. */
int plan_label_added(const cJSON *node, const char *key);

#endif
