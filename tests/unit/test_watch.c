/* kube_watch and the expired-continue restart of kube_list (src/kube/api.c)
 * against the scripted HTTPS server (tls_server.c) in route mode: event
 * order, bookmarks, resuming from the last resourceVersion when a stream
 * ends, relisting on 410 Gone (as an ERROR event and as the HTTP status),
 * other ERROR events, the overall timeout, and a paginated list whose
 * continue token expires. */
#include <criterion/criterion.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "gpuctl/err.h"
#include "gpuctl/kube.h"
#include "tls_server.h"

#define PODS "/api/v1/namespaces/ns/pods"
/* a pause that holds a stream open far longer than any test (ts_stop ends it) */
#define HOLD_MS 60000

/* ---- fixture ---- */

static struct tls_server *srv;
static struct kube_client *kc;
static char kcpath[PATH_MAX];

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}


static void setup(void)
{
	/* loopback only: never through a proxy from the environment */
	setenv("NO_PROXY", "*", 1);
	setenv("no_proxy", "*", 1);
	unsetenv("KUBECONFIG");
	srv = ts_start();
	ts_write_kubeconfig(kcpath, ts_url(srv), ts_ca_pem(srv));
}

static void teardown(void)
{
	kube_client_free(kc);
	kc = NULL;
	ts_stop(srv);
	srv = NULL;
	if (kcpath[0])
		unlink(kcpath);
	kcpath[0] = '\0';
}

TestSuite(watch, .init = setup, .fini = teardown, .timeout = 60);

static struct kube_client *client(void)
{
	struct kube_opts o = {
		.kubeconfig = kcpath,
		.max_retries = 2,
		.backoff_base_ms = 20,
		.backoff_max_ms = 100,
		.connect_timeout_ms = 5000,
	};
	struct gerr e = GERR_INIT;
	int rc = kube_client_new(&o, &kc, &e);
	cr_assert_eq(rc, 0, "kube_client_new: %s", e.msg ? e.msg : "");
	return kc;
}

static const struct ts_request *req(size_t i)
{
	const struct ts_request *r = ts_request(srv, i);
	cr_assert_not_null(r, "request %zu was not recorded (%zu requests)", i, ts_nrequests(srv));
	return r;
}

/* The value of query parameter key in path (as sent, not decoded), or NULL;
 * the caller frees it. */
static char *qparam(const char *path, const char *key)
{
	const char *q = strchr(path, '?');
	size_t kl = strlen(key);
	while (q) {
		q++;
		if (!strncmp(q, key, kl) && q[kl] == '=') {
			const char *v = q + kl + 1;
			size_t vl = strcspn(v, "&");
			char *s = malloc(vl + 1);
			memcpy(s, v, vl);
			s[vl] = '\0';
			return s;
		}
		q = strchr(q, '&');
	}
	return NULL;
}

static void assert_param(const struct ts_request *r, const char *key, const char *want)
{
	char *v = qparam(r->path, key);
	if (!want) {
		cr_assert_null(v, "%s: %s=%s should not be there", r->path, key, v);
		return;
	}
	cr_assert_not_null(v, "%s: no %s", r->path, key);
	cr_assert_str_eq(v, want, "%s: %s is %s, want %s", r->path, key, v, want);
	free(v);
}

static int is_watch(const struct ts_request *r)
{
	char *w = qparam(r->path, "watch");
	int yes = w && !strcmp(w, "1");
	free(w);
	return yes;
}

static void assert_list_req(size_t i)
{
	const struct ts_request *r = req(i);
	cr_assert_str_eq(r->method, "GET");
	cr_assert(!strncmp(r->path, PODS "?", strlen(PODS) + 1), "request %zu: %s", i, r->path);
	cr_assert(!is_watch(r), "request %zu should be a list: %s", i, r->path);
}

static void assert_watch_req(size_t i, const char *rv)
{
	const struct ts_request *r = req(i);
	cr_assert_str_eq(r->method, "GET");
	cr_assert(!strncmp(r->path, PODS "?", strlen(PODS) + 1), "request %zu: %s", i, r->path);
	cr_assert(is_watch(r), "request %zu should be a watch: %s", i, r->path);
	assert_param(r, "resourceVersion", rv);
}

