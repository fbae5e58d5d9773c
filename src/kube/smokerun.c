/* gpuctl smoke-test in the cluster: the pods of every node, one watch on
 * the run's pods driving all nodes at once, the logs, the rows, the removal.
 *
 * The watch runs in slices of a few seconds (resumed from the last
 * resourceVersion), so that an interrupt is seen soon, and returns early
 * whenever something must be done that needs the API (a log to read, the
 * next pods of a node to create): the watch callback itself never calls
 * the API (it runs inside the transfer). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpuctl/buf.h"
#include "gpuctl/gpuload.h"
#include "gpuctl/json.h"
#include "gpuctl/kube.h"
#include "gpuctl/nodes.h"
#include "gpuctl/owned.h"
#include "gpuctl/sig.h"
#include "gpuctl/smoke.h"
#include "gpuctl/util.h"

#define SLICE_MS 2000
#define LOG_RETRY_S 1.0
#define LOG_TAIL_LINES 20

enum check { C_GPU, C_ALLOC, C_CONC, C_SAME, C_OVER, C_MPS, C_MIG, C_MEAS, C_COUNT };
static const char *const check_ids[C_COUNT] = {
	"smoke.gpu", "smoke.allocatable", "smoke.concurrent", "smoke.same-gpu", "smoke.overcommit", "smoke.mps", "smoke.mig",
	"smoke.measure",
};

#define NONE ((size_t)-1)

struct snode {
	struct smoke_plan plan;
	struct smoke_verdict v[C_COUNT];
	int done[C_COUNT];          /* v[c] is final */
	int wanted[C_COUNT];        /* the check runs pods (a timeout fails it) */
	size_t gpu;                 /* its pods (indices), NONE when none */
	size_t share_first, nshare; /* share pods: share_first .. +nshare */
	size_t over;
	int want_share, want_over;  /* pods to create at the next step */
	double share_t0;
	long most;                  /* most share pods Running at once */
	cJSON *uuids;               /* same-gpu details {pod: [uuids]} */
	cJSON *measure;             /* smoke.measure details */
};

struct run {
	struct kube_client *kc;
	const struct smoke_run_opts *o;
	char *id;
	char *selector;
	struct snode *v;
	size_t n;
	struct smoke_pod *pods;
	size_t np, cap;
	char *rv;
	int stopped_early;          /* the watch callback stopped the watch */
	double t0;
	long deadline;
};

static void progress(struct run *r, const char *fmt, ...) GPUCTL_PRINTF(2, 3);
static void progress(struct run *r, const char *fmt, ...)
{
	if (!r->o->progress)
		return;
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	r->o->progress(r->o->progress_ud, b.s);
	buf_release(&b);
}

static void finish(struct snode *s, enum check c, enum report_status st, const char *hint, const char *msg)
{
	smoke_verdict_set(&s->v[c], st, hint, "%s", msg);
	s->done[c] = 1;
}

static void finish_verdict(struct snode *s, enum check c, struct smoke_verdict *v)
{
	smoke_verdict_release(&s->v[c]);
	s->v[c] = *v;
	memset(v, 0, sizeof(*v));
	s->done[c] = 1;
}

/* ---- pods ---- */

static size_t pod_add(struct run *r, size_t node, enum smoke_role role, const char *suffix)
{
	if (r->np == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->pods = xrealloc(r->pods, r->cap * sizeof(*r->pods));
	}
	struct smoke_pod *p = &r->pods[r->np];
	memset(p, 0, sizeof(*p));
	p->name = smoke_pod_name(r->id, r->v[node].plan.node, suffix);
	p->node = node;
	p->role = role;
	p->exit_code = -1;
	return r->np++;
}

static struct smoke_pod *pod_by_name(struct run *r, const char *name)
{
	for (size_t i = 0; name && i < r->np; i++)
		if (!strcmp(r->pods[i].name, name))
			return &r->pods[i];
	return NULL;
}

