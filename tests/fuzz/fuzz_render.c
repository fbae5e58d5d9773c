/* libFuzzer target: the input is a template, rendered against a fixed set of
 * values (strings that need quoting, numbers, lists, nested mappings); a
 * successful rendering is parsed as YAML as callers do.  Must never crash,
 * hang or leak, whatever the template. */
#include <stddef.h>
#include <stdint.h>

#include "gpuctl/render.h"
#include "gpuctl/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char values_json[] =
	"{\"name\":\"nvidia\",\"handler\":\"nvidia\",\"n\":3,\"f\":0.5,\"t\":true,\"no\":false,\"z\":null,"
	"\"s\":\"a: \\\"b\\\" #c {{ d }}\\n\\u0085 yes\",\"e\":\"\",\"l\":[\"p\",1,{\"k\":\"v\"},[true,null]],"
	"\"m\":{\"a\":1,\"b\":{\"c\":[\"x\",\"y\"]},\"nvidia.com/gpu\":\"on\"},\"el\":[],\"em\":{}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static cJSON *values;
	if (!values)
		values = cJSON_Parse(values_json); /* kept for the whole run */
	struct render_ctx rc = { .max_output = 64 * 1024 };
	struct buf out = BUF_INIT;
	struct gerr err = GERR_INIT;
	if (render_string(&rc, "fuzz.tmpl", (const char *)data, size, values, &out, &err) == 0) {
		cJSON *docs = NULL;
		if (yaml_parse_all(out.s, out.len, "fuzz.tmpl (rendered)", &docs, &err) == 0)
			cJSON_Delete(docs);
	}
	gerr_clear(&err);
	buf_release(&out);
	return 0;
}
