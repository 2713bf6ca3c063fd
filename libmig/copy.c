/*
 * copy.c - the copy-engine seam and its engines.
 *
 * Like the kernel's batch-copy rule (FOLIO_CONTENT_COPIED), whoever
 * copies a page marks it: an engine sets the COPIED bit of exactly the
 * pages it copied intact, and the window zaps only marked pages. An
 * engine that copies less is never wrong, only slower: mig__copy_stage()
 * asks the same engine again page by page for what a batch left unmarked,
 * and a page that still fails keeps no marker and stays where it is.
 *
 * Engines: the default one issues process_vm_readv with many iovecs from
 * the calling thread; the threaded one splits a batch across the target
 * node's worker pool. Tests put a failing engine in front of the default
 * one through the same seam.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>

#include "bitmap.h"
#include "engine.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/*
 * Read pages [from, to) of req with as few iovecs as contiguity allows.
 * Marks every page read in full. Stops at the first short read: the
 * remaining pages stay unmarked for the page-by-page pass.
 */
static int readv_range(const struct mig_copy_req *req, size_t from, size_t to)
{
	struct iovec local[IOV_MAX], remote[IOV_MAX];

	while (from < to) {
		size_t nl = 0, nr = 0, first = from, i;
		ssize_t n;

		for (i = from; i < to; i++) {
			uint64_t src = req->src[i];
			char *dst = req->dst[i];

			if (nr > 0 &&
			    (uint64_t)remote[nr - 1].iov_base + remote[nr - 1].iov_len == src)
				remote[nr - 1].iov_len += MIG__PAGE;
			else if (nr < IOV_MAX)
				remote[nr++] = (struct iovec){ (void *)src, MIG__PAGE };
			else
				break;
			if (nl > 0 && (char *)local[nl - 1].iov_base + local[nl - 1].iov_len == dst)
				local[nl - 1].iov_len += MIG__PAGE;
			else if (nl < IOV_MAX)
				local[nl++] = (struct iovec){ dst, MIG__PAGE };
			else {
				/* Undo this page's remote part: it goes into the next call. */
				if (remote[nr - 1].iov_len > MIG__PAGE)
					remote[nr - 1].iov_len -= MIG__PAGE;
				else
					nr--;
				break;
			}
		}
		n = process_vm_readv(req->pid, local, nl, remote, nr, 0);
		if (n < 0) {
			if (req->err && from < to)
				req->err[from] = errno;
			return errno == ESRCH ? -ESRCH : 0;
		}
		for (size_t k = 0; k < (size_t)n / MIG__PAGE && first + k < i; k++)
			mig__bit_set(req->copied, first + k);
		if ((size_t)n < (i - first) * MIG__PAGE)
			return 0; /* short: the rest goes page by page */
		from = i;
	}
	return 0;
}

static int default_copy(const struct mig_copy_engine *e, const struct mig_copy_req *req)
{
	return readv_range(req, 0, req->npages);
}

static const struct mig_copy_engine default_engine = {
	.name = "process_vm_readv",
	.copy = default_copy,
};

const struct mig_copy_engine *mig_copy_engine_default(void)
{
	return &default_engine;
}

struct split {
	const struct mig_copy_req *req;
	size_t parts;
};

static int split_part(void *arg, size_t k)
{
	const struct split *s = arg;
	size_t n = s->req->npages, per = (n + s->parts - 1) / s->parts;
	size_t from = k * per, to = MIN(n, from + per);

	return from < to ? readv_range(s->req, from, to) : 0;
}

static int threaded_copy(const struct mig_copy_engine *e, const struct mig_copy_req *req)
{
	struct mig__pool *pool = req->pool;
	struct split s = { .req = req };

	/* Small batches are not worth waking threads for. */
	if (!pool || mig__pool_size(pool) < 2 || req->npages < 64)
		return readv_range(req, 0, req->npages);
	s.parts = mig__pool_size(pool);
	return mig__pool_run(pool, split_part, &s, s.parts);
}

static const struct mig_copy_engine threaded_engine = {
	.name = "threaded",
	.copy = threaded_copy,
};

const struct mig_copy_engine *mig_copy_engine_threaded(void)
{
	return &threaded_engine;
}

int mig__copy_stage(const struct mig_copy_engine *e, const struct mig_copy_req *req)
{
	int r;

	r = e->copy(e, req);
	if (r == -ESRCH)
		return r;
	/* Whatever the batch left unmarked: once more, one page at a time. */
	for (size_t i = 0; i < req->npages; i++) {
		struct mig_copy_req one;
		uint64_t bit = 0;
		int err = 0;

		if (mig__bit_test(req->copied, i))
			continue;
		one = (struct mig_copy_req){
			.pid = req->pid,
			.npages = 1,
			.src = &req->src[i],
			.dst = &req->dst[i],
			.copied = &bit,
			.err = &err,
			.pool = req->pool,
		};
		r = e->copy(e, &one);
		if (r == -ESRCH)
			return r;
		if (bit & 1)
			mig__bit_set(req->copied, i);
		else if (req->err)
			req->err[i] = err ? err : (r < 0 ? -r : EIO);
	}
	return 0;
}
