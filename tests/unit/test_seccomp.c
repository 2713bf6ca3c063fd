/*
 * test_seccomp.c - libmig/seccomp.c's filter interpreter against the
 * kernel's: random classic BPF filters (loads of every word of
 * seccomp_data, ALU with K and X, the scratch memory, every jump with K
 * and X), each installed in a child that then makes harmless syscalls
 * (getpid and the like) with random arguments; every answer the kernel
 * gave (an errno naming the leaf taken, or none) must be the one
 * mig__seccomp_run computes. migd injects only what that says a tenant's
 * filters allow, so a wrong answer could kill a tenant.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ptrace.h"
#include "unit.h"

#define CALLS 16
#define PROGS 150

static const long harmless[] = { SYS_getpid, SYS_getppid, SYS_getuid,
				 SYS_getgid, SYS_geteuid, SYS_sched_yield };

static uint64_t rnd_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* A value the arguments are made of, so that comparisons go both ways. */
static uint32_t small(void)
{
	static const uint32_t v[] = { 0, 1, 2, 3, 7, 0x10, 0xff, 0x8000, 0xffffffffu, 0x80000000u };

	return v[rnd() % (sizeof(v) / sizeof(v[0]))];
}

/*
 * Syscalls not in harmless[] are allowed first (the child's own write and
 * exit), then blocks: a load, maybe ALU, maybe through X or the scratch
 * memory, a jump to an ERRNO leaf of its own; the end allows.
 */
static unsigned gen(struct sock_filter *f)
{
	static const uint16_t alu[] = { BPF_ADD, BPF_SUB, BPF_MUL, BPF_OR, BPF_AND,
					BPF_XOR, BPF_LSH, BPF_RSH, BPF_DIV };
	static const uint16_t jmp[] = { BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET };
	unsigned n = 0, nh = sizeof(harmless) / sizeof(harmless[0]), blocks = 1 + rnd() % 8;

	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	for (unsigned k = 0; k < nh; k++)
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						      (uint32_t)harmless[k], nh - k, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	for (unsigned b = 0; b < blocks; b++) {
		uint32_t off = rnd() % 3 == 0 ? (uint32_t)(rnd() % 4) * 4 : 16 + (rnd() % 12) * 4;
		bool use_x = rnd() % 2;

		if (off == 12 || off == 8)
			off = 0; /* the instruction pointer: where the child calls from */
		if (rnd() % 4 == 0)
			f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, off);
		if (rnd() % 2) {
			uint16_t op = alu[rnd() % (sizeof(alu) / sizeof(alu[0]))];
			uint32_t k = op == BPF_LSH || op == BPF_RSH ? (uint32_t)(rnd() % 32)
				     : op == BPF_DIV		    ? 1 + (uint32_t)(rnd() % 7)
								    : small();

			f[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | op | BPF_K, k);
		}
		if (rnd() % 3 == 0)
			f[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_NEG, 0);
		if (rnd() % 3 == 0) {
			uint32_t m = (uint32_t)(rnd() % 16);

			f[n++] = (struct sock_filter)BPF_STMT(BPF_ST, m);
			f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_IMM, small());
			f[n++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_MEM, m);
			f[n++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TXA, 0);
		}
		if (use_x) {
			f[n++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0);
			f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_IMM, small());
			f[n++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0);
			f[n++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TXA, 0);
			f[n++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_IMM, small());
		}
		f[n++] = (struct sock_filter)BPF_JUMP(
			BPF_JMP | jmp[rnd() % 4] | (use_x ? BPF_X : BPF_K), small(), 0, 1);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						      SECCOMP_RET_ERRNO | (100 + b));
	}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	return n;
}

