/*
 * libnvidia-ml.so.1 stand-in of the gpuctl test rig (tests/rig).
 *
 * The real NVIDIA device plugin and gpu-feature-discovery (built from their Go
 * module) load NVML with dlopen("libnvidia-ml.so.1") and call into it through
 * github.com/NVIDIA/go-nvml. This library answers those calls from the node's
 * replayed GPU facts, the folder the nvidia-smi stand-in reads (written by
 * tests/rig/lib/gen-nvidia.py from real nvidia-smi captures):
 *
 *   gpus.tsv        index, UUID, PCI bus id of each GPU
 *   query-gpu.tsv   name, memory, minor number, compute capability, MIG mode, ...
 *   version.txt     driver, NVML and CUDA versions
 *   mig-lgip.txt    the GPU instance profiles (nvidia-smi mig -lgip capture)
 *   mig.tsv         (optional) the node's MIG layout: one line per MIG device
 *
 * Folder: $GPUCTL_NVML_DATA, else $NVIDIA_SMI_REPLAY_DIR, else
 * /usr/local/share/nvidia-smi-replay. As in a container, NVIDIA_VISIBLE_DEVICES
 * (indexes or UUIDs, all, none, void) restricts the GPUs that are seen.
 *
 * Every function of NVML's API is exported. The ones below answer from the
 * facts; each other one (nvml-unimplemented.h) writes "NVML stand-in: <name>
 * not implemented" to stderr and to the log and returns
 * NVML_ERROR_NOT_SUPPORTED: nothing succeeds silently. Log: $GPUCTL_NVML_LOG,
 * else /var/log/nvml-standin.log; the first call of each implemented function
 * is recorded there too ("call <name>"), so a run shows which calls a program
 * made.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nvml-types.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_GPUS 64
#define MAX_MIG 8
#define MAX_PROFILES 16

struct profile {		/* one row of nvidia-smi mig -lgip */
	char name[32];		/* "1g.10gb", "1g.10gb+me" */
	unsigned int index;	/* NVML_GPU_INSTANCE_PROFILE_* */
	unsigned int id;	/* the profile ID nvidia-smi prints */
	unsigned int instances;
	unsigned int slices;
	unsigned long long mem_mib;
	unsigned int sm, ce, dec, enc, jpeg, ofa;
	unsigned int p2p;
};

struct dev;

struct gi {			/* a GPU instance with its one compute instance */
	struct dev *gpu;
	struct dev *mig;	/* the MIG device of its compute instance */
	const struct profile *prof;
	unsigned int id, start, size;
};

struct dev {
	int is_mig;
	unsigned int index;	/* GPU: NVML index (from 0 among the visible); MIG: index within its GPU */
	unsigned int phys;	/* GPU: index on the node (gpus.tsv) */
	char uuid[96];
	char name[160];
	char bus_id[32];	/* 00000000:18:00.0 */
	char serial[32];
	unsigned long long mem_total, mem_used, mem_free, mem_reserved; /* bytes */
	unsigned int minor;
	int cc_major, cc_minor;
	unsigned int pci_device_id, pci_subsys_id;
	unsigned int mig_current, mig_pending;
	struct dev *parent;	/* MIG: its GPU */
	struct gi *gi;		/* MIG: its GPU instance */
	struct gi gis[MAX_MIG];	/* GPU: its GPU instances (MIG mode) */
	unsigned int ngis;
};

static struct {
	pthread_mutex_t mu;
	int loaded;
	int inits;
	char dir[4096];
	struct dev gpus[MAX_GPUS];
	unsigned int ngpus;
	struct dev migs[MAX_GPUS * MAX_MIG];
	unsigned int nmigs;
	struct profile profiles[MAX_PROFILES];
	unsigned int nprofiles;
	char driver[80];
	char nvml_version[96];
	int cuda_version;	/* 13000 for 13.0 */
	FILE *log;
	char seen[512][64];
	unsigned int nseen;
} S = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- logging ---- */

static void open_log(void)
{
	const char *path = getenv("GPUCTL_NVML_LOG");

	if (S.log)
		return;
	if (!path || !*path)
		path = "/var/log/nvml-standin.log";
	S.log = fopen(path, "ae");
	if (S.log)
		setvbuf(S.log, 0, _IOLBF, 0);
}

static void logf_(int to_stderr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(int to_stderr, const char *fmt, ...)
{
	char msg[1024], ts[32];
	time_t now = time(0);
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	open_log();
	if (S.log)
		fprintf(S.log, "%s [%d] NVML stand-in: %s\n", ts, (int)getpid(), msg);
	if (to_stderr)
		fprintf(stderr, "NVML stand-in: %s\n", msg);
}

/* Records the first call of an implemented function. */
static void trace(const char *fn)
{
	unsigned int i;

	pthread_mutex_lock(&S.mu);
	for (i = 0; i < S.nseen; i++)
		if (strcmp(S.seen[i], fn) == 0)
			break;
	if (i == S.nseen && S.nseen < 512) {
		snprintf(S.seen[S.nseen++], sizeof(S.seen[0]), "%s", fn);
		logf_(0, "call %s", fn);
	}
	pthread_mutex_unlock(&S.mu);
}

static nvmlReturn_t not_implemented(const char *fn)
{
	logf_(1, "%s not implemented (returning NVML_ERROR_NOT_SUPPORTED)", fn);
	return NVML_ERROR_NOT_SUPPORTED;
}

/* ---- the facts ---- */

static FILE *open_data(const char *name)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", S.dir, name);
	return fopen(path, "re");
}