/* ---- server side: a route that hands lists and watches to the test ---- */

typedef void (*step_fn)(int n, const struct ts_request *r, struct ts_reply *out);

struct script {
	step_fn list;   /* n: 0 for the first list request, ... */
	step_fn watch;  /* n: 0 for the first watch request, ... */
	int lists, watches;
};

static void route(void *ud, const struct ts_request *r, struct ts_reply *out)
{
	struct script *s = ud;
	if (strcmp(r->method, "GET") || strncmp(r->path, PODS "?", strlen(PODS) + 1))
		return; /* 599 */
	if (is_watch(r)) {
		if (s->watch)
			s->watch(s->watches, r, out);
		s->watches++;
	} else {
		if (s->list)
			s->list(s->lists, r, out);
		s->lists++;
	}
}

static struct script script;

static void use_script(step_fn list, step_fn watch)
{
	script = (struct script){ .list = list, .watch = watch };
	ts_set_route(srv, route, &script);
}

/* A pod list (names: comma-separated, may be "") at rv. */
static void reply_list(struct ts_reply *out, const char *rv, const char *names)
{
	char body[4096];
	int n = snprintf(body, sizeof(body),
			 "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"%s\"},\"items\":[",
			 rv);
	const char *p = names;
	int first = 1;
	while (*p) {
		size_t l = strcspn(p, ",");
		n += snprintf(body + n, sizeof(body) - (size_t)n,
			      "%s{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%.*s\",\"namespace\":\"ns\",\"resourceVersion\":\"%d\"}}",
			      first ? "" : ",", (int)l, p, 3 + (int)l);
		first = 0;
		p += l;
		if (*p == ',')
			p++;
	}
	snprintf(body + n, sizeof(body) - (size_t)n, "]}");
	ts_reply_set(out, 200, NULL, body);
}

/* One watch event line (with its newline); name NULL: a bookmark (only
 * metadata.resourceVersion). Static storage, rotated. */
static const char *ev(const char *type, const char *name, const char *rv)
{
	static char bufs[8][512];
	static int k;
	char *b = bufs[k++ % 8];
	if (name)
		snprintf(b, 512,
			 "{\"type\":\"%s\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"resourceVersion\":\"%s\"}}}\n",
			 type, name, rv);
	else
		snprintf(b, 512,
			 "{\"type\":\"%s\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"%s\"}}}\n",
			 type, rv);
	return b;
}

#define GONE_EVENT \
	"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: 11 (20)\",\"reason\":\"Expired\",\"code\":410}}\n"
#define GONE_STATUS \
	"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: 10 (20)\",\"reason\":\"Gone\",\"code\":410}"

/* ---- client side: record the events ---- */

struct rec {
	char type[16];
	char name[64];
	char rv[16];
};

struct seen {
	struct rec ev[64];
	int n;
	const char *stop_type;  /* return 1 after an event of this type */
	const char *fail_type;  /* return -1 (err set) on an event of this type */
};

static int on_event(void *ud, const char *type, const cJSON *obj, struct gerr *err)
{
	struct seen *s = ud;
	cr_assert_lt(s->n, 64, "too many events");
	struct rec *r = &s->ev[s->n++];
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
	snprintf(r->type, sizeof(r->type), "%s", type);
	snprintf(r->name, sizeof(r->name), "%s", cJSON_IsString(name) ? name->valuestring : "");
	snprintf(r->rv, sizeof(r->rv), "%s", cJSON_IsString(rv) ? rv->valuestring : "");
	if (s->fail_type && !strcmp(type, s->fail_type))
		return gerr_set(err, GERR_INVALID, "callback refused %s %s", type, r->name);
	return s->stop_type && !strcmp(type, s->stop_type) ? 1 : 0;
}

