/*
 * uffd.c - userfaultfd ioctl wrappers returning -errno, the kernel feature
 * probe, and the record of ranges migd registered on a tenant's uffd.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "procfs.h"
#include "trace.h"
#include "uffd.h"

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_ret;
static uint64_t probe_features, probe_ioctls;

/*
 * Create a uffd in this process for probing only. User-mode-only is fine
 * here: nothing is ever registered on it, it only answers UFFDIO_API.
 */
static int probe_fd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0)
		return fd;
	fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		int u = ioctl(fd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);

		safe_close(fd);
		if (u >= 0)
			return u;
	}
#ifdef UFFD_USER_MODE_ONLY
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd >= 0)
		return fd;
#endif
	return errno == ENOSYS ? -EOPNOTSUPP : -errno;
}

static void do_probe(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd = probe_fd();

	if (fd < 0) {
		probe_ret = fd;
		return;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		probe_ret = -errno;
	} else {
		probe_features = api.features;
		probe_ioctls = api.ioctls;
	}
	safe_close(fd);
}

int mig__uffd_probe(uint64_t *ret_features, uint64_t *ret_ioctls)
{
	pthread_once(&probe_once, do_probe);
	if (probe_ret < 0)
		return probe_ret;
	if (ret_features)
		*ret_features = probe_features;
	if (ret_ioctls)
		*ret_ioctls = probe_ioctls;
	return 0;
}

int mig__uffd_api(int uffd, uint64_t features, uint64_t *ret_features, uint64_t *ret_ioctls)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };

	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return -errno;
	if (ret_features)
		*ret_features = api.features;
	if (ret_ioctls)
		*ret_ioctls = api.ioctls;
	return 0;
}

int mig__uffd_register(int uffd, uint64_t start, uint64_t len, uint64_t mode, uint64_t *ret_ioctls)
{
	struct uffdio_register reg = { .range = { .start = start, .len = len }, .mode = mode };

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		return -errno;
	if (ret_ioctls)
		*ret_ioctls = reg.ioctls;
	return 0;
}

int mig__uffd_unregister(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_range rg = { .start = start, .len = len };

	return RET_NERRNO(ioctl(uffd, UFFDIO_UNREGISTER, &rg));
}

/*
 * UFFDIO_UNREGISTER refuses, as a whole (-EINVAL), a range that holds a
 * VMA it cannot take from this uffd: a file mapping (not shmem), or a VMA
 * registered with another uffd (the tenant's own; Linux 6.18 checks the
 * owner). Everything in the range then stays registered. A window's piece
 * can hold one: when the pieces outnumber MIG__MAX_REGS, two neighbours
 * become one piece spanning the gap between them (faults.c regs_add), and
 * the gap may hold anything (migrate_unreg_foreign). Then the piece's
 * anonymous private VMAs are unregistered one at a time (another uffd's
 * answer -EINVAL and stay its own). Returns the whole range's answer, or
 * the first error of the VMA by VMA way (-ESRCH: the tenant is gone).
 */
int mig__uffd_unregister_piece(int uffd, pid_t pid, uint64_t start, uint64_t len)
{
	_cleanup_free_ struct mig_vma *v = NULL;
	size_t nv = 0;
	int r = mig__uffd_unregister(uffd, start, len);

	if (r != -EINVAL || pid <= 0)
		return r;
	r = mig__read_vmas_range(pid, start, start + len, &v, &nv);
	MIG_TRACE("UNREGVMA %lx-%lx: refused whole, %zu VMAs one by one", (unsigned long)start,
		  (unsigned long)(start + len), nv);
	for (size_t a = 0; a < nv && r >= 0; a++) {
		uint64_t s = MAX(start, v[a].start), e = MIN(start + len, v[a].end);

		if (s < e && mig_vma_is_anon_private(&v[a]))
			r = mig__uffd_unregister(uffd, s, e - s);
		/* Gone or replaced since the read: nothing of ours is left there. */
		if (r == -EINVAL)
			r = 0;
	}
	return r;
}

int mig__uffd_copy(int uffd, uint64_t dst, const void *src, uint64_t len, uint64_t mode,
		   uint64_t *ret_done)
{
	struct uffdio_copy c = { .dst = dst,
				 .src = (uint64_t)(uintptr_t)src,
				 .len = len,
				 .mode = mode };
	int r = RET_NERRNO(ioctl(uffd, UFFDIO_COPY, &c));

	/* .copy holds the bytes copied, or -errno when nothing was. */
	if (ret_done)
		*ret_done = c.copy > 0 ? (uint64_t)c.copy : 0;
	return r < 0 ? r : 0;
}

int mig__uffd_zeropage(int uffd, uint64_t dst, uint64_t len, uint64_t mode, uint64_t *ret_done)
{
	struct uffdio_zeropage z = { .range = { .start = dst, .len = len }, .mode = mode };
	int r = RET_NERRNO(ioctl(uffd, UFFDIO_ZEROPAGE, &z));

	if (ret_done)
		*ret_done = z.zeropage > 0 ? (uint64_t)z.zeropage : 0;
	return r < 0 ? r : 0;
}

int mig__uffd_writeprotect(int uffd, uint64_t start, uint64_t len, bool wp, bool dontwake)
{
	struct uffdio_writeprotect w = { .range = { .start = start, .len = len } };

	if (wp)
		w.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	else if (dontwake)
		w.mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE;
	return RET_NERRNO(ioctl(uffd, UFFDIO_WRITEPROTECT, &w));
}

