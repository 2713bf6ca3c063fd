/*
 * agents.c - tenants that run libmig-agent.so (LD_PRELOAD or linked)
 * connect to migd's agent socket; this file keeps who is connected and
 * lends their connections to jobs.
 *
 * The socket (agent_socket, agent.sock beside the control socket) is
 * open to every user: a connection can only speak for the process at
 * its other end. Who that is comes from the kernel (SO_PEERCRED, never
 * from what the agent writes), and the process's start time is recorded
 * with it, so a pid reused by another process never inherits an agent.
 * A connection that sends no hello within AGENT_HELLO_MS is dropped, and
 * at most AGENT_MAX_PENDING wait for theirs: a client that connects and
 * says nothing cannot hold the loop or pile up.
 *
 * The registry belongs to the loop thread, which adds and removes
 * entries; job threads only borrow a connection (a dup of it, under the
 * registry's lock) for one attach. The loop watches an idle connection
 * for the peer going away only (UV_DISCONNECT, never readable data), so
 * it never competes with a job for the agent's answers.
 *
 * A policy with attach = agent does not queue a job until its tenant's
 * agent is connected: the tenant shows "waiting-for-agent" for up to
 * agent_wait, then "failed" with the reason. An agent that connects later
 * queues the job at once. attach = auto takes the agent when one is
 * connected when the job starts, else ptrace.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agents.h"
#include "log.h"

#define AGENT_HELLO_MS	  2000
#define AGENT_MAX_PENDING 64
/*
 * Agents of another protocol version (a libmig-agent.so loaded before an
 * upgrade) are refused but their connections kept, unread, until their
 * process ends: an agent whose connection is closed connects again, and
 * an old one at once, for ever. At most this many; beyond, closed.
 */
#define AGENT_MAX_REFUSED 256

/*
 * A connection: first pending (accepted, no hello yet: since_ms), then an
 * agent (the process at the other end). The same poll handle serves both.
 */
struct agent {
	struct agent *next;
	pid_t pid;
	uint64_t starttime;
	uint64_t since_ms;
	int fd;
	uv_poll_t poll;
};

static struct {
	pthread_mutex_t lock; /* guards agents for the job threads' lookups */
	struct agent *agents;
	struct agent *pending;
	unsigned n_pending;
	struct agent *refused; /* kept, never lent (AGENT_MAX_REFUSED) */
	unsigned n_refused;
	int listen_fd;
	bool listening;
	uv_poll_t listen_poll;
	uv_timer_t sweep;
	bool sweep_open;
	char *path; /* the socket we created, unlinked at the end */
	struct migd *d;
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER, .listen_fd = -1 };

static void on_handle_closed_free(uv_handle_t *h)
{
	free(h->data);
}

static void unlink_from(struct agent **list, struct agent *a)
{
	for (struct agent **p = list; *p; p = &(*p)->next)
		if (*p == a) {
			*p = a->next;
			break;
		}
}

static void agent_drop(struct agent *a)
{
	pthread_mutex_lock(&reg.lock);
	unlink_from(&reg.agents, a);
	pthread_mutex_unlock(&reg.lock);
	/* A job may still hold a dup: it sees the agent gone at its next request. */
	uv_poll_stop(&a->poll);
	safe_close(a->fd);
	a->fd = -1;
	uv_close((uv_handle_t *)&a->poll, on_handle_closed_free);
}

static void on_agent_event(uv_poll_t *h, int status, int events)
{
	struct agent *a = h->data;

	(void)status;
	(void)events;
	log_info("pid %d: agent disconnected", (int)a->pid);
	agent_drop(a);
}

/* Take a off list (of *n entries), stop watching it, close it. */
static void list_drop(struct agent **list, unsigned *n, struct agent *a)
{
	unlink_from(list, a);
	(*n)--;
	uv_poll_stop(&a->poll);
	safe_close(a->fd);
	a->fd = -1;
	uv_close((uv_handle_t *)&a->poll, on_handle_closed_free);
}

static void pending_drop(struct agent *q)
{
	list_drop(&reg.pending, &reg.n_pending, q);
}

static void refused_drop(struct agent *a)
{
	list_drop(&reg.refused, &reg.n_refused, a);
}

static void on_refused_event(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	refused_drop(h->data);
}