/* The Unix time (the load's --start-at is read on the node's clock). */
static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Create the pods first .. first+n concurrently. */
static void create_pods(struct run *r, size_t first, size_t n)
{
	if (!n)
		return;
	/* every sharing pod created now starts its load at the same moment */
	double start_at = wall_s() + SMOKE_LOAD_DELAY_S;
	struct kube_call *calls = xcalloc(n, sizeof(*calls));
	char **bodies = xcalloc(n, sizeof(char *));
	char *base = kube_path("v1", r->o->ns, "pods", NULL);
	struct buf path = BUF_INIT;
	buf_adds(&path, base);
	kube_query_add(&path, "fieldManager", GPUCTL_FIELD_MANAGER);
	char **what = xcalloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		struct smoke_pod *p = &r->pods[first + i];
		const struct smoke_plan *pl = &r->v[p->node].plan;
		long left_s = (r->deadline - mono_ms()) / 1000 + 1;
		struct smoke_pod_spec spec = {
			.name = p->name, .ns = r->o->ns, .run_id = r->id, .node = pl->node, .hostname = pl->hostname,
			.image = r->o->image, .resource = pl->resource, .role = p->role,
			.tolerations = r->o->tolerations, .ntolerations = r->o->ntolerations,
			.script = { .sleep_s = p->role == SMOKE_ROLE_SHARE ? (left_s > 0 ? left_s : 1) : 0 },
		};
		/* the single-GPU pod measures alone, at once (the baseline) */
		if (r->o->measure_s > 0 && p->role != SMOKE_ROLE_OVER) {
			spec.script.measure_s = r->o->measure_s;
			spec.script.start_at = p->role == SMOKE_ROLE_SHARE ? start_at : 0;
		}
		cJSON *obj = NULL;
		if (smoke_pod_render(r->o->rc, &spec, &obj, &p->create_err) < 0)
			continue;
		bodies[i] = cJSON_PrintUnformatted(obj);
		cJSON_Delete(obj);
		what[i] = xasprintf("pod %s/%s", r->o->ns, p->name);
		calls[i] = (struct kube_call){ .method = "POST", .path = path.s, .body = bodies[i], .what = what[i] };
	}
	/* the calls whose rendering failed are left out: compact them */
	struct kube_call *todo = xcalloc(n, sizeof(*todo));
	size_t *idx = xcalloc(n, sizeof(*idx)), k = 0;
	for (size_t i = 0; i < n; i++)
		if (bodies[i]) {
			todo[k] = calls[i];
			idx[k++] = first + i;
		}
	kube_do_many(r->kc, todo, k, 0);
	double now = mono_s();
	for (size_t i = 0; i < k; i++) {
		struct smoke_pod *p = &r->pods[idx[i]];
		if (todo[i].err.code == GERR_OK) {
			p->created = 1;
			p->t_created = now;
		} else {
			gerr_move(&p->create_err, &todo[i].err);
		}
		kube_call_release(&todo[i]);
	}
	for (size_t i = 0; i < n; i++) {
		free(bodies[i]);
		free(what[i]);
	}
	free(todo);
	free(idx);
	free(calls);
	free(bodies);
	free(what);
	free(base);
	buf_release(&path);
}

/* Read the log of p once: its marker printed, or it finished. */
static void fetch_log(struct run *r, struct smoke_pod *p)
{
	struct buf text = BUF_INIT;
	struct gerr e = GERR_INIT;
	p->t_log = mono_s();
	if (kube_logs(r->kc, r->o->ns, p->name, NULL, 0, &text, &e) < 0) {
		/* a finished pod whose log cannot be read: judged without it */
		if (smoke_pod_done(p)) {
			p->log_fetched = 1;
			gerr_move(&p->log_err, &e);
		}
		gerr_clear(&e);
		buf_release(&text);
		return;
	}
	smoke_log_release(&p->log);
	smoke_log_parse(text.s, text.len, &p->log);
	if (p->log.ready || smoke_pod_done(p))
		p->log_fetched = 1;
	/* its last lines, on one line, for a hint */
	size_t lines = 0, start = text.len;
	while (start > 0 && lines <= LOG_TAIL_LINES / 4) {
		start--;
		if (text.s[start] == '\n' && start + 1 < text.len)
			lines++;
	}
	struct buf tail = BUF_INIT;
	for (size_t i = start; i < text.len && tail.len < 400; i++)
		buf_addc(&tail, text.s[i] == '\n' ? ' ' : text.s[i]);
	free(p->log_tail);
	p->log_tail = buf_detach(&tail);
	buf_release(&text);
}

/* ---- the state of each node ---- */

static int share_running(const struct run *r, const struct snode *s)
{
	int n = 0;
	for (size_t i = 0; i < s->nshare; i++) {
		const struct smoke_pod *p = &r->pods[s->share_first + i];
		n += p->phase && !strcmp(p->phase, "Running");
	}
	return n;
}

static const struct smoke_pod *share_ended(const struct run *r, const struct snode *s)
{
	for (size_t i = 0; i < s->nshare; i++)
		if (smoke_pod_done(&r->pods[s->share_first + i]) || r->pods[s->share_first + i].create_err.code)
			return &r->pods[s->share_first + i];
	return NULL;
}

/* A sharing pod whose load line may still come: not printed, and the pod
 * not finished with its log read after that. */
static int measure_pending(const struct smoke_pod *p)
{
	return !p->log.measured && !(smoke_pod_done(p) && p->t_done > 0 && p->t_log >= p->t_done);
}

static int measure_due(const struct smoke_pod *p, double now)
{
	return measure_pending(p) && (!p->t_log || now - p->t_log >= LOG_RETRY_S);
}

static int node_done(const struct snode *s)
{
	for (int c = 0; c < C_COUNT; c++)
		if (!s->done[c])
			return 0;
	return 1;
}

/* Whether step() has something to do now (the watch stops for it). */
static int work_due(struct run *r, double now)
{
	for (size_t i = 0; i < r->n; i++) {
		struct snode *s = &r->v[i];
		if (s->want_share || s->want_over)
			return 1;
		if (!s->done[C_GPU] && s->gpu != NONE) {
			const struct smoke_pod *p = &r->pods[s->gpu];
			if (smoke_pod_done(p) || p->create_err.code)
				return 1;
		}
		if (s->nshare && !s->done[C_CONC] && (share_running(r, s) >= (int)s->nshare || share_ended(r, s)))
			return 1;
		if (s->done[C_CONC] && !s->done[C_SAME] && s->v[C_CONC].status == REPORT_PASS)
			for (size_t k = 0; k < s->nshare; k++) {
				const struct smoke_pod *p = &r->pods[s->share_first + k];
				if (!p->log_fetched && (!p->t_log || now - p->t_log >= LOG_RETRY_S))
					return 1;
			}
		if (s->done[C_CONC] && !s->done[C_MEAS] && s->v[C_CONC].status == REPORT_PASS)
			for (size_t k = 0; k < s->nshare; k++)
				if (measure_due(&r->pods[s->share_first + k], now))
					return 1;
		if (s->over != NONE && !s->done[C_OVER]) {
			struct smoke_verdict v = { 0 };
			int j = smoke_judge_overcommit(&r->pods[s->over], s->plan.resource, &v);
			smoke_verdict_release(&v);
			if (j || r->pods[s->over].create_err.code)
				return 1;
		}
	}
	return 0;
}

