/* The HTTP engine: one libcurl multi handle (one connection pool, HTTP/2
 * multiplexing), TLS from the kubeconfig, auth, retries with backoff. */
#include <ctype.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "gpuctl/util.h"

#define MAX_BODY (512u << 20)
#define RETRY_AFTER_CAP_S 60

/* ---- retry policy ---- */

int kube_should_retry(int curl_code, long status, int idempotent, int connected)
{
	if (curl_code != CURLE_OK) {
		switch (curl_code) {
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			return 1; /* nothing reached the server */
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return idempotent || !connected;
		default:
			return 0; /* TLS failures, timeouts, bad URLs: retrying will not help */
		}
	}
	if (status == 429)
		return 1; /* the server did not process it */
	if (status == 500 || status == 502 || status == 503 || status == 504)
		return idempotent;
	return 0;
}

long kube_backoff_ms(int n, long base_ms, long max_ms, long retry_after_s, unsigned *seed)
{
	if (retry_after_s >= 0) {
		if (retry_after_s > RETRY_AFTER_CAP_S)
			retry_after_s = RETRY_AFTER_CAP_S;
		return retry_after_s * 1000L;
	}
	long cap = base_ms;
	for (int i = 1; i < n && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	long half = cap / 2;
	return half + (long)(rand_r(seed) % (unsigned)(cap - half + 1));
}

long kube_parse_retry_after(const char *value, time_t now)
{
	while (*value == ' ' || *value == '\t')
		value++;
	if (!*value)
		return -1;
	char *end;
	if (isdigit((unsigned char)*value)) {
		long v = strtol(value, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end || v < 0)
			return -1;
		return v;
	}
	struct tm tm = { 0 };
	const char *p = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!p)
		return -1;
	time_t t = timegm(&tm);
	return t > now ? (long)(t - now) : 0;
}

/* ---- messages ---- */

char *kube_url_redact(const char *url)
{
	if (!url)
		return NULL;
	/* scheme://[userinfo@]host...: the userinfo ends at the last '@' before
	 * the path, query or fragment */
	const char *sep = strstr(url, "://");
	const char *auth = sep ? sep + 3 : url;
	size_t alen = strcspn(auth, "/?#");
	const char *at = NULL;
	for (const char *p = auth; p < auth + alen; p++)
		if (*p == '@')
			at = p;
	if (!at)
		return xstrdup(url);
	return xasprintf("%.*s***@%s", (int)(auth - url), url, at + 1);
}

/* ---- client ---- */

static void warn(struct kube_client *c, const char *msg)
{
	if (c->opts.warn)
		c->opts.warn(c->opts.warn_ud, msg);
}

static int load_token_file(struct kube_client *c, struct gerr *err)
{
	if (!c->cfg->token_file)
		return 0;
	struct buf b = BUF_INIT;
	if (buf_read_file(&b, c->cfg->token_file, 1u << 20, err) < 0) {
		buf_wipe(&b);
		return gerr_prefix(err, "tokenFile of user \"%s\"", c->cfg->user_name ? c->cfg->user_name : "");
	}
	while (b.len && isspace((unsigned char)b.s[b.len - 1]))
		b.s[--b.len] = '\0';
	free_secret(c->cfg->token);
	c->cfg->token = xstrdup(b.s);
	buf_wipe(&b);
	return 0;
}

static int refresh_exec(struct kube_client *c, struct gerr *err)
{
	if (!c->cfg->exec)
		return 0;
	if (kube_exec_run(c->cfg, isatty(0), &c->cred, err) < 0)
		return -1;
	c->have_cred = 1;
	return 0;
}

static int ensure_creds(struct kube_client *c, struct gerr *err)
{
	if (!c->cfg->exec)
		return 0;
	/* cached until expirationTimestamp (with a little slack) */
	if (c->have_cred && (!c->cred.expires || c->cred.expires > time(NULL) + 10))
		return 0;
	return refresh_exec(c, err);
}

