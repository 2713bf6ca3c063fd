/*
 * tenant.c - attach to and detach from a tenant, its accessors, range
 * registration with the record detach needs, and the public in-tenant
 * operations, dispatched to the backend (ptrace injection or agent) under
 * the tenant's op_lock so only one operation runs inside it at a time.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compat.h"
#include "tenant.h"
#include "uffd.h"
#include "util.h"

static __thread char last_error[512];

void mig__tenant_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

const char *mig_tenant_last_error(void)
{
	return last_error;
}

static const char *feature_name(uint64_t bit)
{
	switch (bit) {
	case UFFD_FEATURE_EVENT_FORK:
		return "EVENT_FORK";
	case UFFD_FEATURE_EVENT_REMAP:
		return "EVENT_REMAP";
	case UFFD_FEATURE_EVENT_REMOVE:
		return "EVENT_REMOVE";
	case UFFD_FEATURE_EVENT_UNMAP:
		return "EVENT_UNMAP";
	case UFFD_FEATURE_PAGEFAULT_FLAG_WP:
		return "PAGEFAULT_FLAG_WP";
	default:
		return "?";
	}
}

/* Set by the kernel in a uffd's features once UFFDIO_API succeeded (6.1+). */
#define UFFD_FEATURE_INITIALIZED (1ull << 31)

/*
 * The features a uffd got at its UFFDIO_API, from the "API:" line of its
 * fdinfo (UFFD_API:features:ioctls); 0 when it has had none.
 */
static int fdinfo_features(int fd, uint64_t *ret_features)
{
	char path[64], line[256];
	unsigned long long api, feat;
	FILE *f;
	int r = -ENOENT;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "API: %llx:%llx:", &api, &feat) == 2) {
			*ret_features = feat & ~UFFD_FEATURE_INITIALIZED;
			r = 0;
			break;
		}
	fclose(f);
	return r;
}

/*
 * A uffd the agent kept across a migd restart already had its UFFDIO_API
 * (a second one fails with EINVAL): take the features it got from fdinfo
 * and check they are enough. Returns 1 when reused, 0 when it still needs
 * its UFFDIO_API, or -errno.
 */
static int tenant_reuse_api(struct mig_tenant *t, uint64_t offered, uint64_t offered_ioctls)
{
	uint64_t feat = 0;
	int r = fdinfo_features(t->uffd, &feat);

	if (r < 0) {
		mig__tenant_set_error("cannot read the state of the uffd pid %d kept: %s", t->pid,
				      strerror(-r));
		return r;
	}
	if (!feat)
		return 0;
	if ((feat & MIG__UFFD_FEATURES_REQUIRED) != MIG__UFFD_FEATURES_REQUIRED) {
		mig__tenant_set_error("the uffd pid %d kept was set up with features 0x%llx, "
				      "without all migd needs (0x%llx)",
				      t->pid, (unsigned long long)feat,
				      (unsigned long long)MIG__UFFD_FEATURES_REQUIRED);
		return -EOPNOTSUPP;
	}
	t->features = feat;
	t->offered = offered;
	t->ioctls = offered_ioctls;
	return 1;
}