/* Splits LINE at tabs in place; returns the number of fields. */
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

static unsigned long long mib(const char *s)
{
	return strtoull(s, 0, 10) * 1024ULL * 1024ULL;
}

static void set_query_field(const char *field, char **v, int nv)
{
	for (int i = 0; i < nv && i < (int)S.ngpus; i++) {
		struct dev *d = &S.gpus[i];

		if (strcmp(field, "name") == 0)
			snprintf(d->name, sizeof(d->name), "%s", v[i]);
		else if (strcmp(field, "serial") == 0)
			snprintf(d->serial, sizeof(d->serial), "%s", v[i]);
		else if (strcmp(field, "memory.total") == 0)
			d->mem_total = mib(v[i]);
		else if (strcmp(field, "memory.used") == 0)
			d->mem_used = mib(v[i]);
		else if (strcmp(field, "memory.free") == 0)
			d->mem_free = mib(v[i]);
		else if (strcmp(field, "memory.reserved") == 0)
			d->mem_reserved = mib(v[i]);
		else if (strcmp(field, "minor_number") == 0)
			d->minor = (unsigned int)strtoul(v[i], 0, 10);
		else if (strcmp(field, "compute_cap") == 0)
			sscanf(v[i], "%d.%d", &d->cc_major, &d->cc_minor);
		else if (strcmp(field, "pci.device_id") == 0)
			d->pci_device_id = (unsigned int)strtoul(v[i], 0, 16);
		else if (strcmp(field, "pci.sub_device_id") == 0)
			d->pci_subsys_id = (unsigned int)strtoul(v[i], 0, 16);
		else if (strcmp(field, "mig.mode.current") == 0)
			d->mig_current = strcmp(v[i], "Enabled") == 0;
		else if (strcmp(field, "mig.mode.pending") == 0)
			d->mig_pending = strcmp(v[i], "Enabled") == 0;
		else if (strcmp(field, "driver_version") == 0 && i == 0)
			snprintf(S.driver, sizeof(S.driver), "%s", v[i]);
	}
}

/* NVIDIA_VISIBLE_DEVICES: as the container runtime exposes only those GPUs. */
static int visible(const char *env, unsigned int index, const char *uuid)
{
	char buf[4096], *save = 0, *tok;

	if (!env || strcmp(env, "all") == 0)
		return 1;
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

/* Maps a profile name of nvidia-smi mig -lgip to NVML's profile index. */
static int profile_index(const char *name, unsigned int slices, unsigned long long mem_mib,
			 unsigned long long total_mib)
{
	int me = strstr(name, "+me") != 0;

	switch (slices) {
	case 1:
		if (me)
			return NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1;
		/* 1g with twice the memory of a 1-slice profile (1g.20gb on H100) */
		if (total_mib && mem_mib * 6 > total_mib)
			return NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2;
		return NVML_GPU_INSTANCE_PROFILE_1_SLICE;
	case 2:
		return me ? NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1 : NVML_GPU_INSTANCE_PROFILE_2_SLICE;
	case 3:
		return NVML_GPU_INSTANCE_PROFILE_3_SLICE;
	case 4:
		return NVML_GPU_INSTANCE_PROFILE_4_SLICE;
	case 6:
		return NVML_GPU_INSTANCE_PROFILE_6_SLICE;
	case 7:
		return NVML_GPU_INSTANCE_PROFILE_7_SLICE;
	case 8:
		return NVML_GPU_INSTANCE_PROFILE_8_SLICE;
	}
	return -1;
}

/*
 * mig-lgip.txt: blocks of two lines per profile, for every GPU; GPU 0's are
 * read ("|   0  MIG 1g.10gb         19     7/7        9.75       No     16     1     0   |"
 * then "|                                                               1     1     0   |").
 */
static void load_profiles(void)
{
	FILE *f = open_data("mig-lgip.txt");
	char line[512];
	struct profile *p = 0;
	unsigned long long total_mib = S.ngpus ? S.gpus[0].mem_total >> 20 : 0;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned int gpu, id, freec, total, sm, dec, enc, ce, jpeg, ofa;
		char name[32], p2p[8];
		double gib;

		if (sscanf(line, "| %u MIG %31s %u %u/%u %lf %7s %u %u %u", &gpu, name, &id, &freec, &total,
			   &gib, p2p, &sm, &dec, &enc) == 10) {
			p = 0;
			if (gpu != 0 || S.nprofiles >= MAX_PROFILES)
				continue;
			p = &S.profiles[S.nprofiles];
			memset(p, 0, sizeof(*p));
			snprintf(p->name, sizeof(p->name), "%s", name);
			p->id = id;
			p->instances = total;
			p->mem_mib = (unsigned long long)(gib * 1024.0 + 0.5);
			p->sm = sm;
			p->dec = dec;
			p->enc = enc;
			p->p2p = strcmp(p2p, "Yes") == 0;
			p->slices = (unsigned int)strtoul(name, 0, 10);
			int idx = profile_index(name, p->slices, p->mem_mib, total_mib);
			if (idx < 0) {
				logf_(1, "mig-lgip.txt: unknown profile %s ignored", name);
				continue;
			}
			p->index = (unsigned int)idx;
			S.nprofiles++;
		} else if (p && sscanf(line, "| %u %u %u", &ce, &jpeg, &ofa) == 3) {
			p->ce = ce;
			p->jpeg = jpeg;
			p->ofa = ofa;
			p = 0;
		}
	}
	fclose(f);
}

