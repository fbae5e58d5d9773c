/* Parsers for nvidia-smi output and the driver's /proc files. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/nvsmi.h"

static char *trim_dup(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

/* Split one CSV line of nvidia-smi (", " separated, no quoting) into fields. */
static char **split_csv(const char *line, size_t len, size_t *nf)
{
	char **f = NULL;
	size_t n = 0;
	const char *p = line, *end = line + len;
	for (;;) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *e = c ? c : end;
		f = xrealloc(f, (n + 1) * sizeof(char *));
		f[n++] = trim_dup(p, (size_t)(e - p));
		if (!c)
			break;
		p = c + 1;
	}
	*nf = n;
	return f;
}

static void free_fields(char **f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i]);
	free(f);
}

/* "memory.total [MiB]" -> "memory.total" */
static void strip_unit_suffix(char *h)
{
	char *b = strchr(h, '[');
	if (b) {
		while (b > h && b[-1] == ' ')
			b--;
		*b = '\0';
	}
}

/* "81559 MiB" -> 81559; "[N/A]" or "N/A" -> -1 */
static long mib_value(const char *v)
{
	char *end;
	long x = strtol(v, &end, 10);
	if (end == v)
		return -1;
	return x;
}

static const char *first_line(const char *text, size_t *len)
{
	while (*text == '\n' || *text == '\r')
		text++;
	*len = strcspn(text, "\r\n");
	return text;
}

static int looks_like_failure(const char *text)
{
	return strstr(text, "NVIDIA-SMI has failed") || strstr(text, "couldn't communicate with the NVIDIA driver") ||
	       strstr(text, "No devices were found") || strstr(text, "command not found");
}

void nvsmi_gpus_release(struct nvsmi_gpus *g)
{
	for (size_t i = 0; i < g->n; i++) {
		struct gpu_info *x = &g->gpus[i];
		free(x->uuid);
		free(x->name);
		free(x->driver_version);
		free(x->mig_mode);
		free(x->compute_mode);
		free(x->pci_bus_id);
	}
	free(g->gpus);
	g->gpus = NULL;
	g->n = 0;
}

