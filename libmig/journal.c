/*
 * journal.c - what a restarted migd needs to finish a window that a dead
 * one left behind, and the recovery that uses it (docs/engine.md, "After
 * a crash").
 *
 * The rules that keep a tenant's data safe across a crash of migd:
 *
 *  1. A job with a journal directory keeps one journal file per tenant,
 *     <dir>/<pid>-<starttime>.journal, mapped MAP_SHARED. It names the
 *     tenant (pid, start time, boot id), the tenant's own fd number of the
 *     uffd, the staging file, the MOVE zap's scratch area and the window
 *     in flight: its registered ranges and, for each page, its current
 *     address and its states.
 *  2. The window's page states and addresses are not copied into the
 *     journal: the engine keeps them there (mig__window_alloc takes its
 *     arrays from the journal's mapping). So every state change the engine
 *     makes - a page zapped, filled, dropped by the tenant, moved by a
 *     tenant mremap - is in the file the moment it is made, at the cost of
 *     a memory store; nothing is written per page.
 *  3. Ordering: the window is described (range, registered pieces, staging
 *     offset) and marked in flight before its first registration, and
 *     marked idle only after its last unregistration. The magic is
 *     written last when the file is created, so a journal with a magic is
 *     complete. A page is zapped only once its content is in staging,
 *     which is a MAP_SHARED tmpfs file that outlives the process.
 *  4. No fsync: what a crash of migd loses is the process, not the page
 *     cache, and the file's pages are the page cache. A crash of the
 *     machine takes the tenants with it; a journal from another boot is
 *     dropped (boot id).
 *  5. Recovery puts back every page that is zapped, not filled and not
 *     gone (UFFDIO_COPY from the staging file, or from the scratch area
 *     the MOVE zap moved it to); a page already there gives -EEXIST and
 *     stays as it is. It first reads the events queued on the uffd (the
 *     tenant's DONTNEED, munmap, mremap and fork while migd was dead) and
 *     applies them as the fault thread would. Then it un-protects and
 *     unregisters, closes the tenant's uffd inside the tenant, and only
 *     then removes the journal. Every step can be repeated, so a recovery
 *     that dies is finished by the next one.
 *
 * One gap is left: the kernel lets a tenant's DONTNEED or mremap go on
 * once its event is read, and a migd killed between that read and the
 * store of what it read leaves a journal that does not know of it (a
 * window of a few instructions, docs/engine.md).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <numaif.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "bitmap.h"
#include "crashpoint.h"
#include "engine.h"
#include "ptrace.h"
#include "tenant.h"
#include "uffd.h"

#define JOURNAL_MAGIC	"MIGJRNL1"
#define JOURNAL_VERSION 1
/* Bitmaps a window may keep in the journal (window.c uses 13). */
#define JOURNAL_BITMAPS 16

enum { J_IDLE = 0, J_WINDOW = 1, J_RELEASED = 2 };

/* Page 0 of a journal file. Fixed-size fields only: a later migd reads it. */
struct jhdr {
	char magic[8];
	uint32_t version;
	uint32_t state; /* J_*, written with release order */
	char boot_id[40];
	int32_t pid;
	int32_t tenant_fd; /* the uffd's fd number inside the tenant */
	uint64_t starttime;
	int32_t method; /* enum mig_attach_method */
	int32_t migd_pid;
	char staging_path[512]; /* "" when staging was anonymous */
	uint64_t staging_size;
	/* The MOVE zap's area inside the tenant (0: none). */
	uint64_t scratch, scratch_len, scratch_dst, scratch_dst_len;
	/* The window in flight (state J_WINDOW). */
	uint64_t win_start, npages, staging_off;
	int32_t node;
	uint32_t nregs;
	struct mig_range regs[MIG__MAX_REGS];
	/* Where its live state lies in this file. */
	uint64_t max_pages, addr_off, bits_off, words;
	uint64_t bit_invma, bit_zap, bit_filled, bit_gone; /* word offsets in the block */
	uint64_t bit_pend, bit_fallback;
	/*
	 * Where the job found `syscall; ret` and the rt_sigreturn restorer in
	 * the tenant (ptrace tenants): recovery's session checks the bytes
	 * there instead of scanning the tenant's code again. 0 (a journal of
	 * an older migd: the header page is zero-filled): scan.
	 */
	uint64_t sysaddr, restorer;
	/*
	 * The window in flight moves first (docs/engine.md, "Move first"):
	 * a page taken out has its content in the scratch area only, so
	 * recovery reads it there, never from staging. 0 in an older journal.
	 */
	uint32_t movefirst;
};

