/* The check registry and the results of validate's checks, which become
 * the rows of its report (src/out renders them). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/check.h"
#include "gpuctl/strpool.h"

const struct check_def check_defs[] = {
	{ "cluster.api", "cluster", "the API server answers and accepts the credentials" },
	{ "cluster.gpu-nodes", "cluster", "the cluster has GPU nodes" },
	{ "cluster.runtimeclass", "cluster", "RuntimeClass nvidia exists with handler nvidia" },
	{ "cluster.device-plugin", "cluster", "one NVIDIA device plugin DaemonSet, ready on every node it targets" },
	{ "cluster.conflicts", "cluster", "no two device plugins, no DRA driver beside the plugin on a node, no operator driver on a host-driver node" },
	{ "cluster.dcgm-exporter", "cluster", "the DCGM exporter, when deployed, runs and its metrics answer" },
	{ "node.ready", "cluster", "the GPU node is Ready" },
	{ "node.labels", "cluster", "the node carries the labels gpuctl label sets (label.defaults)" },
	{ "node.taints", "cluster", "the node carries the taints gpuctl taint sets (taint.defaults)" },
	{ "node.gpu-resource", "cluster", "the node advertises nvidia.com/gpu (the device plugin runs)" },
	{ "node.device-plugin", "cluster", "a device plugin pod runs ready on the node and registered its GPUs" },
	{ "node.gpu-health", "cluster", "every GPU the node advertises is allocatable (none marked unhealthy)" },
	{ "node.sharing", "cluster", "the sharing config the node's label names exists, is valid and is in use (capacity, GFD's replicas and strategy)" },
	{ "node.ssh", "nodes", "gpuctl reaches the node over SSH (host key checked)" },
	{ "node.driver", "nodes", "nvidia-smi works and the driver meets the minimum version" },
	{ "node.gpus", "nodes", "the driver sees GPUs, as many as the node's labels say" },
	{ "node.product", "nodes", "the GPU product the node's label advertises is what nvidia-smi reports" },
	{ "node.compute-mode", "nodes", "every GPU's compute mode suits the node's sharing (EXCLUSIVE_PROCESS only under MPS)" },
	{ "node.kernel-modules", "nodes", "the kernel modules nvidia and nvidia_uvm are loaded" },
	{ "node.containerd", "nodes", "containerd is installed and answers on its socket" },
	{ "node.toolkit", "nodes", "the NVIDIA Container Toolkit (nvidia-container-runtime) is installed" },
	{ "node.nvidia-runtime", "nodes", "containerd's configuration has the nvidia runtime and its binary exists" },
	{ "node.plugin-config", "nodes", "the device plugin on the node loaded the config the node's label (or the default) names" },
	/* with --smoke: gpuctl smoke-test's checks (gpuctl-smoke-test(1)) */
	{ "smoke.gpu", "smoke", "a pod given one GPU runs nvidia-smi -L and names a GPU of the node" },
	{ "smoke.allocatable", "smoke", "the node advertises physical GPUs x replicas" },
	{ "smoke.concurrent", "smoke", "as many pods as the node advertises run at the same moment" },
	{ "smoke.same-gpu", "smoke", "the pods sharing a GPU all saw the node's physical GPU(s)" },
	{ "smoke.overcommit", "smoke", "one pod more stays Pending for lack of the GPU resource" },
	{ "smoke.mps", "smoke", "under MPS, the GPUs are in compute mode EXCLUSIVE_PROCESS" },
	{ "smoke.mig", "smoke", "under MIG, the MIG config applied and its devices allocatable" },
	{ "smoke.measure", "smoke", "the pods' compute load: each pod's share, the aggregate, the fairness" },
	{ NULL, NULL, NULL },
};

const struct check_def *check_find(const char *id)
{
	for (const struct check_def *d = check_defs; d->id; d++)
		if (!strcmp(d->id, id))
			return d;
	return NULL;
}

const char *check_status_name(enum check_status st)
{
	static const char *const names[] = { "pass", "warn", "fail", "skip" };
	return names[st];
}