/* "ADDED a,ADDED b,MODIFIED a,BOOKMARK ,DELETED b" */
static char *seen_str(const struct seen *s)
{
	static char b[4096];
	size_t n = 0;
	b[0] = '\0';
	for (int i = 0; i < s->n; i++)
		n += (size_t)snprintf(b + n, sizeof(b) - n, "%s%s %s", i ? "," : "", s->ev[i].type, s->ev[i].name);
	return b;
}

static void assert_seen(const struct seen *s, const char *want)
{
	cr_assert_str_eq(seen_str(s), want);
}

/* ---- events in order; bookmarks; stop from the callback ---- */

static void list_ab10(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)n;
	(void)r;
	reply_list(out, "10", "a,b");
}

static void watch_order(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)r;
	if (n > 0)
		return; /* 599: a second watch is a failure */
	const char *mod = ev("MODIFIED", "a", "11");
	char first[256];
	snprintf(first, sizeof(first), "%.20s", mod);
	ts_reply_stream(out, 200, NULL);
	/* the first event split across two chunks, then one event per chunk */
	ts_reply_chunk(out, 0, first);
	ts_reply_chunk(out, 50, mod + strlen(first));
	ts_reply_chunk(out, 50, ev("BOOKMARK", NULL, "12"));
	ts_reply_chunk(out, 50, ev("DELETED", "b", "13"));
	ts_reply_chunk(out, HOLD_MS, "");
}

Test(watch, events_in_order_with_bookmark)
{
	client();
	use_script(list_ab10, watch_order);
	struct seen s = { .stop_type = "DELETED" };
	struct kube_watch_opts wo = { .label_selector = "app=x", .bookmarks = 1 };
	struct gerr err = GERR_INIT;
	long t0 = now_ms();
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	long took = now_ms() - t0;
	cr_assert_eq(rc, 0, "kube_watch: %s", err.msg);
	cr_assert_eq(err.code, GERR_OK);
	assert_seen(&s, "ADDED a,ADDED b,MODIFIED a,BOOKMARK ,DELETED b");
	cr_assert_str_eq(s.ev[2].rv, "11");
	cr_assert_str_eq(s.ev[3].rv, "12");
	cr_assert_str_eq(s.ev[4].rv, "13");
	/* the callback's stop ends the watch while the server still holds the stream */
	cr_assert_lt(took, 10000, "kube_watch returned after %ld ms", took);
	cr_assert_eq(ts_nrequests(srv), 2);
	assert_list_req(0);
	assert_param(req(0), "labelSelector", "app%3Dx");
	assert_param(req(0), "limit", "500");
	assert_watch_req(1, "10");
	assert_param(req(1), "allowWatchBookmarks", "true");
	assert_param(req(1), "labelSelector", "app%3Dx");
	assert_param(req(1), "timeoutSeconds", "300");
	assert_param(req(1), "continue", NULL);
	cr_assert_eq(kube_client_stats(kc)->lists, 1);
}

/* ---- a stream that ends: resume from the last resourceVersion seen ---- */

static void watch_resume(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)r;
	switch (n) {
	case 0: /* one event, then the server closes */
		ts_reply_set(out, 200, NULL, ev("MODIFIED", "a", "11"));
		break;
	case 1: /* a bookmark, its line without the final newline */
	{
		char b[512];
		snprintf(b, sizeof(b), "%s", ev("BOOKMARK", NULL, "12"));
		b[strlen(b) - 1] = '\0';
		ts_reply_set(out, 200, NULL, b);
		break;
	}
	case 2: /* nothing at all (a server-side timeoutSeconds end) */
		ts_reply_set(out, 200, NULL, "");
		break;
	case 3:
		ts_reply_stream(out, 200, NULL);
		ts_reply_chunk(out, 0, ev("DELETED", "a", "13"));
		ts_reply_chunk(out, HOLD_MS, "");
		break;
	default:
		break; /* 599 */
	}
}