/* A tenant whose policy waits for this agent gets its job now. */
static void agent_arrived(struct migd *d, pid_t pid, uint64_t starttime)
{
	struct tenant *t = tenant_find(d, pid);

	if (!t || t->starttime != starttime || t->job || !t->policy || d->stopping)
		return;
	if (t->state == TENANT_WAITING_AGENT ||
	    (t->state == TENANT_FAILED && t->agent_wait_since_ms)) {
		t->state = TENANT_IDLE;
		t->agent_wait_since_ms = 0;
		discovery_queue_policy_job(d, t);
	}
}

static void on_pending_readable(uv_poll_t *h, int status, int events)
{
	struct agent *a = h->data, *old = NULL;
	uint64_t start;
	pid_t pid = 0;
	uid_t uid;
	int r;

	(void)events;
	r = status < 0 ? -EIO : mig_agent_read_hello(a->fd, &pid);
	if (r == -EAGAIN)
		return;
	if (r == -EPROTONOSUPPORT) {
		log_warning("pid %d: its libmig-agent.so speaks another agent protocol than this "
			    "migd: refused, the tenant is not migrated through it; restart the "
			    "tenant to load the current agent (an agent before protocol 2 can "
			    "report a thread stopped while it still writes its stack)",
			    (int)pid);
		if (reg.n_refused >= AGENT_MAX_REFUSED) {
			pending_drop(a);
			return;
		}
		/* Kept open and unread until the tenant ends: closed, it would connect again. */
		unlink_from(&reg.pending, a);
		reg.n_pending--;
		a->pid = pid;
		a->next = reg.refused;
		reg.refused = a;
		reg.n_refused++;
		uv_poll_start(&a->poll, UV_DISCONNECT, on_refused_event);
		return;
	}
	if (r < 0) {
		log_debug("agent socket: a connection without a valid hello dropped: %s",
			  strerror(-r));
		pending_drop(a);
		return;
	}
	r = proc_pid_info(pid, &uid, &start);
	if (r < 0) {
		log_debug("agent socket: pid %d is gone or not a process we serve", (int)pid);
		pending_drop(a);
		return;
	}
	unlink_from(&reg.pending, a);
	reg.n_pending--;
	a->pid = pid;
	a->starttime = start;
	uv_poll_start(&a->poll, UV_DISCONNECT, on_agent_event);

	pthread_mutex_lock(&reg.lock);
	/* A process that connects again (a restarted agent) replaces its old connection. */
	for (struct agent *e = reg.agents; e; e = e->next)
		if (e->pid == pid)
			old = e;
	a->next = reg.agents;
	reg.agents = a;
	pthread_mutex_unlock(&reg.lock);
	if (old)
		agent_drop(old);
	log_info("pid %d (uid %u): agent connected", (int)pid, (unsigned)uid);
	agent_arrived(reg.d, pid, start);
}

static void on_listen_readable(uv_poll_t *h, int status, int events)
{
	(void)h;
	(void)events;
	if (status < 0)
		return;
	for (;;) {
		struct agent *q;
		/* Blocking: jobs use it (the hello is read with MSG_DONTWAIT). */
		int fd = accept4(reg.listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning_errno(errno, "agent socket: accept: %m");
			return;
		}
		if (reg.n_pending >= AGENT_MAX_PENDING) {
			log_debug("agent socket: too many connections without hello, one dropped");
			safe_close(fd);
			continue;
		}
		q = calloc(1, sizeof(*q));
		if (!q || uv_poll_init(reg.d->loop, &q->poll, fd) < 0) {
			free(q);
			safe_close(fd);
			continue;
		}
		q->fd = fd;
		q->since_ms = uv_now(reg.d->loop);
		q->poll.data = q;
		q->next = reg.pending;
		reg.pending = q;
		reg.n_pending++;
		uv_poll_start(&q->poll, UV_READABLE, on_pending_readable);
	}
}

static void on_sweep(uv_timer_t *h)
{
	uint64_t now = uv_now(h->loop);

	for (struct agent *q = reg.pending, *next; q; q = next) {
		next = q->next;
		if (now - q->since_ms >= AGENT_HELLO_MS)
			pending_drop(q);
	}
}

