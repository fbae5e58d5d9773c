/* gpuctl-gpuload (src/load/gpuload.c) against the libcuda.so.1 stand-in
 * (tests/rig/cuda/libcuda.c), and the copy gpuctl carries (gpuctl/gpuload.h).
 * Plain processes: no namespaces, no ports. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gpuctl/buf.h"
#include "gpuctl/gpuload.h"
#include "gpuctl/spawn.h"

#define UUID0 "GPU-a69e6066-5b30-bdda-4779-11204e05cebb"
#define UUID1 "GPU-e10b142c-3c05-c2ac-a1ff-5a78c7fbeabf"

static char dir[64];
static char facts[128], locks[128], logpath[128], nolib[128];

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/* The replayed GPU facts of a 2 x H200 node, as tests/rig/lib/gen-nvidia.py writes them. */
static void setup(void)
{
	char p[256];

	snprintf(dir, sizeof(dir), "/tmp/gpuctl-test-gpuload.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(facts, sizeof(facts), "%s/facts", dir);
	snprintf(locks, sizeof(locks), "%s/locks", dir);
	snprintf(logpath, sizeof(logpath), "%s/cuda.log", dir);
	snprintf(nolib, sizeof(nolib), "%s/nolib", dir);
	cr_assert_eq(mkdir(facts, 0755), 0);
	cr_assert_eq(mkdir(nolib, 0755), 0);
	snprintf(p, sizeof(p), "%s/mode", facts);
	put(p, "ok\n");
	snprintf(p, sizeof(p), "%s/gpus.tsv", facts);
	put(p, "0\t" UUID0 "\t00000000:18:00.0\n1\t" UUID1 "\t00000000:2A:00.0\n");
	snprintf(p, sizeof(p), "%s/query-gpu.tsv", facts);
	put(p, "name\tgpu_name\t-\tNVIDIA H200\tNVIDIA H200\n"
	       "uuid\tgpu_uuid\t-\t" UUID0 "\t" UUID1 "\n");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void teardown(void)
{
	if (dir[0])
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(gpuload, .init = setup, .fini = teardown, .timeout = 60);

struct load {
	const char *args[8];	/* after the program name */
	const char *visible;	/* NVIDIA_VISIBLE_DEVICES, or NULL: unset */
	const char *libdir;	/* LD_LIBRARY_PATH; NULL: the stand-in's folder */
	int status;
	struct buf out;
	cJSON *json;
};

/* Runs gpuctl-gpuload; its stdout must be one JSON line. */
static void run_load(struct load *l)
{
	const char *argv[10] = { GPULOAD_EXE };
	char e_lib[256], e_facts[256], e_dir[256], e_log[256], e_vis[256];
	const char *env[6] = { e_lib, e_facts, e_dir, e_log, 0, 0 };
	static const char *const env_remove[] = { "NVIDIA_VISIBLE_DEVICES", "NVIDIA_SMI_REPLAY_DIR", "GPUCTL_NVML_*",
						  "GPUCTL_CUDA_STANDIN_*", "LD_PRELOAD", 0 };
	struct buf err;
	struct gerr ge = { 0 };

	for (int i = 0; i < 8 && l->args[i]; i++)
		argv[i + 1] = l->args[i];
	snprintf(e_lib, sizeof(e_lib), "LD_LIBRARY_PATH=%s", l->libdir ? l->libdir : CUDA_STANDIN_DIR);
	snprintf(e_facts, sizeof(e_facts), "GPUCTL_NVML_DATA=%s", facts);
	snprintf(e_dir, sizeof(e_dir), "GPUCTL_CUDA_STANDIN_DIR=%s", locks);
	snprintf(e_log, sizeof(e_log), "GPUCTL_CUDA_STANDIN_LOG=%s", logpath);
	if (l->visible) {
		snprintf(e_vis, sizeof(e_vis), "NVIDIA_VISIBLE_DEVICES=%s", l->visible);
		env[4] = e_vis;
	}
	struct spawn_opts o = { .argv = argv, .env_extra = env, .env_remove = env_remove, .timeout_ms = 30000,
				.max_output = 1 << 16 };
	buf_init(&l->out);
	buf_init(&err);
	cr_assert_eq(spawn_run(&o, &l->out, &err, &l->status, &ge), 0, "spawn: %s", ge.msg);
	const char *nl = strchr(l->out.s, '\n');
	cr_assert(nl && nl[1] == 0, "not one line on stdout: [%s] (stderr: %s)", l->out.s, err.s);
	l->json = cJSON_Parse(l->out.s);
	cr_assert_not_null(l->json, "not JSON: %s", l->out.s);
	cr_assert_eq(cJSON_GetObjectItem(l->json, "gpuload")->valuedouble, 1);
	buf_release(&err);
}

static void load_free(struct load *l)
{
	cJSON_Delete(l->json);
	buf_release(&l->out);
}

static double num(const struct load *l, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(l->json, key);
	cr_assert(cJSON_IsNumber(v), "no number %s in %s", key, l->out.s);
	return v->valuedouble;
}

static const char *str(const struct load *l, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(l->json, key);
	cr_assert(cJSON_IsString(v), "no string %s in %s", key, l->out.s);
	return v->valuestring;
}

Test(gpuload, one_process_reports_launches_and_the_gpu)
{
	struct load l = { .args = { "--seconds", "0.5" } };
	run_load(&l);
	cr_assert_eq(l.status, 0, "%s", l.out.s);
	cr_assert_str_eq(str(&l, "device"), "NVIDIA H200");
	cr_assert_str_eq(str(&l, "uuid"), UUID0);
	cr_assert_gt(num(&l, "launches"), 50, "%s", l.out.s);	/* 2 ms a launch: about 250 */
	cr_assert(num(&l, "seconds") >= 0.5 && num(&l, "seconds") < 2, "%s", l.out.s);
	/* 1024 x 256 threads x 16384 trips x 16 FMA x 2 flops */
	cr_assert_eq(num(&l, "flops"), num(&l, "launches") * 1024.0 * 256 * 16384 * 16 * 2);
	cr_assert_gt(num(&l, "gflops"), 0);
	cr_assert_null(cJSON_GetObjectItem(l.json, "error"));
	load_free(&l);

	/* the calls made, in the stand-in's log */
	struct buf log;
	struct gerr ge = { 0 };
	buf_init(&log);
	cr_assert_eq(buf_read_file(&log, logpath, 1 << 20, &ge), 0);
	static const char *const calls[] = { "cuInit", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName",
					     "cuDeviceGetUuid_v2", "cuCtxCreate_v2", "cuModuleLoadData",
					     "cuModuleGetFunction", "cuMemAlloc_v2", "cuLaunchKernel",
					     "cuCtxSynchronize", "cuMemFree_v2", "cuCtxDestroy_v2" };
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		char want[64];
		snprintf(want, sizeof(want), "call %s\n", calls[i]);
		cr_assert(strstr(log.s, want), "%s not called:\n%s", calls[i], log.s);
	}
	buf_release(&log);
}

Test(gpuload, iterations_launches_exactly_k_times)
{
	struct load l = { .args = { "--iterations", "7" } };
	run_load(&l);
	cr_assert_eq(l.status, 0, "%s", l.out.s);
	cr_assert_eq(num(&l, "launches"), 7);
	load_free(&l);
}

struct job {
	struct load l;
	pthread_t t;
};

static void *job_run(void *p)
{
	run_load(&((struct job *)p)->l);
	return 0;
}

Test(gpuload, four_processes_share_a_gpu_fairly)
{
	struct load solo = { .args = { "--seconds", "1" } };
	run_load(&solo);
	cr_assert_eq(solo.status, 0, "%s", solo.out.s);
	double alone = num(&solo, "launches");

	struct timespec now;
	char at[64];
	clock_gettime(CLOCK_REALTIME, &now);
	/* 1 s ahead: all four have started by then, even on a busy machine */
	snprintf(at, sizeof(at), "%.3f", (double)now.tv_sec + now.tv_nsec / 1e9 + 1.0);
	struct job jobs[4];
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct job){ .l = { .args = { "--seconds", "1", "--start-at", at } } };
		cr_assert_eq(pthread_create(&jobs[i].t, 0, job_run, &jobs[i]), 0);
	}
	double min = 1e18, max = 0, sum = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(jobs[i].t, 0);
		cr_assert_eq(jobs[i].l.status, 0, "%s", jobs[i].l.out.s);
		cr_assert_str_eq(str(&jobs[i].l, "uuid"), UUID0);
		double n = num(&jobs[i].l, "launches");
		min = n < min ? n : min;
		max = n > max ? n : max;
		sum += n;
		/* each about a quarter of the solo run */
		cr_assert(n > alone / 10 && n < alone * 0.6, "%.0f launches beside 3 others, %.0f alone", n, alone);
		load_free(&jobs[i].l);
	}
	cr_assert_geq(min / max, 0.5, "fairness %.0f/%.0f", min, max);
	cr_assert(sum > alone * 0.6 && sum < alone * 1.4, "aggregate %.0f, %.0f alone", sum, alone);
	load_free(&solo);
}

