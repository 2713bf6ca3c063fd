/*
 * identity.h - which process a request means. A pid alone is not an
 * identity: the process may exit and its number go to another process
 * before a queued job starts. A request therefore takes, when it arrives,
 * a pidfd and the process's start time (field 22 of /proc/PID/stat) with
 * its owner, and the job checks them again when it starts and after it
 * attached. A mismatch is ESRCH with a reason, never work on another
 * process.
 */
#ifndef MIGD_IDENTITY_H
#define MIGD_IDENTITY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pid_identity {
	pid_t pid;
	int pidfd; /* -EBADF when none */
	uint64_t starttime;
	uid_t owner; /* see proc_pid_info(): 0 when real and effective uid differ */
};

#define PID_IDENTITY_NULL ((struct pid_identity){ .pidfd = -EBADF })

/*
 * Take the identity of pid now: pidfd first, then /proc, then a check that
 * the pidfd's process is still alive, so the /proc fields read belong to
 * it. Returns 0; -ESRCH (no such process, or it exited meanwhile), -EPERM
 * (a kernel thread), or pidfd_open's -errno. reason (size bytes) says why.
 */
int identity_take(pid_t pid, struct pid_identity *ret, char *reason, size_t size);

/*
 * Is id still the process holding id->pid, owned so that uid (0: root, any
 * owner) may act on it? Returns 0; -ESRCH when the process exited or the
 * pid now names another process; -EPERM when it changed owner (e.g. exec of
 * a set-uid program) away from a non-root requester. reason says why.
 */
int identity_check(const struct pid_identity *id, uid_t uid, char *reason, size_t size);

/* Close the pidfd; id becomes PID_IDENTITY_NULL. NULL is fine. */
void identity_done(struct pid_identity *id);

#endif /* MIGD_IDENTITY_H */