int nvsmi_parse_query_gpu(const char *csv, struct nvsmi_gpus *out, struct gerr *err)
{
	out->gpus = NULL;
	out->n = 0;
	size_t hl;
	const char *h = first_line(csv, &hl);
	if (looks_like_failure(csv))
		return gerr_set(err, GERR_PARSE, "nvidia-smi failed: %.*s", (int)hl, h);
	size_t nh;
	char **hdr = split_csv(h, hl, &nh);
	int col[10];
	static const char *const names[] = { "index", "uuid", "name", "driver_version", "memory.total",
					     "memory.used", "memory.free", "mig.mode.current", "compute_mode",
					     "pci.bus_id" };
	for (int k = 0; k < 10; k++)
		col[k] = -1;
	for (size_t i = 0; i < nh; i++) {
		strip_unit_suffix(hdr[i]);
		for (int k = 0; k < 10; k++)
			if (!strcmp(hdr[i], names[k]))
				col[k] = (int)i;
	}
	free_fields(hdr, nh);
	if (col[0] < 0 || col[1] < 0 || col[2] < 0) {
		return gerr_set(err, GERR_PARSE,
				"nvidia-smi --query-gpu: unexpected output (no index/uuid/name header): \"%.*s\"", (int)hl,
				h);
	}
	const char *p = h + hl;
	int lineno = 1;
	while (*p) {
		while (*p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		size_t ll = strcspn(p, "\r\n");
		lineno++;
		size_t nf;
		char **f = split_csv(p, ll, &nf);
		if (nf != nh) {
			free_fields(f, nf);
			nvsmi_gpus_release(out);
			return gerr_set(err, GERR_PARSE, "nvidia-smi --query-gpu: line %d has %zu fields, expected %zu",
					lineno, nf, nh);
		}
		out->gpus = xrealloc(out->gpus, (out->n + 1) * sizeof(*out->gpus));
		struct gpu_info *g = &out->gpus[out->n++];
		memset(g, 0, sizeof(*g));
		char *end;
		g->index = (int)strtol(f[col[0]], &end, 10);
		if (end == f[col[0]] || *end) {
			gerr_set(err, GERR_PARSE, "nvidia-smi --query-gpu: line %d: index \"%s\" is not a number", lineno,
				 f[col[0]]);
			free_fields(f, nf);
			nvsmi_gpus_release(out);
			return -1;
		}
		g->uuid = xstrdup(f[col[1]]);
		g->name = xstrdup(f[col[2]]);
		g->driver_version = col[3] >= 0 ? xstrdup(f[col[3]]) : NULL;
		g->memory_total_mib = col[4] >= 0 ? mib_value(f[col[4]]) : -1;
		g->memory_used_mib = col[5] >= 0 ? mib_value(f[col[5]]) : -1;
		g->memory_free_mib = col[6] >= 0 ? mib_value(f[col[6]]) : -1;
		g->mig_mode = col[7] >= 0 ? xstrdup(f[col[7]]) : NULL;
		g->compute_mode = col[8] >= 0 ? xstrdup(f[col[8]]) : NULL;
		g->pci_bus_id = col[9] >= 0 ? xstrdup(f[col[9]]) : NULL;
		free_fields(f, nf);
		p += ll;
	}
	return 0;
}

static char *value_after(const char *text, const char *label)
{
	const char *p = strstr(text, label);
	if (!p)
		return NULL;
	p += strlen(label);
	while (*p == ' ' || *p == ':')
		p++;
	size_t n = 0;
	while (p[n] && !isspace((unsigned char)p[n]) && p[n] != '|')
		n++;
	return n ? xstrndup(p, n) : NULL;
}

int nvsmi_parse_banner(const char *text, char **driver, char **cuda, struct gerr *err)
{
	/* newer drivers write "KMD Version:" and "CUDA UMD Version:" */
	*driver = value_after(text, "Driver Version:");
	if (!*driver)
		*driver = value_after(text, "KMD Version:");
	*cuda = value_after(text, "CUDA Version:");
	if (!*cuda)
		*cuda = value_after(text, "CUDA UMD Version:");
	if (!*driver) {
		size_t l;
		const char *f = first_line(text, &l);
		free(*cuda);
		*cuda = NULL;
		if (looks_like_failure(text))
			return gerr_set(err, GERR_PARSE, "nvidia-smi failed: %.*s", (int)l, f);
		return gerr_set(err, GERR_PARSE, "nvidia-smi printed no \"Driver Version\": \"%.*s\"", (int)l, f);
	}
	return 0;
}

int nvsmi_parse_proc_version(const char *text, char **driver, struct gerr *err)
{
	/* NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build ... */
	const char *p = strstr(text, "NVRM version:");
	if (!p)
		return gerr_set(err, GERR_PARSE, "/proc/driver/nvidia/version has no \"NVRM version\" line");
	const char *eol = p + strcspn(p, "\n");
	for (const char *q = p; q < eol; q++) {
		if (!isdigit((unsigned char)*q) || (q > p && !isspace((unsigned char)q[-1])))
			continue;
		size_t n = 0;
		int dots = 0;
		while (q + n < eol && (isdigit((unsigned char)q[n]) || q[n] == '.')) {
			dots += q[n] == '.';
			n++;
		}
		if (dots >= 1 && (q + n == eol || isspace((unsigned char)q[n]))) {
			*driver = xstrndup(q, n);
			return 0;
		}
	}
	return gerr_set(err, GERR_PARSE, "/proc/driver/nvidia/version: no version number on the NVRM line");
}

void proc_modules_parse(const char *text, struct nv_modules *m)
{
	memset(m, 0, sizeof(*m));
	const char *p = text;
	while (*p) {
		size_t n = strcspn(p, " \n");
		if (n == 6 && !strncmp(p, "nvidia", 6))
			m->nvidia = 1;
		else if (n == 10 && !strncmp(p, "nvidia_uvm", 10))
			m->nvidia_uvm = 1;
		else if (n == 14 && !strncmp(p, "nvidia_modeset", 14))
			m->nvidia_modeset = 1;
		else if (n == 10 && !strncmp(p, "nvidia_drm", 10))
			m->nvidia_drm = 1;
		else if (n == 14 && !strncmp(p, "nvidia_peermem", 14))
			m->nvidia_peermem = 1;
		p += strcspn(p, "\n");
		if (*p)
			p++;
	}
}

int version_cmp(const char *a, const char *b)
{
	if (!a || !b || !isdigit((unsigned char)*a) || !isdigit((unsigned char)*b))
		return -2;
	while (*a || *b) {
		char *ea, *eb;
		long x = *a ? strtol(a, &ea, 10) : 0;
		long y = *b ? strtol(b, &eb, 10) : 0;
		if (*a && (*ea != '.' && *ea != '\0'))
			return -2;
		if (*b && (*eb != '.' && *eb != '\0'))
			return -2;
		if (x != y)
			return x < y ? -1 : 1;
		a = *a ? (*ea ? ea + 1 : ea) : a;
		b = *b ? (*eb ? eb + 1 : eb) : b;
	}
	return 0;
}