Test(gpuload, visible_devices_picks_the_gpu)
{
	static const struct {
		const char *visible, *uuid;
	} cases[] = { { "1", UUID1 }, { UUID1, UUID1 }, { "0", UUID0 }, { "all", UUID0 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct load l = { .args = { "--iterations", "1" }, .visible = cases[i].visible };
		run_load(&l);
		cr_assert_eq(l.status, 0, "%s", l.out.s);
		cr_assert_str_eq(str(&l, "uuid"), cases[i].uuid, "NVIDIA_VISIBLE_DEVICES=%s", cases[i].visible);
		load_free(&l);
	}
	struct load none = { .args = { "--iterations", "1" }, .visible = "none" };
	run_load(&none);
	cr_assert_eq(none.status, 1);
	cr_assert_str_eq(str(&none, "error"), "cuInit: no CUDA-capable device is detected (code 100)");
	load_free(&none);

	struct load dev = { .args = { "--iterations", "1", "--device", "1" }, .visible = "0" };
	run_load(&dev);
	cr_assert_eq(dev.status, 1);
	cr_assert_str_eq(str(&dev, "error"), "--device 1: only 1 CUDA device(s) visible");
	load_free(&dev);
}

Test(gpuload, missing_libcuda_names_the_nvidia_runtime)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (h) {
		dlclose(h);
		cr_skip_test("this machine has a libcuda.so.1 of its own");
	}
	struct load l = { .args = { "--iterations", "1" }, .libdir = nolib };
	run_load(&l);
	cr_assert_eq(l.status, 1);
	cr_assert_str_eq(str(&l, "error"), "libcuda.so.1 not found: the pod needs the NVIDIA runtime "
					   "(runtimeClassName nvidia, NVIDIA_DRIVER_CAPABILITIES=compute)");
	load_free(&l);
}

