/* nvsmi.h - parsers for what a GPU node says about its driver: nvidia-smi
 * output, /proc/driver/nvidia/version and /proc/modules.  Pure functions over
 * text (the node layer fetches the text over SSH). */
#ifndef GPUCTL_NVSMI_H
#define GPUCTL_NVSMI_H

#include <stddef.h>

#include "gpuctl/err.h"

struct gpu_info {
	int index;
	char *uuid;
	char *name;            /* "NVIDIA H100 80GB HBM3" */
	char *driver_version;
	long memory_total_mib; /* -1 when not reported */
	long memory_used_mib;
	long memory_free_mib;
	char *mig_mode;        /* "Enabled", "Disabled", "N/A" */
	char *compute_mode;
	char *pci_bus_id;
};

struct nvsmi_gpus {
	struct gpu_info *gpus;
	size_t n;
};

/* The command whose output fills struct gpu_info (nvsmi_parse_query): the
 * probe runs exactly this. */
#define NVSMI_QUERY_GPU_CMD                                                                                      \
	"nvidia-smi --query-gpu=index,uuid,name,driver_version,memory.total,memory.used,memory.free,"              \
	"mig.mode.current,compute_mode,pci.bus_id --format=csv"

/* Parse `nvidia-smi --query-gpu=... --format=csv` output (with its header;
 * columns found by name, units stripped).  Errors say what was wrong,
 * quoting nvidia-smi's own failure message when it printed one. */
int nvsmi_parse_query_gpu(const char *csv, struct nvsmi_gpus *out, struct gerr *err);
void nvsmi_gpus_release(struct nvsmi_gpus *g);

/* From the banner of plain `nvidia-smi`: driver and CUDA versions (owned). */
int nvsmi_parse_banner(const char *text, char **driver, char **cuda, struct gerr *err);

/* From /proc/driver/nvidia/version: the driver version (owned). */
int nvsmi_parse_proc_version(const char *text, char **driver, struct gerr *err);

/* Kernel modules of interest, from /proc/modules (or lsmod's output: same first column). */
struct nv_modules {
	int nvidia;
	int nvidia_uvm;
	int nvidia_modeset;
	int nvidia_drm;
	int nvidia_peermem;
};
void proc_modules_parse(const char *text, struct nv_modules *m);

/* Compare dotted numeric versions ("580.159.04" vs "470"): <0, 0, >0.
 * Returns -2 when either is not a version. */
int version_cmp(const char *a, const char *b);

#endif
