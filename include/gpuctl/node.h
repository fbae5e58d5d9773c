/* node.h - what gpuctl does on a GPU node over SSH: the inventory that says
 * how to reach nodes, read-only probes, and preparing containerd for the
 * NVIDIA runtime with backup, verification and rollback. */
#ifndef GPUCTL_NODE_H
#define GPUCTL_NODE_H

#include <cjson/cJSON.h>

#include "gpuctl/containerd.h"
#include "gpuctl/err.h"
#include "gpuctl/nvsmi.h"
#include "gpuctl/ssh.h"

/* ---- the containerd flavour ---- */

/* How containerd runs on a node.  The names (inventory, JSON) are
 * "containerd1", "containerd2", "k3s", "rke2"; "none" (no containerd) and
 * "unknown" are only reported. */
enum cr_flavour { CR_UNKNOWN, CR_CONTAINERD1, CR_CONTAINERD2, CR_K3S, CR_RKE2, CR_NONE };
const char *cr_flavour_name(enum cr_flavour f);
/* One of the four names an inventory may give; -1 for anything else. */
int cr_flavour_parse(const char *name, enum cr_flavour *f);
/* k3s and rke2 embed containerd and generate its config from a template. */
int cr_flavour_embedded(enum cr_flavour f);

/* How to reach one node and what runs there.  All strings owned. */
struct node_spec {
	char *name;
	char *address;
	int port;
	char *user;
	char *identity_file;
	char *known_hosts;
	int sudo;             /* -1 unset */
	enum cr_flavour flavour; /* CR_UNKNOWN: detect */
	char *config_path;    /* containerd config (absolute); NULL: the flavour's default */
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
/* Refuse two nodes of one run at the same address and port (GERR_USAGE
 * naming both): n specs, stride bytes apart (a spec inside a larger struct).
 * Nodes without an address are skipped; port 0 means 22. */
int node_specs_check_addresses(const struct node_spec *first, size_t n, size_t stride, struct gerr *err);

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
	enum cr_flavour flavour;     /* CR_NONE: no containerd */
	char *config_path;
	char *os;
	cJSON *problems;             /* array of strings: what is wrong on this node */
	char *smi_error;             /* nvidia-smi's failure ("Failed to initialize NVML: ..."), or NULL */
};

/* Run the read-only probes on a connected node. Problems found (old driver,
 * missing module) go to r->problems; -1 only when the node cannot be probed. */
int node_probe(struct ssh_conn *c, const char *min_driver, struct probe_result *r, struct gerr *err);
void probe_result_release(struct probe_result *r);
/* The probe's output (sections "@@gpuctl:NAME") into r: pure, for tests.
 * driver_ok needs a version >= min_driver AND a working nvidia-smi. */
void probe_parse(const char *out, const char *min_driver, struct probe_result *r);
cJSON *probe_result_json(const struct probe_result *r);
/* containerd is there: installed, or embedded in k3s/rke2. */
int node_has_containerd(const struct probe_result *p);
/* Whether the node can take the nvidia runtime: driver at the minimum,
 * nvidia and nvidia_uvm loaded, the toolkit and containerd installed.
 * Returns 1 ready, else 0 with why (GERR_CONFIG) set to the first problem,
 * as "node is not ready for the nvidia runtime: PROBLEM" is worded.  The one
 * rule shared by deploy's gate and validate's verdicts. */
int node_ready_for_runtime(const struct probe_result *p, struct gerr *why);

/* ---- containerd ---- */

struct containerd_opts {
	int default_runtime;          /* make nvidia the default runtime */
	const char *restart_command;  /* default: systemctl restart containerd */
	const char *check_command;    /* default: systemctl is-active containerd */
	const char *runtime_path;     /* default: what the probe found, else /usr/bin/nvidia-container-runtime */
	const char *templates_dir;    /* --templates: overrides of the drop-in's template, or NULL */
	int dry_run;
	/* a fresh connection to the node, for a rollback after the connection broke (remote.h) */
	int (*reconnect)(void *ud, struct ssh_conn **c, struct gerr *err);
	void *reconnect_ud;
	/* tests: run the node's commands elsewhere (remote.h's exec and close); NULL: over SSH */
	int (*exec)(struct ssh_conn *c, const char *cmdline, const char *in, size_t in_len, struct buf *out,
		    struct buf *errout, int *status, struct gerr *err);
	void (*close)(struct ssh_conn *c);
};

/* rolled-back: every file proven restored by hash; rollback-failed: not,
 * manual_steps say how to finish by hand */
enum prep_status { PREP_UNCHANGED, PREP_CHANGED, PREP_FAILED, PREP_ROLLED_BACK, PREP_ROLLBACK_FAILED };
/* "unchanged", "changed", "failed", "rolled-back", "rollback-failed" */
const char *prep_status_name(enum prep_status s);

struct prep_result {
	enum prep_status status;
	char *method;      /* "drop-in", "nvidia-ctk", "k3s-template" */
	char *backup;      /* path of the backup on the node */
	cJSON *steps;      /* what was done, in order */
	cJSON *manual_steps; /* rollback-failed: shell commands that finish the rollback, else NULL */
	struct gerr err;
};

/* Add the nvidia runtime to containerd: unchanged when already there (no
 * restart); else, under the node's lock (remote.h), back up, write
 * atomically, verify with `containerd config dump`, restart, check, and roll
 * back on any failure.  src/node/containerd.c; k3s/rke2 in src/node/k3s.c. */
int containerd_prepare(struct ssh_conn *c, const struct probe_result *p, const struct containerd_opts *o,
		       struct prep_result *r);
void prep_result_release(struct prep_result *r);

/* Undo what containerd_prepare did (gpuctl cleanup), under the node's lock:
 * remove gpuctl's drop-in and the imports glob it added to config.toml (back
 * byte for byte to the backup when only that changed), or restore
 * config.toml from gpuctl's earliest backup of the series when it holds
 * nvidia-ctk's rewrite (GERR_CONFLICT when a person changed it since, unless
 * force), or cut gpuctl's tables from a k3s/rke2 config.toml.tmpl; verify
 * with `containerd config dump`, restart, roll back on failure.  Backups stay
 * on the node (listed in r->steps); r->backup is the one restored from.
 * Nothing of gpuctl's: PREP_UNCHANGED.  o->dry_run: read only, the steps say
 * what would be done.  src/node/undo.c. */
int containerd_undo(struct ssh_conn *c, const struct probe_result *p, const struct containerd_opts *o, int force,
		    struct prep_result *r);
/* Set every GPU's compute mode back to DEFAULT (`nvidia-smi -c DEFAULT`);
 * GERR_API with nvidia-smi's message when it refuses. */
int node_compute_mode_reset(struct ssh_conn *c, struct gerr *err);
/* config with the quoted glob taken out of its top-level imports (with one
 * comma; an emptied list goes, line and all), a new string; NULL when it is
 * not imported there. */
char *containerd_drop_import(const char *config, const char *glob);
/* A `containerd config dump` without the CRI plugin's nvidia runtime tables (nvidia-cdi, nvidia-legacy too)
 * and its default_runtime_name line, blank lines left out (a new string): two dumps equal this way
 * differ by what gpuctl (or nvidia-ctk for it) adds. */
char *containerd_dump_without_nvidia(const char *dump, int major);

/* What validate reads of a node's containerd (read-only; src/node/inspect.c). */
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

#endif
