/* nvidia-smi and /proc parsers against real output captured on an H100. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/node.h"
#include "gpuctl/nvsmi.h"

#define H100 FIXTURES "/nvidia-smi/h100-80gb-hbm3/"

static char *fixture_in(const char *dir, const char *name)
{
	struct buf b = BUF_INIT;
	struct gerr err = GERR_INIT;
	char *p = xasprintf("%s%s", dir, name);
	cr_assert_eq(buf_read_file(&b, p, 1 << 22, &err), 0, "%s", err.msg);
	free(p);
	return buf_detach(&b);
}

static char *fixture(const char *name)
{
	return fixture_in(H100, name);
}

Test(nvsmi, query_gpu_real_h100)
{
	char *t = fixture("query-gpu.csv");
	struct nvsmi_gpus g;
	struct gerr err = GERR_INIT;
	cr_assert_eq(nvsmi_parse_query_gpu(t, &g, &err), 0, "%s", err.msg);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(g.gpus[0].index, 0);
	cr_assert_str_eq(g.gpus[0].uuid, "GPU-f3c1c444-0b96-889d-5c44-d5150de13261");
	cr_assert_str_eq(g.gpus[0].name, "NVIDIA H100 80GB HBM3");
	cr_assert_str_eq(g.gpus[0].driver_version, "580.159.04");
	cr_assert_eq(g.gpus[0].memory_total_mib, 81559);
	cr_assert_eq(g.gpus[0].memory_used_mib, 0);
	cr_assert_eq(g.gpus[0].memory_free_mib, 81079);
	cr_assert_str_eq(g.gpus[0].mig_mode, "Disabled");
	cr_assert_str_eq(g.gpus[0].compute_mode, "Default");
	cr_assert_str_eq(g.gpus[0].pci_bus_id, "00000000:00:06.0");
	nvsmi_gpus_release(&g);
	free(t);
}

Test(nvsmi, query_gpu_several_gpus_and_na_values)
{
	const char *csv = "index, uuid, name, memory.total [MiB], mig.mode.current\n"
			  "0, GPU-a, NVIDIA A100-SXM4-80GB, 81920 MiB, Enabled\n"
			  "1, GPU-b, NVIDIA A100-SXM4-80GB, [N/A], [N/A]\n";
	struct nvsmi_gpus g;
	struct gerr err = GERR_INIT;
	cr_assert_eq(nvsmi_parse_query_gpu(csv, &g, &err), 0, "%s", err.msg);
	cr_assert_eq(g.n, 2);
	cr_assert_eq(g.gpus[1].index, 1);
	cr_assert_eq(g.gpus[1].memory_total_mib, -1);
	cr_assert_eq(g.gpus[0].memory_used_mib, -1, "column not queried");
	cr_assert_null(g.gpus[0].driver_version);
	nvsmi_gpus_release(&g);
}

Test(nvsmi, query_gpu_failures_quote_nvidia_smi)
{
	static const char *const bad[][2] = {
		{ "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
		  "nvidia-smi failed: NVIDIA-SMI has failed because" },
		{ "No devices were found\n", "No devices were found" },
		{ "garbage\n", "no index/uuid/name header" },
		{ "index, uuid, name\n0, GPU-a\n", "line 2 has 2 fields, expected 3" },
		{ "index, uuid, name\nx, GPU-a, H100\n", "index \"x\" is not a number" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nvsmi_gpus g;
		struct gerr err = GERR_INIT;
		cr_expect_eq(nvsmi_parse_query_gpu(bad[i][0], &g, &err), -1, "case %zu", i);
		cr_expect(err.msg && strstr(err.msg, bad[i][1]), "case %zu: %s", i, err.msg);
		gerr_clear(&err);
	}
}

Test(nvsmi, banner_driver_and_cuda)
{
	char *t = fixture("nvidia-smi.txt");
	char *d, *c;
	struct gerr err = GERR_INIT;
	cr_assert_eq(nvsmi_parse_banner(t, &d, &c, &err), 0, "%s", err.msg);
	cr_assert_str_eq(d, "580.159.04");
	cr_assert_str_eq(c, "13.0");
	free(d);
	free(c);
	free(t);
	cr_assert_eq(nvsmi_parse_banner("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", &d, &c, &err), -1);
	cr_assert(strstr(err.msg, "nvidia-smi failed"), "%s", err.msg);
	gerr_clear(&err);
}

Test(nvsmi, proc_version)
{
	char *t = fixture("proc-version.txt");
	char *d;
	struct gerr err = GERR_INIT;
	cr_assert_eq(nvsmi_parse_proc_version(t, &d, &err), 0, "%s", err.msg);
	cr_assert_str_eq(d, "580.159.04");
	free(d);
	free(t);
	cr_assert_eq(nvsmi_parse_proc_version("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.256.02  Thu May  2 14:37:44 UTC 2024\n", &d, &err), 0);
	cr_assert_str_eq(d, "470.256.02");
	free(d);
	cr_assert_eq(nvsmi_parse_proc_version("nothing here", &d, &err), -1);
	gerr_clear(&err);
}

Test(nvsmi, proc_modules_headless_h100)
{
	char *t = fixture("proc-modules-nvidia.txt");
	struct nv_modules m;
	proc_modules_parse(t, &m);
	cr_assert(m.nvidia);
	cr_assert(m.nvidia_uvm);
	cr_assert(!m.nvidia_modeset, "the captured host is headless: no nvidia_modeset");
	free(t);
	proc_modules_parse("ext4 1 0 - Live 0x0\nnvidia_modeset 1 0 - Live 0x0\nnvidia_drm 2 0 - Live\n", &m);
	cr_assert(!m.nvidia && m.nvidia_modeset && m.nvidia_drm);
	/* lsmod's format, where /proc/modules is absent */
	proc_modules_parse("Module                  Size  Used by\nnvidia_uvm           1830912  0\nnvidia              14299136  1 nvidia_uvm\n", &m);
	cr_assert(m.nvidia && m.nvidia_uvm && !m.nvidia_modeset);
}

