/*
 * libcuda.so.1 stand-in of the gpuctl test rig (tests/rig): the CUDA driver
 * API as far as gpuctl-gpuload (src/load/gpuload.c, the load of
 * `gpuctl smoke-test --measure`) uses it, and nothing more: any other entry
 * point is absent, so dlsym fails and gpuload says which one.
 *
 * GPUs: the node's replayed GPU facts, the folder the nvidia-smi and NVML
 * stand-ins read (tests/rig/nvml/libnvidia-ml.c): $GPUCTL_NVML_DATA, else
 * $NVIDIA_SMI_REPLAY_DIR, else /usr/local/share/nvidia-smi-replay; "mode"
 * must read "ok", gpus.tsv gives index and UUID, query-gpu.tsv the name. As in
 * a container, NVIDIA_VISIBLE_DEVICES (indexes or UUIDs, all, none, void)
 * restricts and renumbers the GPUs, so cuDeviceGetUuid answers the UUID of
 * the GPU the pod was given.
 *
 * Kernels are not run: cuModuleLoadData checks that the image is PTX text
 * (".version" first) and cuModuleGetFunction that ".entry NAME" is in it.
 * cuLaunchKernel records a launch; cuCtxSynchronize performs the recorded
 * ones. A "GPU" is time-sliced among every process launching on it, as the
 * real one is among contexts: each launch needs KERNEL_US of GPU time
 * ($GPUCTL_CUDA_STANDIN_KERNEL_US, default 2000) and takes KERNEL_US x N of
 * wall time (sleeping) when N processes are launching on that GPU. A process
 * counts from its first launch until cuCtxDestroy or its death: it holds an
 * flock on its file <UUID>.<pid>.<nonce>.active in $GPUCTL_CUDA_STANDIN_DIR
 * (default /run/gpuctl-rig/cuda; the rig's nvidia-container-runtime stand-in
 * mounts the node's folder into GPU containers), and counting takes a file
 * whose lock can be taken as left by a dead process (and removes it). So N
 * pods sharing one GPU each get about 1/N of a solo run's launches and their
 * sum is about the solo figure, whatever the CPU load: nothing spins.
 *
 * Log: $GPUCTL_CUDA_STANDIN_LOG, when set: the first call of each entry point
 * ("call <name>") and every error returned.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_GPUS 64
#define MAX_ALLOCS 64
#define MAX_CTXS 16
#define MAX_MODS 32

/* cuda.h's types and the codes used here (their real values). */
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

enum {
	CUDA_SUCCESS = 0,
	CUDA_ERROR_INVALID_VALUE = 1,
	CUDA_ERROR_OUT_OF_MEMORY = 2,
	CUDA_ERROR_NOT_INITIALIZED = 3,
	CUDA_ERROR_NO_DEVICE = 100,
	CUDA_ERROR_INVALID_DEVICE = 101,
	CUDA_ERROR_INVALID_IMAGE = 200,
	CUDA_ERROR_INVALID_CONTEXT = 201,
	CUDA_ERROR_INVALID_PTX = 218,
	CUDA_ERROR_INVALID_HANDLE = 400,
	CUDA_ERROR_NOT_FOUND = 500,
	CUDA_ERROR_LAUNCH_FAILED = 719,
	CUDA_ERROR_UNKNOWN = 999,
};

