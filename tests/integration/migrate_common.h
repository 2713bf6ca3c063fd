/*
 * migrate_common.h - shared by the tests/integration/migrate_*.c tests:
 * start the writer tenant (tests/tenants/writer.c) with pipes, talk to it,
 * attach, pick the target (node 1 on a machine with 2+ nodes, else node 0
 * with force, which still runs every step), run mig_migrate and print the
 * figures. Only the processes started here are ever signalled, by pid.
 */
#ifndef MIGRATE_COMMON_H
#define MIGRATE_COMMON_H

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "mig.h"

#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif

/* Does this kernel offer UFFDIO_MOVE (asked on a userfaultfd of our own)? */
static inline bool kernel_has_move(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	bool has;

	if (fd < 0)
		return false;
	has = ioctl(fd, UFFDIO_API, &api) == 0 && (api.features & UFFD_FEATURE_MOVE);
	close(fd);
	return has;
}

#define SKIP(...)                             \
	do {                                  \
		printf("SKIP: " __VA_ARGS__); \
		printf("\n");                 \
		exit(77);                     \
	} while (0)
#define FAIL(...)                             \
	do {                                  \
		printf("FAIL: " __VA_ARGS__); \
		printf("\n");                 \
		exit(1);                      \
	} while (0)

struct wtenant {
	pid_t pid;
	FILE *in, *out;
	uint64_t addr, len;
	mig_tenant *t;
};

static inline int count_nodes(void)
{
	DIR *d = opendir("/sys/devices/system/node");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "node", 4) && e->d_name[4] >= '0' && e->d_name[4] <= '9')
			n++;
	closedir(d);
	return n ? n : 1;
}

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Path of a sibling program in build/tests/. */
static inline void prog_path(const char *self, const char *rel, char *buf, size_t size)
{
	const char *slash = strrchr(self, '/');
	int dir = slash ? (int)(slash - self) : 1;

	snprintf(buf, size, "%.*s/../%s", dir, slash ? self : ".", rel);
}