int agents_start(struct migd *d)
{
	const char *path = d->cfg->agent_socket;
	int r;

	reg.d = d;
	if (!path) {
		log_info("agent socket off (agent_socket = none): attach is by ptrace only");
		return 0;
	}
	r = mig_agent_listen(path, &reg.listen_fd);
	if (r < 0)
		return log_error_errno(r, "Failed to listen for agents on %s: %m", path);
	reg.path = strdup(path);
	if (!reg.path || fcntl(reg.listen_fd, F_SETFL, O_NONBLOCK) < 0 ||
	    uv_poll_init(d->loop, &reg.listen_poll, reg.listen_fd) < 0) {
		agents_stop(d);
		return -ENOMEM;
	}
	reg.listening = true;
	uv_poll_start(&reg.listen_poll, UV_READABLE, on_listen_readable);
	uv_timer_init(d->loop, &reg.sweep);
	reg.sweep_open = true;
	uv_timer_start(&reg.sweep, on_sweep, AGENT_HELLO_MS, AGENT_HELLO_MS);
	log_info("listening for agents on %s", path);
	return 0;
}

void agents_stop(struct migd *d)
{
	(void)d;
	while (reg.pending)
		pending_drop(reg.pending);
	while (reg.refused)
		refused_drop(reg.refused);
	while (reg.agents)
		agent_drop(reg.agents);
	if (reg.listening) {
		uv_poll_stop(&reg.listen_poll);
		uv_close((uv_handle_t *)&reg.listen_poll, NULL);
		reg.listening = false;
	}
	if (reg.sweep_open) {
		uv_close((uv_handle_t *)&reg.sweep, NULL);
		reg.sweep_open = false;
	}
	reg.listen_fd = safe_close(reg.listen_fd);
	if (reg.path) {
		/* Agents keep retrying quietly until a new migd listens here again. */
		(void)unlink(reg.path);
		free(reg.path);
		reg.path = NULL;
	}
}

static struct agent *find_locked(pid_t pid)
{
	for (struct agent *a = reg.agents; a; a = a->next)
		if (a->pid == pid && a->fd >= 0)
			return a;
	return NULL;
}

bool agents_connected(pid_t pid, uint64_t starttime)
{
	bool r;

	pthread_mutex_lock(&reg.lock);
	struct agent *a = find_locked(pid);

	r = a && a->starttime == starttime;
	pthread_mutex_unlock(&reg.lock);
	return r;
}

int agents_borrow(pid_t pid)
{
	uint64_t start = 0, now;
	int fd = -ENOENT;
	uid_t uid;

	pthread_mutex_lock(&reg.lock);
	struct agent *a = find_locked(pid);

	if (a) {
		start = a->starttime;
		fd = fcntl(a->fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			fd = -errno;
	}
	pthread_mutex_unlock(&reg.lock);
	if (fd < 0)
		return fd;
	/* The pid must still be the process that connected. */
	if (proc_pid_info(pid, &uid, &now) < 0 || now != start) {
		safe_close(fd);
		return -ENOENT;
	}
	return fd;
}

bool agents_policy_must_wait(struct migd *d, struct tenant *t, const struct policy *p)
{
	uint64_t now = uv_now(d->loop);

	if (p->attach != MIG_ATTACH_AGENT || agents_connected(t->pid, t->starttime)) {
		t->agent_wait_since_ms = 0;
		return false;
	}
	if (!t->agent_wait_since_ms) {
		t->agent_wait_since_ms = now ? now : 1;
		t->state = TENANT_WAITING_AGENT;
		log_info("policy %s: pid %d waits for its agent (attach = agent) on %s", p->name,
			 (int)t->pid, d->cfg->agent_socket);
		return true;
	}
	if (t->state == TENANT_WAITING_AGENT &&
	    now - t->agent_wait_since_ms >= d->cfg->agent_wait_ms) {
		char *msg = NULL;

		if (asprintf(&msg,
			     "no agent connected within %" PRIu64 "s (attach = agent): start the "
			     "tenant with LD_PRELOAD=libmig-agent.so%s%s",
			     d->cfg->agent_wait_ms / 1000,
			     strcmp(d->cfg->agent_socket, MIG_AGENT_SOCKET_DEFAULT)
				     ? " and MIGD_AGENT_SOCKET="
				     : "",
			     strcmp(d->cfg->agent_socket, MIG_AGENT_SOCKET_DEFAULT)
				     ? d->cfg->agent_socket
				     : "") < 0)
			msg = NULL;
		log_warning("policy %s: pid %d: %s", p->name, (int)t->pid, msg ? msg : "no agent");
		free(t->last_error);
		t->last_error = msg;
		t->state = TENANT_FAILED;
	}
	return true;
}