/* UFFDIO_API on migd's copy: the required features, the optional ones offered. */
static int tenant_api(struct mig_tenant *t)
{
	uint64_t offered = 0, offered_ioctls = 0, want;
	int r;

	r = mig__uffd_probe(&offered, &offered_ioctls);
	if (r < 0) {
		mig__tenant_set_error("this kernel offers no userfaultfd: %s", strerror(-r));
		return r;
	}
	if (t->kept) {
		r = tenant_reuse_api(t, offered, offered_ioctls);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	for (uint64_t b = 1; b; b <<= 1)
		if ((MIG__UFFD_FEATURES_REQUIRED & b) && !(offered & b)) {
			mig__tenant_set_error("the kernel lacks UFFD_FEATURE_%s", feature_name(b));
			return -EOPNOTSUPP;
		}
	want = MIG__UFFD_FEATURES_REQUIRED | (offered & MIG__UFFD_FEATURES_OPTIONAL);
	/* UFFDIO_API answers with everything offered; what we get is what we asked. */
	r = mig__uffd_api(t->uffd, want, &t->offered, &t->ioctls);
	if (r == -EPERM) {
		mig__tenant_set_error("UFFDIO_API refused EVENT_FORK: migd needs CAP_SYS_PTRACE "
				      "(without it a forked child would read zeros where pages "
				      "were zapped)");
		return r;
	}
	if (r < 0) {
		mig__tenant_set_error("UFFDIO_API(features 0x%llx) on pid %d: %s",
				      (unsigned long long)want, t->pid, strerror(-r));
		return r;
	}
	t->features = want;
	return 0;
}

/* Free everything of t here; the tenant side was cleaned up before. */
static void tenant_free(struct mig_tenant *t)
{
	if (t->ops && t->ops->release)
		t->ops->release(t);
	safe_close(t->uffd);
	safe_close(t->pidfd);
	mig__uffd_regs_free(&t->regs);
	pthread_mutex_destroy(&t->op_lock);
	free(t);
}

int mig_tenant_attach(pid_t pid, const struct mig_attach_opts *opts, mig_tenant **ret_tenant)
{
	enum mig_attach_method method = opts ? opts->method : MIG_ATTACH_AUTO;
	int agent_fd = opts ? opts->agent_fd : -1;
	struct mig_tenant *t;
	int r;

	last_error[0] = 0;
	if (pid <= 0 || !ret_tenant) {
		mig__tenant_set_error("invalid pid %d", (int)pid);
		return -EINVAL;
	}
	if (method == MIG_ATTACH_AUTO)
		method = agent_fd >= 0 ? MIG_ATTACH_AGENT : MIG_ATTACH_PTRACE;
	if (method == MIG_ATTACH_AGENT && agent_fd < 0) {
		mig__tenant_set_error("MIG_ATTACH_AGENT needs a connected agent_fd");
		return -EINVAL;
	}
	if (method != MIG_ATTACH_AGENT && method != MIG_ATTACH_PTRACE) {
		mig__tenant_set_error("unknown attach method %d", (int)method);
		return -EINVAL;
	}

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->pid = pid;
	t->uffd = -EBADF;
	t->tenant_fd = -1;
	t->method = method;
	t->no_device = opts && opts->no_device;
	pthread_mutex_init(&t->op_lock, NULL);
	mig__uffd_regs_init(&t->regs);

	t->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (t->pidfd < 0) {
		r = -errno;
		mig__tenant_set_error("pidfd_open(%d): %s", (int)pid,
				      r == -ESRCH ? "no such process" : strerror(-r));
		goto fail;
	}
	if (method == MIG_ATTACH_PTRACE)
		r = mig__ptrace_attach(t);
	else
		r = mig__agent_attach(t, agent_fd);
	if (r < 0)
		goto fail;
	r = tenant_api(t);
	if (r < 0)
		goto fail;
	*ret_tenant = t;
	return 0;
fail:
	/* Leave the tenant's fd table as we found it. */
	if (t->tenant_fd >= 0 && t->ops)
		(void)t->ops->close_fd(t, t->tenant_fd);
	tenant_free(t);
	return r;
}

/*
 * A pidfd turns readable when its process has exited (zombie or reaped).
 * Unlike pidfd_send_signal(0), which also fails with EPERM for a live
 * process of another user when we lack CAP_KILL (migd under its unit),
 * this asks nothing of our credentials.
 */
bool mig__tenant_exited(const struct mig_tenant *t)
{
	struct pollfd p = { .fd = t->pidfd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

int mig_tenant_detach(mig_tenant *t)
{
	_cleanup_free_ struct mig_range *v = NULL;
	size_t n = 0;
	int r = 0, e;

	if (!t)
		return 0;
	pthread_mutex_lock(&t->op_lock);
	/* A dead tenant has no maps or fds left to restore. */
	if (mig__tenant_exited(t)) {
		pthread_mutex_unlock(&t->op_lock);
		mig__tenant_set_error("pid %d has exited", t->pid);
		tenant_free(t);
		return -ESRCH;
	}
	e = mig__uffd_regs_snapshot(&t->regs, &v, &n);
	if (e < 0)
		r = e;
	for (size_t i = 0; i < n; i++) {
		/* -ENOENT/-EINVAL: the tenant unmapped the range itself; nothing left. */
		e = mig__uffd_unregister(t->uffd, v[i].start, v[i].end - v[i].start);
		if (e < 0 && e != -ENOENT && e != -EINVAL && e != -ESRCH && r == 0)
			r = e;
	}
	if (t->tenant_fd >= 0 && t->ops) {
		e = t->ops->close_fd(t, t->tenant_fd);
		if (e < 0 && r == 0)
			r = e;
	}
	pthread_mutex_unlock(&t->op_lock);
	tenant_free(t);
	return r;
}

int mig_tenant_register(mig_tenant *t, uint64_t start, uint64_t len, uint64_t mode,
			uint64_t *ret_ioctls)
{
	int r;

	if (!t || !len || (start | len) & 4095 || start + len < start)
		return -EINVAL;
	r = mig__uffd_register(t->uffd, start, len, mode, ret_ioctls);
	if (r < 0)
		return r;
	r = mig__uffd_regs_add(&t->regs, start, start + len);
	if (r < 0)
		(void)mig__uffd_unregister(t->uffd, start, len);
	return r;
}

int mig_tenant_unregister(mig_tenant *t, uint64_t start, uint64_t len)
{
	int r;

	if (!t || !len || (start | len) & 4095 || start + len < start)
		return -EINVAL;
	r = mig__uffd_unregister(t->uffd, start, len);
	if (r < 0)
		return r;
	return mig__uffd_regs_remove(&t->regs, start, start + len);
}

pid_t mig_tenant_pid(const mig_tenant *t)
{
	return t->pid;
}

int mig_tenant_pidfd(const mig_tenant *t)
{
	return t->pidfd;
}

int mig_tenant_uffd(const mig_tenant *t)
{
	return t->uffd;
}

int mig_tenant_fd_in_tenant(const mig_tenant *t)
{
	return t->tenant_fd;
}

uint64_t mig_tenant_features(const mig_tenant *t)
{
	return t->features;
}

uint64_t mig_tenant_ioctls(const mig_tenant *t)
{
	return t->ioctls;
}

enum mig_attach_method mig_tenant_method(const mig_tenant *t)
{
	return t->method;
}

uint64_t mig_tenant_stop_ns(const mig_tenant *t, uint64_t *ret_max_ns)
{
	if (ret_max_ns)
		*ret_max_ns = t->stop_max_ns;
	return t->stop_ns;
}

int mig_tenant_map_scratch(mig_tenant *t, size_t len, uint64_t *ret_addr)
{
	int r;

	if (!t || !len || len & 4095 || !ret_addr)
		return -EINVAL;
	pthread_mutex_lock(&t->op_lock);
	r = t->ops->map_scratch(t, len, ret_addr);
	pthread_mutex_unlock(&t->op_lock);
	return r;
}

int mig_tenant_unmap(mig_tenant *t, uint64_t addr, size_t len)
{
	int r;

	if (!t || !len || (addr | len) & 4095)
		return -EINVAL;
	pthread_mutex_lock(&t->op_lock);
	r = t->ops->unmap(t, addr, len);
	pthread_mutex_unlock(&t->op_lock);
	return r;
}

int mig__tenant_advise(mig_tenant *t, uint64_t addr, size_t len, int advice)
{
	int r;

	if (!t || !len || (addr | len) & 4095)
		return -EINVAL;
	if (!t->ops->advise)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&t->op_lock);
	r = t->ops->advise(t, addr, len, advice);
	pthread_mutex_unlock(&t->op_lock);
	return r;
}

int mig_tenant_move(mig_tenant *t, uint64_t dst, uint64_t src, uint64_t len, uint64_t mode,
		    uint64_t *ret_moved)
{
	int r;

	if (!t || !len || (dst | src | len) & 4095)
		return -EINVAL;
	if (!(t->features & UFFD_FEATURE_MOVE))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&t->op_lock);
	r = t->ops->move(t, dst, src, len, mode, ret_moved);
	pthread_mutex_unlock(&t->op_lock);
	return r;
}
