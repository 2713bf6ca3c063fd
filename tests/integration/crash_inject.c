/*
 * crash_inject.c - an injector killed at any instant leaves its tenant
 * running, untraced, with its own registers, FPU state and signal mask.
 *
 * Each round starts a tenant (a fork of this program) whose threads check
 * themselves all the time: one spins in a loop that keeps invariants in
 * general and SSE/AVX registers and MXCSR, one sleeps in nanosleep and
 * checks the time slept, one reads a byte sequence from a pipe, one
 * writes and checks memory, and the main thread (the one libmig injects
 * into) does one of those or a ppoll with a temporary signal mask. Then
 * an injector child attaches with ptrace, runs sessions of injected
 * syscalls (sending the tenant signals in between) and stops all of the
 * tenant's threads now and then, until it dies: with MIG_CRASH_AT at
 * each named point of ptrace.c and stopset.c (raising SIGKILL, then
 * SIGABRT), then killed by us at random moments. Each time the tenant must be alive, not stopped,
 * not traced, its threads must go on within 2 s, and when told to exit it must report no error.
 *
 *   crash_inject [RANDOM_KILLS]   (default 20, SIGKILL and SIGABRT in turn;
 *                                  make check-stress runs more)
 *   CRASH_MODES=N: the first N main-thread modes only (the slow guests);
 *   CRASH_ONLY=point: that named point only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "integration/test_common.h"
#include "mig.h"
#include "ptrace.h"
#include "stopset.h"
#include "util.h"

enum { T_REGS, T_SLEEP, T_READ, T_MEM, NTHREADS };
enum { M_REGS, M_SLEEP, M_READ, M_PPOLL, NMODES };
static const char *const mode_names[] = { "regs", "nanosleep", "read", "ppoll" };

/* Shared with the tenant (MAP_SHARED before fork). */
struct board {
	atomic_ulong progress[NTHREADS + 1]; /* + the main thread */
	atomic_ulong errors;
	atomic_ulong signals;
	atomic_int stop;
	char why[256];
};

static struct board *bd;

