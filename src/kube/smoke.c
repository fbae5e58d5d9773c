/* gpuctl smoke-test, the pure half: a pod's log, the plan of a node, the
 * judgement of each check from what was observed, the pod's rendering. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gpuctl/buf.h"
#include "gpuctl/json.h"
#include "gpuctl/nodes.h"
#include "gpuctl/owned.h"
#include "gpuctl/sharing.h"
#include "gpuctl/smoke.h"
#include "gpuctl/util.h"

/* ---- the log ---- */

static void add_gpu(struct smoke_log *l, const char *name, size_t nlen, const char *uuid, size_t ulen)
{
	for (size_t i = 0; i < l->ngpus; i++)
		if (strlen(l->gpus[i].uuid) == ulen && !memcmp(l->gpus[i].uuid, uuid, ulen)) {
			if (name && !l->gpus[i].name)
				l->gpus[i].name = xstrndup(name, nlen);
			return;
		}
	l->gpus = xrealloc(l->gpus, (l->ngpus + 1) * sizeof(*l->gpus));
	l->gpus[l->ngpus++] = (struct smoke_gpu){ name ? xstrndup(name, nlen) : NULL, xstrndup(uuid, ulen), NULL };
}

static int starts(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && !memcmp(s, prefix, n);
}

/* "(UUID: X)" at the end of the line: X, or NULL. */
static const char *uuid_in(const char *s, size_t len, size_t *ulen)
{
	const char *end = s + len;
	while (end > s && (end[-1] == ' ' || end[-1] == '\r'))
		end--;
	if (end == s || end[-1] != ')')
		return NULL;
	for (const char *p = s; p + 7 <= end; p++)
		if (!memcmp(p, "(UUID: ", 7)) {
			*ulen = (size_t)(end - 1 - (p + 7));
			return *ulen ? p + 7 : NULL;
		}
	return NULL;
}

/* {"gpuload":1,...}: the load's result or error; only the first counts (the
 * script's own error line may follow the program's). */
static void parse_load(struct smoke_log *l, const char *s, size_t len)
{
	cJSON *o = cJSON_ParseWithLength(s, len);
	const cJSON *mark = cJSON_GetObjectItemCaseSensitive(o, "gpuload");
	if (l->measured || !cJSON_IsObject(o) || !cJSON_IsNumber(mark) || mark->valuedouble != 1) {
		cJSON_Delete(o);
		return;
	}
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "gflops");
	l->measured = 1;
	if (e || !cJSON_IsNumber(g)) {
		l->load_error = xstrdup(cJSON_IsString(e) && *e->valuestring ? e->valuestring : "no gflops in its line");
	} else {
		const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "seconds");
		const cJSON *la = cJSON_GetObjectItemCaseSensitive(o, "launches");
		l->gflops = g->valuedouble;
		l->seconds = cJSON_IsNumber(sec) ? sec->valuedouble : 0;
		l->launches = cJSON_IsNumber(la) ? (long)la->valuedouble : 0;
	}
	cJSON_Delete(o);
}

static void parse_line(struct smoke_log *l, const char *s, size_t len)
{
	while (len && (s[len - 1] == '\r' || s[len - 1] == ' '))
		len--;
	size_t ulen = 0;
	const char *uuid;
	if (len == strlen(SMOKE_READY_MARKER) && !memcmp(s, SMOKE_READY_MARKER, len)) {
		l->ready = 1;
	} else if (starts(s, len, "{\"gpuload\"")) {
		parse_load(l, s, len);
	} else if (starts(s, len, "GPU ") && (uuid = uuid_in(s, len, &ulen))) {
		/* GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-f3c1c444-...) */
		const char *colon = memchr(s, ':', len);
		if (!colon || colon > uuid)
			return;
		const char *name = colon + 1;
		while (*name == ' ')
			name++;
		const char *ne = uuid - 7; /* the "(UUID: " */
		while (ne > name && ne[-1] == ' ')
			ne--;
		add_gpu(l, name, (size_t)(ne - name), uuid, ulen);
	} else if (len > 2 && s[0] == ' ' && (uuid = uuid_in(s, len, &ulen)) && memmem(s, len, "MIG", 3)) {
		/*   MIG 1g.10gb     Device  0: (UUID: MIG-...) */
		char *u = xstrndup(uuid, ulen);
		if (!strv_has(l->migs, u))
			l->migs = strv_add(l->migs, u);
		free(u);
	} else if (starts(s, len, "GPU-")) {
		/* GPU-f3c1c444-..., Exclusive_Process */
		const char *comma = memchr(s, ',', len);
		if (!comma)
			return;
		add_gpu(l, NULL, 0, s, (size_t)(comma - s));
		const char *m = comma + 1;
		while (m < s + len && *m == ' ')
			m++;
		for (size_t i = 0; i < l->ngpus; i++)
			if (strlen(l->gpus[i].uuid) == (size_t)(comma - s) && !memcmp(l->gpus[i].uuid, s, (size_t)(comma - s))) {
				free(l->gpus[i].compute_mode);
				l->gpus[i].compute_mode = xstrndup(m, (size_t)(s + len - m));
			}
	}
}

