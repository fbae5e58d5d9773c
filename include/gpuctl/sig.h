/* sig.h - interrupts: Ctrl-C, SIGTERM and a dropped terminal (SIGHUP) ask
 * gpuctl to stop; SIGPIPE is ignored (a closed pipe is a write error that
 * the command reports, never a death in the middle of a node change).
 *
 * An interrupt only sets a flag.  Work in flight is brought to a safe end
 * by its owner (a node change finishes and is verified, or is restored);
 * what has not started does not start (fanout_run checks the flag).
 * Repeated interrupts print, once each, that gpuctl is finishing safely. */
#ifndef GPUCTL_SIG_H
#define GPUCTL_SIG_H

/* Install the handlers (once, in main). */
void sig_install(void);
/* The signal that interrupted the run (SIGINT, SIGTERM, SIGHUP), or 0. */
int sig_interrupted(void);
/* How many interrupts arrived (a second one asks to stop at once). */
int sig_count(void);
/* Its name: "SIGINT" ..., or "" when none. */
const char *sig_name(int signo);
/* For tests: behave as if signo had arrived (0 clears). */
void sig_raise_for_test(int signo);

#endif
