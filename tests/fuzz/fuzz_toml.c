/* libFuzzer target: the TOML reader of `containerd config dump` output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_kv(void *ud, const char *table, const char *key, const char *raw, const char *str)
{
	size_t *n = ud;
	if (!table || !key || !raw)
		abort();
	*n += strlen(table) + strlen(key) + strlen(raw) + (str ? strlen(str) : 0);
	return toml_within(table, key) && *n > (1u << 20);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	size_t n = 0;
	toml_scan(text, on_kv, &n);
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");
		free(toml_header(p, len));
		p += len;
		if (*p)
			p++;
	}
	/* each lookup scans the whole text again: two are enough */
	free(toml_get_string(text, "plugins.\"io.containerd.grpc.v1.cri\".containerd", "default_runtime_name"));
	free(toml_get_raw(text, "", "version"));
	free(text);
	return 0;
}