static const struct profile *profile_by_name(const char *name)
{
	for (unsigned int i = 0; i < S.nprofiles; i++)
		if (strcmp(S.profiles[i].name, name) == 0)
			return &S.profiles[i];
	return 0;
}

/* mig.tsv: gpu-index, profile, gi-id, placement-start, placement-size, MIG UUID. */
static void load_mig(void)
{
	FILE *f = open_data("mig.tsv");
	char line[512];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *v[8];
		int n = split_tabs(line, v, 8);
		unsigned int phys;
		struct dev *g = 0;
		const struct profile *p;

		if (n < 6 || line[0] == '#')
			continue;
		phys = (unsigned int)strtoul(v[0], 0, 10);
		for (unsigned int i = 0; i < S.ngpus; i++)
			if (S.gpus[i].phys == phys)
				g = &S.gpus[i];
		if (!g)
			continue;	/* not visible here */
		p = profile_by_name(v[1]);
		if (!p) {
			logf_(1, "mig.tsv: profile %s not in mig-lgip.txt", v[1]);
			continue;
		}
		if (g->ngis >= MAX_MIG || S.nmigs >= MAX_GPUS * MAX_MIG)
			continue;
		struct gi *gi = &g->gis[g->ngis];
		struct dev *m = &S.migs[S.nmigs++];

		gi->gpu = g;
		gi->prof = p;
		gi->id = (unsigned int)strtoul(v[2], 0, 10);
		gi->start = (unsigned int)strtoul(v[3], 0, 10);
		gi->size = (unsigned int)strtoul(v[4], 0, 10);
		gi->mig = m;
		memset(m, 0, sizeof(*m));
		m->is_mig = 1;
		m->index = g->ngis;
		m->parent = g;
		m->gi = gi;
		snprintf(m->uuid, sizeof(m->uuid), "%s", v[5]);
		snprintf(m->name, sizeof(m->name), "%s MIG %s", g->name, p->name);
		snprintf(m->bus_id, sizeof(m->bus_id), "%s", g->bus_id);
		m->mem_total = p->mem_mib << 20;
		m->mem_free = m->mem_total;
		m->minor = g->minor;
		m->cc_major = g->cc_major;
		m->cc_minor = g->cc_minor;
		m->pci_device_id = g->pci_device_id;
		m->pci_subsys_id = g->pci_subsys_id;
		g->ngis++;
	}
	fclose(f);
}

static nvmlReturn_t load(void)
{
	const char *dir = getenv("GPUCTL_NVML_DATA");
	const char *vis = getenv("NVIDIA_VISIBLE_DEVICES");
	FILE *f;
	char line[8192];
	/* physical index -> position in S.gpus, for query-gpu.tsv's columns */
	int pos[MAX_GPUS];
	unsigned int nphys = 0;

	if (S.loaded)
		return NVML_SUCCESS;
	if (!dir || !*dir)
		dir = getenv("NVIDIA_SMI_REPLAY_DIR");
	if (!dir || !*dir)
		dir = "/usr/local/share/nvidia-smi-replay";
	snprintf(S.dir, sizeof(S.dir), "%s", dir);

	f = open_data("mode");
	if (!f || !fgets(line, sizeof(line), f) || strncmp(line, "ok", 2) != 0) {
		/* as on a node whose driver is not loaded */
		if (f)
			fclose(f);
		logf_(1, "%s/mode is not \"ok\": driver not loaded", S.dir);
		return NVML_ERROR_DRIVER_NOT_LOADED;
	}
	fclose(f);

	f = open_data("gpus.tsv");
	if (!f) {
		logf_(1, "%s/gpus.tsv: %s", S.dir, strerror(errno));
		return NVML_ERROR_DRIVER_NOT_LOADED;
	}
	S.ngpus = 0;
	while (fgets(line, sizeof(line), f) && nphys < MAX_GPUS) {
		char *v[4];
		unsigned int idx;

		if (split_tabs(line, v, 4) < 3)
			continue;
		idx = (unsigned int)strtoul(v[0], 0, 10);
		pos[nphys++] = -1;
		if (vis && (strcmp(vis, "none") == 0 || strcmp(vis, "void") == 0 || !*vis))
			continue;
		if (!visible(vis, idx, v[1]))
			continue;
		struct dev *d = &S.gpus[S.ngpus];

		memset(d, 0, sizeof(*d));
		pos[nphys - 1] = (int)S.ngpus;
		d->index = S.ngpus++;	/* renumbered from 0, as in a container */
		d->phys = idx;
		d->minor = idx;
		snprintf(d->uuid, sizeof(d->uuid), "%s", v[1]);
		snprintf(d->bus_id, sizeof(d->bus_id), "%s", v[2]);
	}
	fclose(f);

	f = open_data("query-gpu.tsv");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *v[3 + MAX_GPUS], *vals[MAX_GPUS];
			int n = split_tabs(line, v, 3 + MAX_GPUS), nv = 0;

			for (int i = 3; i < n && i - 3 < (int)nphys; i++)
				if (pos[i - 3] >= 0)
					vals[pos[i - 3]] = v[i], nv++;
			if (n > 3)
				set_query_field(v[0], vals, nv);
		}
		fclose(f);
	}

	f = open_data("version.txt");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			int maj, min;

			line[strcspn(line, "\n")] = 0;
			if (sscanf(line, "CUDA Version : %d.%d", &maj, &min) == 2)
				S.cuda_version = maj * 1000 + min * 10;
			else if (strncmp(line, "DRIVER version", 14) == 0 && strchr(line, ':'))
				snprintf(S.driver, sizeof(S.driver), "%s", strchr(line, ':') + 2);
		}
		fclose(f);
	}
	snprintf(S.nvml_version, sizeof(S.nvml_version), "%d.%s", S.cuda_version / 1000, S.driver);

	load_profiles();
	load_mig();
	S.loaded = 1;
	return NVML_SUCCESS;
}