void smoke_log_parse(const char *text, size_t len, struct smoke_log *out)
{
	memset(out, 0, sizeof(*out));
	const char *p = text ? text : "", *end = p + (text ? len : 0);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		parse_line(out, p, n);
		p += n + (nl ? 1 : 0);
	}
}

void smoke_log_release(struct smoke_log *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->ngpus; i++) {
		free(l->gpus[i].name);
		free(l->gpus[i].uuid);
		free(l->gpus[i].compute_mode);
	}
	free(l->gpus);
	strv_free(l->migs);
	free(l->load_error);
	memset(l, 0, sizeof(*l));
}

size_t smoke_log_uuids(const struct smoke_log *l, struct buf *out)
{
	size_t n = 0;
	if (l->ngpus) {
		for (size_t i = 0; i < l->ngpus; i++)
			buf_addf(out, "%s%s", n++ ? ", " : "", l->gpus[i].uuid);
	} else {
		for (size_t i = 0; l->migs && l->migs[i]; i++)
			buf_addf(out, "%s%s", n++ ? ", " : "", l->migs[i]);
	}
	return n;
}

int smoke_product_matches(const char *gpu_name, const char *product)
{
	if (!gpu_name || !product)
		return 0;
	struct gfd_product gp;
	gfd_product_parse(product, &gp);
	size_t n = strlen(gpu_name);
	if (n != gp.base_len)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = gpu_name[i] == ' ' ? '-' : gpu_name[i];
		if (product[i] != c)
			return 0;
	}
	return 1;
}

/* ---- the script ---- */

char *smoke_script(const struct smoke_script_opts *o)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "set -e\n"
		     "nvidia-smi -L\n"
		     "nvidia-smi --query-gpu=uuid,compute_mode --format=csv,noheader\n"
		     "echo '" SMOKE_READY_MARKER "'\n");
	if (o && o->measure_s > 0) {
		/* the program prints its JSON line; when it cannot (not started, killed)
		 * the script says so in one, and goes on to its sleep */
		buf_addf(&b, SMOKE_LOAD_DIR "/gpuctl-gpuload --seconds %ld", o->measure_s);
		if (o->start_at > 0)
			buf_addf(&b, " --start-at %.3f", o->start_at);
		buf_adds(&b, " || echo \"{\\\"gpuload\\\":1,\\\"error\\\":\\\"gpuctl-gpuload exited with status $?\\\"}\"\n");
	}
	if (o && o->sleep_s > 0)
		buf_addf(&b, "exec sleep %ld\n", o->sleep_s);
	return buf_detach(&b);
}

/* ---- planning ---- */

static long quantity(const cJSON *q)
{
	long v;
	if (cJSON_IsNumber(q))
		return q->valuedouble >= 0 ? (long)q->valuedouble : 0;
	if (cJSON_IsString(q) && kube_quantity_int(q->valuestring, &v) == 0)
		return v;
	return 0;
}

static long container_gpus(const cJSON *c, const char *resource)
{
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(c, "resources");
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "limits"), resource);
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "requests"), resource);
	/* extended resources: requests, when given, equal the limits */
	return lim ? quantity(lim) : quantity(req);
}

long smoke_pod_gpus(const cJSON *pod, const char *resource)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	long sum = 0, init = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
		sum += container_gpus(c, resource);
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "initContainers")) {
		long g = container_gpus(c, resource);
		init = g > init ? g : init;
	}
	return sum > init ? sum : init;
}

/* Add the nvidia.com/ resources a container names to the strv. */
static char **resource_names(char **names, const cJSON *c)
{
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(c, "resources");
	static const char *const kinds[] = { "limits", "requests" };
	for (size_t k = 0; k < 2; k++) {
		const cJSON *r;
		cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(res, kinds[k]))
			if (r->string && !strncmp(r->string, "nvidia.com/", 11) && !strv_has(names, r->string))
				names = strv_add(names, r->string);
	}
	return names;
}

void smoke_usage_add(cJSON *u, const cJSON *p)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(p, "spec");
	const char *node = json_str(spec, "nodeName");
	const char *phase = json_str(cJSON_GetObjectItemCaseSensitive(p, "status"), "phase");
	if (!node || !*node || (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))))
		return;
	char **names = NULL;
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
		names = resource_names(names, c);
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "initContainers"))
		names = resource_names(names, c);
	for (size_t i = 0; names && names[i]; i++) {
		long g = smoke_pod_gpus(p, names[i]);
		if (!g)
			continue;
		cJSON *n = cJSON_GetObjectItemCaseSensitive(u, node);
		if (!n)
			n = cJSON_AddObjectToObject(u, node);
		cJSON *have = cJSON_GetObjectItemCaseSensitive(n, names[i]);
		if (have)
			cJSON_SetNumberValue(have, have->valuedouble + (double)g);
		else
			cJSON_AddNumberToObject(n, names[i], (double)g);
	}
	strv_free(names);
}

cJSON *smoke_usage(const cJSON *pods)
{
	cJSON *u = cJSON_CreateObject();
	const cJSON *p;
	cJSON_ArrayForEach(p, pods)
		smoke_usage_add(u, p);
	return u;
}

