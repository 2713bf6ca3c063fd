/*
 * agentproto.h - the wire protocol between libmig-agent.so (inside a
 * tenant) and libmig (in migd), over a unix SOCK_SEQPACKET socket: one
 * message per datagram, fixed little structs in host byte order (both ends
 * run on the same machine).
 *
 *   agent -> migd   HELLO once after connecting.
 *   migd  -> agent  REQ; the agent's helper thread runs it and answers RESP
 *                   with the same seq. CREATE's answer carries the new uffd
 *                   with SCM_RIGHTS.
 *
 * The agent only closes fds it created itself (CLOSE of another fd gives
 * -EBADF), so a confused daemon cannot close the host's own files.
 */
#ifndef MIG_AGENTPROTO_H
#define MIG_AGENTPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define MIG_AGENT_MAGIC 0x4147494du /* "MIGA" */
/*
 * 2: STOP answers 0 only once every stopped thread waits in the handler's
 * futex (agent/stop.c, waits_in_handler). An agent of version 1 could
 * count a thread stopped while it still wrote its stack, and a madvise
 * step then lost that write (the tenant died: docs/engine.md, "A tenant
 * thread crashed after an agent stop"). migd refuses version 1 agents.
 */
#define MIG_AGENT_VERSION    2
#define MIG_AGENT_MAX_RUNS   64
#define MIG_AGENT_SOCKET_ENV "MIGD_AGENT_SOCKET"

enum mig_agent_op {
	MIG_AGENT_CREATE = 1, /* create a full-mode uffd; resp.fd, SCM_RIGHTS */
	MIG_AGENT_ZAP,	      /* madvise(DONTNEED) runs[0..nruns) */
	MIG_AGENT_MAP,	      /* mmap(hint arg[1], arg[0], RW, PRIVATE|ANON); resp.val = addr */
	MIG_AGENT_UNMAP,      /* munmap(arg[0], arg[1]) */
	MIG_AGENT_MOVE,	      /* UFFDIO_MOVE dst=arg[0] src=arg[1] len=arg[2] mode=arg[3] */
	MIG_AGENT_CLOSE,      /* close(arg[0]) if the agent created it */
	MIG_AGENT_STOP,	      /* stop the other threads (agent/stop.c), wait arg[0] ms */
	MIG_AGENT_RESUME,     /* let the stopped threads go */
};

/*
 * STOP's answer: 0 when every thread of the tenant but the helper waits
 * in the agent's signal handler (blocked in its futex wait, where it
 * writes no memory until RESUME), -EINPROGRESS when some have not got there
 * yet (ask again), other -errno when the agent cannot stop them (its
 * signal is the host's, too many threads): then it has let all go again.
 * Agents before STOP answer -EOPNOTSUPP.
 */

/*
 * CREATE's resp.val: the uffd is one the agent kept from an earlier migd
 * (which may have done UFFDIO_API on it already; migd reads its state from
 * fdinfo). Agents before this flag always answer 0.
 */
#define MIG_AGENT_CREATE_KEPT 1u

struct mig_agent_hello {
	uint32_t magic;
	uint32_t version;
	int32_t pid;	 /* in the agent's pid namespace; migd trusts SO_PEERCRED */
	int32_t uffd_fd; /* a uffd the agent still holds (after a daemon restart), or -1 */
};

struct mig_agent_run {
	uint64_t start, end;
};

struct mig_agent_req {
	uint32_t magic;
	uint32_t op;
	uint64_t seq;
	uint64_t arg[4];
	uint32_t nruns;
	uint32_t pad;
	struct mig_agent_run runs[MIG_AGENT_MAX_RUNS]; /* only nruns are sent */
};

struct mig_agent_resp {
	uint32_t magic;
	uint32_t op;
	uint64_t seq;
	int64_t ret; /* 0 or -errno */
	uint64_t val;
	int32_t fd; /* CREATE: the uffd's number in the tenant */
	int32_t pad;
};

/*
 * In libmig-agent.so: start the agent's helper thread. Its constructor
 * does this already; a program linked with the agent may call it again
 * harmlessly. In a forked child (which runs without an agent) it starts a
 * new one for the child. Returns 0 or -errno.
 */
int mig_agent_start(void);

/* Room for the one fd a message may carry (SCM_RIGHTS). */
union mig_agent_fdbuf {
	struct cmsghdr h;
	char buf[CMSG_SPACE(sizeof(int))];
};

/* Attach fd to *mh as its SCM_RIGHTS, in *cm (both sides of the socket). */
static inline void mig_agent_attach_fd(struct msghdr *mh, union mig_agent_fdbuf *cm, int fd)
{
	memset(cm, 0, sizeof(*cm));
	mh->msg_control = cm->buf;
	mh->msg_controllen = sizeof(cm->buf);
	cm->h.cmsg_level = SOL_SOCKET;
	cm->h.cmsg_type = SCM_RIGHTS;
	cm->h.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&cm->h), &fd, sizeof(int));
}

#endif /* MIG_AGENTPROTO_H */
