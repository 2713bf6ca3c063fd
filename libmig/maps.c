/*
 * maps.c - read a process's VMAs from /proc/PID/maps.
 *
 * The line format is "START-END PERMS OFFSET MAJ:MIN INODE [NAME]", with
 * NAME being whatever follows the padding to the end of the line: a path
 * (which may hold spaces and end in " (deleted)"), or a pseudo name such as
 * [heap], [stack], [anon:NAME], [vdso]. The parser is strict about the
 * fixed fields and takes NAME verbatim, so that odd paths never shift a
 * field. Anonymous memory is recognised by inode 0 together with an empty
 * or bracketed name; special kernel mappings are flagged so that they are
 * never taken for tenant memory.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "compat.h"
#include "mig.h"
#include "procfs.h"
#include "util.h"

static int parse_hex(const char **p, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;

	for (; isxdigit((unsigned char)*s); s++, digits++) {
		unsigned d = isdigit((unsigned char)*s)
				     ? (unsigned)(*s - '0')
				     : (unsigned)(tolower((unsigned char)*s) - 'a' + 10);

		if (digits >= 16)
			return -EINVAL;
		v = v << 4 | d;
	}
	if (digits == 0)
		return -EINVAL;
	*p = s;
	*ret = v;
	return 0;
}

static int parse_dec(const char **p, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;
	int digits = 0;

	for (; isdigit((unsigned char)*s); s++, digits++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (digits == 0)
		return -EINVAL;
	*p = s;
	*ret = v;
	return 0;
}

static int expect(const char **p, char c)
{
	if (**p != c)
		return -EINVAL;
	(*p)++;
	return 0;
}

/* Pseudo names of kernel-provided mappings that are never tenant memory. */
static bool is_special_name(const char *name)
{
	static const char *const special[] = {
		"[vdso]",    "[vvar]",	  "[vvar_vclock]", "[vsyscall]",
		"[vectors]", "[sigpage]", "[uprobes]",
	};

	for (size_t i = 0; i < ARRAY_SIZE(special); i++)
		if (strcmp(name, special[i]) == 0)
			return true;
	return false;
}

/* The flags that follow from the inode and v->name (bracketed: a pseudo name or none). */
static void name_flags(struct mig_vma *v, uint64_t inode, bool bracketed)
{
	if (inode == 0 && bracketed)
		v->flags |= MIG_VMA_ANON;
	if (strcmp(v->name, "[heap]") == 0)
		v->flags |= MIG_VMA_HEAP;
	else if (strcmp(v->name, "[stack]") == 0 || strncmp(v->name, "[stack:", 7) == 0)
		v->flags |= MIG_VMA_STACK;
	else if (is_special_name(v->name))
		v->flags |= MIG_VMA_SPECIAL;
}

int mig__parse_maps_line(const char *line, struct mig_vma *ret)
{
	struct mig_vma v = { 0 };
	const char *p = line;
	uint64_t major, minor, inode;
	size_t len;

	if (parse_hex(&p, &v.start) < 0 || expect(&p, '-') < 0 || parse_hex(&p, &v.end) < 0 ||
	    expect(&p, ' ') < 0)
		return -EINVAL;
	if (v.end <= v.start)
		return -EINVAL;

	/* Permissions: exactly four characters, "rwxp" with '-' for absent. */
	if (strlen(p) < 5 || p[4] != ' ')
		return -EINVAL;
	if ((p[0] != 'r' && p[0] != '-') || (p[1] != 'w' && p[1] != '-') ||
	    (p[2] != 'x' && p[2] != '-') || (p[3] != 'p' && p[3] != 's'))
		return -EINVAL;
	v.flags |= p[0] == 'r' ? MIG_VMA_READ : 0;
	v.flags |= p[1] == 'w' ? MIG_VMA_WRITE : 0;
	v.flags |= p[2] == 'x' ? MIG_VMA_EXEC : 0;
	v.flags |= p[3] == 'p' ? MIG_VMA_PRIVATE : 0;
	p += 5;

	if (parse_hex(&p, &v.offset) < 0 || expect(&p, ' ') < 0 || parse_hex(&p, &major) < 0 ||
	    expect(&p, ':') < 0 || parse_hex(&p, &minor) < 0 || expect(&p, ' ') < 0 ||
	    parse_dec(&p, &inode) < 0)
		return -EINVAL;
	if (*p != '\0' && *p != '\n' && *p != ' ')
		return -EINVAL;

	/* The name starts after the padding and runs to the end of the line. */
	while (*p == ' ')
		p++;
	len = strcspn(p, "\n");
	if (p[len] == '\n' && p[len + 1] != '\0')
		return -EINVAL;
	/* Truncated names keep their start: the path prefix is what identifies a mapping. */
	memcpy(v.name, p, MIN(len, sizeof(v.name) - 1));
	v.name[MIN(len, sizeof(v.name) - 1)] = '\0';

	name_flags(&v, inode, len == 0 || p[0] == '[');
	*ret = v;
	return 0;
}

