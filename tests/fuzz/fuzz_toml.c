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
	static const char *const keys[][2] = {
		{ "plugins.\"io.containerd.grpc.v1.cri\".containerd", "default_runtime_name" },
		{ "plugins.\"io.containerd.cri.v1.runtime\".containerd", "default_runtime_name" },
		{ "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.nvidia.options", "BinaryName" },
		{ "", "version" },
		{ "", "root" },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		free(toml_get_string(text, keys[i][0], keys[i][1]));
		free(toml_get_raw(text, keys[i][0], keys[i][1]));
	}
	free(text);
	return 0;
}
