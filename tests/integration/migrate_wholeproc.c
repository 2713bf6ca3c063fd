/*
 * migrate_wholeproc.c - migrate a whole process: every writable anonymous
 * private VMA (heap, stacks, anonymous mmaps), as `migctl migrate PID`
 * does without --range. The tenant's own threads then fault on migrated
 * pages from kernel mode too (a syscall writing to its stack or reading
 * into a buffer), and a thread held in such a fault cannot be stopped by
 * ptrace: the zap must never need a thread that the fault thread holds.
 *
 * Cases, each bounded in time (a hang is reported with the tenant's and
 * our threads' wait channels, then the tenant is killed):
 *   python-sleep  single-threaded python3 with 64 MiB of random data
 *                 (SHA-256 taken before and after), sleeping in
 *                 time.sleep/select in a loop;
 *   python-read   the same, looping over os.readv from a pipe into a
 *                 bytearray while we feed the pipe slowly during the
 *                 migration (kernel-mode writes into migrated memory);
 *   c-read        a single-threaded C tenant blocked in read(2) into a
 *                 buffer inside its data while we feed the pipe slowly;
 *   writer        tests/tenants/writer with two writer threads;
 *   agent-writer  the same through libmig-agent.so (the zap runs on the
 *                 agent's helper thread, whose stack is migrated too);
 *   agent-blocked the agent writer with the agent's stop signal blocked in
 *                 every thread (inherited from us): the agent cannot stop
 *                 them, migd falls back to ptrace once and stays with it,
 *                 so only the first window waits for the agent (and the
 *                 tenant's signal queue is not filled up); no thread is
 *                 left traced.
 * Every tenant verifies its data afterwards.
 */
#include <fcntl.h>
#include <limits.h>
#include <numaif.h>
#include <pthread.h>
#include <sys/mman.h>

#include "integration/migrate_common.h"

/*
 * A job that finished no window for this long is deadlocked. Judged by
 * progress, not by the job's whole time: in a software-emulated guest on
 * a loaded host one job can take minutes and still be moving (6.12
 * guest at load 28: 1072 pages/s, an 84 MiB job past 60 s).
 */
#define TIMEOUT_S 60.0
#define CHUNK	  4096

struct job {
	mig_tenant *t;
	struct mig_range *rg;
	size_t n;
	struct mig_nodes targets;
	struct mig_migrate_opts o;
	struct mig_migrate_result res;
	int r;
	volatile int done;
	uint64_t last_ms; /* now_s(), in ms, when the last window ended */
};

static int job_progress(const struct mig_migrate_progress *p, void *ud)
{
	struct job *j = ud;

	(void)p;
	__atomic_store_n(&j->last_ms, (uint64_t)(now_s() * 1000), __ATOMIC_RELEASE);
	return 0;
}