Test(gpuload, unknown_kernel_is_cuda_error_not_found)
{
	struct load l = { .args = { "--iterations", "1", "--kernel", "gpuload" } };
	run_load(&l);
	cr_assert_eq(l.status, 1);
	cr_assert_str_eq(str(&l, "error"), "cuModuleGetFunction: named symbol not found (code 500)");
	load_free(&l);
}

Test(gpuload, bad_arguments_exit_2_with_a_json_error)
{
	static const char *const bad[][4] = {
		{ "--seconds", "abc" }, { "--seconds", "0" }, { "--seconds", "nan" }, { "--seconds", "0x10" },
		{ "--iterations", "0" }, { "--iterations", "-3" }, { "--iterations", "12x" }, { "--iterations", "" },
		{ "--start-at", "soon" }, { "--device", "-1" }, { "--bogus" }, { "extra" }, { "--seconds" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct load l = { .args = { bad[i][0], bad[i][1] } };
		run_load(&l);
		cr_assert_eq(l.status, 2, "%s %s: %s", bad[i][0], bad[i][1] ? bad[i][1] : "", l.out.s);
		cr_assert_not_null(cJSON_GetObjectItem(l.json, "error"));
		load_free(&l);
	}
}

typedef int (*fn_i)(int);
typedef int (*fn_pi)(int *);
typedef int (*fn_ctx)(void **, unsigned int, int);
typedef int (*fn_mod)(void **, const void *);
typedef int (*fn_fn)(void **, void *, const char *);
typedef int (*fn_p)(void *);

/* The stand-in itself: only gpuload's entry points, real error codes. */
Test(gpuload, standin_checks_ptx_and_exports_nothing_else)
{
	setenv("GPUCTL_NVML_DATA", facts, 1);
	unsetenv("NVIDIA_VISIBLE_DEVICES");
	void *h = dlopen(CUDA_STANDIN_DIR "/libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	cr_assert_not_null(h, "%s", dlerror());
	cr_assert_null(dlsym(h, "cuMemcpyHtoD_v2"));
	cr_assert_null(dlsym(h, "cuCtxCreate"), "the unversioned name is not what the driver exports");
	fn_i init = (fn_i)dlsym(h, "cuInit");
	fn_pi count = (fn_pi)dlsym(h, "cuDeviceGetCount");
	fn_ctx create = (fn_ctx)dlsym(h, "cuCtxCreate_v2");
	fn_mod load = (fn_mod)dlsym(h, "cuModuleLoadData");
	fn_fn get = (fn_fn)dlsym(h, "cuModuleGetFunction");
	cr_assert(init && count && create && load && get);
	int n = -1;
	cr_assert_eq(count(&n), 3, "CUDA_ERROR_NOT_INITIALIZED before cuInit");
	cr_assert_eq(init(0), 0);
	cr_assert_eq(count(&n), 0);
	cr_assert_eq(n, 2);
	void *ctx = 0, *mod = 0, *fn = 0;
	cr_assert_eq(create(&ctx, 0, 0), 0);
	cr_assert_eq(load(&mod, "\x7f" "ELF not PTX"), 218, "CUDA_ERROR_INVALID_PTX");
	cr_assert_eq(load(&mod, "// c\n.version 7.0\n.target sm_70\n.visible .entry k1(\n.param .u64 p)\n{ ret; }\n"), 0);
	cr_assert_eq(get(&fn, mod, "k1"), 0);
	cr_assert_eq(get(&fn, mod, "k"), 500, "CUDA_ERROR_NOT_FOUND");
	cr_assert_eq(get(&fn, mod, "k12"), 500);
	fn_p destroy = (fn_p)dlsym(h, "cuCtxDestroy_v2");
	cr_assert_not_null(destroy);
	cr_assert_eq(destroy(ctx), 0);
	cr_assert_eq(get(&fn, mod, "k1"), 400, "CUDA_ERROR_INVALID_HANDLE: the module died with its context");
	dlclose(h);
}

Test(gpuload, embedded_binary_is_the_built_one_and_small)
{
	size_t len = 0;
	const unsigned char *bin = gpuload_binary(&len);
	struct buf file;
	struct gerr ge = { 0 };

	buf_init(&file);
	cr_assert_eq(buf_read_file(&file, GPULOAD_EXE, 1 << 24, &ge), 0, "%s", ge.msg);
	cr_assert_eq(len, file.len);
	cr_assert(memcmp(bin, file.s, len) == 0, "gpuload_binary() differs from %s", GPULOAD_EXE);
	cr_assert(len > 4 && memcmp(bin, "\x7f" "ELF", 4) == 0);
	/* a ConfigMap holds at most 1 MiB */
	cr_assert_lt(len, 100 * 1024, "gpuctl-gpuload is %zu bytes", len);
	buf_release(&file);
}
