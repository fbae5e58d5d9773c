/* yaml.h - the one bridge between YAML text and cJSON trees.
 *
 * Plain scalars are typed as YAML 1.2's core schema does (null, true/false,
 * integers, floats); quoted scalars are strings.  Aliases are expanded (with
 * a bound against alias bombs).  Errors name the source and line:column.
 */
#ifndef GPUCTL_YAML_H
#define GPUCTL_YAML_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"

/* Parse exactly one document (an empty input yields a JSON null).
 * On success *out is a new tree owned by the caller. source names the input
 * in error messages (a file name). */
int yaml_parse(const char *text, size_t len, const char *source, cJSON **out, struct gerr *err);

/* Parse every document of a stream into a new cJSON array (caller owns). */
int yaml_parse_all(const char *text, size_t len, const char *source, cJSON **out, struct gerr *err);

/* Append a block-style YAML rendering of node to b (no leading "---"). */
void yaml_emit(const cJSON *node, struct buf *b);

#endif
