/* Read-only probes of a GPU node: one SSH command prints every section. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/node.h"

static const char *const flavour_names[] = { "unknown", "containerd1", "containerd2", "k3s", "rke2", "none" };

const char *cr_flavour_name(enum cr_flavour f)
{
	return (unsigned)f < sizeof(flavour_names) / sizeof(flavour_names[0]) ? flavour_names[f] : "unknown";
}

int cr_flavour_parse(const char *name, enum cr_flavour *f)
{
	for (int i = CR_CONTAINERD1; i <= CR_RKE2; i++)
		if (name && !strcmp(name, flavour_names[i])) {
			*f = (enum cr_flavour)i;
			return 0;
		}
	return -1;
}

int cr_flavour_embedded(enum cr_flavour f)
{
	return f == CR_K3S || f == CR_RKE2;
}

int node_has_containerd(const struct probe_result *p)
{
	return p->containerd_version || cr_flavour_embedded(p->flavour);
}

int node_ready_for_runtime(const struct probe_result *p, struct gerr *why)
{
	if (p->driver_ok && p->nvidia_runtime && node_has_containerd(p) && p->modules.nvidia && p->modules.nvidia_uvm)
		return 1;
	/* the probe recorded what is wrong in the order users read it */
	const cJSON *first = cJSON_GetArrayItem(p->problems, 0);
	gerr_set(why, GERR_CONFIG, "%s", cJSON_IsString(first) ? first->valuestring : "unknown problem");
	return 0;
}

/* A constant script: nothing from the cluster or the node is pasted into it. */
static const char probe_script[] =
	/* rke2 and k3s keep their containerd and ctr off the standard PATH */
	"export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH:"
	"/var/lib/rancher/rke2/bin:/var/lib/rancher/k3s/data/current/bin\n"
	"s() { printf '\\n@@gpuctl:%s\\n' \"$1\"; }\n"
	"s query; " NVSMI_QUERY_GPU_CMD " 2>&1; printf '\\n@@rc:%s\\n' $?\n"
	"s banner; nvidia-smi 2>&1 | head -n 6\n"
	"s procversion; cat /proc/driver/nvidia/version 2>&1\n"
	"s modules; if [ -r /proc/modules ]; then cat /proc/modules; else lsmod 2>&1; fi\n"
	"s containerd; containerd --version 2>&1; printf '\\n@@rc:%s\\n' $?\n"
	"s ctk; command -v nvidia-ctk\n"
	"s ncr; command -v nvidia-container-runtime\n"
	"s paths; for f in /var/lib/rancher/k3s/agent/etc/containerd/config.toml "
	"/var/lib/rancher/rke2/agent/etc/containerd/config.toml /etc/containerd/config.toml; do "
	"[ -e \"$f\" ] && echo \"$f\"; done\n"
	"s cfgversion; grep -m1 -E '^[[:space:]]*version[[:space:]]*=' /etc/containerd/config.toml 2>/dev/null\n"
	"s os; (. /etc/os-release 2>/dev/null; echo \"$PRETTY_NAME\"); uname -r\n"
	"s end\n";

/* The text of section name (a new string), or NULL when absent. */
static char *section(const char *out, const char *name)
{
	char *marker = xasprintf("\n@@gpuctl:%s\n", name);
	const char *p = strstr(out, marker);
	size_t ml = strlen(marker);
	free(marker);
	if (!p)
		return NULL;
	p += ml;
	const char *e = strstr(p, "\n@@gpuctl:");
	return xstrndup(p, e ? (size_t)(e - p) : strlen(p));
}

/* Split "...\n@@rc:N\n" into text and N. */
static int take_rc(char *sec)
{
	char *m = sec ? strstr(sec, "\n@@rc:") : NULL;
	if (!m)
		return -1;
	int rc = (int)strtol(m + 6, NULL, 10);
	*m = '\0';
	return rc;
}

static char *first_line_dup(const char *s)
{
	if (!s)
		return NULL;
	while (*s == '\n')
		s++;
	size_t n = strcspn(s, "\n");
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return n ? xstrndup(s, n) : NULL;
}

static void problem(struct probe_result *r, const char *fmt, ...) GPUCTL_PRINTF(2, 3);

static void problem(struct probe_result *r, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	cJSON_AddItemToArray(r->problems, cJSON_CreateString(b.s));
	buf_release(&b);
}

void probe_result_release(struct probe_result *r)
{
	free(r->driver_version);
	free(r->cuda_version);
	nvsmi_gpus_release(&r->gpus);
	free(r->containerd_version);
	free(r->nvidia_ctk);
	free(r->nvidia_runtime);
	free(r->config_path);
	free(r->os);
	free(r->smi_error);
	cJSON_Delete(r->problems);
	memset(r, 0, sizeof(*r));
}

