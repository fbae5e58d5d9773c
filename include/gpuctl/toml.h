/* toml.h - reading the TOML that `containerd config dump` prints.
 *
 * containerd 1.x writes keys and strings in "double" quotes, 2.x in 'single'
 * quotes; both are read alike here.  Table paths and keys come out in one
 * canonical form: segments joined by dots, a segment that is not a bare key
 * (letters, digits, _ and -) in double quotes:
 *     [plugins.'io.containerd.cri.v1.runtime'.containerd]
 *  -> plugins."io.containerd.cri.v1.runtime".containerd
 * Not a whole TOML parser: table headers and one-line `key = value` pairs
 * only (no inline tables spread over lines, no multi-line strings or arrays);
 * what containerd prints stays within that.
 */
#ifndef GPUCTL_TOML_H
#define GPUCTL_TOML_H

#include <stddef.h>

/* Called for each `key = value` line: its table and key (canonical), the
 * value's text as written (trimmed) and, for a string value, the string
 * (unquoted, escapes resolved; NULL otherwise).  Return non-zero to stop. */
typedef int (*toml_kv_fn)(void *ud, const char *table, const char *key, const char *raw, const char *str);
void toml_scan(const char *text, toml_kv_fn fn, void *ud);

/* The canonical path of a table header line ("[a.'b'.c]", leading blanks
 * allowed), a new string; NULL when the line is not a table header. */
char *toml_header(const char *line, size_t len);

/* The string value of table.key, a new string; NULL when absent or not a string. */
char *toml_get_string(const char *text, const char *table, const char *key);

/* The value of table.key as written ("true", "3", "'x'"), a new string; NULL when absent. */
char *toml_get_raw(const char *text, const char *table, const char *key);

/* path is table or a table below it ("a.b" is within "a", not within "ab"). */
int toml_within(const char *path, const char *table);

#endif