static void tenant_error(const char *what)
{
	if (atomic_fetch_add(&bd->errors, 1) == 0)
		snprintf(bd->why, sizeof(bd->why), "%s", what);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool have_avx;

/*
 * Spin iters times keeping invariants between rbx, r12-r15, xmm8 and
 * (with AVX) the upper half of ymm9: r13 = 3*r12 + C, r14 = ~r12,
 * r15 = r12 + r13, rbx = 2*r12, xmm8.low = r12. Returns 0, or 1 when an
 * invariant broke (a register was not given back as it was).
 */
static uint64_t reg_spin(uint64_t iters)
{
	uint64_t bad;

	__asm__ volatile("xor %%r12, %%r12\n\t"
			 "mov $0x5a5a5a5a, %%r13\n\t"
			 "mov %%r12, %%r14\n\t"
			 "not %%r14\n\t"
			 "lea (%%r12,%%r13), %%r15\n\t"
			 "xor %%rbx, %%rbx\n\t"
			 "pxor %%xmm8, %%xmm8\n\t"
			 "mov $1, %%rax\n\t"
			 "movq %%rax, %%xmm10\n\t"
			 "xor %[bad], %[bad]\n"
			 "1:\n\t"
			 "inc %%r12\n\t"
			 "add $3, %%r13\n\t"
			 "dec %%r14\n\t"
			 "add $4, %%r15\n\t"
			 "add $2, %%rbx\n\t"
			 "paddq %%xmm10, %%xmm8\n\t"
			 "lea (%%r12,%%r12,2), %%rax\n\t"
			 "add $0x5a5a5a5a, %%rax\n\t"
			 "cmp %%rax, %%r13\n\t"
			 "jne 2f\n\t"
			 "mov %%r12, %%rax\n\t"
			 "not %%rax\n\t"
			 "cmp %%rax, %%r14\n\t"
			 "jne 2f\n\t"
			 "lea (%%r12,%%r13), %%rax\n\t"
			 "cmp %%rax, %%r15\n\t"
			 "jne 2f\n\t"
			 "lea (%%r12,%%r12), %%rax\n\t"
			 "cmp %%rax, %%rbx\n\t"
			 "jne 2f\n\t"
			 "movq %%xmm8, %%rax\n\t"
			 "cmp %%rax, %%r12\n\t"
			 "jne 2f\n\t"
			 "cmp %[n], %%r12\n\t"
			 "jb 1b\n\t"
			 "jmp 3f\n"
			 "2:\n\t"
			 "mov $1, %[bad]\n"
			 "3:\n"
			 : [bad] "=&r"(bad)
			 : [n] "r"(iters)
			 : "rax", "rbx", "r12", "r13", "r14", "r15", "xmm8", "xmm10", "cc");
	return bad;
}

/* The upper half of ymm9 and MXCSR's rounding mode survive between calls. */
static void fpu_set(void)
{
	static const uint64_t pat[4] = { 1, 2, 0x1122334455667788ULL, 0x99aabbccddeeff00ULL };
	unsigned mx = 0x1f80 | (3u << 13); /* round toward zero */

	__asm__ volatile("ldmxcsr %0" ::"m"(mx));
	if (have_avx)
		__asm__ volatile("vmovdqu %0, %%ymm9" ::"m"(pat) : "xmm9");
}

static bool fpu_ok(void)
{
	uint64_t got[4] = { 0 };
	unsigned mx = 0;

	__asm__ volatile("stmxcsr %0" : "=m"(mx));
	if ((mx & (3u << 13)) != (3u << 13))
		return false;
	if (have_avx) {
		__asm__ volatile("vmovdqu %%ymm9, %0" : "=m"(got));
		return got[2] == 0x1122334455667788ULL && got[3] == 0x99aabbccddeeff00ULL;
	}
	return true;
}

static void run_regs(int slot)
{
	fpu_set();
	while (!atomic_load(&bd->stop)) {
		if (reg_spin(200000))
			tenant_error("a general or xmm register changed under the spinning thread");
		if (!fpu_ok())
			tenant_error("MXCSR or the upper half of ymm9 changed");
		atomic_fetch_add(&bd->progress[slot], 1);
	}
}

static void run_sleep(int slot)
{
	fpu_set();
	while (!atomic_load(&bd->stop)) {
		struct timespec req = { 0, 3 * 1000 * 1000 }, rem;
		uint64_t t0 = mono_ns();

		while (nanosleep(&req, &rem) < 0) {
			if (errno != EINTR) {
				tenant_error("nanosleep failed");
				break;
			}
			req = rem;
		}
		if (mono_ns() - t0 < 3 * 1000 * 1000)
			tenant_error("nanosleep returned early");
		if (!fpu_ok())
			tenant_error("MXCSR or ymm9 changed across nanosleep");
		atomic_fetch_add(&bd->progress[slot], 1);
	}
}

/* Two pipes with a byte sequence each: one for a thread, one for the main thread. */
static int pipes[2][2];

static void *writer(void *arg)
{
	uint8_t seq = 0;

	(void)arg;
	while (!atomic_load(&bd->stop)) {
		if (write(pipes[0][1], &seq, 1) != 1 || write(pipes[1][1], &seq, 1) != 1)
			tenant_error("write to a pipe failed");
		seq++;
		usleep(1000);
	}
	close(pipes[0][1]);
	close(pipes[1][1]);
	return NULL;
}

static void run_read(int slot, int fd)
{
	uint8_t want = 0, b;
	ssize_t n;

	while ((n = read(fd, &b, 1)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			tenant_error("read from the pipe failed");
			return;
		}
		if (b != want)
			tenant_error("a byte of the pipe sequence was lost or read twice");
		want = (uint8_t)(b + 1);
		atomic_fetch_add(&bd->progress[slot], 1);
	}
}

static void run_mem(int slot)
{
	size_t n = 1 << 20;
	uint64_t *m = malloc(n * sizeof(*m)), round = 0;

	while (!atomic_load(&bd->stop)) {
		round++;
		for (size_t i = 0; i < n; i++)
			m[i] = round * 0x9e3779b97f4a7c15ULL + i;
		for (size_t i = 0; i < n; i++)
			if (m[i] != round * 0x9e3779b97f4a7c15ULL + i) {
				tenant_error("memory read back wrong");
				break;
			}
		atomic_fetch_add(&bd->progress[slot], 1);
	}
	free(m);
}

/* ppoll with SIGUSR1 unblocked for the call only: the mask must be the same afterwards. */
static void run_ppoll(int slot)
{
	sigset_t tmp, now;

	sigemptyset(&tmp);
	while (!atomic_load(&bd->stop)) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };

		if (ppoll(NULL, 0, &ts, &tmp) < 0 && errno != EINTR)
			tenant_error("ppoll failed");
		pthread_sigmask(SIG_SETMASK, NULL, &now);
		if (!sigismember(&now, SIGUSR1) || sigismember(&now, SIGUSR2))
			tenant_error("ppoll's temporary signal mask stayed after it returned");
		atomic_fetch_add(&bd->progress[slot], 1);
	}
}

