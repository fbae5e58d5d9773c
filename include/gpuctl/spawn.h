/* spawn.h - run a local program from an argv (never through a shell). */
#ifndef GPUCTL_SPAWN_H
#define GPUCTL_SPAWN_H

#include "gpuctl/buf.h"
#include "gpuctl/err.h"

struct spawn_opts {
	const char *const *argv;  /* argv[0] is looked up in PATH unless it holds a '/' */
	const char *const *env_extra; /* NULL-terminated "NAME=VALUE" added to (and overriding) the environment */
	const char *const *env_remove; /* NULL-terminated fnmatch(3) patterns: inherited variables whose
					* name matches are not passed on (secrets); env_extra still is */
	int stdin_inherit;        /* 1: child reads our stdin; 0: /dev/null */
	int stderr_inherit;       /* 1: child's stderr is ours; 0: captured into err_out */
	long timeout_ms;          /* 0 = no limit */
	long exit_grace_ms;       /* after the child closed its output: how long it may take to exit
				   * before it is killed (0: only timeout_ms bounds it) */
	size_t max_output;        /* cap on captured stdout (bytes) */
};

/* Run the program and wait for it. Captured stdout goes to out, stderr to
 * err_out (when not inherited; may be NULL).  *status gets the exit code
 * (128+signal when killed).  Returns -1 only when the program could not be
 * started (GERR_NOTFOUND when it does not exist) or timed out (GERR_TIMEOUT;
 * the child is killed with SIGKILL). */
int spawn_run(const struct spawn_opts *o, struct buf *out, struct buf *err_out, int *status,
	      struct gerr *err);

#endif
