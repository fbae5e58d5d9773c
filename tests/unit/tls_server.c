/* A small, scriptable, misbehaving HTTPS server for the HTTP engine tests.
 * See tls_server.h. */
#include "tls_server.h"
#include <criterion/criterion.h>
#include <limits.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_REQUEST (4u << 20)
#define IO_TIMEOUT_S 10

struct action {
	struct ts_reply r;
	struct action *next;
};

struct conn {
	struct tls_server *ts;
	pthread_t th;
	int fd;            /* -1 once the connection thread closed it */
	struct conn *next;
};

struct tls_server {
	int lfd;
	int port;
	char url[64];
	int wake[2];
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_mutex_t route_mu;
	int stopping;
	SSL_CTX *ctx;
	char *ca_pem;
	struct action *head, *tail;
	ts_route_fn route;
	void *route_ud;
	struct ts_reply deflt;
	int have_default;
	struct ts_request **reqs;
	size_t nreqs, capreqs;
	size_t hs_ok, hs_fail, resp2xx;
	struct conn *conns;
};

/* ---- helpers ---- */

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tls_server: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ERR_print_errors_fp(stderr);
	abort();
}

static void *xzalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static char *sdup(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		die("out of memory");
	return d;
}

static char *sndup(const char *s, size_t n)
{
	char *d = xzalloc(n + 1);
	memcpy(d, s, n);
	return d;
}

static void chunks_release(struct ts_reply *r)
{
	for (size_t i = 0; i < r->nchunks; i++)
		free(r->chunks[i].data);
	free(r->chunks);
	r->chunks = NULL;
	r->nchunks = 0;
	r->stream = 0;
}

void ts_reply_set(struct ts_reply *r, int status, const char *headers, const char *body)
{
	free(r->headers);
	free(r->body);
	chunks_release(r);
	r->kind = TS_RESPOND;
	r->status = status;
	r->headers = sdup(headers);
	r->body = sdup(body);
}

void ts_reply_reset(struct ts_reply *r)
{
	free(r->headers);
	free(r->body);
	chunks_release(r);
	r->headers = NULL;
	r->body = NULL;
	r->kind = TS_RESET;
	r->status = 0;
}

void ts_reply_stream(struct ts_reply *r, int status, const char *headers)
{
	ts_reply_set(r, status, headers, NULL);
	r->stream = 1;
}

void ts_reply_chunk(struct ts_reply *r, int delay_ms, const char *data)
{
	struct ts_chunk *n = realloc(r->chunks, (r->nchunks + 1) * sizeof(*n));
	if (!n)
		die("out of memory");
	r->chunks = n;
	r->chunks[r->nchunks].delay_ms = delay_ms;
	r->chunks[r->nchunks].data = sdup(data ? data : "");
	r->nchunks++;
}

static void reply_release(struct ts_reply *r)
{
	free(r->headers);
	free(r->body);
	chunks_release(r);
	memset(r, 0, sizeof(*r));
}

static void reply_copy(struct ts_reply *dst, const struct ts_reply *src)
{
	*dst = *src;
	dst->headers = sdup(src->headers);
	dst->body = sdup(src->body);
	dst->chunks = NULL;
	dst->nchunks = 0;
	for (size_t i = 0; i < src->nchunks; i++)
		ts_reply_chunk(dst, src->chunks[i].delay_ms, src->chunks[i].data);
}

static void request_free(struct ts_request *r)
{
	if (!r)
		return;
	free(r->method);
	free(r->path);
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->body);
	free(r);
}

const char *ts_req_header(const struct ts_request *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (!strcasecmp(r->headers[i].name, name))
			return r->headers[i].value;
	return NULL;
}

/* ---- certificates ---- */

static EVP_PKEY *gen_key(void)
{
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *k = NULL;
	if (!kc || EVP_PKEY_keygen_init(kc) <= 0 ||
	    EVP_PKEY_CTX_set_group_name(kc, "P-256") <= 0 || EVP_PKEY_keygen(kc, &k) <= 0)
		die("cannot generate an EC key");
	EVP_PKEY_CTX_free(kc);
	return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex || !X509_add_ext(cert, ex, -1))
		die("cannot add extension %d=%s", nid, value);
	X509_EXTENSION_free(ex);
}