/* ---- handles ---- */

static struct dev *D(nvmlDevice_t h)
{
	struct dev *d = (struct dev *)h;

	if (d >= S.gpus && d < S.gpus + S.ngpus)
		return d;
	if (d >= S.migs && d < S.migs + S.nmigs)
		return d;
	return 0;
}

static struct gi *GI(nvmlGpuInstance_t h)
{
	struct gi *g = (struct gi *)h;

	for (unsigned int i = 0; i < S.ngpus; i++)
		if (g >= S.gpus[i].gis && g < S.gpus[i].gis + S.gpus[i].ngis)
			return g;
	return 0;
}

/* A compute instance handle is its GPU instance's MIG device (one CI per GI). */
static struct dev *CI(nvmlComputeInstance_t h)
{
	struct dev *d = D((nvmlDevice_t)h);

	return d && d->is_mig ? d : 0;
}

#define ENTER(fn)                                 \
	do {                                      \
		trace(fn);                        \
		if (!S.inits)                     \
			return NVML_ERROR_UNINITIALIZED; \
	} while (0)

static nvmlReturn_t copy_str(char *dst, unsigned int len, const char *src)
{
	if (!dst)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (strlen(src) + 1 > len)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	memcpy(dst, src, strlen(src) + 1);
	return NVML_SUCCESS;
}

/* ---- init ---- */

static nvmlReturn_t do_init(const char *fn)
{
	nvmlReturn_t r;

	trace(fn);
	pthread_mutex_lock(&S.mu);
	r = load();
	if (r == NVML_SUCCESS)
		S.inits++;
	pthread_mutex_unlock(&S.mu);
	if (r == NVML_SUCCESS)
		logf_(0, "%s: %u GPU(s), %u MIG device(s) from %s", fn, S.ngpus, S.nmigs, S.dir);
	return r;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return do_init("nvmlInit_v2"); }
EXPORT nvmlReturn_t nvmlInit(void) { return do_init("nvmlInit"); }
EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; return do_init("nvmlInitWithFlags"); }

EXPORT nvmlReturn_t nvmlShutdown(void)
{
	trace("nvmlShutdown");
	if (!S.inits)
		return NVML_ERROR_UNINITIALIZED;
	S.inits--;
	return NVML_SUCCESS;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t r)
{
	trace("nvmlErrorString");
	switch (r) {
	case NVML_SUCCESS: return "Success";
	case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
	case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
	case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
	case NVML_ERROR_NOT_FOUND: return "Not Found";
	case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
	case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
	case NVML_ERROR_TIMEOUT: return "Timeout";
	case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
	case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument Version Mismatch";
	}
	return "Unknown Error";
}

/* ---- system ---- */

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned int len)
{
	ENTER("nvmlSystemGetDriverVersion");
	return copy_str(v, len, S.driver);
}

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *v, unsigned int len)
{
	ENTER("nvmlSystemGetNVMLVersion");
	return copy_str(v, len, S.nvml_version);
}

static nvmlReturn_t cuda_version(const char *fn, int *v)
{
	trace(fn);
	/* works without nvmlInit, as the real one (it asks libcuda) */
	pthread_mutex_lock(&S.mu);
	nvmlReturn_t r = load();
	pthread_mutex_unlock(&S.mu);
	if (r != NVML_SUCCESS)
		return r;
	if (!v)
		return NVML_ERROR_INVALID_ARGUMENT;
	*v = S.cuda_version;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { return cuda_version("nvmlSystemGetCudaDriverVersion", v); }
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { return cuda_version("nvmlSystemGetCudaDriverVersion_v2", v); }

/* ---- enumeration ---- */

static nvmlReturn_t get_count(const char *fn, unsigned int *n)
{
	ENTER(fn);
	if (!n)
		return NVML_ERROR_INVALID_ARGUMENT;
	*n = S.ngpus;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n) { return get_count("nvmlDeviceGetCount_v2", n); }
EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *n) { return get_count("nvmlDeviceGetCount", n); }

static nvmlReturn_t by_index(const char *fn, unsigned int i, nvmlDevice_t *h)
{
	ENTER(fn);
	if (!h || i >= S.ngpus)
		return NVML_ERROR_INVALID_ARGUMENT;
	*h = (nvmlDevice_t)&S.gpus[i];
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *h) { return by_index("nvmlDeviceGetHandleByIndex_v2", i, h); }
EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int i, nvmlDevice_t *h) { return by_index("nvmlDeviceGetHandleByIndex", i, h); }

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *h)
{
	ENTER("nvmlDeviceGetHandleByUUID");
	if (!uuid || !h)
		return NVML_ERROR_INVALID_ARGUMENT;
	for (unsigned int i = 0; i < S.ngpus; i++)
		if (strcmp(S.gpus[i].uuid, uuid) == 0)
			return *h = (nvmlDevice_t)&S.gpus[i], NVML_SUCCESS;
	for (unsigned int i = 0; i < S.nmigs; i++)
		if (strcmp(S.migs[i].uuid, uuid) == 0)
			return *h = (nvmlDevice_t)&S.migs[i], NVML_SUCCESS;
	return NVML_ERROR_NOT_FOUND;
}

