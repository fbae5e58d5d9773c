/* The check registry and the report: results, JSON, JUnit XML. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/check.h"

const struct check_def check_defs[] = {
	{ "cluster.api", "cluster", "the API server answers and accepts the credentials" },
	{ "cluster.gpu-nodes", "cluster", "the cluster has GPU nodes" },
	{ "cluster.runtimeclass", "cluster", "RuntimeClass nvidia exists with handler nvidia" },
	{ "node.ready", "cluster", "the GPU node is Ready" },
	{ "node.gpu-resource", "cluster", "the node advertises nvidia.com/gpu (the device plugin runs)" },
	{ "node.ssh", "nodes", "gpuctl reaches the node over SSH (host key checked)" },
	{ "node.driver", "nodes", "nvidia-smi works and the driver meets the minimum version" },
	{ "node.gpus", "nodes", "the driver sees GPUs, as many as the node's labels say" },
	{ "node.kernel-modules", "nodes", "the kernel modules nvidia and nvidia_uvm are loaded" },
	{ "node.containerd", "nodes", "containerd is installed and answers on its socket" },
	{ "node.toolkit", "nodes", "the NVIDIA Container Toolkit (nvidia-container-runtime) is installed" },
	{ "node.nvidia-runtime", "nodes", "containerd's configuration has the nvidia runtime and its binary exists" },
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
	struct check_result *c = &r->v[r->n++];
	memset(c, 0, sizeof(*c));
	c->id = d ? d->id : "unknown";
	c->target = xstrdup(target);
	c->status = st;
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	c->message = buf_detach(&b);
	c->hint = hint ? xstrdup(hint) : NULL;
}

void check_report_take(struct check_report *dst, struct check_report *src)
{
	for (size_t i = 0; i < src->n; i++) {
		if (dst->n == dst->cap) {
			dst->cap = dst->cap ? 2 * dst->cap : 16;
			dst->v = xrealloc(dst->v, dst->cap * sizeof(*dst->v));
		}
		dst->v[dst->n++] = src->v[i];
	}
	free(src->v);
	memset(src, 0, sizeof(*src));
}

void check_report_release(struct check_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].target);
		free(r->v[i].message);
		free(r->v[i].hint);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

void check_report_count(const struct check_report *r, size_t out[4])
{
	memset(out, 0, 4 * sizeof(*out));
	for (size_t i = 0; i < r->n; i++)
		out[r->v[i].status]++;
}

cJSON *check_report_json(const struct check_report *r)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "apiVersion", "gpuctl.io/v1alpha1");
	cJSON_AddStringToObject(doc, "kind", "ValidationResult");
	cJSON *arr = cJSON_AddArrayToObject(doc, "checks");
	for (size_t i = 0; i < r->n; i++) {
		const struct check_result *c = &r->v[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", c->id);
		cJSON_AddStringToObject(o, "target", c->target);
		cJSON_AddStringToObject(o, "status", check_status_name(c->status));
		cJSON_AddStringToObject(o, "message", c->message);
		if (c->hint)
			cJSON_AddStringToObject(o, "hint", c->hint);
		cJSON_AddItemToArray(arr, o);
	}
	size_t n[4];
	check_report_count(r, n);
	cJSON *s = cJSON_AddObjectToObject(doc, "summary");
	cJSON_AddNumberToObject(s, "total", (double)r->n);
	cJSON_AddNumberToObject(s, "passed", (double)n[CHECK_PASS]);
	cJSON_AddNumberToObject(s, "warnings", (double)n[CHECK_WARN]);
	cJSON_AddNumberToObject(s, "failed", (double)n[CHECK_FAIL]);
	cJSON_AddNumberToObject(s, "skipped", (double)n[CHECK_SKIP]);
	cJSON_AddBoolToObject(doc, "ok", n[CHECK_FAIL] == 0);
	return doc;
}

/* XML text or attribute value: escape markup and drop what XML 1.0 cannot carry. */
static void xml_esc(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '&': buf_adds(b, "&amp;"); break;
		case '<': buf_adds(b, "&lt;"); break;
		case '>': buf_adds(b, "&gt;"); break;
		case '"': buf_adds(b, "&quot;"); break;
		case '\'': buf_adds(b, "&apos;"); break;
		case '\n': buf_adds(b, "&#10;"); break;
		case '\t': buf_adds(b, "&#9;"); break;
		default:
			if (*p >= 0x20 || *p == '\r')
				buf_addc(b, (char)*p);
		}
	}
}