void check_add(struct check_report *r, const char *id, const char *target, enum check_status st, const char *hint,
	       const char *fmt, ...)
{
	const struct check_def *d = check_find(id);
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	if (!r->pool)
		r->pool = strpool_new();
	struct check_result *c = &r->v[r->n++];
	memset(c, 0, sizeof(*c));
	c->id = d ? d->id : "unknown";
	c->target = strpool_intern(r->pool, target ? target : "");
	c->status = st;
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	c->message = strpool_intern_n(r->pool, b.s, b.len);
	buf_release(&b);
	c->hint = strpool_intern(r->pool, hint);
}

/* Point the n results at v to their texts in pool (copied there). */
static void repool(struct check_result *v, size_t n, struct strpool *pool)
{
	for (size_t i = 0; i < n; i++) {
		v[i].target = strpool_intern(pool, v[i].target);
		v[i].message = strpool_intern(pool, v[i].message);
		v[i].hint = strpool_intern(pool, v[i].hint);
	}
}

void check_report_take(struct check_report *dst, struct check_report *src)
{
	/* one pool for both: the larger one, so that the texts of thousands of
	 * nodes are not copied to add a few */
	if (!dst->pool) {
		dst->pool = src->pool;
	} else if (src->pool && strpool_bytes(dst->pool) < strpool_bytes(src->pool)) {
		repool(dst->v, dst->n, src->pool);
		strpool_free(dst->pool);
		dst->pool = src->pool;
	} else if (src->pool) {
		repool(src->v, src->n, dst->pool);
		strpool_free(src->pool);
	}
	src->pool = NULL;
	if (!dst->n) {
		free(dst->v);
		dst->v = src->v;
		dst->n = src->n;
		dst->cap = src->cap;
		src->v = NULL;
	} else if (src->n) {
		if (dst->cap - dst->n < src->n) {
			dst->cap = dst->n + src->n;
			dst->v = xrealloc(dst->v, dst->cap * sizeof(*dst->v));
		}
		memcpy(dst->v + dst->n, src->v, src->n * sizeof(*src->v));
		dst->n += src->n;
	}
	free(src->v);
	memset(src, 0, sizeof(*src));
}

void check_report_release(struct check_report *r)
{
	free(r->v);
	strpool_free(r->pool);
	memset(r, 0, sizeof(*r));
}

void check_report_count(const struct check_report *r, size_t out[4])
{
	memset(out, 0, 4 * sizeof(*out));
	for (size_t i = 0; i < r->n; i++)
		out[r->v[i].status]++;
}

enum report_status check_report_status(enum check_status st)
{
	switch (st) {
	case CHECK_PASS: return REPORT_PASS;
	case CHECK_WARN: return REPORT_WARN;
	case CHECK_FAIL: return REPORT_FAIL;
	case CHECK_SKIP: return REPORT_SKIP;
	}
	return REPORT_FAIL;
}

void check_report_rows(const struct check_report *r, struct report *out)
{
	report_reserve(out, r->n);
	for (size_t i = 0; i < r->n; i++) {
		const struct check_result *c = &r->v[i];
		struct report_row *row =
			report_add(out, c->target, c->id, check_report_status(c->status), c->hint, "%s", c->message);
		row->seconds = c->seconds;
	}
}

void check_report_move_rows(struct check_report *r, struct report *out)
{
	/* the results' pool becomes the report's when it has none yet: the
	 * rows then point at the same texts, nothing is copied */
	if (r->pool && report_adopt_pool(out, r->pool)) {
		r->pool = NULL;
		report_reserve(out, r->n);
		for (size_t i = 0; i < r->n; i++) {
			const struct check_result *c = &r->v[i];
			report_add_texts(out, c->target, c->id, check_report_status(c->status), c->hint, c->message)->seconds =
				c->seconds;
		}
	} else {
		check_report_rows(r, out);
	}
	check_report_release(r);
}

cJSON *check_report_json(const struct check_report *r)
{
	struct report rep;
	report_init(&rep, "ValidationResult", "validate");
	check_report_rows(r, &rep);
	cJSON *doc = report_json(&rep);
	report_release(&rep);
	return doc;
}

char *check_report_junit(const struct check_report *r)
{
	struct report rep;
	report_init(&rep, "ValidationResult", "validate");
	check_report_rows(r, &rep);
	char *xml = report_junit(&rep);
	report_release(&rep);
	return xml;
}
