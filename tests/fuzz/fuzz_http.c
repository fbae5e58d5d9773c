/* libFuzzer target: what the API server sends back: an error body (Status
 * or anything else) turned into a message, watch stream lines (one JSON
 * event each), Retry-After values, server URLs shown in messages. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "kube/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_event(void *ud, const char *type, const cJSON *obj, struct gerr *err)
{
	(void)err;
	size_t *n = ud;
	if (!type)
		abort();
	char *s = cJSON_PrintUnformatted(obj);
	*n += s ? strlen(s) : 0;
	free(s);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = { 400, 401, 403, 404, 409, 410, 422, 429, 500, 503, 599 };
	const char *reason = NULL;
	char *msg = kube_status_message((const char *)data, size, statuses[size % 11], &reason);
	if (!msg || !*msg)
		abort();
	free(msg);
	/* the body as a watch stream: one event per line */
	size_t n = 0;
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct gerr err = GERR_INIT;
		if (len && kube_watch_decode(p, len, on_event, &n, &err) < 0 && !err.msg)
			abort();
		gerr_clear(&err);
		p += len + 1;
	}
	char *text = xstrndup((const char *)data, size);
	long ra = kube_parse_retry_after(text, 1700000000);
	if (ra < -1)
		abort();
	char *shown = kube_url_redact(text);
	if (!shown || strlen(shown) > strlen(text) + 4)
		abort();
	free(shown);
	free(text);
	return 0;
}
