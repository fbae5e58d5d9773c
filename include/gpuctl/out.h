/* out.h - rendering results: terminal lines, JSON, YAML; colour. */
#ifndef GPUCTL_OUT_H
#define GPUCTL_OUT_H

#include <stdio.h>
#include <cjson/cJSON.h>

#include "gpuctl/buf.h"
#include "gpuctl/err.h"

enum out_color { OUT_PLAIN, OUT_GREEN, OUT_YELLOW, OUT_RED, OUT_DIM, OUT_BOLD };

/* Append s to b made safe for a terminal: C0 controls (ESC included), DEL,
 * C1 controls and bytes that are not UTF-8 become \xNN, bidirectional
 * overrides \uNNNN; tabs and valid UTF-8 text are kept.  Newlines
 * are kept when keep_newlines, else written \x0a.  For text from a server,
 * a node or a file (node names, Status messages, PRETTY_NAME). */
void out_add_printable(struct buf *b, const char *s, int keep_newlines);
/* The same as a new string (newlines escaped: one table cell, one line);
 * the caller frees it.  NULL gives "". */
char *out_sanitize(const char *s);

/* Whether colour should be used on the stream (a terminal, NO_COLOR unset, TERM not dumb). */
int out_want_color(FILE *f);
/* fputs with colour when enabled; s is written through out_add_printable. */
void out_colored(FILE *f, int enabled, enum out_color c, const char *s);
/* Write doc as JSON (indented, trailing newline; DEL and C1 controls as
 * \u escapes) or YAML to f. */
void out_doc(FILE *f, const cJSON *doc, const char *format);
/* Flush stdout and report a write error (full disk, closed pipe) as GERR_IO. */
int out_finish(struct gerr *err);

#endif