struct mig__journal {
	int fd;
	char path[512];
	char *map;
	size_t len;
	struct jhdr *h;
	const char *staging_base; /* the staging file's mapping in this process */
	bool window_mem_used;
};

_Static_assert(sizeof(struct jhdr) <= 4096, "journal header fits one page");

static int read_boot_id(char *buf, size_t size)
{
	_cleanup_close_ int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

int mig__proc_starttime(pid_t pid, uint64_t *ret)
{
	char path[64], buf[1024], *p;
	unsigned long long start;
	_cleanup_close_ int fd = -EBADF;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -ESRCH;
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: fields follow the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	/* Field 22 (starttime) is the 20th after the name. */
	if (sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
		   "%*d %*d %llu",
		   &start) != 1)
		return -EIO;
	*ret = start;
	return 0;
}

static size_t page_up(size_t n)
{
	return ALIGN_UP(n, (size_t)MIG__PAGE);
}

int mig__journal_open(const char *dir, mig_tenant *t, uint64_t max_pages, struct mig__journal **ret)
{
	_cleanup_free_ struct mig__journal *jr = calloc(1, sizeof(*jr));
	uint64_t start, words = MIG__BITMAP_WORDS(max_pages);
	size_t addr_len = page_up(max_pages * sizeof(uint64_t));
	size_t bits_len = page_up(JOURNAL_BITMAPS * words * sizeof(uint64_t));
	struct jhdr *h;
	int r;

	if (!jr)
		return -ENOMEM;
	r = mig__proc_starttime(t->pid, &start);
	if (r < 0)
		return r;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		mig__tenant_set_error("cannot create the journal directory %s: %s", dir,
				      strerror(-r));
		return r;
	}
	if ((size_t)snprintf(jr->path, sizeof(jr->path), "%s/%d-%" PRIu64 ".journal", dir,
			     (int)t->pid, start) >= sizeof(jr->path))
		return -ENAMETOOLONG;
	jr->fd = open(jr->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (jr->fd < 0) {
		r = -errno;
		if (r == -EEXIST) {
			mig__tenant_set_error("pid %d has an unrecovered journal %s from a migd "
					      "that died: recover it first (migd does at start)",
					      (int)t->pid, jr->path);
			return -EBUSY;
		}
		mig__tenant_set_error("cannot create the journal %s: %s", jr->path, strerror(-r));
		return r;
	}
	/* Held while the job runs: recovery never touches a journal in use. */
	(void)flock(jr->fd, LOCK_EX | LOCK_NB);
	jr->len = MIG__PAGE + addr_len + bits_len;
	if (ftruncate(jr->fd, (off_t)jr->len) < 0) {
		r = -errno;
		goto fail;
	}
	jr->map = mmap(NULL, jr->len, PROT_READ | PROT_WRITE, MAP_SHARED, jr->fd, 0);
	if (jr->map == MAP_FAILED) {
		r = -errno;
		jr->map = NULL;
		goto fail;
	}
	h = jr->h = (struct jhdr *)jr->map;
	h->version = JOURNAL_VERSION;
	h->state = J_IDLE;
	(void)read_boot_id(h->boot_id, sizeof(h->boot_id));
	h->pid = t->pid;
	h->tenant_fd = t->tenant_fd;
	h->starttime = start;
	h->method = t->method;
	if (t->method == MIG_ATTACH_PTRACE && t->priv) {
		const struct mig__ptrace_priv *p = t->priv;

		h->sysaddr = p->sysaddr;
		h->restorer = p->restorer;
	}
	h->migd_pid = getpid();
	h->max_pages = max_pages;
	h->addr_off = MIG__PAGE;
	h->bits_off = MIG__PAGE + addr_len;
	h->words = words;
	/* Complete before it is valid: the magic comes last. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(h->magic, JOURNAL_MAGIC, sizeof(h->magic));
	*ret = TAKE_PTR(jr);
	return 0;
fail:
	mig__tenant_set_error("cannot set up the journal %s: %s", jr->path, strerror(-r));
	unlink(jr->path);
	safe_close(jr->fd);
	return r;
}

void mig__journal_close(struct mig__journal *jr)
{
	if (!jr)
		return;
	/* Gone before the staging file: a journal never names a missing staging file. */
	unlink(jr->path);
	munmap(jr->map, jr->len);
	safe_close(jr->fd);
	free(jr);
}

