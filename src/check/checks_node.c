/* Checks on a GPU node over SSH: the read-only probe (one command) and
 * containerd's effective configuration (two more). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gpuctl/buf.h"
#include "gpuctl/check.h"
#include "gpuctl/json.h"
#include "gpuctl/ssh.h"
#include "gpuctl/util.h"

static void timed(struct check_report *r, size_t from, double secs)
{
	for (size_t i = from; i < r->n; i++)
		r->v[i].seconds = secs;
}

static const char *const node_probe_checks[] = {
	"node.driver", "node.gpus", "node.product", "node.compute-mode", "node.kernel-modules", "node.containerd", "node.toolkit", "node.nvidia-runtime", NULL,
};

void checks_node_unreachable(const char *name, const struct gerr *why, struct check_report *r)
{
	const char *m = why->msg ? why->msg : "cannot connect";
	/* the target column names the node already */
	size_t nl = strlen(name);
	if (!strncmp(m, "node ", 5) && !strncmp(m + 5, name, nl) && !strncmp(m + 5 + nl, ": ", 2))
		m += 7 + nl;
	check_add(r, "node.ssh", name, CHECK_FAIL, why->hint, "%.*s", (int)strcspn(m, "\n"), m);
	for (int i = 0; node_probe_checks[i]; i++)
		check_add(r, node_probe_checks[i], name, CHECK_SKIP, NULL, "skipped: the node cannot be reached over SSH");
	check_add(r, "node.plugin-config", name, CHECK_SKIP, NULL, "skipped: the node cannot be reached over SSH");
}

/* The GPUs as one phrase: "8 x NVIDIA H100 80GB HBM3" or a list when mixed. */
static void gpu_phrase(struct buf *b, const struct probe_result *p)
{
	const char *first = p->gpus.gpus[0].name;
	int same = 1;
	for (size_t i = 1; i < p->gpus.n; i++)
		same &= !strcmp(p->gpus.gpus[i].name, first);
	if (same) {
		buf_addf(b, "%zu x %s", p->gpus.n, first);
	} else {
		for (size_t i = 0; i < p->gpus.n; i++)
			buf_addf(b, "%s%s", i ? ", " : "", p->gpus.gpus[i].name);
	}
	size_t mig = 0;
	for (size_t i = 0; i < p->gpus.n; i++)
		mig += p->gpus.gpus[i].mig_mode && !strcmp(p->gpus.gpus[i].mig_mode, "Enabled");
	if (mig)
		buf_addf(b, "; MIG enabled on %zu", mig);
	else
		buf_adds(b, "; MIG off");
}

/* GFD's nvidia.com/gpu.product is nvidia-smi's name with spaces as dashes,
 * plus -SHARED when sharing renames the resource, or -MIG-<profile>. */
static int product_matches(const char *label, const char *smi)
{
	size_t i = 0;
	for (; smi[i] && label[i]; i++)
		if (label[i] != (smi[i] == ' ' ? '-' : smi[i]))
			return 0;
	if (smi[i])
		return 0;
	return !label[i] || !strcmp(label + i, "-SHARED") || !strncmp(label + i, "-MIG-", 5);
}

static void product_check(struct check_report *r, const char *name, const cJSON *node, const struct probe_result *p)
{
	const char *label = json_str(json_get2(node, "metadata", "labels"), "nvidia.com/gpu.product");
	if (!p->gpus.n) {
		check_add(r, "node.product", name, CHECK_SKIP, NULL, "skipped: nvidia-smi lists no GPUs");
		return;
	}
	if (!label) {
		check_add(r, "node.product", name, CHECK_SKIP, NULL,
			  "skipped: the node has no nvidia.com/gpu.product label (gpu-feature-discovery labels it)");
		return;
	}
	for (size_t i = 0; i < p->gpus.n; i++)
		if (product_matches(label, p->gpus.gpus[i].name)) {
			check_add(r, "node.product", name, CHECK_PASS, NULL, "%s (nvidia-smi: %s)", label, p->gpus.gpus[i].name);
			return;
		}
	check_add(r, "node.product", name, CHECK_FAIL,
		  "the label is stale or set by hand: let gpu-feature-discovery relabel the node (restart its pod), or correct it with kubectl label --overwrite",
		  "the node's label nvidia.com/gpu.product=%s, but nvidia-smi reports %s", label, p->gpus.gpus[0].name);
}