void smoke_verdict_set(struct smoke_verdict *v, enum report_status st, const char *hint, const char *fmt, ...)
{
	smoke_verdict_release(v);
	v->status = st;
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	v->message = buf_detach(&b);
	v->hint = hint ? xstrdup(hint) : NULL;
}

void smoke_verdict_release(struct smoke_verdict *v)
{
	free(v->message);
	free(v->hint);
	v->message = v->hint = NULL;
	v->status = REPORT_SKIP;
}

static long label_long(const cJSON *labels, const char *key)
{
	const char *s = json_str(labels, key);
	if (!s || !*s)
		return 0;
	char *end;
	long v = strtol(s, &end, 10);
	return *end || v < 0 ? 0 : v;
}

static int node_is_mig(const cJSON *node)
{
	const cJSON *labels = json_get2(node, "metadata", "labels");
	const char *ms = json_str(labels, SMOKE_MIG_STRATEGY_LABEL);
	if (ms && (!strcmp(ms, "single") || !strcmp(ms, "mixed")))
		return 1;
	/* GFD labels the strategy whenever it is not none, from the config the
	 * plugin uses too: a node it labels without one does not use MIG, even
	 * while the kubelet still lists the MIG resources of an earlier layout (it
	 * keeps a resource whose plugin stopped advertising it: the last count
	 * with 0 allocatable for a grace period, then 0) */
	if (json_str(labels, "nvidia.com/gfd.timestamp"))
		return 0;
	const cJSON *r;
	cJSON_ArrayForEach(r, json_get2(node, "status", "capacity"))
		if (r->string && !strncmp(r->string, "nvidia.com/mig-", 15) && node_resource(node, "capacity", r->string) > 0)
			return 1;
	return 0;
}

void smoke_plan_node(const cJSON *node, const cJSON *usage, const struct smoke_plan_opts *o, struct smoke_plan *p)
{
	memset(p, 0, sizeof(*p));
	const cJSON *labels = json_get2(node, "metadata", "labels");
	const char *name = node_name(node);
	const char *host = json_str(labels, "kubernetes.io/hostname");
	p->node = xstrdup(name);
	p->hostname = xstrdup(host && *host ? host : name);
	const char *product = node_gpu_product(node);
	p->product = product ? xstrdup(product) : NULL;
	/* a shared GPU renamed (--rename) is advertised as nvidia.com/gpu.shared;
	 * with the mixed MIG strategy only nvidia.com/mig-<profile> may be there */
	const char *res = node_gpu_resource(node, "allocatable");
	p->resource = xstrdup(res ? res : SMOKE_RESOURCE);
	long alloc = node_resource(node, "allocatable", p->resource);
	p->allocatable = alloc < 0 ? 0 : alloc;
	const cJSON *used = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(usage, name), p->resource);
	p->used = cJSON_IsNumber(used) ? (long)used->valuedouble : 0;
	p->free = p->allocatable > p->used ? p->allocatable - p->used : 0;

	p->strategy = json_str(labels, SHARING_STRATEGY_LABEL) ? xstrdup(json_str(labels, SHARING_STRATEGY_LABEL)) : NULL;
	p->physical = label_long(labels, SHARING_COUNT_LABEL);
	p->replicas = label_long(labels, SHARING_REPLICAS_LABEL);
	if (!p->replicas && o->configs) {
		/* no GFD: the config the plugin uses on this node says */
		const char *key = json_str(labels, SHARING_CONFIG_LABEL);
		long r = 0;
		int mps = 0;
		if (sharing_config_model(json_str(o->configs, key ? key : o->default_key ? o->default_key : ""), &r,
					 &mps) == 0) {
			p->replicas = r;
			if (r > 1 && !p->strategy)
				p->strategy = xstrdup(mps ? "mps" : "time-slicing");
			if (!p->physical && r > 0 && p->allocatable > 0)
				p->physical = p->allocatable / r;
		}
	}
	int shared = p->replicas > 1 ||
		     (p->strategy && (!strcmp(p->strategy, "time-slicing") || !strcmp(p->strategy, "mps")));
	p->sharing = shared && !o->no_sharing;
	p->mps = p->sharing && p->strategy && !strcmp(p->strategy, "mps");
	p->mig = node_is_mig(node);
	smoke_judge_mig(node, &p->mig_v);

	/* check 1 */
	long capacity = node_resource(node, "capacity", p->resource);
	if (p->allocatable <= 0 && capacity > 0) {
		/* the kubelet keeps the capacity but zeroes what is allocatable while the
		 * plugin is gone (restarting, crashed) or when every GPU is unhealthy */
		char *hint = xasprintf("look at the device plugin pod on the node (restarting or crashed?) and the "
				       "GPUs' health: gpuctl validate %s", name);
		smoke_verdict_set(&p->gpu, REPORT_FAIL, hint,
				  "the node has %ld %s but none allocatable: its device plugin is not registered with the "
				  "kubelet right now, or every GPU is unhealthy",
				  capacity, p->resource);
		free(hint);
	} else if (p->allocatable <= 0) {
		smoke_verdict_set(&p->gpu, REPORT_FAIL,
				  "deploy the NVIDIA device plugin: gpuctl deploy (then check the node with gpuctl validate)",
				  "the node advertises no allocatable %s (nor %s or nvidia.com/mig-*)", SMOKE_RESOURCE,
				  SMOKE_SHARED_RESOURCE);
	} else if (p->free <= 0) {
		smoke_verdict_set(&p->gpu, REPORT_SKIP, "run the smoke test when the node has a free GPU",
				  "skipped: every %s of the node is in use (%ld of %ld)", p->resource, p->used,
				  p->allocatable);
	} else {
		p->gpu_run = 1;
	}

	/* check 2 */
	if (!shared) {
		smoke_verdict_set(&p->share, REPORT_SKIP, NULL, "skipped: the node does not share its GPUs (%s not above 1)",
				  SHARING_REPLICAS_LABEL);
	} else if (o->no_sharing) {
		smoke_verdict_set(&p->share, REPORT_SKIP, NULL, "skipped: --no-sharing");
	} else if (!p->gpu_run) {
		smoke_verdict_set(&p->share, REPORT_SKIP, NULL, "skipped: %s",
				  p->gpu.status == REPORT_FAIL ? "no GPU to share" : "every slot is in use");
	} else if (o->pods > 0 && o->pods > p->free) {
		smoke_verdict_set(&p->share, REPORT_SKIP, "give --pods at most the free slots, or free them",
				  "skipped: --pods %d but only %ld of %ld %s are free", o->pods, p->free, p->allocatable,
				  p->resource);
	} else {
		p->share_run = 1;
		p->n = o->pods > 0 ? o->pods : p->free;
	}
	if (p->share_run && p->n == p->free) {
		p->overcommit_run = 1;
	} else if (p->share_run) {
		smoke_verdict_set(&p->overcommit, REPORT_SKIP, NULL,
				  "skipped: --pods %ld leaves %ld slot(s) free: one more pod would fit", p->n, p->free - p->n);
	} else {
		smoke_verdict_set(&p->overcommit, p->share.status, NULL, "%s", p->share.message);
	}
	if (shared)
		smoke_judge_allocatable(p, &p->allocatable_v);
	else
		smoke_verdict_set(&p->allocatable_v, REPORT_SKIP, NULL, "%s", p->share.message);
}

