/* err.h - the one error type carried upward with context.
 *
 * Functions return 0 on success and -1 on error, filling a caller-owned
 * struct gerr.  Context is prepended on the way up:
 *     "node gpu-1: patch: nodes "gpu-1" is forbidden: ..."
 * The command maps codes to exit codes (see gerr_exit_code).
 */
#ifndef GPUCTL_ERR_H
#define GPUCTL_ERR_H

#include <stddef.h>

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
	/* reaching a node over SSH: never a cluster-access failure (exit 1, not 3) */
	GERR_SSH_CONN,          /* cannot resolve, connect or handshake with the node */
	GERR_SSH_TIMEOUT,       /* a connection or command outlasted --ssh-timeout */
	GERR_HOSTKEY_UNKNOWN,   /* the node's host key is not in known_hosts */
	GERR_HOSTKEY_CHANGED,   /* the node's host key differs from the recorded one */
	GERR_SSH_AUTH,          /* no key accepted, or sudo wants a password */
	GERR_SSH_COMMAND,       /* a command on the node failed (exit status, signal, none) */
	GERR_INTERRUPTED,       /* stopped by SIGINT/SIGTERM/SIGHUP */
	GERR_NOT_READY,         /* a wait ended before the condition held */
	GERR_CODE_COUNT
};

/* msg is the whole chain, outermost context first ("node gpu-1: containerd:
 * restart failed"); cause is the innermost message as first set; hint says
 * what to do, or is NULL.  All three owned. */
struct gerr {
	enum gerr_code code;
	long http_status; /* HTTP status where the error came from an API call */
	char *msg;        /* owned; NULL when code == GERR_OK */
	char *hint;       /* owned; what to do next, or NULL */
	char *cause;      /* owned; the message before any context was added */
};

#define GERR_INIT { GERR_OK, 0, NULL, NULL, NULL }

#ifdef __GNUC__
#define GPUCTL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GPUCTL_PRINTF(a, b)
#endif

/* Set the error (replacing any previous one). Always returns -1. err may be NULL. */
int gerr_set(struct gerr *err, enum gerr_code code, const char *fmt, ...) GPUCTL_PRINTF(3, 4);
/* Prepend context "ctx: " to the message. Always returns -1. */
int gerr_prefix(struct gerr *err, const char *fmt, ...) GPUCTL_PRINTF(2, 3);
/* Set the hint: what the user can do about it (replaces an earlier hint). */
void gerr_hint(struct gerr *err, const char *fmt, ...) GPUCTL_PRINTF(2, 3);
/* Copy src into dst (dst cleared first); src is unchanged. */
void gerr_copy(struct gerr *dst, const struct gerr *src);
/* The innermost message (without context), or msg when none was recorded. */
const char *gerr_cause(const struct gerr *err);
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
/* True for the codes of reaching a node over SSH. */
int gerr_is_ssh(const struct gerr *err);

/* The one place that turns a command's outcome into its exit status (see
 * gpuctl(1), EXIT STATUS): a usage error 2; a cluster access error (the
 * command could not start its work) 3; else 1 when anything failed (failed
 * > 0, or a non-access error), 0 when all is done.  err may be NULL or
 * clear; an interrupt counts as a failure. */
int gerr_exit_status(const struct gerr *err, size_t failed);

#endif