/* Start the writer tenant; uid >= 0: as that user (groups dropped). */
static inline void wt_start_as(struct wtenant *w, const char *self, const char *const *args,
			       int uid)
{
	int pin[2], pout[2];
	char prog[4096], line[256];
	const char *argv[32] = { "writer" };
	size_t a = 1;
	void *addr;
	int pid;

	prog_path(self, "tenants/writer", prog, sizeof(prog));
	for (; args && args[a - 1] && a < 31; a++)
		argv[a] = args[a - 1];
	argv[a] = NULL;
	if (pipe(pin) || pipe(pout))
		FAIL("pipe: %m");
	w->pid = fork();
	if (w->pid < 0)
		FAIL("fork: %m");
	if (w->pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		close(pin[1]);
		close(pout[0]);
		if (uid >= 0 && (setgroups(0, NULL) || setgid((gid_t)uid) || setuid((uid_t)uid)))
			_exit(126);
		execv(prog, (char **)argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	w->in = fdopen(pin[1], "w");
	w->out = fdopen(pout[0], "r");
	if (!fgets(line, sizeof(line), w->out) ||
	    sscanf(line, "READY %d %p %" SCNu64, &pid, &addr, &w->len) != 3)
		FAIL("writer did not start (%s)", prog);
	w->addr = (uint64_t)(uintptr_t)addr;
}

static inline void wt_start(struct wtenant *w, const char *self, const char *const *args)
{
	wt_start_as(w, self, args, -1);
}

/* Send a command, return its answer line (static buffer). */
static inline const char *wt_cmd(struct wtenant *w, const char *cmd)
{
	static char line[512];

	fprintf(w->in, "%s\n", cmd);
	fflush(w->in);
	if (!fgets(line, sizeof(line), w->out))
		return "EOF";
	line[strcspn(line, "\n")] = 0;
	return line;
}

/* Stop the writer; it checks every page. Returns its exit status. */
/*
 * A tenant that does not end within WT_STOP_S of "stop" is hung (a thread
 * left blocked in the kernel by us): say where each thread waits, kill it.
 */
#define WT_STOP_S 120
static pid_t wt_stop_pid;
static volatile sig_atomic_t wt_hung;

/* One /proc file of a tenant thread into buf (async-signal-safe). */
static inline void wt_read_proc(pid_t pid, const char *tid, const char *what, char *buf,
				size_t size)
{
	char path[320];
	int fd, n;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/%s", pid, tid, what);
	fd = open(path, O_RDONLY);
	n = fd >= 0 ? (int)read(fd, buf, size - 1) : 0;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
}

/* fn(pid, tid, ud) for each thread of pid; -errno when pid has no task list. */
static inline int wt_each_thread(pid_t pid, void (*fn)(pid_t pid, const char *tid, void *ud),
				 void *ud)
{
	char path[64];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			fn(pid, e->d_name, ud);
	closedir(d);
	return 0;
}

static inline void wt_dump_threads(pid_t pid, const char *why, int depth);

struct wt_dump {
	const char *why;
	int depth;
};

static inline void wt_dump_thread(pid_t pid, const char *tid, void *ud)
{
	const struct wt_dump *w = ud;
	char buf[2048], st[512], wchan[128], kids[256];
	const char *p;

	wt_read_proc(pid, tid, "stat", st, sizeof(st));
	wt_read_proc(pid, tid, "wchan", wchan, sizeof(wchan));
	wt_read_proc(pid, tid, "stack", buf, sizeof(buf));
	p = strrchr(st, ')');
	fprintf(stderr, "%s %d thread %s state %c waits in %s\n%s", w->why, pid, tid,
		p && p[1] ? p[2] : '?', wchan, buf);
	wt_read_proc(pid, tid, "children", kids, sizeof(kids));
	for (char *k = kids, *sp; w->depth < 2 && *k; k = sp) {
		pid_t c = (pid_t)strtol(k, &sp, 10);

		if (sp == k)
			break;
		wt_dump_threads(c, "  child", w->depth + 1);
	}
}

/*
 * Where each thread of a tenant (and of the children it has forked) waits:
 * its state, wchan and kernel stack (root reads it), on stderr. A tenant
 * that stops making progress names its cause with this.
 */
static inline void wt_dump_threads(pid_t pid, const char *why, int depth)
{
	struct wt_dump w = { why, depth };

	(void)wt_each_thread(pid, wt_dump_thread, &w);
}

/*
 * The VMAs of pid still registered with a userfaultfd (smaps VmFlags um,
 * uw or ui) that lie in [lo, hi), but the one that starts at skip (0:
 * none), each named on stderr after why. Between two jobs there must be
 * none, or the tenant's next fault, fork, munmap or mremap there waits
 * for a reader that is not there. Returns how many.
 */
static inline int wt_registered(pid_t pid, const char *why, uint64_t lo, uint64_t hi,
				uint64_t skip)
{
	unsigned long long s = 0, e = 0;
	char path[64], line[512];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long a, b;

		if (sscanf(line, "%llx-%llx ", &a, &b) == 2) {
			s = a;
			e = b;
			continue;
		}
		if (strncmp(line, "VmFlags:", 8) || e <= lo || s >= hi || (skip && s == skip) ||
		    !(strstr(line, " um") || strstr(line, " uw") || strstr(line, " ui")))
			continue;
		fprintf(stderr, "%s %d: vma %llx-%llx registered:%s", why, (int)pid, s, e, line + 8);
		n++;
	}
	if (f)
		fclose(f);
	return n;
}

/*
 * pid's threads as /proc/PID/task/TID/status shows them: how many, how
 * many have a tracer, how many block signal sig (0: not asked). With
 * skip_agent, libmig-agent.so's helper thread ("migd-agent") is left out.
 */
struct wt_threads {
	int n, traced, blocking;
	int sig, skip_agent;
};

static inline void wt_count_thread(pid_t pid, const char *tid, void *ud)
{
	struct wt_threads *t = ud;
	int agent = 0, traced = 0, blocking = 0;
	char path[320], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/status", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return; /* exited since */
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Name:\tmigd-agent", 16))
			agent = 1;
		else if (!strncmp(line, "TracerPid:", 10))
			traced = atol(line + 10) > 0;
		else if (t->sig > 0 && !strncmp(line, "SigBlk:", 7))
			blocking = strtoull(line + 7, NULL, 16) >> (t->sig - 1) & 1;
	}
	fclose(f);
	if (agent && t->skip_agent)
		return;
	t->n++;
	t->traced += traced;
	t->blocking += blocking;
}