void smoke_plan_release(struct smoke_plan *p)
{
	free(p->node);
	free(p->hostname);
	free(p->resource);
	free(p->product);
	free(p->strategy);
	smoke_verdict_release(&p->gpu);
	smoke_verdict_release(&p->share);
	smoke_verdict_release(&p->overcommit);
	smoke_verdict_release(&p->allocatable_v);
	smoke_verdict_release(&p->mig_v);
	memset(p, 0, sizeof(*p));
}

/* ---- pods ---- */

const char *smoke_role_name(enum smoke_role r)
{
	switch (r) {
	case SMOKE_ROLE_GPU: return "gpu";
	case SMOKE_ROLE_SHARE: return "share";
	case SMOKE_ROLE_OVER: return "overcommit";
	}
	return "?";
}

void smoke_pod_release(struct smoke_pod *p)
{
	free(p->name);
	free(p->phase);
	free(p->reason);
	free(p->message);
	free(p->log_tail);
	smoke_log_release(&p->log);
	gerr_clear(&p->create_err);
	gerr_clear(&p->log_err);
	memset(p, 0, sizeof(*p));
}

static void set_str(char **dst, const char *s)
{
	if (!s || !*s)
		return;
	free(*dst);
	*dst = xstrdup(s);
}

void smoke_pod_observe(struct smoke_pod *p, const cJSON *pod, double now)
{
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(pod, "status");
	const char *phase = json_str(st, "phase");
	if (phase && *phase)
		set_str(&p->phase, phase);
	const char *node = json_str(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "nodeName");
	if (node && *node)
		p->scheduled = 1;
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(st, "conditions")) {
		const char *type = json_str(c, "type"), *cs = json_str(c, "status");
		if (!type || !cs || strcmp(type, "PodScheduled"))
			continue;
		if (!strcmp(cs, "True")) {
			p->scheduled = 1;
			p->unschedulable = 0;
		} else {
			const char *reason = json_str(c, "reason");
			p->unschedulable = reason && !strcmp(reason, "Unschedulable");
			set_str(&p->reason, reason);
			set_str(&p->message, json_str(c, "message"));
		}
	}
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(st, "containerStatuses")) {
		const cJSON *state = cJSON_GetObjectItemCaseSensitive(c, "state");
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(state, "waiting");
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(state, "terminated");
		const cJSON *s = w ? w : t;
		if (!s && cJSON_GetObjectItemCaseSensitive(state, "running")) {
			/* running: an earlier waiting reason (ContainerCreating) is over */
			free(p->reason);
			free(p->message);
			p->reason = p->message = NULL;
		}
		if (s) {
			set_str(&p->reason, json_str(s, "reason"));
			const char *m = json_str(s, "message");
			if (m && *m)
				set_str(&p->message, m);
			else if (json_str(s, "reason")) {
				free(p->message);
				p->message = NULL;
			}
		}
		const cJSON *ec = cJSON_GetObjectItemCaseSensitive(t, "exitCode");
		if (cJSON_IsNumber(ec))
			p->exit_code = ec->valueint;
	}
	if (p->phase && !strcmp(p->phase, "Running") && !p->t_running)
		p->t_running = now;
	if (smoke_pod_done(p) && !p->t_done)
		p->t_done = now;
}

