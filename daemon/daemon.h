/*
 * daemon.h - migd's state, owned by the libuv loop thread. Job threads
 * never touch it; they see only their own struct job (jobs.h).
 */
#ifndef MIGD_DAEMON_H
#define MIGD_DAEMON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
/* util.h before uv.h: its MIN/MAX then win over sys/param.h quietly. */
#include "util.h"
#include <uv.h>

#include "config.h"

struct job;
struct client;

enum tenant_state {
	TENANT_IDLE,	  /* found, nothing to do yet (manual trigger, or done) */
	TENANT_QUEUED,	  /* a policy job is waiting */
	TENANT_MIGRATING, /* a job runs on it */
	TENANT_FAILED,	  /* the last job failed: see last_error */
	/* A crash of an earlier migd left it mid-window and recovery failed: see last_error. */
	TENANT_UNRECOVERED,
	/* attach = agent: no agent connected yet (agents.c). */
	TENANT_WAITING_AGENT,
};

/* A process migd may act on: found through a policy, or named by root. */
struct tenant {
	pid_t pid;
	uint64_t starttime; /* /proc/PID/stat start time, against pid reuse */
	uid_t uid;
	char *cgroup;
	char *policy; /* NULL: named explicitly by root over the socket */
	enum tenant_state state;
	char *last_error;
	uint64_t last_run_ms;	      /* loop time the last policy job finished, 0: never */
	uint64_t jobs;		      /* jobs run on it */
	unsigned gen;		      /* scan generation it was last seen in */
	struct job *job;	      /* the job running or queued on it */
	uint64_t agent_wait_since_ms; /* loop time it began to wait for its agent, 0: not */
};

struct migd_stats {
	uint64_t jobs_started, jobs_succeeded, jobs_failed, jobs_cancelled;
	uint64_t pages_moved, pages_failed;
	uint64_t reloads, reload_failures;
	uint64_t requests, bad_requests, clients, clients_dropped;
	uint64_t scans;
};

struct migd {
	uv_loop_t *loop;
	struct config *cfg;
	char *config_path; /* NULL: embedded default */
	char *cgroup_root;
	uint64_t start_ms;
	bool stopping;
	bool reload_failed; /* the last reload was refused: the status says so */

	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t scan_timer, watchdog_timer;
	uv_pipe_t server;
	bool server_open;
	bool socket_activated;
	char *bound_path; /* the socket path we created and must unlink */

	struct tenant **tenants;
	size_t n_tenants;
	unsigned scan_gen;

	struct job *jobs; /* every job, newest first; finished ones are trimmed */
	uint64_t next_job_id;
	unsigned running_jobs;	     /* migrations */
	unsigned running_placements; /* placement reads */

	struct client *clients;
	struct migd_stats stats;
};

extern struct migd *migd_global;

/* Re-read the configuration. Returns 0 or -EINVAL, *ret_msg (malloc'd) says why. */
int migd_reload(struct migd *d, char **ret_msg);
void migd_update_status(struct migd *d);
void migd_shutdown(struct migd *d);
/* Set up signals, timers, discovery and the socket; say READY. Returns 0 or -errno. */
int migd_start(struct migd *d);
void migd_close_all_handles(struct migd *d);

/* recovery.c: recover every journal in state_dir (before serving). Returns 0 or -errno. */
int recovery_run(struct migd *d);

/* discovery.c */
int discovery_init(struct migd *d);
void discovery_scan(struct migd *d);
struct tenant *tenant_find(struct migd *d, pid_t pid);
/* Drop the entry of a tenant without a job (its pid names a new process). */
int tenant_forget(struct migd *d, struct tenant *t);
/* Add pid as an explicitly named tenant (root only). */
int tenant_add_explicit(struct migd *d, pid_t pid, struct tenant **ret);
void discovery_done(struct migd *d);
/* Read the owner uid and start time of pid. Returns 0, -ESRCH. */
int proc_pid_info(pid_t pid, uid_t *ret_uid, uint64_t *ret_starttime);
const char *tenant_state_name(enum tenant_state s);
/* Queue a job for t by its policy now (an agent it waited for has come). */
void discovery_queue_policy_job(struct migd *d, struct tenant *t);

/* ctl.c */
int ctl_listen(struct migd *d);
void ctl_close(struct migd *d);
/* Stop accepting connections; clients stay until their jobs end. */
void ctl_close_server(struct migd *d);
/* Send one message to a client (dropped when it is gone). */
void client_send(struct client *c, json_object *o);
struct client *client_ref(struct client *c);
void client_unref(struct client *c);
bool client_alive(const struct client *c);
/* The client process, as SO_PEERCRED told at accept. */
pid_t client_pid(const struct client *c);

/* commands.c */
void command_dispatch(struct migd *d, struct client *c, uid_t uid, json_object *req);
/* One request line from c (peer uid): parse it, answer a malformed one, dispatch. */
void command_line(struct migd *d, struct client *c, uid_t uid, const char *line, size_t len);

#endif /* MIGD_DAEMON_H */
