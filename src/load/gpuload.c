/*
 * gpuctl-gpuload: the compute load of `gpuctl smoke-test --measure`.
 *
 * Runs in a pod on a shared GPU: loads the CUDA driver (libcuda.so.1, mounted
 * by the NVIDIA container runtime) with dlopen, JIT-compiles a hand-written
 * PTX kernel of FP32 FMAs, launches it on a grid that fills a GPU again and
 * again for --seconds (or --iterations launches), and prints one JSON line:
 *
 *   {"gpuload":1,"device":"NVIDIA H200","uuid":"GPU-...","launches":L,"seconds":T,"flops":F,"gflops":G}
 *
 * or, on any failure, {"gpuload":1,"error":"..."} and exit 1 (2 for a usage
 * error). Plain C17 and libdl only: no CUDA toolkit at build or run time, so
 * the binary gpuctl embeds runs in any glibc image. Nothing but that JSON
 * line goes to stdout (pod logs mix stdout and stderr; gpuctl parses them).
 */
/* POSIX only, not the project's _GNU_SOURCE: on glibc 2.38+ that binds strtoull
 * to __isoc23_strtoull@GLIBC_2.38, and the binary would not start in images
 * with an older glibc (built on glibc 2.36 it needs GLIBC_2.34: Ubuntu 22.04+). */
#undef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The driver API's types, as cuda.h declares them (64-bit). */
typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct {
	char bytes[16];
} CUuuid;

#define CUDA_SUCCESS 0

#define GRID_BLOCKS 1024u	/* 1024 x 256 threads: more than a full wave on an H200 (132 SMs x 2048) */
#define BLOCK_THREADS 256u
#define LOOP_ITERS 16384u	/* loop trips per thread: about 2 ms per launch on an H100/H200 */
#define FMA_PER_ITER 16u	/* fma.rn.f32 per trip in the PTX below */
#define KERNEL "gpuload_fma"

/*
 * out[i] = the sum of 4 independent FMA chains (x = x * a + b), each run
 * LOOP_ITERS x 4 times; a < 1 keeps the values finite. The store keeps ptxas
 * from dropping the work. PTX ISA 7.0 / sm_70: any Volta or later driver
 * JIT-compiles it for its GPU.
 */
#define FMA4                                   \
	"\tfma.rn.f32 %f1, %f1, %f5, %f6;\n"   \
	"\tfma.rn.f32 %f2, %f2, %f5, %f6;\n"   \
	"\tfma.rn.f32 %f3, %f3, %f5, %f6;\n"   \
	"\tfma.rn.f32 %f4, %f4, %f5, %f6;\n"
static const char ptx[] =
	".version 7.0\n"
	".target sm_70\n"
	".address_size 64\n"
	"\n"
	".visible .entry " KERNEL "(\n"
	"\t.param .u64 out,\n"
	"\t.param .u32 iters\n"
	")\n"
	"{\n"
	"\t.reg .pred %p<2>;\n"
	"\t.reg .b32 %r<6>;\n"
	"\t.reg .f32 %f<7>;\n"
	"\t.reg .b64 %rd<4>;\n"
	"\n"
	"\tld.param.u64 %rd1, [out];\n"
	"\tld.param.u32 %r1, [iters];\n"
	"\tmov.u32 %r2, %ctaid.x;\n"
	"\tmov.u32 %r3, %ntid.x;\n"
	"\tmov.u32 %r4, %tid.x;\n"
	"\tmad.lo.s32 %r5, %r2, %r3, %r4;\n"
	"\tcvt.rn.f32.u32 %f1, %r5;\n"
	"\tmul.f32 %f1, %f1, 0f33800000;\n"	/* x 2^-24 */
	"\tadd.f32 %f2, %f1, 0f3F800000;\n"	/* + 1 */
	"\tadd.f32 %f3, %f1, 0f40000000;\n"	/* + 2 */
	"\tadd.f32 %f4, %f1, 0f40400000;\n"	/* + 3 */
	"\tmov.f32 %f5, 0f3F7FFFEF;\n"		/* a = 0.999999 */
	"\tmov.f32 %f6, 0f358637BD;\n"		/* b = 1e-6 */
	"\tsetp.eq.u32 %p1, %r1, 0;\n"
	"\t@%p1 bra DONE;\n"
	"LOOP:\n"
	FMA4 FMA4 FMA4 FMA4
	"\tsub.u32 %r1, %r1, 1;\n"
	"\tsetp.ne.u32 %p1, %r1, 0;\n"
	"\t@%p1 bra LOOP;\n"
	"DONE:\n"
	"\tadd.f32 %f1, %f1, %f2;\n"
	"\tadd.f32 %f3, %f3, %f4;\n"
	"\tadd.f32 %f1, %f1, %f3;\n"
	"\tcvta.to.global.u64 %rd2, %rd1;\n"
	"\tmul.wide.u32 %rd3, %r5, 4;\n"
	"\tadd.s64 %rd2, %rd2, %rd3;\n"
	"\tst.global.f32 [%rd2], %f1;\n"
	"\tret;\n"
	"}\n";

