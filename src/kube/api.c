/* API operations on top of the HTTP engine. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#include "internal.h"
#include "gpuctl/util.h"
#include "gpuctl/owned.h"

#define DEFAULT_PAGE 500
#define DEFAULT_MAX_PAGES 20000 /* 10 million objects at the default page size */

static void pct_encode(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			buf_addc(b, (char)*p);
		} else {
			buf_addc(b, '%');
			buf_addc(b, hex[*p >> 4]);
			buf_addc(b, hex[*p & 15]);
		}
	}
}

void kube_query_add(struct buf *b, const char *key, const char *value)
{
	buf_addc(b, strchr(b->s, '?') ? '&' : '?');
	buf_adds(b, key);
	buf_addc(b, '=');
	pct_encode(b, value);
}

char *kube_path(const char *group_version, const char *ns, const char *resource, const char *name)
{
	struct buf b = BUF_INIT;
	if (!strcmp(group_version, "v1"))
		buf_adds(&b, "/api/v1");
	else
		buf_addf(&b, "/apis/%s", group_version);
	if (ns) {
		buf_adds(&b, "/namespaces/");
		pct_encode(&b, ns);
	}
	buf_addc(&b, '/');
	buf_adds(&b, resource);
	if (name) {
		buf_addc(&b, '/');
		pct_encode(&b, name);
	}
	return buf_detach(&b);
}

const char *kube_patch_content_type(enum kube_patch_type t)
{
	switch (t) {
	case KUBE_PATCH_STRATEGIC: return "application/strategic-merge-patch+json";
	case KUBE_PATCH_JSON: return "application/json-patch+json";
	case KUBE_PATCH_APPLY: return "application/apply-patch+yaml";
	case KUBE_PATCH_MERGE:
	default: return "application/merge-patch+json";
	}
}

static int simple(struct kube_client *c, const char *method, const char *path, const char *body,
		  const char *ctype, int idempotent, cJSON **out, struct gerr *err)
{
	struct kube_call call = { .method = method, .path = path, .body = body, .content_type = ctype,
				  .idempotent = idempotent };
	int rc = kube_do(c, &call, err);
	if (rc == 0 && out) {
		*out = call.response;
		call.response = NULL;
	}
	kube_call_release(&call);
	return rc;
}

int kube_get(struct kube_client *c, const char *path, cJSON **out, struct gerr *err)
{
	return simple(c, "GET", path, NULL, NULL, -1, out, err);
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* One JSON value at *p (cJSON's parser, so exactly what parsing the whole
 * text would give); *p moves past it.  NULL when there is none. */
static cJSON *parse_value_at(const char **p, const char *end)
{
	const char *stop = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(*p, (size_t)(end - *p), &stop, 0);
	if (v)
		*p = stop;
	return v;
}

/* Read one page of a List (a JSON object) from its text member by member:
 * each element of the first "items" array is parsed alone and handed to fn,
 * so a page is never held whole as cJSON (a page of 500 Nodes is 2 MB of
 * text but 9 MB of cJSON); the first "metadata" goes to *md.  -1 with err
 * set when the text is not such an object or fn fails.  An empty body is an
 * empty page, as kube_get has it (no response, no error). */
static int scan_page(const char *s, size_t len, kube_item_fn fn, void *ud, cJSON **md, struct gerr *err)
{
	const char *p = s, *end = s + len;
	int items_seen = 0;
	*md = NULL;
	if (!len)
		return 0;
	p = skip_ws(p, end);
	if (p == end || *p != '{')
		goto not_json;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}') {
		p++;
		goto done;
	}
	for (;;) {
		cJSON *key = parse_value_at(&p, end);
		if (!cJSON_IsString(key)) {
			cJSON_Delete(key);
			goto not_json;
		}
		p = skip_ws(p, end);
		if (p == end || *p != ':') {
			cJSON_Delete(key);
			goto not_json;
		}
		p = skip_ws(p + 1, end);
		if (!strcmp(key->valuestring, "items") && !items_seen && p < end && *p == '[') {
			items_seen = 1;
			p = skip_ws(p + 1, end);
			if (p < end && *p == ']') {
				p++;
			} else {
				for (;;) {
					cJSON *it = parse_value_at(&p, end);
					if (!it) {
						cJSON_Delete(key);
						goto not_json;
					}
					if (fn(ud, it, err) < 0) {
						cJSON_Delete(key);
						goto fail;
					}
					p = skip_ws(p, end);
					if (p < end && *p == ',') {
						p = skip_ws(p + 1, end);
						continue;
					}
					if (p < end && *p == ']') {
						p++;
						break;
					}
					cJSON_Delete(key);
					goto not_json;
				}
			}
		} else {
			cJSON *v = parse_value_at(&p, end);
			if (!v) {
				cJSON_Delete(key);
				goto not_json;
			}
			/* as cJSON's lookup: the first member of that name counts */
			if (!strcmp(key->valuestring, "metadata") && !*md)
				*md = v;
			else
				cJSON_Delete(v);
			if (!strcmp(key->valuestring, "items"))
				items_seen = 1;
		}
		cJSON_Delete(key);
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}') {
			p++;
			break;
		}
		goto not_json;
	}