/* cuGetErrorString's texts, as the real driver words them. */
static const struct {
	CUresult code;
	const char *text;
} errors[] = {
	{ CUDA_SUCCESS, "no error" },
	{ CUDA_ERROR_INVALID_VALUE, "invalid argument" },
	{ CUDA_ERROR_OUT_OF_MEMORY, "out of memory" },
	{ CUDA_ERROR_NOT_INITIALIZED, "initialization error" },
	{ CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected" },
	{ CUDA_ERROR_INVALID_DEVICE, "invalid device ordinal" },
	{ CUDA_ERROR_INVALID_IMAGE, "device kernel image is invalid" },
	{ CUDA_ERROR_INVALID_CONTEXT, "invalid device context" },
	{ CUDA_ERROR_INVALID_PTX, "a PTX JIT compilation failed" },
	{ CUDA_ERROR_INVALID_HANDLE, "invalid resource handle" },
	{ CUDA_ERROR_NOT_FOUND, "named symbol not found" },
	{ CUDA_ERROR_LAUNCH_FAILED, "unspecified launch failure" },
	{ CUDA_ERROR_UNKNOWN, "unknown error" },
};

struct gpu {
	char uuid[96];		/* GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx */
	char name[160];
	unsigned char raw[16];
};

struct CUfunc_st {
	struct CUmod_st *mod;
	char name[128];
};

struct CUmod_st {
	struct CUctx_st *ctx;	/* NULL: a free slot */
	char *image;		/* owned */
	struct CUfunc_st fns[8];
	unsigned int nfns;
};

struct CUctx_st {
	unsigned int magic;
	const struct gpu *gpu;
	CUdeviceptr allocs[MAX_ALLOCS];
	unsigned long long pending;	/* launches recorded, not yet synchronised */
	int active_fd;			/* lock on our .active file; -1 before the first launch */
	char active_path[4200];
};

#define CTX_MAGIC 0x63747831u

static struct {
	pthread_mutex_t mu;
	int init;
	struct gpu gpus[MAX_GPUS];
	int ngpus;
	CUdeviceptr next_ptr;
	/* handles point into these tables, so a stale or foreign one is recognised */
	struct CUctx_st ctxs[MAX_CTXS];
	struct CUmod_st mods[MAX_MODS];
	FILE *log;
	char seen[32][48];
	unsigned int nseen;
} S = { .mu = PTHREAD_MUTEX_INITIALIZER, .next_ptr = 0x7f0000000000ULL };

static __thread CUcontext current;

/* ---- logging ---- */

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	const char *path = getenv("GPUCTL_CUDA_STANDIN_LOG");
	char msg[1024], ts[32];
	time_t now = time(0);
	struct tm tm;
	va_list ap;

	if (!path || !*path)
		return;
	if (!S.log) {
		S.log = fopen(path, "ae");
		if (!S.log)
			return;
		setvbuf(S.log, 0, _IOLBF, 0);
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(S.log, "%s [%d] CUDA stand-in: %s\n", ts, (int)getpid(), msg);
}

/* Records the first call of each entry point. */
static void trace(const char *fn)
{
	unsigned int i;

	pthread_mutex_lock(&S.mu);
	for (i = 0; i < S.nseen; i++)
		if (strcmp(S.seen[i], fn) == 0)
			break;
	if (i == S.nseen && S.nseen < 32) {
		snprintf(S.seen[S.nseen++], sizeof(S.seen[0]), "%s", fn);
		logf_("call %s", fn);
	}
	pthread_mutex_unlock(&S.mu);
}

static CUresult err(const char *fn, CUresult code, const char *why)
{
	logf_("%s: error %d (%s)", fn, code, why);
	return code;
}

/* ---- the facts (the format tests/rig/lib/gen-nvidia.py writes) ---- */

static int split_tabs(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;

	line[strcspn(line, "\n")] = 0;
	while (n < max) {
		f[n++] = p;
		p = strchr(p, '\t');
		if (!p)
			break;
		*p++ = 0;
	}
	return n;
}

/* NVIDIA_VISIBLE_DEVICES, as libnvidia-ml.c reads it. */
static int visible(const char *env, unsigned int index, const char *uuid)
{
	char buf[4096], *save = 0, *tok;

	if (!env || strcmp(env, "all") == 0)
		return 1;
	if (!*env || strcmp(env, "none") == 0 || strcmp(env, "void") == 0)
		return 0;
	snprintf(buf, sizeof(buf), "%s", env);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(0, ",", &save)) {
		char *end;
		unsigned long n = strtoul(tok, &end, 10);

		if (end != tok && !*end && n == index)
			return 1;
		if (strcmp(tok, uuid) == 0)
			return 1;
	}
	return 0;
}

/* "GPU-a69e6066-5b30-bdda-4779-11204e05cebb" -> its 16 bytes; -1 if malformed. */
static int uuid_bytes(const char *s, unsigned char out[16])
{
	int n = 0;

	if (strncmp(s, "GPU-", 4) != 0)
		return -1;
	for (s += 4; *s && n < 32; s++) {
		int v;

		if (*s == '-')
			continue;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			v = *s - 'A' + 10;
		else
			return -1;
		if (n % 2 == 0)
			out[n / 2] = (unsigned char)(v << 4);
		else
			out[n / 2] |= (unsigned char)v;
		n++;
	}
	return n == 32 && !*s ? 0 : -1;
}

