/* A progress line on a terminal while nodes are worked on; nothing at all
 * when the stream is a file or a pipe (CI logs stay clean). */
#include <unistd.h>

#include "gpuctl/report.h"

void report_progress_init(struct report_progress *p, FILE *f, int want, const char *command, const char *what,
			  size_t total)
{
	p->f = f;
	p->on = want && f && isatty(fileno(f));
	p->command = command;
	p->what = what;
	p->done = 0;
	p->total = total;
}

void report_progress_step(struct report_progress *p, const char *target, size_t failed)
{
	p->done++;
	if (!p->on)
		return;
	fprintf(p->f, "\r\033[K%s: %zu/%zu %s (node/%s: %zu failed)", p->command, p->done, p->total, p->what, target,
		failed);
	if (p->done >= p->total)
		fputs("\r\033[K", p->f);
	fflush(p->f);
}