int kube_client_new(const struct kube_opts *o, struct kube_client **out, struct gerr *err)
{
	struct kube_client *c = xcalloc(1, sizeof(*c));
	c->opts = *o;
	if (c->opts.connect_timeout_ms <= 0)
		c->opts.connect_timeout_ms = 10000;
	if (c->opts.max_retries < 0)
		c->opts.max_retries = 0;
	if (c->opts.backoff_base_ms <= 0)
		c->opts.backoff_base_ms = 200;
	if (c->opts.backoff_max_ms <= 0)
		c->opts.backoff_max_ms = 10000;
	c->seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	buf_init(&c->cred.cert_pem);
	buf_init(&c->cred.key_pem);
	if (kube_config_load(o, &c->cfg, err) < 0)
		goto fail;
	if (load_token_file(c, err) < 0)
		goto fail;
	c->server_shown = kube_url_redact(c->cfg->server);
	if (c->cfg->insecure)
		warn(c, "insecure-skip-tls-verify is set: the server's certificate is NOT checked; "
			"anyone on the network path can read and change this traffic");
	/* tls-server-name: connect to the real host but verify (and send SNI for) the given name */
	c->base_url = xstrdup(c->cfg->server);
	if (c->cfg->tls_server_name) {
		CURLU *u = curl_url();
		char *host = NULL, *port = NULL;
		if (curl_url_set(u, CURLUPART_URL, c->cfg->server, 0) == CURLUE_OK &&
		    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
			char *map = xasprintf("%s:%s:%s:%s", c->cfg->tls_server_name, port, host, port);
			c->connect_to = curl_slist_append(NULL, map);
			free(map);
			char *nu = NULL;
			curl_url_set(u, CURLUPART_HOST, c->cfg->tls_server_name, 0);
			if (curl_url_get(u, CURLUPART_URL, &nu, 0) == CURLUE_OK) {
				free(c->base_url);
				size_t n = strlen(nu);
				while (n && nu[n - 1] == '/')
					n--;
				c->base_url = xstrndup(nu, n);
				curl_free(nu);
			}
		}
		curl_free(host);
		curl_free(port);
		curl_url_cleanup(u);
	}
	c->multi = curl_multi_init();
	if (!c->multi) {
		gerr_set(err, GERR_INTERNAL, "cannot initialise libcurl");
		goto fail;
	}
	curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	*out = c;
	return 0;
fail:
	kube_client_free(c);
	return -1;
}

void kube_client_free(struct kube_client *c)
{
	if (!c)
		return;
	if (c->multi)
		curl_multi_cleanup(c->multi);
	kube_exec_cred_release(&c->cred);
	kube_config_free(c->cfg);
	free(c->base_url);
	free(c->server_shown);
	curl_slist_free_all(c->connect_to);
	for (size_t i = 0; i < c->nwarnings; i++)
		free(c->warnings_seen[i]);
	free(c->warnings_seen);
	free(c);
}

const struct kube_config *kube_client_config(const struct kube_client *c)
{
	return c->cfg;
}

const struct kube_stats *kube_client_stats(const struct kube_client *c)
{
	return &c->stats;
}

void kube_call_release(struct kube_call *call)
{
	cJSON_Delete(call->response);
	call->response = NULL;
	buf_release(&call->text);
	gerr_clear(&call->err);
}

/* ---- one transfer ---- */

enum xstate { X_PENDING, X_ACTIVE, X_DONE };