Test(watch, resumes_from_last_resource_version)
{
	client();
	use_script(list_ab10, watch_resume);
	struct seen s = { .stop_type = "DELETED" };
	struct kube_watch_opts wo = { .bookmarks = 1 };
	struct gerr err = GERR_INIT;
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	cr_assert_eq(rc, 0, "kube_watch: %s", err.msg);
	assert_seen(&s, "ADDED a,ADDED b,MODIFIED a,BOOKMARK ,DELETED a");
	cr_assert_eq(ts_nrequests(srv), 5);
	assert_list_req(0);
	assert_watch_req(1, "10");
	assert_watch_req(2, "11");
	assert_watch_req(3, "12"); /* the bookmark's */
	assert_watch_req(4, "12"); /* an empty stream changes nothing */
	for (size_t i = 1; i < 5; i++)
		assert_param(req(i), "allowWatchBookmarks", "true");
	cr_assert_eq(kube_client_stats(kc)->lists, 1);
}

/* A start resourceVersion skips the list. */
Test(watch, start_resource_version_skips_list)
{
	client();
	use_script(NULL, watch_order);
	struct seen s = { .stop_type = "DELETED" };
	struct kube_watch_opts wo = { .resource_version = "10" };
	struct gerr err = GERR_INIT;
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	cr_assert_eq(rc, 0, "kube_watch: %s", err.msg);
	assert_seen(&s, "MODIFIED a,BOOKMARK ,DELETED b");
	cr_assert_eq(ts_nrequests(srv), 1);
	assert_watch_req(0, "10");
	assert_param(req(0), "allowWatchBookmarks", NULL);
	cr_assert_eq(kube_client_stats(kc)->lists, 0);
}

/* ---- 410 Gone: relist, deliver the current objects as ADDED, watch on ---- */

static void list_gone(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)r;
	if (n == 0)
		reply_list(out, "10", "a,b");
	else
		reply_list(out, "20", "b,c");
}

static void watch_gone_event(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)r;
	switch (n) {
	case 0:
		ts_reply_stream(out, 200, NULL);
		ts_reply_chunk(out, 0, ev("MODIFIED", "a", "11"));
		ts_reply_chunk(out, 20, GONE_EVENT);
		ts_reply_chunk(out, HOLD_MS, ""); /* the client must not wait for the end */
		break;
	case 1:
		ts_reply_stream(out, 200, NULL);
		ts_reply_chunk(out, 0, ev("DELETED", "c", "21"));
		ts_reply_chunk(out, HOLD_MS, "");
		break;
	default:
		break;
	}
}

Test(watch, gone_event_relists)
{
	client();
	use_script(list_gone, watch_gone_event);
	struct seen s = { .stop_type = "DELETED" };
	struct kube_watch_opts wo = { .label_selector = "app=x" };
	struct gerr err = GERR_INIT;
	long t0 = now_ms();
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	long took = now_ms() - t0;
	cr_assert_eq(rc, 0, "kube_watch: %s", err.msg);
	cr_assert_eq(err.code, GERR_OK);
	assert_seen(&s, "ADDED a,ADDED b,MODIFIED a,ADDED b,ADDED c,DELETED c");
	cr_assert_lt(took, 10000, "kube_watch returned after %ld ms", took);
	cr_assert_eq(ts_nrequests(srv), 4);
	assert_list_req(0);
	assert_watch_req(1, "10");
	assert_param(req(1), "allowWatchBookmarks", NULL);
	assert_list_req(2);
	assert_param(req(2), "labelSelector", "app%3Dx");
	assert_param(req(2), "resourceVersion", NULL);
	assert_watch_req(3, "20");
	assert_param(req(3), "labelSelector", "app%3Dx");
	cr_assert_eq(kube_client_stats(kc)->lists, 2);
}

static void watch_gone_status(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)r;
	switch (n) {
	case 0:
		ts_reply_set(out, 410, NULL, GONE_STATUS);
		break;
	case 1:
		ts_reply_set(out, 200, NULL, ev("DELETED", "c", "21"));
		break;
	default:
		break;
	}
}