/* issuer NULL: self-signed CA. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key)
{
	X509 *x = X509_new();
	if (!x)
		die("X509_new");
	X509_set_version(x, 2);
	unsigned char rnd[8];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		die("RAND_bytes");
	rnd[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 7L * 86400);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"gpuctl tests", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	if (!issuer) {
		X509_set_issuer_name(x, name);
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
		add_ext(x, x, NID_subject_key_identifier, "hash");
		if (!X509_sign(x, key, EVP_sha256()))
			die("cannot sign the CA certificate");
	} else {
		X509_set_issuer_name(x, X509_get_subject_name(issuer));
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
		add_ext(x, issuer, NID_subject_key_identifier, "hash");
		add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
		add_ext(x, issuer, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
		if (!X509_sign(x, issuer_key, EVP_sha256()))
			die("cannot sign the server certificate");
	}
	return x;
}

static char *cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (!b || !PEM_write_bio_X509(b, x))
		die("PEM_write_bio_X509");
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = sndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

char *ts_other_ca_pem(void)
{
	EVP_PKEY *k = gen_key();
	X509 *x = make_cert(k, "gpuctl unrelated test CA", NULL, NULL);
	char *s = cert_pem(x);
	X509_free(x);
	EVP_PKEY_free(k);
	return s;
}

void ts_key_pair_pem(char **cert, char **key)
{
	EVP_PKEY *k = gen_key();
	X509 *x = make_cert(k, "gpuctl test client", NULL, NULL);
	*cert = cert_pem(x);
	BIO *b = BIO_new(BIO_s_mem());
	if (!b || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		die("PEM_write_bio_PrivateKey");
	char *data;
	long n = BIO_get_mem_data(b, &data);
	*key = sndup(data, (size_t)n);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* ---- requests ---- */

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

static int ssl_read_some(SSL *ssl, char *buf, size_t cap)
{
	size_t got = 0;
	if (SSL_read_ex(ssl, buf, cap, &got) != 1)
		return -1;
	return (int)got;
}

static struct ts_request *read_request(SSL *ssl)
{
	size_t cap = 8192, len = 0;
	char *buf = xzalloc(cap + 1);
	char *hend = NULL;
	while (!(hend = strstr(buf, "\r\n\r\n"))) {
		if (len == cap) {
			if (cap >= MAX_REQUEST)
				goto fail;
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb)
				die("out of memory");
			buf = nb;
		}
		int n = ssl_read_some(ssl, buf + len, cap - len);
		if (n <= 0)
			goto fail;
		len += (size_t)n;
		buf[len] = '\0';
	}
	struct ts_request *r = xzalloc(sizeof(*r));
	size_t hlen = (size_t)(hend - buf) + 4;
	/* request line */
	char *line_end = strstr(buf, "\r\n");
	char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
	char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
	if (!sp1 || !sp2) {
		request_free(r);
		goto fail;
	}
	r->method = sndup(buf, (size_t)(sp1 - buf));
	r->path = sndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
	/* headers */
	size_t hcap = 16;
	r->headers = xzalloc(hcap * sizeof(*r->headers));
	long content_length = 0;
	char *p = line_end + 2;
	while (p < hend + 2) {
		char *e = strstr(p, "\r\n");
		char *colon = memchr(p, ':', (size_t)(e - p));
		if (colon) {
			if (r->nheaders == hcap) {
				hcap *= 2;
				struct ts_header *nh = realloc(r->headers, hcap * sizeof(*nh));
				if (!nh)
					die("out of memory");
				r->headers = nh;
			}
			char *v = colon + 1;
			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			char *ve = e;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			struct ts_header *h = &r->headers[r->nheaders++];
			h->name = sndup(p, (size_t)(colon - p));
			h->value = sndup(v, (size_t)(ve - v));
			if (!strcasecmp(h->name, "Content-Length"))
				content_length = strtol(h->value, NULL, 10);
		}
		p = e + 2;
	}
	if (content_length < 0 || (size_t)content_length > MAX_REQUEST) {
		request_free(r);
		goto fail;
	}
	/* body */
	size_t blen = (size_t)content_length;
	r->body = xzalloc(blen + 1);
	size_t have = len - hlen;
	if (have > blen)
		have = blen;
	memcpy(r->body, buf + hlen, have);
	while (have < blen) {
		int n = ssl_read_some(ssl, r->body + have, blen - have);
		if (n <= 0) {
			request_free(r);
			goto fail;
		}
		have += (size_t)n;
	}
	r->body_len = blen;
	free(buf);
	return r;
