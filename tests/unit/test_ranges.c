/*
 * test_ranges.c - daemon/ranges.c: merging a client's ranges, keeping the
 * parts inside chosen VMAs, and cutting them into chunks of bounded span
 * at 2 MiB boundaries.
 */
#include <stdlib.h>

#include "ranges.h"
#include "unit.h"

#define M (UINT64_C(1) << 20)

START_TEST(test_normalize)
{
	struct mig_range r[] = {
		{ 10 * M, 12 * M }, { 0, 4 * M },	{ 2 * M, 6 * M },   { 10 * M, 12 * M },
		{ 6 * M, 7 * M },   { 20 * M, 20 * M }, { 11 * M, 13 * M },
	};
	size_t n = sizeof(r) / sizeof(r[0]);

	ranges_normalize(r, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(r[0].start, 0);
	ck_assert_uint_eq(r[0].end, 7 * M); /* overlapping and touching merged */
	ck_assert_uint_eq(r[1].start, 10 * M);
	ck_assert_uint_eq(r[1].end, 13 * M); /* duplicates merged, the empty one dropped */
}
END_TEST

START_TEST(test_normalize_many_overlaps)
{
	size_t n = 4096;
	struct mig_range *r = calloc(n, sizeof(*r));

	for (size_t i = 0; i < n; i++)
		r[i] = (struct mig_range){ (i % 7) * 4096, 64 * M - i * 4096 };
	ranges_normalize(r, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(r[0].start, 0);
	ck_assert_uint_eq(r[0].end, 64 * M);
	free(r);
}
END_TEST

static bool keep_anon(const struct mig_vma *v, void *userdata)
{
	(void)userdata;
	return mig_vma_is_anon_private(v);
}

START_TEST(test_intersect)
{
	const unsigned anon = MIG_VMA_ANON | MIG_VMA_PRIVATE | MIG_VMA_READ | MIG_VMA_WRITE;
	struct mig_vma v[] = {
		{ .start = 0, .end = 4 * M, .flags = anon },
		{ .start = 4 * M, .end = 8 * M, .flags = MIG_VMA_PRIVATE }, /* a file */
		{ .start = 8 * M, .end = 16 * M, .flags = anon },
		{ .start = 1ull << 40, .end = (1ull << 40) + 2 * M, .flags = anon },
	};
	/* A 1 TiB range and a small one: the result follows the VMAs, not the span. */
	struct mig_range want[] = { { 2 * M, 10 * M }, { 12 * M, (1ull << 40) + 4096 } };
	struct mig_range *out = NULL;
	size_t n = 0;

	ck_assert_int_eq(ranges_intersect_vmas(want, 2, v, 4, keep_anon, NULL, &out, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(out[0].start, 2 * M);
	ck_assert_uint_eq(out[0].end, 4 * M);
	ck_assert_uint_eq(out[1].start, 8 * M);
	ck_assert_uint_eq(out[1].end, 10 * M);
	ck_assert_uint_eq(out[2].start, 12 * M);
	ck_assert_uint_eq(out[2].end, 16 * M);
	ck_assert_uint_eq(out[3].start, 1ull << 40);
	ck_assert_uint_eq(out[3].end, (1ull << 40) + 4096);
	ck_assert_uint_eq(ranges_span(out, n), 8 * M + 4096);
	free(out);

	/* No wanted range: every kept VMA. */
	ck_assert_int_eq(ranges_intersect_vmas(NULL, 0, v, 4, keep_anon, NULL, &out, &n), 0);
	ck_assert_uint_eq(n, 3);
	free(out);

	/* Only the file: nothing. */
	want[0] = (struct mig_range){ 5 * M, 6 * M };
	ck_assert_int_eq(ranges_intersect_vmas(want, 1, v, 4, keep_anon, NULL, &out, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(out);
}
END_TEST
static Suite *ranges_suite(void)
{
	Suite *s = suite_create("ranges");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_normalize);
	tcase_add_test(tc, test_normalize_many_overlaps);
	tcase_add_test(tc, test_intersect);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(ranges_suite)