static FILE *open_data(const char *dir, const char *name)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return fopen(path, "re");
}

/* Reads the facts; CUDA_ERROR_NO_DEVICE as the real cuInit on a node without a usable GPU. */
static CUresult load(void)
{
	const char *dir = getenv("GPUCTL_NVML_DATA");
	const char *vis = getenv("NVIDIA_VISIBLE_DEVICES");
	char line[8192];
	int pos[MAX_GPUS];	/* physical index -> position among the visible, or -1 */
	int nphys = 0;
	FILE *f;

	if (!dir || !*dir)
		dir = getenv("NVIDIA_SMI_REPLAY_DIR");
	if (!dir || !*dir)
		dir = "/usr/local/share/nvidia-smi-replay";
	f = open_data(dir, "mode");
	if (!f || !fgets(line, sizeof(line), f) || strncmp(line, "ok", 2) != 0) {
		if (f)
			fclose(f);
		return err("cuInit", CUDA_ERROR_NO_DEVICE, "the GPU facts' mode is not \"ok\" (driver not loaded)");
	}
	fclose(f);
	f = open_data(dir, "gpus.tsv");
	if (!f)
		return err("cuInit", CUDA_ERROR_NO_DEVICE, "no gpus.tsv in the GPU facts");
	S.ngpus = 0;
	while (fgets(line, sizeof(line), f) && nphys < MAX_GPUS) {
		char *v[4];

		if (split_tabs(line, v, 4) < 2)
			continue;
		unsigned int idx = (unsigned int)strtoul(v[0], 0, 10);
		pos[nphys++] = -1;
		if (!visible(vis, idx, v[1]))
			continue;
		struct gpu *g = &S.gpus[S.ngpus];
		if (uuid_bytes(v[1], g->raw) != 0) {
			logf_("gpus.tsv: malformed UUID %s ignored", v[1]);
			continue;
		}
		snprintf(g->uuid, sizeof(g->uuid), "%s", v[1]);
		snprintf(g->name, sizeof(g->name), "NVIDIA GPU");
		pos[nphys - 1] = S.ngpus++;
	}
	fclose(f);
	f = open_data(dir, "query-gpu.tsv");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *v[3 + MAX_GPUS];
			int n = split_tabs(line, v, 3 + MAX_GPUS);

			if (strcmp(v[0], "name") != 0)
				continue;
			for (int i = 3; i < n && i - 3 < nphys; i++)
				if (pos[i - 3] >= 0)
					snprintf(S.gpus[pos[i - 3]].name, sizeof(S.gpus[0].name), "%s", v[i]);
		}
		fclose(f);
	}
	if (S.ngpus == 0)
		return err("cuInit", CUDA_ERROR_NO_DEVICE, "no GPU visible (NVIDIA_VISIBLE_DEVICES)");
	return CUDA_SUCCESS;
}

/* ---- time-slicing ---- */

static const char *standin_dir(void)
{
	const char *d = getenv("GPUCTL_CUDA_STANDIN_DIR");

	return d && *d ? d : "/run/gpuctl-rig/cuda";
}

static long kernel_us(void)
{
	const char *s = getenv("GPUCTL_CUDA_STANDIN_KERNEL_US");
	char *end;
	long v;

	if (!s || !*s)
		return 2000;
	v = strtol(s, &end, 10);
	return *end || v < 1 || v > 10000000 ? 2000 : v;
}

/* Makes this context count as launching on its GPU: <uuid>.<pid>.<nonce>.active,
 * locked before it gets its name, so no counter ever sees it unlocked. */
static CUresult become_active(struct CUctx_st *c)
{
	const char *dir = standin_dir();
	char tmp[4200];
	struct timespec ts;
	int fd;

	mkdir(dir, 0777);	/* the rig creates it; by hand, the first process does */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(c->active_path, sizeof(c->active_path), "%s/%s.%d.%ld%09ld.active", dir, c->gpu->uuid, (int)getpid(),
		 (long)ts.tv_sec, ts.tv_nsec);
	snprintf(tmp, sizeof(tmp), "%s.tmp", c->active_path);
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0 || flock(fd, LOCK_EX) != 0 || rename(tmp, c->active_path) != 0) {
		char why[4400];

		snprintf(why, sizeof(why), "%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return err("cuLaunchKernel", CUDA_ERROR_LAUNCH_FAILED, why);
	}
	c->active_fd = fd;
	return CUDA_SUCCESS;
}

