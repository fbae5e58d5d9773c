#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int gerr_set(struct gerr *err, enum gerr_code code, const char *fmt, ...)
{
	if (!err)
		return -1;
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	gerr_clear(err);
	err->msg = buf_detach(&b);
	err->cause = xstrdup(err->msg);
	err->code = code;
	return -1;
}

int gerr_prefix(struct gerr *err, const char *fmt, ...)
{
	if (!err)
		return -1;
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	buf_adds(&b, ": ");
	buf_adds(&b, err->msg ? err->msg : "unknown error");
	free(err->msg);
	err->msg = buf_detach(&b);
	if (err->code == GERR_OK)
		err->code = GERR_INTERNAL;
	return -1;
}

void gerr_hint(struct gerr *err, const char *fmt, ...)
{
	if (!err)
		return;
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	free(err->hint);
	err->hint = buf_detach(&b);
}

void gerr_clear(struct gerr *err)
{
	if (!err)
		return;
	free(err->msg);
	free(err->hint);
	free(err->cause);
	err->msg = err->hint = err->cause = NULL;
	err->code = GERR_OK;
	err->http_status = 0;
}

void gerr_move(struct gerr *dst, struct gerr *src)
{
	gerr_clear(dst);
	*dst = *src;
	src->msg = src->hint = src->cause = NULL;
	src->code = GERR_OK;
	src->http_status = 0;
}

void gerr_copy(struct gerr *dst, const struct gerr *src)
{
	gerr_clear(dst);
	dst->code = src->code;
	dst->http_status = src->http_status;
	dst->msg = dup_or_null(src->msg);
	dst->hint = dup_or_null(src->hint);
	dst->cause = dup_or_null(src->cause);
}

const char *gerr_cause(const struct gerr *err)
{
	return err->cause ? err->cause : err->msg ? err->msg : "";
}

const char *gerr_code_name(enum gerr_code code)
{
	static const char *const names[GERR_CODE_COUNT] = {
		[GERR_OK] = "ok", [GERR_USAGE] = "usage", [GERR_IO] = "io",
		[GERR_PARSE] = "parse", [GERR_CONFIG] = "config",
		[GERR_CONN] = "unreachable", [GERR_TLS] = "tls",
		[GERR_TIMEOUT] = "timeout", [GERR_AUTH] = "unauthorized",
		[GERR_FORBIDDEN] = "forbidden", [GERR_NOTFOUND] = "notfound",
		[GERR_CONFLICT] = "conflict", [GERR_GONE] = "gone",
		[GERR_API] = "api", [GERR_INVALID] = "invalid",
		[GERR_INTERNAL] = "internal",
		/* a node that cannot be reached or times out reads as before */
		[GERR_SSH_CONN] = "unreachable", [GERR_SSH_TIMEOUT] = "timeout",
		[GERR_HOSTKEY_UNKNOWN] = "hostkey-unknown", [GERR_HOSTKEY_CHANGED] = "hostkey-changed",
		[GERR_SSH_AUTH] = "ssh-auth", [GERR_SSH_COMMAND] = "command-failed",
		[GERR_INTERRUPTED] = "interrupted", [GERR_NOT_READY] = "not-ready",
	};
	if ((unsigned)code < GERR_CODE_COUNT && names[code])
		return names[code];
	return "unknown";
}

int gerr_is_cluster_access(const struct gerr *err)
{
	switch (err->code) {
	case GERR_CONN:
	case GERR_TLS:
	case GERR_TIMEOUT:
	case GERR_AUTH:
	case GERR_FORBIDDEN:
		return 1;
	default:
		return 0;
	}
}

int gerr_is_ssh(const struct gerr *err)
{
	switch (err->code) {
	case GERR_SSH_CONN:
	case GERR_SSH_TIMEOUT:
	case GERR_HOSTKEY_UNKNOWN:
	case GERR_HOSTKEY_CHANGED:
	case GERR_SSH_AUTH:
	case GERR_SSH_COMMAND:
		return 1;
	default:
		return 0;
	}
}

int gerr_exit_code(const struct gerr *err)
{
	return gerr_exit_status(err, 0);
}

int gerr_exit_status(const struct gerr *err, size_t failed)
{
	if (err && err->code != GERR_OK) {
		if (err->code == GERR_USAGE)
			return 2;
		if (gerr_is_cluster_access(err))
			return 3;
		return 1;
	}
	return failed ? 1 : 0;
}