int smoke_pod_done(const struct smoke_pod *p)
{
	return p->phase && (!strcmp(p->phase, "Succeeded") || !strcmp(p->phase, "Failed"));
}

char *smoke_pod_state(const struct smoke_pod *p)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, p->phase ? p->phase : p->created ? "not seen" : "not created");
	if (p->reason || p->message) {
		buf_adds(&b, " (");
		if (p->reason)
			buf_adds(&b, p->reason);
		if (p->message) {
			/* one line */
			size_t n = strcspn(p->message, "\n");
			buf_addf(&b, "%s%.*s", p->reason ? ": " : "", (int)n, p->message);
		}
		buf_adds(&b, ")");
	}
	return buf_detach(&b);
}

/* ---- judgements ---- */

void smoke_judge_gpu(const struct smoke_pod *p, const char *product, struct smoke_verdict *v)
{
	char *state = smoke_pod_state(p);
	if (!p->phase || strcmp(p->phase, "Succeeded")) {
		struct buf h = BUF_INIT;
		buf_addf(&h, "pod %s: %s", p->name, state);
		if (p->log_tail && *p->log_tail)
			buf_addf(&h, "; its log ends: %s", p->log_tail);
		smoke_verdict_set(v, REPORT_FAIL, h.s, "the single-GPU pod did not succeed: %s", state);
		buf_release(&h);
	} else if (!p->log.ngpus && !p->log.migs) {
		smoke_verdict_set(v, REPORT_FAIL, p->log_tail && *p->log_tail ? p->log_tail : NULL,
				  "the single-GPU pod succeeded but nvidia-smi -L named no GPU");
	} else {
		const char *name = p->log.ngpus ? p->log.gpus[0].name : NULL;
		if (product && name && !smoke_product_matches(name, product)) {
			smoke_verdict_set(v, REPORT_FAIL, "the pod got another GPU than the node advertises: check GFD",
					  "the pod saw %s, but the node's %s is %s", name, SMOKE_PRODUCT_LABEL, product);
		} else {
			struct buf u = BUF_INIT;
			smoke_log_uuids(&p->log, &u);
			smoke_verdict_set(v, REPORT_PASS, NULL, "a pod ran on %s (%s) in %.1f s", name ? name : "a MIG device",
					  u.s, p->t_done > p->t_created && p->t_created > 0 ? p->t_done - p->t_created : 0.0);
			buf_release(&u);
		}
	}
	free(state);
}

void smoke_judge_allocatable(const struct smoke_plan *p, struct smoke_verdict *v)
{
	if (!p->physical) {
		smoke_verdict_set(v, REPORT_SKIP, "GFD labels the node with nvidia.com/gpu.count: is it running?",
				  "skipped: the node has no %s label (physical GPUs unknown)", SHARING_COUNT_LABEL);
	} else if (!p->replicas) {
		smoke_verdict_set(v, REPORT_SKIP, NULL, "skipped: the node has no %s label", SHARING_REPLICAS_LABEL);
	} else if (p->allocatable == p->physical * p->replicas) {
		smoke_verdict_set(v, REPORT_PASS, NULL, "%s %ld = %ld GPU(s) x %ld replicas", p->resource, p->allocatable,
				  p->physical, p->replicas);
	} else {
		smoke_verdict_set(v, REPORT_FAIL, "see the device plugin's log; gpuctl slice configures the replicas",
				  "%s %ld, expected %ld GPU(s) x %ld replicas = %ld", p->resource, p->allocatable,
				  p->physical, p->replicas, p->physical * p->replicas);
	}
}

void smoke_judge_concurrent(long n, long most, double seconds, struct smoke_verdict *v)
{
	if (most >= n)
		smoke_verdict_set(v, REPORT_PASS, NULL, "%ld pods Running at once after %.1f s", n, seconds);
	else
		smoke_verdict_set(v, REPORT_FAIL, NULL, "at most %ld of %ld pods were Running at once", most, n);
}