Test(watch, gone_status_relists)
{
	client();
	use_script(list_gone, watch_gone_status);
	struct seen s = { .stop_type = "DELETED" };
	struct kube_watch_opts wo = { .bookmarks = 1 };
	struct gerr err = GERR_INIT;
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	cr_assert_eq(rc, 0, "kube_watch: %s", err.msg);
	cr_assert_eq(err.code, GERR_OK);
	assert_seen(&s, "ADDED a,ADDED b,ADDED b,ADDED c,DELETED c");
	/* the 410 is not retried: list, watch, list, watch */
	cr_assert_eq(ts_nrequests(srv), 4);
	assert_list_req(0);
	assert_watch_req(1, "10");
	assert_list_req(2);
	assert_watch_req(3, "20");
	cr_assert_eq(kube_client_stats(kc)->retries, 0);
}

/* The callback may stop during the relist: no further watch. */
Test(watch, stop_during_relist)
{
	client();
	use_script(list_gone, watch_gone_status);
	struct seen s = { .stop_type = "ADDED" };
	struct kube_watch_opts wo = { 0 };
	struct gerr err = GERR_INIT;
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	cr_assert_eq(rc, 0, "kube_watch: %s", err.msg);
	assert_seen(&s, "ADDED a");
	cr_assert_eq(ts_nrequests(srv), 1);
}

/* ---- other ERROR events and callback failures ---- */

static void watch_error500(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)r;
	if (n > 0)
		return;
	ts_reply_stream(out, 200, NULL);
	ts_reply_chunk(out, 0, ev("MODIFIED", "a", "11"));
	ts_reply_chunk(out, 0,
		       "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"etcdserver: the watch fell over\",\"reason\":\"InternalError\",\"code\":500}}\n");
	ts_reply_chunk(out, 0, ev("DELETED", "b", "12"));
	ts_reply_chunk(out, HOLD_MS, "");
}

Test(watch, error_event_fails)
{
	client();
	use_script(list_ab10, watch_error500);
	struct seen s = { .stop_type = "DELETED" };
	struct kube_watch_opts wo = { 0 };
	struct gerr err = GERR_INIT;
	long t0 = now_ms();
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	long took = now_ms() - t0;
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_API, "code %d: %s", err.code, err.msg);
	cr_assert_not_null(err.msg);
	cr_assert(strstr(err.msg, "etcdserver: the watch fell over"), "message: %s", err.msg);
	cr_assert(strstr(err.msg, "500"), "message: %s", err.msg);
	/* nothing after the error is delivered, no relist, no new watch */
	assert_seen(&s, "ADDED a,ADDED b,MODIFIED a");
	cr_assert_eq(ts_nrequests(srv), 2);
	cr_assert_lt(took, 10000, "kube_watch returned after %ld ms", took);
	gerr_clear(&err);
}

Test(watch, callback_error_aborts)
{
	client();
	use_script(list_ab10, watch_order);
	struct seen s = { .stop_type = "DELETED", .fail_type = "BOOKMARK" };
	struct kube_watch_opts wo = { .bookmarks = 1 };
	struct gerr err = GERR_INIT;
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_INVALID, "code %d: %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "callback refused BOOKMARK"), "message: %s", err.msg);
	assert_seen(&s, "ADDED a,ADDED b,MODIFIED a,BOOKMARK ");
	cr_assert_eq(ts_nrequests(srv), 2);
	gerr_clear(&err);
}

static void watch_garbage(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)r;
	if (n > 0)
		return;
	ts_reply_stream(out, 200, NULL);
	ts_reply_chunk(out, 0, "this is not json\n");
	ts_reply_chunk(out, HOLD_MS, "");
}

Test(watch, non_json_event_fails)
{
	client();
	use_script(list_ab10, watch_garbage);
	struct seen s = { 0 };
	struct kube_watch_opts wo = { 0 };
	struct gerr err = GERR_INIT;
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_API, "code %d: %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "not JSON"), "message: %s", err.msg);
	gerr_clear(&err);
}

/* ---- timeout ---- */

/* A server that sends the headers and then nothing, ignoring timeoutSeconds. */
static void watch_silent(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)n;
	(void)r;
	ts_reply_stream(out, 200, NULL);
	ts_reply_chunk(out, HOLD_MS, "");
}