static void compute_mode_check(struct check_report *r, const char *name, const cJSON *node, const struct probe_result *p)
{
	const char *strategy = json_str(json_get2(node, "metadata", "labels"), "nvidia.com/gpu.sharing-strategy");
	int mps = (strategy && !strcmp(strategy, "mps")) || json_str(json_get2(node, "metadata", "annotations"), "gpuctl.io/mps");
	struct buf excl = BUF_INIT, prohib = BUF_INIT, unknown = BUF_INIT;
	size_t known = 0;
	for (size_t i = 0; i < p->gpus.n; i++) {
		const struct gpu_info *g = &p->gpus.gpus[i];
		const char *m = g->compute_mode;
		if (!m || !*m || !strcmp(m, "[N/A]")) {
			buf_addf(&unknown, "%s%d", unknown.len ? ", " : "", g->index);
			continue;
		}
		known++;
		if (!strcasecmp(m, "Exclusive_Process"))
			buf_addf(&excl, "%s%d", excl.len ? ", " : "", g->index);
		else if (!strcasecmp(m, "Prohibited"))
			buf_addf(&prohib, "%s%d", prohib.len ? ", " : "", g->index);
	}
	if (!p->gpus.n || !known)
		check_add(r, "node.compute-mode", name, CHECK_SKIP, NULL, "skipped: %s",
			  p->gpus.n ? "nvidia-smi does not report the compute mode" : "nvidia-smi lists no GPUs");
	else if (prohib.len)
		check_add(r, "node.compute-mode", name, CHECK_FAIL, "nvidia-smi -i INDEX -c DEFAULT on the node",
			  "GPU %s in compute mode PROHIBITED: no process can use it", prohib.s);
	else if (excl.len && !mps)
		check_add(r, "node.compute-mode", name, CHECK_FAIL,
			  "left behind by MPS: nvidia-smi -c DEFAULT on the node (gpuctl cleanup does it where gpuctl set up MPS)",
			  "GPU %s in compute mode EXCLUSIVE_PROCESS without MPS: one process per GPU, time-slicing's pods fail", excl.s);
	else if (mps && excl.len != 0)
		check_add(r, "node.compute-mode", name, CHECK_PASS, NULL, "EXCLUSIVE_PROCESS under MPS (GPU %s)", excl.s);
	else
		check_add(r, "node.compute-mode", name, CHECK_PASS, NULL, "%s on %zu GPU%s", mps ? "DEFAULT (MPS sets EXCLUSIVE_PROCESS itself)" : "DEFAULT",
			  known, known == 1 ? "" : "s");
	buf_release(&excl);
	buf_release(&prohib);
	buf_release(&unknown);
}

void plugin_config_judge(const char *name, const char *key, const char *path, int status, const char *out,
			 struct check_report *r)
{
	size_t len = out ? strcspn(out, "\n") : 0;
	if (status != 0 || !len) {
		/* not a fault of the node's: the kubelet keeps its pods elsewhere
		 * (microk8s, k0s), or the pod is not where the API puts it */
		check_add(r, "node.plugin-config", name, CHECK_SKIP,
			  "is the kubelet's root elsewhere (microk8s, k0s)? look for the link in the plugin pod's config volume",
			  "skipped: cannot tell which config the device plugin loaded: no link at %s", path);
		return;
	}
	const char *slash = memrchr(out, '/', len);
	const char *loaded = slash ? slash + 1 : out;
	int n = (int)(out + len - loaded);
	if (len == strlen("/dev/null") && !strncmp(out, "/dev/null", len))
		check_add(r, "node.plugin-config", name, CHECK_FAIL,
			  "the config-manager found no config of that name when it last looked: see its log (kubectl logs -c nvidia-device-plugin-sidecar)",
			  "the device plugin runs without a config (its link points to /dev/null), the node wants \"%s\"", key);
	else if ((size_t)n != strlen(key) || strncmp(loaded, key, (size_t)n))
		check_add(r, "node.plugin-config", name, CHECK_FAIL,
			  "the config-manager follows the node's label: see its log, or restart the plugin pod (gpuctl slice does)",
			  "the device plugin loaded config \"%.*s\", the node wants \"%s\"", n, loaded, key);
	else
		check_add(r, "node.plugin-config", name, CHECK_PASS, NULL, "the device plugin loaded config \"%s\"", key);
}

