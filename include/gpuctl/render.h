/* render.h - a small template engine for the manifests gpuctl writes.
 *
 * Layout: the templates live in templates/NAME.tmpl in the source tree; a meson
 * step (src/render/embed.py) turns each into a C array at build time
 * (templates_data.c in the build folder), found by render_embedded_find().
 * `--templates DIR` (struct render_ctx.dir) names a folder whose files
 * replace the embedded templates of the same name.
 *
 * Values come from a cJSON tree (the "values", usually an object).
 *
 * Syntax (a Go-template subset):
 *   {{ .a.b }}        the value at path a.b below the dot; `.` alone is the
 *                     dot itself; `$` is the root of the values, `$.name` a
 *                     path from it; a segment of digits indexes an array
 *                     (.list.0).  An unknown path is an error NAME:LINE.
 *   {{ "text" }}      a string literal (escapes \" \\ \n \t), e.g. {{ "{{" | raw }}
 *   {{ X | f | g }}   filters, applied left to right:
 *       yaml          (the default when no encoder is given) a YAML scalar:
 *                     strings stay plain only when no YAML reader could take
 *                     them for anything else (letters, digits, . _ / - and
 *                     inner single spaces, starting with a letter, _ or /,
 *                     not yes/no/on/off/true/false/null/y/n/inf/nan in any
 *                     case); every other string is double-quoted with
 *                     escapes; numbers and booleans plain, null as null.  An
 *                     object or array becomes block YAML whose first line is
 *                     not indented and whose other lines are (use indent);
 *                     empty ones {} and [].
 *       toml          a TOML value: basic "string" with escapes, integer or
 *                     float, boolean, inline array, inline table (null is an
 *                     error: TOML has none)
 *       json          compact JSON, also a YAML flow value (characters YAML
 *                     would not read verbatim are written as \uXXXX)
 *       raw           a scalar's text verbatim: only for trusted fragments
 *       indent N      N spaces after every newline of the text so far (the
 *                     tag's own column indents the first line):
 *                         tolerations:
 *                           {{ .tolerations | indent 4 }}
 *     An encoder after another encodes the text so far as a string
 *     ({{ .cfg | json | yaml }} is a YAML-quoted JSON string).
 *   {{ if X }} ... {{ else if Y }} ... {{ else }} ... {{ end }}
 *                     X is true when it exists and is not null, false, "",
 *                     [] or {} (numbers, 0 included, are true); an unknown
 *                     path is false here.  {{ if not X }} negates.
 *   {{ range X }} ... {{ else }} ... {{ end }}
 *                     over an array: the dot is each element; over an
 *                     object: the dot is {key, value} for each member, in
 *                     the object's order ({{ .key }}: {{ .value }}); else
 *                     runs when it is empty or null; any other value is an
 *                     error.  Inside, `$` still reaches the root.
 *   {{# comment }}    produces nothing (it ends at the first }}).
 * Whitespace: a line holding only one block tag (if, else, end, range,
 * comment) and blanks disappears whole, newline included, so block tags can
 * sit on their own lines without leaving blank lines.  As in Go, `{{- `
 * removes all white space (newlines too) before the tag and ` -}}` after it.
 *
 * Errors name the template and line ("runtimeclass.yaml.tmpl:3: ...", the
 * file's path for an override): GERR_PARSE for syntax (unclosed or stray
 * block tags, unknown filters), GERR_INVALID for rendering (unknown
 * variable, range over a non-list, bounds).  Bounds: blocks nest at most
 * RENDER_MAX_DEPTH deep, the output is at most RENDER_MAX_OUTPUT bytes (or
 * render_ctx.max_output), and at most RENDER_MAX_STEPS actions run.
 *
 * Ownership: values are borrowed; outputs are appended to the caller's
 * buffer (cut back to its length on entry when an error occurs); *docs is a
 * new array owned by the caller.
 */
#ifndef GPUCTL_RENDER_H
#define GPUCTL_RENDER_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"

#define RENDER_MAX_OUTPUT (1024 * 1024)
#define RENDER_MAX_DEPTH 32
#define RENDER_MAX_STEPS 1000000
#define RENDER_MAX_TEMPLATE (1024 * 1024)

struct render_ctx {
	const char *dir;   /* --templates DIR: its files win over the embedded ones; NULL: embedded only */
	size_t max_output; /* 0: RENDER_MAX_OUTPUT */
};

/* One template compiled into the binary (text is NUL-terminated). */
struct render_embedded {
	const char *name; /* "runtimeclass.yaml.tmpl" */
	const char *text;
	size_t len;
};

/* The embedded template called name, or NULL. */
const struct render_embedded *render_embedded_find(const char *name);
/* Every embedded template, in name order, ended by an entry whose name is NULL. */
const struct render_embedded *render_embedded_list(void);

/* Check that dir (--templates) is a readable, searchable folder; GERR_USAGE
 * naming it and the reason otherwise. */
int render_check_dir(const char *dir, struct gerr *err);

/* Render the template name (from rc->dir when it has a file of that name,
 * else the embedded one; rc may be NULL) against values, appending to out.
 * A name found nowhere is GERR_NOTFOUND; an unreadable override GERR_IO. */
int render_template(const struct render_ctx *rc, const char *name, const cJSON *values, struct buf *out,
		    struct gerr *err);

/* Render text (len bytes; need not be NUL-terminated) as the template name. */
int render_string(const struct render_ctx *rc, const char *name, const char *text, size_t len, const cJSON *values,
		  struct buf *out, struct gerr *err);

/* Render name and parse every YAML document of the result into *docs (a new
 * array), so that no caller uses an unparsed rendering.  A parse error names
 * the template ("NAME (rendered):LINE:COL: ...").  When text is not NULL the
 * rendering is appended to it (on success only). */
int render_yaml_docs(const struct render_ctx *rc, const char *name, const cJSON *values, cJSON **docs,
		     struct buf *text, struct gerr *err);

/* The encoders behind the yaml and toml filters, for code that writes a
 * value by hand: append s as a YAML scalar (plain when safe, else
 * double-quoted) or a TOML basic string.  -1 (GERR_INVALID) when s is not
 * valid UTF-8. */
int render_yaml_string(const char *s, size_t len, struct buf *out, struct gerr *err);
int render_toml_string(const char *s, size_t len, struct buf *out, struct gerr *err);

#endif
