/*
 * daemon.c - migd's life cycle on the loop: start-up of the handles,
 * reload (defaults -> parse -> validate -> swap, the old config kept on
 * any error), sd_notify and the watchdog, and an orderly stop.
 *
 * Stopping (SIGTERM/SIGINT) cancels every job; libmig finishes the window
 * it is in, so no tenant is left blocked or with pages missing, and each
 * job detaches before it ends. The loop ends only after the last job did.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "daemon.h"
#include "jobs.h"
#include "log.h"

struct migd *migd_global;

void migd_update_status(struct migd *d)
{
	if (d->stopping)
		return;
	sd_notifyf(0, "STATUS=%zu tenants, %u jobs running, %zu policies%s", d->n_tenants,
		   d->running_jobs, d->cfg->n_policies,
		   d->reload_failed ? "; last reload failed, old configuration kept" : "");
}

static uint64_t monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void on_scan(uv_timer_t *t)
{
	discovery_scan(t->data);
}

int migd_reload(struct migd *d, char **ret_msg)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	char *msg;
	int r;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=Reloading",
		   monotonic_usec());
	d->stats.reloads++;
	r = config_load(d->config_path, &cfg, &errs);
	if (r < 0) {
		msg = config_errors_join(&errs);
		d->stats.reload_failures++;
		d->reload_failed = true;
		log_error("reload failed, keeping the old configuration: %s",
			  msg ? msg : strerror(-r));
		config_errors_clear(&errs);
		sd_notify(0, "READY=1");
		migd_update_status(d);
		if (ret_msg) {
			char *full = NULL;

			if (asprintf(&full, "configuration not reloaded, the old one stays: %s",
				     msg ? msg : strerror(-r)) < 0)
				full = NULL;
			*ret_msg = full;
		}
		free(msg);
		return -EINVAL;
	}
	if (strcmp(cfg->socket_path, d->cfg->socket_path) != 0)
		log_warning("socket path change to %s takes effect at restart", cfg->socket_path);
	if (!cfg->agent_socket != !d->cfg->agent_socket ||
	    (cfg->agent_socket && strcmp(cfg->agent_socket, d->cfg->agent_socket) != 0))
		log_warning("agent_socket change to %s takes effect at restart",
			    cfg->agent_socket ? cfg->agent_socket : "none");
	/* Jobs hold copies of what they need: the old config can go at once. */
	free(cfg->socket_path);
	cfg->socket_path = strdup(d->cfg->socket_path);
	free(cfg->agent_socket);
	cfg->agent_socket = d->cfg->agent_socket ? strdup(d->cfg->agent_socket) : NULL;
	config_free(d->cfg);
	d->cfg = cfg;
	d->reload_failed = false;
	migd_log_max_level = cfg->log_level;
	if (discovery_init(d) < 0)
		log_warning("cgroup discovery is off until the next reload");
	uv_timer_set_repeat(&d->scan_timer, cfg->scan_interval_ms);
	log_info("configuration reloaded from %s: %zu policies", cfg->source, cfg->n_policies);
	discovery_scan(d);
	sd_notify(0, "READY=1");
	migd_update_status(d);
	return 0;
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Signals and timers; client pipes close themselves once their replies are out. */
static void migd_close_own_handles(struct migd *d)
{
	close_handle((uv_handle_t *)&d->sig_term);
	close_handle((uv_handle_t *)&d->sig_int);
	close_handle((uv_handle_t *)&d->sig_hup);
	close_handle((uv_handle_t *)&d->scan_timer);
	close_handle((uv_handle_t *)&d->watchdog_timer);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void migd_shutdown(struct migd *d)
{
	if (!d->stopping) {
		d->stopping = true;
		sd_notify(0, "STOPPING=1\nSTATUS=Stopping: finishing the current windows");
		log_info("stopping: cancelling jobs, tenants are left running");
		ctl_close_server(d);
		uv_timer_stop(&d->scan_timer);
		jobs_cancel_all(d);
	}
	for (struct job *j = d->jobs; j; j = j->next)
		if (j->state == JOB_QUEUED || j->state == JOB_RUNNING)
			return; /* after_work_cb calls us again. */
	/* Every job ended and detached: close the rest, uv_run returns. */
	ctl_close(d);
	agents_stop(d);
	migd_close_own_handles(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct migd *d = s->data;

	if (signum == SIGHUP) {
		log_info("SIGHUP: reloading");
		migd_reload(d, NULL);
		return;
	}
	migd_shutdown(d);
}

static void on_watchdog(uv_timer_t *t)
{
	/* Sent from the loop: it proves the loop is not stuck on a tenant. */
	(void)t;
	sd_notify(0, "WATCHDOG=1");
}

void migd_close_all_handles(struct migd *d)
{
	uv_walk(d->loop, close_walk, NULL);
}

int migd_start(struct migd *d)
{
	uint64_t wd_usec = 0;
	int r;

	migd_global = d;
	d->loop = uv_default_loop();
	d->start_ms = uv_now(d->loop);

	uv_signal_init(d->loop, &d->sig_term);
	uv_signal_init(d->loop, &d->sig_int);
	uv_signal_init(d->loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
	signal(SIGPIPE, SIG_IGN);

	r = discovery_init(d);
	if (r < 0)
		return r;
	/* Tenants a dead migd left mid-window come first: before any client is served. */
	r = recovery_run(d);
	if (r < 0)
		return r;
	r = ctl_listen(d);
	if (r < 0)
		return r;
	r = agents_start(d);
	if (r < 0)
		return r;

	uv_timer_init(d->loop, &d->scan_timer);
	d->scan_timer.data = d;
	uv_timer_start(&d->scan_timer, on_scan, 0, d->cfg->scan_interval_ms);
	uv_timer_init(d->loop, &d->watchdog_timer);
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0)
		uv_timer_start(&d->watchdog_timer, on_watchdog, 0,
			       wd_usec / 2000 ? wd_usec / 2000 : 1);

	log_info("migd %s started: config %s, %zu policies", MIG_VERSION, d->cfg->source,
		 d->cfg->n_policies);
	sd_notify(0, "READY=1");
	migd_update_status(d);
	return 0;
}
