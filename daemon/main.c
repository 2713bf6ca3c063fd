/*
 * main.c - migd's entry point: options, --check-config, and the loop.
 * The daemon's life cycle is in daemon.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "agents.h"
#include "daemon.h"
#include "jobs.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: migd [--config FILE] [--foreground] [--check-config]\n"
		   "\n"
		   "Moves the anonymous memory of running processes between NUMA nodes.\n"
		   "\n"
		   "  -c, --config FILE    configuration (default: the embedded conf/migd.ini)\n"
		   "  -f, --foreground     stay in the foreground (migd never forks; accepted\n"
		   "                       for scripts and unit files)\n"
		   "  -t, --check-config   print what the configuration says, or each error\n"
		   "                       with file:line, and exit (0 valid, 1 invalid)\n"
		   "  -h, --help           this text\n"
		   "  -V, --version        print the version\n"
		   "\n"
		   "See migd(8), migd.conf(5), migctl(1).\n");
}

/*
 * Where a valid configuration cannot work on this host: warnings on
 * stderr, the exit status stays 0 (the host may change: nodes come
 * online, the sysctl is set).
 */
static void check_host(const struct config *cfg)
{
	char want[256], here[256], scope[8] = "";
	struct mig_nodes online, missing;
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");

	if (f) {
		if (!fgets(scope, sizeof(scope), f))
			scope[0] = 0;
		fclose(f);
	}
	mig_nodes_online(&online);
	mig_format_nodes(&online, here, sizeof(here));
	for (size_t i = 0; i < cfg->n_policies; i++) {
		const struct policy *p = &cfg->policies[i];

		for (size_t k = 0; k < ARRAY_SIZE(missing.bits); k++)
			missing.bits[k] = p->nodes.bits[k] & ~online.bits[k];
		if (mig_nodes_count(&missing)) {
			mig_format_nodes(&missing, want, sizeof(want));
			fprintf(stderr,
				"%s: warning: nodes: %s not on this host (its nodes: %s); its jobs "
				"fail until they are\n",
				p->file, want, here);
		}
		if (p->attach != MIG_ATTACH_AGENT && scope[0] == '3')
			fprintf(stderr,
				"%s: warning: attach = %s: ptrace is off on this host "
				"(kernel.yama.ptrace_scope = 3): only tenants with an agent can be "
				"migrated\n",
				p->file, policy_attach_name(p->attach));
		if (p->attach == MIG_ATTACH_AGENT &&
		    strcmp(cfg->agent_socket, MIG_AGENT_SOCKET_DEFAULT) != 0)
			fprintf(stderr,
				"%s: warning: attach = agent: the agent looks for %s; tenants "
				"need MIGD_AGENT_SOCKET=%s too\n",
				p->file, MIG_AGENT_SOCKET_DEFAULT, cfg->agent_socket);
	}
}

static int check_config(const char *path)
{
	struct config_errors errs = { 0 };
	struct config *cfg = NULL;
	int r;

	r = config_load(path, &cfg, &errs);
	if (r < 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		if (errs.n == 0)
			fprintf(stderr, "%s: %s\n", path ? path : "(embedded default)",
				strerror(-r));
		fprintf(stderr, "configuration invalid: %zu error%s\n", errs.n,
			errs.n == 1 ? "" : "s");
		config_errors_clear(&errs);
		return EXIT_FAILURE;
	}
	config_dump(cfg, stdout);
	check_host(cfg);
	config_free(cfg);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	struct config_errors errs = { 0 };
	struct migd d = { 0 };
	const char *path = NULL;
	bool check = false;
	char pool[16];
	int c, r;

	while ((c = getopt_long(argc, argv, "c:fthV", opts, NULL)) >= 0) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			break;
		case 't':
			check = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("migd %s\n", MIG_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "migd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (check)
		return check_config(path);

	migd_log_init();
	r = config_load(path, &d.cfg, &errs);
	if (r < 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.msgs[i]);
		config_errors_clear(&errs);
		sd_notifyf(0, "STATUS=Invalid configuration\nERRNO=%d", -r);
		return EXIT_FAILURE;
	}
	migd_log_max_level = d.cfg->log_level;
	d.config_path = path ? strdup(path) : NULL;

	/* Jobs run on libuv's pool: room for max_jobs migrations plus placement reads. */
	snprintf(pool, sizeof(pool), "%u", d.cfg->max_jobs + 4);
	setenv("UV_THREADPOOL_SIZE", pool, 0);
	r = migd_start(&d);
	if (r < 0)
		goto out;

	uv_run(d.loop, UV_RUN_DEFAULT);
	r = 0;
	log_info("stopped");
out:
	if (r < 0) {
		sd_notifyf(0, "STATUS=Failed to start\nERRNO=%d", -r);
		d.stopping = true;
		ctl_close(&d);
		agents_stop(&d);
		migd_close_all_handles(&d);
		uv_run(d.loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(d.loop);
	jobs_free_all(&d);
	discovery_done(&d);
	config_free(d.cfg);
	free(d.config_path);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