void smoke_judge_same_gpu(struct smoke_pod *const *pods, size_t n, long physical, cJSON *details,
			  struct smoke_verdict *v)
{
	char **distinct = NULL;
	struct buf missing = BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		const struct smoke_log *l = &pods[i]->log;
		cJSON *arr = details ? cJSON_AddArrayToObject(details, pods[i]->name) : NULL;
		size_t k = 0;
		for (size_t j = 0; j < l->ngpus; j++, k++) {
			if (!strv_has(distinct, l->gpus[j].uuid))
				distinct = strv_add(distinct, l->gpus[j].uuid);
			if (arr)
				cJSON_AddItemToArray(arr, cJSON_CreateString(l->gpus[j].uuid));
		}
		for (size_t j = 0; !l->ngpus && l->migs && l->migs[j]; j++, k++) {
			if (!strv_has(distinct, l->migs[j]))
				distinct = strv_add(distinct, l->migs[j]);
			if (arr)
				cJSON_AddItemToArray(arr, cJSON_CreateString(l->migs[j]));
		}
		if (!k)
			buf_addf(&missing, "%s%s", missing.len ? ", " : "", pods[i]->name);
	}
	size_t d = strv_len(distinct);
	if (missing.len)
		smoke_verdict_set(v, REPORT_FAIL, "see the pods' logs (--keep leaves them)", "no GPU UUID in the log of %s",
				  missing.s);
	else if (physical > 0 && (long)d > physical)
		smoke_verdict_set(v, REPORT_FAIL, NULL, "%zu pods saw %zu different GPUs, but the node has %ld", n, d,
				  physical);
	else if (physical > 0)
		smoke_verdict_set(v, REPORT_PASS, NULL, "%zu pods shared %zu GPU(s) (the node has %ld)", n, d, physical);
	else
		smoke_verdict_set(v, REPORT_PASS, NULL, "%zu pods shared %zu GPU(s) (physical GPUs unknown: no %s)", n, d,
				  SHARING_COUNT_LABEL);
	strv_free(distinct);
	buf_release(&missing);
}

int smoke_judge_overcommit(const struct smoke_pod *p, const char *resource, struct smoke_verdict *v)
{
	if (p->scheduled || (p->phase && strcmp(p->phase, "Pending"))) {
		char *state = smoke_pod_state(p);
		smoke_verdict_set(v, REPORT_FAIL, "the node has more slots than it advertises, or a pod ended meanwhile",
				  "one pod more than the free slots was scheduled: %s", state);
		free(state);
		return 1;
	}
	if (!p->unschedulable)
		return 0;
	if (!p->message || !strstr(p->message, resource)) {
		smoke_verdict_set(v, REPORT_FAIL, NULL, "the extra pod is Unschedulable for another reason: %s",
				  p->message ? p->message : "(no message)");
		return 1;
	}
	smoke_verdict_set(v, REPORT_PASS, NULL, "one pod more stays Pending: %.*s", (int)strcspn(p->message, "\n"),
			  p->message);
	return 1;
}

void smoke_judge_mps(struct smoke_pod *const *pods, size_t n, struct smoke_verdict *v)
{
	struct buf bad = BUF_INIT;
	size_t seen = 0;
	for (size_t i = 0; i < n; i++) {
		const struct smoke_log *l = &pods[i]->log;
		for (size_t j = 0; j < l->ngpus; j++) {
			const char *m = l->gpus[j].compute_mode;
			seen++;
			if (!m || strcmp(m, "Exclusive_Process"))
				buf_addf(&bad, "%s%s: %s", bad.len ? ", " : "", pods[i]->name, m ? m : "(no compute mode)");
		}
	}
	if (bad.len)
		smoke_verdict_set(v, REPORT_FAIL, "the device plugin's MPS control daemon sets Exclusive_Process: see its log",
				  "compute mode is not Exclusive_Process: %s", bad.s);
	else if (!seen)
		smoke_verdict_set(v, REPORT_FAIL, NULL, "no compute mode in the pods' logs");
	else
		smoke_verdict_set(v, REPORT_PASS, NULL, "%zu pods saw compute mode Exclusive_Process", n);
	buf_release(&bad);
}

void smoke_judge_mig(const cJSON *node, struct smoke_verdict *v)
{
	if (!node_is_mig(node)) {
		smoke_verdict_set(v, REPORT_SKIP, NULL, "skipped: the node does not use MIG");
		return;
	}
	const cJSON *labels = json_get2(node, "metadata", "labels");
	const char *state = json_str(labels, SHARING_MIG_STATE_LABEL);
	const char *strategy = json_str(labels, SMOKE_MIG_STRATEGY_LABEL);
	if (state && strcmp(state, "success")) {
		smoke_verdict_set(v, REPORT_FAIL, "see the MIG manager's log (GPU Operator)", "%s is %s, not success",
				  SHARING_MIG_STATE_LABEL, state);
		return;
	}
	/* GFD's verdict on a layout the single strategy cannot advertise (its
	 * newInvalidMigStrategyLabeler): product <GPU>-MIG-INVALID, count 0; the
	 * device plugin refuses to start on it ("invalid MIG configuration") */
	const char *product = node_gpu_product(node);
	struct gfd_product gp;
	gfd_product_parse(product, &gp);
	if (gfd_product_mig_invalid(&gp)) {
		smoke_verdict_set(v, REPORT_FAIL,
				  "give every GPU of the node the same MIG layout (e.g. all-1g.10gb), or advertise each "
				  "profile as its own resource: gpuctl slice mig --mig-strategy mixed",
				  "the single MIG strategy found MIG devices of more than one profile, a GPU in MIG mode "
				  "without MIG devices, or MIG on only some GPUs (nvidia.com/gpu.product=%s)", product);
		return;
	}
	struct buf have = BUF_INIT, zero = BUF_INIT;
	const cJSON *r;
	cJSON_ArrayForEach(r, json_get2(node, "status", "capacity")) {
		/* a resource of an earlier layout the kubelet still lists at 0 */
		if (!r->string || strncmp(r->string, "nvidia.com/mig-", 15) || node_resource(node, "capacity", r->string) <= 0)
			continue;
		long a = node_resource(node, "allocatable", r->string);
		buf_addf(a > 0 ? &have : &zero, "%s%s %ld", (a > 0 ? have.len : zero.len) ? ", " : "", r->string,
			 a < 0 ? 0 : a);
	}
	if (strategy && !strcmp(strategy, "single")) {
		long a = node_resource(node, "allocatable", SMOKE_RESOURCE);
		buf_addf(a > 0 ? &have : &zero, "%s%s %ld", (a > 0 ? have.len : zero.len) ? ", " : "", SMOKE_RESOURCE,
			 a < 0 ? 0 : a);
	}
	if (zero.len)
		smoke_verdict_set(v, REPORT_FAIL, "see the device plugin's log", "MIG devices not allocatable: %s", zero.s);
	else if (!have.len)
		smoke_verdict_set(v, REPORT_FAIL, "see the device plugin's log (mig strategy mixed advertises nvidia.com/mig-*)",
				  "no MIG device is allocatable");
	else
		smoke_verdict_set(v, REPORT_PASS, NULL, "MIG %s: %s%s", strategy ? strategy : "devices", have.s,
				  state ? "" : " (no " SHARING_MIG_STATE_LABEL " label: not managed by the MIG manager)");
	buf_release(&have);
	buf_release(&zero);
}