fail:
	free(buf);
	return NULL;
}

static void record(struct tls_server *ts, struct ts_request *r)
{
	pthread_mutex_lock(&ts->mu);
	if (ts->nreqs == ts->capreqs) {
		ts->capreqs = ts->capreqs ? ts->capreqs * 2 : 16;
		struct ts_request **n = realloc(ts->reqs, ts->capreqs * sizeof(*n));
		if (!n)
			die("out of memory");
		ts->reqs = n;
	}
	ts->reqs[ts->nreqs++] = r;
	pthread_mutex_unlock(&ts->mu);
}

/* The action for this request (owned by the caller). */
static void choose(struct tls_server *ts, const struct ts_request *req, struct ts_reply *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ts->mu);
	struct action *a = ts->head;
	if (a) {
		ts->head = a->next;
		if (!ts->head)
			ts->tail = NULL;
	}
	ts_route_fn route = ts->route;
	void *ud = ts->route_ud;
	if (!a && !route && ts->have_default)
		reply_copy(out, &ts->deflt);
	pthread_mutex_unlock(&ts->mu);
	if (a) {
		*out = a->r;
		free(a);
		return;
	}
	if (route) {
		ts_reply_set(out, 599, NULL,
			     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"unrouted request\",\"code\":599}");
		pthread_mutex_lock(&ts->route_mu);
		route(ud, req, out);
		pthread_mutex_unlock(&ts->route_mu);
		return;
	}
	if (out->kind == TS_RESPOND && out->status)
		return; /* the default */
	ts_reply_set(out, 599, NULL,
		     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"unscripted request\",\"code\":599}");
}

/* Sleep ms unless the server stops first; returns 0 when stopping. */
static int nap(struct tls_server *ts, int ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ts->mu);
	while (!ts->stopping) {
		if (pthread_cond_timedwait(&ts->cv, &ts->mu, &until) == ETIMEDOUT)
			break;
	}
	int go_on = !ts->stopping;
	pthread_mutex_unlock(&ts->mu);
	return go_on;
}

static void append(char **s, size_t *len, size_t *cap, const char *add, size_t n)
{
	if (*len + n + 1 > *cap) {
		while (*len + n + 1 > *cap)
			*cap = *cap ? *cap * 2 : 256;
		char *ns = realloc(*s, *cap);
		if (!ns)
			die("out of memory");
		*s = ns;
	}
	memcpy(*s + *len, add, n);
	*len += n;
	(*s)[*len] = '\0';
}