static int same_bus(const char *a, const char *b)
{
	/* "0000:18:00.0" and "00000000:18:00.0" name the same device */
	const char *ca = strchr(a, ':'), *cb = strchr(b, ':');

	return ca && cb && strcasecmp(ca, cb) == 0;
}

static nvmlReturn_t by_bus(const char *fn, const char *bus, nvmlDevice_t *h)
{
	ENTER(fn);
	if (!bus || !h)
		return NVML_ERROR_INVALID_ARGUMENT;
	for (unsigned int i = 0; i < S.ngpus; i++)
		if (same_bus(S.gpus[i].bus_id, bus))
			return *h = (nvmlDevice_t)&S.gpus[i], NVML_SUCCESS;
	return NVML_ERROR_NOT_FOUND;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *b, nvmlDevice_t *h) { return by_bus("nvmlDeviceGetHandleByPciBusId_v2", b, h); }
EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *b, nvmlDevice_t *h) { return by_bus("nvmlDeviceGetHandleByPciBusId", b, h); }

/* ---- device facts ---- */

#define DEV(fn)                                   \
	struct dev *d;                            \
	ENTER(fn);                                \
	d = D(device);                            \
	if (!d)                                   \
		return NVML_ERROR_INVALID_ARGUMENT

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int len)
{
	DEV("nvmlDeviceGetName");
	return copy_str(name, len, d->name);
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int len)
{
	DEV("nvmlDeviceGetUUID");
	return copy_str(uuid, len, d->uuid);
}

EXPORT nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int len)
{
	DEV("nvmlDeviceGetSerial");
	return copy_str(serial, len, d->is_mig ? d->parent->serial : d->serial);
}

EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *i)
{
	DEV("nvmlDeviceGetIndex");
	if (!i)
		return NVML_ERROR_INVALID_ARGUMENT;
	*i = d->is_mig ? d->parent->index : d->index;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor)
{
	DEV("nvmlDeviceGetMinorNumber");
	if (!minor)
		return NVML_ERROR_INVALID_ARGUMENT;
	*minor = d->minor;
	return NVML_SUCCESS;
}

static nvmlReturn_t pci_info(const char *fn, nvmlDevice_t device, nvmlPciInfo_t *p)
{
	unsigned int dom = 0, bus = 0, slot = 0, func = 0;

	DEV(fn);
	if (!p)
		return NVML_ERROR_INVALID_ARGUMENT;
	memset(p, 0, sizeof(*p));
	sscanf(d->bus_id, "%x:%x:%x.%x", &dom, &bus, &slot, &func);
	snprintf(p->busId, sizeof(p->busId), "%s", d->bus_id);
	snprintf(p->busIdLegacy, sizeof(p->busIdLegacy), "%04x:%02x:%02x.%x", dom, bus, slot, func);
	p->domain = dom;
	p->bus = bus;
	p->device = slot;
	p->pciDeviceId = d->pci_device_id;
	p->pciSubSystemId = d->pci_subsys_id;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *p) { return pci_info("nvmlDeviceGetPciInfo_v3", device, p); }
EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *p) { return pci_info("nvmlDeviceGetPciInfo_v2", device, p); }
EXPORT nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *p) { return pci_info("nvmlDeviceGetPciInfo", device, p); }

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *m)
{
	DEV("nvmlDeviceGetMemoryInfo");
	if (!m)
		return NVML_ERROR_INVALID_ARGUMENT;
	m->total = d->mem_total;
	/* v1 counts the reserved memory as used */
	m->used = d->mem_used + d->mem_reserved;
	m->free = d->mem_free;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *m)
{
	DEV("nvmlDeviceGetMemoryInfo_v2");
	if (!m)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (NVML_STRUCT_VERSION_OF(m->version) != 2)
		return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
	m->total = d->mem_total;
	m->reserved = d->mem_reserved;
	m->used = d->mem_used;
	m->free = d->mem_free;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
	DEV("nvmlDeviceGetCudaComputeCapability");
	if (!major || !minor)
		return NVML_ERROR_INVALID_ARGUMENT;
	*major = d->cc_major;
	*minor = d->cc_minor;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, unsigned int *arch)
{
	DEV("nvmlDeviceGetArchitecture");
	if (!arch)
		return NVML_ERROR_INVALID_ARGUMENT;
	switch (d->cc_major) {
	case 7: *arch = d->cc_minor >= 5 ? NVML_DEVICE_ARCH_TURING : NVML_DEVICE_ARCH_VOLTA; break;
	case 8: *arch = d->cc_minor == 9 ? NVML_DEVICE_ARCH_ADA : NVML_DEVICE_ARCH_AMPERE; break;
	case 9: *arch = NVML_DEVICE_ARCH_HOPPER; break;
	case 10: case 12: *arch = NVML_DEVICE_ARCH_BLACKWELL; break;
	default: *arch = NVML_DEVICE_ARCH_UNKNOWN;
	}
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t device, unsigned int *brand)
{
	DEV("nvmlDeviceGetBrand");
	if (!brand)
		return NVML_ERROR_INVALID_ARGUMENT;
	*brand = NVML_BRAND_NVIDIA;	/* "Product Brand : NVIDIA" in the captures */
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetAddressingMode(nvmlDevice_t device, nvmlDeviceAddressingMode_t *mode)
{
	DEV("nvmlDeviceGetAddressingMode");
	if (!mode)
		return NVML_ERROR_INVALID_ARGUMENT;
	mode->value = NVML_DEVICE_ADDRESSING_MODE_NONE;	/* "Addressing Mode : None" */
	return NVML_SUCCESS;
}

/* "Fabric State : N/A" in the captures: the GPUs are not in an NVLink fabric. */
EXPORT nvmlReturn_t nvmlDeviceGetGpuFabricInfo(nvmlDevice_t device, void *info)
{
	DEV("nvmlDeviceGetGpuFabricInfo");
	(void)info;
	return NVML_ERROR_NOT_SUPPORTED;
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t device, void *info)
{
	DEV("nvmlDeviceGetGpuFabricInfoV");
	(void)info;
	return NVML_ERROR_NOT_SUPPORTED;
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, unsigned int *mode)
{
	DEV("nvmlDeviceGetComputeMode");
	if (!mode)
		return NVML_ERROR_INVALID_ARGUMENT;
	*mode = NVML_COMPUTEMODE_DEFAULT;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t a, nvmlDevice_t b, unsigned int *level)
{
	struct dev *x, *y;

	ENTER("nvmlDeviceGetTopologyCommonAncestor");
	x = D(a);
	y = D(b);
	if (!x || !y || !level)
		return NVML_ERROR_INVALID_ARGUMENT;
	/* Not in the captures (1 GPU): distinct GPUs are only linked through the system. */
	*level = x == y ? 0 : NVML_TOPOLOGY_SYSTEM;
	return NVML_SUCCESS;
}

/* ---- MIG ---- */

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *current, unsigned int *pending)
{
	DEV("nvmlDeviceGetMigMode");
	if (d->is_mig || !S.nprofiles)
		return NVML_ERROR_NOT_SUPPORTED;	/* no MIG profiles: not MIG capable */
	if (!current || !pending)
		return NVML_ERROR_INVALID_ARGUMENT;
	*current = d->mig_current;
	*pending = d->mig_pending;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *is_mig)
{
	DEV("nvmlDeviceIsMigDeviceHandle");
	if (!is_mig)
		return NVML_ERROR_INVALID_ARGUMENT;
	*is_mig = (unsigned int)d->is_mig;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count)
{
	DEV("nvmlDeviceGetMaxMigDeviceCount");
	if (!count)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (d->is_mig || !S.nprofiles)
		return NVML_ERROR_NOT_SUPPORTED;
	*count = 7;	/* A100/H100/H200: at most 7 GPU instances */
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, nvmlDevice_t *mig)
{
	DEV("nvmlDeviceGetMigDeviceHandleByIndex");
	if (!mig || d->is_mig)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (!d->mig_current)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (index >= d->ngis)
		return NVML_ERROR_NOT_FOUND;
	*mig = (nvmlDevice_t)d->gis[index].mig;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t device, nvmlDevice_t *parent)
{
	DEV("nvmlDeviceGetDeviceHandleFromMigDeviceHandle");
	if (!parent || !d->is_mig)
		return NVML_ERROR_INVALID_ARGUMENT;
	*parent = (nvmlDevice_t)d->parent;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id)
{
	DEV("nvmlDeviceGetGpuInstanceId");
	if (!id || !d->is_mig)
		return NVML_ERROR_INVALID_ARGUMENT;
	*id = d->gi->id;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id)
{
	DEV("nvmlDeviceGetComputeInstanceId");
	if (!id || !d->is_mig)
		return NVML_ERROR_INVALID_ARGUMENT;
	*id = 0;	/* one compute instance spanning each GPU instance */
	return NVML_SUCCESS;
}

static unsigned int ci_profile_of(unsigned int slices)
{
	switch (slices) {
	case 1: return NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE;
	case 2: return NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE;
	case 3: return NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE;
	case 4: return NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE;
	case 6: return NVML_COMPUTE_INSTANCE_PROFILE_6_SLICE;
	case 7: return NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE;
	case 8: return NVML_COMPUTE_INSTANCE_PROFILE_8_SLICE;
	}
	return NVML_COMPUTE_INSTANCE_PROFILE_COUNT;
}

static int ci_slices_of(unsigned int profile)
{
	static const int s[] = { 1, 2, 3, 4, 7, 8, 6 };

	return profile < 7 ? s[profile] : -1;
}