static void skip_sharing(struct snode *s, const char *why)
{
	static const enum check cs[] = { C_CONC, C_SAME, C_OVER, C_MPS, C_MEAS };
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
		if (!s->done[cs[i]])
			finish(s, cs[i], REPORT_SKIP, NULL, why);
}

/* smoke.measure from what the logs hold now. */
static void judge_measure(struct run *r, struct snode *s)
{
	struct smoke_pod **pp = xcalloc(s->nshare ? s->nshare : 1, sizeof(*pp));
	for (size_t k = 0; k < s->nshare; k++)
		pp[k] = &r->pods[s->share_first + k];
	struct smoke_verdict v = { 0 };
	cJSON_Delete(s->measure);
	s->measure = cJSON_CreateObject();
	smoke_judge_measure(pp, s->nshare, s->gpu != NONE ? &r->pods[s->gpu] : NULL, s->measure, &v);
	finish_verdict(s, C_MEAS, &v);
	free(pp);
}

static void step_node(struct run *r, size_t i, double now)
{
	struct snode *s = &r->v[i];
	/* check 1 */
	if (!s->done[C_GPU] && s->gpu != NONE) {
		struct smoke_pod *p = &r->pods[s->gpu];
		if (p->create_err.code) {
			finish(s, C_GPU, REPORT_FAIL, p->create_err.hint, p->create_err.msg);
			skip_sharing(s, "skipped: the single-GPU pod could not be created");
		} else if (smoke_pod_done(p)) {
			if (!p->log_fetched)
				fetch_log(r, p);
			struct smoke_verdict v = { 0 };
			smoke_judge_gpu(p, s->plan.product, &v);
			int ok = v.status == REPORT_PASS;
			finish_verdict(s, C_GPU, &v);
			progress(r, "node/%s: %s %s", s->plan.node, check_ids[C_GPU], ok ? "passed" : "failed");
			if (s->plan.share_run && ok) {
				s->want_share = 1;
			} else if (s->plan.share_run) {
				skip_sharing(s, "skipped: the single-GPU pod failed");
			}
		}
	}
	/* check 2 */
	if (s->nshare && !s->done[C_CONC]) {
		const struct smoke_pod *end = share_ended(r, s);
		if (s->most >= (long)s->nshare) {
			struct smoke_verdict v = { 0 };
			smoke_judge_concurrent((long)s->nshare, s->most, now - s->share_t0, &v);
			finish_verdict(s, C_CONC, &v);
			progress(r, "node/%s: %ld pods Running at once", s->plan.node, (long)s->nshare);
			if (s->plan.overcommit_run)
				s->want_over = 1;
		} else if (end) {
			char *state = smoke_pod_state(end);
			struct buf m = BUF_INIT;
			buf_addf(&m, "pod %s ended before all %zu were Running (at most %ld at once): %s", end->name, s->nshare,
				 s->most, end->create_err.code ? end->create_err.msg : state);
			finish(s, C_CONC, REPORT_FAIL, end->create_err.code ? end->create_err.hint : NULL, m.s);
			buf_release(&m);
			free(state);
			skip_sharing(s, "skipped: the pods did not run together");
		}
	}
	if (s->done[C_CONC] && s->v[C_CONC].status == REPORT_PASS && !s->done[C_SAME]) {
		size_t fetched = 0;
		for (size_t k = 0; k < s->nshare; k++) {
			struct smoke_pod *p = &r->pods[s->share_first + k];
			if (!p->log_fetched && (!p->t_log || now - p->t_log >= LOG_RETRY_S))
				fetch_log(r, p);
			fetched += p->log_fetched;
		}
		if (fetched == s->nshare) {
			struct smoke_pod **pp = xcalloc(s->nshare, sizeof(*pp));
			for (size_t k = 0; k < s->nshare; k++)
				pp[k] = &r->pods[s->share_first + k];
			struct smoke_verdict v = { 0 };
			s->uuids = cJSON_CreateObject();
			smoke_judge_same_gpu(pp, s->nshare, s->plan.physical, s->uuids, &v);
			finish_verdict(s, C_SAME, &v);
			if (s->plan.mps) {
				smoke_judge_mps(pp, s->nshare, &v);
				finish_verdict(s, C_MPS, &v);
			}
			free(pp);
		}
	}
	/* the loads end some seconds after the pods run: their lines are read until every one printed */
	if (s->done[C_CONC] && s->v[C_CONC].status == REPORT_PASS && !s->done[C_MEAS]) {
		size_t pending = 0;
		for (size_t k = 0; k < s->nshare; k++) {
			struct smoke_pod *p = &r->pods[s->share_first + k];
			if (measure_due(p, now))
				fetch_log(r, p);
			pending += measure_pending(p);
		}
		if (!pending) {
			judge_measure(r, s);
			progress(r, "node/%s: %s %s", s->plan.node, check_ids[C_MEAS], s->v[C_MEAS].message);
		}
	}
	if (s->over != NONE && !s->done[C_OVER]) {
		struct smoke_pod *p = &r->pods[s->over];
		struct smoke_verdict v = { 0 };
		if (p->create_err.code)
			finish(s, C_OVER, REPORT_FAIL, p->create_err.hint, p->create_err.msg);
		else if (smoke_judge_overcommit(p, s->plan.resource, &v))
			finish_verdict(s, C_OVER, &v);
		smoke_verdict_release(&v);
	}
}