static void *job_main(void *arg)
{
	struct job *j = arg;

	j->r = mig_migrate(j->t, j->rg, j->n, &j->targets, &j->o, job_progress, j, &j->res);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Every writable anonymous private VMA of pid. */
static size_t whole_ranges(pid_t pid, struct mig_range **ret, uint64_t *ret_bytes)
{
	struct mig_vma *v = NULL;
	struct mig_range *out;
	size_t nv = 0, n = 0;
	uint64_t bytes = 0;
	int r = mig_read_vmas(pid, &v, &nv);

	if (r < 0)
		FAIL("mig_read_vmas(%d): %s", pid, strerror(-r));
	out = calloc(nv + 1, sizeof(*out));
	if (!out)
		FAIL("out of memory");
	for (size_t i = 0; i < nv; i++)
		if (mig_vma_is_anon_private(&v[i]) && (v[i].flags & MIG_VMA_WRITE)) {
			/*
			 * Sanitizer builds (SANITIZE=1) reserve terabytes of
			 * shadow. The engine now skips their empty windows
			 * (migrate_sparse), but the result's per-page status
			 * needs 4 GiB per TiB of range, so leave those out.
			 */
			if (v[i].end - v[i].start > (UINT64_C(64) << 30)) {
				printf("leaving out %#" PRIx64 "-%#" PRIx64
				       " (a reservation larger than 64 GiB)\n",
				       v[i].start, v[i].end);
				continue;
			}
			out[n].start = v[i].start;
			out[n++].end = v[i].end;
			bytes += v[i].end - v[i].start;
		}
	free(v);
	*ret = out;
	*ret_bytes = bytes;
	return n;
}

/* One thread's wait channel and the syscall it is in (first number), or "running". */
static void dump_wchan_thread(pid_t pid, const char *tid, void *ud)
{
	char wchan[128], sc[128];

	wt_read_proc(pid, tid, "wchan", wchan, sizeof(wchan));
	wt_read_proc(pid, tid, "syscall", sc, sizeof(sc));
	sc[strcspn(sc, "\n")] = 0;
	printf("  %s thread %s waits in %s, syscall: %.40s\n", (const char *)ud, tid, wchan, sc);
}

static void dump_wchan(const char *who, pid_t pid)
{
	(void)wt_each_thread(pid, dump_wchan_thread, (void *)who);
}

/*
 * Chunk i of the fed stream: its index, as 8 little-endian bytes,
 * repeated (python checks it with struct.pack('<Q', i) * 512).
 */
static void chunk_fill(uint64_t *c, uint64_t i)
{
	for (size_t w = 0; w < CHUNK / 8; w++)
		c[w] = i;
}

/*
 * Migrate every anonymous VMA of pid in a thread, feeding up to nchunks
 * chunks into feed_fd (if >= 0) every feed_us meanwhile, then the rest;
 * fail with the threads' wait channels if the job does not end in time.
 */
/* The last job's windows and time (agent-blocked judges by them). */
static uint64_t last_windows;
static double last_secs;

static void migrate_whole(const char *name, pid_t pid, mig_tenant *t, int feed_fd, uint64_t nchunks,
			  unsigned feed_us)
{
	struct job j = { .t = t };
	uint64_t bytes, sent = 0, during = 0;
	static uint64_t chunk[CHUNK / 8];
	pthread_t th;
	double t0;

	if (feed_fd >= 0 && fcntl(feed_fd, F_SETFL, O_NONBLOCK) < 0)
		FAIL("fcntl: %m");
	j.n = whole_ranges(pid, &j.rg, &bytes);
	pick_target(&j.targets, &j.o);
	agent_keeps_classic(t, &j.o);
	printf("%s: migrating %zu VMAs, %.1f MiB of pid %d\n", name, j.n, bytes / 1048576.0, pid);
	t0 = now_s();
	j.last_ms = (uint64_t)(t0 * 1000);
	if (pthread_create(&th, NULL, job_main, &j))
		FAIL("pthread_create");
	while (!__atomic_load_n(&j.done, __ATOMIC_ACQUIRE)) {
		if (now_s() - __atomic_load_n(&j.last_ms, __ATOMIC_ACQUIRE) / 1000.0 > TIMEOUT_S) {
			printf("%s: no window finished for %.0f s (job running %.0f s): deadlock\n",
			       name, TIMEOUT_S, now_s() - t0);
			dump_wchan("tenant", pid);
			dump_wchan("migd", getpid());
			fflush(stdout);
			kill(pid, SIGKILL);
			FAIL("%s: whole-process migration did not finish", name);
		}
		/*
		 * Non-blocking: a tenant that stopped reading must not stop us.
		 * The last chunk waits for the end of the job: the tenant
		 * finishes (and exits) once its buffer is full.
		 */
		if (feed_fd >= 0 && sent + 1 < nchunks) {
			chunk_fill(chunk, sent);
			if (write(feed_fd, chunk, CHUNK) == CHUNK) {
				sent++;
				during++;
			} else if (errno != EAGAIN) {
				FAIL("%s: feeding the tenant: %m", name);
			}
		}
		usleep(feed_us);
	}
	pthread_join(th, NULL);
	printf("%s: mig_migrate: %d (%s), %" PRIu64 " chunks fed during the migration\n", name, j.r,
	       j.r < 0 ? strerror(-j.r) : "ok", during);
	if (j.r < 0)
		FAIL("%s: mig_migrate: %s (%s)", name, strerror(-j.r), mig_tenant_last_error());
	print_result(&j.res);
	check_status(&j.res, &j.targets);
	printf("# %s: %.1f MiB of %zu VMAs in %.3f s, moved %" PRIu64 " pages, failed %" PRIu64
	       "\n",
	       name, bytes / 1048576.0, j.n, now_s() - t0, j.res.pages_moved, j.res.pages_failed);
	if (j.res.pages_moved == 0)
		FAIL("%s: nothing moved", name);
	last_windows = j.res.windows;
	last_secs = now_s() - t0;
	if (feed_fd >= 0 && fcntl(feed_fd, F_SETFL, 0) < 0)
		FAIL("fcntl: %m");
	for (; feed_fd >= 0 && sent < nchunks; sent++) {
		chunk_fill(chunk, sent);
		if (write(feed_fd, chunk, CHUNK) != CHUNK)
			FAIL("%s: feeding the tenant: %m", name);
	}
	mig_migrate_result_free(&j.res);
	free(j.rg);
}

static const char py_common[] =
	"import hashlib, os, select, struct, sys, time\n"
	"b = bytearray(os.urandom(64 << 20))\n"
	"rx = bytearray(b'\\xff' * (16 << 20))\n"
	"print('READY', os.getpid(), hashlib.sha256(b).hexdigest(), flush=True)\n";

static const char py_sleep[] = "while not select.select([0], [], [], 0)[0]:\n"
			       "    time.sleep(0.02)\n"
			       "sys.stdin.readline()\n"
			       "print('SHA', hashlib.sha256(b).hexdigest(), 'OK', flush=True)\n";

static const char py_read[] = "mv = memoryview(rx)\n"
			      "pos = 0\n"
			      "while True:\n"
			      "    n = os.readv(3, [mv[pos:]])\n"
			      "    if n == 0:\n"
			      "        break\n"
			      "    pos += n\n"
			      "ok = pos % 4096 == 0 and all(rx[i * 4096:(i + 1) * 4096] == "
			      "struct.pack('<Q', i) * 512 for i in range(pos // 4096))\n"
			      "print('SHA', hashlib.sha256(b).hexdigest(), 'OK' if ok else "
			      "'BADRX', pos, flush=True)\n";

static void python_case(const char *name, const char *body)
{
	int pin[2], pout[2], pfeed[2];
	char script[4096], line[512], sha0[80], sha1[80], verdict[16];
	long long got = -1;
	mig_tenant *t = NULL;
	FILE *out;
	pid_t pid;
	int r, st;
	bool reader = strstr(body, "readv") != NULL;
	const uint64_t nchunks = 4096; /* 16 MiB: rx's size */

	snprintf(script, sizeof(script), "%s%s", py_common, body);
	if (pipe(pin) || pipe(pout) || pipe(pfeed))
		FAIL("pipe: %m");
	pid = fork();
	if (pid < 0)
		FAIL("fork: %m");
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(pfeed[0], 3);
		for (int fd = 4; fd < 64; fd++)
			close(fd);
		execlp("python3", "python3", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(pfeed[0]);
	out = fdopen(pout[0], "r");
	if (!fgets(line, sizeof(line), out) || sscanf(line, "READY %*d %64s", sha0) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		FAIL("%s: python3 did not start", name);
	}
	usleep(100000); /* into its sleep or read loop */
	r = mig_tenant_attach(pid, NULL, &t);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (r == -EPERM || r == -EOPNOTSUPP)
			SKIP("cannot attach: %s", strerror(-r));
		FAIL("%s: attach: %s (%s)", name, strerror(-r), mig_tenant_last_error());
	}
	migrate_whole(name, pid, t, reader ? pfeed[1] : -1, reader ? nchunks : 0, 300);
	r = mig_tenant_detach(t);
	if (r < 0)
		FAIL("%s: detach: %s", name, strerror(-r));
	close(pfeed[1]);
	if (write(pin[1], "done\n", 5) != 5)
		FAIL("%s: write: %m", name);
	close(pin[1]);
	if (!fgets(line, sizeof(line), out) ||
	    sscanf(line, "SHA %64s %15s %lld", sha1, verdict, &got) < 2) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		FAIL("%s: python3 gave no verdict", name);
	}
	fclose(out);
	waitpid(pid, &st, 0);
	printf("%s: sha256 before %.16s..., after %.16s..., %s", name, sha0, sha1, verdict);
	if (reader)
		printf(", %lld bytes read into migrated memory", got);
	printf("\n");
	if (strcmp(sha0, sha1))
		FAIL("%s: the data changed: SHA-256 %s before, %s after", name, sha0, sha1);
	if (strcmp(verdict, "OK"))
		FAIL("%s: what the tenant read into migrated memory is wrong (%s)", name, verdict);
	if (reader && (uint64_t)got != nchunks * CHUNK)
		FAIL("%s: read %lld bytes, fed %" PRIu64, name, got, nchunks * CHUNK);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		FAIL("%s: python3 exited with status 0x%x", name, st);
}

