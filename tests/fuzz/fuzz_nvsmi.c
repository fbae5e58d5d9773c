/* libFuzzer target: the parsers of what a GPU node prints: nvidia-smi
 * --query-gpu CSV, the nvidia-smi banner, /proc/driver/nvidia/version,
 * /proc/modules, and version comparison. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/buf.h"
#include "gpuctl/nvsmi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	struct gerr err = GERR_INIT;
	struct nvsmi_gpus g = { 0 };
	if (nvsmi_parse_query_gpu(text, &g, &err) == 0) {
		for (size_t i = 0; i < g.n; i++)
			if (!g.gpus[i].uuid && !g.gpus[i].name && g.gpus[i].index < -1)
				abort();
	}
	nvsmi_gpus_release(&g);
	gerr_clear(&err);
	char *driver = NULL, *cuda = NULL;
	if (nvsmi_parse_banner(text, &driver, &cuda, &err) == 0)
		free(cuda);
	free(driver);
	gerr_clear(&err);
	driver = NULL;
	nvsmi_parse_proc_version(text, &driver, &err);
	free(driver);
	gerr_clear(&err);
	struct nv_modules m = { 0 };
	proc_modules_parse(text, &m);
	/* two versions: the input split at its first newline */
	char *nl = strchr(text, '\n');
	if (nl) {
		*nl = '\0';
		int a = version_cmp(text, nl + 1), b = version_cmp(nl + 1, text);
		if (a != -2 && b != -2 && (a > 0) != (b < 0))
			abort(); /* not antisymmetric */
		if (version_cmp(text, text) != 0 && version_cmp(text, text) != -2)
			abort();
	}
	free(text);
	return 0;
}