struct xfer {
	struct kube_call *call;
	CURL *easy;
	struct curl_slist *headers;
	char *auth_header;
	char errbuf[CURL_ERROR_SIZE];
	long retry_after_s;
	struct buf warnings;
	int retries;
	int reauthed;
	long next_at;
	enum xstate state;
	/* streaming */
	kube_line_fn line_fn;
	void *line_ud;
	size_t line_off;
	int stopped;      /* the line callback asked to stop */
	int line_failed;  /* ... or failed */
	struct gerr line_err;
	int too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	struct buf *b = &x->call->text;
	if (b->len + n > MAX_BODY) {
		x->too_big = 1;
		return 0;
	}
	buf_add(b, data, n);
	if (!x->line_fn)
		return n;
	long status = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status / 100 != 2)
		return n; /* an error body: keep it whole for the message */
	for (;;) {
		char *nl = memchr(b->s + x->line_off, '\n', b->len - x->line_off);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (b->s + x->line_off));
		int r = len ? x->line_fn(x->line_ud, b->s + x->line_off, len, &x->line_err) : 0;
		x->line_off += len + 1;
		if (r != 0) {
			if (r < 0)
				x->line_failed = 1;
			else
				x->stopped = 1;
			return 0;
		}
	}
	/* drop consumed lines so a long watch does not grow without bound */
	if (x->line_off > 65536) {
		memmove(b->s, b->s + x->line_off, b->len - x->line_off);
		b->len -= x->line_off;
		b->s[b->len] = '\0';
		x->line_off = 0;
	}
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	if (n > 12 && !strncasecmp(data, "retry-after:", 12)) {
		char *v = xstrndup(data + 12, n - 12);
		x->retry_after_s = kube_parse_retry_after(v, time(NULL));
		free(v);
	} else if (n > 8 && !strncasecmp(data, "warning:", 8)) {
		/* Warning: 299 - "message" */
		const char *q = memchr(data, '"', n);
		const char *e = q ? memrchr(q + 1, '"', n - (size_t)(q + 1 - data)) : NULL;
		if (q && e && e > q + 1) {
			buf_add(&x->warnings, q + 1, (size_t)(e - q - 1));
			buf_addc(&x->warnings, '\n');
		}
	}
	return n;
}

static int method_idempotent(const char *m)
{
	return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") || !strcmp(m, "DELETE");
}

static void xfer_cleanup_easy(struct kube_client *c, struct xfer *x)
{
	if (x->easy) {
		curl_multi_remove_handle(c->multi, x->easy);
		curl_easy_cleanup(x->easy);
		x->easy = NULL;
	}
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	free_secret(x->auth_header);
	x->auth_header = NULL;
}

void kube_tls_setopts(struct kube_client *c, CURL *e)
{
	const struct kube_config *cfg = c->cfg;
	if (cfg->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (cfg->ca_pem.len) {
		/* The kubeconfig's CA is the only trust anchor, as with kubectl:
		 * libcurl would also load its built-in CA file and CA folder
		 * (Debian: /etc/ssl/certs) beside the blob, and then a certificate
		 * from any system CA (a TLS-inspecting proxy) would be accepted. */
		curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		struct curl_blob ca = { cfg->ca_pem.s, cfg->ca_pem.len, CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
	}
	/* The client certificate of an exec credential is replaced (and freed)
	 * when the plugin runs again after a 401 or at expiry, while other
	 * transfers of the same kube_do_many are still queued with the old
	 * one: libcurl must own its copy (CURL_BLOB_COPY), never point into
	 * c->cred. */
	const struct buf *cert = c->cred.cert_pem.len ? &c->cred.cert_pem : &cfg->cert_pem;
	const struct buf *key = c->cred.cert_pem.len ? &c->cred.key_pem : &cfg->key_pem;
	if (cert->len) {
		struct curl_blob cb = { cert->s, cert->len, CURL_BLOB_COPY };
		struct curl_blob kb = { key->s, key->len, CURL_BLOB_COPY };
		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
}

static int xfer_start(struct kube_client *c, struct xfer *x, long timeout_ms)
{
	struct kube_call *call = x->call;
	struct gerr err = GERR_INIT;
	if (ensure_creds(c, &err) < 0) {
		gerr_move(&call->err, &err);
		x->state = X_DONE;
		return -1;
	}
	buf_reset(&call->text);
	x->line_off = 0;
	x->retry_after_s = -1;
	x->errbuf[0] = '\0';
	CURL *e = curl_easy_init();
	x->easy = e;
	char *url = xasprintf("%s%s", c->base_url, call->path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "gpuctl/" GPUCTL_VERSION);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
	if (timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, call->method);
	if (!strcmp(call->method, "HEAD"))
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (call->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(call->body));
	}
	kube_tls_setopts(c, e);
	const struct kube_config *cfg = c->cfg;
	if (c->connect_to)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, c->connect_to);
	if (cfg->proxy_url)
		curl_easy_setopt(e, CURLOPT_PROXY, cfg->proxy_url);
	const char *token = c->cred.token ? c->cred.token : cfg->token;
	struct curl_slist *h = NULL;
	if (call->accept) {
		char *acc = xasprintf("Accept: %s", call->accept);
		h = curl_slist_append(h, acc);
		free(acc);
	} else {
		h = curl_slist_append(h, call->raw ? "Accept: */*" : "Accept: application/json");
	}
	if (call->body) {
		char *ct = xasprintf("Content-Type: %s", call->content_type ? call->content_type : "application/json");
		h = curl_slist_append(h, ct);
		free(ct);
	}
	h = curl_slist_append(h, "Expect:");
	if (token && *token) {
		x->auth_header = xasprintf("Authorization: Bearer %s", token);
		h = curl_slist_append(h, x->auth_header);
	} else if (cfg->username) {
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, cfg->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, cfg->password);
	}
	x->headers = h;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	c->stats.requests++;
	if (strcmp(call->method, "GET") && strcmp(call->method, "HEAD"))
		c->stats.writes++;
	call->attempts++;
	x->state = X_ACTIVE;
	curl_multi_add_handle(c->multi, e);
	return 0;
}