/* "containerd github.com/containerd/containerd 1.6.20~ds1 <rev>" or "containerd containerd.io v2.0.4 ..." */
static char *containerd_version(const char *line, int *major)
{
	*major = 0;
	if (!line)
		return NULL;
	const char *p = line;
	for (int field = 0; *p && field < 2; field++) {
		p += strcspn(p, " ");
		p += strspn(p, " ");
	}
	if (*p == 'v')
		p++;
	if (!isdigit((unsigned char)*p))
		return NULL;
	size_t n = strspn(p, "0123456789.");
	*major = (int)strtol(p, NULL, 10);
	return xstrndup(p, n);
}

int node_probe(struct ssh_conn *c, const char *min_driver, struct probe_result *r, struct gerr *err)
{
	memset(r, 0, sizeof(*r));
	struct buf out = BUF_INIT, errb = BUF_INIT;
	int status = 0;
	if (ssh_exec(c, probe_script, NULL, 0, &out, &errb, &status, err) < 0) {
		buf_release(&out);
		buf_release(&errb);
		return -1;
	}
	if (!strstr(out.s, "\n@@gpuctl:end")) {
		gerr_set(err, GERR_PARSE, "the probe script did not run to its end (exit %d): %.*s", status,
			 (int)strcspn(errb.s, "\n"), errb.s);
		buf_release(&out);
		buf_release(&errb);
		return -1;
	}
	buf_release(&errb);
	probe_parse(out.s, min_driver, r);
	buf_release(&out);
	return 0;
}

/* nvidia-smi's own words when it fails: its first line, and the second when
 * it names the NVML library version (newer drivers print both). */
static char *smi_failure(const char *q)
{
	char *l1 = first_line_dup(q);
	if (!l1)
		return NULL;
	const char *nl = q ? strchr(q + strspn(q, "\n"), '\n') : NULL;
	char *l2 = nl ? first_line_dup(nl + 1) : NULL;
	if (l2 && !strncmp(l2, "NVML library version", 20)) {
		char *both = xasprintf("%s (%s)", l1, l2);
		free(l1);
		l1 = both;
	}
	free(l2);
	return l1;
}

void probe_parse(const char *out, const char *min_driver, struct probe_result *r)
{
	memset(r, 0, sizeof(*r));
	r->problems = cJSON_CreateArray();
	/* nvidia-smi: GPUs, driver */
	char *q = section(out, "query");
	int qrc = take_rc(q);
	struct gerr perr = GERR_INIT;
	if (qrc == 0 && nvsmi_parse_query_gpu(q, &r->gpus, &perr) == 0) {
		if (r->gpus.n && r->gpus.gpus[0].driver_version)
			r->driver_version = xstrdup(r->gpus.gpus[0].driver_version);
	} else {
		char *l = smi_failure(q);
		r->smi_error = xstrdup(perr.msg ? perr.msg : l ? l : "no output");
		problem(r, "nvidia-smi does not work: %s", r->smi_error);
		free(l);
	}
	gerr_clear(&perr);
	free(q);
	char *banner = section(out, "banner");
	char *d = NULL, *cu = NULL;
	if (banner && nvsmi_parse_banner(banner, &d, &cu, &perr) == 0) {
		r->cuda_version = cu;
		if (!r->driver_version)
			r->driver_version = d;
		else
			free(d);
	}
	gerr_clear(&perr);
	free(banner);
	char *pv = section(out, "procversion");
	if (!r->driver_version && pv && nvsmi_parse_proc_version(pv, &d, &perr) == 0)
		r->driver_version = d;
	gerr_clear(&perr);
	free(pv);
	if (r->driver_version) {
		int cmp = version_cmp(r->driver_version, min_driver);
		/* a kernel driver whose nvidia-smi fails (a version mismatch after an
		 * upgrade without a reboot) is not a working driver, whatever
		 * /proc/driver/nvidia/version says */
		r->driver_ok = cmp >= 0 && !r->smi_error;
		if (cmp < 0)
			problem(r, "driver %s is older than the minimum %s", r->driver_version, min_driver);
	} else {
		problem(r, "no NVIDIA driver found (nvidia-smi and /proc/driver/nvidia/version give no version)");
	}
	char *mods = section(out, "modules");
	proc_modules_parse(mods ? mods : "", &r->modules);
	free(mods);
	if (!r->modules.nvidia)
		problem(r, "kernel module nvidia is not loaded");
	if (!r->modules.nvidia_uvm)
		problem(r, "kernel module nvidia_uvm is not loaded (CUDA needs it)");
	/* containerd */
	char *ct = section(out, "containerd");
	int crc = take_rc(ct);
	char *cl = first_line_dup(ct);
	if (crc == 0)
		r->containerd_version = containerd_version(cl, &r->containerd_major);
	else
		problem(r, "containerd is not installed or does not run: %s", cl ? cl : "no output");
	free(cl);
	free(ct);
	char *s = section(out, "ctk");
	r->nvidia_ctk = first_line_dup(s);
	free(s);
	s = section(out, "ncr");
	r->nvidia_runtime = first_line_dup(s);
	free(s);
	if (!r->nvidia_runtime)
		problem(r, "nvidia-container-runtime is not installed (install nvidia-container-toolkit)");
	s = section(out, "paths");
	if (s && strstr(s, "/var/lib/rancher/k3s/")) {
		r->flavour = CR_K3S;
		r->config_path = xstrdup("/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl");
	} else if (s && strstr(s, "/var/lib/rancher/rke2/")) {
		r->flavour = CR_RKE2;
		r->config_path = xstrdup("/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl");
	} else if (r->containerd_version) {
		r->flavour = r->containerd_major >= 2 ? CR_CONTAINERD2 : CR_CONTAINERD1;
		r->config_path = xstrdup("/etc/containerd/config.toml");
	} else {
		r->flavour = CR_NONE; /* no containerd at all */
	}
	free(s);
	s = section(out, "cfgversion");
	const char *eq = s ? strchr(s, '=') : NULL;
	r->containerd_config_version = eq ? (int)strtol(eq + 1, NULL, 10)
				   : !r->containerd_version ? 0
				   : r->containerd_major >= 2 ? 3 : 2;
	free(s);
	s = section(out, "os");
	r->os = first_line_dup(s);
	free(s);
}