void mig__journal_staging(struct mig__journal *jr, const char *path, const void *base,
			  uint64_t size)
{
	if (!jr)
		return;
	snprintf(jr->h->staging_path, sizeof(jr->h->staging_path), "%s", path);
	jr->h->staging_size = size;
	jr->staging_base = base;
}

void mig__journal_scratch(struct mig__journal *jr, uint64_t scratch, uint64_t len, uint64_t dst,
			  uint64_t dst_len)
{
	if (!jr)
		return;
	jr->h->scratch_len = len;
	jr->h->scratch_dst = dst;
	jr->h->scratch_dst_len = dst_len;
	__atomic_store_n(&jr->h->scratch, scratch, __ATOMIC_RELEASE);
}

int mig__journal_window_mem(struct mig__journal *jr, size_t npages, size_t nbitmaps,
			    uint64_t **ret_addr, uint64_t **ret_bits)
{
	uint64_t words = MIG__BITMAP_WORDS(npages);

	if (!jr || npages > jr->h->max_pages || nbitmaps > JOURNAL_BITMAPS ||
	    __atomic_load_n(&jr->h->state, __ATOMIC_ACQUIRE) != J_IDLE)
		return -ENOSPC;
	/* The window packs its bitmaps with its own word count: zero as many. */
	memset(jr->map + jr->h->addr_off, 0, npages * sizeof(uint64_t));
	memset(jr->map + jr->h->bits_off, 0, nbitmaps * words * sizeof(uint64_t));
	*ret_addr = (uint64_t *)(void *)(jr->map + jr->h->addr_off);
	*ret_bits = (uint64_t *)(void *)(jr->map + jr->h->bits_off);
	return 0;
}

void mig__journal_window_begin(struct mig__journal *jr, const struct mig__win *w)
{
	struct jhdr *h;
	const uint64_t *bits;

	if (!jr)
		return;
	h = jr->h;
	bits = (const uint64_t *)(const void *)(jr->map + h->bits_off);
	/* Not in the journal's memory (no journal room): nothing to describe. */
	if ((const char *)w->addr != jr->map + h->addr_off || w->invma != bits)
		return;
	h->win_start = w->start;
	h->npages = w->npages;
	h->node = w->node;
	h->staging_off = jr->staging_base ? (uint64_t)(w->staging - jr->staging_base) : 0;
	h->nregs = (uint32_t)MIN(w->nregs, (size_t)MIG__MAX_REGS);
	memcpy(h->regs, w->regs, h->nregs * sizeof(h->regs[0]));
	h->words = MIG__BITMAP_WORDS(w->npages);
	h->bit_invma = (uint64_t)(w->invma - bits);
	h->bit_zap = (uint64_t)(w->zap - bits);
	h->bit_filled = (uint64_t)(w->filled - bits);
	h->bit_gone = (uint64_t)(w->gone - bits);
	h->bit_pend = (uint64_t)(w->pend - bits);
	h->bit_fallback = (uint64_t)(w->fallback - bits);
	h->movefirst = w->movefirst;
	__atomic_store_n(&h->state, J_WINDOW, __ATOMIC_RELEASE);
}

/* The window's protocol changed at a pass boundary, no page out (window.c to_classic). */
void mig__journal_window_protocol(struct mig__journal *jr, const struct mig__win *w)
{
	/* Described only where window_begin did (the journal's own memory). */
	if (jr && (const char *)w->addr == jr->map + jr->h->addr_off)
		__atomic_store_n(&jr->h->movefirst, (uint32_t)w->movefirst, __ATOMIC_RELEASE);
}

void mig__journal_window_end(struct mig__journal *jr)
{
	if (jr)
		__atomic_store_n(&jr->h->state, J_IDLE, __ATOMIC_RELEASE);
}

/* ---- recovery ---------------------------------------------------------- */