void checks_plugin_config(struct ssh_conn *c, const char *name, const char *pod_uid, const char *volume,
			  const char *key, const char *kubelet_root, struct check_report *r)
{
	char *path = xasprintf("%s/pods/%s/volumes/kubernetes.io~empty-dir/%s/config.yaml",
			       kubelet_root ? kubelet_root : "/var/lib/kubelet", pod_uid, volume);
	struct buf cmd = BUF_INIT, out = BUF_INIT;
	buf_adds(&cmd, "readlink ");
	sh_quote(&cmd, path);
	int status = -1;
	struct gerr err = GERR_INIT;
	if (ssh_exec(c, cmd.s, NULL, 0, &out, NULL, &status, &err) < 0) {
		const char *m = err.msg ? err.msg : "error";
		check_add(r, "node.plugin-config", name, CHECK_SKIP, NULL,
			  "skipped: cannot tell which config the device plugin loaded: %.*s", (int)strcspn(m, "\n"), m);
		gerr_clear(&err);
	} else {
		plugin_config_judge(name, key, path, status, out.s, r);
	}
	buf_release(&cmd);
	buf_release(&out);
	free(path);
}

void checks_node(struct ssh_conn *c, const struct node_spec *spec, const cJSON *node, const char *min_driver,
		 struct check_report *r)
{
	const char *name = spec->name;
	check_add(r, "node.ssh", name, CHECK_PASS, NULL, "connected (host key %s)", ssh_fingerprint(c));
	struct probe_result p;
	struct gerr err = GERR_INIT;
	double t0 = mono_s();
	size_t from = r->n;
	if (node_probe(c, min_driver, &p, &err) < 0) {
		const char *m = err.msg ? err.msg : "probe failed";
		for (int i = 0; node_probe_checks[i]; i++)
			check_add(r, node_probe_checks[i], name, i == 0 ? CHECK_FAIL : CHECK_SKIP, NULL, "%s%.*s",
				  i == 0 ? "the probe failed: " : "skipped: the probe failed: ", (int)strcspn(m, "\n"), m);
		gerr_clear(&err);
		return;
	}
	/* what the inventory says of containerd wins over what the probe guessed */
	if (spec->flavour != CR_UNKNOWN)
		p.flavour = spec->flavour;
	if (spec->config_path) {
		free(p.config_path);
		p.config_path = xstrdup(spec->config_path);
	}
	/* driver */
	if (p.smi_error)
		check_add(r, "node.driver", name, CHECK_FAIL,
			  strstr(p.smi_error, "version mismatch")
				  ? "the driver was upgraded without a reboot: reboot the node (or unload and reload the nvidia kernel modules) so that the kernel module matches the driver's libraries"
				  : "see why nvidia-smi fails on the node (dmesg, the driver's installation)",
			  "nvidia-smi fails: %s%s%s%s", p.smi_error, p.driver_version ? " (kernel module " : "",
			  p.driver_version ? p.driver_version : "", p.driver_version ? ")" : "");
	else if (p.driver_ok)
		check_add(r, "node.driver", name, CHECK_PASS, NULL, "driver %s%s%s%s (minimum %s)", p.driver_version,
			  p.cuda_version ? ", CUDA " : "", p.cuda_version ? p.cuda_version : "", "", min_driver);
	else if (p.driver_version)
		check_add(r, "node.driver", name, CHECK_FAIL, "upgrade the NVIDIA driver on the node",
			  "driver %s is older than the minimum %s", p.driver_version, min_driver);
	else {
		const cJSON *first = cJSON_GetArrayItem(p.problems, 0);
		check_add(r, "node.driver", name, CHECK_FAIL,
			  "install the NVIDIA driver, or see why nvidia-smi fails (dmesg; a driver/library version mismatch wants a reboot)",
			  "%s", cJSON_IsString(first) ? first->valuestring : "no NVIDIA driver found");
	}
	/* GPUs */
	const char *want_s = json_str(json_get2(node, "metadata", "labels"), "nvidia.com/gpu.count");
	long want = want_s ? strtol(want_s, NULL, 10) : -1;
	if (p.gpus.n == 0) {
		check_add(r, "node.gpus", name, p.driver_version ? CHECK_FAIL : CHECK_SKIP, NULL, "%s",
			  p.driver_version ? "nvidia-smi lists no GPUs" : "skipped: no working driver");
	} else {
		struct buf b = BUF_INIT;
		gpu_phrase(&b, &p);
		if (want >= 0 && (size_t)want != p.gpus.n)
			check_add(r, "node.gpus", name, CHECK_FAIL,
				  "a GPU has fallen off the bus or is hidden (nvidia-smi -q, dmesg), or the label is stale",
				  "%s, but the node's label nvidia.com/gpu.count says %ld", b.s, want);
		else
			check_add(r, "node.gpus", name, CHECK_PASS, NULL, "%s", b.s);
		buf_release(&b);
	}
	product_check(r, name, node, &p);
	compute_mode_check(r, name, node, &p);
	/* kernel modules */
	if (p.modules.nvidia && p.modules.nvidia_uvm)
		check_add(r, "node.kernel-modules", name, CHECK_PASS, NULL, "nvidia, nvidia_uvm loaded%s",
			  p.modules.nvidia_modeset ? ", nvidia_modeset loaded" : "; nvidia_modeset not loaded (optional)");
	else
		check_add(r, "node.kernel-modules", name, CHECK_FAIL, "modprobe nvidia nvidia_uvm (and make it persist across reboots)",
			  "not loaded: %s%s%s", p.modules.nvidia ? "" : "nvidia",
			  !p.modules.nvidia && !p.modules.nvidia_uvm ? ", " : "", p.modules.nvidia_uvm ? "" : "nvidia_uvm");
	/* toolkit */
	if (p.nvidia_runtime)
		check_add(r, "node.toolkit", name, CHECK_PASS, NULL, "nvidia-container-runtime %s%s%s", p.nvidia_runtime,
			  p.nvidia_ctk ? ", nvidia-ctk " : "", p.nvidia_ctk ? p.nvidia_ctk : "");
	else
		check_add(r, "node.toolkit", name, CHECK_FAIL, "install nvidia-container-toolkit on the node",
			  "nvidia-container-runtime is not installed");
	timed(r, from, mono_s() - t0);
	/* containerd and its nvidia runtime */
	if (!node_has_containerd(&p)) {
		check_add(r, "node.containerd", name, CHECK_FAIL, "install containerd (1.6 or later)", "containerd is not installed");
		check_add(r, "node.nvidia-runtime", name, CHECK_SKIP, NULL, "skipped: no containerd");
		probe_result_release(&p);
		return;
	}
	t0 = mono_s();
	from = r->n;
	struct containerd_state st;
	if (containerd_inspect(c, &p, &st, &err) < 0) {
		const char *m = err.msg ? err.msg : "failed";
		check_add(r, "node.containerd", name, CHECK_FAIL, NULL, "cannot inspect containerd: %.*s", (int)strcspn(m, "\n"), m);
		check_add(r, "node.nvidia-runtime", name, CHECK_SKIP, NULL, "skipped: containerd could not be inspected");
		gerr_clear(&err);
		probe_result_release(&p);
		return;
	}
	const char *ver = p.containerd_version ? p.containerd_version : st.server_version ? st.server_version : "?";
	if (!st.dump_ok)
		check_add(r, "node.containerd", name, CHECK_FAIL, "fix the configuration file; containerd will not start with it",
			  "containerd %s cannot read its configuration: %s", ver, st.dump_error ? st.dump_error : "error");
	else if (!st.running)
		check_add(r, "node.containerd", name, CHECK_FAIL, "start containerd (systemctl start containerd) and see its log",
			  "containerd %s (%s) is not running or does not answer on its socket", ver, cr_flavour_name(p.flavour));
	else
		check_add(r, "node.containerd", name, CHECK_PASS, NULL, "containerd %s (%s, config version %d) running", ver,
			  cr_flavour_name(p.flavour), p.containerd_config_version);
	if (!st.dump_ok)
		check_add(r, "node.nvidia-runtime", name, CHECK_SKIP, NULL, "skipped: containerd's configuration cannot be read");
	else if (!st.configured)
		check_add(r, "node.nvidia-runtime", name, CHECK_FAIL, "gpuctl deploy --only nodes adds it",
			  "containerd has no nvidia runtime");
	else if (!st.binary_ok)
		check_add(r, "node.nvidia-runtime", name, CHECK_FAIL, "install nvidia-container-toolkit or fix BinaryName",
			  "the nvidia runtime's BinaryName %s is not an executable on the node", st.binary ? st.binary : "(empty)");
	else if (st.cgroup_mismatch)
		check_add(r, "node.nvidia-runtime", name, CHECK_WARN,
			  "pods with the nvidia runtime will fail to start when the kubelet uses the systemd cgroup driver; set the same SystemdCgroup in both",
			  "%s", st.cgroup_mismatch);
	else
		check_add(r, "node.nvidia-runtime", name, CHECK_PASS, NULL, "nvidia runtime -> %s%s", st.binary,
			  st.is_default ? " (the default runtime)" : "");
	timed(r, from, mono_s() - t0);
	containerd_state_release(&st);
	probe_result_release(&p);
}