static void xml_text(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '&')
			buf_adds(b, "&amp;");
		else if (*p == '<')
			buf_adds(b, "&lt;");
		else if (*p == '>')
			buf_adds(b, "&gt;");
		else if (*p >= 0x20 || *p == '\n' || *p == '\t' || *p == '\r')
			buf_addc(b, (char)*p);
	}
}

char *check_report_junit(const struct check_report *r)
{
	struct buf b = BUF_INIT;
	size_t n[4];
	double total = 0;
	check_report_count(r, n);
	for (size_t i = 0; i < r->n; i++)
		total += r->v[i].seconds;
	buf_addf(&b,
		 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		 "<testsuites name=\"gpuctl validate\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"%.3f\">\n",
		 r->n, n[CHECK_FAIL], n[CHECK_SKIP], total);
	/* one suite per target, in the order targets first appear */
	char *done = xcalloc(r->n ? r->n : 1, 1);
	for (size_t i = 0; i < r->n; i++) {
		if (done[i])
			continue;
		const char *target = r->v[i].target;
		size_t tests = 0, fails = 0, skips = 0;
		double t = 0;
		for (size_t k = i; k < r->n; k++)
			if (!strcmp(r->v[k].target, target)) {
				tests++;
				fails += r->v[k].status == CHECK_FAIL;
				skips += r->v[k].status == CHECK_SKIP;
				t += r->v[k].seconds;
			}
		int is_cluster = !strcmp(target, "cluster");
		buf_adds(&b, "  <testsuite name=\"");
		if (!is_cluster)
			buf_adds(&b, "node/");
		xml_esc(&b, target);
		buf_addf(&b, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"%.3f\">\n", tests, fails,
			 skips, t);
		for (size_t k = i; k < r->n; k++) {
			const struct check_result *c = &r->v[k];
			if (strcmp(c->target, target))
				continue;
			done[k] = 1;
			buf_adds(&b, "    <testcase classname=\"gpuctl.validate.");
			xml_esc(&b, is_cluster ? "cluster" : "node.");
			if (!is_cluster)
				xml_esc(&b, target);
			buf_adds(&b, "\" name=\"");
			xml_esc(&b, c->id);
			buf_addf(&b, "\" time=\"%.3f\">\n", c->seconds);
			if (c->status == CHECK_FAIL) {
				buf_adds(&b, "      <failure type=\"fail\" message=\"");
				xml_esc(&b, c->message);
				buf_adds(&b, "\">");
				xml_text(&b, c->message);
				if (c->hint) {
					buf_adds(&b, "\nhint: ");
					xml_text(&b, c->hint);
				}
				buf_adds(&b, "</failure>\n");
			} else if (c->status == CHECK_SKIP) {
				buf_adds(&b, "      <skipped message=\"");
				xml_esc(&b, c->message);
				buf_adds(&b, "\"/>\n");
			} else {
				buf_adds(&b, "      <system-out>");
				if (c->status == CHECK_WARN)
					buf_adds(&b, "warning: ");
				xml_text(&b, c->message);
				if (c->hint) {
					buf_adds(&b, "\nhint: ");
					xml_text(&b, c->hint);
				}
				buf_adds(&b, "</system-out>\n");
			}
			buf_adds(&b, "    </testcase>\n");
		}
		buf_adds(&b, "  </testsuite>\n");
	}
	free(done);
	buf_adds(&b, "</testsuites>\n");
	return buf_detach(&b);
}