static void *thread_main(void *arg)
{
	int which = (int)(intptr_t)arg;
	sigset_t all;

	/* Signals go to the main thread only. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	switch (which) {
	case T_REGS:
		run_regs(which);
		break;
	case T_SLEEP:
		run_sleep(which);
		break;
	case T_READ:
		run_read(which, pipes[0][0]);
		break;
	case T_MEM:
		run_mem(which);
		break;
	}
	return NULL;
}

static void on_usr2(int sig)
{
	(void)sig;
	atomic_fetch_add(&bd->signals, 1);
}

static int tenant_main(int mode)
{
	struct sigaction sa = { .sa_handler = on_usr2, .sa_flags = SA_RESTART };
	pthread_t th[NTHREADS], wr;
	sigset_t usr1;

	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	if (pipe(pipes[0]) < 0 || pipe(pipes[1]) < 0)
		return 2;
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, thread_main, (void *)(intptr_t)i);
	pthread_create(&wr, NULL, writer, NULL);
	switch (mode) {
	case M_REGS:
		run_regs(NTHREADS);
		break;
	case M_SLEEP:
		run_sleep(NTHREADS);
		break;
	case M_READ:
		run_read(NTHREADS, pipes[1][0]);
		break;
	case M_PPOLL:
		run_ppoll(NTHREADS);
		break;
	}
	pthread_join(wr, NULL);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	return atomic_load(&bd->errors) ? 1 : 0;
}

/* --- the injector: a child so that it can die anywhere --- */

static int inject_some(mig_tenant *t, pid_t pid, unsigned round)
{
	struct mig__inject s;
	int r;

	r = mig__inject_begin(t, &s);
	if (r < 0)
		return r;
	for (int i = 0; r >= 0 && i < 4; i++) {
		const uint64_t none[6] = { 0 };
		const uint64_t mm[6] = {
			0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1,
			0
		};
		int64_t x = 0;

		/* A signal waiting for the thread when it is resumed: the signal path. */
		if ((round + (unsigned)i) % 3 == 0)
			syscall(SYS_tgkill, pid, pid, SIGUSR2);
		r = mig__inject_syscall(&s, SYS_getpid, none, &x);
		if (r == 0 && x != pid)
			return -EPROTO;
		r = mig__inject_syscall(&s, SYS_mmap, mm, &x);
		if (r == 0 && x > 0) {
			const uint64_t um[6] = { (uint64_t)x, 4096 };

			r = mig__inject_syscall(&s, SYS_munmap, um, &x);
		}
	}
	if (mig__inject_end(&s) < 0 && r == 0)
		r = -ESRCH;
	if (r == 0 && round % 2 == 0) {
		struct mig__stopset set;

		r = mig__stop_threads(t, NULL, 0, NULL, NULL, &set);
		if (mig__resume_threads(&set) < 0 && r == 0)
			r = -ESRCH;
	}
	return r;
}

static void injector(pid_t pid, unsigned rounds)
{
	mig_tenant *t = NULL;
	int r = mig_tenant_attach(
		pid, &(struct mig_attach_opts){ .method = MIG_ATTACH_PTRACE, .agent_fd = -1 }, &t);

	if (r < 0) {
		fprintf(stderr, "injector: attach: %s\n", mig_tenant_last_error());
		_exit(2);
	}
	for (unsigned i = 0; i < rounds; i++) {
		r = inject_some(t, pid, i);
		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "injector: round %u: %s (%s)\n", i, strerror(-r),
				mig_tenant_last_error());
			_exit(2);
		}
	}
	_exit(3); /* the point was never reached */
}

