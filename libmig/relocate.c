/*
 * relocate.c - move a tenant's anonymous pages to another address so that
 * they merge with their new neighbours (relocate), and merge neighbouring
 * VMAs that failed to merge by relocating one onto the other (compact).
 *
 * Why not mremap: mremap moves a VMA with its anon_vma and its index
 * (vm_pgoff), so a moved block keeps both and refuses to merge with its new
 * neighbours (the kernel's vma_merge wants the same anon_vma, or one side
 * without, an index that continues the neighbour's, and equal flags, file,
 * memory policy, name and userfaultfd context). UFFDIO_MOVE instead gives
 * every page it moves the destination VMA's anon_vma and the index that
 * fits there, keeping the physical page (and a fully covered, equally
 * aligned PMD THP stays one THP). UFFDIO_COPY gives fresh pages the same
 * way, at the cost of a copy.
 *
 * The rules that keep the tenant's data safe, all enforced here:
 *
 *  1. Every thread of the tenant is held stopped with ptrace from before
 *     the layout is read until the last step is done, so no tenant thread
 *     can see a page in flight or change the mappings we planned on. Our
 *     injected syscalls run in one of those stopped threads. No fault can
 *     reach the fault thread, so none is needed; and nothing we do raises
 *     a userfaultfd event (we unregister the destination before anything
 *     over it is unmapped), so no syscall of ours waits for a reader.
 *  2. A page leaves its place only by a step that puts it somewhere the
 *     tenant will find it: UFFDIO_MOVE (atomic per page), UFFDIO_COPY from
 *     a copy read while the threads are stopped (the original is dropped
 *     only with the source VMA, at the very end), or mremap.
 *  3. The path is chosen per page: MOVE; where MOVE refuses a page, COPY if
 *     the page is shared with another process (after fork or KSM: a copy is
 *     what the kernel's own COW would make), never for a page mapped by us
 *     alone that MOVE refused (it may be pinned for DMA, and a DMA write
 *     into a copied-away page would be lost): that page is mremapped, which
 *     keeps it, at the cost of the merge. A page COPY cannot place (the
 *     node is full) is mremapped too. The zero page and holes are left as
 *     holes: they read as zeros at the destination as at the source.
 *  4. The source is unmapped only when every page has its new place.
 *
 * A copy is made by this thread bound (MPOL_BIND) to the node the page was
 * on, so the copy lands where the original was (DESIGN.md: UFFDIO_COPY
 * allocates by the calling thread's policy).
 *
 * Not covered: a migd that dies halfway leaves the tenant's threads to run
 * on (ptrace detaches them) with part of the pages at the destination and
 * part at the source or in the temporary area; nothing is lost, but the
 * tenant sees the wrong layout. A journal (DESIGN.md, journal.c) is the cure.
 */
#include <errno.h>
#include <inttypes.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "crashpoint.h"
#include "engine.h"
#include "trace.h"
#include "ptrace.h"
#include "stopset.h"
#include "procfs.h"
#include "tenant.h"
#include "uffd.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif

#define PAGE MIG__PAGE
#define PMD  MIG__PMD
/* Pages copied per UFFDIO_COPY at most (one PMD). */
#define COPY_BATCH 512
/* MOVE steps refused with -EAGAIN in a row before the rest is copied. */
#define MOVE_AGAIN_MAX 1000

const char *mig_relocate_path_name(int path)
{
	switch (path) {
	case MIG_RELOCATE_MOVE:
		return "move";
	case MIG_RELOCATE_COPY:
		return "copy";
	case MIG_RELOCATE_REMAP:
		return "remap";
	default:
		return "?";
	}
}

void mig_relocate_result_free(struct mig_relocate_result *r)
{
	if (!r)
		return;
	free(r->runs);
	r->runs = NULL;
	r->nruns = 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- the tenant's VMAs, with what decides a merge ---------------------- */

struct rvma {
	uint64_t start, end;
	uint64_t pgoff; /* in pages */
	struct mig_vma v;
	char vmflags[160]; /* smaps VmFlags, "sd" (soft-dirty) left out */
	struct mig__policy pol;
};

/*
 * VmFlags as " rd wr mr ... " (a space on both sides of every flag, so a
 * flag is found with strstr), without "sd": vma_merge ignores soft-dirty.
 */
static void copy_vmflags(char *dst, size_t size, const char *s)
{
	size_t n = 1;

	snprintf(dst, size, " ");
	while (*s) {
		char tok[8];
		int len = 0;

		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		while (*s && *s != ' ' && *s != '\n' && len < 7)
			tok[len++] = *s++;
		while (*s && *s != ' ' && *s != '\n')
			s++;
		tok[len] = '\0';
		if (!len || !strcmp(tok, "sd") || n + (size_t)len + 2 > size)
			continue;
		n += (size_t)snprintf(dst + n, size - n, "%s ", tok);
	}
}

static bool has_vmflag(const struct rvma *v, const char *flag)
{
	char pat[8];

	snprintf(pat, sizeof(pat), " %s ", flag);
	return strstr(v->vmflags, pat) != NULL;
}

/* Every VMA of pid from smaps (flags) and numa_maps (policies), in order. */
static int read_layout(pid_t pid, struct rvma **ret, size_t *ret_n)
{
	_cleanup_free_ struct rvma *v = NULL;
	_cleanup_free_ struct mig__vma_policy *pols = NULL;
	_cleanup_free_ char *line = NULL;
	size_t n = 0, cap = 0, lcap = 0, npols = 0, k = 0;
	char path[64];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (getline(&line, &lcap, f) > 0) {
		struct mig_vma m;

		if (mig__parse_maps_line(line, &m) == 0) {
			if (n == cap) {
				size_t c = cap ? 2 * cap : 64;
				struct rvma *nv = realloc(v, c * sizeof(*nv));

				if (!nv) {
					fclose(f);
					return -ENOMEM;
				}
				v = nv;
				cap = c;
			}
			memset(&v[n], 0, sizeof(v[n]));
			v[n].start = m.start;
			v[n].end = m.end;
			v[n].pgoff = m.offset / PAGE;
			v[n].v = m;
			n++;
		} else if (n > 0 && strncmp(line, "VmFlags:", 8) == 0)
			copy_vmflags(v[n - 1].vmflags, sizeof(v[n - 1].vmflags), line + 8);
	}
	fclose(f);
	if (n == 0)
		return -ESRCH; /* a zombie has no maps */
	r = mig__vma_policies(pid, &pols, &npols);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		while (k < npols && pols[k].start < v[i].start)
			k++;
		if (k < npols && pols[k].start == v[i].start)
			v[i].pol = pols[k].pol;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

static const struct rvma *vma_at(const struct rvma *v, size_t n, uint64_t addr)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= v[i].start && addr < v[i].end)
			return &v[i];
	return NULL;
}