Test(watch, timeout_silent_stream)
{
	client();
	use_script(list_ab10, watch_silent);
	struct seen s = { 0 };
	struct kube_watch_opts wo = { .timeout_ms = 1000 };
	struct gerr err = GERR_INIT;
	long t0 = now_ms();
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	long took = now_ms() - t0;
	fprintf(stderr, "timeout_silent_stream: timeout_ms 1000, kube_watch returned after %ld ms: %s\n", took,
		err.msg ? err.msg : "");
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_TIMEOUT, "code %d: %s", err.code, err.msg);
	cr_assert_geq(took, 900, "returned after %ld ms", took);
	/* generous: the client allows the server 2 s beyond the deadline to end the stream */
	cr_assert_lt(took, 5000, "returned after %ld ms", took);
	assert_seen(&s, "ADDED a,ADDED b");
	assert_param(req(1), "timeoutSeconds", "1");
	gerr_clear(&err);
}

/* A server that honours timeoutSeconds: the stream ends (empty) when asked. */
static void watch_honours_timeout(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)n;
	char *ts = qparam(r->path, "timeoutSeconds");
	long secs = ts ? strtol(ts, NULL, 10) : 300;
	free(ts);
	ts_reply_stream(out, 200, NULL);
	ts_reply_chunk(out, (int)(secs * 1000), "");
}

Test(watch, timeout_server_ends_stream)
{
	client();
	use_script(list_ab10, watch_honours_timeout);
	struct seen s = { 0 };
	struct kube_watch_opts wo = { .timeout_ms = 700 };
	struct gerr err = GERR_INIT;
	long t0 = now_ms();
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	long took = now_ms() - t0;
	fprintf(stderr, "timeout_server_ends_stream: timeout_ms 700, kube_watch returned after %ld ms: %s\n",
		took, err.msg ? err.msg : "");
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_TIMEOUT, "code %d: %s", err.code, err.msg);
	cr_assert_geq(took, 650, "returned after %ld ms", took);
	cr_assert_lt(took, 4000, "returned after %ld ms", took);
	cr_assert(strstr(err.msg, "700 ms"), "message: %s", err.msg);
	cr_assert_eq(ts_nrequests(srv), 2, "%zu requests", ts_nrequests(srv));
	assert_param(req(1), "timeoutSeconds", "1");
	gerr_clear(&err);
}

/* Events that do come are delivered before the timeout. */
static void watch_trickle(int n, const struct ts_request *r, struct ts_reply *out)
{
	(void)r;
	if (n > 0)
		return;
	ts_reply_stream(out, 200, NULL);
	ts_reply_chunk(out, 100, ev("MODIFIED", "a", "11"));
	ts_reply_chunk(out, 100, ev("MODIFIED", "b", "12"));
	ts_reply_chunk(out, HOLD_MS, "");
}

Test(watch, timeout_after_events)
{
	client();
	use_script(list_ab10, watch_trickle);
	struct seen s = { 0 };
	struct kube_watch_opts wo = { .timeout_ms = 800 };
	struct gerr err = GERR_INIT;
	int rc = kube_watch(kc, PODS, &wo, on_event, &s, &err);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_TIMEOUT, "code %d: %s", err.code, err.msg);
	assert_seen(&s, "ADDED a,ADDED b,MODIFIED a,MODIFIED b");
	gerr_clear(&err);
}

/* ---- kube_list: an expired continue token restarts the list ---- */

#define EXPIRED_410 \
	"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.\",\"reason\":\"Expired\",\"code\":410}"

static int first_pages;
static int always_expire;

static void page(struct ts_reply *out, const char *rv, const char *cont, const char *names)
{
	char body[2048];
	int n = snprintf(body, sizeof(body), "{\"kind\":\"NodeList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"%s\"",
			 rv);
	if (cont)
		n += snprintf(body + n, sizeof(body) - (size_t)n, ",\"continue\":\"%s\"", cont);
	n += snprintf(body + n, sizeof(body) - (size_t)n, "},\"items\":[");
	const char *p = names;
	int first = 1;
	while (*p) {
		size_t l = strcspn(p, ",");
		n += snprintf(body + n, sizeof(body) - (size_t)n, "%s{\"metadata\":{\"name\":\"%.*s\"}}", first ? "" : ",",
			      (int)l, p);
		first = 0;
		p += l;
		if (*p == ',')
			p++;
	}
	snprintf(body + n, sizeof(body) - (size_t)n, "]}");
	ts_reply_set(out, 200, NULL, body);
}