done:
	if (skip_ws(p, end) != end)
		goto not_json;
	return 0;
not_json:
	gerr_set(err, GERR_API, "request: the server sent a response that is not JSON");
fail:
	cJSON_Delete(*md);
	*md = NULL;
	return -1;
}

int kube_list_each(struct kube_client *c, const char *path, const struct kube_list_opts *lo, kube_item_fn fn,
		   void *ud, char **rv, struct gerr *err)
{
	/* limit 0: no limit parameter, the server sends the whole list at once */
	long limit = lo && lo->limit > 0 ? lo->limit
		     : c->opts.chunk_size > 0 ? c->opts.chunk_size
		     : c->opts.chunk_size < 0 ? 0 : DEFAULT_PAGE;
	long max_pages = lo && lo->max_pages > 0 ? lo->max_pages : DEFAULT_MAX_PAGES;
	long pages = 0;
	char *cont = NULL;
	int restarts = 0;
	for (;;) {
		struct buf p = BUF_INIT;
		buf_adds(&p, path);
		if (lo && lo->label_selector && *lo->label_selector)
			kube_query_add(&p, "labelSelector", lo->label_selector);
		if (lo && lo->field_selector && *lo->field_selector)
			kube_query_add(&p, "fieldSelector", lo->field_selector);
		if (limit > 0) {
			char lim[32];
			snprintf(lim, sizeof(lim), "%ld", limit);
			kube_query_add(&p, "limit", lim);
		}
		if (cont)
			kube_query_add(&p, "continue", cont);
		c->stats.lists++;
		struct kube_call call = { .method = "GET", .path = p.s, .idempotent = -1, .no_parse = 1 };
		/* as kubectl asks (v1, then v1beta1, then the objects themselves) */
		if (lo && lo->metadata_only)
			call.accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
				      "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1,application/json";
		int rc = kube_do(c, &call, err);
		buf_release(&p);
		if (rc < 0) {
			kube_call_release(&call);
			if (err->code == GERR_GONE && cont && restarts < 3) {
				/* the continue token expired: start the list again */
				restarts++;
				pages = 0;
				free(cont);
				cont = NULL;
				gerr_clear(err);
				if (fn(ud, NULL, err) < 0)
					return -1;
				continue;
			}
			free(cont);
			return -1;
		}
		/* Each item is handed over as soon as it is parsed, and the page's
		 * text goes before the next one is fetched: a caller that keeps a
		 * few fields of each item never holds more than one page of text. */
		cJSON *md = NULL;
		rc = scan_page(call.text.s, call.text.len, fn, ud, &md, err);
		kube_call_release(&call);
		if (rc < 0) {
			free(cont);
			return -1;
		}
		const cJSON *cj = cJSON_GetObjectItemCaseSensitive(md, "continue");
		const char *next = cJSON_IsString(cj) && *cj->valuestring ? cj->valuestring : NULL;
		/* A server (or a proxy) that keeps sending a continue token must
		 * not keep us listing forever: the same token twice in a row is a
		 * loop, and the number of pages has a cap. */
		if (next && cont && !strcmp(next, cont)) {
			cJSON_Delete(md);
			free(cont);
			return gerr_set(err, GERR_API,
					"list %s: the server sent the same continue token twice; stopping a list that would never end",
					path);
		}
		if (next && ++pages >= max_pages) {
			cJSON_Delete(md);
			free(cont);
			gerr_set(err, GERR_API, "list %s: still not complete after %ld pages of %ld; giving up", path,
				 max_pages, limit);
			gerr_hint(err, "the server keeps sending continue tokens; check the API server or any proxy in front of it");
			return -1;
		}
		free(cont);
		cont = next ? xstrdup(next) : NULL;
		if (!cont) {
			if (rv) {
				const cJSON *r = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
				*rv = cJSON_IsString(r) ? xstrdup(r->valuestring) : NULL;
			}
			cJSON_Delete(md);
			break;
		}
		cJSON_Delete(md);
	}
	return 0;
}