/* --- the checks --- */

static char proc_state(pid_t pid, int *ret_tracer)
{
	char path[64], line[256], st = 0;
	FILE *f;

	*ret_tracer = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "State: %c", &st);
		sscanf(line, "TracerPid: %d", ret_tracer);
	}
	fclose(f);
	return st;
}

/* Every thread of pid untraced and not stopped. */
static bool threads_free(pid_t pid, char *why, size_t len)
{
	char path[64];
	struct dirent *d;
	bool ok = true;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir) {
		snprintf(why, len, "tenant gone");
		return false;
	}
	while (ok && (d = readdir(dir))) {
		int tid = atoi(d->d_name), tracer;
		char st;

		if (tid <= 0)
			continue;
		st = proc_state(tid, &tracer);
		if (st == 't' || st == 'T' || tracer != 0) {
			snprintf(why, len, "thread %d state %c tracer %d", tid, st, tracer);
			ok = false;
		}
	}
	closedir(dir);
	return ok;
}

struct outcome {
	unsigned kills, aborts, dead, hung, errors, unreached;
};

/*
 * One round: tenant in mode, injector with crash (NULL: killed by us with
 * sig after delay_us; SIGABRT is what systemd's watchdog sends). Returns
 * false when the tenant was harmed; the reason is printed.
 */
static bool one_round(int mode, const char *crash, unsigned delay_us, int sig, struct outcome *o)
{
	unsigned long before[NTHREADS + 1];
	char why[256] = "";
	pid_t tenant, inj;
	int status = 0;
	bool ok = true, moved;
	uint64_t t0;

	memset(bd, 0, sizeof(*bd));
	tenant = fork();
	if (tenant == 0)
		_exit(tenant_main(mode));
	/* Let every thread get going. */
	for (t0 = mono_ns(); mono_ns() - t0 < 2000000000ULL;) {
		bool all = true;

		for (int i = 0; i <= NTHREADS; i++)
			all = all && atomic_load(&bd->progress[i]) > 0;
		if (all)
			break;
		usleep(1000);
	}
	inj = fork();
	if (inj == 0) {
		setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 }); /* SIGABRT: no core file */
		if (crash)
			setenv("MIG_CRASH_AT", crash, 1);
		injector(tenant, crash ? 200 : 1000000);
	}
	if (!crash) {
		usleep(delay_us);
		kill(inj, sig);
	}
	waitpid(inj, &status, 0);
	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status) == 3) {
			o->unreached++;
			printf("# %s/%s: point not reached\n", mode_names[mode], crash);
		} else {
			printf("# %s/%s: injector failed (exit %d)\n", mode_names[mode],
			       crash ? crash : "random", WEXITSTATUS(status));
			o->errors++;
			ok = false;
		}
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) {
		o->aborts++;
	} else
		o->kills++;

	/* Within 2 s: untraced, not stopped, every thread moving again. */
	for (int i = 0; i <= NTHREADS; i++)
		before[i] = atomic_load(&bd->progress[i]);
	for (t0 = mono_ns(), moved = false; !moved && mono_ns() - t0 < 2000000000ULL;) {
		moved = true;
		for (int i = 0; i <= NTHREADS; i++)
			moved = moved && atomic_load(&bd->progress[i]) > before[i];
		if (!moved)
			usleep(2000);
	}
	if (waitpid(tenant, &status, WNOHANG) == tenant) {
		printf("# %s/%s: tenant died: %s %d\n", mode_names[mode], crash ? crash : "random",
		       WIFSIGNALED(status) ? "signal" : "exit",
		       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
		o->dead++;
		return false;
	}
	if (!threads_free(tenant, why, sizeof(why)) || !moved) {
		printf("# %s/%s: tenant hung: %s\n", mode_names[mode], crash ? crash : "random",
		       moved ? why : "a thread made no progress in 2 s");
		for (int i = 0; i <= NTHREADS; i++)
			printf("#   thread %d: %lu -> %lu\n", i, before[i],
			       atomic_load(&bd->progress[i]));
		o->hung++;
		kill(tenant, SIGKILL);
		waitpid(tenant, &status, 0);
		return false;
	}
	atomic_store(&bd->stop, 1);
	for (t0 = mono_ns(); mono_ns() - t0 < 3000000000ULL;) {
		if (waitpid(tenant, &status, WNOHANG) == tenant)
			break;
		usleep(2000);
	}
	if (kill(tenant, 0) == 0 && waitpid(tenant, &status, WNOHANG) == 0) {
		printf("# %s/%s: tenant did not exit when told\n", mode_names[mode],
		       crash ? crash : "random");
		o->hung++;
		kill(tenant, SIGKILL);
		waitpid(tenant, &status, 0);
		return false;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("# %s/%s: tenant ended badly (%s %d): %s\n", mode_names[mode],
		       crash ? crash : "random", WIFSIGNALED(status) ? "signal" : "exit",
		       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), bd->why);
		if (WIFSIGNALED(status))
			o->dead++;
		else
			o->errors++;
		return false;
	}
	return ok;
}

