/* tls_server.h - a small, scriptable, misbehaving HTTPS server for tests.
 *
 * ts_start() generates (in memory) a CA and a server certificate signed by
 * it (SAN IP:127.0.0.1, DNS:localhost), listens on 127.0.0.1 with an
 * ephemeral port and serves HTTP/1.1 (no ALPN) from a thread, one thread
 * per connection, every response with "Connection: close".
 *
 * What it answers is a script: a queue of actions, one consumed per request
 * (respond, sleep then respond, reset the connection), or, when a route
 * callback is set and the queue is empty, whatever the callback decides.
 * With neither, requests get 599 "unscripted request" (never retried).
 *
 * Every request that was read completely is recorded (method, path with
 * query, headers, body) before the action runs, so once the client has its
 * answer the request is visible through ts_request().
 */
#ifndef GPUCTL_TEST_TLS_SERVER_H
#define GPUCTL_TEST_TLS_SERVER_H

#include <stddef.h>

struct tls_server;

struct ts_header {
	char *name;
	char *value;
};

struct ts_request {
	char *method;
	char *path;      /* with the query: /api/v1/nodes?limit=500 */
	struct ts_header *headers;
	size_t nheaders;
	char *body;      /* NUL-terminated, never NULL */
	size_t body_len;
};

/* What to do with one request. */
enum ts_kind {
	TS_RESPOND, /* status + headers + body, after delay_ms */
	TS_RESET,   /* close the connection with a TCP RST, no response */
};

/* One piece of a streamed body. */
struct ts_chunk {
	int delay_ms;    /* pause before it */
	char *data;      /* owned; "" is a pause only */
};

struct ts_reply {
	enum ts_kind kind;
	int status;
	char *headers;   /* owned; "Name: value" lines separated by \n (or \r\n) */
	char *body;      /* owned */
	int delay_ms;
	/* streaming (ts_reply_stream): the status line and headers go out at
	 * once (after delay_ms), then the chunks, each after its own delay,
	 * with "Transfer-Encoding: chunked"; body is not used. */
	int stream;
	struct ts_chunk *chunks; /* owned */
	size_t nchunks;
};

/* Fill a reply (strings are copied; headers and body may be NULL). */
void ts_reply_set(struct ts_reply *r, int status, const char *headers, const char *body);
void ts_reply_reset(struct ts_reply *r);
/* Make r a streamed reply without chunks yet (headers copied, may be NULL). */
void ts_reply_stream(struct ts_reply *r, int status, const char *headers);
/* Append a piece to a streamed reply: after delay_ms, data is written as one
 * chunk (data "" only pauses).  The stream ends after the last piece; a long
 * last pause holds it open (ts_stop cuts pauses short). */
void ts_reply_chunk(struct ts_reply *r, int delay_ms, const char *data);

/* The route callback: called (serialised, in a server thread) for each
 * request when the queue is empty; fill *out (initially 599 unscripted). */
typedef void (*ts_route_fn)(void *ud, const struct ts_request *req, struct ts_reply *out);

/* Start a server; aborts the process on failure (tests only). */
struct tls_server *ts_start(void);
/* Stop it: wake sleeping actions, close connections, join threads, free all. */
void ts_stop(struct tls_server *ts);

int ts_port(const struct tls_server *ts);
/* "https://127.0.0.1:PORT" */
const char *ts_url(const struct tls_server *ts);
/* The CA certificate that signed the server's certificate (PEM). */
const char *ts_ca_pem(const struct tls_server *ts);
/* A fresh, unrelated self-signed CA (PEM); the caller frees it. */
char *ts_other_ca_pem(void);

/* A fresh self-signed certificate and its private key (PEM), usable as a
 * client certificate (the server does not ask for one); the caller frees both. */
void ts_key_pair_pem(char **cert, char **key);

/* Script: append actions (strings copied). */
void ts_push(struct tls_server *ts, int status, const char *headers, const char *body);
void ts_push_delayed(struct tls_server *ts, int delay_ms, int status, const char *headers,
		     const char *body);
void ts_push_reset(struct tls_server *ts);
/* Answer this status forever (when the queue is empty and no route). 0: off. */
void ts_set_default(struct tls_server *ts, int status, const char *headers, const char *body);
void ts_set_route(struct tls_server *ts, ts_route_fn fn, void *ud);

/* Recorded requests, in arrival order; valid until ts_stop. */
size_t ts_nrequests(struct tls_server *ts);
const struct ts_request *ts_request(struct tls_server *ts, size_t i);
/* TLS handshakes that completed / failed. */
size_t ts_handshakes_ok(struct tls_server *ts);
size_t ts_handshakes_failed(struct tls_server *ts);
/* Responses with a 2xx status written completely. */
size_t ts_responses_2xx(struct tls_server *ts);

/* Header value (first match, case-insensitive name), or NULL. */
const char *ts_req_header(const struct ts_request *r, const char *name);

/* Write a kubeconfig for server (its CA PEM embedded, user token "test-token")
 * to a new temporary file; path (PATH_MAX) receives its name. */
void ts_write_kubeconfig(char *path, const char *server, const char *ca_pem);

#endif