/* Everything that needs the API: logs, then the next pods of each node. */
static void step(struct run *r)
{
	double now = mono_s();
	for (size_t i = 0; i < r->n; i++)
		step_node(r, i, now);
	size_t first = r->np;
	for (size_t i = 0; i < r->n && !sig_interrupted(); i++) {
		struct snode *s = &r->v[i];
		if (s->want_share) {
			s->want_share = 0;
			s->share_first = r->np;
			s->nshare = (size_t)s->plan.n;
			for (long k = 0; k < s->plan.n; k++) {
				char suffix[32];
				snprintf(suffix, sizeof(suffix), "share-%ld", k);
				pod_add(r, i, SMOKE_ROLE_SHARE, suffix);
			}
			s->share_t0 = mono_s();
		}
		if (s->want_over) {
			s->want_over = 0;
			s->over = pod_add(r, i, SMOKE_ROLE_OVER, "overcommit");
		}
	}
	if (r->np > first) {
		create_pods(r, first, r->np - first);
		/* a node whose sharing pods could not be created is judged now */
		for (size_t i = 0; i < r->n; i++)
			step_node(r, i, mono_s());
	}
}

/* ---- the watch ---- */

static int on_event(void *ud, const char *type, const cJSON *obj, struct gerr *err)
{
	(void)err;
	struct run *r = ud;
	const char *rv = json_str(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion");
	if (rv && *rv) {
		free(r->rv);
		r->rv = xstrdup(rv);
	}
	if (sig_interrupted()) {
		r->stopped_early = 1;
		return 1;
	}
	if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED"))
		return 0;
	struct smoke_pod *p = pod_by_name(r, json_str(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "name"));
	if (!p)
		return 0;
	double now = mono_s();
	smoke_pod_observe(p, obj, now);
	struct snode *s = &r->v[p->node];
	if (p->role == SMOKE_ROLE_SHARE && !s->done[C_CONC]) {
		long running = share_running(r, s);
		if (running > s->most)
			s->most = running;
	}
	if (work_due(r, now)) {
		r->stopped_early = 1;
		return 1;
	}
	return 0;
}

static int all_done(const struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (!node_done(&r->v[i]))
			return 0;
	return 1;
}

/* ---- rows ---- */

static void pod_row(struct run *r, const struct smoke_pod *p, struct report *rep)
{
	const struct snode *s = &r->v[p->node];
	char *state = smoke_pod_state(p);
	struct buf u = BUF_INIT, target = BUF_INIT, msg = BUF_INIT;
	size_t nu = smoke_log_uuids(&p->log, &u);
	buf_addf(&target, "%s/%s", s->plan.node, p->name);
	enum report_status st;
	const char *hint = NULL;
	double secs = 0;
	if (p->create_err.code) {
		st = REPORT_FAIL;
		buf_addf(&msg, "not created: %s", p->create_err.msg);
		hint = p->create_err.hint;
	} else if (p->role == SMOKE_ROLE_OVER) {
		st = !p->scheduled && p->unschedulable ? REPORT_PASS : REPORT_FAIL;
		buf_addf(&msg, "%s (one pod more than the free slots)", state);
	} else {
		int ran = p->role == SMOKE_ROLE_GPU ? p->phase && !strcmp(p->phase, "Succeeded") : p->t_running > 0;
		st = ran && nu ? REPORT_PASS : REPORT_FAIL;
		buf_adds(&msg, state);
		if (nu)
			buf_addf(&msg, ": %s", u.s);
		double end = p->role == SMOKE_ROLE_GPU ? p->t_done : p->t_running;
		secs = end > 0 && p->t_created > 0 ? end - p->t_created : 0;
		if (secs > 0)
			buf_addf(&msg, " after %.1f s", secs);
		if (p->log.measured && !p->log.load_error)
			buf_addf(&msg, ", %.1f GFLOP/s%s", p->log.gflops, p->role == SMOKE_ROLE_GPU ? " alone" : "");
		if (st == REPORT_FAIL && p->log_tail && *p->log_tail)
			hint = p->log_tail;
	}
	struct report_row *row = report_add(rep, target.s, "pod", st, hint, "%s", msg.s);
	row->seconds = secs;
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "pod", p->name);
	cJSON_AddStringToObject(d, "node", s->plan.node);
	cJSON_AddStringToObject(d, "role", smoke_role_name(p->role));
	cJSON_AddStringToObject(d, "phase", p->phase ? p->phase : p->created ? "Unknown" : "NotCreated");
	if (p->reason)
		cJSON_AddStringToObject(d, "reason", p->reason);
	cJSON *ua = cJSON_AddArrayToObject(d, "uuids");
	for (size_t k = 0; k < p->log.ngpus; k++)
		cJSON_AddItemToArray(ua, cJSON_CreateString(p->log.gpus[k].uuid));
	for (size_t k = 0; !p->log.ngpus && p->log.migs && p->log.migs[k]; k++)
		cJSON_AddItemToArray(ua, cJSON_CreateString(p->log.migs[k]));
	if (p->log.ngpus && p->log.gpus[0].name)
		cJSON_AddStringToObject(d, "gpu", p->log.gpus[0].name);
	cJSON_AddNumberToObject(d, "seconds", (double)(long)(secs * 10 + 0.5) / 10);
	/* --measure: "seconds" is taken (the pod's start), the load's is loadSeconds */
	if (p->log.measured && p->log.load_error) {
		cJSON_AddStringToObject(d, "loadError", p->log.load_error);
	} else if (p->log.measured) {
		cJSON_AddNumberToObject(d, "gflops", p->log.gflops);
		cJSON_AddNumberToObject(d, "launches", (double)p->log.launches);
		cJSON_AddNumberToObject(d, "loadSeconds", p->log.seconds);
	}
	if (p->create_err.code)
		cJSON_AddItemToObject(d, "error", report_error_json(&p->create_err));
	report_row_details(row, d);
	free(state);
	buf_release(&u);
	buf_release(&target);
	buf_release(&msg);
}

