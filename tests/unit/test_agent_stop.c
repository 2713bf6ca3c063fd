/*
 * test_agent_stop.c - libmig/agent/stop.c with real threads and real
 * signals in this (forked) test process: a stop takes every other thread
 * into the handler and a resume lets them all go; and a stop does not
 * begin while a handler of the last one may still be inside (it could
 * have read that stop's go, and would count a running thread as stopped:
 * docs/engine.md, "Causes found under churn"); and a stop is complete
 * only once every thread waits in the handler's futex, where it writes
 * nothing (before, a thread that had marked itself stopped still wrote
 * its stack on its way there, while migd's madvise dropped the page).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent/stop.h"
#include "agentproto.h"
#include "mig.h"
#include "unit.h"

#define NTHREADS 3

static atomic_long spins[NTHREADS];
static atomic_int tids[NTHREADS];
static atomic_int quit;
/* Static: the block is 24 KiB, and a test's stack is the process's. */
static struct mig_agent_stopctl ctl;

static void *spinner(void *arg)
{
	atomic_long *n = arg;

	atomic_store(&tids[n - spins], (int)syscall(SYS_gettid));
	while (!atomic_load(&quit))
		atomic_fetch_add(n, 1);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Sum of the spinners' counters. */
static long total(void)
{
	long s = 0;

	for (int k = 0; k < NTHREADS; k++)
		s += atomic_load(&spins[k]);
	return s;
}

/* Do the spinners run? Waits up to 2 s for one to count (a loaded host). */
static bool running(void)
{
	long a = total();

	for (int k = 0; k < 400; k++) {
		sleep_ms(5);
		if (total() != a)
			return true;
	}
	return false;
}

static void start(pthread_t *th)
{
	mig_agent_stop_install();
	mig_agent_stop_init(&ctl);
	for (int k = 0; k < NTHREADS; k++)
		ck_assert_int_eq(pthread_create(&th[k], NULL, spinner, &spins[k]), 0);
	sleep_ms(20);
	/* Every spinner runs and has told its tid (a loaded host: up to 5 s). */
	for (int k = 0, waited = 0; k < NTHREADS; k++)
		while (!atomic_load(&tids[k])) {
			ck_assert_msg(waited++ < 1000, "spinner %d did not start", k);
			sleep_ms(5);
		}
}

static void finish(pthread_t *th)
{
	atomic_store(&quit, 1);
	for (int k = 0; k < NTHREADS; k++)
		ck_assert_int_eq(pthread_join(th[k], NULL), 0);
}

/* Ask until the stop is complete, as migd does (agentconn.c). */
static int64_t stop_all(void)
{
	int64_t r;
	int tries = 0;

	while ((r = mig_agent_stop(&ctl, 200)) == -EINPROGRESS && ++tries < 25)
		;
	return r;
}

START_TEST(stop_and_resume)
{
	pthread_t th[NTHREADS];

	start(th);
	for (int round = 0; round < 20; round++) {
		long a, b;

		ck_assert_int_eq(stop_all(), 0);
		a = total();
		sleep_ms(20);
		b = total();
		ck_assert_msg(a == b, "round %d: threads ran while stopped (%ld -> %ld)", round, a,
			      b);
		ck_assert_int_eq(mig_agent_resume(&ctl), 0);
		ck_assert_msg(running(), "round %d: threads still stopped after resume", round);
	}
	finish(th);
}
END_TEST

/*
 * The system call thread tid is blocked in, as /proc shows it: its number
 * and first argument; nr -1 when it runs or is not in one.
 */
static void in_syscall(int tid, long *nr, unsigned long long *arg0)
{
	char path[64], buf[256] = "";
	char *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	*nr = strtol(buf, &p, 10);
	if (p == buf)
		*nr = -1; /* "running" */
	*arg0 = *nr >= 0 ? strtoull(p, NULL, 16) : 0;
}

/* Once a stop answers 0, every thread waits in the handler's futex on go. */
START_TEST(stopped_threads_wait_in_the_handler)
{
	pthread_t th[NTHREADS];

	start(th);
	for (int round = 0; round < 50; round++) {
		ck_assert_int_eq(stop_all(), 0);
		for (int k = 0; k < NTHREADS; k++) {
			unsigned long long arg0;
			long nr;

			in_syscall(atomic_load(&tids[k]), &nr, &arg0);
			ck_assert_msg(nr == SYS_futex && arg0 == (uintptr_t)&ctl.go,
				      "round %d: thread %d counted stopped while in system call "
				      "%ld (arg0 %#llx), not the handler's futex wait",
				      round, k, nr, arg0);
		}
		ck_assert_int_eq(mig_agent_resume(&ctl), 0);
	}
	finish(th);
}
END_TEST

START_TEST(no_stop_while_a_handler_lingers)
{
	pthread_t th[NTHREADS];
	long a;

	start(th);
	ck_assert_int_eq(stop_all(), 0);
	ck_assert_int_eq(mig_agent_resume(&ctl), 0);
	/* As if one handler of that stop had not returned yet. */
	__atomic_add_fetch(&ctl.inside, 1, __ATOMIC_SEQ_CST);
	ck_assert_int_eq(mig_agent_stop(&ctl, 50), -EINPROGRESS);
	ck_assert_int_eq(__atomic_load_n(&ctl.active, __ATOMIC_SEQ_CST), 0);
	ck_assert_msg(running(), "threads stopped although the stop did not begin");
	/* Nothing to let go: resume of a stop that never began does nothing. */
	ck_assert_int_eq(mig_agent_resume(&ctl), 0);
	__atomic_sub_fetch(&ctl.inside, 1, __ATOMIC_SEQ_CST);
	ck_assert_int_eq(stop_all(), 0);
	a = total();
	sleep_ms(20);
	ck_assert_msg(total() == a, "threads ran while stopped");
	ck_assert_int_eq(mig_agent_resume(&ctl), 0);
	finish(th);
}
END_TEST

/*
 * The hello of an agent of another protocol version (an older
 * libmig-agent.so still loaded in a tenant after an upgrade) is refused
 * by name, with the peer's pid; the current version's is taken; a hello
 * with a wrong magic is not an agent's.
 */
static int hello(uint32_t magic, uint32_t version, pid_t *pid)
{
	struct mig_agent_hello h = { .magic = magic, .version = version, .pid = 1, .uffd_fd = -1 };
	int sv[2], r;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(send(sv[1], &h, sizeof(h), 0), (ssize_t)sizeof(h));
	*pid = 0;
	r = mig_agent_read_hello(sv[0], pid);
	close(sv[0]);
	close(sv[1]);
	return r;
}

START_TEST(hello_versions)
{
	pid_t pid;

	ck_assert_int_eq(hello(MIG_AGENT_MAGIC, MIG_AGENT_VERSION, &pid), 0);
	ck_assert_int_eq(pid, getpid());
	ck_assert_int_eq(hello(MIG_AGENT_MAGIC, 1, &pid), -EPROTONOSUPPORT);
	ck_assert_int_eq(pid, getpid());
	ck_assert_int_eq(hello(MIG_AGENT_MAGIC ^ 1, MIG_AGENT_VERSION, &pid), -EPROTO);
}
END_TEST

static Suite *agent_stop_suite(void)
{
	Suite *s = suite_create("agent_stop");
	TCase *tc = tcase_create("stop");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, stop_and_resume);
	tcase_add_test(tc, no_stop_while_a_handler_lingers);
	tcase_add_test(tc, stopped_threads_wait_in_the_handler);
	tcase_add_test(tc, hello_versions);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(agent_stop_suite)
