/* libFuzzer target: the YAML bridge (yaml_parse_all) and the emitter.
 * Whatever parses must emit to YAML that parses back to the same tree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpuctl/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *docs = NULL;
	struct gerr err = GERR_INIT;
	if (yaml_parse_all((const char *)data, size, "fuzz.yaml", &docs, &err) < 0) {
		if (!err.msg)
			abort(); /* an error always says what */
		gerr_clear(&err);
		return 0;
	}
	const cJSON *doc;
	cJSON_ArrayForEach(doc, docs) {
		struct buf b = BUF_INIT;
		yaml_emit(doc, &b);
		cJSON *back = NULL;
		if (yaml_parse(b.s, b.len, "emitted", &back, &err) < 0)
			abort(); /* the emitter wrote YAML we cannot read */
		if (!cJSON_Compare(doc, back, 1))
			abort(); /* ... or YAML that reads as something else */
		cJSON_Delete(back);
		buf_release(&b);
	}
	cJSON_Delete(docs);
	return 0;
}