/* The entry points, resolved by the names the driver exports (cuda.h maps the
 * unversioned API names to these _v2 symbols). */
static struct cu_api {
	CUresult (*Init)(unsigned int flags);
	CUresult (*DeviceGetCount)(int *count);
	CUresult (*DeviceGet)(CUdevice *dev, int ordinal);
	CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);
	CUresult (*DeviceGetUuid)(CUuuid *uuid, CUdevice dev);
	CUresult (*CtxCreate)(CUcontext *ctx, unsigned int flags, CUdevice dev);
	CUresult (*CtxDestroy)(CUcontext ctx);
	CUresult (*ModuleLoadData)(CUmodule *mod, const void *image);
	CUresult (*ModuleGetFunction)(CUfunction *fn, CUmodule mod, const char *name);
	CUresult (*MemAlloc)(CUdeviceptr *dptr, size_t bytes);
	CUresult (*MemFree)(CUdeviceptr dptr);
	CUresult (*LaunchKernel)(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
				 unsigned int by, unsigned int bz, unsigned int shared_bytes, CUstream stream,
				 void **params, void **extra);
	CUresult (*CtxSynchronize)(void);
	CUresult (*GetErrorString)(CUresult err, const char **str);
} cu;

/* symbol, fallback symbol (older drivers), where it goes */
static const struct sym {
	const char *name, *alt;
	size_t off;
} syms[] = {
#define S(field, name, alt) { name, alt, offsetof(struct cu_api, field) }
	S(Init, "cuInit", 0),
	S(DeviceGetCount, "cuDeviceGetCount", 0),
	S(DeviceGet, "cuDeviceGet", 0),
	S(DeviceGetName, "cuDeviceGetName", 0),
	S(DeviceGetUuid, "cuDeviceGetUuid_v2", "cuDeviceGetUuid"),
	S(CtxCreate, "cuCtxCreate_v2", 0),
	S(CtxDestroy, "cuCtxDestroy_v2", 0),
	S(ModuleLoadData, "cuModuleLoadData", 0),
	S(ModuleGetFunction, "cuModuleGetFunction", 0),
	S(MemAlloc, "cuMemAlloc_v2", 0),
	S(MemFree, "cuMemFree_v2", 0),
	S(LaunchKernel, "cuLaunchKernel", 0),
	S(CtxSynchronize, "cuCtxSynchronize", 0),
	S(GetErrorString, "cuGetErrorString", 0),
#undef S
};

static const char libcuda_missing[] =
	"libcuda.so.1 not found: the pod needs the NVIDIA runtime (runtimeClassName nvidia, "
	"NVIDIA_DRIVER_CAPABILITIES=compute)";

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* Prints {"gpuload":1,"error":MSG} and returns CODE (the exit status). */
static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fputs("{\"gpuload\":1,\"error\":", stdout);
	json_str(stdout, msg);
	fputs("}\n", stdout);
	fflush(stdout);
	return code;
}

static int cu_fail(const char *fn, CUresult rc)
{
	const char *text = 0;

	if (!cu.GetErrorString || cu.GetErrorString(rc, &text) != CUDA_SUCCESS || !text)
		text = "unknown error";
	return fail(1, "%s: %s (code %d)", fn, text, rc);
}

#define CU(call, fn)                       \
	do {                               \
		CUresult rc_ = (call);     \
		if (rc_ != CUDA_SUCCESS)   \
			return cu_fail(fn, rc_); \
	} while (0)

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps until the wall clock reads AT (seconds since the epoch); at once if past. */
static void sleep_until(double at)
{
	for (;;) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		double left = at - ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
		if (left <= 0)
			return;
		time_t whole = (time_t)left;
		struct timespec d = { whole, (long)((left - (double)whole) * 1e9) };
		if (nanosleep(&d, 0) == 0)
			return;
	}
}