static void node_rows(struct run *r, size_t i, struct report *rep)
{
	struct snode *s = &r->v[i];
	for (int c = 0; c < C_COUNT; c++) {
		if (c == C_MPS && !s->plan.mps)
			continue;
		const struct smoke_verdict *v = &s->v[c];
		struct report_row *row = report_add(rep, s->plan.node, check_ids[c], v->status, v->hint, "%s",
						    v->message ? v->message : "");
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "node", s->plan.node);
		if (c == C_ALLOC || c == C_CONC) {
			cJSON_AddNumberToObject(d, "allocatable", (double)s->plan.allocatable);
			cJSON_AddNumberToObject(d, "inUse", (double)s->plan.used);
			if (s->plan.physical)
				cJSON_AddNumberToObject(d, "gpus", (double)s->plan.physical);
			if (s->plan.replicas)
				cJSON_AddNumberToObject(d, "replicas", (double)s->plan.replicas);
		}
		if (c == C_CONC && s->nshare) {
			cJSON_AddNumberToObject(d, "pods", (double)s->nshare);
			cJSON_AddNumberToObject(d, "mostRunning", (double)s->most);
		}
		if (c == C_SAME && s->uuids) {
			cJSON_AddItemToObject(d, "pods", s->uuids);
			s->uuids = NULL;
		}
		if (c == C_MEAS && s->measure) {
			cJSON *m;
			while ((m = s->measure->child)) /* its fields move into d */
				cJSON_AddItemToObject(d, m->string, cJSON_DetachItemViaPointer(s->measure, m));
		}
		if (s->plan.strategy && (c == C_CONC || c == C_MPS))
			cJSON_AddStringToObject(d, "strategy", s->plan.strategy);
		report_row_details(row, d);
	}
	for (size_t k = 0; k < r->np; k++)
		if (r->pods[k].node == i)
			pod_row(r, &r->pods[k], rep);
}

/* The checks still open when the run stopped fail, naming the pod's last state. */
static void close_open(struct run *r, const char *why)
{
	for (size_t i = 0; i < r->n; i++) {
		struct snode *s = &r->v[i];
		/* the pods that ran their load are judged; those without a line fail */
		if (!s->done[C_MEAS] && s->done[C_CONC] && s->v[C_CONC].status == REPORT_PASS)
			judge_measure(r, s);
		for (int c = 0; c < C_COUNT; c++) {
			if (s->done[c])
				continue;
			const struct smoke_pod *p = NULL;
			if (c == C_GPU && s->gpu != NONE)
				p = &r->pods[s->gpu];
			else if (c == C_OVER && s->over != NONE)
				p = &r->pods[s->over];
			else if (s->nshare) {
				/* the first sharing pod that is not Running, else the first */
				p = &r->pods[s->share_first];
				for (size_t k = 0; k < s->nshare; k++)
					if (!r->pods[s->share_first + k].phase ||
					    strcmp(r->pods[s->share_first + k].phase, "Running")) {
						p = &r->pods[s->share_first + k];
						break;
					}
			}
			char *state = p ? smoke_pod_state(p) : NULL;
			struct buf m = BUF_INIT, h = BUF_INIT;
			buf_adds(&m, why);
			if (c == C_CONC)
				buf_addf(&m, " (at most %ld of %zu pods Running at once)", s->most, s->nshare);
			if (p)
				buf_addf(&h, "pod %s: %s", p->name, state);
			else
				buf_adds(&h, "the check had not started");
			/* not started because an earlier check of the node had not ended */
			enum report_status st = p || c == C_GPU ? REPORT_FAIL : REPORT_SKIP;
			if (st == REPORT_SKIP) {
				buf_reset(&m);
				buf_addf(&m, "not run: %s before it started", why);
			}
			finish(s, c, st, h.s, m.s);
			buf_release(&m);
			buf_release(&h);
			free(state);
		}
	}
}