Test(nvsmi, version_compare)
{
	cr_assert_gt(version_cmp("580.159.04", "470"), 0);
	cr_assert_lt(version_cmp("450.80.02", "470"), 0);
	cr_assert_eq(version_cmp("470", "470.0.0"), 0);
	cr_assert_gt(version_cmp("470.1", "470"), 0);
	cr_assert_eq(version_cmp("535.104.12", "535.104.12"), 0);
	cr_assert_eq(version_cmp("abc", "470"), -2);
	cr_assert_eq(version_cmp("470-beta", "470"), -2);
}

/* The same parsers against a real H200 (captured by tests/gpu/run). */
#define H200 FIXTURES "/nvidia-smi/h200/"

static char *fixture200(const char *name)
{
	return fixture_in(H200, name);
}

Test(nvsmi, real_h200)
{
	char *t = fixture200("query-gpu.csv");
	struct nvsmi_gpus g;
	struct gerr err = GERR_INIT;
	cr_assert_eq(nvsmi_parse_query_gpu(t, &g, &err), 0, "%s", err.msg);
	cr_assert_eq(g.n, 1);
	cr_assert_str_eq(g.gpus[0].uuid, "GPU-4748bf60-93b0-d516-98d4-e5c362b48227");
	cr_assert_str_eq(g.gpus[0].name, "NVIDIA H200");
	cr_assert_eq(g.gpus[0].memory_total_mib, 143771);
	cr_assert_eq(g.gpus[0].memory_free_mib, 143156);
	cr_assert_str_eq(g.gpus[0].mig_mode, "Disabled");
	nvsmi_gpus_release(&g);
	free(t);
	t = fixture200("nvidia-smi.txt");
	char *d = NULL, *cu = NULL;
	cr_assert_eq(nvsmi_parse_banner(t, &d, &cu, &err), 0, "%s", err.msg);
	cr_assert_str_eq(d, "580.159.04");
	cr_assert_str_eq(cu, "13.0");
	free(d);
	free(cu);
	free(t);
	t = fixture200("proc-version.txt");
	cr_assert_eq(nvsmi_parse_proc_version(t, &d, &err), 0, "%s", err.msg);
	cr_assert_str_eq(d, "580.159.04");
	free(d);
	free(t);
	t = fixture200("proc-modules-nvidia.txt");
	struct nv_modules m;
	proc_modules_parse(t, &m);
	cr_assert(m.nvidia && m.nvidia_uvm && !m.nvidia_modeset);
	free(t);
}

static char *fixture_text(const char *rel)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/nvidia-smi/%s", FIXTURES, rel);
	struct buf b = BUF_INIT;
	struct gerr err = GERR_INIT;
	cr_assert_eq(buf_read_file(&b, path, 1 << 20, &err), 0, "%s", err.msg);
	return buf_detach(&b);
}

Test(nvsmi, newer_banner_says_kmd_and_cuda_umd)
{
	char *t = fixture_text("failures/kmd-umd-banner.txt");
	char *d = NULL, *c = NULL;
	struct gerr err = GERR_INIT;
	cr_assert_eq(nvsmi_parse_banner(t, &d, &c, &err), 0, "%s", err.msg);
	cr_assert_str_eq(d, "590.10");
	cr_assert_str_eq(c, "13.1");
	free(d);
	free(c);
	free(t);
}

/* A probe's output: nvidia-smi fails with a version mismatch while the kernel
 * module (/proc/driver/nvidia/version) still answers with its version. */
Test(nvsmi, version_mismatch_is_a_broken_driver_even_with_a_kernel_version)
{
	char *smi = fixture_text("failures/version-mismatch.txt");
	char *pv = fixture_text("h100-80gb-hbm3/proc-version.txt");
	char *mods = fixture_text("h100-80gb-hbm3/proc-modules-nvidia.txt");
	struct buf out = BUF_INIT;
	buf_addf(&out, "\n@@gpuctl:query\n%s\n@@rc:18\n\n@@gpuctl:banner\n%s\n@@gpuctl:procversion\n%s\n"
		       "@@gpuctl:modules\n%s\n@@gpuctl:end\n", smi, smi, pv, mods);
	struct probe_result r;
	probe_parse(out.s, "470", &r);
	cr_assert_not_null(r.driver_version, "the kernel module's version is still read");
	cr_assert_not(r.driver_ok, "a driver whose nvidia-smi fails is not ready: deploy must change nothing");
	cr_assert(r.smi_error && strstr(r.smi_error, "Driver/library version mismatch") &&
		  strstr(r.smi_error, "NVML library version: 580.95"), "%s", r.smi_error);
	struct gerr why = GERR_INIT;
	cr_assert_not(node_ready_for_runtime(&r, &why));
	gerr_clear(&why);
	probe_result_release(&r);
	buf_release(&out);
	free(smi);
	free(pv);
	free(mods);
}