static char *format_response(const struct ts_reply *r, size_t *out_len)
{
	char *s = NULL;
	size_t len = 0, cap = 0;
	const char *body = r->body ? r->body : "";
	char line[256];
	int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", r->status, reason_phrase(r->status));
	append(&s, &len, &cap, line, (size_t)n);
	int have_ct = 0;
	for (const char *p = r->headers; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		size_t ll = l;
		if (ll && p[ll - 1] == '\r')
			ll--;
		if (ll) {
			if (ll > 13 && !strncasecmp(p, "content-type:", 13))
				have_ct = 1;
			append(&s, &len, &cap, p, ll);
			append(&s, &len, &cap, "\r\n", 2);
		}
		p = e ? e + 1 : p + l;
	}
	if (!have_ct)
		append(&s, &len, &cap, "Content-Type: application/json\r\n", 32);
	if (r->stream) {
		append(&s, &len, &cap, "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", 49);
		*out_len = len;
		return s;
	}
	n = snprintf(line, sizeof(line), "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(body));
	append(&s, &len, &cap, line, (size_t)n);
	append(&s, &len, &cap, body, strlen(body));
	*out_len = len;
	return s;
}

static int ssl_write_all(SSL *ssl, const char *s, size_t n)
{
	while (n) {
		size_t w = 0;
		if (SSL_write_ex(ssl, s, n, &w) != 1)
			return -1;
		s += w;
		n -= w;
	}
	return 0;
}

/* The pieces of a streamed reply, then the last chunk; 0 when the peer went
 * away or the server stops. */
static int write_chunks(struct tls_server *ts, SSL *ssl, const struct ts_reply *r)
{
	for (size_t i = 0; i < r->nchunks; i++) {
		const struct ts_chunk *c = &r->chunks[i];
		if (c->delay_ms > 0 && !nap(ts, c->delay_ms))
			return 0;
		size_t dl = strlen(c->data);
		if (!dl)
			continue;
		char head[32];
		int hn = snprintf(head, sizeof(head), "%zx\r\n", dl);
		if (ssl_write_all(ssl, head, (size_t)hn) < 0 || ssl_write_all(ssl, c->data, dl) < 0 ||
		    ssl_write_all(ssl, "\r\n", 2) < 0)
			return 0;
	}
	return ssl_write_all(ssl, "0\r\n\r\n", 5) == 0;
}

/* After the response: half-close and read until the client closes, so the
 * kernel does not turn the close into a reset while the client still reads. */
static void linger_close(int fd)
{
	shutdown(fd, SHUT_WR);
	char junk[4096];
	for (int i = 0; i < 100; i++) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 2000) <= 0)
			break;
		ssize_t n = read(fd, junk, sizeof(junk));
		if (n <= 0)
			break;
	}
}

static void *conn_main(void *arg)
{
	struct conn *cn = arg;
	struct tls_server *ts = cn->ts;
	int fd = cn->fd;
	SSL *ssl = SSL_new(ts->ctx);
	int reset = 0;
	if (!ssl)
		die("SSL_new");
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1) {
		ERR_clear_error();
		pthread_mutex_lock(&ts->mu);
		ts->hs_fail++;
		pthread_mutex_unlock(&ts->mu);
		goto out;
	}
	pthread_mutex_lock(&ts->mu);
	ts->hs_ok++;
	pthread_mutex_unlock(&ts->mu);
	struct ts_request *req = read_request(ssl);
	if (!req) {
		ERR_clear_error();
		goto out;
	}
	record(ts, req);
	struct ts_reply r;
	choose(ts, req, &r);
	if (r.delay_ms > 0 && !nap(ts, r.delay_ms)) {
		reply_release(&r);
		goto out;
	}
	if (r.kind == TS_RESET) {
		struct linger lg = { 1, 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		reset = 1;
		reply_release(&r);
		goto out;
	}
	size_t n;
	char *resp = format_response(&r, &n);
	int ok = ssl_write_all(ssl, resp, n) == 0;
	free(resp);
	if (ok && r.stream)
		ok = write_chunks(ts, ssl, &r);
	if (ok && r.status / 100 == 2) {
		pthread_mutex_lock(&ts->mu);
		ts->resp2xx++;
		pthread_mutex_unlock(&ts->mu);
	}
	reply_release(&r);
	if (ok) {
		SSL_shutdown(ssl);
		linger_close(fd);
	}
	ERR_clear_error();
out:
	(void)reset;
	SSL_free(ssl);
	pthread_mutex_lock(&ts->mu);
	cn->fd = -1;
	pthread_mutex_unlock(&ts->mu);
	close(fd);
	ERR_clear_error();
	OPENSSL_thread_stop();
	return NULL;
}

