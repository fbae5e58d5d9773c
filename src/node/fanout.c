/* A small thread pool: workers take the next index; completions are queued
 * to the calling thread so output never interleaves. */
#include <pthread.h>
#include <stdlib.h>

#include "gpuctl/buf.h"
#include "gpuctl/fanout.h"
#include "gpuctl/sig.h"

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t n, next, ndone, nreported;
	size_t alive;   /* workers not yet returned */
	size_t *done_order;
	fanout_job_fn job;
	void *ud;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		/* after an interrupt nothing new starts; jobs running finish */
		if (p->next >= p->n || sig_interrupted()) {
			p->alive--;
			pthread_cond_signal(&p->cv);
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		size_t i = p->next++;
		pthread_mutex_unlock(&p->mu);
		p->job(p->ud, i);
		pthread_mutex_lock(&p->mu);
		p->done_order[p->ndone++] = i;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
}

size_t fanout_run(size_t n, int parallel, fanout_job_fn job, fanout_done_fn on_done, void *ud)
{
	if (n == 0)
		return 0;
	if (parallel <= 0)
		parallel = 32;
	size_t nt = (size_t)parallel < n ? (size_t)parallel : n;
	struct pool p = { .n = n, .job = job, .ud = ud };
	p.done_order = xcalloc(n, sizeof(size_t));
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	pthread_t *th = xcalloc(nt, sizeof(pthread_t));
	int *th_ok = xcalloc(nt, sizeof(int));
	size_t started = 0;
	for (size_t i = 0; i < nt; i++) {
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 256 * 1024);
		/* alive counts this worker before it can exit */
		pthread_mutex_lock(&p.mu);
		p.alive++;
		pthread_mutex_unlock(&p.mu);
		if (pthread_create(&th[i], &a, worker, &p) == 0) {
			started++;
			th_ok[i] = 1;
		} else {
			pthread_mutex_lock(&p.mu);
			p.alive--;
			pthread_mutex_unlock(&p.mu);
		}
		pthread_attr_destroy(&a);
	}
	if (started == 0) { /* no threads: run here, one after another */
		p.alive = 1;
		worker(&p);
	}
	pthread_mutex_lock(&p.mu);
	/* every job that started is reported; after an interrupt the rest never start */
	while (p.nreported < p.ndone || p.alive > 0) {
		while (p.nreported == p.ndone && p.alive > 0)
			pthread_cond_wait(&p.cv, &p.mu);
		if (p.nreported == p.ndone)
			break;
		size_t i = p.done_order[p.nreported++];
		pthread_mutex_unlock(&p.mu);
		if (on_done)
			on_done(ud, i);
		pthread_mutex_lock(&p.mu);
	}
	size_t never = n - p.next;
	pthread_mutex_unlock(&p.mu);
	for (size_t i = 0; i < nt; i++)
		if (th_ok[i])
			pthread_join(th[i], NULL);
	free(th);
	free(th_ok);
	free(p.done_order);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.cv);
	return never;
}
