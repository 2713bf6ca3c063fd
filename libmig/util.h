/*
 * util.h - small internal helpers shared by libmig and the daemon:
 * -errno conversion, cleanup attributes, ownership transfer.
 * Not installed; the public interface is include/mig.h.
 */
#ifndef MIG_UTIL_H
#define MIG_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Turn libc's -1/errno into -errno right at the call. */
#define RET_NERRNO(expr)                   \
	({                                 \
		long _r = (long)(expr);    \
		_r < 0 ? -errno : (int)_r; \
	})

#define ARRAY_SIZE(a)	 (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)	 ((a) < (b) ? (a) : (b))
#define MAX(a, b)	 ((a) > (b) ? (a) : (b))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define ALIGN_UP(x, a)	 ALIGN_DOWN((x) + (a)-1, a)

/* Close an fd if it is valid, keep errno, return -EBADF for reassignment. */
static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -EBADF;
}

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	safe_close(*fd);
}

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_(f)	 __attribute__((cleanup(f)))
#define _cleanup_free_	 _cleanup_(freep)
#define _cleanup_close_	 _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Take ownership out of a cleanup variable. */
#define TAKE_PTR(p)                     \
	({                              \
		__typeof__(p) _p = (p); \
		(p) = NULL;             \
		_p;                     \
	})
#define TAKE_FD(fd)             \
	({                      \
		int _fd = (fd); \
		(fd) = -EBADF;  \
		_fd;            \
	})

/* Internal, non-static names carry the mig__ prefix. */
#define MIG_INTERNAL __attribute__((visibility("hidden")))

#endif /* MIG_UTIL_H */