char *kube_status_message(const char *body, size_t len, long status, const char **reason_out)
{
	cJSON *st = cJSON_ParseWithLength(body, len);
	char *msg = NULL;
	*reason_out = NULL;
	if (cJSON_IsObject(st)) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(st, "message");
		if (cJSON_IsString(m) && *m->valuestring)
			msg = xstrdup(m->valuestring);
	}
	cJSON_Delete(st);
	if (!msg) {
		struct buf b = BUF_INIT;
		for (size_t i = 0; i < len && i < 200; i++) {
			unsigned char ch = (unsigned char)body[i];
			buf_addc(&b, ch >= 0x20 && ch < 0x7f ? (char)ch : ' ');
		}
		while (b.len && b.s[b.len - 1] == ' ')
			b.s[--b.len] = '\0';
		msg = b.len ? buf_detach(&b) : xstrdup("(no message from the server)");
		buf_release(&b);
	}
	switch (status) {
	case 400: *reason_out = "Bad Request"; break;
	case 401: *reason_out = "Unauthorized"; break;
	case 403: *reason_out = "Forbidden"; break;
	case 404: *reason_out = "Not Found"; break;
	case 405: *reason_out = "Method Not Allowed"; break;
	case 409: *reason_out = "Conflict"; break;
	case 410: *reason_out = "Gone"; break;
	case 415: *reason_out = "Unsupported Media Type"; break;
	case 422: *reason_out = "Unprocessable Entity"; break;
	case 429: *reason_out = "Too Many Requests"; break;
	case 500: *reason_out = "Internal Server Error"; break;
	case 502: *reason_out = "Bad Gateway"; break;
	case 503: *reason_out = "Service Unavailable"; break;
	case 504: *reason_out = "Gateway Timeout"; break;
	default: break;
	}
	return msg;
}

static const char *verb_of(const char *method, const char *path)
{
	if (!strcmp(method, "GET"))
		return strstr(path, "watch=") ? "watch" : "get/list";
	if (!strcmp(method, "POST"))
		return "create";
	if (!strcmp(method, "PUT"))
		return "update";
	if (!strcmp(method, "PATCH"))
		return "patch";
	if (!strcmp(method, "DELETE"))
		return "delete";
	return method;
}