static uint64_t cpat(size_t page, size_t w)
{
	return (page * 0x9e3779b97f4a7c15ULL) ^ (w * 0xff51afd7ed558ccdULL) ^ 0x5a;
}

/* The C tenant: 32 MiB of pattern, then read(2) into its last 16 MiB. */
static int c_tenant(int rfd, int wfd)
{
	const size_t len = 48UL << 20, data = 32UL << 20;
	uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t pos = 0;
	char *rx;

	if (p == MAP_FAILED)
		return 2;
	/*
	 * With two nodes the data starts on node 0, so the move has work: a
	 * thread policy for the first touch only (a VMA policy, mbind, would
	 * also bind where the pages may go afterwards).
	 */
	if (count_nodes() >= 2) {
		unsigned long node0 = 1;

		if (set_mempolicy(MPOL_BIND, &node0, sizeof(node0) * 8) < 0)
			return 6;
	}
	for (size_t i = 0; i < data / 8; i++)
		p[i] = cpat(i / 512, i % 512);
	rx = (char *)p + data;
	memset(rx, 0xff, len - data);
	if (count_nodes() >= 2 && set_mempolicy(MPOL_DEFAULT, NULL, 0) < 0)
		return 6;
	if (write(wfd, "R", 1) != 1)
		return 2;
	for (;;) {
		ssize_t n = read(rfd, rx + pos, len - data - pos);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		pos += (size_t)n;
	}
	for (size_t i = 0; i < data / 8; i++)
		if (p[i] != cpat(i / 512, i % 512))
			return 3;
	for (size_t i = 0; i < pos / 8; i++)
		if (((uint64_t *)rx)[i] != i / (CHUNK / 8))
			return 4;
	return pos == len - data ? 0 : 5;
}