struct rec {
	struct jhdr *h;
	char *map;
	size_t len;
	int uffd;
	pid_t pid;
	const char *staging; /* the staging file's content, or NULL */
	size_t staging_len;
	uint64_t *addr;
	uint64_t *invma, *zap, *filled, *gone, *pend, *fallback;
	/* Runs our own madvise was zapping when the process died (their REMOVE read here). */
	struct mig_range own[8];
	size_t nown;
	int children[16]; /* uffds of children forked while migd was dead */
	size_t nchildren;
	struct mig_recover_info *info;
};

static void reason(struct mig_recover_info *info, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reason(struct mig_recover_info *info, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(info->reason, sizeof(info->reason), fmt, ap);
	va_end(ap);
}

/*
 * A REMOVE of [start, end): the tenant's DONTNEED, whose pages must read
 * zero (gone), or our own madvise zap that was in flight when the process
 * died: its pages are in the zap set and still pending (their step was
 * not done), zapped with madvise (no MOVE zap, or a page MOVE refused).
 * No tenant DONTNEED can race such a step: the tenant's other threads are
 * stopped for madvise steps (docs/engine.md, "The zap"). A MOVE sends no
 * event, so with the MOVE zap every other REMOVE is the tenant's.
 */
static void removed(struct rec *rc, uint64_t start, uint64_t end)
{
	bool ours = false;

	for (size_t i = 0; i < rc->h->npages; i++)
		if (rc->addr[i] >= start && rc->addr[i] < end && mig__bit_test(rc->zap, i) &&
		    mig__bit_test(rc->pend, i) &&
		    (!rc->h->scratch || mig__bit_test(rc->fallback, i)))
			ours = true;
	if (ours) {
		if (rc->nown < ARRAY_SIZE(rc->own))
			rc->own[rc->nown++] = (struct mig_range){ start, end };
		return;
	}
	for (size_t i = 0; i < rc->h->npages; i++)
		if (rc->addr[i] >= start && rc->addr[i] < end)
			mig__bit_set(rc->gone, i);
}

/*
 * Read every event queued while migd was dead and apply it as the fault
 * thread would: the tenant's DONTNEED and munmap make pages gone (they
 * must read zero), its mremap moves them, a fork gives a child's uffd
 * whose holes are filled too. Page faults are not answered here: the
 * fills, un-protecting and unregistering wake them.
 */
static int drain(struct rec *rc)
{
	struct uffd_msg m[32];
	int n;

	while ((n = mig__uffd_read(rc->uffd, m, ARRAY_SIZE(m))) > 0)
		for (int k = 0; k < n; k++) {
			bool win = rc->h->state == J_WINDOW;

			switch (m[k].event) {
			case UFFD_EVENT_REMOVE:
				if (win)
					removed(rc, m[k].arg.remove.start, m[k].arg.remove.end);
				break;
			case UFFD_EVENT_UNMAP:
				for (size_t i = 0; win && i < rc->h->npages; i++)
					if (rc->addr[i] >= m[k].arg.remove.start &&
					    rc->addr[i] < m[k].arg.remove.end)
						mig__bit_set(rc->gone, i);
				break;
			case UFFD_EVENT_REMAP:
				for (size_t i = 0; win && i < rc->h->npages; i++) {
					uint64_t a = rc->addr[i], f = m[k].arg.remap.from;

					if (a >= f && a < f + m[k].arg.remap.len)
						rc->addr[i] = a - f + m[k].arg.remap.to;
				}
				break;
			case UFFD_EVENT_FORK:
				if (rc->nchildren < ARRAY_SIZE(rc->children))
					rc->children[rc->nchildren++] = (int)m[k].arg.fork.ufd;
				else
					safe_close((int)m[k].arg.fork.ufd);
				break;
			default:
				break;
			}
		}
	return n == -EAGAIN ? 0 : n;
}

/* The content of page i, from staging or the scratch area; NULL when neither has it. */
static const void *source(struct rec *rc, size_t i, char *buf)
{
	uint64_t off = rc->h->staging_off + i * MIG__PAGE;

	/* Move first: the scratch area holds the only copy; staging may be stale. */
	if (rc->staging && off + MIG__PAGE <= rc->staging_len && !rc->h->movefirst)
		return rc->staging + off;
	if (rc->h->scratch && rc->h->scratch_dst) {
		uint64_t a = rc->h->scratch_dst + i * MIG__PAGE;
		struct iovec l = { buf, MIG__PAGE };
		struct iovec r = { (void *)(uintptr_t)a, MIG__PAGE };
		struct mig_pageinfo pi;

		/*
		 * Only a page that is there: the scratch area is registered
		 * with the uffd we alone serve now, so reading a hole would
		 * wait for ourselves.
		 */
		if (mig_query_pages(rc->pid, a, 1, MIG_QUERY_PAGEMAP, &pi) == 0 &&
		    (pi.flags & MIG_PAGE_PRESENT) && !(pi.flags & MIG_PAGE_ZERO) &&
		    process_vm_readv(rc->pid, &l, 1, &r, 1, 0) == (ssize_t)MIG__PAGE)
			return buf;
	}
	return NULL;
}

/* UFFDIO_COPY into fd, retried while the tenant's events are unread. */
static int copy_page(struct rec *rc, int fd, uint64_t addr, const void *src)
{
	for (int tries = 0;; tries++) {
		int r = mig__uffd_copy(fd, addr, src, MIG__PAGE, 0, NULL);

		if (r == -EEXIST) {
			/* There already: the tenant's, or ours from before the crash. */
			(void)mig__uffd_wake(fd, addr, MIG__PAGE);
			return 1;
		}
		if (r != -EAGAIN || tries > 10000)
			return r;
		r = drain(rc);
		if (r < 0)
			return r;
		usleep(50);
	}
}

/*
 * Our madvise whose REMOVE was read here goes on in the tenant: wait
 * (bounded) until it has zapped its run, so a page put back is not zapped
 * after it. The bound is 1 s of time for all runs together, as
 * docs/engine.md says, not a count of 1 ms sleeps per run: under
 * emulation a try (a pagemap read and the sleep) takes well over 1 ms,
 * and 1000 tries per run could alone use up the 2 s a recovery has.
 */
static void wait_own(struct rec *rc)
{
	uint64_t deadline = mig__now_ns() + 1000000000ULL;

	for (size_t k = 0; k < rc->nown; k++) {
		size_t n = (rc->own[k].end - rc->own[k].start) / MIG__PAGE;
		_cleanup_free_ struct mig_pageinfo *pi = calloc(n, sizeof(*pi));

		while (pi && mig__now_ns() < deadline) {
			bool present = false;

			if (mig_query_pages(rc->pid, rc->own[k].start, n, MIG_QUERY_PAGEMAP, pi) <
			    0)
				break;
			for (size_t i = 0; i < n && !present; i++)
				present = (pi[i].flags & MIG_PAGE_PRESENT) &&
					  !(pi[i].flags & MIG_PAGE_ZERO);
			if (!present)
				break;
			usleep(1000);
		}
	}
	rc->nown = 0;
}

/*
 * Move first: page i has no copy in the scratch area. Is it still at its
 * address (its MOVE never ran)? Then nothing was taken out.
 */
static bool still_there(struct rec *rc, size_t i)
{
	struct mig_pageinfo pi;

	return mig_query_pages(rc->pid, rc->addr[i], 1, MIG_QUERY_PAGEMAP, &pi) == 0 &&
	       (pi.flags & (MIG_PAGE_PRESENT | MIG_PAGE_SWAPPED));
}

/* Put back every page zapped and not filled, gone excepted. */
static int refill(struct rec *rc)
{
	_cleanup_free_ char *buf = malloc(MIG__PAGE);
	size_t n = rc->h->npages;

	if (!buf)
		return -ENOMEM;
	wait_own(rc);
	for (size_t i = 0; i < n; i++) {
		const void *src;
		int r;

		if (!mig__bit_test(rc->zap, i) || mig__bit_test(rc->filled, i) ||
		    mig__bit_test(rc->gone, i))
			continue;
		src = source(rc, i, buf);
		if (!src && rc->h->movefirst && still_there(rc, i)) {
			/* Its MOVE never ran (pending when the process died): in place. */
			mig__bit_set(rc->filled, i);
			continue;
		}
		if (!src) {
			rc->info->pages_lost++;
			continue;
		}
		r = copy_page(rc, rc->uffd, rc->addr[i], src);
		if (r == -ENOENT || r == -EFAULT || r == -EINVAL) {
			/* Unmapped while migd was dead (its event may still come). */
			mig__bit_set(rc->gone, i);
			rc->info->pages_gone++;
			continue;
		}
		if (r < 0)
			return r;
		if (r == 0)
			rc->info->pages_refilled++;
		mig__bit_set(rc->filled, i);
		if (rc->info->pages_refilled == 1)
			mig__crash_point("recovery:refill");
	}
	return 0;
}

/* Runs of window pages (current addresses) to un-protect. */
static void thaw(struct rec *rc, int fd)
{
	for (size_t i = 0; i < rc->h->npages;) {
		size_t k = i + 1;

		if (!mig__bit_test(rc->invma, i)) {
			i++;
			continue;
		}
		while (k < rc->h->npages && mig__bit_test(rc->invma, k) &&
		       rc->addr[k] == rc->addr[k - 1] + MIG__PAGE)
			k++;
		(void)mig__uffd_writeprotect(fd, rc->addr[i], (k - i) * MIG__PAGE, false, false);
		i = k;
	}
}

static void unregister_all(struct rec *rc, int fd)
{
	for (uint32_t k = 0; rc->h->state == J_WINDOW && k < rc->h->nregs; k++)
		(void)mig__uffd_unregister_piece(fd, rc->pid, rc->h->regs[k].start,
						 rc->h->regs[k].end - rc->h->regs[k].start);
	if (rc->h->scratch_dst_len)
		(void)mig__uffd_unregister(fd, rc->h->scratch_dst, rc->h->scratch_dst_len);
}

/* A child forked while migd was dead: its holes are ours too. */
static void release_child(struct rec *rc, int cfd)
{
	_cleanup_free_ char *buf = malloc(MIG__PAGE);

	for (size_t i = 0; buf && rc->h->state == J_WINDOW && i < rc->h->npages; i++) {
		const void *src;

		if (!mig__bit_test(rc->zap, i) || mig__bit_test(rc->gone, i))
			continue;
		src = source(rc, i, buf);
		if (src)
			(void)copy_page(rc, cfd, rc->addr[i], src);
	}
	if (rc->h->state == J_WINDOW)
		thaw(rc, cfd);
	unregister_all(rc, cfd);
	safe_close(cfd);
}

/*
 * As the fault thread does before it stops (faults.c, settle): nothing of
 * ours may stay registered (a VMA the tenant moved with mremap is
 * registered at its new place, which the journal does not know), and
 * every event on its way is read, or the tenant thread that raised it
 * waits for good (agent tenants keep their uffd open after us).
 */
static void settle(struct rec *rc)
{
	uint64_t deadline = mig__now_ns() + 5ULL * 1000 * 1000 * 1000;

	for (int round = 0; round < 64 && mig__now_ns() < deadline; round++) {
		int found = mig__uffd_unregister_ours(rc->uffd, rc->pid);
		bool busy = false;

		(void)drain(rc);
		while (mig__uffd_events_pending(rc->uffd) && mig__now_ns() < deadline) {
			busy = true;
			usleep(200);
			(void)drain(rc);
		}
		for (size_t k = 0; k < rc->nchildren; k++)
			release_child(rc, rc->children[k]);
		rc->nchildren = 0;
		if (found <= 0 && !busy)
			return;
	}
}

static bool is_uffd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return strcmp(link, "anon_inode:[userfaultfd]") == 0;
}