/* ---- smoke.measure ---- */

void smoke_judge_measure(struct smoke_pod *const *pods, size_t n, const struct smoke_pod *solo, cJSON *details,
			 struct smoke_verdict *v)
{
	struct buf bad = BUF_INIT;
	const struct smoke_pod *first_bad = NULL;
	double sum = 0, lo = 0, hi = 0;
	size_t ok = 0;
	for (size_t i = 0; i < n; i++) {
		const struct smoke_log *l = &pods[i]->log;
		if (!l->measured || l->load_error) {
			if (!first_bad)
				first_bad = pods[i];
			buf_addf(&bad, "%s%s: %s", bad.len ? "; " : "", pods[i]->name,
				 l->measured ? l->load_error : "no gpuctl-gpuload line in its log");
			continue;
		}
		sum += l->gflops;
		lo = ok && lo < l->gflops ? lo : l->gflops;
		hi = ok && hi > l->gflops ? hi : l->gflops;
		ok++;
	}
	double solo_g = solo && solo->log.measured && !solo->log.load_error ? solo->log.gflops : 0;
	double fair = hi > 0 ? lo / hi : 0;
	if (details) {
		cJSON *pd = cJSON_AddObjectToObject(details, "pods");
		for (size_t i = 0; i < n; i++) {
			const struct smoke_log *l = &pods[i]->log;
			cJSON *e = cJSON_AddObjectToObject(pd, pods[i]->name);
			if (!l->measured || l->load_error) {
				cJSON_AddStringToObject(e, "error", l->measured ? l->load_error : "no line");
				continue;
			}
			cJSON_AddNumberToObject(e, "gflops", l->gflops);
			cJSON_AddNumberToObject(e, "share", sum > 0 ? l->gflops / sum : 0);
		}
		cJSON_AddNumberToObject(details, "gflops", sum);
		if (solo_g > 0)
			cJSON_AddNumberToObject(details, "solo", solo_g);
		if (ok == n && n)
			cJSON_AddNumberToObject(details, "fairness", fair);
	}
	if (first_bad) {
		smoke_verdict_set(v, REPORT_FAIL, bad.s, "%zu of %zu pods measured nothing (%s)", n - ok, n,
				  first_bad->log.measured ? "gpuctl-gpuload failed" : "no result in time");
		buf_release(&bad);
		return;
	}
	buf_release(&bad);
	if (!n) {
		smoke_verdict_set(v, REPORT_SKIP, NULL, "skipped: no pods measured");
		return;
	}
	struct buf m = BUF_INIT;
	buf_addf(&m, "%zu pods at once: %.1f GFLOP/s in all", n, sum);
	if (solo_g > 0)
		buf_addf(&m, " (%.0f%% of one pod alone)", 100 * sum / solo_g);
	buf_addf(&m, ", each %.1f-%.1f GFLOP/s (share %.0f-%.0f%%), fairness %.2f", lo, hi, sum > 0 ? 100 * lo / sum : 0,
		 sum > 0 ? 100 * hi / sum : 0, fair);
	if (fair < 0.5)
		smoke_verdict_set(v, REPORT_WARN,
				  "time-slicing gives no fairness guarantee: the GPU runs one pod's kernels at a time and "
				  "a pod that launches longer kernels gets more of it; MPS with a thread percentage per "
				  "client bounds each pod's share",
				  "%s", m.s);
	else
		smoke_verdict_set(v, REPORT_PASS, NULL, "%s", m.s);
	buf_release(&m);
}

/* ---- rendering ---- */

static cJSON *toleration(const char *key, const char *value, const char *effect)
{
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "key", key);
	if (value && *value) {
		cJSON_AddStringToObject(t, "operator", "Equal");
		cJSON_AddStringToObject(t, "value", value);
	} else {
		cJSON_AddStringToObject(t, "operator", "Exists");
	}
	if (effect && *effect)
		cJSON_AddStringToObject(t, "effect", effect);
	return t;
}