/* ---- preflight, namespace, usage ---- */

static int preflight(struct run *r, int ns_missing, struct gerr *err)
{
	const char *ns = r->o->ns;
	struct kube_access a[] = {
		{ .verb = "create", .resource = "pods", .ns = ns },
		{ .verb = "delete", .resource = "pods", .ns = ns },
		{ .verb = "list", .resource = "pods", .ns = ns },
		{ .verb = "watch", .resource = "pods", .ns = ns },
		{ .verb = "get", .resource = "pods", .subresource = "log", .ns = ns },
		{ .verb = "list", .resource = "pods" }, /* the GPUs in use, across namespaces */
		/* --measure: the ConfigMap of gpuctl-gpuload, server-side applied */
		{ .verb = "create", .resource = "configmaps", .ns = ns },
		{ .verb = "patch", .resource = "configmaps", .ns = ns },
		{ .verb = "create", .resource = "namespaces" },
	};
	struct kube_access *last = &a[sizeof(a) / sizeof(a[0]) - 1];
	size_t n = sizeof(a) / sizeof(a[0]) - 1;
	if (!r->o->measure_s)
		n -= 2;
	if (ns_missing)
		a[n++] = *last;
	for (size_t i = 0; i < n; i++)
		a[i].group = "";
	if (kube_can_i_many(r->kc, a, n, err) < 0)
		return -1;
	struct buf miss = BUF_INIT;
	for (size_t i = 0; i < n; i++)
		if (!a[i].allowed)
			buf_addf(&miss, "\n  %s %s%s%s%s%s", a[i].verb, a[i].resource, a[i].subresource ? "/" : "",
				 a[i].subresource ? a[i].subresource : "", a[i].ns ? " in namespace " : " (all namespaces)",
				 a[i].ns ? a[i].ns : "");
	int rc = 0;
	if (miss.len) {
		rc = gerr_set(err, GERR_FORBIDDEN, "smoke-test needs permissions the caller lacks (nothing was created):%s",
			      miss.s);
		gerr_hint(err, "ask a cluster administrator, or check one with: kubectl auth can-i VERB RESOURCE [-n NAMESPACE]");
	}
	buf_release(&miss);
	return rc;
}

/* 1: the namespace exists (or cannot be read: creating pods will say), 0: missing. */
static int ns_exists(struct run *r, struct gerr *err)
{
	char *p = kube_path("v1", NULL, "namespaces", r->o->ns);
	cJSON *obj = NULL;
	struct gerr e = GERR_INIT;
	int rc = kube_get(r->kc, p, &obj, &e);
	free(p);
	cJSON_Delete(obj);
	if (rc == 0)
		return 1;
	if (e.code == GERR_NOTFOUND) {
		gerr_clear(&e);
		return 0;
	}
	if (e.code == GERR_FORBIDDEN) {
		gerr_clear(&e);
		return 1;
	}
	gerr_move(err, &e);
	return -1;
}

static int ns_create(struct run *r, struct gerr *err)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Namespace");
	cJSON *md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", r->o->ns);
	cJSON *l = cJSON_AddObjectToObject(md, "labels");
	cJSON_AddStringToObject(l, GPUCTL_MANAGED_BY_KEY, GPUCTL_MANAGED_BY_VALUE);
	cJSON_AddStringToObject(l, GPUCTL_COMPONENT_KEY, "smoke-test");
	char *p = kube_path("v1", NULL, "namespaces", NULL);
	int rc = kube_create(r->kc, p, o, 0, NULL, err);
	if (rc < 0 && err->code == GERR_CONFLICT) {
		gerr_clear(err); /* created meanwhile */
		rc = 0;
	} else if (rc < 0) {
		gerr_prefix(err, "namespace %s", r->o->ns);
	}
	free(p);
	cJSON_Delete(o);
	return rc;
}

/* --measure: gpuctl-gpuload into the ConfigMap the pods mount.  One
 * server-side apply creates it, replaces other bytes (another gpuctl's), or
 * changes nothing. */
static int load_apply(struct run *r, struct gerr *err)
{
	size_t len = 0;
	const unsigned char *bin = gpuload_binary(&len);
	struct buf b64 = BUF_INIT;
	base64_encode(bin, len, 1, &b64);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "ConfigMap");
	cJSON *md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", SMOKE_LOAD_CONFIGMAP);
	cJSON_AddStringToObject(md, "namespace", r->o->ns);
	cJSON *l = cJSON_AddObjectToObject(md, "labels");
	cJSON_AddStringToObject(l, GPUCTL_MANAGED_BY_KEY, GPUCTL_MANAGED_BY_VALUE);
	cJSON_AddStringToObject(l, GPUCTL_COMPONENT_KEY, "smoke-test");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "binaryData"), "gpuctl-gpuload", b64.s ? b64.s : "");
	buf_release(&b64);
	char *p = kube_path("v1", r->o->ns, "configmaps", SMOKE_LOAD_CONFIGMAP);
	int rc = kube_apply(r->kc, p, o, 0, 1, NULL, err);
	if (rc < 0)
		gerr_prefix(err, "configmap %s/%s (gpuctl-gpuload for --measure)", r->o->ns, SMOKE_LOAD_CONFIGMAP);
	free(p);
	cJSON_Delete(o);
	return rc;
}