int mig_read_vmas(pid_t pid, struct mig_vma **ret_vmas, size_t *ret_n)
{
	_cleanup_free_ struct mig_vma *vmas = NULL;
	_cleanup_free_ char *line = NULL;
	size_t n = 0, cap = 0, linecap = 0;
	char path[64];
	FILE *f;
	int r = 0;

	if (pid <= 0 || !ret_vmas || !ret_n)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;

	for (;;) {
		ssize_t l;

		errno = 0;
		l = getline(&line, &linecap, f);
		if (l < 0) {
			/* A process that exits while we read makes the read fail with ESRCH. */
			r = errno ? -errno : 0;
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct mig_vma *nv = reallocarray(vmas, ncap, sizeof(*vmas));

			if (!nv) {
				r = -ENOMEM;
				break;
			}
			vmas = nv;
			cap = ncap;
		}
		if (mig__parse_maps_line(line, &vmas[n]) < 0) {
			/* The kernel printed something we do not understand: say so, do not guess.
			 */
			r = -EBADMSG;
			break;
		}
		n++;
	}
	fclose(f);
	if (r < 0)
		return r;
	/* An empty maps file belongs to a zombie or a kernel thread: no memory to manage. */
	if (n == 0 && kill(pid, 0) < 0 && errno == ESRCH)
		return -ESRCH;

	*ret_vmas = TAKE_PTR(vmas);
	*ret_n = n;
	return 0;
}

/*
 * PROCMAP_QUERY (Linux 6.11+): the kernel answers for one address, so a
 * window asks about its own few VMAs instead of reading the text of all
 * of them. A tenant with tens of thousands of VMAs (guard pages, single
 * pages mprotected) made /proc/PID/maps 60,000 lines long, about 165 ms
 * a read here, and a window read it up to three times (issue 16).
 * 1: the kernel has it, 0: not asked yet, -1: it has not (ENOTTY).
 */
static int procmap_query_ok;

int mig__procmap_query_set(int ok)
{
	return __atomic_exchange_n(&procmap_query_ok, ok, __ATOMIC_RELAXED);
}

/* One VMA, the one covering addr or the next one: 0, -ENOENT (none), -errno. */
static int query_one(int fd, uint64_t addr, struct mig_vma *ret)
{
	char name[4096];
	struct procmap_query q = {
		.size = sizeof(q),
		.query_flags = PROCMAP_QUERY_COVERING_OR_NEXT_VMA,
		.query_addr = addr,
		.vma_name_size = sizeof(name),
		.vma_name_addr = (uint64_t)(uintptr_t)name,
	};
	struct mig_vma v = { 0 };
	size_t len;

	if (ioctl(fd, PROCMAP_QUERY, &q) < 0)
		return -errno;
	if (q.vma_end <= q.vma_start)
		return -EBADMSG;
	v.start = q.vma_start;
	v.end = q.vma_end;
	v.offset = q.vma_offset;
	v.flags |= q.vma_flags & PROCMAP_QUERY_VMA_READABLE ? MIG_VMA_READ : 0;
	v.flags |= q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE ? MIG_VMA_WRITE : 0;
	v.flags |= q.vma_flags & PROCMAP_QUERY_VMA_EXECUTABLE ? MIG_VMA_EXEC : 0;
	v.flags |= q.vma_flags & PROCMAP_QUERY_VMA_SHARED ? 0 : MIG_VMA_PRIVATE;
	/* vma_name_size counts the terminating zero; 0: no name. */
	len = q.vma_name_size ? strnlen(name, MIN((size_t)q.vma_name_size, sizeof(name))) : 0;
	memcpy(v.name, name, MIN(len, sizeof(v.name) - 1));
	v.name[MIN(len, sizeof(v.name) - 1)] = '\0';
	name_flags(&v, q.inode, len == 0 || name[0] == '[');
	*ret = v;
	return 0;
}

