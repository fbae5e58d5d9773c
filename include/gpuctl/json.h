/* json.h - small borrowing accessors for cJSON trees (nothing is copied). */
#ifndef GPUCTL_JSON_H
#define GPUCTL_JSON_H

#include <cjson/cJSON.h>

/* The string value of obj[key], or NULL when absent or not a string. */
const char *json_str(const cJSON *obj, const char *key);
/* obj[a][b], or NULL. */
const cJSON *json_get2(const cJSON *obj, const char *a, const char *b);

struct buf;
/* Append key as one JSON pointer token (RFC 6901: ~ as ~0, / as ~1). */
void json_pointer_escape(struct buf *b, const char *key);

/* Apply a JSON patch (RFC 6902) to doc in place, as the API server would:
 * the operations test, add, replace and remove on object members (the only
 * ones gpuctl's planners write; an array index is not supported).  -1 when
 * an operation cannot be applied or a test fails (doc is then partly
 * patched: apply to a copy). */
int json_patch_apply(cJSON *doc, const cJSON *ops);

#endif
