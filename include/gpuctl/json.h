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

#endif