static void *accept_main(void *arg)
{
	struct tls_server *ts = arg;
	for (;;) {
		struct pollfd p[2] = { { ts->lfd, POLLIN, 0 }, { ts->wake[0], POLLIN, 0 } };
		int r = poll(p, 2, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept(ts->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		struct timeval tv = { IO_TIMEOUT_S, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		struct conn *cn = xzalloc(sizeof(*cn));
		cn->ts = ts;
		cn->fd = fd;
		pthread_mutex_lock(&ts->mu);
		if (ts->stopping) {
			pthread_mutex_unlock(&ts->mu);
			close(fd);
			free(cn);
			break;
		}
		cn->next = ts->conns;
		ts->conns = cn;
		if (pthread_create(&cn->th, NULL, conn_main, cn) != 0)
			die("pthread_create");
		pthread_mutex_unlock(&ts->mu);
	}
	OPENSSL_thread_stop();
	return NULL;
}

/* ---- lifecycle ---- */

struct tls_server *ts_start(void)
{
	/* a peer that went away must not kill the test with SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	struct tls_server *ts = xzalloc(sizeof(*ts));
	pthread_mutex_init(&ts->mu, NULL);
	pthread_mutex_init(&ts->route_mu, NULL);
	pthread_cond_init(&ts->cv, NULL);

	EVP_PKEY *ca_key = gen_key();
	X509 *ca = make_cert(ca_key, "gpuctl test CA", NULL, NULL);
	EVP_PKEY *srv_key = gen_key();
	X509 *srv = make_cert(srv_key, "localhost", ca, ca_key);
	ts->ca_pem = cert_pem(ca);
	ts->ctx = SSL_CTX_new(TLS_server_method());
	if (!ts->ctx || SSL_CTX_use_certificate(ts->ctx, srv) != 1 ||
	    SSL_CTX_use_PrivateKey(ts->ctx, srv_key) != 1 || SSL_CTX_check_private_key(ts->ctx) != 1)
		die("cannot set up the SSL_CTX");
	SSL_CTX_set_min_proto_version(ts->ctx, TLS1_2_VERSION);
	X509_free(srv);
	X509_free(ca);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(ca_key);

	ts->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ts->lfd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(ts->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ts->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ts->lfd, 64) < 0)
		die("bind/listen: %s", strerror(errno));
	socklen_t sl = sizeof(sa);
	getsockname(ts->lfd, (struct sockaddr *)&sa, &sl);
	ts->port = ntohs(sa.sin_port);
	snprintf(ts->url, sizeof(ts->url), "https://127.0.0.1:%d", ts->port);
	if (pipe(ts->wake) < 0)
		die("pipe: %s", strerror(errno));
	if (pthread_create(&ts->th, NULL, accept_main, ts) != 0)
		die("pthread_create");
	return ts;
}

void ts_stop(struct tls_server *ts)
{
	if (!ts)
		return;
	pthread_mutex_lock(&ts->mu);
	ts->stopping = 1;
	pthread_cond_broadcast(&ts->cv);
	pthread_mutex_unlock(&ts->mu);
	if (write(ts->wake[1], "x", 1) < 0)
		die("write: %s", strerror(errno));
	pthread_join(ts->th, NULL);
	/* wake connection threads blocked in reads */
	pthread_mutex_lock(&ts->mu);
	for (struct conn *c = ts->conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	struct conn *conns = ts->conns;
	ts->conns = NULL;
	pthread_mutex_unlock(&ts->mu);
	while (conns) {
		struct conn *next = conns->next;
		pthread_join(conns->th, NULL);
		free(conns);
		conns = next;
	}
	close(ts->lfd);
	close(ts->wake[0]);
	close(ts->wake[1]);
	while (ts->head) {
		struct action *a = ts->head;
		ts->head = a->next;
		reply_release(&a->r);
		free(a);
	}
	reply_release(&ts->deflt);
	for (size_t i = 0; i < ts->nreqs; i++)
		request_free(ts->reqs[i]);
	free(ts->reqs);
	SSL_CTX_free(ts->ctx);
	free(ts->ca_pem);
	pthread_cond_destroy(&ts->cv);
	pthread_mutex_destroy(&ts->mu);
	pthread_mutex_destroy(&ts->route_mu);
	free(ts);
}

int ts_port(const struct tls_server *ts)
{
	return ts->port;
}

const char *ts_url(const struct tls_server *ts)
{
	return ts->url;
}

const char *ts_ca_pem(const struct tls_server *ts)
{
	return ts->ca_pem;
}

/* ---- script ---- */

static void push(struct tls_server *ts, struct action *a)
{
	pthread_mutex_lock(&ts->mu);
	if (ts->tail)
		ts->tail->next = a;
	else
		ts->head = a;
	ts->tail = a;
	pthread_mutex_unlock(&ts->mu);
}

void ts_push_delayed(struct tls_server *ts, int delay_ms, int status, const char *headers,
		     const char *body)
{
	struct action *a = xzalloc(sizeof(*a));
	ts_reply_set(&a->r, status, headers, body);
	a->r.delay_ms = delay_ms;
	push(ts, a);
}

void ts_push(struct tls_server *ts, int status, const char *headers, const char *body)
{
	ts_push_delayed(ts, 0, status, headers, body);
}

void ts_push_reset(struct tls_server *ts)
{
	struct action *a = xzalloc(sizeof(*a));
	a->r.kind = TS_RESET;
	push(ts, a);
}

void ts_set_default(struct tls_server *ts, int status, const char *headers, const char *body)
{
	pthread_mutex_lock(&ts->mu);
	reply_release(&ts->deflt);
	ts->have_default = status != 0;
	if (status)
		ts_reply_set(&ts->deflt, status, headers, body);
	pthread_mutex_unlock(&ts->mu);
}

void ts_set_route(struct tls_server *ts, ts_route_fn fn, void *ud)
{
	pthread_mutex_lock(&ts->mu);
	ts->route = fn;
	ts->route_ud = ud;
	pthread_mutex_unlock(&ts->mu);
}

/* ---- inspection ---- */

size_t ts_nrequests(struct tls_server *ts)
{
	pthread_mutex_lock(&ts->mu);
	size_t n = ts->nreqs;
	pthread_mutex_unlock(&ts->mu);
	return n;
}

const struct ts_request *ts_request(struct tls_server *ts, size_t i)
{
	pthread_mutex_lock(&ts->mu);
	const struct ts_request *r = i < ts->nreqs ? ts->reqs[i] : NULL;
	pthread_mutex_unlock(&ts->mu);
	return r;
}

size_t ts_handshakes_ok(struct tls_server *ts)
{
	pthread_mutex_lock(&ts->mu);
	size_t n = ts->hs_ok;
	pthread_mutex_unlock(&ts->mu);
	return n;
}

size_t ts_handshakes_failed(struct tls_server *ts)
{
	pthread_mutex_lock(&ts->mu);
	size_t n = ts->hs_fail;
	pthread_mutex_unlock(&ts->mu);
	return n;
}

size_t ts_responses_2xx(struct tls_server *ts)
{
	pthread_mutex_lock(&ts->mu);
	size_t n = ts->resp2xx;
	pthread_mutex_unlock(&ts->mu);
	return n;
}

/* ---- shared by the tests that use the server ---- */

static char *ts_b64(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	cr_assert_not_null(out);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

/* A kubeconfig for server with ca_pem, user token test-token; path filled. */
void ts_write_kubeconfig(char *path, const char *server, const char *ca_pem)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(path, PATH_MAX, "%s/gpuctl-test-http-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	cr_assert(fd >= 0, "mkstemp %s", path);
	FILE *f = fdopen(fd, "w");
	cr_assert_not_null(f);
	char *ca = ts_b64(ca_pem);
	fprintf(f,
		"apiVersion: v1\n"
		"kind: Config\n"
		"clusters:\n"
		"- name: test\n"
		"  cluster:\n"
		"    server: %s\n"
		"    certificate-authority-data: %s\n"
		"contexts:\n"
		"- name: test\n"
		"  context:\n"
		"    cluster: test\n"
		"    user: tester\n"
		"current-context: test\n"
		"users:\n"
		"- name: tester\n"
		"  user:\n"
		"    token: test-token\n",
		server, ca);
	free(ca);
	cr_assert_eq(fclose(f), 0);
}