EXPORT nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t device, nvmlDeviceAttributes_t *a)
{
	DEV("nvmlDeviceGetAttributes_v2");
	if (!a)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (!d->is_mig)
		return NVML_ERROR_NOT_SUPPORTED;	/* only MIG devices have attributes */
	const struct profile *p = d->gi->prof;

	a->multiprocessorCount = p->sm;
	a->sharedCopyEngineCount = p->ce;
	a->sharedDecoderCount = p->dec;
	a->sharedEncoderCount = p->enc;
	a->sharedJpegCount = p->jpeg;
	a->sharedOfaCount = p->ofa;
	a->gpuInstanceSliceCount = p->slices;
	a->computeInstanceSliceCount = p->slices;
	a->memorySizeMB = p->mem_mib;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetAttributes(nvmlDevice_t device, nvmlDeviceAttributes_t *a)
{
	trace("nvmlDeviceGetAttributes");
	return nvmlDeviceGetAttributes_v2(device, a);
}

static const struct profile *profile_by_index(unsigned int index)
{
	for (unsigned int i = 0; i < S.nprofiles; i++)
		if (S.profiles[i].index == index)
			return &S.profiles[i];
	return 0;
}

static nvmlReturn_t gi_profile(struct dev *d, unsigned int index, const struct profile **out)
{
	if (d->is_mig)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (index >= NVML_GPU_INSTANCE_PROFILE_COUNT)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (!S.nprofiles)
		return NVML_ERROR_NOT_SUPPORTED;
	*out = profile_by_index(index);
	return *out ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED;
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(nvmlDevice_t device, unsigned int index,
							 nvmlGpuInstanceProfileInfo_t *info)
{
	const struct profile *p;
	nvmlReturn_t r;

	DEV("nvmlDeviceGetGpuInstanceProfileInfo");
	if (!info)
		return NVML_ERROR_INVALID_ARGUMENT;
	r = gi_profile(d, index, &p);
	if (r != NVML_SUCCESS)
		return r;
	memset(info, 0, sizeof(*info));
	info->id = p->id;
	info->isP2pSupported = p->p2p;
	info->sliceCount = p->slices;
	info->instanceCount = p->instances;
	info->multiprocessorCount = p->sm;
	info->copyEngineCount = p->ce;
	info->decoderCount = p->dec;
	info->encoderCount = p->enc;
	info->jpegCount = p->jpeg;
	info->ofaCount = p->ofa;
	info->memorySizeMB = p->mem_mib;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(nvmlDevice_t device, unsigned int index,
							  nvmlGpuInstanceProfileInfo_v2_t *info)
{
	const struct profile *p;
	nvmlReturn_t r;
	unsigned int ver;

	DEV("nvmlDeviceGetGpuInstanceProfileInfoV");
	if (!info)
		return NVML_ERROR_INVALID_ARGUMENT;
	ver = NVML_STRUCT_VERSION_OF(info->version);
	if (ver != 2 && ver != 3)
		return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
	r = gi_profile(d, index, &p);
	if (r != NVML_SUCCESS)
		return r;
	char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];

	snprintf(name, sizeof(name), "MIG %s", p->name);
	if (ver == 2) {
		nvmlGpuInstanceProfileInfo_v2_t *v = info;

		v->id = p->id;
		v->isP2pSupported = p->p2p;
		v->sliceCount = p->slices;
		v->instanceCount = p->instances;
		v->multiprocessorCount = p->sm;
		v->copyEngineCount = p->ce;
		v->decoderCount = p->dec;
		v->encoderCount = p->enc;
		v->jpegCount = p->jpeg;
		v->ofaCount = p->ofa;
		v->memorySizeMB = p->mem_mib;
		memcpy(v->name, name, sizeof(name));
	} else {
		nvmlGpuInstanceProfileInfo_v3_t *v = (nvmlGpuInstanceProfileInfo_v3_t *)(void *)info;

		v->id = p->id;
		v->sliceCount = p->slices;
		v->instanceCount = p->instances;
		v->multiprocessorCount = p->sm;
		v->copyEngineCount = p->ce;
		v->decoderCount = p->dec;
		v->encoderCount = p->enc;
		v->jpegCount = p->jpeg;
		v->ofaCount = p->ofa;
		v->memorySizeMB = p->mem_mib;
		memcpy(v->name, name, sizeof(name));
		v->capabilities = p->p2p ? NVML_GPU_INSTANCE_PROFILE_CAPS_P2P : 0;
	}
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceById(nvmlDevice_t device, unsigned int id, nvmlGpuInstance_t *gi)
{
	DEV("nvmlDeviceGetGpuInstanceById");
	if (!gi || d->is_mig)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (!d->mig_current)
		return NVML_ERROR_INVALID_ARGUMENT;
	for (unsigned int i = 0; i < d->ngis; i++)
		if (d->gis[i].id == id)
			return *gi = (nvmlGpuInstance_t)&d->gis[i], NVML_SUCCESS;
	return NVML_ERROR_NOT_FOUND;
}

EXPORT nvmlReturn_t nvmlGpuInstanceGetInfo(nvmlGpuInstance_t gpuInstance, nvmlGpuInstanceInfo_t *info)
{
	struct gi *g;

	ENTER("nvmlGpuInstanceGetInfo");
	g = GI(gpuInstance);
	if (!g || !info)
		return NVML_ERROR_INVALID_ARGUMENT;
	info->device = (nvmlDevice_t)g->gpu;
	info->id = g->id;
	info->profileId = g->prof->id;
	info->placement.start = g->start;
	info->placement.size = g->size;
	return NVML_SUCCESS;
}

static nvmlReturn_t ci_profile(struct gi *g, unsigned int profile, unsigned int engine, int *slices)
{
	if (!g || profile >= NVML_COMPUTE_INSTANCE_PROFILE_COUNT || engine != NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
		return NVML_ERROR_INVALID_ARGUMENT;
	*slices = ci_slices_of(profile);
	if (*slices < 0 || (unsigned int)*slices > g->prof->slices)
		return NVML_ERROR_NOT_SUPPORTED;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfo(nvmlGpuInstance_t gpuInstance, unsigned int profile,
								  unsigned int engine,
								  nvmlComputeInstanceProfileInfo_t *info)
{
	struct gi *g;
	int slices;
	nvmlReturn_t r;

	ENTER("nvmlGpuInstanceGetComputeInstanceProfileInfo");
	g = GI(gpuInstance);
	if (!info)
		return NVML_ERROR_INVALID_ARGUMENT;
	r = ci_profile(g, profile, engine, &slices);
	if (r != NVML_SUCCESS)
		return r;
	memset(info, 0, sizeof(*info));
	info->id = profile;
	info->sliceCount = (unsigned int)slices;
	info->instanceCount = g->prof->slices / (unsigned int)slices;
	info->multiprocessorCount = g->prof->sm * (unsigned int)slices / g->prof->slices;
	info->sharedCopyEngineCount = g->prof->ce;
	info->sharedDecoderCount = g->prof->dec;
	info->sharedEncoderCount = g->prof->enc;
	info->sharedJpegCount = g->prof->jpeg;
	info->sharedOfaCount = g->prof->ofa;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfoV(nvmlGpuInstance_t gpuInstance,
								   unsigned int profile, unsigned int engine,
								   nvmlComputeInstanceProfileInfo_v3_t *info)
{
	struct gi *g;
	int slices;
	nvmlReturn_t r;
	unsigned int ver;

	ENTER("nvmlGpuInstanceGetComputeInstanceProfileInfoV");
	g = GI(gpuInstance);
	if (!info)
		return NVML_ERROR_INVALID_ARGUMENT;
	ver = NVML_STRUCT_VERSION_OF(info->version);
	if (ver != 2 && ver != 3)
		return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
	r = ci_profile(g, profile, engine, &slices);
	if (r != NVML_SUCCESS)
		return r;
	info->id = profile;
	info->sliceCount = (unsigned int)slices;
	info->instanceCount = g->prof->slices / (unsigned int)slices;
	info->multiprocessorCount = g->prof->sm * (unsigned int)slices / g->prof->slices;
	info->sharedCopyEngineCount = g->prof->ce;
	info->sharedDecoderCount = g->prof->dec;
	info->sharedEncoderCount = g->prof->enc;
	info->sharedJpegCount = g->prof->jpeg;
	info->sharedOfaCount = g->prof->ofa;
	if ((unsigned int)slices == g->prof->slices)
		snprintf(info->name, sizeof(info->name), "MIG %s", g->prof->name);
	else
		snprintf(info->name, sizeof(info->name), "MIG %dc.%s", slices, g->prof->name);
	if (ver == 3)
		info->capabilities = 0;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlGpuInstanceGetComputeInstanceById(nvmlGpuInstance_t gpuInstance, unsigned int id,
							   nvmlComputeInstance_t *ci)
{
	struct gi *g;

	ENTER("nvmlGpuInstanceGetComputeInstanceById");
	g = GI(gpuInstance);
	if (!g || !ci)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (id != 0)
		return NVML_ERROR_NOT_FOUND;
	*ci = (nvmlComputeInstance_t)g->mig;
	return NVML_SUCCESS;
}

static nvmlReturn_t ci_info(nvmlComputeInstance_t computeInstance, nvmlComputeInstanceInfo_t *info)
{
	struct dev *m = CI(computeInstance);

	if (!m || !info)
		return NVML_ERROR_INVALID_ARGUMENT;
	info->device = (nvmlDevice_t)m->parent;
	info->gpuInstance = (nvmlGpuInstance_t)m->gi;
	info->id = 0;
	info->profileId = ci_profile_of(m->gi->prof->slices);
	info->placement.start = 0;
	info->placement.size = m->gi->prof->slices;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlComputeInstanceGetInfo_v2(nvmlComputeInstance_t ci, nvmlComputeInstanceInfo_t *info)
{
	ENTER("nvmlComputeInstanceGetInfo_v2");
	return ci_info(ci, info);
}

EXPORT nvmlReturn_t nvmlComputeInstanceGetInfo(nvmlComputeInstance_t ci, nvmlComputeInstanceInfo_t *info)
{
	ENTER("nvmlComputeInstanceGetInfo");
	return ci_info(ci, info);
}

/* ---- events (health checks) ---- */

struct nvmlEventSet_st {
	int magic;
};

EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
	ENTER("nvmlEventSetCreate");
	if (!set)
		return NVML_ERROR_INVALID_ARGUMENT;
	*set = calloc(1, sizeof(**set));
	if (!*set)
		return NVML_ERROR_UNKNOWN;
	(*set)->magic = 0x6e766d6c;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
	ENTER("nvmlEventSetFree");
	if (!set || set->magic != 0x6e766d6c)
		return NVML_ERROR_INVALID_ARGUMENT;
	set->magic = 0;
	free(set);
	return NVML_SUCCESS;
}

#define SUPPORTED_EVENTS (nvmlEventTypeSingleBitEccError | nvmlEventTypeDoubleBitEccError | \
			  nvmlEventTypePState | nvmlEventTypeXidCriticalError | nvmlEventTypeClock)

EXPORT nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, unsigned long long *types)
{
	DEV("nvmlDeviceGetSupportedEventTypes");
	if (!types)
		return NVML_ERROR_INVALID_ARGUMENT;
	*types = SUPPORTED_EVENTS;
	return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types, nvmlEventSet_t set)
{
	DEV("nvmlDeviceRegisterEvents");
	if (!set || set->magic != 0x6e766d6c)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (types & ~SUPPORTED_EVENTS)
		return NVML_ERROR_NOT_SUPPORTED;
	return NVML_SUCCESS;
}

/* No GPU ever raises an event here: waits time out, so health loops idle. */
static nvmlReturn_t event_wait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	if (!set || set->magic != 0x6e766d6c || !data)
		return NVML_ERROR_INVALID_ARGUMENT;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return NVML_ERROR_TIMEOUT;
}

EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int ms)
{
	ENTER("nvmlEventSetWait_v2");
	return event_wait(set, data, ms);
}

EXPORT nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int ms)
{
	ENTER("nvmlEventSetWait");
	return event_wait(set, data, ms);
}

/* ---- everything else: loud ---- */

#define X(name) \
	EXPORT nvmlReturn_t name(void); \
	EXPORT nvmlReturn_t name(void) { return not_implemented(#name); }
#include "nvml-unimplemented.h"
#undef X
