/* node.h - what gpuctl does on a GPU node over SSH: the inventory that says
 * how to reach nodes, read-only probes, and preparing containerd for the
 * NVIDIA runtime with backup, verification and rollback. */
#ifndef GPUCTL_NODE_H
#define GPUCTL_NODE_H

#include <cjson/cJSON.h>

#include "gpuctl/err.h"
#include "gpuctl/nvsmi.h"
#include "gpuctl/ssh.h"

/* How to reach one node and what runs there.  All strings owned. */
struct node_spec {
	char *name;
	char *address;
	int port;
	char *user;
	char *identity_file;
	char *known_hosts;
	int sudo;             /* -1 unset */
	char *flavour;        /* containerd1, containerd2, k3s, rke2; NULL: detect */
	char *config_path;    /* containerd config; NULL: the flavour's default */
	char *restart_command;
	char *check_command;
	char *jump_host;
};

struct inventory {
	char *path;
	struct node_spec defaults;
	struct node_spec *nodes;
	size_t n;
};

/* Load an inventory file (apiVersion gpuctl.io/v1alpha1, kind Inventory).
 * Errors name the file and field. */
int inventory_load(const char *path, struct inventory *inv, struct gerr *err);
void inventory_release(struct inventory *inv);
/* The entry for name, or NULL. */
const struct node_spec *inventory_find(const struct inventory *inv, const char *name);
void node_spec_release(struct node_spec *s);
/* dst fields that are unset take src's (strings copied). */
void node_spec_fill(struct node_spec *dst, const struct node_spec *src);

/* ---- probes ---- */

struct probe_result {
	char *driver_version;
	char *cuda_version;
	struct nvsmi_gpus gpus;
	int driver_ok;               /* driver present and >= minimum */
	struct nv_modules modules;
	char *containerd_version;    /* "1.6.20" */
	int containerd_major;        /* 1, 2; 0 unknown */
	int containerd_config_version;
	char *nvidia_ctk;            /* path or NULL */
	char *nvidia_runtime;        /* path of nvidia-container-runtime or NULL */
	char *flavour;               /* containerd1, containerd2, k3s, rke2 */
	char *config_path;
	char *os;
	cJSON *problems;             /* array of strings: what is wrong on this node */
};

/* Run the read-only probes on a connected node. Problems found (old driver,
 * missing module) go to r->problems; -1 only when the node cannot be probed. */
int node_probe(struct ssh_conn *c, const char *min_driver, struct probe_result *r, struct gerr *err);
void probe_result_release(struct probe_result *r);
cJSON *probe_result_json(const struct probe_result *r);

/* ---- containerd ---- */

struct containerd_opts {
	int default_runtime;          /* make nvidia the default runtime */
	const char *restart_command;  /* default: systemctl restart containerd */
	const char *check_command;    /* default: systemctl is-active containerd */
	const char *runtime_path;     /* default: what the probe found, else /usr/bin/nvidia-container-runtime */
	int dry_run;
};

enum prep_status { PREP_UNCHANGED, PREP_CHANGED, PREP_FAILED, PREP_ROLLED_BACK };

struct prep_result {
	enum prep_status status;
	char *method;      /* "drop-in", "nvidia-ctk", "k3s-template" */
	char *backup;      /* path of the backup on the node */
	cJSON *steps;      /* what was done, in order */
	struct gerr err;
};

/* Add the nvidia runtime to containerd: unchanged when already there (no
 * restart); else back up, write atomically, verify with `containerd config
 * dump`, restart, check, and roll back on any failure. */
int containerd_prepare(struct ssh_conn *c, const struct probe_result *p, const struct containerd_opts *o,
		       struct prep_result *r);
void prep_result_release(struct prep_result *r);

/* What validate reads of a node's containerd (read-only). */
struct containerd_state {
	int dump_ok;            /* `containerd config dump` worked */
	char *dump_error;       /* else its first error line */
	int running;            /* containerd answers on its socket (`ctr version`) */
	char *server_version;
	int configured;         /* the effective configuration has a runc v2 runtime nvidia */
	char *binary;           /* its BinaryName */
	int binary_ok;          /* BinaryName is an executable on the node */
	int is_default;         /* nvidia is the default runtime */
	char *cgroup_mismatch;  /* SystemdCgroup of nvidia vs the default runtime, when they differ */
};
int containerd_inspect(struct ssh_conn *c, const struct probe_result *p, struct containerd_state *st, struct gerr *err);
void containerd_state_release(struct containerd_state *st);

/* The drop-in TOML for a containerd major version: the CRI plugin's tables
 * copied from dump (`containerd config dump`, may be NULL) without any old
 * nvidia runtime, plus the nvidia runtime.  containerd merges imported files
 * plugin by plugin, so the drop-in must carry the whole plugin section. */
char *containerd_dropin(int major, const char *runtime_path, int default_runtime, const char *dump);
/* The dump (`containerd config dump`) has the nvidia runtime: a runc v2
 * runtime named nvidia whose BinaryName is runtime_path (any, when NULL),
 * and with want_default, the default runtime. */
int containerd_runtime_configured(const char *dump, int major, const char *runtime_path, int want_default);
/* Whether the CRI plugin's settings differ between two dumps, leaving out the
 * nvidia runtime and the default runtime's name; the first difference is
 * described in what ("lost TABLE KEY = VALUE" or "gained ..."). */
struct buf;
int containerd_cri_settings_diff(const char *before, const char *after, int major, struct buf *what);
/* Insert an imports line for dir/ *.toml into a containerd main config (a new string),
 * or NULL when it already imports it. */
char *containerd_add_import(const char *config, const char *glob, int config_version);

#endif