/* Same open file as the tenant's fd? (kcmp KCMP_FILE) */
static bool same_file(pid_t pid, int ours, int theirs)
{
	return syscall(SYS_kcmp, getpid(), pid, 0 /* KCMP_FILE */, ours, theirs) == 0;
}

/*
 * Close the tenant's uffd inside the tenant and drop the scratch area,
 * through a fresh ptrace session (attach, then the two operations, then
 * detach). Agent tenants keep their uffd: the agent hands it to the next
 * migd. Best effort: with no registration left the fd is inert.
 */
static void release_in_tenant(struct rec *rc, int uffd, int pidfd)
{
	bool ours = same_file(rc->pid, uffd, rc->h->tenant_fd);
	int closed = -1, r;

	if (rc->h->method != MIG_ATTACH_PTRACE)
		return;
	r = mig__ptrace_release(rc->pid, pidfd, rc->h->sysaddr, rc->h->restorer, rc->h->scratch,
				rc->h->scratch ? rc->h->scratch_len : 0,
				ours ? rc->h->tenant_fd : -1, &closed);
	if (r < 0) {
		reason(rc->info, "released, but its uffd stays open in the tenant (fd %d): %s",
		       rc->h->tenant_fd, mig_tenant_last_error());
		return;
	}
	if (closed == 0)
		rc->info->fd_closed = true;
}

