/* out.h - rendering results: terminal lines, JSON, YAML; colour. */
#ifndef GPUCTL_OUT_H
#define GPUCTL_OUT_H

#include <stdio.h>
#include <cjson/cJSON.h>

#include "gpuctl/err.h"

enum out_color { OUT_PLAIN, OUT_GREEN, OUT_YELLOW, OUT_RED, OUT_DIM, OUT_BOLD };

/* Whether colour should be used on the stream (a terminal, NO_COLOR unset, TERM not dumb). */
int out_want_color(FILE *f);
/* fputs with colour when enabled. */
void out_colored(FILE *f, int enabled, enum out_color c, const char *s);
/* Write doc as JSON (indented, trailing newline) or YAML to f. */
void out_doc(FILE *f, const cJSON *doc, const char *format);
/* Flush stdout and report a write error (full disk, closed pipe) as GERR_IO. */
int out_finish(struct gerr *err);

#endif