int mig__uffd_wake(int uffd, uint64_t start, uint64_t len)
{
	struct uffdio_range rg = { .start = start, .len = len };

	return RET_NERRNO(ioctl(uffd, UFFDIO_WAKE, &rg));
}

int mig__uffd_read(int uffd, struct uffd_msg *msgs, size_t n)
{
	ssize_t r;

	do
		r = read(uffd, msgs, n * sizeof(*msgs));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0 || r % sizeof(*msgs))
		return -EIO;
	return (int)(r / sizeof(*msgs));
}

/* The last page below the x86-64 user address space (47-bit). */
#define PROBE_ADDR 0x7fffffffe000ULL

int mig__uffd_events_pending(int uffd)
{
	return mig__uffd_writeprotect(uffd, PROBE_ADDR, 4096, false, true) == -EAGAIN;
}

/* Does a smaps VmFlags line name a userfaultfd registration? */
static bool uffd_flags(const char *line)
{
	for (const char *p = line + strlen("VmFlags:"); *p;) {
		while (*p == ' ')
			p++;
		if (p[0] == 'u' && (p[1] == 'm' || p[1] == 'w' || p[1] == 'i') &&
		    (p[2] == ' ' || p[2] == '\n' || !p[2]))
			return true;
		while (*p && *p != ' ')
			p++;
	}
	return false;
}

int mig__uffd_each_flagged(pid_t pid, int (*fn)(uint64_t start, uint64_t end, void *arg), void *arg)
{
	_cleanup_free_ char *line = NULL;
	size_t linecap = 0;
	uint64_t start = 0, end = 0;
	char path[64];
	int found = 0, r = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	for (;;) {
		unsigned long long s, e;

		errno = 0;
		if (getline(&line, &linecap, f) < 0) {
			r = errno ? -errno : 0;
			break;
		}
		if (sscanf(line, "%llx-%llx ", &s, &e) == 2) {
			start = s;
			end = e;
			continue;
		}
		if (strncmp(line, "VmFlags:", 8) || !uffd_flags(line) || end <= start)
			continue;
		found += fn(start, end, arg);
	}
	fclose(f);
	return r < 0 ? r : found;
}

/* Ours if this uffd may register it: then it is registered no more. */
static int unregister_one(uint64_t start, uint64_t end, void *arg)
{
	int uffd = *(int *)arg;

	return mig__uffd_register(uffd, start, end - start,
				  UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
				  NULL) == 0 &&
	       mig__uffd_unregister(uffd, start, end - start) == 0;
}

int mig__uffd_unregister_ours(int uffd, pid_t pid)
{
	return mig__uffd_each_flagged(pid, unregister_one, &uffd);
}

void mig__uffd_regs_init(struct mig__uffd_regs *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
}

void mig__uffd_regs_free(struct mig__uffd_regs *r)
{
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
	pthread_mutex_destroy(&r->lock);
}

static int regs_reserve(struct mig__uffd_regs *r, size_t want)
{
	struct mig_range *v;
	size_t cap;

	if (want <= r->cap)
		return 0;
	cap = MAX(want, r->cap * 2);
	cap = MAX(cap, (size_t)8);
	v = realloc(r->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	r->v = v;
	r->cap = cap;
	return 0;
}

/* Remove [start, end) from the sorted, disjoint set; the lock is held. */
static int regs_cut(struct mig__uffd_regs *r, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < r->n; i++) {
		struct mig_range *x = &r->v[i];

		if (x->end <= start || x->start >= end)
			continue;
		if (x->start < start && x->end > end) {
			/* Split into two. */
			int e = regs_reserve(r, r->n + 1);

			if (e < 0)
				return e;
			x = &r->v[i];
			memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof(*x));
			r->n++;
			r->v[i].end = start;
			r->v[i + 1].start = end;
			return 0;
		}
		if (x->start < start) {
			x->end = start;
		} else if (x->end > end) {
			x->start = end;
		} else {
			memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(*x));
			r->n--;
			i--;
		}
	}
	return 0;
}

int mig__uffd_regs_add(struct mig__uffd_regs *r, uint64_t start, uint64_t end)
{
	size_t i;
	int e;

	if (end <= start)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	/* Merge with every range it overlaps or touches, then insert sorted. */
	for (i = 0; i < r->n;) {
		struct mig_range *x = &r->v[i];

		if (x->end < start || x->start > end) {
			i++;
			continue;
		}
		start = MIN(start, x->start);
		end = MAX(end, x->end);
		memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(*x));
		r->n--;
	}
	e = regs_reserve(r, r->n + 1);
	if (e == 0) {
		for (i = 0; i < r->n && r->v[i].start < start; i++)
			;
		memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof(r->v[0]));
		r->v[i] = (struct mig_range){ start, end };
		r->n++;
	}
	pthread_mutex_unlock(&r->lock);
	return e;
}

int mig__uffd_regs_remove(struct mig__uffd_regs *r, uint64_t start, uint64_t end)
{
	int e;

	if (end <= start)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	e = regs_cut(r, start, end);
	pthread_mutex_unlock(&r->lock);
	return e;
}

int mig__uffd_regs_snapshot(struct mig__uffd_regs *r, struct mig_range **ret_v, size_t *ret_n)
{
	struct mig_range *v = NULL;
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	if (n) {
		v = malloc(n * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&r->lock);
			return -ENOMEM;
		}
		memcpy(v, r->v, n * sizeof(*v));
	}
	pthread_mutex_unlock(&r->lock);
	*ret_v = v;
	*ret_n = n;
	return 0;
}