/* kube_list's gatherer: every item, in order; a restarted list starts afresh. */
static int gather(void *ud, cJSON *item, struct gerr *err)
{
	(void)err;
	cJSON **all = ud;
	if (!item) {
		cJSON_Delete(*all);
		*all = cJSON_CreateArray();
		return 0;
	}
	cJSON_AddItemToArray(*all, item);
	return 0;
}

int kube_list(struct kube_client *c, const char *path, const struct kube_list_opts *lo, cJSON **items,
	      char **rv, struct gerr *err)
{
	cJSON *all = cJSON_CreateArray();
	if (kube_list_each(c, path, lo, gather, &all, rv, err) < 0) {
		cJSON_Delete(all);
		return -1;
	}
	*items = all;
	return 0;
}

static char *with_write_params(const char *path, int dry_run, const char *field_manager, int force)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, path);
	if (dry_run)
		kube_query_add(&b, "dryRun", "All");
	if (field_manager)
		kube_query_add(&b, "fieldManager", field_manager);
	if (force)
		kube_query_add(&b, "force", "true");
	return buf_detach(&b);
}

int kube_create(struct kube_client *c, const char *path, const cJSON *obj, int dry_run, cJSON **out,
		struct gerr *err)
{
	char *p = with_write_params(path, dry_run, GPUCTL_FIELD_MANAGER, 0);
	char *body = cJSON_PrintUnformatted(obj);
	int rc = simple(c, "POST", p, body, "application/json", 0, out, err);
	free(body);
	free(p);
	return rc;
}

int kube_patch(struct kube_client *c, const char *path, enum kube_patch_type type, const char *body,
	       int dry_run, int force, cJSON **out, struct gerr *err)
{
	char *p = with_write_params(path, dry_run, GPUCTL_FIELD_MANAGER, type == KUBE_PATCH_APPLY && force);
	/* apply and merge patches are declarative: repeating them is safe */
	int idem = type == KUBE_PATCH_APPLY || type == KUBE_PATCH_MERGE;
	int rc = simple(c, "PATCH", p, body, kube_patch_content_type(type), idem, out, err);
	free(p);
	return rc;
}

int kube_apply(struct kube_client *c, const char *path, const cJSON *obj, int dry_run, int force,
	       cJSON **out, struct gerr *err)
{
	/* JSON is YAML: the apply content type accepts it */
	char *body = cJSON_PrintUnformatted(obj);
	int rc = kube_patch(c, path, KUBE_PATCH_APPLY, body, dry_run, force, out, err);
	free(body);
	return rc;
}

