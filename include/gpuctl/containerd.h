/* containerd.h - pure transforms of containerd configuration text (no I/O):
 * the drop-in gpuctl writes, the imports line, whether the nvidia runtime is
 * configured, and what else of the CRI plugin changed.  src/node/crconfig.c. */
#ifndef GPUCTL_CONTAINERD_H
#define GPUCTL_CONTAINERD_H

#include "gpuctl/err.h"

struct buf;

/* The CRI plugin's id for a containerd major version ("io.containerd.grpc.v1.cri",
 * "io.containerd.cri.v1.runtime"). */
const char *containerd_cri_plugin(int major);
/* The canonical table path (toml.h) of a CRI plugin table: plugins."PL"REST (a new string). */
char *containerd_cri_table(int major, const char *rest);

/* The drop-in TOML for a containerd major version: the CRI plugin's tables
 * copied from dump (`containerd config dump`, may be NULL) without any old
 * nvidia runtime, plus the nvidia runtime.  containerd merges imported files
 * plugin by plugin, so the drop-in must carry the whole plugin section.  The
 * nvidia runtime keeps the settings of an existing nvidia runtime (EKS
 * nodeadm and nvidia-ctk write one without a runc table) and takes the rest
 * from the default runc runtime.  Rendered from templates/containerd-dropin.toml.tmpl
 * (rc: where an override may be; NULL for the embedded one) into *out (new);
 * a rendering that does not configure the nvidia runtime as asked (a broken
 * override) is GERR_INVALID naming the template. */
struct render_ctx;
int containerd_dropin(const struct render_ctx *rc, int major, const char *runtime_path, int default_runtime,
		      const char *dump, char **out, struct gerr *err);
/* The dump (`containerd config dump`) has the nvidia runtime: a runc v2
 * runtime named nvidia whose BinaryName is runtime_path (any, when NULL),
 * and with want_default, the default runtime. */
int containerd_runtime_configured(const char *dump, int major, const char *runtime_path, int want_default);
/* Whether the CRI plugin's settings differ between two dumps, leaving out the
 * default runtime's name and the nvidia runtime's BinaryName; the nvidia
 * runtime may gain settings but never lose or change one it had.  The first
 * difference is described in what ("lost TABLE KEY = VALUE" or "gained ..."). */
int containerd_cri_settings_diff(const char *before, const char *after, int major, struct buf *what);
/* Insert an imports line for dir/ *.toml into a containerd main config (a new string),
 * or NULL when it already imports it. */
char *containerd_add_import(const char *config, const char *glob, int config_version);
/* The CRI plugin's section of dump holds registry credentials (auth,
 * username, password, identitytoken under registry.configs): a file that
 * copies it must be no more readable than its source. */
int containerd_cri_has_auth(const char *dump, int major);
/* The runc v2 runtime the nvidia runtime is modelled on (the default one, or
 * runc), or NULL (a new string). */
char *containerd_base_runtime(const char *dump, int major);
/* grpc.address of a dump, or NULL when unset (a new string). */
char *containerd_grpc_address(const char *dump);

#endif