cJSON *probe_result_json(const struct probe_result *r)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *drv = cJSON_AddObjectToObject(o, "driver");
	if (r->driver_version)
		cJSON_AddStringToObject(drv, "version", r->driver_version);
	else
		cJSON_AddNullToObject(drv, "version");
	if (r->cuda_version)
		cJSON_AddStringToObject(drv, "cudaVersion", r->cuda_version);
	cJSON_AddBoolToObject(drv, "meetsMinimum", r->driver_ok);
	if (r->smi_error)
		cJSON_AddStringToObject(drv, "nvidiaSmiError", r->smi_error);
	cJSON *gpus = cJSON_AddArrayToObject(o, "gpus");
	for (size_t i = 0; i < r->gpus.n; i++) {
		const struct gpu_info *g = &r->gpus.gpus[i];
		cJSON *x = cJSON_CreateObject();
		cJSON_AddNumberToObject(x, "index", g->index);
		cJSON_AddStringToObject(x, "uuid", g->uuid);
		cJSON_AddStringToObject(x, "name", g->name);
		if (g->memory_total_mib >= 0)
			cJSON_AddNumberToObject(x, "memoryMiB", (double)g->memory_total_mib);
		if (g->mig_mode)
			cJSON_AddStringToObject(x, "migMode", g->mig_mode);
		if (g->pci_bus_id)
			cJSON_AddStringToObject(x, "pciBusId", g->pci_bus_id);
		cJSON_AddItemToArray(gpus, x);
	}
	cJSON *m = cJSON_AddObjectToObject(o, "kernelModules");
	cJSON_AddBoolToObject(m, "nvidia", r->modules.nvidia);
	cJSON_AddBoolToObject(m, "nvidia_uvm", r->modules.nvidia_uvm);
	cJSON_AddBoolToObject(m, "nvidia_modeset", r->modules.nvidia_modeset);
	cJSON *ct = cJSON_AddObjectToObject(o, "containerd");
	if (r->containerd_version)
		cJSON_AddStringToObject(ct, "version", r->containerd_version);
	cJSON_AddNumberToObject(ct, "configVersion", r->containerd_config_version);
	cJSON_AddStringToObject(ct, "flavour", cr_flavour_name(r->flavour));
	if (r->config_path)
		cJSON_AddStringToObject(ct, "configPath", r->config_path);
	cJSON *tk = cJSON_AddObjectToObject(o, "toolkit");
	if (r->nvidia_ctk)
		cJSON_AddStringToObject(tk, "nvidiaCtk", r->nvidia_ctk);
	if (r->nvidia_runtime)
		cJSON_AddStringToObject(tk, "nvidiaContainerRuntime", r->nvidia_runtime);
	if (r->os)
		cJSON_AddStringToObject(o, "os", r->os);
	cJSON_AddItemToObject(o, "problems", cJSON_Duplicate(r->problems, 1));
	return o;
}
