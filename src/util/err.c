#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"

int gerr_set(struct gerr *err, enum gerr_code code, const char *fmt, ...)
{
	if (!err)
		return -1;
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	free(err->msg);
	err->msg = buf_detach(&b);
	err->code = code;
	err->http_status = 0;
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
	buf_adds(&b, err->msg ? err->msg : "");
	buf_adds(&b, "\nhint: ");
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	free(err->msg);
	err->msg = buf_detach(&b);
}

void gerr_clear(struct gerr *err)
{
	if (!err)
		return;
	free(err->msg);
	err->msg = NULL;
	err->code = GERR_OK;
	err->http_status = 0;
}

void gerr_move(struct gerr *dst, struct gerr *src)
{
	gerr_clear(dst);
	*dst = *src;
	src->msg = NULL;
	src->code = GERR_OK;
	src->http_status = 0;
}

const char *gerr_code_name(enum gerr_code code)
{
	static const char *const names[] = {
		[GERR_OK] = "ok", [GERR_USAGE] = "usage", [GERR_IO] = "io",
		[GERR_PARSE] = "parse", [GERR_CONFIG] = "config",
		[GERR_CONN] = "unreachable", [GERR_TLS] = "tls",
		[GERR_TIMEOUT] = "timeout", [GERR_AUTH] = "unauthorized",
		[GERR_FORBIDDEN] = "forbidden", [GERR_NOTFOUND] = "notfound",
		[GERR_CONFLICT] = "conflict", [GERR_GONE] = "gone",
		[GERR_API] = "api", [GERR_INVALID] = "invalid",
		[GERR_INTERNAL] = "internal",
	};
	if ((unsigned)code < sizeof(names) / sizeof(names[0]) && names[code])
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

int gerr_exit_code(const struct gerr *err)
{
	if (!err || err->code == GERR_OK)
		return 0;
	if (err->code == GERR_USAGE)
		return 2;
	if (gerr_is_cluster_access(err))
		return 3;
	return 1;
}
