/*
 * tenant_data.c - an unmodified tenant for the attach tests. It fills an
 * anonymous area with a known pattern, prints "READY <addr> <len>", then
 * its main thread blocks in one syscall chosen by --block (read, sleep,
 * futex, epoll) so a test can attach while it sits there; it reports
 * whether that syscall came back the way it should ("BLOCK ok|bad ...").
 * Then it serves commands on stdin, one per line:
 *   check  verify the pattern, answer "CHECK ok" or "CHECK bad <page>"
 *   sigs   answer "SIGS <number of SIGUSR1 received>"
 *   fork   fork a child that checks the pattern and answers
 *          "CHILD <pid> CHECK ok|bad <page>" (it never reads stdin), then
 *          waits for "reap"; "forka" does the same but the child first
 *          calls mig_agent_start() if an agent is preloaded
 *   reap   let the child check once more and exit; answer "REAP <status>"
 *   exit   exit 0
 * With --main-exits the commands run on a second thread and the main
 * thread exits alone, as with pthread_exit (a zombie while the process runs).
 * It knows nothing about migd.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t nsigs;
static uint32_t futex_word;

static void on_usr1(int sig)
{
	(void)sig;
	nsigs++;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fill(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = (i * 0x9e3779b97f4a7c15ull) ^ 0x5a5a5a5a5a5a5a5aull;

		memcpy(p + i, &v, 8);
	}
}

static long check(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = (i * 0x9e3779b97f4a7c15ull) ^ 0x5a5a5a5a5a5a5a5aull, w;

		memcpy(&w, p + i, 8);
		if (v != w)
			return (long)(i / 4096);
	}
	return -1;
}

static void *futex_waker(void *arg)
{
	(void)arg;
	usleep(1500 * 1000);
	__atomic_store_n(&futex_word, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return NULL;
}

/* Block once in the chosen syscall; print how it came back. */
static void block(const char *how)
{
	uint64_t t0 = now_ms(), dt;

	if (!strcmp(how, "sleep")) {
		struct timespec ts = { 1, 500 * 1000 * 1000 };
		int r = nanosleep(&ts, NULL);

		dt = now_ms() - t0;
		printf("BLOCK %s sleep r=%d errno=%d %" PRIu64 "ms\n",
		       r == 0 && dt >= 1500 && dt < 3000 ? "ok" : "bad", r, r ? errno : 0, dt);
	} else if (!strcmp(how, "futex")) {
		pthread_t th;
		long r;

		pthread_create(&th, NULL, futex_waker, NULL);
		r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		dt = now_ms() - t0;
		/* 0: woken; EAGAIN: the word changed first. Never EINTR. */
		printf("BLOCK %s futex r=%ld errno=%d word=%u %" PRIu64 "ms\n",
		       (r == 0 || errno == EAGAIN) && futex_word == 1 ? "ok" : "bad", r,
		       r ? errno : 0, futex_word, dt);
		pthread_join(th, NULL);
	} else if (!strcmp(how, "epoll")) {
		struct epoll_event ev = { .events = EPOLLIN }, out;
		int ep = epoll_create1(EPOLL_CLOEXEC), r;

		epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
		do
			r = epoll_wait(ep, &out, 1, 10000);
		while (r < 0 && errno == EINTR && (printf("EINTR epoll\n"), 1));
		dt = now_ms() - t0;
		printf("BLOCK %s epoll r=%d %" PRIu64 "ms\n", r == 1 ? "ok" : "bad", r, dt);
		close(ep);
	}
	/* read: the command loop below blocks in read(0) by itself. */
	fflush(stdout);
}

static pid_t child = -1;
static int child_pipe = -1;

/*
 * The child checks the whole area (faulting in whatever a uffd holds back),
 * reports, waits until the parent closes the pipe, checks again and exits
 * with 0 if both checks passed.
 */
static void fork_child(uint8_t *p, size_t len, bool agent)
{
	int pp[2];
	long bad;
	char c;

	if (pipe2(pp, O_CLOEXEC) < 0) {
		printf("ERR pipe\n");
		return;
	}
	fflush(stdout);
	child = fork();
	if (child < 0) {
		printf("ERR fork\n");
		return;
	}
	if (child > 0) {
		close(pp[0]);
		child_pipe = pp[1];
		return;
	}
	close(pp[1]);
	if (agent) {
		int (*start)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "mig_agent_start");

		if (start)
			start();
	}
	bad = check(p, len);
	if (bad < 0)
		printf("CHILD %d CHECK ok\n", (int)getpid());
	else
		printf("CHILD %d CHECK bad %ld\n", (int)getpid(), bad);
	fflush(stdout);
	while (read(pp[0], &c, 1) < 0 && errno == EINTR)
		;
	_exit(bad < 0 && check(p, len) < 0 ? 0 : 1);
}

static uint8_t *p;
static size_t len = 8 << 20;

/* The command loop, on the main thread or (--main-exits) on another. */
static void *commands(void *arg)
{
	char line[64];

	(void)arg;
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "check", 5)) {
			long bad = check(p, len);

			if (bad < 0)
				printf("CHECK ok\n");
			else
				printf("CHECK bad %ld\n", bad);
		} else if (!strncmp(line, "sigs", 4)) {
			printf("SIGS %d\n", (int)nsigs);
		} else if (!strncmp(line, "forka", 5) || !strncmp(line, "fork", 4)) {
			fork_child(p, len, line[4] == 'a');
			continue; /* the child answers */
		} else if (!strncmp(line, "reap", 4)) {
			int st = -1;

			close(child_pipe);
			while (waitpid(child, &st, 0) < 0 && errno == EINTR)
				;
			printf("REAP %d\n", st);
		} else if (!strncmp(line, "hole", 4)) {
			/* "hole MIB": map MIB MiB and unmap them, as a tenant about to map them
			 * again. */
			size_t hl = strtoul(line + 4, NULL, 10) << 20;
			void *h = mmap(NULL, hl, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (h == MAP_FAILED || munmap(h, hl))
				printf("ERR hole %s\n", strerror(errno));
			else
				printf("HOLE %p\n", h);
		} else if (!strncmp(line, "exit", 4)) {
			exit(0);
		} else {
			printf("ERR %s", line);
		}
		fflush(stdout);
	}
	exit(0);
}

int main(int argc, char **argv)
{
	const char *how = "read";
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	bool main_exits = false;
	pthread_t th;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--main-exits"))
			main_exits = true;
		else if (i + 1 < argc && !strcmp(argv[i], "--mb"))
			len = strtoul(argv[++i], NULL, 0) << 20;
		else if (i + 1 < argc && !strcmp(argv[i], "--block"))
			how = argv[++i];
	}
	sigaction(SIGUSR1, &sa, NULL);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 2;
	fill(p, len);
	printf("READY %p %zu\n", (void *)p, len);
	fflush(stdout);
	block(how);
	if (main_exits) {
		/*
		 * The process lives on in the command thread; main is a zombie.
		 * The bare exit syscall is how pthread_exit ends too; pthread_exit
		 * itself would load libgcc_s to unwind, which the busybox guest
		 * of tests/vm lacks. The kernel sees the same thing.
		 */
		pthread_create(&th, NULL, commands, NULL);
		syscall(SYS_exit, 0);
	}
	commands(NULL);
	return 0;
}