static void drop(const char *path, const struct jhdr *h)
{
	if (h && h->staging_path[0])
		unlink(h->staging_path);
	unlink(path);
}

static int recover_locked(const char *path, struct rec *rc, int pidfd)
{
	struct jhdr *h = rc->h;
	struct mig_recover_info *info = rc->info;
	_cleanup_close_ int sfd = -EBADF;
	struct stat st;
	int r;

	/*
	 * Released by an earlier recovery that died before removing the
	 * journal: the tenant may have reused the fd number since.
	 */
	if (h->state == J_RELEASED)
		return 0;
	rc->uffd = (int)syscall(SYS_pidfd_getfd, pidfd, h->tenant_fd, 0);
	if (rc->uffd < 0) {
		r = -errno;
		reason(info, "cannot take the tenant's uffd (fd %d): %s", h->tenant_fd,
		       strerror(-r));
		return r;
	}
	if (!is_uffd(rc->uffd)) {
		/*
		 * The tenant closed its uffd (the kernel then dropped every
		 * registration) and reused the number: a zapped page now
		 * reads zero and nothing of ours is left to undo.
		 */
		reason(info,
		       "fd %d in the tenant is no longer its uffd: zapped pages may read zero",
		       h->tenant_fd);
		return -EBADF;
	}
	/* The reads below must never block: the tenant created it O_NONBLOCK, but be sure. */
	(void)fcntl(rc->uffd, F_SETFL, fcntl(rc->uffd, F_GETFL) | O_NONBLOCK);
	if (h->staging_path[0]) {
		sfd = open(h->staging_path, O_RDONLY | O_CLOEXEC);
		if (sfd >= 0 && fstat(sfd, &st) == 0 && st.st_size > 0) {
			rc->staging_len = (size_t)st.st_size;
			rc->staging = mmap(NULL, rc->staging_len, PROT_READ, MAP_SHARED, sfd, 0);
			if (rc->staging == MAP_FAILED)
				rc->staging = NULL;
		}
	}
	if (h->state == J_WINDOW) {
		uint64_t lim = JOURNAL_BITMAPS * h->words;

		if (h->npages > h->max_pages || h->bit_gone >= lim || h->bit_zap >= lim ||
		    h->bit_invma >= lim || h->bit_filled >= lim || h->bit_pend >= lim ||
		    h->bit_fallback >= lim) {
			reason(info, "the journal's window is damaged");
			return -EBADMSG;
		}
		rc->addr = (uint64_t *)(void *)(rc->map + h->addr_off);
		rc->invma = (uint64_t *)(void *)(rc->map + h->bits_off) + h->bit_invma;
		rc->zap = (uint64_t *)(void *)(rc->map + h->bits_off) + h->bit_zap;
		rc->filled = (uint64_t *)(void *)(rc->map + h->bits_off) + h->bit_filled;
		rc->gone = (uint64_t *)(void *)(rc->map + h->bits_off) + h->bit_gone;
		rc->pend = (uint64_t *)(void *)(rc->map + h->bits_off) + h->bit_pend;
		rc->fallback = (uint64_t *)(void *)(rc->map + h->bits_off) + h->bit_fallback;
	}
	{
		uint64_t t = mig__now_ns();

		/* New pages go to the window's target, like the fill would have put them. */
		if (h->state == J_WINDOW && h->node >= 0 && h->node < MIG_MAX_NODES)
			(void)mig__prefer_thread(h->node);
		r = drain(rc);
		if (r >= 0 && h->state == J_WINDOW)
			r = refill(rc);
		(void)mig__prefer_thread(-1);
		info->refill_ns = mig__now_ns() - t;
		if (r < 0) {
			reason(info, "refilling the window at 0x%" PRIx64 ": %s", h->win_start,
			       strerror(-r));
			return r;
		}
		if (info->pages_lost) {
			/*
			 * Their content is nowhere (staging gone, no scratch): the
			 * tenant stays blocked on them rather than read zero.
			 */
			reason(info, "%" PRIu64 " zapped pages have no staged content left (%s)",
			       info->pages_lost,
			       h->staging_path[0] ? h->staging_path : "anonymous staging");
			return -ENODATA;
		}
		for (size_t k = 0; k < rc->nchildren; k++)
			release_child(rc, rc->children[k]);
		rc->nchildren = 0;
		t = mig__now_ns();
		if (h->state == J_WINDOW)
			thaw(rc, rc->uffd);
		unregister_all(rc, rc->uffd);
		settle(rc);
		__atomic_store_n(&h->state, J_RELEASED, __ATOMIC_RELEASE);
		info->settle_ns = mig__now_ns() - t;
		t = mig__now_ns();
		release_in_tenant(rc, rc->uffd, pidfd);
		info->release_ns = mig__now_ns() - t;
	}
	return 0;
}