/* usage_of's gatherer: each pod counted and freed as its page arrives */
static int usage_item(void *ud, cJSON *pod, struct gerr *err)
{
	(void)err;
	cJSON **u = ud;
	if (!pod) {
		/* the list starts again */
		cJSON_Delete(*u);
		*u = cJSON_CreateObject();
		return 0;
	}
	smoke_usage_add(*u, pod);
	cJSON_Delete(pod);
	return 0;
}

static int usage_of(struct run *r, cJSON **usage, struct gerr *err)
{
	/* every running pod of the cluster: never held, only counted */
	struct kube_list_opts lo = { .field_selector = "status.phase!=Succeeded,status.phase!=Failed" };
	cJSON *u = cJSON_CreateObject();
	char *p = kube_path("v1", NULL, "pods", NULL);
	int rc = kube_list_each(r->kc, p, &lo, usage_item, &u, NULL, err);
	free(p);
	if (rc < 0) {
		cJSON_Delete(u);
		return gerr_prefix(err, "list pods (the GPUs in use)");
	}
	*usage = u;
	return 0;
}

/* ---- removal ---- */

static void remove_pods(struct run *r, struct smoke_left *left)
{
	static const char body[] =
		"{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\",\"gracePeriodSeconds\":0,\"propagationPolicy\":\"Background\"}";
	size_t n = 0;
	for (size_t i = 0; i < r->np; i++)
		n += r->pods[i].created;
	if (!n) {
		left->deleted_all = 1;
		return;
	}
	if (r->o->keep) {
		left->kept = 1;
		for (size_t i = 0; i < r->np; i++)
			if (r->pods[i].created)
				left->pods = strv_add(left->pods, r->pods[i].name);
		return;
	}
	struct kube_call *calls = xcalloc(n, sizeof(*calls));
	char **paths = xcalloc(n, sizeof(char *));
	size_t *idx = xcalloc(n, sizeof(*idx)), k = 0;
	for (size_t i = 0; i < r->np; i++) {
		if (!r->pods[i].created)
			continue;
		paths[k] = kube_path("v1", r->o->ns, "pods", r->pods[i].name);
		calls[k] = (struct kube_call){ .method = "DELETE", .path = paths[k], .body = body, .idempotent = 1,
					       .what = "pod" };
		idx[k++] = i;
	}
	kube_do_many(r->kc, calls, k, 0);
	size_t failed = 0;
	for (size_t i = 0; i < k; i++) {
		if (calls[i].err.code == GERR_OK || calls[i].err.code == GERR_NOTFOUND) {
			r->pods[idx[i]].deleted = 1;
		} else {
			left->pods = strv_add(left->pods, r->pods[idx[i]].name);
			if (!failed++) {
				gerr_move(&left->err, &calls[i].err);
				gerr_prefix(&left->err, "delete pod %s/%s", r->o->ns, r->pods[idx[i]].name);
			}
		}
		kube_call_release(&calls[i]);
		free(paths[i]);
	}
	left->deleted_all = failed == 0;
	free(calls);
	free(paths);
	free(idx);
}

/* ---- the run ---- */

static void run_release(struct run *r)
{
	for (size_t i = 0; i < r->n; i++) {
		smoke_plan_release(&r->v[i].plan);
		for (int c = 0; c < C_COUNT; c++)
			smoke_verdict_release(&r->v[i].v[c]);
		cJSON_Delete(r->v[i].uuids);
		cJSON_Delete(r->v[i].measure);
	}
	free(r->v);
	for (size_t i = 0; i < r->np; i++)
		smoke_pod_release(&r->pods[i]);
	free(r->pods);
	free(r->rv);
	free(r->selector);
	/* r->id moves to left */
}

int smoke_run(struct kube_client *kc, const cJSON *nodes, const struct smoke_run_opts *o, struct report *rep,
	      struct smoke_left *left, struct gerr *err)
{
	struct run r = { .kc = kc, .o = o };
	memset(left, 0, sizeof(*left));
	r.id = smoke_run_id();
	left->run_id = r.id;
	r.selector = xasprintf(GPUCTL_SMOKE_RUN_KEY "=%s", r.id);
	r.t0 = mono_s();
	r.deadline = mono_ms() + o->timeout_ms;