static void set_http_error(struct kube_client *c, struct xfer *x, long status)
{
	struct kube_call *call = x->call;
	const char *reason;
	char *msg = kube_status_message(call->text.s, call->text.len, status, &reason);
	enum gerr_code code;
	switch (status) {
	case 401: code = GERR_AUTH; break;
	case 403: code = GERR_FORBIDDEN; break;
	case 404: code = GERR_NOTFOUND; break;
	case 409: code = GERR_CONFLICT; break;
	case 410: code = GERR_GONE; break;
	case 400:
	case 422: code = GERR_INVALID; break;
	default: code = GERR_API; break;
	}
	struct buf b = BUF_INIT;
	if (call->what)
		buf_addf(&b, "%s: ", call->what);
	buf_addf(&b, "%s (HTTP %ld%s%s)", msg, status, reason ? " " : "", reason ? reason : "");
	if (call->attempts > 1)
		buf_addf(&b, " after %d attempts", call->attempts);
	gerr_set(&call->err, code, "%s", b.s);
	call->err.http_status = status;
	buf_release(&b);
	free(msg);
	const struct kube_config *cfg = c->cfg;
	if (status == 401) {
		gerr_hint(&call->err,
			  "the server rejected the credentials of user \"%s\" (context \"%s\" in %s); the token or certificate is invalid or expired: log in again or fix the kubeconfig",
			  cfg->user_name ? cfg->user_name : "", cfg->context_name ? cfg->context_name : "",
			  cfg->source);
	} else if (status == 403) {
		gerr_hint(&call->err,
			  "user \"%s\" lacks the RBAC permission to %s this object; ask a cluster admin for a Role/ClusterRole that allows it",
			  cfg->user_name ? cfg->user_name : "", verb_of(call->method, call->path));
	}
}

static void append_attempts(struct gerr *e, int attempts)
{
	char *m = xasprintf("%s after %d attempts", e->msg, attempts);
	free(e->msg);
	e->msg = m;
}

static void set_transport_error(struct kube_client *c, struct xfer *x, CURLcode rc)
{
	struct kube_call *call = x->call;
	const struct kube_config *cfg = c->cfg;
	const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
	const char *what = call->what ? call->what : "request";
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		gerr_set(&call->err, GERR_TLS, "%s: TLS connection to %s failed: %s", what, c->server_shown, detail);
		if (rc == CURLE_PEER_FAILED_VERIFICATION || strstr(detail, "certificate"))
			gerr_hint(&call->err,
				  "the server's certificate does not verify against %s; fix certificate-authority(-data) of cluster \"%s\" in %s (gpuctl never falls back to an unverified connection)",
				  cfg->ca_origin ? cfg->ca_origin : "the system trust store",
				  cfg->cluster_name ? cfg->cluster_name : "", cfg->source);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		gerr_set(&call->err, GERR_TIMEOUT, "%s: %s timed out: %s", what, c->server_shown, detail);
		gerr_hint(&call->err, "raise --request-timeout or check the network path to the cluster");
		break;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		gerr_set(&call->err, GERR_CONN, "%s: cannot connect to %s: %s", what, c->server_shown, detail);
		if (call->attempts > 1)
			append_attempts(&call->err, call->attempts);
		gerr_hint(&call->err, "is the cluster up? check the server of cluster \"%s\" in %s",
			  cfg->cluster_name ? cfg->cluster_name : "", cfg->source);
		break;
	case CURLE_WRITE_ERROR:
		if (x->too_big) {
			gerr_set(&call->err, GERR_API, "%s: response larger than %u bytes", what, MAX_BODY);
			break;
		}
		/* fallthrough */
	default:
		gerr_set(&call->err, GERR_CONN, "%s: connection to %s failed: %s", what, c->server_shown, detail);
		if (call->attempts > 1)
			append_attempts(&call->err, call->attempts);
		if (strcmp(call->method, "GET") && strcmp(call->method, "HEAD"))
			gerr_hint(&call->err, "the connection broke after the request was sent; it may have been applied, so it was not repeated: check the object and run again");
		break;
	}
}