static int query_range(int fd, uint64_t start, uint64_t end, struct mig_vma **ret_vmas,
		       size_t *ret_n)
{
	_cleanup_free_ struct mig_vma *vmas = NULL;
	size_t n = 0, cap = 0;

	for (uint64_t a = start; a < end;) {
		struct mig_vma v;
		int r = query_one(fd, a, &v);

		if (r == -ENOENT)
			break;
		if (r < 0)
			return r;
		if (v.start >= end)
			break;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct mig_vma *nv = reallocarray(vmas, ncap, sizeof(*vmas));

			if (!nv)
				return -ENOMEM;
			vmas = nv;
			cap = ncap;
		}
		vmas[n++] = v;
		a = v.end;
	}
	*ret_vmas = TAKE_PTR(vmas);
	*ret_n = n;
	return 0;
}

int mig__read_vmas_range(pid_t pid, uint64_t start, uint64_t end, struct mig_vma **ret_vmas,
			 size_t *ret_n)
{
	_cleanup_free_ struct mig_vma *all = NULL;
	size_t nall = 0, k = 0;
	int ok = __atomic_load_n(&procmap_query_ok, __ATOMIC_RELAXED);
	int r;

	if (pid <= 0 || !ret_vmas || !ret_n || end < start)
		return -EINVAL;
	if (ok >= 0) {
		char path[64];
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return errno == ENOENT ? -ESRCH : -errno;
		r = query_range(fd, start, end, ret_vmas, ret_n);
		close(fd);
		if (r != -ENOTTY && r != -EINVAL && r != -E2BIG && r != -ENAMETOOLONG &&
		    r != -EBADMSG) {
			if (r == 0 && ok == 0)
				__atomic_store_n(&procmap_query_ok, 1, __ATOMIC_RELAXED);
			return r;
		}
		/* No PROCMAP_QUERY (ENOTTY), or an answer we cannot use: the text. */
		if (r == -ENOTTY)
			__atomic_store_n(&procmap_query_ok, -1, __ATOMIC_RELAXED);
	}
	r = mig_read_vmas(pid, &all, &nall);
	if (r < 0)
		return r;
	for (size_t i = 0; i < nall; i++)
		if (all[i].end > start && all[i].start < end)
			all[k++] = all[i];
	*ret_vmas = TAKE_PTR(all);
	*ret_n = k;
	return 0;
}

/* Below: user space on x86-64 with 4-level page tables (47 bits). */
#define HINT_TOP (UINT64_C(1) << 47)
/* Above: the low 4 GiB, where 32-bit-minded mappings and the brk heap of a non-PIE program live. */
#define HINT_BOTTOM (UINT64_C(1) << 32)
/* A gap must leave at least this much on either side of our mapping. */
#define HINT_MARGIN (UINT64_C(1) << 30)

/*
 * Where a mapping of ours inside the tenant goes: an mmap hint (never
 * MAP_FIXED, so the kernel still chooses if it is taken), in the middle
 * of the largest gap between the tenant's mappings, 2 MiB aligned.
 * Without a hint the kernel takes the highest gap that fits: where the
 * tenant's own recent mappings are. A hole the tenant has just made
 * there (munmap, mremap away) and is about to fill again would get our
 * mapping, and the tenant's MAP_FIXED would then replace it without a
 * word (our next write into it lands in the tenant's new page), or its
 * MAP_FIXED_NOREPLACE would fail. The middle of the largest gap is no
 * such hole: a tenant maps there only by a hint of its own, which the
 * kernel then moves elsewhere. Returns 0 (no hint: the kernel's choice)
 * when no gap has room for len and a margin on both sides.
 */
uint64_t mig__far_hint(pid_t pid, uint64_t len)
{
	_cleanup_free_ struct mig_vma *v = NULL;
	uint64_t best = 0, best_len = 0, prev = HINT_BOTTOM;
	size_t n = 0;

	if (mig_read_vmas(pid, &v, &n) < 0)
		return 0;
	for (size_t k = 0; k <= n; k++) {
		uint64_t s = k < n ? v[k].start : HINT_TOP;

		if (s > HINT_TOP)
			s = HINT_TOP;
		if (s > prev && s - prev > best_len) {
			best = prev;
			best_len = s - prev;
		}
		if (k < n && v[k].end > prev)
			prev = MIN(v[k].end, HINT_TOP);
	}
	if (best_len < len + 2 * HINT_MARGIN)
		return 0;
	return ALIGN_DOWN(best + (best_len - len) / 2, UINT64_C(2) << 20);
}