/* A whole decimal number in [min, max]; -1 if S is anything else. */
static int parse_ull(const char *s, unsigned long long min, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A finite decimal number in [min, max] ("2.5", "1700000000.25"); -1 otherwise. */
static int parse_double(const char *s, double min, double max, double *out)
{
	char *end;

	if (!*s || *s == ' ' || *s == '+')
		return -1;
	for (const char *p = s; *p; p++)	/* no hex, inf or nan */
		if (!strchr("0123456789.-eE", *p))
			return -1;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: gpuctl-gpuload [--seconds S | --iterations K] [--start-at UNIXTIME] [--device N]\n"
	      "\n"
	      "Runs an FP32 FMA kernel on the GPU through libcuda.so.1 and prints one JSON line.\n"
	      "  --seconds S         launch for S seconds (default 10; decimals allowed)\n"
	      "  --iterations K      launch exactly K times instead\n"
	      "  --start-at T        wait until the wall clock reads T (seconds since the epoch)\n"
	      "  --device N          CUDA device ordinal (default 0)\n"
	      "  --kernel NAME       function to launch (default " KERNEL "; for tests)\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, 0, 's' },
		{ "iterations", required_argument, 0, 'i' },
		{ "start-at", required_argument, 0, 'a' },
		{ "device", required_argument, 0, 'd' },
		{ "kernel", required_argument, 0, 'k' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	double seconds = 10, start_at = 0;
	unsigned long long iterations = 0, device = 0;
	const char *kernel = KERNEL;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, 0)) != -1) {
		switch (c) {
		case 's':
			if (parse_double(optarg, 0.001, 86400, &seconds))
				return fail(2, "--seconds: \"%s\" is not a number of seconds in [0.001, 86400]", optarg);
			break;
		case 'i':
			if (parse_ull(optarg, 1, 1000000000ULL, &iterations))
				return fail(2, "--iterations: \"%s\" is not a whole number in [1, 1000000000]", optarg);
			break;
		case 'a':
			if (parse_double(optarg, 0, 1e11, &start_at))
				return fail(2, "--start-at: \"%s\" is not a time in seconds since the epoch", optarg);
			break;
		case 'd':
			if (parse_ull(optarg, 0, 1023, &device))
				return fail(2, "--device: \"%s\" is not a device ordinal in [0, 1023]", optarg);
			break;
		case 'k':
			kernel = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return fail(2, "unknown option or missing value: %s", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		usage(stderr);
		return fail(2, "unexpected argument: %s", argv[optind]);
	}

	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return fail(1, "%s", libcuda_missing);
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *p = dlsym(lib, syms[i].name);
		if (!p && syms[i].alt)
			p = dlsym(lib, syms[i].alt);
		if (!p)
			return fail(1, "libcuda.so.1 has no %s: the driver is too old or not NVIDIA's", syms[i].name);
		memcpy((char *)&cu + syms[i].off, &p, sizeof(p));
	}

	int count = 0;
	CUdevice dev;
	char name[256] = "";
	CUuuid id;
	CUcontext ctx;
	CUmodule mod;
	CUfunction fn;
	CUdeviceptr out;

	CU(cu.Init(0), "cuInit");
	CU(cu.DeviceGetCount(&count), "cuDeviceGetCount");
	if (count <= 0)
		return fail(1, "cuDeviceGetCount: no CUDA device is visible (check NVIDIA_VISIBLE_DEVICES)");
	if (device >= (unsigned long long)count)
		return fail(1, "--device %llu: only %d CUDA device(s) visible", device, count);
	CU(cu.DeviceGet(&dev, (int)device), "cuDeviceGet");
	CU(cu.DeviceGetName(name, (int)sizeof(name) - 1, dev), "cuDeviceGetName");
	CU(cu.DeviceGetUuid(&id, dev), "cuDeviceGetUuid");
	CU(cu.CtxCreate(&ctx, 0, dev), "cuCtxCreate_v2");
	CU(cu.ModuleLoadData(&mod, ptx), "cuModuleLoadData");
	CU(cu.ModuleGetFunction(&fn, mod, kernel), "cuModuleGetFunction");
	CU(cu.MemAlloc(&out, (size_t)GRID_BLOCKS * BLOCK_THREADS * sizeof(float)), "cuMemAlloc_v2");

	unsigned int iters = LOOP_ITERS;
	void *params[] = { &out, &iters };
	unsigned long long launches = 0;

	if (start_at > 0)
		sleep_until(start_at);
	double t0 = now_mono(), t = t0;
	while (iterations ? launches < iterations : t - t0 < seconds) {
		CU(cu.LaunchKernel(fn, GRID_BLOCKS, 1, 1, BLOCK_THREADS, 1, 1, 0, 0, params, 0), "cuLaunchKernel");
		CU(cu.CtxSynchronize(), "cuCtxSynchronize");
		launches++;
		t = now_mono();
	}
	double elapsed = t - t0;

	CU(cu.MemFree(out), "cuMemFree_v2");
	CU(cu.CtxDestroy(ctx), "cuCtxDestroy_v2");

	const unsigned char *u = (const unsigned char *)id.bytes;
	char uuid[64];
	snprintf(uuid, sizeof(uuid),
		 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
		 u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	double flops = (double)launches * GRID_BLOCKS * BLOCK_THREADS * LOOP_ITERS * FMA_PER_ITER * 2.0;

	name[sizeof(name) - 1] = 0;
	fputs("{\"gpuload\":1,\"device\":", stdout);
	json_str(stdout, name);
	printf(",\"uuid\":\"%s\",\"launches\":%llu,\"seconds\":%.3f,\"flops\":%.0f,\"gflops\":%.1f}\n", uuid, launches,
	       elapsed, flops, elapsed > 0 ? flops / elapsed / 1e9 : 0.0);
	if (fflush(stdout) != 0 || ferror(stdout))
		return 1;
	return 0;
}