static bool same_policy(const struct mig__policy *a, const struct mig__policy *b)
{
	return a->mode == b->mode && a->has_nodes == b->has_nodes &&
	       (!a->has_nodes || memcmp(&a->nodes, &b->nodes, sizeof(a->nodes)) == 0);
}

/*
 * May we take pages out of v or put pages into it? Anonymous, private,
 * not [heap]/[stack]/special, no userfaultfd registration (ours belongs
 * to a running job; another uffd is the tenant's own), not mlocked (a
 * grown mlocked VMA is populated at once, and MOVE wants both sides alike).
 */
static const char *unfit(const struct rvma *v)
{
	if (!mig_vma_is_anon_private(&v->v))
		return "not anonymous private memory";
	if (v->v.flags & (MIG_VMA_HEAP | MIG_VMA_STACK))
		return "the [heap] or a [stack]";
	if (has_vmflag(v, "um") || has_vmflag(v, "uw") || has_vmflag(v, "ui"))
		return "registered with a userfaultfd (a running job, or the tenant's own)";
	if (has_vmflag(v, "lo") || has_vmflag(v, "lf"))
		return "mlocked";
	if (has_vmflag(v, "de"))
		return "VM_DONTEXPAND";
	return NULL;
}

/* Would a and b merge if their anon_vma and index lined up? */
static bool mergeable(const struct rvma *a, const struct rvma *b)
{
	return !unfit(a) && !unfit(b) && (a->v.flags & 7) == (b->v.flags & 7) &&
	       strcmp(a->vmflags, b->vmflags) == 0 && strcmp(a->v.name, b->v.name) == 0 &&
	       same_policy(&a->pol, &b->pol);
}

static uint64_t count_vmas(const struct rvma *v, size_t n, const struct mig_range *range,
			   bool anon_only)
{
	uint64_t c = 0;

	for (size_t i = 0; i < n; i++)
		if ((!range || (v[i].end > range->start && v[i].start < range->end)) &&
		    (!anon_only || mig_vma_is_anon_private(&v[i].v)))
			c++;
	return c;
}

/* ---- the stopped tenant and syscalls in it ------------------------------ */

struct session {
	struct mig_tenant *t;
	struct mig__inject x;	    /* the executor thread */
	struct mig__stopset others; /* every other thread */
	uint64_t arg;		    /* a page of the tenant for ioctl arguments */
	uint64_t t0;
};

static int sc(struct session *s, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
	      uint64_t a4, int64_t *ret)
{
	const uint64_t args[6] = { a0, a1, a2, a3, a4, 0 };
	int64_t x = 0;
	int r = mig__inject_syscall(&s->x, nr, args, &x);

	if (r < 0)
		return r;
	if (ret)
		*ret = x;
	return x < 0 && x > -4096 ? (int)x : 0;
}

/* Stop every thread of the tenant; the first one found runs our syscalls. */
static int session_begin(struct mig_tenant *t, struct session *s)
{
	pid_t tid;
	int64_t a;
	int r;

	memset(s, 0, sizeof(*s));
	s->t = t;
	if (t->method != MIG_ATTACH_PTRACE) {
		mig__tenant_set_error("relocation holds every thread of the tenant stopped with "
				      "ptrace; pid %d is attached through the agent",
				      t->pid);
		return -EOPNOTSUPP;
	}
	tid = mig__inject_thread(t);
	if (tid < 0) {
		mig__tenant_set_error("pid %d has no live thread", t->pid);
		return tid == -EOPNOTSUPP ? -EOPNOTSUPP : -ESRCH;
	}
	r = mig__inject_begin_thread(t, tid, &s->x);
	if (r < 0)
		return r;
	r = mig__stop_threads(t, &tid, 1, NULL, NULL, &s->others);
	if (r < 0)
		goto fail;
	r = sc(s, SYS_mmap, mig__far_hint(t->pid, PAGE), PAGE, PROT_READ | PROT_WRITE,
	       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, (uint64_t)-1, &a);
	if (r < 0)
		goto fail;
	s->arg = (uint64_t)a;
	s->t0 = now_ns();
	return 0;
fail:
	(void)mig__resume_threads(&s->others);
	(void)mig__inject_end(&s->x);
	return r;
}

