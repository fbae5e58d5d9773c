/* deployset.h - what gpuctl deploy puts into the cluster, apart from how:
 * the values (images from templates/versions.yaml.tmpl, the namespace, the
 * registry), the objects of each cluster phase rendered from templates/, and
 * their YAML as --render prints it.  Private to src/cmd (deploy.c and its
 * unit tests).  No cluster contact here.
 *
 * Ownership: values and docs returned are new cJSON trees owned by the caller.
 */
#ifndef GPUCTL_DEPLOYSET_H
#define GPUCTL_DEPLOYSET_H

#include <cjson/cJSON.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"

#define DEPLOY_NAMESPACE "nvidia-device-plugin"
#define DEPLOY_PLUGIN_NAME "nvidia-device-plugin"
#define DEPLOY_CONFIG_NAME "nvidia-device-plugin-configs"
#define DEPLOY_CONFIG_DEFAULT "any"
#define DEPLOY_RUNTIME_CLASS "nvidia"

struct deploy_set_opts {
	const char *templates_dir;   /* --templates, or NULL */
	const char *ns;              /* NULL: DEPLOY_NAMESPACE */
	const char *plugin_version;  /* --plugin-version ("v0.17.2" or "0.17.2"); NULL: the first in versions */
	const char *registry;        /* --registry, or NULL */
};

/* Check --registry: a host[:port] with an optional path ("mirror.local:5000/nvidia"),
 * no scheme, no spaces, no tag.  GERR_USAGE naming it. */
int deploy_registry_check(const char *registry, struct gerr *err);
/* The image with its registry part replaced by registry (new string).  The
 * registry part is the first component when it holds a '.' or ':' or is
 * "localhost"; otherwise the image has none (docker.io) and registry is put
 * in front.  registry NULL or "": a copy. */
char *deploy_image_rewrite(const char *image, const char *registry);

/* templates/versions.yaml.tmpl (or the one in templates_dir), rendered and
 * parsed: the one place images are pinned (deploy and smoke-test). */
int deploy_versions(const char *templates_dir, cJSON **out, struct gerr *err);

/* The values every deploy template is rendered with (see the templates'
 * comments): images from versions.yaml.tmpl (GERR_USAGE for an unknown
 * --plugin-version, listing the known ones), rewritten for --registry. */
int deploy_values(const struct deploy_set_opts *o, cJSON **values, struct gerr *err);

/* The objects of a cluster phase ("plugin", "gfd", "dcgm-exporter"), rendered
 * and parsed, appended to docs in apply order (Namespace first).  A
 * Namespace already in docs is not added again.  Every object is checked:
 * a kind and a name, and namespaced objects in the namespace of the values
 * (an override of a template may not move them). */
int deploy_phase_objects(const struct deploy_set_opts *o, const cJSON *values, const char *phase, cJSON *docs,
			 struct gerr *err);

/* The YAML --render prints: each object as one document ("---" line first),
 * block style, in the order of docs. */
void deploy_render_yaml(const cJSON *docs, struct buf *out);

#endif