	/* everything that can stop the run happens before a pod exists */
	int exists = ns_exists(&r, err);
	cJSON *usage = NULL;
	if (exists < 0 || preflight(&r, !exists, err) < 0 || usage_of(&r, &usage, err) < 0) {
		cJSON_Delete(usage);
		run_release(&r);
		return -1;
	}
	/* the device plugin's config files, for nodes GFD does not label: one GET,
	 * and none is no error (another plugin, or the operator's) */
	struct smoke_plan_opts plan = o->plan;
	cJSON *cm = NULL;
	if (plan.plugin_ns && plan.configs_name && !plan.configs) {
		char *path = kube_path("v1", plan.plugin_ns, "configmaps", plan.configs_name);
		struct gerr ce = GERR_INIT;
		if (kube_get(kc, path, &cm, &ce) == 0)
			plan.configs = cJSON_GetObjectItemCaseSensitive(cm, "data");
		gerr_clear(&ce);
		free(path);
	}
	r.n = (size_t)cJSON_GetArraySize(nodes);
	r.v = xcalloc(r.n ? r.n : 1, sizeof(*r.v));
	size_t i = 0;
	const cJSON *node;
	cJSON_ArrayForEach(node, nodes) {
		struct snode *s = &r.v[i];
		smoke_plan_node(node, usage, &plan, &s->plan);
		s->gpu = s->over = NONE;
		if (!o->measure_s)
			finish(s, C_MEAS, REPORT_SKIP, NULL, "skipped: --measure not given");
		if (s->plan.gpu_run)
			s->gpu = pod_add(&r, i, SMOKE_ROLE_GPU, "gpu");
		else
			finish(s, C_GPU, s->plan.gpu.status, s->plan.gpu.hint, s->plan.gpu.message);
		finish(s, C_ALLOC, s->plan.allocatable_v.status, s->plan.allocatable_v.hint, s->plan.allocatable_v.message);
		finish(s, C_MIG, s->plan.mig_v.status, s->plan.mig_v.hint, s->plan.mig_v.message);
		if (!s->plan.share_run) {
			skip_sharing(s, s->plan.share.message);
		} else if (!s->plan.overcommit_run) {
			finish(s, C_OVER, s->plan.overcommit.status, s->plan.overcommit.hint, s->plan.overcommit.message);
		}
		if (!s->plan.mps)
			finish(s, C_MPS, REPORT_SKIP, NULL, "skipped: the node does not use MPS");
		i++;
	}
	cJSON_Delete(usage);
	cJSON_Delete(cm);
	/* the namespace only when a pod will run in it */
	if (r.np && !exists && ns_create(&r, err) < 0) {
		run_release(&r);
		return -1;
	}
	if (r.np && o->measure_s > 0 && load_apply(&r, err) < 0) {
		run_release(&r);
		return -1;
	}
	progress(&r, "run %s: %zu pod(s) on %zu node(s) in namespace %s", r.id, r.np, r.n, o->ns);
	if (!sig_interrupted())
		create_pods(&r, 0, r.np);

	const char *stopped = NULL;
	struct gerr werr = GERR_INIT;
	for (;;) {
		step(&r);
		if (all_done(&r))
			break;
		if (sig_interrupted()) {
			stopped = "interrupted";
			break;
		}
		long left_ms = r.deadline - mono_ms();
		if (left_ms <= 0) {
			stopped = "timed out";
			break;
		}
		char *path = kube_path("v1", o->ns, "pods", NULL);
		struct kube_watch_opts wo = { .label_selector = r.selector, .resource_version = r.rv,
					      .timeout_ms = left_ms < SLICE_MS ? left_ms : SLICE_MS };
		int listing = r.rv == NULL;
		r.stopped_early = 0;
		int rc = kube_watch(kc, path, &wo, on_event, &r, &werr);
		free(path);
		/* stopped in the middle of the first LIST, the pods after the one it
		 * stopped at were not seen: list again next time */
		if (listing && r.stopped_early) {
			free(r.rv);
			r.rv = NULL;
		}
		if (rc < 0 && werr.code == GERR_TIMEOUT && !werr.http_status) {
			gerr_clear(&werr); /* the slice ended */
		} else if (rc < 0 && werr.code == GERR_GONE) {
			gerr_clear(&werr);
			free(r.rv);
			r.rv = NULL; /* list again */
		} else if (rc < 0) {
			stopped = "the watch failed";
			break;
		}
	}
	if (stopped) {
		struct buf why = BUF_INIT;
		if (!strcmp(stopped, "interrupted"))
			buf_addf(&why, "interrupted (%s)", sig_name(sig_interrupted()));
		else if (!strcmp(stopped, "timed out"))
			buf_addf(&why, "timed out after %.0f s", (double)o->timeout_ms / 1000);
		else
			buf_addf(&why, "the watch failed: %s", werr.msg ? werr.msg : "?");
		close_open(&r, why.s);
		buf_release(&why);
	}
	gerr_clear(&werr);
	for (i = 0; i < r.n; i++)
		node_rows(&r, i, rep);
	report_set(rep, "runId", cJSON_CreateString(r.id));
	report_set(rep, "namespace", cJSON_CreateString(o->ns));
	report_set(rep, "image", cJSON_CreateString(o->image));
	report_set(rep, "seconds", cJSON_CreateNumber((double)(long)((mono_s() - r.t0) * 10 + 0.5) / 10));
	/* a second interrupt: leave at once, saying what is left */
	if (sig_count() >= 2) {
		for (i = 0; i < r.np; i++)
			if (r.pods[i].created)
				left->pods = strv_add(left->pods, r.pods[i].name);
		gerr_set(&left->err, GERR_INTERRUPTED, "interrupted again: the pods were not deleted");
	} else {
		remove_pods(&r, left);
	}
	report_set(rep, "deleted", cJSON_CreateBool(left->deleted_all));
	run_release(&r);
	return 0;
}

void smoke_left_release(struct smoke_left *l)
{
	free(l->run_id);
	strv_free(l->pods);
	gerr_clear(&l->err);
	memset(l, 0, sizeof(*l));
}
