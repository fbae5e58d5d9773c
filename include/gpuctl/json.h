/* json.h - small borrowing accessors for cJSON trees (nothing is copied). */
#ifndef GPUCTL_JSON_H
#define GPUCTL_JSON_H

#include <cjson/cJSON.h>

/* The string value of obj[key], or NULL when absent or not a string. */
const char *json_str(const cJSON *obj, const char *key);
/* obj[a][b], or NULL. */
const cJSON *json_get2(const cJSON *obj, const char *a, const char *b);

#endif
