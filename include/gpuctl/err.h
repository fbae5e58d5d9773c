/* err.h - the one error type carried upward with context.
 *
 * Functions return 0 on success and -1 on error, filling a caller-owned
 * struct gerr.  Context is prepended on the way up:
 *     "node gpu-1: patch: nodes "gpu-1" is forbidden: ..."
 * The command maps codes to exit codes (see gerr_exit_code).
 */
#ifndef GPUCTL_ERR_H
#define GPUCTL_ERR_H

enum gerr_code {
	GERR_OK = 0,
	GERR_USAGE,     /* bad flags or arguments */
	GERR_IO,        /* file or system error */
	GERR_PARSE,     /* malformed input (YAML, JSON, syntax) */
	GERR_CONFIG,    /* kubeconfig / config file semantics */
	GERR_CONN,      /* cannot reach the server */
	GERR_TLS,       /* TLS handshake or verification failed */
	GERR_TIMEOUT,   /* request or connect timed out */
	GERR_AUTH,      /* 401 unauthorized, credentials missing or rejected */
	GERR_FORBIDDEN, /* 403 */
	GERR_NOTFOUND,  /* 404 */
	GERR_CONFLICT,  /* 409 or a refused overwrite */
	GERR_GONE,      /* 410 (watch relist) */
	GERR_API,       /* any other API error */
	GERR_INVALID,   /* semantic validation error (422, bad label value...) */
	GERR_INTERNAL,
};

struct gerr {
	enum gerr_code code;
	long http_status; /* HTTP status where the error came from an API call */
	char *msg;        /* owned; NULL when code == GERR_OK */
};

#define GERR_INIT { GERR_OK, 0, NULL }

#ifdef __GNUC__
#define GPUCTL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GPUCTL_PRINTF(a, b)
#endif

/* Set the error (replacing any previous one). Always returns -1. err may be NULL. */
int gerr_set(struct gerr *err, enum gerr_code code, const char *fmt, ...) GPUCTL_PRINTF(3, 4);
/* Prepend context "ctx: " to the message. Always returns -1. */
int gerr_prefix(struct gerr *err, const char *fmt, ...) GPUCTL_PRINTF(2, 3);
/* Append a hint on a new line to the message. */
void gerr_hint(struct gerr *err, const char *fmt, ...) GPUCTL_PRINTF(2, 3);
/* Free the message and reset to GERR_OK. */
void gerr_clear(struct gerr *err);
/* Move src into dst (dst cleared first). */
void gerr_move(struct gerr *dst, struct gerr *src);
/* Short name of a code ("forbidden", "tls", ...), used in JSON output. */
const char *gerr_code_name(enum gerr_code code);
/* gpuctl exit code for an error: 2 usage, 3 unreachable/unauthorized, 1 otherwise. */
int gerr_exit_code(const struct gerr *err);
/* True when the error means the cluster could not be reached or refused us. */
int gerr_is_cluster_access(const struct gerr *err);

#endif