static void become_idle(struct CUctx_st *c)
{
	if (c->active_fd < 0)
		return;
	unlink(c->active_path);
	close(c->active_fd);
	c->active_fd = -1;
}

/* How many processes launch on GPU UUID now (at least 1: the caller). */
static int launching(const char *uuid)
{
	const char *dir = standin_dir();
	size_t ulen = strlen(uuid);
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 1;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);

		if (strncmp(e->d_name, uuid, ulen) != 0 || e->d_name[ulen] != '.' || len < 7 ||
		    strcmp(e->d_name + len - 7, ".active") != 0)
			continue;
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_SH | LOCK_NB) == 0)
			unlinkat(dirfd(d), e->d_name, 0);	/* its process died without cuCtxDestroy */
		else
			n++;
		close(fd);
	}
	closedir(d);
	return n > 0 ? n : 1;
}

static void sleep_us(long long us)
{
	struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- the entry points ---- */

#define NEED_INIT(fn)                                                          \
	do {                                                                   \
		trace(fn);                                                     \
		if (!S.init)                                                   \
			return err(fn, CUDA_ERROR_NOT_INITIALIZED, "cuInit not called"); \
	} while (0)

static struct CUctx_st *CTX(CUcontext c)
{
	return c >= S.ctxs && c < S.ctxs + MAX_CTXS && c->magic == CTX_MAGIC ? c : 0;
}

static struct CUmod_st *MOD(CUmodule m)
{
	return m >= S.mods && m < S.mods + MAX_MODS && CTX(m->ctx) ? m : 0;
}

static struct CUfunc_st *FN(CUfunction f)
{
	for (int i = 0; i < MAX_MODS; i++)
		if (MOD(&S.mods[i]) && f >= S.mods[i].fns && f < S.mods[i].fns + S.mods[i].nfns)
			return f;
	return 0;
}

EXPORT CUresult cuInit(unsigned int flags)
{
	CUresult rc = CUDA_SUCCESS;

	trace("cuInit");
	if (flags != 0)
		return err("cuInit", CUDA_ERROR_INVALID_VALUE, "flags must be 0");
	pthread_mutex_lock(&S.mu);
	if (!S.init) {
		rc = load();
		S.init = rc == CUDA_SUCCESS;
	}
	pthread_mutex_unlock(&S.mu);
	return rc;
}

EXPORT CUresult cuGetErrorString(CUresult error, const char **str)
{
	trace("cuGetErrorString");
	if (!str)
		return CUDA_ERROR_INVALID_VALUE;
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].code == error) {
			*str = errors[i].text;
			return CUDA_SUCCESS;
		}
	*str = 0;
	return CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuDeviceGetCount(int *count)
{
	NEED_INIT("cuDeviceGetCount");
	if (!count)
		return err("cuDeviceGetCount", CUDA_ERROR_INVALID_VALUE, "count is NULL");
	*count = S.ngpus;
	return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
	NEED_INIT("cuDeviceGet");
	if (!dev)
		return err("cuDeviceGet", CUDA_ERROR_INVALID_VALUE, "device is NULL");
	if (ordinal < 0 || ordinal >= S.ngpus)
		return err("cuDeviceGet", CUDA_ERROR_INVALID_DEVICE, "ordinal out of range");
	*dev = ordinal;
	return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
	NEED_INIT("cuDeviceGetName");
	if (dev < 0 || dev >= S.ngpus)
		return err("cuDeviceGetName", CUDA_ERROR_INVALID_DEVICE, "no such device");
	if (!name || len <= 0)
		return err("cuDeviceGetName", CUDA_ERROR_INVALID_VALUE, "name is NULL or len <= 0");
	snprintf(name, (size_t)len, "%s", S.gpus[dev].name);
	return CUDA_SUCCESS;
}

static CUresult get_uuid(const char *fn, CUuuid *uuid, CUdevice dev)
{
	NEED_INIT(fn);
	if (dev < 0 || dev >= S.ngpus)
		return err(fn, CUDA_ERROR_INVALID_DEVICE, "no such device");
	if (!uuid)
		return err(fn, CUDA_ERROR_INVALID_VALUE, "uuid is NULL");
	memcpy(uuid->bytes, S.gpus[dev].raw, 16);
	return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
	return get_uuid("cuDeviceGetUuid", uuid, dev);
}

EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
	return get_uuid("cuDeviceGetUuid_v2", uuid, dev);
}

EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
	NEED_INIT("cuCtxCreate_v2");
	(void)flags;
	if (!pctx)
		return err("cuCtxCreate_v2", CUDA_ERROR_INVALID_VALUE, "pctx is NULL");
	if (dev < 0 || dev >= S.ngpus)
		return err("cuCtxCreate_v2", CUDA_ERROR_INVALID_DEVICE, "no such device");
	struct CUctx_st *c = 0;
	pthread_mutex_lock(&S.mu);
	for (int i = 0; i < MAX_CTXS && !c; i++)
		if (S.ctxs[i].magic != CTX_MAGIC) {
			c = &S.ctxs[i];
			memset(c, 0, sizeof(*c));
			c->magic = CTX_MAGIC;
		}
	pthread_mutex_unlock(&S.mu);
	if (!c)
		return err("cuCtxCreate_v2", CUDA_ERROR_OUT_OF_MEMORY, "too many contexts");
	c->gpu = &S.gpus[dev];
	c->active_fd = -1;
	current = c;	/* the new context is made current, as by the real one */
	*pctx = c;
	return CUDA_SUCCESS;
}

/* Modules and allocations die with their context, as in the real driver. */
EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
	NEED_INIT("cuCtxDestroy_v2");
	struct CUctx_st *c = CTX(ctx);
	if (!c)
		return err("cuCtxDestroy_v2", CUDA_ERROR_INVALID_CONTEXT, "not a context");
	become_idle(c);
	pthread_mutex_lock(&S.mu);
	for (int i = 0; i < MAX_MODS; i++)
		if (S.mods[i].ctx == c) {
			free(S.mods[i].image);
			memset(&S.mods[i], 0, sizeof(S.mods[i]));
		}
	c->magic = 0;
	pthread_mutex_unlock(&S.mu);
	if (current == c)
		current = 0;
	return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
	NEED_INIT("cuModuleLoadData");
	struct CUctx_st *c = CTX(current);
	if (!c)
		return err("cuModuleLoadData", CUDA_ERROR_INVALID_CONTEXT, "no current context");
	if (!module || !image)
		return err("cuModuleLoadData", CUDA_ERROR_INVALID_VALUE, "module or image is NULL");
	/* PTX is NUL-terminated text; comments and blank lines may precede .version */
	const char *p = image;
	for (;;) {
		p += strspn(p, " \t\r\n");
		if (strncmp(p, "//", 2) != 0)
			break;
		p += strcspn(p, "\n");
	}
	if (strncmp(p, ".version", 8) != 0 || !strstr(p, ".target"))
		return err("cuModuleLoadData", CUDA_ERROR_INVALID_PTX, "image is not PTX (no .version / .target)");
	char *copy = strdup(image);
	struct CUmod_st *m = 0;
	pthread_mutex_lock(&S.mu);
	for (int i = 0; i < MAX_MODS && copy && !m; i++)
		if (!S.mods[i].ctx) {
			m = &S.mods[i];
			m->ctx = c;
			m->image = copy;
		}
	pthread_mutex_unlock(&S.mu);
	if (!m) {
		free(copy);
		return err("cuModuleLoadData", CUDA_ERROR_OUT_OF_MEMORY, "too many modules");
	}
	*module = m;
	return CUDA_SUCCESS;
}

/* ".entry NAME(" or ".entry NAME (" as a whole word in the PTX. */
static int has_entry(const char *ptx, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(ptx, ".entry"); p; p = strstr(p + 6, ".entry")) {
		const char *q = p + 6;

		if (*q != ' ' && *q != '\t')
			continue;
		q += strspn(q, " \t");
		if (strncmp(q, name, n) == 0 && strchr(" \t\r\n(", q[n]))
			return 1;
	}
	return 0;
}