int kube_delete(struct kube_client *c, const char *path, const char *propagation, int dry_run,
		struct gerr *err)
{
	char *p = with_write_params(path, dry_run, NULL, 0);
	char *body = NULL;
	if (propagation) {
		/* With a body the API server takes every option from it and
		 * ignores the query (?dryRun=All included): dryRun goes in the
		 * body too, or a dry run deletes for real. */
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "kind", "DeleteOptions");
		cJSON_AddStringToObject(o, "apiVersion", "v1");
		cJSON_AddStringToObject(o, "propagationPolicy", propagation);
		if (dry_run) {
			cJSON *dr = cJSON_AddArrayToObject(o, "dryRun");
			cJSON_AddItemToArray(dr, cJSON_CreateString("All"));
		}
		body = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
	}
	int rc = simple(c, "DELETE", p, body, "application/json", 1, NULL, err);
	free(body);
	free(p);
	return rc;
}

int kube_logs(struct kube_client *c, const char *ns, const char *pod, const char *container,
	      long tail_lines, struct buf *out, struct gerr *err)
{
	char *base = kube_path("v1", ns, "pods", pod);
	struct buf p = BUF_INIT;
	buf_addf(&p, "%s/log", base);
	free(base);
	if (container)
		kube_query_add(&p, "container", container);
	if (tail_lines > 0) {
		char n[32];
		snprintf(n, sizeof(n), "%ld", tail_lines);
		kube_query_add(&p, "tailLines", n);
	}
	char *what = xasprintf("logs of pod %s/%s", ns, pod);
	struct kube_call call = { .method = "GET", .path = p.s, .idempotent = 1, .raw = 1, .what = what };
	int rc = kube_do(c, &call, err);
	if (rc == 0)
		buf_add(out, call.text.s, call.text.len);
	kube_call_release(&call);
	free(what);
	buf_release(&p);
	return rc;
}

int kube_server_version(struct kube_client *c, char **out, struct gerr *err)
{
	cJSON *v = NULL;
	if (kube_get(c, "/version", &v, err) < 0)
		return -1;
	const cJSON *gv = cJSON_GetObjectItemCaseSensitive(v, "gitVersion");
	*out = xstrdup(cJSON_IsString(gv) ? gv->valuestring : "unknown");
	cJSON_Delete(v);
	return 0;
}

/* ---- watch ---- */

struct watch_state {
	kube_watch_fn fn;
	void *ud;
	char *rv;
	int gone;
	int stop;
	long events;     /* events delivered by the current stream */
};

static void set_rv(struct watch_state *ws, const cJSON *obj)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
	if (cJSON_IsString(r) && *r->valuestring) {
		free(ws->rv);
		ws->rv = xstrdup(r->valuestring);
	}
}

static int on_watch_line(void *ud, const char *line, size_t len, struct gerr *err)
{
	struct watch_state *ws = ud;
	cJSON *ev = cJSON_ParseWithLength(line, len);
	if (!cJSON_IsObject(ev)) {
		cJSON_Delete(ev);
		return gerr_set(err, GERR_API, "watch: the server sent an event that is not JSON");
	}
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "type");
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
	const char *type = cJSON_IsString(t) ? t->valuestring : "";
	int r = 0;
	if (!strcmp(type, "ERROR")) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(obj, "message");
		if (cJSON_IsNumber(code) && code->valueint == 410) {
			ws->gone = 1;
			r = 1;
		} else {
			r = gerr_set(err, GERR_API, "watch: %s (HTTP %d)",
				     cJSON_IsString(msg) ? msg->valuestring : "error event",
				     cJSON_IsNumber(code) ? code->valueint : 0);
		}
	} else {
		set_rv(ws, obj);
		ws->events++;
		r = ws->fn(ws->ud, type, obj, err);
		if (r > 0)
			ws->stop = 1;
	}
	cJSON_Delete(ev);
	return r;
}

int kube_watch_decode(const char *line, size_t len, kube_watch_fn fn, void *ud, struct gerr *err)
{
	struct watch_state ws = { .fn = fn, .ud = ud };
	int r = on_watch_line(&ws, line, len, err);
	free(ws.rv);
	return r;
}