static int session_end(struct session *s, uint64_t *stopped_ns)
{
	int r = 0;

	if (s->arg && sc(s, SYS_munmap, s->arg, PAGE, 0, 0, 0, NULL) < 0)
		r = -ESRCH;
	if (stopped_ns)
		*stopped_ns += now_ns() - s->t0;
	if (mig__resume_threads(&s->others) < 0 && r == 0)
		r = -ESRCH;
	if (mig__inject_end(&s->x) < 0 && r == 0)
		r = -ESRCH;
	return r;
}

static int tenant_rw(pid_t pid, uint64_t addr, void *buf, size_t len, bool write)
{
	struct iovec l = { buf, len }, rm = { (void *)(uintptr_t)addr, len };
	ssize_t n = write ? process_vm_writev(pid, &l, 1, &rm, 1, 0)
			  : process_vm_readv(pid, &l, 1, &rm, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* UFFDIO_MOVE inside the stopped tenant; *moved gets the bytes moved. */
static int move_in(struct session *s, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
		   uint64_t *moved)
{
	struct uffdio_move m = { .dst = dst, .src = src, .len = len, .mode = mode };
	int64_t x = 0;
	int r;

	*moved = 0;
	r = tenant_rw(s->t->pid, s->arg, &m, sizeof(m), true);
	if (r < 0)
		return r;
	r = sc(s, SYS_ioctl, (uint64_t)s->t->tenant_fd, UFFDIO_MOVE, s->arg, 0, 0, &x);
	if (r < 0 && r == (int)x) {
		/* The ioctl's own answer: how far it got is in the argument. */
		if (tenant_rw(s->t->pid, s->arg, &m, sizeof(m), false) == 0 && m.move > 0)
			*moved = (uint64_t)m.move;
		return r;
	}
	if (r < 0)
		return r;
	if (tenant_rw(s->t->pid, s->arg, &m, sizeof(m), false) == 0 && m.move > 0)
		*moved = (uint64_t)m.move;
	return 0;
}

/* ---- the core: src -> dst within one stopped session --------------------- */

struct core {
	struct session *s;
	struct mig_relocate_result *res;
	unsigned flags;
	uint64_t src, dst, len;
	size_t npages;
	struct mig_pageinfo *pi; /* the source pages before */
	uint8_t *path;		 /* per page: 0 not placed yet, or a path; 0xff absent */
	char *buf;		 /* COPY_BATCH pages */
	bool done;		 /* every page has its place */
	struct mig__memcg memcg; /* the tenant's memory limits (copy_run) */
};

#define ABSENT 0xff

static bool page_absent(const struct mig_pageinfo *p)
{
	return !(p->flags & (MIG_PAGE_PRESENT | MIG_PAGE_SWAPPED)) || (p->flags & MIG_PAGE_ZERO);
}

/* Add the large folios of pi[0..n) per order to counts, and keep the sums. */
static void count_large(const struct mig_pageinfo *pi, size_t n, uint64_t *counts, uint64_t *thp,
			uint64_t *mthp)
{
	for (size_t i = 0; i < n; i++)
		mig__count_folio(&pi[i], counts);
	mig__folio_totals(counts, thp, mthp);
}

/* The calling thread's memory policy, to put back after binding it. */
struct saved_policy {
	int mode;
	struct mig_nodes nodes;
	bool bound;
};

static void bind_to(struct saved_policy *sp, int node)
{
	struct mig_nodes n = { 0 };

	if (!sp->bound) {
		if (get_mempolicy(&sp->mode, (unsigned long *)sp->nodes.bits, MIG_MAX_NODES + 1,
				  NULL, 0UL) < 0) {
			sp->mode = MPOL_DEFAULT;
			memset(&sp->nodes, 0, sizeof(sp->nodes));
		}
		sp->bound = true;
	}
	if (node < 0) {
		(void)set_mempolicy(MPOL_DEFAULT, NULL, 0UL);
		return;
	}
	mig_nodes_set(&n, (unsigned)node);
	(void)mig__bind_thread(&n);
}

static void unbind(struct saved_policy *sp)
{
	if (!sp->bound)
		return;
	if (sp->mode == MPOL_DEFAULT)
		(void)set_mempolicy(MPOL_DEFAULT, NULL, 0UL);
	else
		(void)set_mempolicy(sp->mode, (const unsigned long *)sp->nodes.bits,
				    MIG_MAX_NODES + 1);
	sp->bound = false;
}

/*
 * COPY pages [i, k) (present, all on one node): read them while the
 * tenant is stopped, place them with UFFDIO_COPY from a thread bound to
 * that node. Pages that cannot be placed keep path 0 (mremapped later).
 */
static void copy_run(struct core *c, size_t i, size_t k, struct saved_policy *sp)
{
	int node = c->pi[i].node;
	uint64_t done = 0;
	size_t n = k - i;
	int r;

	/*
	 * The copies are charged to the tenant while its originals stay
	 * until the end: only with room under its memory cgroup limit (a
	 * charge over it wakes the OOM killer in the tenant, memcg.c).
	 * Without, the pages keep path 0 and are mremapped, like pages the
	 * node has no room for.
	 */
	if (c->memcg.n &&
	    mig__memcg_room(&c->memcg, n * PAGE + MIG__MEMCG_SLACK) < n * PAGE + MIG__MEMCG_SLACK) {
		MIG_TRACE("MEMCG relocate: no room for %zu copies: mremapped", n);
		return;
	}
	if (tenant_rw(c->s->t->pid, c->src + i * PAGE, c->buf, n * PAGE, false) < 0) {
		/* Page by page then: a page that cannot be read stays for mremap. */
		for (size_t p = i; n > 1 && p < k; p++)
			copy_run(c, p, p + 1, sp);
		return;
	}
	bind_to(sp, node);
	for (size_t p = i; p < k;) {
		r = mig__uffd_copy(c->s->t->uffd, c->dst + p * PAGE, c->buf + (p - i) * PAGE,
				   (k - p) * PAGE, 0, &done);
		for (size_t q = 0; q < done / PAGE; q++)
			c->path[p + q] = MIG_RELOCATE_COPY;
		p += done / PAGE;
		if (r == -EEXIST && p < k) {
			/* Already placed (cannot happen while we hold the tenant): leave it. */
			p++;
		} else if (r == -EAGAIN) {
			continue;
		} else if (r < 0) {
			/* -ENOMEM: the node is full; the rest keeps its page by mremap. */
			break;
		}
	}
}

/* COPY every present page of [from, to) that has no path yet. */
static void copy_pages(struct core *c, size_t from, size_t to, struct saved_policy *sp)
{
	for (size_t i = from; i < to;) {
		size_t k;

		if (c->path[i]) {
			i++;
			continue;
		}
		for (k = i + 1;
		     k < to && k - i < COPY_BATCH && !c->path[k] && c->pi[k].node == c->pi[i].node;
		     k++)
			;
		copy_run(c, i, k, sp);
		i = k;
	}
}

/*
 * Pages from i on that a MOVE took to dst although its answer did not
 * count them (Linux 6.18's batched MOVE can answer -EEXIST after moving
 * a batch: docs/engine.md, "Causes found under churn", 8): gone from
 * src and present at dst, where nothing was before. Marks them MOVE and
 * returns how many consecutive ones there are from i (up to 512).
 */
static size_t moved_uncounted(struct core *c, size_t i, size_t to)
{
	struct mig_pageinfo at_src[512], at_dst[512];
	size_t n = MIN(to - i, ARRAY_SIZE(at_src)), k;
	pid_t pid = c->s->t->pid;

	if (mig_query_pages(pid, c->src + i * PAGE, n, MIG_QUERY_PAGEMAP, at_src) < 0 ||
	    mig_query_pages(pid, c->dst + i * PAGE, n, MIG_QUERY_PAGEMAP, at_dst) < 0)
		return 0;
	for (k = 0; k < n; k++) {
		if (!page_absent(&at_src[k]) || page_absent(&at_dst[k]))
			break;
		if (!c->path[i + k])
			c->path[i + k] = MIG_RELOCATE_MOVE;
	}
	c->res->moved_uncounted += k;
	return k;
}

/*
 * MOVE [from, to) with holes allowed. A page MOVE refuses gets COPY when
 * it is shared with another mm (not exclusively mapped: fork, KSM) and
 * stays for mremap when it is ours alone (pinned); any other refusal
 * leaves the rest to COPY.
 */
static int move_pages_run(struct core *c, size_t from, size_t to, struct saved_policy *sp)
{
	unsigned again = 0;

	for (size_t i = from; i < to;) {
		uint64_t moved = 0;
		size_t m;
		int r;

		r = move_in(c->s, c->dst + i * PAGE, c->src + i * PAGE, (to - i) * PAGE,
			    UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES, &moved);
		if (r == -ESRCH)
			return r;
		if (r == 0 && moved == (to - i) * PAGE && mig__fault_point("relocate:uncounted")) {
			/* The answer Linux 6.18 can give for a MOVE that moved (moved_uncounted).
			 */
			r = -EEXIST;
			moved = 0;
		}
		m = MIN(to - i, moved / PAGE);
		for (size_t p = i; p < i + m; p++)
			if (!c->path[p])
				c->path[p] = MIG_RELOCATE_MOVE;
		i += m;
		if (r == 0 || i >= to)
			continue;
		m = moved_uncounted(c, i, to);
		if (m > 0) {
			/* Its answer is not to be trusted: ask again after them. */
			i += m;
			continue;
		}
		if (r == -EAGAIN && ++again < MOVE_AGAIN_MAX) {
			usleep(20);
			continue;
		}
		if (r == -EBUSY) {
			if (!(c->pi[i].flags & MIG_PAGE_EXCLUSIVE) && !c->path[i])
				copy_run(c, i, i + 1, sp);
			/* Exclusive: pinned or a large folio in swap cache; mremapped later. */
			i++;
			continue;
		}
		if (r == -EEXIST) {
			i++; /* already there: cannot happen while we hold the tenant */
			continue;
		}
		/* -EINVAL and the like: MOVE does not take this pair of VMAs. */
		copy_pages(c, i, to, sp);
		return 0;
	}
	return 0;
}

static int add_run(struct mig_relocate_result *res, uint64_t start, uint64_t end, int path)
{
	struct mig_relocate_run *n;

	if (res->nruns > 0 && res->runs[res->nruns - 1].end == start &&
	    res->runs[res->nruns - 1].path == path) {
		res->runs[res->nruns - 1].end = end;
		return 0;
	}
	n = realloc(res->runs, (res->nruns + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	res->runs = n;
	res->runs[res->nruns++] = (struct mig_relocate_run){ start, end, path };
	return 0;
}

/*
 * Re-form THPs at dst where a PMD-aligned block now holds only pages that
 * were in THPs at src and are no THP now (COPY made 4 KiB pages; MOVE
 * between differently aligned ranges split them).
 */
static void collapse_dst(struct core *c)
{
	_cleanup_free_ struct mig_pageinfo *now = NULL;
	size_t per = PMD / PAGE;
	uint64_t first = ALIGN_UP(c->dst, PMD);

	now = calloc(per, sizeof(*now));
	if (!now)
		return;
	for (uint64_t b = first; b + PMD <= c->dst + c->len; b += PMD) {
		size_t i0 = (b - c->dst) / PAGE;
		bool all = true;
		struct mig_range rg = { b, b + PMD };

		for (size_t i = i0; i < i0 + per && all; i++)
			all = (c->pi[i].flags & MIG_PAGE_THP) && !page_absent(&c->pi[i]);
		if (!all || mig_query_pages(c->s->t->pid, b, per, MIG_QUERY_PAGEMAP, now) < 0 ||
		    (now[0].flags & MIG_PAGE_THP))
			continue;
		/*
		 * -EAGAIN is transient (a page just copied still off the LRU,
		 * locked, or with an extra reference), -ENOMEM may be (no free
		 * huge page until compaction made one): tried again after 10
		 * and 40 ms, as the window's collapse does (window.c). Once
		 * only, fresh COPY pages lost a THP in 1 of about 40
		 * ctl_relocate runs (CI, compact --copy: thp 4 -> 3).
		 */
		int r = 0;

		for (int t = 0; t < 3; t++) {
			if (t > 0)
				usleep(10000u << (2 * (t - 1)));
			r = mig_collapse(c->s->t->pidfd, &rg);
			if (r == 0)
				c->res->collapsed++;
			if (r != -EAGAIN && r != -ENOMEM)
				break;
		}
		/* Said, so a THP lost here (ctl_relocate, CI21) names its cause next time. */
		if (r < 0) {
			c->res->collapse_failed++;
			c->res->collapse_err = r;
			MIG_TRACE("RELCOLLAPSE %lx: %d", (unsigned long)b, r);
		}
	}
}

/*
 * Move the pages of [src, src + len) to [dst, dst + len), which is mapped,
 * empty and not registered. Every page ends at dst (MOVE, COPY or, last,
 * mremap); src keeps its VMA (holes now). Call with the tenant stopped.
 */
static int core_run(struct core *c)
{
	struct mig_tenant *t = c->s->t;
	struct saved_policy sp = { 0 };
	uint64_t ioctls = 0;
	bool use_move;
	int r;

	c->npages = c->len / PAGE;
	c->pi = calloc(c->npages, sizeof(*c->pi));
	c->path = calloc(c->npages, 1);
	c->buf = aligned_alloc(PAGE, COPY_BATCH * PAGE);
	if (!c->pi || !c->path || !c->buf)
		return -ENOMEM;
	mig__memcg_init(&c->memcg, t->pid);
	r = mig_query_pages(t->pid, c->src, c->npages, MIG_QUERY_PAGEMAP | MIG_QUERY_NODE, c->pi);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->npages; i++)
		if (page_absent(&c->pi[i])) {
			c->path[i] = ABSENT;
			c->res->pages_absent++;
		}
	count_large(c->pi, c->npages, c->res->large_before, &c->res->thp_before,
		    &c->res->mthp_before);
	c->res->pages += c->npages;

	r = mig_tenant_register(t, c->dst, c->len, UFFDIO_REGISTER_MODE_MISSING, &ioctls);
	if (r < 0) {
		mig__tenant_set_error("cannot register the destination 0x%" PRIx64 "+0x%" PRIx64
				      " on the tenant's userfaultfd: %s",
				      c->dst, c->len, strerror(-r));
		return r;
	}
	use_move = !(c->flags & MIG_RELOCATE_NO_MOVE) && (t->features & UFFD_FEATURE_MOVE) &&
		   (ioctls & (UINT64_C(1) << _UFFDIO_MOVE));
	if (use_move)
		r = move_pages_run(c, 0, c->npages, &sp);
	else
		copy_pages(c, 0, c->npages, &sp);
	unbind(&sp);
	/* Unregister before anything over dst is unmapped: no UNMAP event to wait for. */
	if (mig_tenant_unregister(t, c->dst, c->len) < 0 && r == 0)
		r = -EIO;
	if (r < 0)
		return r;

	/* Last resort: the pages left keep their physical page by mremap. */
	for (size_t i = 0; i < c->npages;) {
		size_t k;
		int64_t x;

		if (c->path[i]) {
			i++;
			continue;
		}
		for (k = i + 1; k < c->npages && !c->path[k]; k++)
			;
		r = sc(c->s, SYS_mremap, c->src + i * PAGE, (k - i) * PAGE, (k - i) * PAGE,
		       MREMAP_MAYMOVE | MREMAP_FIXED, c->dst + i * PAGE, &x);
		if (r < 0) {
			mig__tenant_set_error("pages 0x%" PRIx64 "-0x%" PRIx64
					      " could not be moved nor copied, and mremap "
					      "refused them too (%s): they are still at the source",
					      c->src + i * PAGE, c->src + k * PAGE, strerror(-r));
			return r;
		}
		memset(c->path + i, MIG_RELOCATE_REMAP, k - i);
		i = k;
	}

	for (size_t i = 0; i < c->npages; i++) {
		if (c->path[i] == ABSENT)
			continue;
		if (c->path[i] == MIG_RELOCATE_MOVE)
			c->res->pages_moved++;
		else if (c->path[i] == MIG_RELOCATE_COPY)
			c->res->pages_copied++;
		else
			c->res->pages_remapped++;
		r = add_run(c->res, c->dst + i * PAGE, c->dst + (i + 1) * PAGE, c->path[i]);
		if (r < 0)
			return r;
	}
	c->done = true;
	return 0;
}

/*
 * After the tenant runs again: re-form THPs (MADV_COLLAPSE is safe with
 * the tenant running, and takes milliseconds per THP), count the large
 * folios at dst, free.
 */
static void core_free(struct core *c)
{
	if (c->done) {
		collapse_dst(c);
		/* The source's page information is not needed any more. */
		if (mig_query_pages(c->s->t->pid, c->dst, c->npages, MIG_QUERY_PAGEMAP, c->pi) == 0)
			count_large(c->pi, c->npages, c->res->large_after, &c->res->thp_after,
				    &c->res->mthp_after);
	}
	free(c->pi);
	free(c->path);
	free(c->buf);
	mig__memcg_free(&c->memcg);
}

/* ---- relocate ----------------------------------------------------------- */

/* Split large folios the edges of [start, end) cut; best effort (needs CAP_SYS_ADMIN). */
static void split_edges(struct mig_tenant *t, uint64_t start, uint64_t end)
{
	/*
	 * -EPERM (no PFNs to see folios by) or -EBUSY (left whole): MOVE
	 * splits a partly covered folio itself; a copy leaves it to the
	 * kernel's deferred split.
	 */
	if (mig_split_large_at(t->pid, t->pidfd, start) < 0 ||
	    mig_split_large_at(t->pid, t->pidfd, end) < 0)
		return;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int check_args(struct mig_tenant *t, uint64_t src, uint64_t len, uint64_t dst)
{
	if (!t || !len || (src | len | dst) % PAGE || src + len < src || dst + len < dst) {
		mig__tenant_set_error("src, dst and len must be page aligned, len > 0");
		return -EINVAL;
	}
	if (overlaps(src, len, dst, len)) {
		mig__tenant_set_error("the destination overlaps the source");
		return -EINVAL;
	}
	return 0;
}

/*
 * Map [dst, dst + len) for pages of the VMA sv: grow the left neighbour
 * over it when it would merge with sv (so the result continues its index
 * whatever it is), else a new mapping with sv's protection and THP advice.
 */
static int map_dst(struct session *s, const struct rvma *lay, size_t n, const struct rvma *sv,
		   uint64_t dst, uint64_t len)
{
	const struct rvma *left = vma_at(lay, n, dst - PAGE);
	unsigned prot = 0;
	int64_t x = 0;
	int r;

	if (dst >= PAGE && left && left->end == dst && mergeable(left, sv)) {
		r = sc(s, SYS_mremap, left->start, left->end - left->start,
		       left->end - left->start + len, 0, 0, &x);
		if (r == 0 && (uint64_t)x == left->start)
			return 0;
		/* Not growable (accounting, map count): a new mapping does. */
	}
	if (sv->pol.mode != MIG__MPOL_DEFAULT) {
		mig__tenant_set_error("the source VMA has a memory policy (mbind) that a new "
				      "mapping at the destination would not carry");
		return -EOPNOTSUPP;
	}
	if (sv->v.flags & MIG_VMA_READ)
		prot |= PROT_READ;
	if (sv->v.flags & MIG_VMA_WRITE)
		prot |= PROT_WRITE;
	if (sv->v.flags & MIG_VMA_EXEC)
		prot |= PROT_EXEC;
	r = sc(s, SYS_mmap, dst, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
	       (uint64_t)-1, &x);
	if (r == 0 && (uint64_t)x != dst) {
		/* A kernel before 4.17 took NOREPLACE as a hint. */
		(void)sc(s, SYS_munmap, (uint64_t)x, len, 0, 0, 0, NULL);
		r = -EEXIST;
	}
	if (r < 0) {
		mig__tenant_set_error("cannot map the destination 0x%" PRIx64 "+0x%" PRIx64
				      " in pid %d: %s",
				      dst, len, s->t->pid, strerror(-r));
		return r;
	}
	if (has_vmflag(sv, "hg"))
		(void)sc(s, SYS_madvise, dst, len, MADV_HUGEPAGE, 0, 0, NULL);
	else if (has_vmflag(sv, "nh"))
		(void)sc(s, SYS_madvise, dst, len, MADV_NOHUGEPAGE, 0, 0, NULL);
	return 0;
}

static bool range_free(const struct rvma *lay, size_t n, uint64_t start, uint64_t len)
{
	for (size_t i = 0; i < n; i++)
		if (overlaps(lay[i].start, lay[i].end - lay[i].start, start, len))
			return false;
	return true;
}

/*
 * Split what the edges of [start, end) cut, stop the tenant, and read its
 * layout with every thread stopped: it cannot change under us from here.
 */
static int begin(struct mig_tenant *t, uint64_t start, uint64_t end, struct session *s,
		 struct rvma **lay, size_t *n)
{
	int r;

	split_edges(t, start, end);
	r = session_begin(t, s);
	if (r < 0)
		return r;
	r = read_layout(t->pid, lay, n);
	if (r < 0)
		(void)session_end(s, NULL);
	return r;
}

/* Let the tenant run again, then finish the core's work (collapse, counts). */
static int finish(struct session *s, struct core *c, int r)
{
	int q = session_end(s, &c->res->stopped_ns);

	core_free(c);
	return r < 0 ? r : q < 0 ? q : r;
}

static int relocate_locked(struct mig_tenant *t, uint64_t src, uint64_t len, uint64_t dst,
			   unsigned flags, struct mig_relocate_result *res)
{
	_cleanup_free_ struct rvma *lay = NULL;
	struct core c = { .res = res, .flags = flags, .src = src, .dst = dst, .len = len };
	const struct rvma *sv;
	struct session s;
	size_t n = 0;
	const char *why;
	int r;

	r = begin(t, src, src + len, &s, &lay, &n);
	if (r < 0)
		return r;
	c.s = &s;
	res->vmas_before = n;
	sv = vma_at(lay, n, src);
	if (!sv || sv->end < src + len) {
		mig__tenant_set_error("0x%" PRIx64 "+0x%" PRIx64 " is not inside one mapping of "
				      "pid %d",
				      src, len, t->pid);
		r = -EINVAL;
		goto out;
	}
	why = unfit(sv);
	if (why) {
		mig__tenant_set_error("the source 0x%" PRIx64 "-0x%" PRIx64 " is %s", sv->start,
				      sv->end, why);
		r = -EINVAL;
		goto out;
	}
	if (!range_free(lay, n, dst, len)) {
		if (!(flags & MIG_RELOCATE_REPLACE)) {
			mig__tenant_set_error("the destination 0x%" PRIx64 "+0x%" PRIx64
					      " is mapped (MIG_RELOCATE_REPLACE lets it be "
					      "replaced)",
					      dst, len);
			r = -EEXIST;
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			if (overlaps(lay[i].start, lay[i].end - lay[i].start, dst, len) &&
			    (has_vmflag(&lay[i], "um") || has_vmflag(&lay[i], "uw") ||
			     has_vmflag(&lay[i], "ui"))) {
				/* Its UNMAP event would wait for a reader that is not there. */
				mig__tenant_set_error("the destination holds a mapping registered "
						      "with a userfaultfd");
				r = -EBUSY;
				goto out;
			}
		r = sc(&s, SYS_munmap, dst, len, 0, 0, 0, NULL);
		if (r < 0)
			goto out;
		free(lay);
		lay = NULL;
		r = read_layout(t->pid, &lay, &n);
		if (r < 0)
			goto out;
		sv = vma_at(lay, n, src);
	}
	r = map_dst(&s, lay, n, sv, dst, len);
	if (r < 0)
		goto out;
	r = core_run(&c);
	if (r == 0) {
		/* Every page has its new place: the source goes, as with mremap. */
		r = sc(&s, SYS_munmap, src, len, 0, 0, 0, NULL);
		if (r < 0)
			mig__tenant_set_error("every page is at the destination, but the source "
					      "could not be unmapped: %s",
					      strerror(-r));
	}
	free(lay);
	lay = NULL;
	if (read_layout(t->pid, &lay, &n) == 0)
		res->vmas_after = n;
out:
	return finish(&s, &c, r);
}

/* The result goes to the caller on success only (ret_* untouched on failure). */
static int hand_over(int r, struct mig_relocate_result *res, uint64_t t0,
		     struct mig_relocate_result *ret)
{
	if (r < 0) {
		mig_relocate_result_free(res);
		return r;
	}
	res->elapsed_ns = now_ns() - t0;
	*ret = *res;
	return 0;
}

int mig_relocate(mig_tenant *t, uint64_t src, uint64_t len, uint64_t dst, unsigned flags,
		 struct mig_relocate_result *ret_result)
{
	struct mig_relocate_result res = { 0 };
	uint64_t t0 = now_ns();
	int r;

	r = check_args(t, src, len, dst);
	if (r < 0)
		return r;
	if (!ret_result || flags & ~(MIG_RELOCATE_REPLACE | MIG_RELOCATE_NO_MOVE))
		return -EINVAL;
	pthread_mutex_lock(&t->op_lock);
	r = relocate_locked(t, src, len, dst, flags, &res);
	pthread_mutex_unlock(&t->op_lock);
	return hand_over(r, &res, t0, ret_result);
}

/* ---- compact -------------------------------------------------------------- */

/*
 * Merge right into left (neighbours): move right out of the way with
 * mremap to a temporary area aligned like it (whole PMDs stay whole),
 * grow left over the place it held, and move the pages back into that
 * grown part. Returns 1 when merged, 0 when the pair changed meanwhile or
 * could not be done (left as it was), or -errno.
 */
static int compact_pair(struct mig_tenant *t, uint64_t lstart, uint64_t lend, uint64_t rend,
			unsigned flags, struct mig_relocate_result *res)
{
	_cleanup_free_ struct rvma *lay = NULL;
	uint64_t len = rend - lend, resv = 0, tmp;
	struct core c = { .res = res, .flags = flags, .dst = lend, .len = len };
	const struct rvma *l, *rv;
	struct session s;
	size_t n = 0;
	int64_t x = 0;
	int r, q;

	r = begin(t, lend, rend, &s, &lay, &n);
	if (r < 0)
		return r;
	c.s = &s;
	l = vma_at(lay, n, lstart);
	rv = vma_at(lay, n, lend);
	if (!l || !rv || l->start != lstart || l->end != lend || rv->end != rend ||
	    !mergeable(l, rv)) {
		r = 0; /* changed since it was planned */
		goto out;
	}
	r = sc(&s, SYS_mmap, mig__far_hint(t->pid, len + PMD), len + PMD, PROT_NONE,
	       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, (uint64_t)-1, &x);
	if (r < 0)
		goto out;
	resv = (uint64_t)x;
	/* Aligned like right within the PMD: whole PMDs move as PMDs, both ways. */
	tmp = resv + ((lend - resv) & (PMD - 1));
	r = sc(&s, SYS_mremap, lend, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, tmp, &x);
	if (r < 0) {
		r = 0;
		goto out;
	}
	r = sc(&s, SYS_mremap, lstart, lend - lstart, rend - lstart, 0, 0, &x);
	if (r < 0 || (uint64_t)x != lstart) {
		/* Left cannot grow: put right back where it was, as it was. */
		q = sc(&s, SYS_mremap, tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, lend, &x);
		if (q < 0) {
			mig__tenant_set_error("0x%" PRIx64 "-0x%" PRIx64 " could not be put back "
					      "from 0x%" PRIx64 ": %s",
					      lend, rend, tmp, strerror(-q));
			r = q;
			resv = 0; /* the pages are there: do not unmap */
			goto out;
		}
		r = 0;
		goto out;
	}
	c.src = tmp;
	r = core_run(&c);
	if (r < 0)
		resv = 0; /* pages may be left in the temporary area: keep it */
	else
		r = 1;
out:
	if (resv)
		(void)sc(&s, SYS_munmap, resv, len + PMD, 0, 0, 0, NULL);
	return finish(&s, &c, r);
}

/* The first pair of neighbours in range that should merge and did not, after skip. */
static bool next_pair(const struct rvma *v, size_t n, const struct mig_range *range,
		      uint64_t skip_below, uint64_t *ls, uint64_t *le, uint64_t *re)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (v[i].end != v[i + 1].start || v[i].end <= skip_below)
			continue;
		if (range && (v[i].start < range->start || v[i + 1].end > range->end))
			continue;
		if (!mergeable(&v[i], &v[i + 1]))
			continue;
		*ls = v[i].start;
		*le = v[i].end;
		*re = v[i + 1].end;
		return true;
	}
	return false;
}

int mig_compact(mig_tenant *t, const struct mig_range *range, unsigned flags,
		struct mig_relocate_result *ret_result)
{
	struct mig_relocate_result res = { 0 };
	_cleanup_free_ struct rvma *lay = NULL;
	uint64_t t0 = now_ns(), skip = 0, ls, le, re;
	size_t n = 0;
	int r = 0;

	if (!t || !ret_result || flags & ~MIG_RELOCATE_NO_MOVE ||
	    (range && (range->end <= range->start || (range->start | range->end) % PAGE))) {
		mig__tenant_set_error("bad range or flags");
		return -EINVAL;
	}
	pthread_mutex_lock(&t->op_lock);
	r = read_layout(t->pid, &lay, &n);
	if (r < 0)
		goto out;
	res.vmas_before = count_vmas(lay, n, range, true);
	while (next_pair(lay, n, range, skip, &ls, &le, &re)) {
		r = compact_pair(t, ls, le, re, flags, &res);
		if (r < 0)
			goto out;
		if (r == 1)
			res.merged++;
		free(lay);
		lay = NULL;
		r = read_layout(t->pid, &lay, &n);
		if (r < 0)
			goto out;
		/* Still two VMAs there: leave this boundary and go on to the next. */
		for (size_t i = 0; i < n; i++)
			if (lay[i].end == le && i + 1 < n && lay[i + 1].start == le) {
				res.left++;
				skip = le;
				break;
			}
	}
	res.vmas_after = count_vmas(lay, n, range, true);
out:
	pthread_mutex_unlock(&t->op_lock);
	return hand_over(r, &res, t0, ret_result);
}