static void flush_warnings(struct kube_client *c, struct xfer *x)
{
	char *p = x->warnings.s;
	while (p && *p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		int seen = 0;
		for (size_t i = 0; i < c->nwarnings; i++)
			seen |= !strcmp(c->warnings_seen[i], p);
		if (!seen && *p) {
			c->warnings_seen = xrealloc(c->warnings_seen, (c->nwarnings + 1) * sizeof(char *));
			c->warnings_seen[c->nwarnings++] = xstrdup(p);
			warn(c, p);
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	buf_reset(&x->warnings);
}

/* Decide what happens after one attempt finished. */
static void xfer_done(struct kube_client *c, struct xfer *x, CURLcode rc)
{
	struct kube_call *call = x->call;
	long status = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	long connect_code = 0;
	curl_easy_getinfo(x->easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
	curl_off_t sent = 0;
	curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent);
	int connected = sent > 0;
	if (c->opts.log) {
		curl_off_t us = 0;
		curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us);
		char *base = kube_url_redact(c->base_url);
		char *line = xasprintf("%s %s%s %ld in %ld ms%s%s", call->method, base, call->path, status,
				       (long)(us / 1000), rc ? ": " : "", rc ? curl_easy_strerror(rc) : "");
		c->opts.log(c->opts.warn_ud, line);
		free(line);
		free(base);
	}
	xfer_cleanup_easy(c, x);
	flush_warnings(c, x);
	call->status = status;

	if (rc == CURLE_WRITE_ERROR && (x->stopped || x->line_failed)) {
		if (x->line_failed)
			gerr_move(&call->err, &x->line_err);
		x->state = X_DONE;
		return;
	}
	if (rc == CURLE_OK && status / 100 == 2) {
		if (!call->raw && !call->no_parse && call->text.len && !x->line_fn) {
			call->response = cJSON_ParseWithLength(call->text.s, call->text.len);
			if (!call->response)
				gerr_set(&call->err, GERR_API, "%s: the server sent a response that is not JSON",
					 call->what ? call->what : "request");
		}
		x->state = X_DONE;
		return;
	}
	if (rc == CURLE_OK && status == 401 && c->cfg->exec && !x->reauthed) {
		/* like kubectl: a 401 with exec credentials re-runs the plugin once */
		x->reauthed = 1;
		struct gerr e = GERR_INIT;
		if (refresh_exec(c, &e) < 0) {
			gerr_move(&call->err, &e);
			x->state = X_DONE;
			return;
		}
		x->state = X_PENDING;
		x->next_at = 0;
		return;
	}
	int idem = call->idempotent >= 0 ? call->idempotent : method_idempotent(call->method);
	if (x->retries < c->opts.max_retries && kube_should_retry((int)rc, status, idem, connected)) {
		x->retries++;
		c->stats.retries++;
		long d = kube_backoff_ms(x->retries, c->opts.backoff_base_ms, c->opts.backoff_max_ms,
					 rc == CURLE_OK ? x->retry_after_s : -1, &c->seed);
		x->next_at = mono_ms() + d;
		x->state = X_PENDING;
		return;
	}
	if (rc != CURLE_OK)
		set_transport_error(c, x, rc);
	else
		set_http_error(c, x, status);
	x->state = X_DONE;
}

static void run_xfers(struct kube_client *c, struct xfer *xs, size_t n, int maxpar, long timeout_ms)
{
	if (maxpar <= 0)
		maxpar = 64;
	size_t done = 0;
	for (size_t i = 0; i < n; i++)
		if (xs[i].state == X_DONE)
			done++;
	long req_timeout = timeout_ms ? timeout_ms : c->opts.request_timeout_ms;
	while (done < n) {
		long now = mono_ms();
		int active = 0;
		for (size_t i = 0; i < n; i++)
			active += xs[i].state == X_ACTIVE;
		long wait = 1000;
		for (size_t i = 0; i < n; i++) {
			struct xfer *x = &xs[i];
			if (x->state != X_PENDING)
				continue;
			if (x->next_at <= now && active < maxpar) {
				if (xfer_start(c, x, req_timeout) < 0) {
					done++;
					continue;
				}
				active++;
			} else if (x->next_at > now && x->next_at - now < wait) {
				wait = x->next_at - now;
			}
		}
		int running = 0;
		curl_multi_perform(c->multi, &running);
		CURLMsg *m;
		int q;
		while ((m = curl_multi_info_read(c->multi, &q))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct xfer *x = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			CURLcode rc = m->data.result;
			xfer_done(c, x, rc);
			if (x->state == X_DONE)
				done++;
		}
		if (done >= n)
			break;
		/* Recount after the completions above: they freed slots and may
		 * have scheduled retries sooner than the wait computed before
		 * them; curl_multi_poll() sleeps its whole timeout when no
		 * transfer is active. */
		now = mono_ms();
		active = 0;
		wait = 1000;
		int pending_now = 0;
		for (size_t i = 0; i < n; i++) {
			if (xs[i].state == X_ACTIVE)
				active++;
			else if (xs[i].state == X_PENDING && xs[i].next_at <= now)
				pending_now = 1;
			else if (xs[i].state == X_PENDING && xs[i].next_at - now < wait)
				wait = xs[i].next_at - now;
		}
		if (pending_now && active < maxpar)
			continue;
		if (wait < 0)
			wait = 0;
		curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL);
	}
}