static void route_expiring_pages(void *ud, const struct ts_request *r, struct ts_reply *out)
{
	(void)ud;
	if (strcmp(r->method, "GET") || strncmp(r->path, "/api/v1/nodes?", 14))
		return;
	char *cont = qparam(r->path, "continue");
	char *limit = qparam(r->path, "limit");
	if (!limit || strcmp(limit, "2")) {
		ts_reply_set(out, 400, NULL, "{\"kind\":\"Status\",\"message\":\"limit is not 2\",\"code\":400}");
	} else if (!cont) {
		/* the first snapshot at rv 30, a new one at rv 40 after the restart */
		int k = first_pages++;
		page(out, k ? "40" : "30", k ? "c2" : "c1", "n1,n2");
	} else if (!strcmp(cont, "c1") || always_expire) {
		ts_reply_set(out, 410, NULL, EXPIRED_410);
	} else if (!strcmp(cont, "c2")) {
		page(out, "40", "c3", "n3,n4");
	} else if (!strcmp(cont, "c3")) {
		page(out, "40", NULL, "n5");
	}
	free(cont);
	free(limit);
}

Test(watch, list_restarts_on_expired_continue)
{
	client();
	first_pages = 0;
	always_expire = 0;
	ts_set_route(srv, route_expiring_pages, NULL);
	struct kube_list_opts lo = { .limit = 2 };
	cJSON *items = NULL;
	char *rv = NULL;
	struct gerr err = GERR_INIT;
	int rc = kube_list(kc, "/api/v1/nodes", &lo, &items, &rv, &err);
	cr_assert_eq(rc, 0, "kube_list: %s", err.msg);
	cr_assert_eq(err.code, GERR_OK);
	cr_assert_eq(cJSON_GetArraySize(items), 5, "%d items", cJSON_GetArraySize(items));
	const char *want[] = { "n1", "n2", "n3", "n4", "n5" };
	for (int i = 0; i < 5; i++) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items, i), "metadata"), "name");
		cr_assert(cJSON_IsString(name));
		cr_assert_str_eq(name->valuestring, want[i]);
	}
	cr_assert_not_null(rv);
	cr_assert_str_eq(rv, "40");
	cr_assert_eq(ts_nrequests(srv), 5);
	cr_assert_str_eq(req(0)->path, "/api/v1/nodes?limit=2");
	cr_assert_str_eq(req(1)->path, "/api/v1/nodes?limit=2&continue=c1");
	cr_assert_str_eq(req(2)->path, "/api/v1/nodes?limit=2");
	cr_assert_str_eq(req(3)->path, "/api/v1/nodes?limit=2&continue=c2");
	cr_assert_str_eq(req(4)->path, "/api/v1/nodes?limit=2&continue=c3");
	cr_assert_eq(kube_client_stats(kc)->lists, 5);
	cr_assert_eq(kube_client_stats(kc)->retries, 0);
	cJSON_Delete(items);
	free(rv);
}

Test(watch, list_gives_up_when_continue_always_expires)
{
	client();
	first_pages = 0;
	always_expire = 1;
	ts_set_route(srv, route_expiring_pages, NULL);
	struct kube_list_opts lo = { .limit = 2 };
	cJSON *items = NULL;
	char *rv = NULL;
	struct gerr err = GERR_INIT;
	int rc = kube_list(kc, "/api/v1/nodes", &lo, &items, &rv, &err);
	cr_assert_eq(rc, -1);
	cr_assert_eq(err.code, GERR_GONE, "code %d: %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "too old"), "message: %s", err.msg);
	cr_assert_null(rv);
	/* the first attempt and three restarts, two pages each */
	cr_assert_eq(ts_nrequests(srv), 8, "%zu requests", ts_nrequests(srv));
	gerr_clear(&err);
}
