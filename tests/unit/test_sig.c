/* Interrupts: nothing new starts, what runs finishes and is reported. */
#include <criterion/criterion.h>
#include <signal.h>
#include <unistd.h>

#include "gpuctl/fanout.h"
#include "gpuctl/sig.h"

struct run {
	int interrupt_at;  /* 1-based job index that gets Ctrl-C, 0 none */
	int ran[8];
	int done[8];
};

static void job(void *ud, size_t i)
{
	struct run *r = ud;
	r->ran[i] = 1;
	if (r->interrupt_at && i == (size_t)r->interrupt_at - 1)
		sig_raise_for_test(SIGINT); /* Ctrl-C while node 1 is worked on */
	usleep(20000);
}

static void done(void *ud, size_t i)
{
	((struct run *)ud)->done[i] = 1;
}

Test(sig, interrupt_stops_new_jobs_and_reports_running_ones)
{
	sig_raise_for_test(0);
	struct run r = { .interrupt_at = 2 };
	size_t never = fanout_run(8, 2, job, done, &r);
	int ran = 0;
	for (int i = 0; i < 8; i++) {
		ran += r.ran[i];
		cr_assert_eq(r.ran[i], r.done[i], "job %d ran but was not reported (or the reverse)", i);
	}
	cr_assert(r.ran[0] && r.ran[1]);
	cr_assert_eq(never, (size_t)(8 - ran));
	cr_assert_geq(never, 5, "%zu jobs never started", never);
	cr_assert_eq(sig_interrupted(), SIGINT);
	cr_assert_str_eq(sig_name(SIGINT), "SIGINT");
	sig_raise_for_test(0);
	/* without an interrupt everything runs */
	struct run all = { 0 };
	cr_assert_eq(fanout_run(8, 3, job, done, &all), 0);
	sig_raise_for_test(0);
}

Test(sig, real_signals_set_the_flag_and_sigpipe_is_ignored)
{
	sig_raise_for_test(0);
	sig_install();
	raise(SIGTERM);
	cr_assert_eq(sig_interrupted(), SIGTERM);
	raise(SIGPIPE); /* would kill the process if not ignored */
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	close(fds[0]);
	cr_assert_eq(write(fds[1], "x", 1), -1, "a write to a closed pipe is an error, not a death");
	close(fds[1]);
	sig_raise_for_test(0);
}
