/*
 * config.h - migd's configuration: the main file (migd.ini) and the
 * per-tenant-group policy files of its policy directory.
 *
 * Loading follows one path: defaults -> parse -> validate. A config that
 * fails anywhere is thrown away whole and every problem is reported with
 * its file:line, so a reload can keep the old config.
 */
#ifndef MIGD_CONFIG_H
#define MIGD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "mig.h"

enum policy_trigger {
	TRIGGER_ON_ATTACH,
	TRIGGER_INTERVAL,
	TRIGGER_MANUAL,
};

enum policy_huge {
	HUGE_KEEP,  /* keep fully covered THPs whole (move or re-collapse) */
	HUGE_SPLIT, /* let them be split into 4 KiB pages */
	HUGE_SKIP,  /* leave large folios where they are */
};

/* Which VMAs a policy migrates. */
#define POLICY_VMA_HEAP	 (1u << 0)
#define POLICY_VMA_ANON	 (1u << 1) /* anonymous private mmaps */
#define POLICY_VMA_STACK (1u << 2)

struct policy {
	char *name;   /* file name without .ini */
	char *file;   /* path it was read from */
	char *cgroup; /* glob on the cgroup path below the cgroup2 root, "/a/b-*.slice" (fnmatch) */
	struct mig_nodes nodes;
	enum policy_trigger trigger;
	uint64_t interval_ms; /* TRIGGER_INTERVAL */
	uint64_t min_region;  /* bytes; smaller VMAs are left alone */
	uint64_t window;      /* bytes per migration window */
	uint64_t rate_limit;  /* bytes/s, 0 = unlimited */
	enum policy_huge huge;
	enum mig_attach_method attach;
	unsigned vmas;	      /* POLICY_VMA_* */
	bool compact_after;   /* merge the tenant's unmerged VMAs after each migration */
	unsigned window_line; /* line of 'window' in file, 0: the default */
};

struct config {
	char *source; /* file path, or "(embedded default)" */
	char *socket_path;
	unsigned socket_mode;
	char *socket_group; /* NULL: root's group */
	/*
	 * Where tenants' agents (libmig-agent.so) connect; NULL: none. Unset,
	 * it is agent.sock beside the control socket.
	 */
	char *agent_socket;
	bool agent_socket_set;
	uint64_t agent_wait_ms; /* how long attach = agent waits for an agent */
	bool hand_device;	/* hand /dev/userfaultfd to tenants that cannot make a uffd */
	char *policy_dir;
	char *state_dir;   /* crash journals (<pid>-<starttime>.journal) */
	char *runtime_dir; /* tmpfs: staging files in staging/ */
	char *cgroup_root; /* NULL: autodetect the cgroup2 mount */
	uint64_t scan_interval_ms;
	unsigned max_jobs;
	uint64_t max_window;  /* bytes: the largest window a policy or a client may ask for */
	bool movefirst;	      /* window_protocol = movefirst (default; MIG_WINDOW_MOVEFIRST) */
	bool fault_rt;	      /* fault_priority = realtime (default; mig_migrate_opts.fault_rt) */
	uint64_t watchdog_ms; /* unused when systemd gives WATCHDOG_USEC */
	int log_level;
	struct policy *policies;
	size_t n_policies;
};

/* A list of human-readable problems, "file:line: what". */
struct config_errors {
	char **msgs;
	size_t n;
};

void config_errors_add(struct config_errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void config_errors_clear(struct config_errors *e);
/* All messages joined with "; " (malloc'd, NULL when there are none). */
char *config_errors_join(const struct config_errors *e);

/* The default configuration compiled into migd (conf/migd.ini). */
extern const char migd_default_config[];

/*
 * Load a configuration: path (NULL = the embedded default), then every
 * *.ini in its policy_dir (a missing directory means no policies).
 * Returns 0 and *ret_config, or -EINVAL with every problem in errs,
 * -ENOENT when path does not exist, -ENOMEM.
 */
int config_load(const char *path, struct config **ret_config, struct config_errors *errs);
/* Parse a main configuration from a string; name is used in messages. */
int config_parse_string(const char *text, const char *name, struct config **ret_config,
			struct config_errors *errs);
/* Parse one policy file. Returns 0, -EINVAL (errs filled), -ENOENT, -ENOMEM. */
int policy_parse_file(const char *path, struct policy *ret, struct config_errors *errs);
int policy_parse_string(const char *text, const char *name, const char *file, struct policy *ret,
			struct config_errors *errs);
/*
 * Read every *.ini of dir (sorted) into cfg->policies and check each
 * against cfg's limits (max_window). Entries that are not regular files
 * (FIFO, device, directory, or a symlink to one) are skipped with a
 * warning and never opened blocking.
 */
int config_load_policies(struct config *cfg, const char *dir, struct config_errors *errs);

void policy_done(struct policy *p);
struct config *config_free(struct config *cfg);

/* Print what was understood, in the same INI form. */
void config_dump(const struct config *cfg, FILE *f);

const char *policy_trigger_name(enum policy_trigger t);
const char *policy_huge_name(enum policy_huge h);
const char *policy_attach_name(enum mig_attach_method m);
/* "heap,anon,stack" */
void policy_vmas_format(unsigned vmas, char *buf, size_t size);

/* Parse "500ms", "5s", "2m", "1h" or a bare number of seconds. */
int config_parse_duration(const char *s, uint64_t *ret_ms);

/* The first policy whose glob matches cgroup (a path below the root), or NULL. */
const struct policy *config_match_cgroup(const struct config *cfg, const char *cgroup);

#endif /* MIGD_CONFIG_H */
