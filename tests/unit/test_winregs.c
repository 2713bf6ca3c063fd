/*
 * test_winregs.c - libmig/faults.c mig__regs_add: a window's registered
 * pieces stay sorted and disjoint, at most MIG__MAX_REGS, and never lose
 * coverage: whatever was registered stays inside some piece (else it
 * would stay registered after the window, docs/engine.md LEFTOVER).
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "unit.h"

#define SPAN 1024 /* pages of the toy address space */
#define BASE UINT64_C(0x7f0000000000)

static struct mig_range pg(uint64_t s, uint64_t e)
{
	return (struct mig_range){ BASE + s * 4096, BASE + e * 4096 };
}

static void check_shape(const struct mig__win *w)
{
	ck_assert_uint_le(w->nregs, MIG__MAX_REGS);
	for (size_t k = 0; k < w->nregs; k++) {
		ck_assert_uint_lt(w->regs[k].start, w->regs[k].end);
		if (k)
			ck_assert_uint_lt(w->regs[k - 1].end, w->regs[k].start);
	}
}

static bool covered(const struct mig__win *w, uint64_t page)
{
	uint64_t a = BASE + page * 4096;

	for (size_t k = 0; k < w->nregs; k++)
		if (a >= w->regs[k].start && a < w->regs[k].end)
			return true;
	return false;
}

/* The LEFTOVER of seed 1883792164369323: a nested piece joined short. */
START_TEST(test_nested_join)
{
	struct mig__win w;

	memset(&w, 0, sizeof(w));
	/* 16 pieces with gaps of 1 page, the last one long. */
	for (uint64_t k = 0; k < MIG__MAX_REGS - 1; k++)
		ck_assert(mig__regs_add(&w, pg(k * 10, k * 10 + 9), true));
	ck_assert(mig__regs_add(&w, pg(200, 400), true));
	ck_assert_uint_eq(w.nregs, MIG__MAX_REGS);
	/* A piece inside the last one, then a cut's two halves of it. */
	ck_assert(mig__regs_add(&w, pg(250, 260), true));
	ck_assert(mig__regs_add(&w, pg(300, 310), true));
	check_shape(&w);
	for (uint64_t p = 200; p < 400; p++)
		ck_assert_msg(covered(&w, p), "page %lu lost", (unsigned long)p);
	/* Planning never joins: a new disjoint VMA is left out when full. */
	ck_assert(!mig__regs_add(&w, pg(500, 510), false));
	ck_assert(!covered(&w, 505));
	/* ...but one that overlaps a piece merges into it. */
	ck_assert(mig__regs_add(&w, pg(395, 420), false));
	ck_assert(covered(&w, 419));
	check_shape(&w);
}
END_TEST

/* Random adds, some joining: everything ever added stays covered. */
START_TEST(test_never_forgets)
{
	static bool want[SPAN];
	struct mig__win w;

	srand(20261206);
	for (int round = 0; round < 50; round++) {
		memset(&w, 0, sizeof(w));
		memset(want, 0, sizeof(want));
		for (int op = 0; op < 60; op++) {
			uint64_t s = (uint64_t)rand() % (SPAN - 64),
				 e = s + 1 + (uint64_t)rand() % 64;
			bool join = rand() % 4 != 0, ok = mig__regs_add(&w, pg(s, e), join);

			if (join)
				ck_assert(ok);
			if (ok)
				for (uint64_t p = s; p < e; p++)
					want[p] = true;
			check_shape(&w);
			/*
			 * One assertion per op: each ck_assert passed is a
			 * message to Check's parent process, and one a page
			 * made this test take 3.4 s of the 4 s limit (a CI run
			 * under load timed out).
			 */
			uint64_t lost = SPAN;

			for (uint64_t p = 0; p < SPAN && lost == SPAN; p++)
				if (want[p] && !covered(&w, p))
					lost = p;
			ck_assert_msg(lost == SPAN, "round %d op %d: page %lu lost", round, op,
				      (unsigned long)lost);
		}
	}
}
END_TEST

static Suite *winregs_suite(void)
{
	Suite *s = suite_create("winregs");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_nested_join);
	tcase_add_test(tc, test_never_forgets);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(winregs_suite)