static void c_case(void)
{
	int feed[2], ready[2], st;
	mig_tenant *t = NULL;
	char c;
	pid_t pid;
	int r;

	if (pipe(feed) || pipe(ready))
		FAIL("pipe: %m");
	pid = fork();
	if (pid < 0)
		FAIL("fork: %m");
	if (pid == 0) {
		close(feed[1]);
		close(ready[0]);
		_exit(c_tenant(feed[0], ready[1]));
	}
	close(feed[0]);
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		FAIL("c-read: the tenant did not start");
	usleep(50000); /* blocked in read(2) by now */
	r = mig_tenant_attach(pid, NULL, &t);
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		FAIL("c-read: attach: %s (%s)", strerror(-r), mig_tenant_last_error());
	}
	migrate_whole("c-read", pid, t, feed[1], 4096, 300);
	r = mig_tenant_detach(t);
	if (r < 0)
		FAIL("c-read: detach: %s", strerror(-r));
	close(feed[1]);
	waitpid(pid, &st, 0);
	printf("c-read: tenant exit status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		FAIL("c-read: the tenant found its data or what it read damaged (status 0x%x)", st);
}

static void writer_case(const char *self)
{
	const char *args[] = { "--size", "64M", "--threads", "2", "--thp-half", NULL, NULL, NULL };
	struct wtenant w = { 0 };

	if (count_nodes() >= 2) {
		args[5] = "--node";
		args[6] = "0";
	}
	wt_start(&w, self, args);
	wt_attach(&w);
	usleep(100000);
	migrate_whole("writer", w.pid, w.t, -1, 0, 1000);
	finish(&w);
}