static void xfer_init(struct xfer *x, struct kube_call *call)
{
	memset(x, 0, sizeof(*x));
	x->call = call;
	x->state = X_PENDING;
	buf_init(&x->warnings);
	/* calls start zeroed; a reused call drops its previous result */
	call->status = 0;
	call->attempts = 0;
	cJSON_Delete(call->response);
	call->response = NULL;
	if (!call->text.s)
		buf_init(&call->text);
	buf_release(&call->text);
	gerr_clear(&call->err);
}

static void xfer_release(struct xfer *x)
{
	buf_release(&x->warnings);
	gerr_clear(&x->line_err);
}

size_t kube_do_many(struct kube_client *c, struct kube_call *calls, size_t n, int max_parallel)
{
	struct xfer *xs = xcalloc(n ? n : 1, sizeof(*xs));
	for (size_t i = 0; i < n; i++)
		xfer_init(&xs[i], &calls[i]);
	run_xfers(c, xs, n, max_parallel, 0);
	size_t failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (calls[i].err.code != GERR_OK)
			failed++;
		xfer_release(&xs[i]);
	}
	free(xs);
	return failed;
}

int kube_do(struct kube_client *c, struct kube_call *call, struct gerr *err)
{
	kube_do_many(c, call, 1, 1);
	if (call->err.code != GERR_OK) {
		gerr_copy(err, &call->err); /* message, hint and status */
		return -1;
	}
	return 0;
}

int kube_stream(struct kube_client *c, struct kube_call *call, kube_line_fn fn, void *ud, long timeout_ms,
		struct gerr *err)
{
	struct xfer x;
	xfer_init(&x, call);
	x.line_fn = fn;
	x.line_ud = ud;
	run_xfers(c, &x, 1, 1, timeout_ms);
	/* a stream that ends at its server-side timeout is a normal end */
	int rc = 0;
	if (call->err.code != GERR_OK) {
		gerr_copy(err, &call->err); /* message, hint and status */
		rc = -1;
	} else if (!x.stopped && call->text.len > x.line_off && call->status / 100 == 2) {
		/* a last line without newline */
		rc = fn(ud, call->text.s + x.line_off, call->text.len - x.line_off, err) < 0 ? -1 : 0;
	}
	xfer_release(&x);
	return rc;
}