START_TEST(interpreter_agrees_with_the_kernel)
{
	unsigned agreed = 0, allowed = 0;

	for (int p = 0; p < PROGS; p++) {
		struct sock_filter f[256], *fp = f;
		unsigned len = gen(f);
		struct sock_fprog prog = { (unsigned short)len, f };
		struct mig__seccomp sc = { .mode = 2, .n = 1, .prog = &fp, .len = &len };
		long nr[CALLS];
		uint64_t args[CALLS][6];
		int got[CALLS], pfd[2], st;
		pid_t c;

		for (int k = 0; k < CALLS; k++) {
			nr[k] = harmless[rnd() % (sizeof(harmless) / sizeof(harmless[0]))];
			for (int a = 0; a < 6; a++)
				args[k][a] = (uint64_t)small() << 32 | small();
		}
		ck_assert_int_eq(pipe(pfd), 0);
		c = fork();
		ck_assert_int_ge(c, 0);
		if (c == 0) {
			int e[CALLS];

			close(pfd[0]);
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
			    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
				_exit(3);
			for (int k = 0; k < CALLS; k++) {
				long r = syscall(nr[k], args[k][0], args[k][1], args[k][2],
						 args[k][3], args[k][4], args[k][5]);

				e[k] = r < 0 ? errno : 0;
			}
			_exit(write(pfd[1], e, sizeof(e)) == (ssize_t)sizeof(e) ? 0 : 4);
		}
		close(pfd[1]);
		{
			ssize_t rd = read(pfd[0], got, sizeof(got));

			close(pfd[0]);
			ck_assert_int_eq(waitpid(c, &st, 0), c);
			ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
				      "filter %d: child status %#x", p, st);
			ck_assert_int_eq(rd, (ssize_t)sizeof(got));
		}
		for (int k = 0; k < CALLS; k++) {
			uint32_t r = mig__seccomp_run(&sc, nr[k], args[k], 0);
			int want = (r & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ERRNO
					   ? (int)(r & SECCOMP_RET_DATA)
					   : 0;

			if ((r & SECCOMP_RET_ACTION_FULL) != SECCOMP_RET_ERRNO)
				ck_assert_uint_eq(r, SECCOMP_RET_ALLOW);
			ck_assert_msg(got[k] == want,
				      "filter %d call %d (nr %ld): kernel errno %d, ours %d", p, k,
				      nr[k], got[k], want);
			agreed++;
			allowed += want == 0;
		}
	}
	printf("# seccomp: %u answers of %d random filters agree with the kernel (%u allowed)\n",
	       agreed, PROGS, allowed);
	ck_assert_uint_gt(allowed, 0);
	ck_assert_uint_lt(allowed, agreed);
}
END_TEST

/* The answers' precedence (several filters) and the refusals a check gives. */
START_TEST(precedence_and_check)
{
	struct sock_filter allow[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	struct sock_filter log[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_LOG) };
	struct sock_filter eperm[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM) };
	struct sock_filter trap[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP) };
	struct sock_filter killp[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS) };
	struct sock_filter bad[] = { BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64),
				     BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	struct sock_filter *progs[] = { allow, log, eperm, trap, killp, bad };
	unsigned lens[] = { 1, 1, 1, 1, 1, 2 };
	struct mig__seccomp sc = { .mode = 2, .prog = progs, .len = lens };
	char why[200];

	sc.n = 2; /* allow, log */
	ck_assert_int_eq(mig__seccomp_check(&sc, SYS_getpid, NULL, 0, why, sizeof(why)), 0);
	sc.n = 3; /* + EPERM: its errno, not run */
	ck_assert_int_eq(mig__seccomp_check(&sc, SYS_getpid, NULL, 0, why, sizeof(why)), -EPERM);
	sc.n = 5; /* + trap + kill: kill wins */
	ck_assert_uint_eq(mig__seccomp_run(&sc, SYS_getpid, NULL, 0), SECCOMP_RET_KILL_PROCESS);
	ck_assert_int_eq(mig__seccomp_check(&sc, SYS_getpid, NULL, 0, why, sizeof(why)), -EPERM);
	ck_assert_ptr_nonnull(strstr(why, "kill the process"));
	sc.prog = &progs[5]; /* a load past seccomp_data: never allowed */
	sc.len = &lens[5];
	sc.n = 1;
	ck_assert_int_eq(mig__seccomp_check(&sc, SYS_getpid, NULL, 0, why, sizeof(why)), -EPERM);
	sc = (struct mig__seccomp){ .mode = 1 };
	ck_assert_int_eq(mig__seccomp_check(&sc, SYS_getpid, NULL, 0, why, sizeof(why)), -EPERM);
	ck_assert_ptr_nonnull(strstr(why, "strict"));
	sc = (struct mig__seccomp){ .mode = 3 }; /* a mode this code does not know */
	ck_assert_int_eq(mig__seccomp_check(&sc, SYS_getpid, NULL, 0, why, sizeof(why)), -EPERM);
	sc = (struct mig__seccomp){ .mode = 2, .err = -EACCES };
	ck_assert_int_eq(mig__seccomp_check(&sc, SYS_getpid, NULL, 0, why, sizeof(why)), -EPERM);
	ck_assert_ptr_nonnull(strstr(why, "cannot read"));
	sc = (struct mig__seccomp){ .mode = 0 };
	ck_assert_int_eq(mig__seccomp_check(&sc, SYS_getpid, NULL, 0, why, sizeof(why)), 0);
}
END_TEST

static Suite *seccomp_suite(void)
{
	Suite *s = suite_create("seccomp");
	TCase *tc = tcase_create("interpreter");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, interpreter_agrees_with_the_kernel);
	tcase_add_test(tc, precedence_and_check);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(seccomp_suite)