int main(int argc, char **argv)
{
	static const char *const points[] = {
		"inject:seized",  "inject:interrupted", "inject:stopped", "inject:frame",
		"inject:regs",	  "inject:entry",	"inject:exit",	  "inject:regs@2",
		"inject:exit@3",  "inject:signal",	"inject:restore", "inject:restored",
		"inject:frame@5", "inject:exit@40",	"stopset:seized", "stopset:stopped",
	};
	unsigned randoms = argc > 1 ? (unsigned)atoi(argv[1]) : 20;
	struct outcome o = { 0 };
	unsigned failed = 0, rounds = 0;
	int nmodes = NMODES;
	double t0 = now_ms();

	if (geteuid() != 0)
		SKIP("needs root (ptrace, pidfd_getfd of other processes)");
#ifndef __x86_64__
	SKIP("ptrace injection is x86_64 only");
#endif
	have_avx = __builtin_cpu_supports("avx");
	bd = mmap(NULL, sizeof(*bd), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(bd != MAP_FAILED, "mmap: %m");
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (getenv("CRASH_MODES"))
		nmodes = MAX(1, MIN(NMODES, atoi(getenv("CRASH_MODES"))));
	for (int mode = 0; mode < nmodes; mode++)
		for (size_t i = 0; i < ARRAY_SIZE(points); i++) {
			/* CRASH_ONLY=point: that point only (to look at one case). */
			if (getenv("CRASH_ONLY") && strcmp(getenv("CRASH_ONLY"), points[i]))
				continue;
			/* Each point with SIGKILL, then with SIGABRT (":abrt"). */
			for (int abrt = 0; abrt < 2; abrt++) {
				char point[80];

				snprintf(point, sizeof(point), "%s%s", points[i],
					 abrt ? ":abrt" : "");
				rounds++;
				if (!one_round(mode, point, 0, SIGKILL, &o))
					failed++;
			}
		}
	srand((unsigned)getpid());
	for (unsigned i = 0; i < randoms; i++) {
		rounds++;
		/* Attach takes ~1 ms, a round of sessions a few ms: spread over both. */
		if (!one_round((int)(i % (unsigned)nmodes), NULL, (unsigned)(rand() % 30000),
			       i % 2 ? SIGABRT : SIGKILL, &o))
			failed++;
	}
	printf("# %u rounds (%zu named points x 2 signals x %d main-thread modes + %u random), "
	       "injector "
	       "killed %u times by SIGKILL and %u by SIGABRT: %u tenants dead, %u hung, %u with "
	       "errors, %u points not reached, %.1f s\n",
	       rounds, ARRAY_SIZE(points), nmodes, randoms, o.kills, o.aborts, o.dead, o.hung,
	       o.errors, o.unreached, (now_ms() - t0) / 1e3);
	CHECK(failed == 0 && o.unreached == 0, "%u of %u rounds harmed the tenant", failed, rounds);
	return 0;
}