static int relist(struct kube_client *c, const char *path, const struct kube_watch_opts *wo,
		  struct watch_state *ws, struct gerr *err)
{
	struct kube_list_opts lo = { .label_selector = wo->label_selector, .field_selector = wo->field_selector };
	cJSON *items = NULL;
	char *rv = NULL;
	if (kube_list(c, path, &lo, &items, &rv, err) < 0)
		return -1;
	free(ws->rv);
	ws->rv = rv;
	cJSON *it;
	int r = 0;
	cJSON_ArrayForEach(it, items) {
		r = ws->fn(ws->ud, "ADDED", it, err);
		if (r != 0)
			break;
	}
	cJSON_Delete(items);
	if (r > 0)
		ws->stop = 1;
	return r < 0 ? -1 : 0;
}

int kube_watch(struct kube_client *c, const char *path, const struct kube_watch_opts *wo,
	       kube_watch_fn fn, void *ud, struct gerr *err)
{
	struct watch_state ws = { .fn = fn, .ud = ud };
	long deadline = wo->timeout_ms > 0 ? mono_ms() + wo->timeout_ms : 0;
	int rc = 0, empty = 0;
	unsigned seed = (unsigned)mono_ms();
	if (wo->resource_version && *wo->resource_version)
		ws.rv = xstrdup(wo->resource_version);
	else if (relist(c, path, wo, &ws, err) < 0)
		return -1;
	while (!ws.stop) {
		long left = deadline ? deadline - mono_ms() : 0;
		if (deadline && left <= 0) {
			rc = gerr_set(err, GERR_TIMEOUT, "watch %s: no result within %ld ms", path, wo->timeout_ms);
			break;
		}
		struct buf p = BUF_INIT;
		buf_adds(&p, path);
		kube_query_add(&p, "watch", "1");
		if (ws.rv)
			kube_query_add(&p, "resourceVersion", ws.rv);
		if (wo->bookmarks)
			kube_query_add(&p, "allowWatchBookmarks", "true");
		if (wo->label_selector && *wo->label_selector)
			kube_query_add(&p, "labelSelector", wo->label_selector);
		if (wo->field_selector && *wo->field_selector)
			kube_query_add(&p, "fieldSelector", wo->field_selector);
		char ts[32];
		long secs = deadline ? (left + 999) / 1000 : 300;
		if (secs > 300)
			secs = 300;
		snprintf(ts, sizeof(ts), "%ld", secs);
		kube_query_add(&p, "timeoutSeconds", ts);
		struct kube_call call = { .method = "GET", .path = p.s, .idempotent = 1, .what = "watch" };
		ws.gone = 0;
		ws.events = 0;
		/* timeoutSeconds (rounded up) ends the stream at the deadline or
		 * after it: no need to wait beyond the deadline for the server */
		int r = kube_stream(c, &call, on_watch_line, &ws, deadline ? left : 0, err);
		kube_call_release(&call);
		buf_release(&p);
		if (r < 0 && err->code == GERR_GONE) {
			ws.gone = 1;
		} else if (r < 0 && err->code == GERR_TIMEOUT && deadline && mono_ms() >= deadline) {
			rc = gerr_set(err, GERR_TIMEOUT, "watch %s: no result within %ld ms", path, wo->timeout_ms);
			break;
		} else if (r < 0) {
			rc = -1;
			break;
		}
		if (ws.gone) {
			/* our resourceVersion is too old: relist and go on from the new one */
			gerr_clear(err);
			if (relist(c, path, wo, &ws, err) < 0) {
				rc = -1;
				break;
			}
			empty = 0;
		} else if (!ws.stop && ws.events == 0) {
			/* a stream that ended at once: back off before asking again */
			long d = kube_backoff_ms(++empty, 100, 5000, -1, &seed);
			if (deadline && d > deadline - mono_ms())
				d = deadline - mono_ms();
			if (d > 0) {
				struct timespec pause = { d / 1000, (d % 1000) * 1000000L };
				nanosleep(&pause, NULL);
			}
		} else {
			empty = 0;
		}
	}
	free(ws.rv);
	return rc;
}
