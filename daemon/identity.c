/*
 * identity.c - a process's identity across the life of a request: a pidfd
 * plus the start time and owner read while that pidfd was known to be
 * alive (identity.h says why).
 *
 * A pidfd turns readable (POLLIN) when its process has exited. While it
 * is not readable the process lives, and a live process keeps its pid:
 * anything read or done by pid before that poll reached this very
 * process. So every check reads or acts first and polls the pidfd after.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat.h"
#include "daemon.h"
#include "identity.h"

static bool pidfd_exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

int identity_take(pid_t pid, struct pid_identity *ret, char *reason, size_t size)
{
	struct pid_identity id = { .pid = pid, .pidfd = -EBADF };
	int r;

	id.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (id.pidfd < 0) {
		r = -errno;
		if (r == -ESRCH)
			snprintf(reason, size, "no such process: %d", (int)pid);
		else
			snprintf(reason, size, "pidfd_open(%d): %s", (int)pid, strerror(-r));
		return r;
	}
	r = proc_pid_info(pid, &id.owner, &id.starttime);
	if (r == -EPERM) {
		snprintf(reason, size, "pid %d is a kernel thread", (int)pid);
		goto fail;
	}
	if (r < 0 || pidfd_exited(id.pidfd)) {
		r = -ESRCH;
		snprintf(reason, size, "no such process: %d (it exited)", (int)pid);
		goto fail;
	}
	*ret = id;
	return 0;
fail:
	safe_close(id.pidfd);
	return r;
}

int identity_check(const struct pid_identity *id, uid_t uid, char *reason, size_t size)
{
	uint64_t start = 0;
	uid_t owner = 0;
	int r;

	if (id->pidfd < 0) {
		snprintf(reason, size, "pid %d: no identity was taken for it", (int)id->pid);
		return -ESRCH;
	}
	r = proc_pid_info(id->pid, &owner, &start);
	if (pidfd_exited(id->pidfd)) {
		if (r == 0 && start != id->starttime)
			snprintf(reason, size,
				 "pid %d exited and its number now names another process "
				 "(start time %" PRIu64 ", the request's was %" PRIu64 ")",
				 (int)id->pid, start, id->starttime);
		else
			snprintf(reason, size, "pid %d exited", (int)id->pid);
		return -ESRCH;
	}
	if (r < 0 || start != id->starttime) {
		/* Cannot be while the pidfd lives; refuse rather than guess. */
		snprintf(reason, size, "pid %d: /proc no longer matches the request's process",
			 (int)id->pid);
		return -ESRCH;
	}
	if (uid != 0 && owner != uid) {
		snprintf(reason, size,
			 "pid %d changed owner to uid %u since uid %u asked; the job is refused",
			 (int)id->pid, (unsigned)owner, (unsigned)uid);
		return -EPERM;
	}
	return 0;
}

void identity_done(struct pid_identity *id)
{
	if (!id)
		return;
	safe_close(id->pidfd);
	*id = PID_IDENTITY_NULL;
}