int mig_recover(const char *path, struct mig_recover_info *ret_info)
{
	struct mig_recover_info info = { .tenant_fd = -1 };
	struct rec rc = { .uffd = -EBADF, .info = &info };
	_cleanup_close_ int fd = -EBADF, pidfd = -EBADF;
	uint64_t t0 = mig__now_ns(), start = 0;
	char boot[40] = "";
	struct stat st;
	int r;

	if (!path || !ret_info)
		return -EINVAL;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		reason(&info, "cannot open the journal: %s", strerror(-r));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		reason(&info, "the journal is in use by a running job");
		goto out;
	}
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < MIG__PAGE) {
		/* Died while creating it, before anything was registered. */
		reason(&info, "incomplete journal: nothing had been done yet");
		unlink(path);
		r = 1;
		goto out;
	}
	rc.len = (size_t)st.st_size;
	rc.map = mmap(NULL, rc.len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (rc.map == MAP_FAILED) {
		rc.map = NULL;
		r = -errno;
		reason(&info, "cannot map the journal: %s", strerror(-r));
		goto out;
	}
	rc.h = (struct jhdr *)(void *)rc.map;
	if (memcmp(rc.h->magic, JOURNAL_MAGIC, sizeof(rc.h->magic)) != 0) {
		reason(&info, "incomplete journal: nothing had been done yet");
		drop(path, NULL);
		r = 1;
		goto out;
	}
	if (rc.h->version != JOURNAL_VERSION ||
	    rc.h->addr_off + rc.h->max_pages * sizeof(uint64_t) > rc.len ||
	    rc.h->bits_off + JOURNAL_BITMAPS * rc.h->words * sizeof(uint64_t) > rc.len) {
		reason(&info, "journal version %u or layout not understood", rc.h->version);
		r = -EPROTO;
		goto out;
	}
	info.pid = rc.pid = rc.h->pid;
	info.starttime = rc.h->starttime;
	info.tenant_fd = rc.h->tenant_fd;
	rc.h->staging_path[sizeof(rc.h->staging_path) - 1] = 0;
	if (read_boot_id(boot, sizeof(boot)) == 0 &&
	    strncmp(boot, rc.h->boot_id, sizeof(rc.h->boot_id)) != 0) {
		reason(&info, "from an earlier boot: the tenant is gone");
		drop(path, rc.h);
		r = 1;
		goto out;
	}
	pidfd = (int)syscall(SYS_pidfd_open, rc.pid, 0);
	r = pidfd < 0 ? -errno : mig__proc_starttime(rc.pid, &start);
	if (r == -ESRCH || (r == 0 && start != rc.h->starttime)) {
		reason(&info,
		       r == -ESRCH ? "the tenant has exited"
				   : "pid %d is another process now (start time %" PRIu64
				     ", the journal's %" PRIu64 ")",
		       (int)rc.pid, start, rc.h->starttime);
		drop(path, rc.h);
		r = 1;
		goto out;
	}
	if (r < 0) {
		reason(&info, "pidfd_open(%d): %s", (int)rc.pid, strerror(-r));
		goto out;
	}
	r = recover_locked(path, &rc, pidfd);
	if (r == -ESRCH || (r < 0 && kill(rc.pid, 0) < 0 && errno == ESRCH)) {
		reason(&info, "the tenant exited during recovery");
		drop(path, rc.h);
		r = 1;
	} else if (r >= 0) {
		drop(path, rc.h);
	}
out:
	for (size_t k = 0; k < rc.nchildren; k++)
		safe_close(rc.children[k]);
	if (rc.staging)
		munmap((void *)rc.staging, rc.staging_len);
	safe_close(rc.uffd);
	if (rc.map)
		munmap(rc.map, rc.len);
	info.elapsed_ns = mig__now_ns() - t0;
	*ret_info = info;
	return r;
}
