/* apply.h - putting gpuctl's objects into the cluster and taking them out:
 * apply a set of objects (server-side apply, fieldManager gpuctl, the
 * managed-by label added), tell created / configured / unchanged apart
 * without writing what is already so, show what would change, wait for a
 * condition by watch, and delete exactly what gpuctl owns across kinds.
 *
 * Objects are cJSON trees as rendered from templates (render.h); they are
 * borrowed.  Results are owned by the caller (apply_results_free).
 */
#ifndef GPUCTL_APPLY_H
#define GPUCTL_APPLY_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "gpuctl/err.h"
#include "gpuctl/nodes.h"

struct kube_client;
struct buf;

/* Where a kind lives in the API: "daemonsets" under "apps/v1", namespaced. */
struct kube_kind {
	const char *group_version;  /* "apps/v1"; "v1" for the core group */
	const char *kind;           /* "DaemonSet" */
	const char *resource;       /* "daemonsets" */
	int namespaced;
};
/* The kind of obj (its apiVersion and kind) from the table of the kinds gpuctl
 * manages; NULL (with err naming the kind) for one it does not know. */
const struct kube_kind *kube_kind_of(const cJSON *obj, struct gerr *err);
/* Every kind gpuctl may create, for deleting by label across kinds; ends
 * with a NULL kind.  Cluster-scoped and namespaced kinds both. */
extern const struct kube_kind kube_owned_kinds[];
/* The object's path: /apis/apps/v1/namespaces/NS/daemonsets/NAME (new string). */
char *kube_object_path(const struct kube_kind *k, const cJSON *obj);

/* Does obj carry gpuctl's managed-by label? */
int apply_is_owned(const cJSON *obj);
/* The live object for the manifest doc (a new tree); GERR_NOTFOUND when
 * there is none. */
int apply_get_live(struct kube_client *kc, const cJSON *doc, cJSON **live, struct gerr *err);

/* The object kind/ns/name as the server has it (new); GERR_NOTFOUND when
 * absent.  ns is ignored for cluster-scoped kinds. */
int apply_get_named(struct kube_client *kc, const struct kube_kind *k, const char *ns, const char *name, cJSON **obj,
		    struct gerr *err);
/* Delete kind/ns/name (foreground; server dry run with dry_server); absent
 * is GERR_NOTFOUND. */
int apply_delete_named(struct kube_client *kc, const struct kube_kind *k, const char *ns, const char *name,
		       int dry_server, struct gerr *err);

/* Does `have` (an object as the server returns it) already hold everything
 * `want` says?  Objects: every key of want equal in have (have may hold more:
 * defaults, status, metadata the server adds); arrays: the same length and
 * each element contained; scalars equal.  Pure. */
int json_contains(const cJSON *have, const cJSON *want);
/* The first few differences as lines "path: old -> new" ("(none)" for an
 * absent value) appended to out; returns how many were found (all counted,
 * at most max listed). */
size_t json_diff(const cJSON *have, const cJSON *want, const char *prefix, struct buf *out, size_t max);

enum apply_status {
	APPLY_CREATED,      /* did not exist */
	APPLY_CONFIGURED,   /* existed, changed */
	APPLY_UNCHANGED,    /* already as wanted: nothing sent */
	APPLY_DELETED,      /* apply_delete_owned: deleted (or would be, in a dry run) */
	APPLY_FAILED,
};
const char *apply_status_name(enum apply_status s);

struct apply_result {
	char *kind, *ns, *name;   /* ns NULL for cluster-scoped objects */
	enum apply_status status;
	int foreign;              /* it exists without gpuctl's label: not gpuctl's to change */
	char *diff;               /* what changed or would change ("path: old -> new" lines), or NULL */
	struct gerr err;
};

struct apply_opts {
	enum dry_run dry;         /* client: read only; server: the server validates, saves nothing */
	int adopt;                /* take over an object that exists without gpuctl's label */
	const char *owner;        /* value of the gpuctl.io/component label (which part of gpuctl), or NULL */
};

/* Apply every object of docs (a cJSON array): read the current objects
 * concurrently, then apply (server-side, fieldManager gpuctl, with the
 * managed-by label) those that differ, concurrently.  An object that
 * exists without gpuctl's label is left alone and fails with GERR_CONFLICT
 * unless it already holds what is wanted (then unchanged, foreign) or
 * opts->adopt.  Returns the number of failed objects; *results is in the
 * order of docs. */
size_t apply_objects(struct kube_client *kc, const cJSON *docs, const struct apply_opts *o,
		     struct apply_result **results, size_t *n);
void apply_results_free(struct apply_result *r, size_t n);

/* Watch one object until pred says it is done: pred returns 1 done, 0 not
 * yet, -1 failed (with err set, e.g. a pod that failed).  timeout_ms bounds
 * the wait; running out is GERR_NOT_READY with what pred last said (*last,
 * set by pred, may be NULL). */
typedef int (*apply_ready_fn)(void *ud, const cJSON *obj, char **last, struct gerr *err);
int apply_wait(struct kube_client *kc, const struct kube_kind *k, const char *ns, const char *name,
	       apply_ready_fn pred, void *ud, long timeout_ms, struct gerr *err);
/* A DaemonSet rolled out: observed its generation, every scheduled pod
 * updated and available (0 scheduled counts as done).  For apply_wait. */
int apply_daemonset_ready(void *ud, const cJSON *obj, char **last, struct gerr *err);

/* Delete every object of the owned kinds carrying gpuctl's managed-by label
 * (and, when owner is set, gpuctl.io/component=owner): one LIST per kind,
 * deletes concurrently (foreground propagation).  Objects without the label
 * are never touched.  Results as apply's (APPLY_DELETED, or APPLY_FAILED).
 * Returns the number of failures. */
size_t apply_delete_owned(struct kube_client *kc, const char *owner, enum dry_run dry, struct apply_result **results,
			  size_t *n);

#endif
