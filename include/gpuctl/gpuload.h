/* gpuload.h - the gpuctl-gpuload program (src/load/gpuload.c), carried inside gpuctl.
 *
 * smoke-test --measure hands it to its pods without a registry (a ConfigMap's
 * binaryData, mounted executable); it is the one built with gpuctl, for the
 * build machine's architecture, dynamically linked to glibc (2.34 or later) and
 * libdl only. Generated at build time (src/load/embed-binary.py). */
#ifndef GPUCTL_GPULOAD_H
#define GPUCTL_GPULOAD_H

#include <stddef.h>

/* The executable's bytes (static storage: never freed); *len gets their count. */
const unsigned char *gpuload_binary(size_t *len);

#endif