int smoke_pod_render(const struct render_ctx *rc, const struct smoke_pod_spec *s, cJSON **pod, struct gerr *err)
{
	cJSON *v = cJSON_CreateObject();
	char *node_label = smoke_label_value(s->node);
	char *script = smoke_script(&s->script);
	cJSON_AddStringToObject(v, "name", s->name);
	cJSON_AddStringToObject(v, "namespace", s->ns);
	cJSON_AddStringToObject(v, "runId", s->run_id);
	cJSON_AddStringToObject(v, "node", node_label);
	cJSON_AddStringToObject(v, "hostname", s->hostname);
	cJSON_AddStringToObject(v, "role", smoke_role_name(s->role));
	cJSON_AddStringToObject(v, "image", s->image);
	cJSON_AddStringToObject(v, "resource", s->resource ? s->resource : SMOKE_RESOURCE);
	cJSON_AddStringToObject(v, "runtimeClassName", SMOKE_RUNTIME_CLASS);
	cJSON_AddStringToObject(v, "script", script);
	cJSON_AddBoolToObject(v, "measure", s->script.measure_s > 0);
	cJSON_AddStringToObject(v, "loadConfigMap", SMOKE_LOAD_CONFIGMAP);
	cJSON_AddStringToObject(v, "loadDir", SMOKE_LOAD_DIR);
	cJSON *tol = cJSON_AddArrayToObject(v, "tolerations");
	/* gpuctl taint's default: nvidia.com/gpu=true:NoSchedule */
	cJSON_AddItemToArray(tol, toleration(GPUCTL_GPU_TAINT_KEY, NULL, GPUCTL_GPU_TAINT_EFFECT));
	/* the validation gate's taint (taint --until-validated): the smoke test is
	 * part of validating a node, so it runs before the node is admitted */
	cJSON_AddItemToArray(tol, toleration(GPUCTL_UNVALIDATED_TAINT_KEY, NULL, "NoSchedule"));
	for (size_t i = 0; i < s->ntolerations; i++)
		cJSON_AddItemToArray(tol, toleration(s->tolerations[i].key, s->tolerations[i].value,
						     s->tolerations[i].effect));
	cJSON *docs = NULL;
	int rc2 = render_yaml_docs(rc, SMOKE_TEMPLATE, v, &docs, NULL, err);
	if (rc2 == 0 && (cJSON_GetArraySize(docs) != 1 || !cJSON_IsObject(cJSON_GetArrayItem(docs, 0)))) {
		rc2 = gerr_set(err, GERR_INVALID, "%s: must render one Pod object", SMOKE_TEMPLATE);
	}
	if (rc2 == 0) {
		*pod = cJSON_DetachItemFromArray(docs, 0);
		const char *kind = json_str(*pod, "kind");
		if (!kind || strcmp(kind, "Pod")) {
			cJSON_Delete(*pod);
			*pod = NULL;
			rc2 = gerr_set(err, GERR_INVALID, "%s: must render a Pod, not %s", SMOKE_TEMPLATE, kind ? kind : "(no kind)");
		}
	}
	cJSON_Delete(docs);
	cJSON_Delete(v);
	free(node_label);
	free(script);
	return rc2;
}

static int alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

char *smoke_pod_name(const char *run_id, const char *node, const char *suffix)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "gpuctl-smoke-%s-", run_id);
	size_t start = b.len;
	for (const char *p = node; *p && b.len - start < 180; p++) {
		char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
		buf_addc(&b, alnum(c) ? c : '-');
	}
	while (b.len > start && b.s[b.len - 1] == '-')
		buf_truncate(&b, b.len - 1);
	buf_addf(&b, "-%s", suffix);
	return buf_detach(&b);
}

char *smoke_label_value(const char *s)
{
	struct buf b = BUF_INIT;
	for (const char *p = s; *p && b.len < 63; p++)
		buf_addc(&b, alnum(*p) || *p == '-' || *p == '_' || *p == '.' ? *p : '-');
	while (b.len && !alnum(b.s[b.len - 1]))
		buf_truncate(&b, b.len - 1);
	size_t skip = 0;
	while (skip < b.len && !alnum(b.s[skip]))
		skip++;
	char *out = xstrdup(b.s + skip);
	buf_release(&b);
	return out;
}

char *smoke_run_id(void)
{
	unsigned char r[4] = { 0 };
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t got = fd >= 0 ? read(fd, r, sizeof(r)) : -1;
	if (fd >= 0)
		close(fd);
	if (got != (ssize_t)sizeof(r)) {
		/* no /dev/urandom: the time and pid are unique enough for a name */
		unsigned long x = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16) ^ (unsigned long)mono_ms();
		memcpy(r, &x, sizeof(r));
	}
	return xasprintf("%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
}

char *smoke_cleanup_command(const char *ns, const char *run_id)
{
	return xasprintf("kubectl delete pods -n %s -l " GPUCTL_SMOKE_RUN_KEY "=%s", ns, run_id);
}