static inline struct wt_threads wt_threads_of(pid_t pid, int sig, int skip_agent)
{
	struct wt_threads t = { .sig = sig, .skip_agent = skip_agent };
	int r = wt_each_thread(pid, wt_count_thread, &t);

	if (r < 0)
		FAIL("threads of %d: %s", pid, strerror(-r));
	return t;
}

static inline void wt_stop_alarm(int sig)
{
	(void)sig;
	wt_hung = 1;
	wt_dump_threads(wt_stop_pid, "HUNG tenant", 0);
	kill(wt_stop_pid, SIGKILL);
}

static inline int wt_stop(struct wtenant *w, uint64_t *max_us, uint64_t *p99_us)
{
	char line[512];
	int st = 0;

	wt_stop_pid = w->pid;
	wt_hung = 0;
	signal(SIGALRM, wt_stop_alarm);
	alarm(WT_STOP_S);
	fprintf(w->in, "stop\n");
	fflush(w->in);
	while (fgets(line, sizeof(line), w->out)) {
		fputs(line, stdout);
		if (max_us)
			sscanf(line, "STALL max_us=%" SCNu64 " p99_us=%" SCNu64, max_us, p99_us);
	}
	waitpid(w->pid, &st, 0);
	alarm(0);
	fclose(w->in);
	fclose(w->out);
	if (wt_hung) {
		printf("# the tenant hung after stop (threads above)\n");
		return 124;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static inline void wt_attach(struct wtenant *w)
{
	int r = mig_tenant_attach(w->pid, NULL, &w->t);

	if (r == -EPERM || r == -EACCES || r == -EOPNOTSUPP)
		SKIP("cannot attach: %s", strerror(-r));
	if (r < 0)
		FAIL("attach: %s", strerror(-r));
}

/*
 * Start the writer with args (NULL-ended), on node 0 where there are two
 * nodes (pick_target then takes node 1), attach it and let it write for
 * 100 ms: the whole-data tests' start.
 */
static inline void wt_start_source(struct wtenant *w, const char *self, const char *const *args)
{
	const char *a[24];
	size_t n = 0;

	while (args[n] && n < 20) {
		a[n] = args[n];
		n++;
	}
	if (count_nodes() >= 2) {
		a[n++] = "--node";
		a[n++] = "0";
	}
	a[n] = NULL;
	wt_start(w, self, a);
	wt_attach(w);
	usleep(100000);
}

/*
 * Tenants that run libmig-agent.so: agent_preload() listens on sock and
 * sets the environment a tenant started next inherits; agent_attach()
 * clears it, accepts that tenant's agent and attaches through it.
 */
static inline void agent_preload(const char *self, char *sock, size_t socklen, int *lfd)
{
	char rel[4096], agent[PATH_MAX];
	int r;

	prog_path(self, "../libmig-agent.so", rel, sizeof(rel));
	if (!realpath(rel, agent))
		FAIL("no %s", rel);
	snprintf(sock, socklen, "/tmp/migd-test-%d.sock", getpid());
	r = mig_agent_listen(sock, lfd);
	if (r < 0)
		FAIL("listen on %s: %s", sock, strerror(-r));
	setenv("MIGD_AGENT_SOCKET", sock, 1);
	setenv("LD_PRELOAD", agent, 1);
	/* Under SANITIZE=1 the preloaded agent comes before the ASan runtime. */
	if (!getenv("ASAN_OPTIONS"))
		setenv("ASAN_OPTIONS", "detect_leaks=0:verify_asan_link_order=0", 0);
}

static inline void wt_kill(struct wtenant *w);

static inline void agent_attach(struct wtenant *w, int lfd, int *conn)
{
	pid_t apid = 0;
	int r;

	unsetenv("LD_PRELOAD");
	unsetenv("MIGD_AGENT_SOCKET");
	r = mig_agent_accept(lfd, 5000, &apid, conn);
	if (r < 0 || apid != w->pid) {
		wt_kill(w);
		FAIL("agent accept: %s (pid %d, tenant %d)", strerror(-r), apid, w->pid);
	}
	r = mig_tenant_attach(
		w->pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_AGENT, .agent_fd = *conn },
		&w->t);
	if (r < 0) {
		wt_kill(w);
		FAIL("agent attach: %s (%s)", strerror(-r), mig_tenant_last_error());
	}
}

static inline void wt_kill(struct wtenant *w)
{
	if (w->pid > 0) {
		kill(w->pid, SIGKILL);
		waitpid(w->pid, NULL, 0);
	}
}

/*
 * The fault thread real time in move-first windows, as migd's
 * (mig_migrate_opts.fault_rt), unless MIG_TEST_FAULT_RT=0.
 */
static inline bool test_fault_rt(void)
{
	const char *e = getenv("MIG_TEST_FAULT_RT");

	return !e || strcmp(e, "0") != 0;
}

/*
 * Node 1 without force where there are 2+ nodes, else node 0 forced.
 * MIG_TEST_WINDOW=movefirst: move-first windows (MIG_WINDOW_MOVEFIRST).
 * MIG_TEST_THP=uffd: whole THPs by userfaultfd only (thp_uffd), not the
 * kernel's migration. The fault thread runs real time in move-first
 * windows, as migd's does (fault_rt); MIG_TEST_FAULT_RT=0: not.
 */
static inline void pick_target(struct mig_nodes *targets, struct mig_migrate_opts *o)
{
	int nodes = count_nodes();
	const char *win = getenv("MIG_TEST_WINDOW");

	memset(targets, 0, sizeof(*targets));
	mig_nodes_set(targets, nodes >= 2 ? 1 : 0);
	o->force = nodes < 2;
	if (win && !strcmp(win, "movefirst"))
		o->protocol = MIG_WINDOW_MOVEFIRST;
	if (getenv("MIG_TEST_THP") && !strcmp(getenv("MIG_TEST_THP"), "uffd"))
		o->thp_uffd = true;
	o->fault_rt = test_fault_rt();
	printf("# nodes: %d, target node %d%s%s%s\n", nodes, nodes >= 2 ? 1 : 0,
	       nodes < 2 ? " (forced)" : "", o->protocol ? ", move-first windows" : "",
	       o->thp_uffd ? ", whole THPs by userfaultfd only" : "");
}

/*
 * A test of move-first windows: skips (saying why) without root or
 * UFFDIO_MOVE, else pick_target with move-first windows and the MOVE zap.
 */
static inline void pick_target_movefirst(struct mig_nodes *targets, struct mig_migrate_opts *o)
{
	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	if (!kernel_has_move())
		SKIP("this kernel has no UFFDIO_MOVE (Linux 6.8+): no move-first windows");
	pick_target(targets, o);
	o->protocol = MIG_WINDOW_MOVEFIRST;
	o->zap = MIG_ZAP_MOVE;
}

/*
 * Move first needs a tenant attached with ptrace (mig.h: -EOPNOTSUPP for
 * an agent's); migd runs the classic windows for agent tenants, and so do
 * the tests under MIG_TEST_WINDOW=movefirst.
 */
static inline void agent_keeps_classic(mig_tenant *t, struct mig_migrate_opts *o)
{
	if (o->protocol == MIG_WINDOW_MOVEFIRST && mig_tenant_method(t) == MIG_ATTACH_AGENT) {
		o->protocol = MIG_WINDOW_CLASSIC;
		printf("# agent tenant: classic windows (move first needs ptrace)\n");
	}
}

/*
 * Every result adds up (mig.h): each distinct page is absent or present,
 * each present page moved, skipped, failed or gone, and the failed ones
 * are exactly those the errnos name. Checked in every test that prints
 * a result.
 */
static inline void check_identity(const struct mig_migrate_result *r)
{
	uint64_t failed = 0;

	if (r->pages_total != r->pages_present + r->pages_absent)
		FAIL("pages_total %" PRIu64 " != present %" PRIu64 " + absent %" PRIu64,
		     r->pages_total, r->pages_present, r->pages_absent);
	if (r->pages_moved + r->pages_skipped + r->pages_failed + r->pages_gone != r->pages_present)
		FAIL("moved %" PRIu64 " + skipped %" PRIu64 " + failed %" PRIu64 " + gone %" PRIu64
		     " != present %" PRIu64,
		     r->pages_moved, r->pages_skipped, r->pages_failed, r->pages_gone,
		     r->pages_present);
	for (unsigned k = 0; k < r->nerrnos; k++)
		failed += r->errnos[k].pages;
	if (r->nerrnos < MIG_MIGRATE_MAX_ERRNOS && failed != r->pages_failed)
		FAIL("errnos add up to %" PRIu64 ", pages_failed %" PRIu64, failed,
		     r->pages_failed);
	if (r->status && r->nstatus < r->pages_total)
		FAIL("nstatus %zu < pages_total %" PRIu64, r->nstatus, r->pages_total);
}

static inline void print_result(const struct mig_migrate_result *r)
{
	check_identity(r);
	printf("# migrated %" PRIu64 " MiB: absent %" PRIu64 ", moved %" PRIu64 ", skipped %" PRIu64
	       ", failed %" PRIu64 ", gone %" PRIu64 ", retried %" PRIu64 ", copies %" PRIu64
	       ", huge kept %" PRIu64 "\n",
	       r->pages_total * 4096 >> 20, r->pages_absent, r->pages_moved, r->pages_skipped,
	       r->pages_failed, r->pages_gone, r->pages_retried, r->pages_copied, r->huge_kept);
	printf("# %.3f s, %.2f GB/s, %.0f pages/s, windows %" PRIu64 ", passes %" PRIu64
	       ", faults %" PRIu64 ", events %" PRIu64 ", migd max stall %" PRIu64 " us\n",
	       r->elapsed_ns / 1e9, r->bytes_per_sec / 1e9,
	       r->elapsed_ns ? r->pages_moved * 1e9 / r->elapsed_ns : 0.0, r->windows, r->passes,
	       r->faults, r->events, r->max_stall_us);
	for (unsigned k = 0; k < r->nerrnos; k++)
		printf("#   failed %s: %" PRIu64 " pages\n", mig_errno_name(r->errnos[k].err),
		       r->errnos[k].pages);
	if (r->move_uncounted)
		printf("#   pages a MOVE step took out uncounted (found in scratch): %" PRIu64 "\n",
		       r->move_uncounted);
	if (r->windows_movefirst)
		printf("# windows move first: %" PRIu64 ", of them went on classic: %" PRIu64 "\n",
		       r->windows_movefirst, r->windows_switched);
	if (r->zaps_unstopped)
		printf("#   %" PRIu64 " zaps ran with the tenant's threads running\n",
		       r->zaps_unstopped);
	if (r->thp_before || r->huge_moved || r->huge_collapsed || r->huge_kmoved)
		printf("#   THPs %" PRIu64 " -> %" PRIu64 ": moved by the kernel %" PRIu64
		       ", placed whole %" PRIu64 ", collapsed %" PRIu64 " (failed %" PRIu64
		       "), fell back %" PRIu64 "\n",
		       r->thp_before, r->thp_after, r->huge_kmoved, r->huge_moved,
		       r->huge_collapsed, r->huge_collapse_failed, r->huge_fallback);
}

/* Every present page not gone: on a target, or failed with a reason. */
static inline void check_status(const struct mig_migrate_result *r, const struct mig_nodes *targets)
{
	uint64_t on = 0;

	for (size_t i = 0; i < r->nstatus; i++)
		if (r->status[i] >= 0 && mig_nodes_test(targets, (unsigned)r->status[i]))
			on++;
	if (on < r->pages_moved + r->pages_skipped)
		FAIL("status shows %" PRIu64 " pages on target, result says %" PRIu64, on,
		     r->pages_moved + r->pages_skipped);
}

/*
 * An event test: migrate a tenant with running writers and, inside the
 * window that covers offset at/4 of the data, after its zap and before
 * its fill, have the tenant run the command verb; a verb that takes a
 * range ("munmap", "dontneed", "mremap") gets the offset and length of
 * that window and the next. Returns the mig_migrate
 * return value; *res is filled when it is >= 0; *answer gets the
 * tenant's answer to cmd.
 */
struct evtest {
	struct wtenant *w;
	const char *cmd;
	char answer[512];
	int done;
	int phase; /* when in the window the command runs, 0: MIG_PHASE_ZAPPED */
};

/*
 * A tenant that removed nothing: no page gone or absent, at least 99.9 %
 * of the present pages moved, and every status on a target.
 */
static inline void check_all_moved(const struct mig_migrate_result *r,
				   const struct mig_placement *pl, const struct mig_nodes *targets)
{
	uint64_t base = r->pages_present - r->pages_skipped;

	if (r->pages_gone)
		FAIL("%" PRIu64 " pages gone, but the tenant removed none", r->pages_gone);
	if (pl->absent)
		FAIL("placement says %" PRIu64 " pages absent, the tenant has them all",
		     pl->absent);
	if (base == 0 || r->pages_moved * 1000 < base * 999)
		FAIL("moved %" PRIu64 " of %" PRIu64 " present pages", r->pages_moved, base);
	check_status(r, targets);
}

static inline void ev_hook(int phase, const struct mig_range *win, void *ud)
{
	struct evtest *e = ud;
	uint64_t off = win->start - e->w->addr;
	char cmd[256];

	if (phase != (e->phase ? e->phase : MIG_PHASE_ZAPPED) || e->done || off < e->w->len / 4)
		return;
	e->done = 1;
	if (!strcmp(e->cmd, "exit") || !strcmp(e->cmd, "fork"))
		snprintf(cmd, sizeof(cmd), "%s", e->cmd);
	else
		snprintf(cmd, sizeof(cmd), "%s %llu %llu", e->cmd, (unsigned long long)off,
			 2ULL << 20);
	snprintf(e->answer, sizeof(e->answer), "%s", wt_cmd(e->w, cmd));
	printf("tenant ran '%s' mid-window: %s\n", cmd, e->answer);
}

static inline int run_event_test(const char *self, struct wtenant *w, const char *cmd,
				 struct evtest *e, struct mig_migrate_result *res)
{
	const char *args[] = { "--size", "32M", "--threads", "2", "--thp-half", NULL, NULL, NULL };
	struct mig_migrate_opts o = { 0 };
	struct mig_nodes targets;
	int r;

	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	pick_target(&targets, &o);
	if (count_nodes() >= 2) {
		args[5] = "--node";
		args[6] = "0";
	}
	wt_start(w, self, args);
	wt_attach(w);
	usleep(100000);
	e->w = w;
	e->cmd = cmd;
	o.phase_hook = ev_hook;
	o.hook_userdata = e;
	struct mig_range rg = { w->addr, w->addr + w->len };
	r = mig_migrate(w->t, &rg, 1, &targets, &o, NULL, NULL, res);
	printf("mig_migrate: %d (%s)\n", r, r < 0 ? strerror(-r) : "ok");
	if (r >= 0) {
		print_result(res);
		check_status(res, &targets);
	}
	if (!e->done)
		FAIL("the event was never triggered");
	return r;
}

/* Detach, stop the tenant, fail unless it verified every page. */
/* Placement of rg after a job; returns the pages on a target (fails the test on error). */
static inline uint64_t placed_on(struct wtenant *w, const struct mig_range *rg,
				 const struct mig_nodes *targets, struct mig_placement *pl)
{
	uint64_t on = 0;
	int r = mig_placement(w->pid, rg, 1, pl);

	if (r < 0) {
		wt_kill(w);
		FAIL("mig_placement: %s", strerror(-r));
	}
	for (unsigned n = 0; n < MIG_MAX_NODES; n++)
		if (mig_nodes_test(targets, n))
			on += pl->node_pages[n];
	return on;
}

static inline void finish(struct wtenant *w)
{
	uint64_t max_us = 0, p99 = 0;

	(void)mig_tenant_detach(w->t);
	if (wt_stop(w, &max_us, &p99) != 0)
		FAIL("the tenant found damaged pages");
	printf("# tenant longest write stall: %.3f ms, p99 %" PRIu64 " us\n", max_us / 1000.0, p99);
}

/*
 * The common frame of an event test whose tenant survives the event: run
 * it, and fail unless the tenant answered OK and an event was read. The
 * caller adds its own checks on *res, then calls event_test_done.
 */
static inline void event_test_run(const char *self, const char *verb, struct wtenant *w,
				  struct mig_migrate_result *res)
{
	struct evtest e = { 0 };
	int r = run_event_test(self, w, verb, &e, res);

	if (r < 0)
		FAIL("mig_migrate: %s", strerror(-r));
	if (strncmp(e.answer, "OK", 2))
		FAIL("tenant after '%s': %s", verb, e.answer);
	if (res->events == 0)
		FAIL("no event was read");
}

static inline void event_test_done(struct wtenant *w, struct mig_migrate_result *res)
{
	finish(w);
	mig_migrate_result_free(res);
	printf("PASS\n");
}

#endif /* MIGRATE_COMMON_H */