/* The writer with libmig-agent.so preloaded, attached through its agent. */
static void agent_writer_case(const char *self)
{
	const char *args[] = { "--size", "64M", "--threads", "2", "--thp-half", NULL, NULL, NULL };
	struct wtenant w = { 0 };
	char sock[108];
	int lfd = -1, conn = -1;

	if (count_nodes() >= 2) {
		args[5] = "--node";
		args[6] = "0";
	}
	agent_preload(self, sock, sizeof(sock), &lfd);
	wt_start(&w, self, args);
	agent_attach(&w, lfd, &conn);
	usleep(100000);
	migrate_whole("agent-writer", w.pid, w.t, -1, 0, 1000);
	finish(&w);
	close(conn);
	close(lfd);
	unlink(sock);
}

/*
 * The agent's stop signal (libmig/agent/stop.c) blocked in every thread of
 * the tenant: its threads inherit our mask through fork and exec.
 */
static void agent_blocked_case(const char *self)
{
	const char *args[] = { "--size", "16M", "--threads", "2", NULL, NULL, NULL };
	struct wtenant w = { 0 };
	sigset_t stop, old;
	char sock[108];
	int lfd = -1, conn = -1;
	uint64_t stop_ns;

	if (count_nodes() >= 2) {
		args[4] = "--node";
		args[5] = "0";
	}
	sigemptyset(&stop);
	sigaddset(&stop, SIGRTMAX - 7);
	agent_preload(self, sock, sizeof(sock), &lfd);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	wt_start(&w, self, args);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	agent_attach(&w, lfd, &conn);
	usleep(100000);
	migrate_whole("agent-blocked", w.pid, w.t, -1, 0, 1000);
	stop_ns = mig_tenant_stop_ns(w.t, NULL);
	printf("# agent-blocked: %" PRIu64 " windows in %.2f s, threads stopped by ptrace for "
	       "%.1f ms in all\n",
	       last_windows, last_secs, stop_ns / 1e6);
	if (stop_ns == 0)
		FAIL("agent-blocked: the agent could not stop the threads, yet ptrace never did");
	/*
	 * The agent tries once, for 1 s. Tried for every window instead, the
	 * job takes over a second per window (over 60 s here) and queues
	 * more signals on the tenant each time (its RLIMIT_SIGPENDING; the
	 * count in /proc is per user, so not measured here).
	 */
	if (last_windows < 8)
		FAIL("agent-blocked: only %" PRIu64 " windows, too few to tell", last_windows);
	if (last_secs > last_windows * 0.5)
		FAIL("agent-blocked: %.1f s for %" PRIu64 " windows: the agent was asked again",
		     last_secs, last_windows);
	(void)mig_tenant_detach(w.t);
	w.t = NULL;
	if (wt_threads_of(w.pid, 0, 0).traced)
		FAIL("agent-blocked: %d threads still traced after detach",
		     wt_threads_of(w.pid, 0, 0).traced);
	finish(&w);
	close(conn);
	close(lfd);
	unlink(sock);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;

	if (geteuid() != 0)
		SKIP("needs root (ptrace attach, kpageflags)");
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* The C tenant first: it is forked while this process has one thread. */
	if (!only || !strcmp(only, "c-read"))
		c_case();
	if (!only || !strcmp(only, "python-sleep") || !strcmp(only, "python-read")) {
		if (system("python3 -c 'pass' 2>/dev/null") != 0) {
			if (only)
				SKIP("python3 is not available");
			printf("python3 is not available: python cases skipped\n");
		} else {
			if (!only || !strcmp(only, "python-sleep"))
				python_case("python-sleep", py_sleep);
			if (!only || !strcmp(only, "python-read"))
				python_case("python-read", py_read);
		}
	}
	if (!only || !strcmp(only, "writer"))
		writer_case(argv[0]);
	if (!only || !strcmp(only, "agent-writer"))
		agent_writer_case(argv[0]);
	if (!only || !strcmp(only, "agent-blocked"))
		agent_blocked_case(argv[0]);
	printf("PASS\n");
	return 0;
}
