/*
 * workers.c - pools of worker threads, one pool per target node.
 *
 * UFFDIO_COPY allocates the tenant's new page with the policy of the
 * calling thread (when the tenant's VMA has none), and process_vm_readv
 * faults staging pages in with it too. So every worker binds its memory
 * to its node with set_mempolicy(MPOL_BIND) and runs on the node's CPUs
 * (libnuma's numa_node_to_cpus()):
 * whatever it copies lands on that node. A memory-only node has no CPUs;
 * its workers then keep the process's affinity.
 *
 * A pool runs one batch at a time: mig__pool_run() hands out indexes
 * [0, n) to the threads and waits for all of them.
 */
#include <errno.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

struct mig__pool {
	int node;
	unsigned n;
	pthread_t *threads;
	pthread_mutex_t lock;
	pthread_cond_t work; /* a batch is there, or stop */
	pthread_cond_t done; /* a thread finished its part */
	uint64_t gen;	     /* batch generation */
	int (*fn)(void *arg, size_t i);
	void *arg;
	size_t items, next, finished;
	unsigned busy; /* threads inside the batch */
	int result;
	bool stop;
	int setup_err;	/* first error binding a thread */
	unsigned ready; /* threads that have bound themselves */
};

uint64_t mig__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mig__bind_thread(const struct mig_nodes *nodes)
{
	/* The kernel wants maxnode one above the highest bit it may read. */
	return RET_NERRNO(
		set_mempolicy(MPOL_BIND, (const unsigned long *)nodes->bits, MIG_MAX_NODES + 1));
}

int mig__prefer_thread(int node)
{
	struct mig_nodes n = { 0 };

	if (node < 0)
		return RET_NERRNO(set_mempolicy(MPOL_DEFAULT, NULL, 0));
	mig_nodes_set(&n, (unsigned)node);
	return RET_NERRNO(
		set_mempolicy(MPOL_PREFERRED, (const unsigned long *)n.bits, MIG_MAX_NODES + 1));
}

static void *worker_main(void *arg)
{
	struct mig__pool *p = arg;
	struct mig_nodes n = { 0 };
	cpu_set_t cpus;
	uint64_t seen = 0;
	int r;

	mig_nodes_set(&n, (unsigned)p->node);
	r = mig__bind_thread(&n);
	if (r >= 0 && mig__node_cpus(p->node, &cpus) >= 0)
		(void)sched_setaffinity(0, sizeof(cpus), &cpus);
	pthread_mutex_lock(&p->lock);
	if (r < 0 && !p->setup_err)
		p->setup_err = r;
	p->ready++;
	pthread_cond_broadcast(&p->done);
	for (;;) {
		while (!p->stop && p->gen == seen)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop)
			break;
		seen = p->gen;
		p->busy++;
		while (p->next < p->items) {
			size_t i = p->next++;

			pthread_mutex_unlock(&p->lock);
			r = p->fn(p->arg, i);
			pthread_mutex_lock(&p->lock);
			if (r < 0 && p->result >= 0)
				p->result = r;
			p->finished++;
		}
		p->busy--;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int mig__pool_new(int node, unsigned nthreads, struct mig__pool **ret)
{
	struct mig__pool *p;
	int r = 0;

	if (node < 0 || node >= MIG_MAX_NODES || nthreads == 0 || nthreads > 256)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->node = node;
	p->threads = calloc(nthreads, sizeof(pthread_t));
	if (!p->threads) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	for (; p->n < nthreads; p->n++) {
		r = -pthread_create(&p->threads[p->n], NULL, worker_main, p);
		if (r < 0)
			break;
	}
	/* Wait until every thread bound itself, so a bad node fails here. */
	pthread_mutex_lock(&p->lock);
	while (p->ready < p->n)
		pthread_cond_wait(&p->done, &p->lock);
	if (r >= 0 && p->setup_err)
		r = p->setup_err;
	pthread_mutex_unlock(&p->lock);
	if (r < 0) {
		mig__pool_free(p);
		return r;
	}
	*ret = p;
	return 0;
}

void mig__pool_free(struct mig__pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p->threads);
	free(p);
}

unsigned mig__pool_size(const struct mig__pool *p)
{
	return p->n;
}

int mig__pool_node(const struct mig__pool *p)
{
	return p->node;
}

int mig__pool_run(struct mig__pool *p, int (*fn)(void *arg, size_t i), void *arg, size_t n)
{
	int r;

	pthread_mutex_lock(&p->lock);
	p->fn = fn;
	p->arg = arg;
	p->items = n;
	p->next = 0;
	p->finished = 0;
	p->result = 0;
	p->gen++;
	pthread_cond_broadcast(&p->work);
	/*
	 * Wait for the items and for every thread to leave the batch, so
	 * that the next batch cannot be mixed with a late thread of this one.
	 * A thread that has not woken yet for this generation does no work
	 * once it sees next == items.
	 */
	while (p->finished < p->items || p->busy > 0)
		pthread_cond_wait(&p->done, &p->lock);
	r = p->result;
	pthread_mutex_unlock(&p->lock);
	return r;
}
