/* fanout.h - run one job per node on a bounded pool of threads.
 *
 * Jobs start in order, at most `parallel` at a time; each job is expected to
 * bound its own time (SSH timeouts), so one hung node never holds the others
 * beyond that.  on_done (optional) runs in the caller's thread as each job
 * finishes, in completion order, for per-node output lines. */
#ifndef GPUCTL_FANOUT_H
#define GPUCTL_FANOUT_H

#include <stddef.h>

typedef void (*fanout_job_fn)(void *ud, size_t index);
typedef void (*fanout_done_fn)(void *ud, size_t index);

/* After an interrupt (sig.h) no new job starts; jobs running finish and are
 * reported.  Returns the number of jobs that never started. */
size_t fanout_run(size_t n, int parallel, fanout_job_fn job, fanout_done_fn on_done, void *ud);

#endif
