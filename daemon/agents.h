/*
 * agents.h - the agents of tenants connected to migd's agent socket
 * (agents.c). The loop thread starts and stops the socket and answers
 * policies; job threads borrow a connection for one attach.
 */
#ifndef MIGD_AGENTS_H
#define MIGD_AGENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon.h"

/* Listen on cfg->agent_socket (nothing when it is none). Returns 0 or -errno. */
int agents_start(struct migd *d);
/* Drop every agent connection, close and unlink the socket. */
void agents_stop(struct migd *d);
/* Whether the process pid that started at starttime has its agent connected. */
bool agents_connected(pid_t pid, uint64_t starttime);
/*
 * Any thread: a dup of the connection of pid's agent, to pass as
 * mig_attach_opts.agent_fd and close afterwards. Returns the fd, or
 * -ENOENT (no agent, or pid is no longer the process that connected).
 */
int agents_borrow(pid_t pid);
/*
 * Loop thread, before a policy job is queued for t: true when the job must
 * wait (attach = agent and no agent yet: t goes "waiting-for-agent", and
 * "failed" with the reason once agent_wait has passed).
 */
bool agents_policy_must_wait(struct migd *d, struct tenant *t, const struct policy *p);

#endif /* MIGD_AGENTS_H */