EXPORT CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
	NEED_INIT("cuModuleGetFunction");
	if (!hfunc || !hmod || !name || !*name)
		return err("cuModuleGetFunction", CUDA_ERROR_INVALID_VALUE, "NULL argument");
	if (!MOD(hmod))
		return err("cuModuleGetFunction", CUDA_ERROR_INVALID_HANDLE, "not a module, or its context is destroyed");
	if (!has_entry(hmod->image, name) || strlen(name) >= sizeof(hmod->fns[0].name))
		return err("cuModuleGetFunction", CUDA_ERROR_NOT_FOUND, name);
	for (unsigned int i = 0; i < hmod->nfns; i++)
		if (strcmp(hmod->fns[i].name, name) == 0) {
			*hfunc = &hmod->fns[i];
			return CUDA_SUCCESS;
		}
	if (hmod->nfns == sizeof(hmod->fns) / sizeof(hmod->fns[0]))
		return err("cuModuleGetFunction", CUDA_ERROR_OUT_OF_MEMORY, "too many functions");
	struct CUfunc_st *f = &hmod->fns[hmod->nfns++];
	f->mod = hmod;
	snprintf(f->name, sizeof(f->name), "%s", name);
	*hfunc = f;
	return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
	NEED_INIT("cuMemAlloc_v2");
	struct CUctx_st *c = CTX(current);
	if (!c)
		return err("cuMemAlloc_v2", CUDA_ERROR_INVALID_CONTEXT, "no current context");
	if (!dptr || bytesize == 0)
		return err("cuMemAlloc_v2", CUDA_ERROR_INVALID_VALUE, "dptr is NULL or bytesize 0");
	for (int i = 0; i < MAX_ALLOCS; i++)
		if (!c->allocs[i]) {
			pthread_mutex_lock(&S.mu);
			c->allocs[i] = S.next_ptr;
			S.next_ptr += (bytesize + 0xfffff) & ~0xfffffULL;	/* nothing is stored: addresses only */
			pthread_mutex_unlock(&S.mu);
			*dptr = c->allocs[i];
			return CUDA_SUCCESS;
		}
	return err("cuMemAlloc_v2", CUDA_ERROR_OUT_OF_MEMORY, "too many allocations");
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
	NEED_INIT("cuMemFree_v2");
	struct CUctx_st *c = CTX(current);
	if (!c)
		return err("cuMemFree_v2", CUDA_ERROR_INVALID_CONTEXT, "no current context");
	for (int i = 0; i < MAX_ALLOCS; i++)
		if (dptr && c->allocs[i] == dptr) {
			c->allocs[i] = 0;
			return CUDA_SUCCESS;
		}
	return err("cuMemFree_v2", CUDA_ERROR_INVALID_VALUE, "not an allocation of this context");
}

EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
			       unsigned int by, unsigned int bz, unsigned int shared_bytes, CUstream stream,
			       void **params, void **extra)
{
	NEED_INIT("cuLaunchKernel");
	struct CUctx_st *c = CTX(current);
	(void)shared_bytes;
	if (!c)
		return err("cuLaunchKernel", CUDA_ERROR_INVALID_CONTEXT, "no current context");
	if (!FN(f) || f->mod->ctx != c)
		return err("cuLaunchKernel", CUDA_ERROR_INVALID_HANDLE, "function not of the current context");
	if (stream)
		return err("cuLaunchKernel", CUDA_ERROR_INVALID_HANDLE, "streams are not simulated");
	if (!gx || !gy || !gz || !bx || !by || !bz || (unsigned long long)bx * by * bz > 1024 || gy > 65535 ||
	    gz > 65535)
		return err("cuLaunchKernel", CUDA_ERROR_INVALID_VALUE, "bad grid or block dimensions");
	if ((params && extra) || (!params && !extra))
		return err("cuLaunchKernel", CUDA_ERROR_INVALID_VALUE, "exactly one of kernelParams and extra");
	if (c->active_fd < 0) {
		CUresult rc = become_active(c);
		if (rc != CUDA_SUCCESS)
			return rc;
	}
	c->pending++;
	return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSynchronize(void)
{
	NEED_INIT("cuCtxSynchronize");
	struct CUctx_st *c = CTX(current);
	if (!c)
		return err("cuCtxSynchronize", CUDA_ERROR_INVALID_CONTEXT, "no current context");
	long us = kernel_us();
	for (; c->pending; c->pending--)
		sleep_us((long long)us * launching(c->gpu->uuid));
	return CUDA_SUCCESS;
}
